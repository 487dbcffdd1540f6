/**
 * `npm run cpu-split [-- --clients 64 --seconds 3 --rounds 3 --ops echo,generateDataKey]`: where a request's CPU
 * goes, per process and per thread (docs/performance.md, "The service through the host").
 *
 * Starts the host like the service benchmark (this process: clients + host; a child: the enclave), opens N attested
 * sessions and N raw WebSocket echo connections, then runs the operations in alternating slices (each client one
 * request at a time). For each slice it reads `/proc/<pid>/task/<tid>/stat` before and after and prints, per request,
 * the CPU of each process's main thread and of its other threads (V8's GC helpers, libuv's pool), with ops/s, p50 and
 * the p50 ratio to the echo slice of the same round. Linux only (it reads /proc). Timing is printed, never asserted.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { connect } from '../client/sdk.js';
import { rawEcho, startBenchHost } from './bench-host.js';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '64' },
    seconds: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    ops: { type: 'string', default: 'echo,generateDataKey' },
  },
});
const CLIENTS = Number(values.clients);
const SLICE_MS = Number(values.seconds) * 1000;
const ROUNDS = Number(values.rounds);
const OPS = String(values.ops).split(',');
for (const [name, v] of [
  ['--clients', CLIENTS],
  ['--seconds', SLICE_MS],
  ['--rounds', ROUNDS],
] as const) {
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number`);
}

/** Clock ticks per second of /proc's utime and stime (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

interface ThreadCpu {
  readonly main: number;
  readonly other: number;
}

/** CPU microseconds used so far by a process's main thread and by its other threads. */
function cpuOf(pid: number): ThreadCpu {
  let main = 0;
  let other = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const us = ((Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND) * 1e6;
    if (Number(tid) === pid) main += us;
    else other += us;
  }
  return { main, other };
}

interface SliceResult {
  readonly opsPerSec: number;
  readonly p50: number;
  /** CPU µs per request: this process (clients + host) main / other threads, the enclave main / other. */
  readonly hostMain: number;
  readonly hostOther: number;
  readonly enclaveMain: number;
  readonly enclaveOther: number;
}

const bench = await startBenchHost('ekms-cpu-split-');
const { host, principal } = bench;
const clients: Array<{ close(): void }> = [];
try {
  const enclavePid = host.supervisor.pid;
  if (enclavePid === undefined) throw new Error('the enclave is not running');
  const options = { trust: host.trust, principal, timeoutMs: 30_000 };
  const admin = await connect(host.endpoint, options);
  clients.push(admin);
  const { keyId } = await admin.createKey({ description: 'cpu-split' });
  const context = { tenant: 'bench' };
  const sample = await admin.encrypt(keyId, new Uint8Array(32), context);
  const sessions = await Promise.all(Array.from({ length: CLIENTS }, () => connect(host.endpoint, options)));
  clients.push(...sessions);
  const echoes = await Promise.all(Array.from({ length: CLIENTS }, () => rawEcho(host.endpoint)));
  clients.push(...echoes);
  const table: Record<string, (i: number) => Promise<unknown>> = {
    echo: (i) => echoes[i]!.ping(),
    generateDataKey: (i) => sessions[i]!.generateDataKey(keyId, { encryptionContext: context }),
    encrypt: (i) => sessions[i]!.encrypt(keyId, new Uint8Array(32), context),
    decrypt: (i) => sessions[i]!.decrypt(sample.ciphertextBlob, context),
  };
  const unknown = OPS.filter((op) => !Object.hasOwn(table, op));
  if (unknown.length > 0)
    throw new Error(`unknown op(s) ${unknown.join(', ')}: one of ${Object.keys(table).join(', ')}`);

  const slice = async (op: string, ms: number): Promise<SliceResult> => {
    const run = table[op]!;
    const latencies: number[] = [];
    const end = performance.now() + ms;
    const h0 = cpuOf(process.pid);
    const e0 = cpuOf(enclavePid);
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, i) => {
        while (performance.now() < end) {
          const s = performance.now();
          await run(i);
          latencies.push(performance.now() - s);
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const h1 = cpuOf(process.pid);
    const e1 = cpuOf(enclavePid);
    latencies.sort((a, b) => a - b);
    const n = latencies.length;
    return {
      opsPerSec: n / seconds,
      p50: latencies[Math.floor(n / 2)] ?? Number.NaN,
      hostMain: (h1.main - h0.main) / n,
      hostOther: (h1.other - h0.other) / n,
      enclaveMain: (e1.main - e0.main) / n,
      enclaveOther: (e1.other - e0.other) / n,
    };
  };

  for (const op of OPS) await slice(op, 1000); // warm-up
  const results = new Map<string, SliceResult[]>(OPS.map((op) => [op, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const op of OPS) results.get(op)!.push(await slice(op, SLICE_MS));
  }
  const median = (xs: number[]): number =>
    [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
  const echo = results.get('echo');
  process.stdout.write(
    `${CLIENTS} clients, ${ROUNDS} rounds of ${SLICE_MS / 1000} s; CPU µs per request (medians over rounds)\n`,
  );
  process.stdout.write(
    'op                ops/s   p50 ms  p50/echo per round   client+host main/other   enclave main/other\n',
  );
  for (const [op, rs] of results) {
    const ratios = echo === undefined ? [] : rs.map((r, i) => (r.p50 / echo[i]!.p50).toFixed(2));
    const pick = (f: (r: SliceResult) => number): string => median(rs.map(f)).toFixed(0);
    process.stdout.write(
      `${op.padEnd(16)} ${pick((r) => r.opsPerSec).padStart(6)} ${median(rs.map((r) => r.p50))
        .toFixed(2)
        .padStart(
          8,
        )}  ${(ratios.join('/') || '—').padEnd(19)} ${`${pick((r) => r.hostMain)} / ${pick((r) => r.hostOther)}`.padStart(22)}   ${`${pick((r) => r.enclaveMain)} / ${pick((r) => r.enclaveOther)}`.padStart(18)}\n`,
    );
  }
} finally {
  for (const c of clients) c.close();
  await bench.close();
}
