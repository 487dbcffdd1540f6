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
 * external buffers pass twice its 16 MiB semi-space). Once a mark-compact set such a limit, the next stream's outputs
 * started the next marking, and so on: about one full mark of the heap per stream (27–47 ms of CPU on V8's helper
 * threads), for node's stream and for ours alike, charged by the process-CPU figure to whichever sample was running
 * (docs/performance.md, decision 45). A factor of 5 leaves ~80 MiB of headroom: in six runs of the 64 MiB stream pairs
 * with it no timed sample ran a major collection; seven runs without it had the mode in one (103 and 91 major
 * collections per 100 runs). It changes when V8 collects, not what either contender computes or allocates.
 *
 * It is a measuring condition, not a user's process, whose heap decides its own limit: `EKMS_BENCH_DEFAULT_COLLECTOR=1`
 * measures with V8's adaptive factor, and a `--heap-growing-percent` given to node is left as it is. The machine line
 * of the report says which.
 */
import { setFlagsFromString } from 'node:v8';

/** The growing percent the envelope suite runs with (factor 1 + 400/100). */
export const BENCH_HEAP_GROWING_PERCENT = 400;

/** How the envelope suite's collector was set, for the machine line of the report. */
export type CollectorSetting = `heap-growing-percent=${number}` | 'user V8 flags' | 'default';

/** What the setting needs from the platform (injectable for tests). */
export interface CollectorDeps {
  readonly env: NodeJS.ProcessEnv;
  /** The node command line's options (process.execArgv). */
  readonly execArgv: readonly string[];
  readonly setFlags: (flags: string) => void;
}

const defaultDeps: CollectorDeps = {
  env: process.env,
  execArgv: process.execArgv,
  setFlags: setFlagsFromString,
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
 * throws. With `EKMS_BENCH_DEFAULT_COLLECTOR=1`, or a growing percent on node's command line, it sets nothing.
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
  }
}
