import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** ../shared/fixtures beside the checkout, or SOS_FIXTURES. Null (with one line) when absent, never in CI. */
export function sharedFixtures(): string | null {
  const dir = process.env.SOS_FIXTURES ?? resolve(REPO_ROOT, '../shared/fixtures');
  if (existsSync(dir)) return dir;
  if (process.env.CI) throw new Error(`shared fixtures not found at ${dir} (CI always has them)`);
  console.warn(`SKIP: shared fixtures not found at ${dir}; set SOS_FIXTURES to run these tests`);
  return null;
}
