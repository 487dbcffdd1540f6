/**
 * Load script (issue 9; a script, not a CI test): `npm run load [-- --clients 200 --seconds 60]`.
 *
 * Starts the real host and enclave, opens N attested sessions over WebSocket (admin principal), and has each run a
 * mix of operations (generateDataKey 40 %, encrypt 20 %, decrypt 20 %, generateRandom 10 %, describeKey 10 %) one
 * at a time for the given duration. Prints errors by code (the expectation is zero), ops/s, p50/p99/max latency, and
 * the RSS of the enclave and of this process (client + host) before, at the end, and after the clients closed.
 * Every request loop is bounded by the duration; the script stops by itself and only talks to 127.0.0.1.
 */
import { parseArgs } from 'node:util';
import { connect, type EkmsClient } from '../client/sdk.js';
import { EkmsError } from '../shared/errors.js';
import { startBenchHost } from './bench-host.js';
import { rssKiB } from './process-stats.js';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '60' },
    rounds: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
  },
});
const CLIENTS = Number(values.clients);
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
if (
  !Number.isInteger(CLIENTS) ||
  CLIENTS < 1 ||
  CLIENTS > 1000 ||
  !(SECONDS > 0 && SECONDS <= 3600) ||
  !Number.isInteger(ROUNDS) ||
  ROUNDS < 1 ||
  ROUNDS > 100
) {
  process.stderr.write('usage: --clients 1..1000 --seconds 1..3600 --rounds 1..100\n');
  process.exit(2);
}

const bench = await startBenchHost('ekms-load-');
const { host, principal } = bench;
const options = { trust: host.trust, principal, timeoutMs: 30_000, connectTimeoutMs: 30_000 };
const before = { enclave: rssKiB(host.supervisor.pid), self: process.memoryUsage().rss / 1024 };
const setup = await connect(host.endpoint, options);
const { keyId } = await setup.createKey({ description: 'load' });
const context = { tenant: 'load' };
const sample = await setup.encrypt(keyId, new Uint8Array(64), context);
setup.close();

const errors = new Map<string, number>();
const latencies: number[] = [];
let ops = 0;
const pick = (c: EkmsClient): Promise<unknown> => {
  const r = Math.random();
  if (r < 0.4) return c.generateDataKey(keyId, { encryptionContext: context });
  if (r < 0.6) return c.encrypt(keyId, new Uint8Array(64), context);
  if (r < 0.8) return c.decrypt(sample.ciphertextBlob, context);
  if (r < 0.9) return c.generateRandom(32);
  return c.describeKey(keyId);
};
type Rss = { enclave: number; self: number };
const rss = (): Rss => ({ enclave: rssKiB(host.supervisor.pid), self: process.memoryUsage().rss / 1024 });
let afterConnect: Rss = before;
let atEnd: Rss = before;
let afterClose: Rss = before;
// Enclave RSS after each round's clients closed: a plateau means the growth is heap kept by V8, a steady climb
// round after round means retained garbage (docs/reliability.md).
const afterEachRound: number[] = [];
let seconds = 0;
for (let round = 0; round < ROUNDS; round++) {
  const clients: EkmsClient[] = [];
  for (let i = 0; i < CLIENTS; i++) clients.push(await connect(host.endpoint, options));
  afterConnect = rss();
  const end = performance.now() + SECONDS * 1000;
  const t0 = performance.now();
  await Promise.all(
    clients.map(async (c) => {
      while (performance.now() < end) {
        const s = performance.now();
        try {
          await pick(c);
          latencies.push(performance.now() - s);
          ops++;
        } catch (err) {
          const code = err instanceof EkmsError ? err.code : 'NON_EKMS_ERROR';
          errors.set(code, (errors.get(code) ?? 0) + 1);
        }
      }
    }),
  );
  seconds += (performance.now() - t0) / 1000;
  atEnd = rss();
  for (const c of clients) c.close();
  await new Promise((r) => setTimeout(r, 1000));
  (globalThis as { gc?: () => void }).gc?.();
  afterClose = rss();
  afterEachRound.push(Math.round(afterClose.enclave / 1024));
}
latencies.sort((a, b) => a - b);
const r2 = (n: number): number => Math.round(n * 100) / 100;
const q = (p: number) =>
  latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? Number.NaN;
const report = {
  ok: errors.size === 0,
  clients: CLIENTS,
  seconds: Math.round(seconds * 10) / 10,
  ops,
  opsPerSec: Math.round(ops / seconds),
  latencyMs: { p50: r2(q(0.5)), p99: r2(q(0.99)), max: r2(latencies[latencies.length - 1] ?? Number.NaN) },
  errors: Object.fromEntries(errors),
  rounds: ROUNDS,
  enclaveRssMiBAfterEachRound: afterEachRound,
  rssMiB: Object.fromEntries(
    Object.entries({ before, afterConnect, atEnd, afterClose }).map(([k, v]) => [
      k,
      { enclave: Math.round(v.enclave / 1024), clientAndHost: Math.round(v.self / 1024) },
    ]),
  ),
};
await bench.close();
process.stdout.write(`${JSON.stringify(report, null, values.json ? 0 : 2)}\n`);
process.exit(report.ok ? 0 : 1);
