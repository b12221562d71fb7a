import type { z } from 'zod';

/** `path: message` for every issue, so an error body names exactly the field that is wrong. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
}
