/**
 * Review: client SDK robustness. Against the real host and enclave where they can produce the situation; against a
 * hostile peer (a bare WebSocket server standing in for a misbehaving host, which design §1 treats as an
 * adversary) for responses the real enclave never sends: unknown ids, duplicates, answers after a timeout.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { connect, EkmsClient } from '../../client/sdk.js';
import type { Host } from '../../host/host.js';
import { decodeCbor, encodeCbor } from '../../shared/cbor.js';
import { EkmsError } from '../../shared/errors.js';
import { LIMITS } from '../../shared/limits.js';
import { encodeError, encodeOk } from '../../shared/messages.js';
import { startTestHost } from '../helpers/service.js';

async function rejectionCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof EkmsError) return err.code;
    throw err;
  }
  return 'NO_ERROR';
}

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('SDK against the real host and enclave', () => {
  let host: Host;
  beforeAll(async () => {
    host = await startTestHost({ initialBackoffMs: 1_500 });
  });
  afterAll(async () => {
    await host.close();
  });

  it('close() while connecting leaves no connection open and fails the open with CONNECTION_CLOSED', async () => {
    const before = host.stats().connectionsTotal;
    const client = new EkmsClient(host.endpoint);
    const opening = client.open();
    client.close();
    expect(await rejectionCode(opening)).toBe('CONNECTION_CLOSED');
    expect(await rejectionCode(client.health())).toBe('CONNECTION_CLOSED');
    await waitFor(() => host.stats().connectionsTotal > before, 2_000, 'the host to see the connection');
    await waitFor(() => host.stats().connections === 0, 3_000, 'the connection to be closed');
  });

  it('close() fails requests in flight at once with CONNECTION_CLOSED, even while the host holds them', async () => {
    const client = await connect(host.endpoint, { timeoutMs: 10_000 });
    expect((await client.health()).status).toBe('ok');
    // Kill the enclave: the host ends the connection, and holds the next one until a restarted enclave answers
    // (backoff 1.5 s).
    process.kill(host.supervisor.pid!, 'SIGKILL');
    await waitFor(() => host.supervisor.state === 'backoff', 5_000, 'the backoff');
    await waitFor(() => host.stats().connections === 0, 3_000, 'the old connection to end');
    const before = host.stats().connectionsTotal;
    const held = rejectionCode(client.health());
    await waitFor(() => host.stats().connectionsTotal > before, 2_000, 'the new connection');
    await new Promise((r) => setTimeout(r, 100));
    expect(host.supervisor.state).toBe('backoff');
    const t0 = Date.now();
    client.close();
    expect(await held).toBe('CONNECTION_CLOSED');
    expect(Date.now() - t0).toBeLessThan(500);
    await waitFor(() => host.supervisor.state === 'ready', 10_000, 'the restart');
  });

  it('refuses at once (REQUEST_INVALID) params the enclave could only answer with id null, instead of timing out', async () => {
    const client = await connect(host.endpoint, { timeoutMs: 5_000 });
    const circular: Record<string, unknown> = {};
    circular['self'] = circular;
    const cases: Array<[string, Record<string, unknown>]> = [
      ['a Date (cbor-x writes tag 1)', { when: new Date(0) }],
      ['a Set (tag 258)', { ids: new Set([1]) }],
      ['a bigint beyond 64 bits (tag 2)', { n: 2n ** 70n }],
      ['a Map with integer keys', { m: new Map([[1, 2]]) }],
      ['a function', { f: () => 1 }],
      ['a circular object', circular],
      [
        'nesting deeper than the limit',
        JSON.parse(`${'{"a":'.repeat(LIMITS.maxCborDepth)}1${'}'.repeat(LIMITS.maxCborDepth)}`),
      ],
    ];
    for (const [what, params] of cases) {
      const t0 = Date.now();
      expect(await rejectionCode(client.request('health', params)), what).toBe('REQUEST_INVALID');
      expect(Date.now() - t0, what).toBeLessThan(1_000);
    }
    expect((await client.health()).status).toBe('ok');
    client.close();
  });

  it('a burst of requests after the connection ended opens exactly one new connection', async () => {
    const client = await connect(host.endpoint);
    await client.health();
    const restarted = new Promise((r) => host.supervisor.once('ready', r));
    process.kill(host.supervisor.pid!, 'SIGKILL');
    await restarted;
    // The old connection ended with ENCLAVE_UNAVAILABLE; the next burst shares one reconnect.
    await waitFor(() => host.stats().connections === 0, 3_000, 'the old connection to end');
    const before = host.stats().connectionsTotal;
    const results = await Promise.all(Array.from({ length: 100 }, () => client.generateRandom(8)));
    expect(results.every((r) => r.length === 8)).toBe(true);
    expect(host.stats().connectionsTotal - before).toBe(1);
    client.close();
  });
});

describe('SDK against an endpoint that refuses connections', () => {
  it('concurrent requests share one connection attempt and fail with CONNECTION_FAILED', async () => {
    let accepted = 0;
    const server = net.createServer((s) => {
      accepted += 1;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const client = new EkmsClient(`ws://127.0.0.1:${port}`, { connectTimeoutMs: 2_000 });
      const codes = await Promise.all(Array.from({ length: 200 }, () => rejectionCode(client.health())));
      expect(new Set(codes)).toEqual(new Set(['CONNECTION_FAILED']));
      expect(accepted).toBe(1);
      client.close();
    } finally {
      server.close();
    }
  });
});

describe('SDK against a hostile peer', () => {
  let wss: WebSocketServer;
  let endpoint: string;
  /** What the peer does with each request: returns the frames to send back (possibly later). */
  let behave: (req: { id: number; op: string }, send: (frame: Uint8Array) => void) => void;
  beforeAll(async () => {
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    endpoint = `ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}`;
    wss.on('connection', (ws) => {
      ws.on('message', (d: Buffer) => {
        const req = decodeCbor(new Uint8Array(d)) as { id: number; op: string };
        behave(req, (f) => ws.send(f));
      });
    });
  });
  afterAll(async () => {
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((r) => wss.close(() => r()));
  });

  it('ignores responses with unknown ids, duplicates and garbage, and matches the right one', async () => {
    behave = (req, send) => {
      send(encodeOk(req.id + 1000, { status: 'wrong id' }));
      send(Uint8Array.from([0xff, 0xfe]));
      send(encodeCbor({ v: 1, id: req.id, ok: 'yes' }));
      send(encodeError(null, new EkmsError('FRAME_MALFORMED', 'not retriable: not a closing notice')));
      send(encodeOk(req.id, { status: 'ok', uptimeMs: 1 }));
      send(encodeOk(req.id, { status: 'duplicate', uptimeMs: 2 }));
    };
    const client = await connect(endpoint);
    expect(await client.health()).toEqual({ status: 'ok', uptimeMs: 1 });
    expect(await client.health()).toEqual({ status: 'ok', uptimeMs: 1 });
    client.close();
  });

  it('a response that arrives after the timeout is dropped and does not disturb later requests', async () => {
    behave = (req, send) => {
      if (req.op === 'slow') setTimeout(() => send(encodeOk(req.id, { late: true })), 300);
      else send(encodeOk(req.id, { status: 'ok', uptimeMs: 3 }));
    };
    const client = await connect(endpoint);
    expect(await rejectionCode(client.request('slow', {}, { timeoutMs: 100 }))).toBe('REQUEST_TIMEOUT');
    await new Promise((r) => setTimeout(r, 400));
    expect(await client.health()).toEqual({ status: 'ok', uptimeMs: 3 });
    client.close();
  });

  it('a retriable notice with id null ends the connection: in-flight requests fail with its code', async () => {
    behave = (_req, send) => {
      send(encodeError(null, new EkmsError('ENCLAVE_UNAVAILABLE', 'going away')));
    };
    const client = await connect(endpoint);
    expect(await rejectionCode(client.health())).toBe('ENCLAVE_UNAVAILABLE');
    behave = (req, send) => send(encodeOk(req.id, { status: 'ok', uptimeMs: 4 }));
    expect(await client.health()).toEqual({ status: 'ok', uptimeMs: 4 });
    client.close();
  });

  it('close() during an unanswered request fails it at once with CONNECTION_CLOSED', async () => {
    behave = () => {};
    const client = await connect(endpoint, { timeoutMs: 10_000 });
    const pending = rejectionCode(client.health());
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    client.close();
    expect(await pending).toBe('CONNECTION_CLOSED');
    expect(Date.now() - t0).toBeLessThan(500);
  });
});
