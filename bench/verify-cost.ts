/**
 * The timing of the attestation benchmarks (bench/attestation-nitro.ts, bench/attestation-snp.ts): synchronous cases
 * measured in wall-clock ops/s in rounds (every case once per round, the order reversed every other round, so a slow
 * patch of the machine longer than a round hits all of them), each reported as the median of its rounds beside the baseline case's median, with
 * ratio = baseline / value: what one operation costs in baseline operations (here: bare ECDSA P-384 verifies), so
 * lower is better. Ratios keep three decimals, so a target bound of 1.5 is judged on 1.500, not on 1.50.
 */

/** One row of a verify-cost benchmark. */
export interface CostRow {
  readonly id: string;
  readonly unit: string;
  readonly value: number;
  /** The baseline case's ops/s, same run. */
  readonly baseline: number;
  /** Cost of one operation in baseline operations (baseline / value). */
  readonly ratio: number;
}

/** Options of `verifyCostRows`. */
export interface VerifyCostOptions {
  /** Measuring time per case and round, in seconds. */
  readonly seconds: number;
  /** Rounds; the median is reported (odd, so the median is a measured figure). */
  readonly rounds: number;
  /** Untimed calls of each case before the first round (fills caches, warms the JIT). */
  readonly warmup?: number;
  /** Unit of the rows (default `ops/s`). */
  readonly unit?: string;
}

/** Ops/s of `fn` over about `seconds` of wall clock (checked every 10 calls). */
function opsPerSecond(fn: () => void, seconds: number): number {
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let n = 0;
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < 10; i++) fn();
    n += 10;
    now = performance.now();
  }
  return (n * 1000) / (now - start);
}

/** The median of an odd-length list (the middle element once sorted). */
function median(xs: readonly number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}

/**
 * Times every case of `cases` in `rounds` alternating rounds and returns one row per case, in the order of `cases`
 * (the baseline case included, ratio 1).
 * @throws Error when `baselineId` is not a case, or the options are out of range.
 */
export function verifyCostRows(
  cases: Readonly<Record<string, () => void>>,
  baselineId: string,
  options: VerifyCostOptions,
): CostRow[] {
  const { seconds, rounds, warmup = 20, unit = 'ops/s' } = options;
  if (!Object.hasOwn(cases, baselineId))
    throw new Error(`baseline case ${baselineId} is not among the cases`);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds % 2 === 0) {
    throw new Error(`rounds must be an odd positive integer, got ${rounds}`);
  }
  if (!(seconds > 0)) throw new Error(`seconds must be positive, got ${seconds}`);
  for (const fn of Object.values(cases)) for (let i = 0; i < warmup; i++) fn();
  const samples = new Map<string, number[]>(Object.keys(cases).map((id) => [id, []]));
  const forward = Object.entries(cases);
  const backward = [...forward].reverse();
  for (let r = 0; r < rounds; r++) {
    // The order is reversed every other round, so no case always runs right after the same other one (an uncached
    // verification leaves garbage that the next case's sample pays for).
    for (const [id, fn] of r % 2 === 0 ? forward : backward) samples.get(id)!.push(opsPerSecond(fn, seconds));
  }
  const baseline = median(samples.get(baselineId)!);
  return [...samples].map(([id, xs]) => {
    const value = median(xs);
    return {
      id,
      unit,
      value: Math.round(value),
      baseline: Math.round(baseline),
      ratio: Math.round((baseline / value) * 1000) / 1000,
    };
  });
}
