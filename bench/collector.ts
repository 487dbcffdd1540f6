/**
 * The envelope suite's collector setting: V8's old-generation growing factor is fixed at 5
 * (`--heap-growing-percent=400`) while the suite runs, and set back to V8's adaptive factor after it.
 *
 * Why: V8 11.3 (Node 20) counts the external memory allocated since the last mark-compact (every Buffer that
 * node:crypto returns) against the old generation's allocation limit (`Heap::OldGenerationSpaceAvailable`), and
 * starts incremental marking once what is left of the limit is no more than the new space's capacity. After each
 * mark-compact the limit is max(old size × factor, old size + 8 MiB) + the new space's capacity, with a factor V8
 * adapts from 1.1 up. The bench process's old generation is ~16–20 MiB, so it can be left ~8 MiB of headroom, while
 * a 64 MiB stream's output buffers reach ~32 MiB before a scavenge frees them (V8 scavenges once the new space's
 * external buffers pass twice its 16 MiB semi-space). That is consistent with what the bench showed (decision 45,
 * docs/performance.md): in some processes about one full mark of the heap per 64 MiB stream, started by the
 * allocation limit, for node's stream and ours alike, charged by the process-CPU figure to whichever sample was
 * running. A factor of 5 leaves ~80 MiB of headroom; with it no run of the 64 MiB stream pairs ran a major collection
 * in a timed sample (counts in the docs). It changes when V8 collects, not what either contender computes or
 * allocates.
 *
 * It is a measuring condition, not a user's process, whose heap decides its own limit: `EKMS_BENCH_DEFAULT_COLLECTOR=1`
 * measures with V8's adaptive factor, and a `--heap-growing-percent` on the bench process's own node command line
 * (`node --expose-gc --heap-growing-percent=N dist/bench.mjs`; `npm run bench` does not pass node options on, and
 * node refuses the flag in NODE_OPTIONS) is left as it is. The machine line of the report says which.
 */
import { setFlagsFromString } from 'node:v8';

/** The growing percent the envelope suite runs with (factor 1 + 400/100). */
export const BENCH_HEAP_GROWING_PERCENT = 400;

/** How the envelope suite's collector was set, for the machine line of the report. */
export type CollectorSetting =
  | `heap-growing-percent=${typeof BENCH_HEAP_GROWING_PERCENT}`
  | 'user V8 flags'
  | 'default';

/** What the setting needs from the platform (injectable for tests). */
export interface CollectorDeps {
  readonly env: NodeJS.ProcessEnv;
  /** The node command line's options (process.execArgv). */
  readonly execArgv: readonly string[];
  readonly setFlags: (flags: string) => void;
  /** A full collection (globalThis.gc under --expose-gc), so that the limit set with the factor does not outlive it. */
  readonly collect: (() => void) | undefined;
}

const defaultDeps: CollectorDeps = {
  env: process.env,
  execArgv: process.execArgv,
  setFlags: setFlagsFromString,
  collect: (globalThis as { gc?: () => void }).gc,
};

let used: CollectorSetting | undefined;

/** The setting the last `withBenchCollector` ran with; undefined if none ran in this process. */
export function collectorSetting(): CollectorSetting | undefined {
  return used;
}

/** Which setting `withBenchCollector` would apply. */
export function chooseCollectorSetting(deps: Pick<CollectorDeps, 'env' | 'execArgv'>): CollectorSetting {
  if (deps.execArgv.some((a) => /^--heap[-_]growing[-_]percent(=|$)/.test(a))) return 'user V8 flags';
  if (deps.env['EKMS_BENCH_DEFAULT_COLLECTOR'] === '1') return 'default';
  return `heap-growing-percent=${BENCH_HEAP_GROWING_PERCENT}`;
}

/**
 * Runs `run` with the bench's growing factor (see above), then sets V8's adaptive factor back (0), also when `run`
 * throws, and runs a full collection where it can (the limit computed with the factor lasts until the next
 * mark-compact; the suites after this one start from V8's own). With `EKMS_BENCH_DEFAULT_COLLECTOR=1`, or a growing
 * percent on node's command line, it sets nothing.
 */
export async function withBenchCollector<T>(
  run: () => Promise<T>,
  deps: CollectorDeps = defaultDeps,
): Promise<T> {
  const setting = chooseCollectorSetting(deps);
  used = setting;
  if (setting !== `heap-growing-percent=${BENCH_HEAP_GROWING_PERCENT}`) return run();
  deps.setFlags(`--heap-growing-percent=${BENCH_HEAP_GROWING_PERCENT}`);
  try {
    return await run();
  } finally {
    deps.setFlags('--heap-growing-percent=0');
    deps.collect?.();
  }
}
