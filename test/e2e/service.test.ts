/**
 * End to end with real processes: the host (in this test process) spawns the real enclave bundle; clients
 * connect over WebSocket and Unix sockets. No mocks.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { EkmsClient } from '../../client/sdk.js';
import type { Host } from '../../host/host.js';
import { decodeCbor, encodeCbor } from '../../shared/cbor.js';
import { EkmsError } from '../../shared/errors.js';
import { LIMITS } from '../../shared/limits.js';
import { decodeResponse, encodeRequest } from '../../shared/messages.js';
import { connectTo, hostConnectOptions } from '../helpers/connect.js';
import { CLI, REPO, startTestHost } from '../helpers/service.js';

const execFileP = promisify(execFile);

async function rejectionCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof EkmsError) return err.code;
    throw err;
  }
  return 'NO_ERROR';
}

/** A raw WebSocket that records responses, for sending frames the SDK would never send. */
function rawSocket(
  endpoint: string,
): Promise<{ ws: WebSocket; next(): Promise<unknown>; closed: Promise<[number, string]> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(endpoint);
    const queue: unknown[] = [];
    const waiters: Array<(v: unknown) => void> = [];
    const closed = new Promise<[number, string]>((r) =>
      ws.on('close', (c, reason) => r([c, reason.toString()])),
    );
    ws.on('message', (d: Buffer) => {
      const v = decodeCbor(new Uint8Array(d));
      const w = waiters.shift();
      if (w) w(v);
      else queue.push(v);
    });
    ws.on('open', () =>
      resolve({
        ws,
        next: () => (queue.length > 0 ? Promise.resolve(queue.shift()) : new Promise((r) => waiters.push(r))),
        closed,
      }),
    );
    ws.on('error', reject);
  });
}

describe('host + enclave over WebSocket', () => {
  let host: Host;
  beforeAll(async () => {
    host = await startTestHost();
  });
  afterAll(async () => {
    await host.close();
  });

  it('answers health, describe and generateRandom', async () => {
    const client = await connectTo(host);
    try {
      expect((await client.health()).status).toBe('ok');
      const d = await client.describe();
      expect(d.attestor).toBe('sim-nitro');
      expect(d.simulated).toBe(true);
      // The simulated measurement is the SHA-384 of the enclave bundle the host launched.
      const { createHash } = await import('node:crypto');
      const expected = createHash('sha384')
        .update(readFileSync(join(REPO, 'dist/enclave.mjs')))
        .digest('hex');
      expect(d.measurement).toBe(expected);
      const a = await client.generateRandom(32);
      const b = await client.generateRandom(32);
      expect(a).toHaveLength(32);
      expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
      expect(await client.generateRandom(1024)).toHaveLength(1024);
    } finally {
      client.close();
    }
  });

  it('rejects out-of-range and ill-typed generateRandom requests with REQUEST_INVALID', async () => {
    const client = await connectTo(host);
    try {
      for (const length of [0, 1025, -1, 1.5, '32', null]) {
        expect(
          await rejectionCode(client.request('generateRandom', { length })),
          `length ${String(length)}`,
        ).toBe('REQUEST_INVALID');
      }
      expect(await rejectionCode(client.request('generateRandom', { length: 8, extra: 1 }))).toBe(
        'REQUEST_INVALID',
      );
      expect(await rejectionCode(client.request('noSuchOperation'))).toBe('OPERATION_UNKNOWN');
      expect(await rejectionCode(client.request('__proto__'))).toBe('MESSAGE_INVALID');
      expect(await rejectionCode(client.request('constructor'))).toBe('OPERATION_UNKNOWN');
    } finally {
      client.close();
    }
  });

  it('answers a garbage frame with an error and keeps serving that client and others', async () => {
    // Before a session exists the enclave still answers plaintext frames (health and describe only), so this is
    // where a garbage frame can be answered and the connection kept; inside a session a bad record ends it.
    const raw = await rawSocket(host.endpoint);
    const other = await connectTo(host);
    raw.ws.send(Buffer.from([0xff, 0x00, 0x13, 0x37]));
    const r1 = decodeResponse(encodeCbor(await raw.next()));
    expect(r1.ok).toBe(false);
    if (!r1.ok) expect(r1.error.code).toMatch(/^FRAME_/);
    raw.ws.send(encodeCbor({ v: 1, id: 5, op: 'health', params: 'nope' }));
    const r2 = decodeResponse(encodeCbor(await raw.next()));
    expect(r2).toMatchObject({ id: 5, ok: false, error: { code: 'MESSAGE_INVALID' } });
    raw.ws.send(encodeRequest(6, 'health'));
    expect(decodeResponse(encodeCbor(await raw.next()))).toMatchObject({ id: 6, ok: true });
    expect((await other.health()).status).toBe('ok');
    raw.ws.close();
    other.close();
  });

  it('refuses a text frame by closing that connection with MESSAGE_INVALID', async () => {
    const raw = await rawSocket(host.endpoint);
    raw.ws.send('hello');
    const [code, reason] = await raw.closed;
    expect(code).toBe(1003);
    expect(reason).toBe('MESSAGE_INVALID');
  });

  it('closes a connection that sends an oversized frame (FRAME_TOO_LARGE) without harming others', async () => {
    const raw = await rawSocket(host.endpoint);
    const other = await connectTo(host);
    raw.ws.send(new Uint8Array(LIMITS.maxFrameBytes + 1));
    const [code] = await raw.closed;
    expect(code).toBe(1009);
    expect((await other.health()).status).toBe('ok');
    other.close();
    // The SDK refuses to send an oversized request in the first place.
    const c = await connectTo(host);
    expect(await rejectionCode(c.request('health', { pad: new Uint8Array(LIMITS.maxFrameBytes) }))).toBe(
      'REQUEST_INVALID',
    );
    c.close();
  });

  it('serves 50 concurrent clients doing 100 requests each', async () => {
    const clients = await Promise.all(Array.from({ length: 50 }, () => connectTo(host)));
    try {
      const results = await Promise.all(
        clients.map(async (c, i) => {
          let ok = 0;
          for (let j = 0; j < 100; j += 10) {
            const batch = await Promise.all(
              Array.from({ length: 10 }, () => c.generateRandom(1 + ((i + j) % 64))),
            );
            ok += batch.filter((r) => r.length === 1 + ((i + j) % 64)).length;
          }
          return ok;
        }),
      );
      expect(results.reduce((a, b) => a + b, 0)).toBe(5000);
    } finally {
      for (const c of clients) c.close();
    }
  });
});

