/** One benchmark figure; `npm run bench` prints one JSON line per figure. */
export interface BenchResult {
  name: string;
  unit: string;
  median: number;
  p99: number;
  n: number;
  /** What the figure is compared against, measured in the same run. */
  baseline?: { name: string; median: number; p99: number };
  /** figure / baseline (or baseline / figure for rates; say which in `target`). */
  ratio?: number;
  target?: string;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function summarize(samples: readonly number[]): { median: number; p99: number; n: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return { median: percentile(sorted, 50), p99: percentile(sorted, 99), n: sorted.length };
}

export function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
