/**
 * The service as the benchmark scripts run it (bench/kms-service.ts, bench/load.ts, bench/cpu-split.ts): a host in
 * this process on an ephemeral WebSocket port, the simulated Nitro enclave from dist/enclave.mjs (or
 * EKMS_ENCLAVE_BUNDLE) as its child, a fresh state directory and a fresh Ed25519 admin principal; and the raw echo
 * baseline, a plain WebSocket sending `health` frames through the same host.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pino from 'pino';
import WebSocket from 'ws';
import { type Host, startHost } from '../host/host.js';
import { decodeCbor } from '../shared/cbor.js';
import { encodeRequest } from '../shared/messages.js';

export interface BenchHost {
  readonly host: Host;
  /** The admin principal the enclave was started with. */
  readonly principal: { readonly publicKey: Uint8Array; readonly privateKey: KeyObject };
  /** The state directory (the simulated CA file is `sim-ca.json` in it). */
  readonly dir: string;
  /** Stops the host and the enclave and removes the state directory. */
  close(): Promise<void>;
}

export async function startBenchHost(prefix: string): Promise<BenchHost> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const keys = generateKeyPairSync('ed25519');
  const principal = {
    publicKey: new Uint8Array(keys.publicKey.export({ type: 'spki', format: 'der' })),
    privateKey: keys.privateKey,
  };
  const host = await startHost({
    simulatedCaFile: join(dir, 'sim-ca.json'),
    adminPublicKey: principal.publicKey,
    listen: 'ws://127.0.0.1:0',
    enclaveEntry: resolve(process.env['EKMS_ENCLAVE_BUNDLE'] ?? 'dist/enclave.mjs'),
    attestor: 'sim-nitro',
    logger: pino({ level: 'silent' }),
    enclaveLogLevel: 'error',
    stateDir: join(dir, 'state'),
  });
  return {
    host,
    principal,
    dir,
    close: async () => {
      await host.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A raw WebSocket through the host, sending plaintext `health` requests one at a time (the echo baseline). */
export async function rawEcho(endpoint: string): Promise<{ ping(): Promise<void>; close(): void }> {
  const ws = new WebSocket(endpoint, { perMessageDeflate: false });
  await new Promise((r, j) => {
    ws.once('open', r);
    ws.once('error', j);
  });
  let id = 1;
  let waiting: (() => void) | undefined;
  ws.on('message', (d: Buffer) => {
    decodeCbor(new Uint8Array(d));
    waiting?.();
  });
  return {
    ping: () =>
      new Promise<void>((r) => {
        waiting = r;
        ws.send(encodeRequest(id++, 'health'));
      }),
    close: () => ws.close(),
  };
}