describe('enclave crash and restart', () => {
  let host: Host;
  beforeAll(async () => {
    host = await startTestHost();
  });
  afterAll(async () => {
    await host.close();
  });

  it('fails in-flight requests with retriable ENCLAVE_UNAVAILABLE on kill -9, restarts, then succeeds', async () => {
    const client = await connectTo(host, { timeoutMs: 5_000 });
    const firstPid = host.supervisor.pid!;
    expect((await client.health()).status).toBe('ok');
    // A stream of requests in flight when the enclave dies.
    const inflight = Array.from({ length: 200 }, () =>
      client.generateRandom(1024).then(
        () => 'ok',
        (e: EkmsError) => e,
      ),
    );
    process.kill(firstPid, 'SIGKILL');
    const outcomes = await Promise.all(inflight);
    const failures = outcomes.filter((o): o is EkmsError => o instanceof EkmsError);
    expect(failures.length).toBeGreaterThan(0);
    for (const f of failures) {
      expect(f.code).toBe('ENCLAVE_UNAVAILABLE');
      expect(f.retriable).toBe(true);
    }
    // The next request reconnects, waiting for the restarted enclave.
    expect((await client.health()).status).toBe('ok');
    expect(host.supervisor.pid).not.toBe(firstPid);
    expect(host.stats().enclaveLaunches).toBe(2);
    client.close();
  });
});

describe('Unix-socket client transport (the vsock code path)', () => {
  let host: Host;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ekms-unix-'));
    host = await startTestHost({ listen: `unix:${join(dir, 'host.sock')}` });
  });
  afterAll(async () => {
    await host.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('relays requests and reports a killed enclave as ENCLAVE_UNAVAILABLE', async () => {
    const client = await connectTo(host);
    expect(host.endpoint.startsWith('unix:')).toBe(true);
    expect(await client.generateRandom(16)).toHaveLength(16);
    const pending = client.request('health', {}, { timeoutMs: 5_000 }).then(
      () => 'ok',
      (e: EkmsError) => e.code,
    );
    const restarted = new Promise((r) => host.supervisor.once('ready', r));
    process.kill(host.supervisor.pid!, 'SIGKILL');
    // Answered before the kill landed, or failed with the retriable code: never a timeout or a hang.
    expect(['ok', 'ENCLAVE_UNAVAILABLE']).toContain(await pending);
    await restarted;
    expect((await client.health()).status).toBe('ok');
    client.close();
  });
});

