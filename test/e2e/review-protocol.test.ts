/**
 * Review: protocol edge cases against the real enclave code — through the host (WebSocket) where the host's relay
 * is part of the question, and against the enclave's request server directly where the test needs to control how
 * frames are chunked on the stream (duplicate ids and the in-flight limit only show within one read).
 *
 * The raw WebSocket tests speak before any session exists, where the enclave still answers health (and names
 * unknown operations); the in-process tests run inside a real attested session (the requests they need,
 * generateRandom included, are answered only there: SESSION_REQUIRED outside), writing the sealed records in one
 * write.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createSimulatedNitroCa } from '../../attestation/simulated/index.js';
import type { EnclaveTrust } from '../../client/session.js';
import { simulatedAttestor } from '../../enclave/attestor/attestor.js';
import { adminOnly } from '../../enclave/kms/authorizer.js';
import { PrincipalRegistry } from '../../enclave/principals.js';
import { type EnclaveServer, startEnclaveServer } from '../../enclave/server.js';
import { EnclaveIdentity } from '../../enclave/session.js';
import type { Host } from '../../host/host.js';
import { decodeCbor, encodeCbor } from '../../shared/cbor.js';
import { encodeStreamFrame } from '../../shared/frame.js';
import { LIMITS } from '../../shared/limits.js';
import { encodeRequest } from '../../shared/messages.js';
import { rawStreamSession } from '../helpers/connect.js';
import { startTestHost } from '../helpers/service.js';

type Reply = {
  v: number;
  id: number | null;
  ok: boolean;
  result?: Record<string, unknown>;
  error?: { code: string };
};

const hex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
const text = (t: string): string =>
  (0x60 + Buffer.byteLength(t)).toString(16) + Buffer.from(t).toString('hex');

/** A raw WebSocket client: send frames, await replies in order. */
async function rawWs(endpoint: string): Promise<{ ws: WebSocket; next(): Promise<Reply> }> {
  const ws = new WebSocket(endpoint);
  const queue: Reply[] = [];
  const waiters: Array<(r: Reply) => void> = [];
  ws.on('message', (d: Buffer) => {
    const r = decodeCbor(new Uint8Array(d)) as Reply;
    const w = waiters.shift();
    if (w) w(r);
    else queue.push(r);
  });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return {
    ws,
    next: () => (queue.length > 0 ? Promise.resolve(queue.shift()!) : new Promise((r) => waiters.push(r))),
  };
}

describe('protocol edge cases through the host', () => {
  let host: Host;
  beforeAll(async () => {
    host = await startTestHost();
  });
  afterAll(async () => {
    await host.close();
  });

  it('answers operations named after Object.prototype members with OPERATION_UNKNOWN', async () => {
    const c = await rawWs(host.endpoint);
    const ops = [
      'constructor',
      'hasOwnProperty',
      'toString',
      'valueOf',
      'isPrototypeOf',
      'propertyIsEnumerable',
    ];
    for (const [i, op] of ops.entries()) {
      c.ws.send(encodeRequest(i + 1, op));
      expect(await c.next(), op).toMatchObject({
        id: i + 1,
        ok: false,
        error: { code: 'OPERATION_UNKNOWN' },
      });
    }
    c.ws.send(encodeCbor({ v: 1, id: 99, op: '__defineGetter__' }));
    expect(await c.next()).toMatchObject({ id: 99, ok: false, error: { code: 'MESSAGE_INVALID' } });
    c.ws.close();
  });

  it('echoes id 0 and 2^53 − 1 (sent as a CBOR uint64) and refuses 2^53 with id null', async () => {
    const c = await rawWs(host.endpoint);
    c.ws.send(encodeRequest(0, 'health'));
    expect(await c.next()).toMatchObject({ id: 0, ok: true });
    const req = (idHex: string) =>
      hex(`a3 ${text('v')} 01 ${text('id')} ${idHex} ${text('op')} ${text('health')}`);
    c.ws.send(req('1b 001fffffffffffff'));
    const big = await c.next();
    expect(big).toMatchObject({ ok: true });
    expect(BigInt(big.id as number | bigint)).toBe(BigInt(Number.MAX_SAFE_INTEGER));
    c.ws.send(req('1b 0020000000000000'));
    expect(await c.next()).toMatchObject({ id: null, ok: false, error: { code: 'MESSAGE_INVALID' } });
    c.ws.close();
  });

  it('answers tagged values, duplicate keys and __proto__ keys with FRAME_MALFORMED and id null, then serves on', async () => {
    const c = await rawWs(host.endpoint);
    const bad = [
      hex(`a3 ${text('v')} 01 ${text('id')} c1 1a5e0be100 ${text('op')} ${text('health')}`), // Date tag as id
      hex(`a4 ${text('v')} 01 ${text('id')} 07 ${text('op')} ${text('health')} ${text('id')} 08`),
      hex(
        `a4 ${text('v')} 01 ${text('id')} 07 ${text('op')} ${text('health')} ${text('params')} a1 ${text('__proto__')} a0`,
      ),
    ];
    for (const frame of bad) {
      c.ws.send(frame);
      expect(await c.next()).toMatchObject({ id: null, ok: false, error: { code: 'FRAME_MALFORMED' } });
    }
    c.ws.send(encodeRequest(8, 'health'));
    expect(await c.next()).toMatchObject({ id: 8, ok: true });
    c.ws.close();
  });

  it('refuses a params map above the entry limit (FRAME_LIMIT_EXCEEDED) and one at the limit (REQUEST_INVALID)', async () => {
    const c = await rawWs(host.endpoint);
    const params = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]));
    c.ws.send(encodeRequest(1, 'health', params(LIMITS.maxCborMapEntries)));
    expect(await c.next()).toMatchObject({ id: 1, ok: false, error: { code: 'REQUEST_INVALID' } });
    c.ws.send(encodeRequest(2, 'health', params(LIMITS.maxCborMapEntries + 1)));
    expect(await c.next()).toMatchObject({ id: null, ok: false, error: { code: 'FRAME_LIMIT_EXCEEDED' } });
    c.ws.close();
  });
});

