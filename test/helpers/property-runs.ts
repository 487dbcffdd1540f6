/**
 * How many cases a property test runs. CI keeps each suite's own default (fast); `EKMS_PROPERTY_RUNS=100000 npm
 * test` raises every property suite to that many cases for a long, nightly-style run (docs/reliability.md). The
 * same variable also applies to fast-check asserts that give no count (test/global-properties.ts), and lifts the
 * per-test timeout (vitest.config.ts).
 */
export const PROPERTY_RUNS_OVERRIDE: number | undefined = (() => {
  const raw = process.env['EKMS_PROPERTY_RUNS'];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`EKMS_PROPERTY_RUNS must be a positive integer, not ${raw}`);
  return n;
})();

/** The suite's default case count, or EKMS_PROPERTY_RUNS when set. */
export function runs(defaultRuns: number): number {
  return PROPERTY_RUNS_OVERRIDE ?? defaultRuns;
}