describe('connection limit', () => {
  it('refuses connections beyond maxConnections with HOST_OVERLOADED', async () => {
    const host = await startTestHost({ maxConnections: 2 });
    try {
      const a = await connectTo(host);
      const b = await connectTo(host);
      await Promise.all([a.health(), b.health()]);
      // The SDK now runs the handshake when it connects; a lazy client keeps the original question: the first
      // request on a refused connection fails with HOST_OVERLOADED.
      const c = new EkmsClient(host.endpoint, hostConnectOptions(host));
      expect(await rejectionCode(c.health())).toBe('HOST_OVERLOADED');
      expect(host.stats().refused).toBe(1);
      a.close();
      b.close();
      c.close();
    } finally {
      await host.close();
    }
  });
});

describe('ekms CLI: start and status', () => {
  it('starts, writes the profile, reports status --json, and stops cleanly on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ekms-cli-'));
    const child = spawn(
      process.execPath,
      [CLI, 'start', '--listen', 'ws://127.0.0.1:0', '--log-level', 'warn'],
      {
        cwd: dir,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    try {
      const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
        let buf = '';
        child.stdout.on('data', (d: Buffer) => {
          buf += d.toString();
          const line = buf.split('\n').find((l) => l.includes('"ready"'));
          if (line) resolve(JSON.parse(line) as Record<string, unknown>);
        });
        child.on('exit', (code) => reject(new Error(`ekms start exited ${code}`)));
      });
      expect(ready['ok']).toBe(true);
      const profile = JSON.parse(readFileSync(join(dir, '.ekms/profile.json'), 'utf8')) as Record<
        string,
        unknown
      >;
      expect(profile['endpoint']).toBe(ready['endpoint']);
      const { stdout } = await execFileP(process.execPath, [CLI, 'status', '--json'], { cwd: dir });
      const status = JSON.parse(stdout) as Record<string, unknown>;
      expect(status).toMatchObject({
        ok: true,
        status: 'ok',
        attestor: 'sim-nitro',
        measurement: ready['measurement'],
      });
      // Same through EKMS_PROFILE from another directory.
      const { stdout: s2 } = await execFileP(process.execPath, [CLI, 'status', '--json'], {
        cwd: tmpdir(),
        env: { ...process.env, EKMS_PROFILE: join(dir, '.ekms/profile.json') },
      });
      expect(JSON.parse(s2)).toMatchObject({ ok: true });
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('status without a profile fails with PROFILE_NOT_FOUND and exit 1; bad usage exits 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ekms-cli-'));
    try {
      const r = await execFileP(process.execPath, [CLI, 'status', '--json'], { cwd: dir }).catch(
        (e: { code: number; stdout: string }) => e,
      );
      expect((r as { code: number }).code).toBe(1);
      expect(JSON.parse((r as { stdout: string }).stdout)).toMatchObject({
        ok: false,
        code: 'PROFILE_NOT_FOUND',
      });
      const u = await execFileP(process.execPath, [CLI, 'status', '--nope', '--json'], { cwd: dir }).catch(
        (e: { code: number; stdout: string }) => e,
      );
      expect((u as { code: number }).code).toBe(2);
      expect(JSON.parse((u as { stdout: string }).stdout)).toMatchObject({ ok: false, code: 'USAGE_ERROR' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('status against a stopped service fails with CONNECTION_FAILED', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ekms-cli-'));
    try {
      const { writeFileSync, mkdirSync } = await import('node:fs');
      mkdirSync(join(dir, '.ekms'));
      writeFileSync(
        join(dir, '.ekms/profile.json'),
        JSON.stringify({
          version: 1,
          endpoint: 'ws://127.0.0.1:9',
          attestor: 'sim-nitro',
          trust: { measurement: 'ab'.repeat(48), roots: [], allowSimulated: true },
          admin: { name: 'admin', publicKey: '00', keyFile: 'admin.key' },
        }),
      );
      const r = await execFileP(process.execPath, [CLI, 'status', '--json'], { cwd: dir }).catch(
        (e: { code: number; stdout: string }) => e,
      );
      expect((r as { code: number }).code).toBe(1);
      expect(JSON.parse((r as { stdout: string }).stdout)).toMatchObject({
        ok: false,
        code: 'CONNECTION_FAILED',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
