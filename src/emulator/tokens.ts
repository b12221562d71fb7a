import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../shared/clock.ts';

export type TokenCheck = 'valid' | 'expired' | 'unknown';

export interface IssuedToken {
  accessToken: string;
  issuedAtMs: number;
  ttlS: number;
}

/** Past this many live tokens, expired ones are swept on the next issue (a long demo must not grow forever). */
const SWEEP_AT = 1024;

/** Issued access tokens with their expiry, judged by the injected clock. */
export class TokenStore {
  readonly #expiresAt = new Map<string, number>();
  readonly #clock: Clock;
  readonly #ttlS: number;

  constructor(clock: Clock, ttlS: number) {
    this.#clock = clock;
    this.#ttlS = ttlS;
  }

  issue(): IssuedToken {
    const now = this.#clock.now();
    if (this.#expiresAt.size >= SWEEP_AT) this.#sweep(now);
    const accessToken = randomBytes(24).toString('base64url');
    this.#expiresAt.set(accessToken, now + this.#ttlS * 1000);
    return { accessToken, issuedAtMs: now, ttlS: this.#ttlS };
  }

  check(accessToken: string): TokenCheck {
    const expiresAt = this.#expiresAt.get(accessToken);
    if (expiresAt === undefined) return 'unknown';
    return this.#clock.now() >= expiresAt ? 'expired' : 'valid';
  }

  /** Tokens still known (tests search logs and payloads for them: none may leak). */
  live(): string[] {
    return [...this.#expiresAt.keys()];
  }

  /** Every issued token stops working at once, as after a key rotation on the gateway. */
  expireAll(): void {
    this.#expiresAt.clear();
  }

  #sweep(now: number): void {
    for (const [token, expiresAt] of this.#expiresAt) if (now >= expiresAt) this.#expiresAt.delete(token);
  }
}

/** Compares client credentials in constant time (hashing first makes the lengths equal). */
export class Credentials {
  readonly #idHash: Buffer;
  readonly #secretHash: Buffer;

  constructor(clientId: string, clientSecret: string) {
    this.#idHash = sha256(clientId);
    this.#secretHash = sha256(clientSecret);
  }

  matches(clientId: string, clientSecret: string): boolean {
    const idOk = timingSafeEqual(this.#idHash, sha256(clientId));
    const secretOk = timingSafeEqual(this.#secretHash, sha256(clientSecret));
    return idOk && secretOk;
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
