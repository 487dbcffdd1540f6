/** Process figures for the benchmarks (Linux /proc; NaN elsewhere or for an unknown pid). */
import { readFileSync } from 'node:fs';

/** Resident set size of a process in KiB (VmRSS). */
export function rssKiB(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}
