/**
 * Benchmark `service`: the attested session and key service operations through the real host and enclave processes
 * (WebSocket → host → enclave), each next to a baseline measured in the same run:
 * - `session.handshake.*`: connect + attested handshake (X-Wing, Ed25519, evidence verification with the cached
 *   chain) + authenticate + close, against a raw WebSocket connect + one plaintext `health` round trip + close.
 * - `kms.<op>.c<N>.*`: c ∈ {1, 16, 64} sessions, each sending one request at a time for DURATION_MS after a warm-up,
 *   against the raw echo: the same number of raw WebSocket connections sending plaintext `health` frames through the
 *   same host (the relayed round trip with nothing but CBOR framing, no session, no key work). Reports ops/s
 *   (ratio = op/echo, < 1 means slower) and p50/p99 latency (ratio = op/echo, > 1 means slower). The row and its
 *   echo run in EKMS_BENCH_ROUNDS (3) alternating slices; each ratio is the median of the per-round ratios.
 *   Ops: generateDataKey (admin), encrypt/decrypt of 32 B (admin), releaseKey (attested workload, HPKE-wrapped).
 * Target (issues 5, 8): a GenerateDataKey round trip costs at most 2× the raw echo round trip at 64 clients.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type SimulatedNitroCa, simulateNitroDocument } from '../attestation/simulated/index.js';
import { type ConnectOptions, connect, type EkmsClient } from '../client/sdk.js';
import { xwingKeygen } from '../shared/xwing.js';
import { rawEcho, startBenchHost } from './bench-host.js';
import { rssKiB } from './process-stats.js';
import { SERVICE_CONCURRENCY, serviceRowId } from './service-rows.js';

export interface BenchRow {
  readonly id: string;
  readonly unit: string;
  readonly value: number;
  readonly baseline: number;
  readonly ratio: number;
}

const DURATION_MS = Number(process.env['EKMS_BENCH_MS'] ?? 2000);
const WARMUP_MS = 300;
/** Alternating rounds of a service row and its echo baseline (EKMS_BENCH_ROUNDS). */
const ROUNDS = Number(process.env['EKMS_BENCH_ROUNDS'] ?? 3);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error(`EKMS_BENCH_ROUNDS must be a positive integer`);

