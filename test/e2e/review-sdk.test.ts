/**
 * Review: client SDK robustness. Against the real host and enclave where they can produce the situation; against a
 * hostile peer (a bare WebSocket server standing in for a misbehaving host, which design §1 treats as an
 * adversary) for responses the real enclave never sends: unknown ids, duplicates, answers after a timeout.
 *
 * Every connection is now an attested session: the real host is reached with its trust and admin key
 * (test/helpers/connect.ts), and the hostile peer holds a real session (test/helpers/fake-enclave.ts), so its
 * misbehaviour happens inside records, where only an enclave identity could put it.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, EkmsClient } from '../../client/sdk.js';
import type { Host } from '../../host/host.js';
import { encodeCbor } from '../../shared/cbor.js';
import { EkmsError } from '../../shared/errors.js';
import { LIMITS } from '../../shared/limits.js';
import { encodeError, encodeOk } from '../../shared/messages.js';
import { connectTo, hostConnectOptions } from '../helpers/connect.js';
import { type FakeBehaviour, type FakeEnclave, startFakeEnclave } from '../helpers/fake-enclave.js';
import { codeOf } from '../helpers/outcome.js';
import { startTestHost } from '../helpers/service.js';

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
    const client = new EkmsClient(host.endpoint, hostConnectOptions(host));
    const opening = client.open();
    client.close();
    expect(await codeOf(opening)).toBe('CONNECTION_CLOSED');
    expect(await codeOf(client.health())).toBe('CONNECTION_CLOSED');
    await waitFor(() => host.stats().connectionsTotal > before, 2_000, 'the host to see the connection');
    await waitFor(() => host.stats().connections === 0, 3_000, 'the connection to be closed');
  });

  it('close() fails requests in flight at once with CONNECTION_CLOSED, even while the host holds them', async () => {
    const client = await connectTo(host, { timeoutMs: 10_000 });
    expect((await client.health()).status).toBe('ok');
    // Kill the enclave: the host ends the connection, and holds the next one until a restarted enclave answers
    // (backoff 1.5 s).
    process.kill(host.supervisor.pid!, 'SIGKILL');
    await waitFor(() => host.supervisor.state === 'backoff', 5_000, 'the backoff');
    await waitFor(() => host.stats().connections === 0, 3_000, 'the old connection to end');
    const before = host.stats().connectionsTotal;
    const held = codeOf(client.health());
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
    const client = await connectTo(host, { timeoutMs: 5_000 });
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
      expect(await codeOf(client.request('health', params)), what).toBe('REQUEST_INVALID');
      expect(Date.now() - t0, what).toBeLessThan(1_000);
    }
    expect((await client.health()).status).toBe('ok');
    client.close();
  });

  it('a burst of requests after the connection ended opens exactly one new connection', async () => {
    const client = await connectTo(host);
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
      // Any trust will do: the connection fails before a handshake could check it.
      const trust = { measurement: '00'.repeat(48), roots: [], allowSimulated: false };
      const client = new EkmsClient(`ws://127.0.0.1:${port}`, { trust, connectTimeoutMs: 2_000 });
      const codes = await Promise.all(Array.from({ length: 200 }, () => codeOf(client.health())));
      expect(new Set(codes)).toEqual(new Set(['CONNECTION_FAILED']));
      expect(accepted).toBe(1);
      client.close();
    } finally {
      server.close();
    }
  });
});

describe('SDK against a hostile peer', () => {
  let peer: FakeEnclave;
  /**
   * What the peer does with each request: `send` seals a response into the session (possibly later), `sendRaw`
   * sends a frame outside it.
   */
  let behave: FakeBehaviour;
  const connectPeer = (options: { timeoutMs?: number } = {}) =>
    connect(peer.endpoint, { trust: peer.trust, ...options });
  beforeAll(async () => {
    peer = await startFakeEnclave((req, send, sendRaw) => behave(req, send, sendRaw));
  });
  afterAll(async () => {
    await peer.close();
  });

  it('ignores responses with unknown ids, duplicates and garbage, and matches the right one', async () => {
    behave = (req, send) => {
      send(encodeOk(req.id + 1000, { status: 'wrong id' }));
      send(Uint8Array.from([0xff, 0xfe])); // garbage inside an authentic record
      send(encodeCbor({ v: 1, id: req.id, ok: 'yes' }));
      send(encodeError(null, new EkmsError('FRAME_MALFORMED', 'not retriable: not a closing notice')));
      send(encodeOk(req.id, { status: 'ok', uptimeMs: 1 }));
      send(encodeOk(req.id, { status: 'duplicate', uptimeMs: 2 }));
    };
    const client = await connectPeer();
    expect(await client.health()).toEqual({ status: 'ok', uptimeMs: 1 });
    expect(await client.health()).toEqual({ status: 'ok', uptimeMs: 1 });
    client.close();
  });

  it('a response that arrives after the timeout is dropped and does not disturb later requests', async () => {
    behave = (req, send) => {
      if (req.op === 'slow') setTimeout(() => send(encodeOk(req.id, { late: true })), 300);
      else send(encodeOk(req.id, { status: 'ok', uptimeMs: 3 }));
    };
    const client = await connectPeer();
    expect(await codeOf(client.request('slow', {}, { timeoutMs: 100 }))).toBe('REQUEST_TIMEOUT');
    await new Promise((r) => setTimeout(r, 400));
    expect(await client.health()).toEqual({ status: 'ok', uptimeMs: 3 });
    client.close();
  });

  it('a retriable notice with id null ends the connection: in-flight requests fail with its code', async () => {
    // The notice comes from the host in plaintext (outside the session, which the host cannot write into) or
    // from the enclave inside it; either ends the connection, and the next request opens a new session.
    for (const via of ['host (plaintext)', 'enclave (sealed)'] as const) {
      behave = (_req, send, sendRaw) => {
        const notice = encodeError(null, new EkmsError('ENCLAVE_UNAVAILABLE', 'going away'));
        if (via === 'host (plaintext)') sendRaw(notice);
        else send(notice);
      };
      const client = await connectPeer();
      const before = peer.sessions();
      expect(await codeOf(client.health()), via).toBe('ENCLAVE_UNAVAILABLE');
      behave = (req, send) => send(encodeOk(req.id, { status: 'ok', uptimeMs: 4 }));
      expect(await client.health(), via).toEqual({ status: 'ok', uptimeMs: 4 });
      expect(peer.sessions() - before, via).toBe(1);
      client.close();
    }
  });

  it('a plaintext frame that is not a retriable notice ends the session (SESSION_RECORD_INVALID)', async () => {
    // Inside a session a peer cannot inject plaintext answers: anything that does not open as the next record,
    // other than the host's closing notice, ends the session instead of being matched to a request.
    behave = (req, _send, sendRaw) => sendRaw(encodeOk(req.id, { status: 'forged', uptimeMs: 5 }));
    const client = await connectPeer();
    expect(await codeOf(client.health())).toBe('SESSION_RECORD_INVALID');
    client.close();
  });

  it('close() during an unanswered request fails it at once with CONNECTION_CLOSED', async () => {
    behave = () => {};
    const client = await connectPeer({ timeoutMs: 10_000 });
    const pending = codeOf(client.health());
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    client.close();
    expect(await pending).toBe('CONNECTION_CLOSED');
    expect(Date.now() - t0).toBeLessThan(500);
  });
});
