/**
 * Benchmark: key service operations through the real host and enclave processes (WebSocket → host → enclave),
 * each next to a relayed no-op (`health`: same frames, same relay, same CBOR envelope, no key work) measured in the
 * same run with the same number of clients. Target (issue 8): GenerateDataKey round trip ≤ 2× the no-op at 64 clients.
 *
 * For each concurrency c ∈ {1, 16, 64}: c connections, each sending one request at a time for DURATION_MS, after a
 * warm-up. Reports ops/s (ratio = op/no-op, so < 1 means slower) and p50/p99 latency (ratio = op/no-op, so > 1 means
 * slower). Operations and the no-op alternate per concurrency level so that machine noise hits both.
 *
 * Until the attested session lands (issue 5) requests travel without the session's record layer; the figures will
 * then include it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pino from 'pino';
import { connect, type EkmsClient } from '../client/sdk.js';
import { startHost } from '../host/host.js';

export interface BenchRow {
  readonly id: string;
  readonly unit: string;
  readonly value: number;
  readonly baseline: number;
  readonly ratio: number;
}

const DURATION_MS = Number(process.env['EKMS_BENCH_MS'] ?? 2000);
const WARMUP_MS = 300;

interface Stats {
  opsPerSec: number;
  p50: number;
  p99: number;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function measure(
  clients: readonly EkmsClient[],
  op: (c: EkmsClient) => Promise<unknown>,
): Promise<Stats> {
  const runFor = async (ms: number, latencies?: number[]): Promise<number> => {
    const end = performance.now() + ms;
    let count = 0;
    await Promise.all(
      clients.map(async (c) => {
        while (performance.now() < end) {
          const t0 = performance.now();
          await op(c);
          latencies?.push(performance.now() - t0);
          count += 1;
        }
      }),
    );
    return count;
  };
  await runFor(WARMUP_MS);
  const latencies: number[] = [];
  const t0 = performance.now();
  const count = await runFor(DURATION_MS, latencies);
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return { opsPerSec: count / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

export async function benchKmsService(): Promise<BenchRow[]> {
  const stateDir = mkdtempSync(join(tmpdir(), 'ekms-bench-'));
  const host = await startHost({
    listen: 'ws://127.0.0.1:0',
    enclaveEntry: resolve(process.env['EKMS_ENCLAVE_BUNDLE'] ?? 'dist/enclave.mjs'),
    attestor: 'sim-nitro',
    logger: pino({ level: 'silent' }),
    enclaveLogLevel: 'error',
    stateDir,
  });
  const rows: BenchRow[] = [];
  const all: EkmsClient[] = [];
  try {
    const admin = await connect(host.endpoint);
    all.push(admin);
    const { keyId } = await admin.createKey({ description: 'bench' });
    const context = { tenant: 'bench' };
    const sample = await admin.encrypt(keyId, new Uint8Array(32), context);
    const ops: Array<[string, (c: EkmsClient) => Promise<unknown>]> = [
      ['generateDataKey', (c) => c.generateDataKey(keyId, { encryptionContext: context })],
      ['encrypt.32B', (c) => c.encrypt(keyId, new Uint8Array(32), context)],
      ['decrypt.32B', (c) => c.decrypt(sample.ciphertextBlob, context)],
    ];
    for (const concurrency of [1, 16, 64]) {
      const clients = await Promise.all(Array.from({ length: concurrency }, () => connect(host.endpoint)));
      all.push(...clients);
      for (const [name, op] of ops) {
        const base = await measure(clients, (c) => c.health());
        const s = await measure(clients, op);
        const id = `kms.${name}.c${concurrency}`;
        rows.push({
          id: `${id}.ops`,
          unit: 'ops/s',
          value: s.opsPerSec,
          baseline: base.opsPerSec,
          ratio: s.opsPerSec / base.opsPerSec,
        });
        rows.push({ id: `${id}.p50`, unit: 'ms', value: s.p50, baseline: base.p50, ratio: s.p50 / base.p50 });
        rows.push({ id: `${id}.p99`, unit: 'ms', value: s.p99, baseline: base.p99, ratio: s.p99 / base.p99 });
      }
    }
  } finally {
    for (const c of all) c.close();
    await host.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
  return rows;
}