interface Stats {
  opsPerSec: number;
  p50: number;
  p99: number;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** One measured slice: its latencies (ms) and its duration (s). */
interface Slice {
  readonly latencies: number[];
  readonly seconds: number;
}

function statsOf(slices: readonly Slice[]): Stats {
  const latencies = slices.flatMap((s) => s.latencies).sort((a, b) => a - b);
  const seconds = slices.reduce((t, s) => t + s.seconds, 0);
  return {
    opsPerSec: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Every client sends one request at a time for `ms` (after `warmupMs` not counted). */
async function slice<T>(
  clients: readonly T[],
  op: (c: T) => Promise<unknown>,
  ms: number,
  warmupMs: number,
): Promise<Slice> {
  const runFor = async (duration: number, latencies?: number[]): Promise<void> => {
    const end = performance.now() + duration;
    await Promise.all(
      clients.map(async (c) => {
        while (performance.now() < end) {
          const t0 = performance.now();
          await op(c);
          latencies?.push(performance.now() - t0);
        }
      }),
    );
  };
  if (warmupMs > 0) await runFor(warmupMs);
  const latencies: number[] = [];
  const t0 = performance.now();
  await runFor(ms, latencies);
  return { latencies, seconds: (performance.now() - t0) / 1000 };
}

async function measure<T>(clients: readonly T[], op: (c: T) => Promise<unknown>): Promise<Stats> {
  return statsOf([await slice(clients, op, DURATION_MS, WARMUP_MS)]);
}

/**
 * An operation against its baseline in ROUNDS alternating slices (baseline first, DURATION_MS in all for each): noise
 * on these shared machines lasts seconds and moved one-shot ratios by ±15 %, so both sides see the same stretches.
 * Values are over all slices; each ratio is the median of the per-round ratios.
 */
async function paired<A, B>(
  clients: readonly A[],
  op: (c: A) => Promise<unknown>,
  baselineClients: readonly B[],
  baseline: (c: B) => Promise<unknown>,
): Promise<{ value: Stats; baseline: Stats; ratio: Stats }> {
  const ours: Slice[] = [];
  const theirs: Slice[] = [];
  const ms = DURATION_MS / ROUNDS;
  for (let round = 0; round < ROUNDS; round++) {
    const warmup = round === 0 ? WARMUP_MS : 0;
    theirs.push(await slice(baselineClients, baseline, ms, warmup));
    ours.push(await slice(clients, op, ms, warmup));
  }
  const per = ours.map((o, i) => ({ o: statsOf([o]), b: statsOf([theirs[i]!]) }));
  return {
    value: statsOf(ours),
    baseline: statsOf(theirs),
    ratio: {
      opsPerSec: median(per.map(({ o, b }) => o.opsPerSec / b.opsPerSec)),
      p50: median(per.map(({ o, b }) => o.p50 / b.p50)),
      p99: median(per.map(({ o, b }) => o.p99 / b.p99)),
    },
  };
}

export async function benchKmsService(): Promise<BenchRow[]> {
  const bench = await startBenchHost('ekms-bench-');
  const { host, principal } = bench;
  const rows: BenchRow[] = [];
  const all: Array<{ close(): void }> = [];
  const ca = JSON.parse(readFileSync(join(bench.dir, 'sim-ca.json'), 'utf8')) as SimulatedNitroCa;
  const workloadMeasurement = Buffer.from('5a'.repeat(48), 'hex');
  const recipient = xwingKeygen();
  const adminOptions: ConnectOptions = { trust: host.trust, principal, timeoutMs: 30_000 };
  const workloadOptions: ConnectOptions = {
    trust: host.trust,
    timeoutMs: 30_000,
    workload: {
      recipientPublicKey: recipient.publicKey,
      evidence: async (binding) => ({
        type: 'nitro',
        document: await simulateNitroDocument(ca, {
          now: new Date(),
          pcrs: { 0: workloadMeasurement, 1: workloadMeasurement, 2: workloadMeasurement },
          userData: binding,
        }),
        certificates: [],
      }),
    },
  };
  try {
    const admin = await connect(host.endpoint, adminOptions);
    all.push(admin);
    const { keyId } = await admin.createKey({
      description: 'bench',
      releasePolicy: JSON.stringify({ version: 1, allowSimulated: true, measurements: ['5a'.repeat(48)] }),
    });

    // Handshakes: sequential connect + handshake + authenticate + close, against raw connect + health + close.
    const handshakes = await measure([0], async () => {
      const c = await connect(host.endpoint, adminOptions);
      c.close();
    });
    const rawConnects = await measure([0], async () => {
      const e = await rawEcho(host.endpoint);
      await e.ping();
      e.close();
    });
    rows.push({
      id: 'session.handshake.ops',
      unit: 'ops/s',
      value: handshakes.opsPerSec,
      baseline: rawConnects.opsPerSec,
      ratio: handshakes.opsPerSec / rawConnects.opsPerSec,
    });
    for (const p of ['p50', 'p99'] as const) {
      rows.push({
        id: `session.handshake.${p}`,
        unit: 'ms',
        value: handshakes[p],
        baseline: rawConnects[p],
        ratio: handshakes[p] / rawConnects[p],
      });
    }
    const context = { tenant: 'bench' };
    const sample = await admin.encrypt(keyId, new Uint8Array(32), context);
    const ops: Array<[string, (c: EkmsClient) => Promise<unknown>]> = [
      ['generateDataKey', (c) => c.generateDataKey(keyId, { encryptionContext: context })],
      ['encrypt.32B', (c) => c.encrypt(keyId, new Uint8Array(32), context)],
      ['decrypt.32B', (c) => c.decrypt(sample.ciphertextBlob, context)],
    ];
    // Memory per idle session: the enclave's RSS growth and this process's heap growth for N idle sessions, against N idle raw
    // WebSocket connections (the host still gives each its own enclave stream).
    const IDLE = 200;
    const rss = rssKiB;
    // This process's side (clients + host) is measured as live JS heap + external memory (which includes
    // ArrayBuffers) after a full collection: its RSS moves by more than the figure (V8 returns pages to the OS at its
    // own pace, so RSS could even shrink).
    const heapKiB = (): number => {
      const m = process.memoryUsage();
      return (m.heapUsed + m.external) / 1024;
    };
    // This process is collected before each sample (scripts/bench.mjs runs it with --expose-gc), so that garbage
    // of the load runs before does not count (or, freed meanwhile, count negative). The enclave cannot be collected
    // from here: its figure is noisier.
    const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
    const idleCost = async (open: () => Promise<{ close(): void }>) => {
      await new Promise((r) => setTimeout(r, 200));
      gc();
      const e0 = rss(host.supervisor.pid);
      const h0 = heapKiB();
      const conns: Array<{ close(): void }> = [];
      for (let i = 0; i < IDLE; i++) conns.push(await open());
      await new Promise((r) => setTimeout(r, 300));
      gc();
      const e1 = rss(host.supervisor.pid);
      const h1 = heapKiB();
      for (const c of conns) c.close();
      await new Promise((r) => setTimeout(r, 300));
      return { enclave: (e1 - e0) / IDLE, process: (h1 - h0) / IDLE };
    };
    const rawIdle = await idleCost(() => rawEcho(host.endpoint));
    const sessionIdle = await idleCost(() => connect(host.endpoint, adminOptions));
    rows.push({
      id: 'session.idle.enclave-rss-per-connection',
      unit: 'KiB',
      value: sessionIdle.enclave,
      baseline: rawIdle.enclave,
      ratio: sessionIdle.enclave / rawIdle.enclave,
    });
    rows.push({
      id: 'session.idle.client+host-heap-per-connection',
      unit: 'KiB',
      value: sessionIdle.process,
      baseline: rawIdle.process,
      ratio: sessionIdle.process / rawIdle.process,
    });

    for (const concurrency of SERVICE_CONCURRENCY) {
      const clients = await Promise.all(
        Array.from({ length: concurrency }, () => connect(host.endpoint, adminOptions)),
      );
      const workloads = await Promise.all(
        Array.from({ length: concurrency }, () => connect(host.endpoint, workloadOptions)),
      );
      const echoes = await Promise.all(Array.from({ length: concurrency }, () => rawEcho(host.endpoint)));
      all.push(...clients, ...workloads, ...echoes);
      const ping = (e: { ping(): Promise<void> }): Promise<void> => e.ping();
      const runs: Array<[string, () => ReturnType<typeof paired>]> = [
        ...ops.map(([name, op]): [string, () => ReturnType<typeof paired>] => [
          name,
          () => paired(clients, op, echoes, ping),
        ]),
        ['releaseKey', () => paired(workloads, (c) => c.releaseKey(keyId), echoes, ping)],
      ];
      for (const [name, run] of runs) {
        const { value, baseline, ratio } = await run();
        rows.push({
          id: serviceRowId(name, concurrency, 'ops'),
          unit: 'ops/s',
          value: value.opsPerSec,
          baseline: baseline.opsPerSec,
          ratio: ratio.opsPerSec,
        });
        for (const p of ['p50', 'p99'] as const) {
          rows.push({
            id: serviceRowId(name, concurrency, p),
            unit: 'ms',
            value: value[p],
            baseline: baseline[p],
            ratio: ratio[p],
          });
        }
      }
    }
  } finally {
    for (const c of all) c.close();
    await bench.close();
  }
  return rows;
}