describe("the enclave's request server (in-process, real code, one stream)", () => {
  let server: EnclaveServer;
  let dir: string;
  let path: string;
  let trust: EnclaveTrust;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ekms-review-enclave-'));
    path = join(dir, 'enclave.sock');
    const ca = await createSimulatedNitroCa({ now: new Date() });
    const measurement = 'ab'.repeat(48);
    const attestor = simulatedAttestor('sim-nitro', measurement, ca);
    trust = { measurement, roots: [ca.certificates[0]], allowSimulated: true };
    server = await startEnclaveServer({
      socketPath: path,
      logger: pino({ level: 'silent' }),
      context: {
        attestor,
        now: () => Date.now(),
        startedAt: Date.now(),
        keystore: undefined,
        authorizer: adminOnly,
        rootKeySource: null,
        identity: new EnclaveIdentity(attestor, Date.now),
        principals: new PrincipalRegistry([]),
      },
    });
  });
  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Opens a session, writes `frames` sealed as records in one write and collects `expected` replies. */
  async function exchange(frames: Uint8Array[], expected: number): Promise<Reply[]> {
    const { socket, session, decoder } = await rawStreamSession(path, trust);
    const replies: Reply[] = [];
    const done = new Promise<void>((resolve) => {
      socket.on('data', (chunk: Buffer) => {
        for (const f of decoder.push(chunk)) replies.push(decodeCbor(session.receive.open(f)) as Reply);
        if (replies.length >= expected) resolve();
      });
    });
    socket.resume();
    socket.write(Buffer.concat(frames.map((f) => encodeStreamFrame(session.send.seal(f)))));
    await done;
    socket.destroy();
    return replies;
  }

  it('answers a second request with an id in flight with REQUEST_DUPLICATE_ID and id null', async () => {
    const replies = await exchange(
      [encodeRequest(7, 'generateRandom', { length: 4 }), encodeRequest(7, 'health')],
      2,
    );
    expect(replies).toContainEqual(expect.objectContaining({ id: 7, ok: true }));
    expect(replies).toContainEqual(
      expect.objectContaining({
        id: null,
        ok: false,
        error: expect.objectContaining({ code: 'REQUEST_DUPLICATE_ID' }),
      }),
    );
  });

  it('refuses requests beyond the in-flight limit with TOO_MANY_IN_FLIGHT and answers every request once', async () => {
    const n = LIMITS.maxInFlightPerConnection + 44;
    const replies = await exchange(
      Array.from({ length: n }, (_, i) => encodeRequest(i + 1, 'health')),
      n,
    );
    expect(replies).toHaveLength(n);
    expect(new Set(replies.map((r) => r.id)).size).toBe(n);
    const refused = replies.filter((r) => !r.ok);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.length).toBeLessThanOrEqual(44);
    for (const r of refused) expect(r.error?.code).toBe('TOO_MANY_IN_FLIGHT');
  });
});
