/**
 * The ids of the service suite's operation rows (bench/kms-service.ts), shared with the targets (bench/targets.ts) so
 * that the GenerateDataKey target names the row the suite prints, not a copy of its spelling.
 */

/** Clients per slice of the operation rows, in the order they run. */
export const SERVICE_CONCURRENCY = [1, 16, 64] as const;

/** Statistics printed per operation and concurrency. */
export type ServiceStat = 'ops' | 'p50' | 'p99';

/** `kms.<op>.c<N>.<stat>`, e.g. `kms.generateDataKey.c64.p50`. */
export function serviceRowId(op: string, concurrency: number, stat: ServiceStat): string {
  return `kms.${op}.c${concurrency}.${stat}`;
}
