import { z } from 'zod';

/**
 * Phone numbers as the seed sends them: 10-digit NANP ("6615555555"). "+1 661 555 5555", "(661) 555-5555"
 * and "16615555555" are accepted and normalized to that form. NANP rules: area code and exchange start 2-9.
 */
export function normalizeNanp(input: string): string | null {
  const stripped = input.replace(/[\s().-]/g, '');
  const m = /^(?:\+?1)?([2-9]\d{2}[2-9]\d{6})$/.exec(stripped);
  return m ? m[1]! : null;
}

export const phoneNumber = z.string().transform((value, ctx) => {
  const n = normalizeNanp(value);
  if (n === null) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a 10-digit NANP phone number like "6615555555" or "+16615555555", got "${value}"`,
    });
    return z.NEVER;
  }
  return n;
});
