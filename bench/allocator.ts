/**
 * The benchmarks' C allocator setting: glibc's heap is not trimmed and mid-sized blocks are not mmap'd, so that a
 * freed output buffer is reused instead of being handed back to the kernel and faulted in again.
 *
 * Why: node:crypto allocates every output (`update`, one-shot results) with malloc. With glibc's defaults, freed
 * 64 KiB–1 MiB blocks go back to the OS (heap trimming, or mmap above the dynamic threshold), and the next ones are
 * page-faulted in again — on these VMs ~10 µs per 4 KiB page, 100–250 faults per MiB. That made AES-GCM contenders
 * 2–7× slower than their crypto, and which contender happened to fault more decided a ratio (0.6–2× between runs of
 * the same code). The setting removes that lottery for the baseline and the contender alike; it does not change
 * what either computes or allocates. `EKMS_BENCH_DEFAULT_ALLOCATOR=1` runs with glibc's defaults instead.
 *
 * The service suite's enclave process is started without it (production runs the default allocator); the service
 * figures were the same either way (cpu-split, 2026-12-03).
 */
import { spawnSync } from 'node:child_process';

/** glibc tunables (ignored by other C libraries): no trimming, top pad 64 MiB, mmap only from 8 MiB. */
export const BENCH_GLIBC_TUNABLES =
  'glibc.malloc.trim_threshold=268435456:glibc.malloc.top_pad=67108864:glibc.malloc.mmap_threshold=8388608';

const MARK = 'EKMS_BENCH_ALLOCATOR_SET';

/** How this process's allocator is set, for the machine line of the report. */
export type AllocatorSetting = 'glibc-no-trim' | 'default' | 'user GLIBC_TUNABLES';

/**
 * Runs this script again with the benchmark allocator setting unless it already has it (or the user set their own
 * tunables, or asked for the default); returns the child's exit code then, else undefined (go on in this process).
 */
export function rerunWithBenchAllocator(): number | undefined {
  const env = process.env;
  if (
    env[MARK] === '1' ||
    env['GLIBC_TUNABLES'] !== undefined ||
    env['EKMS_BENCH_DEFAULT_ALLOCATOR'] === '1'
  ) {
    return undefined;
  }
  if (process.platform !== 'linux') return undefined;
  const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...env, GLIBC_TUNABLES: BENCH_GLIBC_TUNABLES, [MARK]: '1' },
  });
  return r.status ?? 1;
}

/**
 * Reports the setting of this process, and drops it from the environment that child processes inherit (so the
 * service suite's enclave runs the default allocator).
 */
export function allocatorSetting(): AllocatorSetting {
  const env = process.env;
  if (env[MARK] === '1') {
    delete env[MARK];
    delete env['GLIBC_TUNABLES'];
    return 'glibc-no-trim';
  }
  return env['GLIBC_TUNABLES'] === undefined ? 'default' : 'user GLIBC_TUNABLES';
}
