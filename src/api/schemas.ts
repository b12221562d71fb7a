import { z } from 'zod';

/**
 * The Emergency WorkFlow API's answers (API-NOTES.md). Lenient where the API is known to vary: Apigee-style
 * gateways send numbers as strings and `issued_at` in milliseconds, and add fields of their own (kept out).
 */

/** A number, or a string holding one ("3599", " 1700000000000 "). */
const numeric = z.union([
  z.number().finite(),
  z
    .string()
    .trim()
    .regex(/^-?\d+(\.\d+)?$/, 'expected a number or a numeric string')
    .transform(Number),
]);

/**
 * Below this an `issued_at` is seconds, above it milliseconds: 1e11 s is the year 5138, 1e11 ms is 1973,
 * so no plausible time of either unit falls on the wrong side.
 */
export const MS_THRESHOLD = 1e11;

/** UNIX time in seconds or milliseconds → milliseconds. */
export function toEpochMs(value: number): number {
  return value < MS_THRESHOLD ? value * 1000 : value;
}

export const tokenResponseSchema = z
  .object({
    access_token: z.string().min(1),
    token_type: z.string().default('BearerToken'),
    // Optional: without it the cache counts the lifetime from the local receive time.
    issued_at: numeric.pipe(z.number().nonnegative()).transform(toEpochMs).optional(),
    expires_in: numeric.pipe(z.number().positive()).default(3600),
  })
  .transform((r) => ({
    accessToken: r.access_token,
    tokenType: r.token_type,
    issuedAtMs: r.issued_at,
    expiresInMs: Math.round(r.expires_in * 1000),
  }));

/** What the token endpoint granted, in milliseconds. */
export type TokenGrant = z.output<typeof tokenResponseSchema>;

export const triggerResponseSchema = z.object({
  code: numeric.pipe(z.number().int()),
  // The docs say a string; a number is taken too, so a gateway's rewrite cannot turn a started flow into an error.
  id: z.union([z.string(), z.number().transform(String)]).optional(),
  message: z.string().optional(),
});

export type TriggerResponse = z.output<typeof triggerResponseSchema>;

/** The OAuth error body (RFC 6749 §5.2) that tells refused credentials from other failures. */
export const oauthErrorSchema = z.object({ error: z.string() });
