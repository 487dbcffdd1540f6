/**
 * V8 settings for the service processes (the enclave and the host), applied once at startup.
 *
 * `--no-concurrent-array-buffer-sweeping`: V8 frees dead ArrayBuffers (every Buffer and typed array with off-heap
 * storage: socket reads, node:crypto outputs) on helper threads by default. On these machines (2 vCPUs, costly
 * thread wake-ups) that made each such allocation cost 2–4 µs of CPU; swept on the main thread during the
 * scavenge it costs 0.25–0.35 µs (docs/performance.md, "ArrayBuffers"). The flag is read at each sweep, so setting
 * it at run time takes effect.
 */
import { setFlagsFromString } from 'node:v8';

let applied = false;

export function applyRuntimeTuning(): void {
  if (applied) return;
  applied = true;
  setFlagsFromString('--no-concurrent-array-buffer-sweeping');
}
