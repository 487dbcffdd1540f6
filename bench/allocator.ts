/**
 * The benchmarks' C allocator setting: glibc's heap is not trimmed and mid-sized blocks are not mmap'd, so that a
 * freed output buffer is reused instead of being handed back to the kernel and faulted in again.
 *
 * Why: node:crypto allocates every output (`update`, one-shot results) with malloc. With glibc's defaults, freed
 * 64 KiB–1 MiB blocks can go back to the OS (heap trimming, or mmap above the dynamic threshold), and the next ones
 * are page-faulted in again — on these VMs ~10 µs per 4 KiB page, 100–250 faults per MiB when it happens. That made
 * AES-GCM contenders 2–7× slower than their crypto, and which contender happened to fault more decided a ratio
 * (0.6–2× between runs of the same code). The setting removes that lottery for the baseline and the contender
 * alike; it does not change what either computes or allocates. It is not the allocator of a user's process (where
 * the lottery is real): `EKMS_BENCH_DEFAULT_ALLOCATOR=1` measures with glibc's defaults.
 *
 * Child processes (the service suite's enclave) get the environment back as it was: production runs the default
 * allocator. The service suite's host and clients run inside the bench process, with the setting.
 */
import { spawnSync } from 'node:child_process';
import { constants } from 'node:os';

/** glibc tunables (ignored by other C libraries): no trimming, top pad 64 MiB, mmap only from 8 MiB. */
export const BENCH_GLIBC_TUNABLES =
  'glibc.malloc.trim_threshold=268435456:glibc.malloc.top_pad=67108864:glibc.malloc.mmap_threshold=8388608';

/** Set in the re-run: the user's own GLIBC_TUNABLES ('' if none), to hand back to child processes. */
const MARK = 'EKMS_BENCH_USER_GLIBC_TUNABLES';

/** How this process's allocator is set, for the machine line of the report. */
export type AllocatorSetting = 'glibc-no-trim' | 'user malloc tunables' | 'default';

/** What the re-run needs from the platform (injectable for tests). */
export interface RerunDeps {
  readonly env: NodeJS.ProcessEnv;
  readonly isGlibc: () => boolean;
  readonly spawn: typeof spawnSync;
}

function runningOnGlibc(): boolean {
  if (process.platform !== 'linux') return false;
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: unknown } } | undefined;
  return typeof report?.header?.glibcVersionRuntime === 'string';
}

const defaultDeps: RerunDeps = { env: process.env, isGlibc: runningOnGlibc, spawn: spawnSync };

/** Malloc settings of the user's own: glibc.malloc.* tunables, or the older MALLOC_*_ variables glibc also reads. */
function userSetsMalloc(env: NodeJS.ProcessEnv): boolean {
  if (env['GLIBC_TUNABLES']?.includes('glibc.malloc.') && !isRerun(env)) return true;
  return Object.keys(env).some((k) => /^MALLOC_[A-Z_]+_$/.test(k) && env[k] !== undefined);
}

/** This process is the re-run: the marker is set and GLIBC_TUNABLES ends with ours (not just an inherited marker). */
function isRerun(env: NodeJS.ProcessEnv): boolean {
  return env[MARK] !== undefined && (env['GLIBC_TUNABLES'] ?? '').endsWith(BENCH_GLIBC_TUNABLES);
}

/**
 * Runs this script again with the benchmark allocator setting unless it has it already, the user set malloc
 * settings of their own (tunables or MALLOC_*_ variables) or asked for the default, or the C library is not glibc. Returns the child's exit code
 * then (128 + n if a signal ended it), else undefined: go on in this process.
 */
export function rerunWithBenchAllocator(deps: RerunDeps = defaultDeps): number | undefined {
  const env = deps.env;
  const user = env['GLIBC_TUNABLES'];
  if (isRerun(env) || env['EKMS_BENCH_DEFAULT_ALLOCATOR'] === '1') return undefined;
  if (userSetsMalloc(env)) return undefined;
  if (!deps.isGlibc()) return undefined;
  const tunables =
    user === undefined || user === '' ? BENCH_GLIBC_TUNABLES : `${user}:${BENCH_GLIBC_TUNABLES}`;
  const r = deps.spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...env, GLIBC_TUNABLES: tunables, [MARK]: user ?? '' },
  });
  if (r.error !== undefined) {
    process.stderr.write(`bench: could not run with the benchmark allocator setting: ${r.error.message}\n`);
    return 1;
  }
  if (r.signal !== null) return 128 + (constants.signals[r.signal] ?? 0);
  return r.status ?? 1;
}

/**
 * Reports the setting of this process, and gives child processes the environment the user had (so the service
 * suite's enclave runs the default allocator, or the user's own tunables).
 */
export function allocatorSetting(env: NodeJS.ProcessEnv = process.env): AllocatorSetting {
  const user = env[MARK];
  if (user !== undefined && isRerun(env)) {
    delete env[MARK];
    if (user === '') delete env['GLIBC_TUNABLES'];
    else env['GLIBC_TUNABLES'] = user;
    return 'glibc-no-trim';
  }
  delete env[MARK]; // inherited without our tunables: not ours to act on
  return userSetsMalloc(env) ? 'user malloc tunables' : 'default';
}
