/**
 * Review: host robustness with real processes. A host that crashes must show up as a process exit, so most tests
 * run `ekms start` as its own OS process; the rest use the in-process host of test/helpers/service.ts.
 *
 * Every connection is now an attested session, and the enclave answers generateRandom only inside one: the
 * clients that pipeline requests without reading (or reset, or half-close) first run the handshake by hand
 * (test/helpers/connect.ts) and then write sealed records, so the responses are as large as before (1 KiB each,
 * plus the record tag) and the host's relay faces the same load.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { EkmsClient } from '../../client/sdk.js';
import type { ClientSession } from '../../client/session.js';
import type { Host } from '../../host/host.js';
import { decodeCbor } from '../../shared/cbor.js';
import type { EkmsError } from '../../shared/errors.js';
import { encodeStreamFrame } from '../../shared/frame.js';
import { encodeRequest } from '../../shared/messages.js';
import {
  connectProfile,
  connectTo,
  hostConnectOptions,
  profileConnect,
  rawStreamSession,
  rawWsSession,
} from '../helpers/connect.js';
import { codeOf } from '../helpers/outcome.js';
import { CLI, startTestHost } from '../helpers/service.js';

interface StartedService {
  readonly child: ChildProcessWithoutNullStreams;
  readonly ready: Record<string, unknown>;
  readonly logLines: string[];
  readonly exited: Promise<number | null>;
  enclavePids(): number[];
}

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const started: StartedService[] = [];
const dirs: string[] = [];

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ekms-review-'));
  dirs.push(d);
  return d;
}

async function spawnStart(
  cwd: string,
  args: readonly string[],
  opts: { shellPrefix?: string; waitReady?: boolean } = {},
): Promise<StartedService> {
  const argv = [CLI, 'start', '--log-level', 'info', ...args];
  const child =
    opts.shellPrefix === undefined
      ? spawn(process.execPath, argv, { cwd, stdio: ['pipe', 'pipe', 'pipe'] })
      : spawn('sh', ['-c', `${opts.shellPrefix} exec "$0" "$@"`, process.execPath, ...argv], {
          cwd,
          stdio: ['pipe', 'pipe', 'pipe'],
        });
  const logLines: string[] = [];
  let errBuf = '';
  child.stderr.on('data', (d: Buffer) => {
    errBuf += d.toString();
    const parts = errBuf.split('\n');
    errBuf = parts.pop() ?? '';
    logLines.push(...parts);
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const enclavePids = (): number[] =>
    logLines.flatMap((l) => {
      try {
        const o = JSON.parse(l) as { msg?: string; pid?: number };
        return o.msg === 'enclave starting' && typeof o.pid === 'number' ? [o.pid] : [];
      } catch {
        return [];
      }
    });
  const svc = { child, ready: {} as Record<string, unknown>, logLines, exited, enclavePids };
  started.push(svc);
  if (opts.waitReady === false) return svc;
  svc.ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const line = buf.split('\n').find((l) => l.includes('"ready"'));
      if (line) resolve(JSON.parse(line) as Record<string, unknown>);
    });
    void exited.then((code) =>
      reject(new Error(`ekms start exited ${code} before ready:\n${logLines.join('\n')}${errBuf}`)),
    );
  });
  return svc;
}

afterEach(async () => {
  for (const s of started.splice(0)) {
    s.child.kill('SIGKILL');
    for (const pid of s.enclavePids()) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** `n` generateRandom requests sealed as the session's next records, one after the other. */
function sealedRequests(session: ClientSession, n: number, length = 1024): Uint8Array[] {
  return Array.from({ length: n }, (_, i) =>
    session.send.seal(encodeRequest(i + 1, 'generateRandom', { length })),
  );
}

/** The same, stream-framed for a Unix socket. */
function requests(session: ClientSession, n: number, length = 1024): Buffer {
  return Buffer.concat(sealedRequests(session, n, length).map((r) => encodeStreamFrame(r)));
}

describe('host crash paths (ekms start as its own process)', () => {
  it('survives a Unix-socket client that half-closes right after sending requests', async () => {
    const dir = tempDir();
    const svc = await spawnStart(dir, ['--listen', `unix:${join(dir, 'h.sock')}`]);
    const { trust } = profileConnect(svc.ready['profile'] as string);
    for (let round = 0; round < 5; round++) {
      const { socket: s, session } = await rawStreamSession(join(dir, 'h.sock'), trust);
      s.on('error', () => {});
      s.end(requests(session, 100));
    }
    await new Promise((r) => setTimeout(r, 500));
    expect(isAlive(svc.child.pid!)).toBe(true);
    const c = await connectProfile(svc.ready['profile'] as string);
    expect((await c.health()).status).toBe('ok');
    c.close();
  });

  it('survives a Unix-socket client that resets its connection while responses are on their way', async () => {
    const dir = tempDir();
    const svc = await spawnStart(dir, ['--listen', `unix:${join(dir, 'h.sock')}`]);
    // Reset at different moments so that some resets land while the host is writing responses (EPIPE/ECONNRESET).
    const { trust } = profileConnect(svc.ready['profile'] as string);
    for (let round = 0; round < 20; round++) {
      const { socket: s, session } = await rawStreamSession(join(dir, 'h.sock'), trust);
      s.on('error', () => {});
      s.write(requests(session, 200));
      await new Promise((r) => setTimeout(r, round % 10));
      s.destroy();
    }
    await new Promise((r) => setTimeout(r, 500));
    expect(isAlive(svc.child.pid!)).toBe(true);
    const c = await connectProfile(svc.ready['profile'] as string);
    expect((await c.health()).status).toBe('ok');
    c.close();
  });
});

describe('host process lifecycle (ekms start as its own process)', () => {
  it('exits with an error instead of hanging when the listen address is in use, leaving no enclave', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const dir = tempDir();
      let stdout = '';
      const svc = await spawnStart(dir, ['--listen', `ws://127.0.0.1:${port}`, '--json'], {
        waitReady: false,
      });
      svc.child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
      });
      const code = await Promise.race([svc.exited, new Promise((r) => setTimeout(() => r('hung'), 10_000))]);
      expect(code).toBe(1);
      expect(JSON.parse(stdout)).toMatchObject({ ok: false, code: 'CONFIG_INVALID' });
      const pids = svc.enclavePids();
      expect(pids.length).toBe(1);
      await waitFor(() => pids.every((p) => !isAlive(p)), 5_000, 'the enclave to exit');
    } finally {
      blocker.close();
    }
  });

  it("fails at once with the enclave's CONFIG_INVALID when the enclave cannot start (no restart loop)", async () => {
    const dir = tempDir();
    let stdout = '';
    const t0 = Date.now();
    const svc = await spawnStart(dir, ['--listen', 'ws://127.0.0.1:0', '--attestor', 'nitro', '--json'], {
      waitReady: false,
    });
    svc.child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    const code = await Promise.race([svc.exited, new Promise((r) => setTimeout(() => r('hung'), 10_000))]);
    expect(code).toBe(1);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(JSON.parse(stdout)).toMatchObject({ ok: false, code: 'CONFIG_INVALID' });
    expect(JSON.parse(stdout).message).toMatch(/nitro/);
    expect(svc.enclavePids()).toHaveLength(1);
  });

  it('does not leave an orphaned enclave when ekms start is killed with SIGKILL', async () => {
    const dir = tempDir();
    const svc = await spawnStart(dir, ['--listen', 'ws://127.0.0.1:0']);
    const [enclavePid] = svc.enclavePids();
    expect(isAlive(enclavePid!)).toBe(true);
    svc.child.kill('SIGKILL');
    await svc.exited;
    await waitFor(() => !isAlive(enclavePid!), 5_000, 'the orphaned enclave to exit');
  });

  it('exits 0 on SIGTERM while the enclave is restarting, leaving no enclave', async () => {
    const dir = tempDir();
    const svc = await spawnStart(dir, ['--listen', 'ws://127.0.0.1:0']);
    const [first] = svc.enclavePids();
    process.kill(first!, 'SIGKILL');
    // Land the SIGTERM at different points of the restart: in the backoff, and while the new enclave starts.
    await waitFor(() => svc.logLines.some((l) => l.includes('restarting')), 5_000, 'the crash to be noticed');
    svc.child.kill('SIGTERM');
    const code = await Promise.race([svc.exited, new Promise((r) => setTimeout(() => r('hung'), 10_000))]);
    expect(code).toBe(0);
    await waitFor(() => svc.enclavePids().every((p) => !isAlive(p)), 5_000, 'every enclave to exit');
  });

  it('exits 0 on SIGTERM while a restarted enclave is starting up, leaving no enclave', async () => {
    const dir = tempDir();
    const svc = await spawnStart(dir, ['--listen', 'ws://127.0.0.1:0']);
    const [first] = svc.enclavePids();
    process.kill(first!, 'SIGKILL');
    await waitFor(() => svc.enclavePids().length === 2, 5_000, 'the restart');
    svc.child.kill('SIGTERM');
    const code = await Promise.race([svc.exited, new Promise((r) => setTimeout(() => r('hung'), 10_000))]);
    expect(code).toBe(0);
    await waitFor(() => svc.enclavePids().every((p) => !isAlive(p)), 5_000, 'every enclave to exit');
  });

  it('survives running out of file descriptors while clients keep connecting', async () => {
    const dir = tempDir();
    const svc = await spawnStart(dir, ['--listen', 'ws://127.0.0.1:0'], { shellPrefix: 'ulimit -n 64;' });
    const url = new URL(svc.ready['endpoint'] as string);
    const sockets: net.Socket[] = [];
    for (let i = 0; i < 120; i++) {
      const s = net.connect({ host: url.hostname, port: Number(url.port) });
      s.on('error', () => {});
      sockets.push(s);
    }
    await new Promise((r) => setTimeout(r, 1_000));
    expect(isAlive(svc.child.pid!)).toBe(true);
    for (const s of sockets) s.destroy();
    await new Promise((r) => setTimeout(r, 300));
    const c = await connectProfile(svc.ready['profile'] as string);
    expect((await c.health()).status).toBe('ok');
    c.close();
  });
});

/** Resolves with the value, or with 'hung' after `ms`. */
function within<T>(p: Promise<T>, ms: number): Promise<T | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<'hung'>((r) => {
      timer = setTimeout(() => r('hung'), ms);
    }),
  ]);
}

function openWs(endpoint: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(endpoint, { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** Polls `read()` until it has not changed for `quietMs`; returns the last value. */
async function settle(read: () => number, quietMs: number, maxMs: number): Promise<number> {
  let last = read();
  let since = Date.now();
  const deadline = Date.now() + maxMs;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    const v = read();
    if (v !== last) {
      last = v;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) break;
  }
  return last;
}

describe('host under file-descriptor exhaustion (ekms start as its own process)', () => {
  it('survives an enclave restart that cannot spawn for lack of descriptors, and recovers', async () => {
    const dir = tempDir();
    const svc = await spawnStart(dir, ['--listen', 'ws://127.0.0.1:0'], { shellPrefix: 'ulimit -n 40;' });
    const endpoint = svc.ready['endpoint'] as string;
    // Hold WebSocket connections (two descriptors each on the host: the client and its enclave stream) until the
    // host is out of descriptors; the rest are refused or dropped by the kernel, which is fine.
    const held: WebSocket[] = [];
    for (let i = 0; i < 30; i++) {
      const ws = new WebSocket(endpoint);
      ws.on('error', () => {});
      held.push(ws);
    }
    await new Promise((r) => setTimeout(r, 500));
    const [first] = svc.enclavePids();
    process.kill(first!, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 1_000));
    expect(isAlive(svc.child.pid!)).toBe(true);
    for (const ws of held) ws.terminate();
    // The supervisor keeps retrying with backoff; once descriptors are free an enclave comes up again.
    const deadline = Date.now() + 15_000;
    let status = '';
    while (Date.now() < deadline && status !== 'ok') {
      try {
        const c = await connectProfile(svc.ready['profile'] as string, {
          timeoutMs: 2_000,
          connectTimeoutMs: 2_000,
        });
        status = (await c.health()).status;
        c.close();
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    expect(status).toBe('ok');
    expect(isAlive(svc.child.pid!)).toBe(true);
  });
});

describe('host shutdown and restart races (in-process host, real enclave)', () => {
  let host: Host | undefined;
  afterEach(async () => {
    await host?.close();
    host = undefined;
  });

  it('close() finishes promptly and stops the enclave with a Unix-socket client that never reads', async () => {
    const dir = tempDir();
    host = await startTestHost({ listen: `unix:${join(dir, 'h.sock')}` });
    const enclavePid = host.supervisor.pid!;
    const { socket: s, session } = await rawStreamSession(join(dir, 'h.sock'), host.trust);
    s.on('error', () => {});
    s.pause();
    s.write(requests(session, 20_000));
    await settle(() => host!.stats().framesOut, 500, 10_000);
    expect(await within(host.close(), 8_000)).not.toBe('hung');
    expect(isAlive(enclavePid)).toBe(false);
    s.destroy();
  });

  it('close() finishes promptly with a WebSocket client that never reads', async () => {
    host = await startTestHost();
    const enclavePid = host.supervisor.pid!;
    const { ws, session } = await rawWsSession(host.endpoint, host.trust);
    ws.on('error', () => {});
    ws.pause();
    // Distinct ids: inside a session every record is sealed anew, and a repeated id would only be refused.
    for (const record of sealedRequests(session, 20_000)) ws.send(record);
    await settle(() => host!.stats().framesOut, 500, 10_000);
    expect(await within(host.close(), 8_000)).not.toBe('hung');
    expect(isAlive(enclavePid)).toBe(false);
    ws.terminate();
  });

  it('refuses (CONFIG_INVALID) to listen on a unix: path that is a regular file, and leaves the file alone', async () => {
    const dir = tempDir();
    const file = join(dir, 'profile.json');
    writeFileSync(file, 'precious');
    let code = 'OK';
    try {
      host = await startTestHost({ listen: `unix:${file}` });
    } catch (err) {
      code = (err as EkmsError).code;
    }
    expect(code).toBe('CONFIG_INVALID');
    expect(readFileSync(file, 'utf8')).toBe('precious');
  });

  it('close() called twice: both calls settle only once the enclave is stopped', async () => {
    host = await startTestHost();
    const pid = host.supervisor.pid!;
    const first = host.close();
    const second = host.close();
    await second;
    expect(isAlive(pid)).toBe(false);
    await first;
  });

  it('close() finishes promptly with a client stuck in the HTTP upgrade request', async () => {
    host = await startTestHost();
    const url = new URL(host.endpoint);
    const s = net.connect({ host: url.hostname, port: Number(url.port) }, () =>
      s.write('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n'),
    );
    s.on('error', () => {});
    await new Promise((r) => setTimeout(r, 200));
    expect(await within(host.close(), 3_000)).not.toBe('hung');
    s.destroy();
  });

  it('close() during the restart backoff stops for good: no enclave is launched afterwards', async () => {
    host = await startTestHost({ initialBackoffMs: 1_000 });
    const first = host.supervisor.pid!;
    process.kill(first, 'SIGKILL');
    await waitFor(() => host!.supervisor.state === 'backoff', 5_000, 'the backoff');
    await host.close();
    await new Promise((r) => setTimeout(r, 1_500));
    expect(host.supervisor.launches).toBe(1);
    expect(host.supervisor.pid).toBeUndefined();
    expect(isAlive(first)).toBe(false);
  });

  it('stop() releases clients waiting for a restarting enclave at once, with HOST_SHUTTING_DOWN', async () => {
    host = await startTestHost({ initialBackoffMs: 3_000, enclaveWaitMs: 10_000 });
    process.kill(host.supervisor.pid!, 'SIGKILL');
    await waitFor(() => host!.supervisor.state === 'backoff', 5_000, 'the backoff');
    const waiter = codeOf(host.supervisor.waitReady(10_000));
    // connect() now waits for the handshake, which the held connection cannot finish: the lazy client's first
    // request is what waits for the restarting enclave (its connection, handshake included, is held).
    const client = new EkmsClient(host.endpoint, hostConnectOptions(host));
    const pending = codeOf(client.health());
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    await host.close();
    expect(await within(waiter, 1_000)).toBe('HOST_SHUTTING_DOWN');
    expect(await within(pending, 1_000)).toBe('HOST_SHUTTING_DOWN');
    expect(Date.now() - t0).toBeLessThan(2_000);
    client.close();
  });

  it('the enclave dying during host shutdown leaves no enclave process behind', async () => {
    host = await startTestHost({ initialBackoffMs: 10 });
    const clients = await Promise.all(Array.from({ length: 5 }, () => connectTo(host!)));
    await Promise.all(clients.map((c) => c.health()));
    const first = host.supervisor.pid!;
    const closing = host.close();
    process.kill(first, 'SIGKILL');
    expect(await within(closing, 8_000)).not.toBe('hung');
    await new Promise((r) => setTimeout(r, 300));
    expect(host.supervisor.pid).toBeUndefined();
    expect(isAlive(first)).toBe(false);
    for (const c of clients) c.close();
  });

  it('a client that leaves while waiting for a restarting enclave releases its connection slot', async () => {
    host = await startTestHost({ initialBackoffMs: 800 });
    process.kill(host.supervisor.pid!, 'SIGKILL');
    await waitFor(() => host!.supervisor.state === 'backoff', 5_000, 'the backoff');
    const ws = await openWs(host.endpoint);
    await waitFor(() => host!.stats().connections === 1, 2_000, 'the connection to be counted');
    ws.terminate();
    await waitFor(() => host!.stats().connections === 0, 2_000, 'the slot to be released');
    const c = await connectTo(host);
    expect((await c.health()).status).toBe('ok');
    c.close();
  });
});

describe('backpressure against a client that does not read (slowloris)', () => {
  let host: Host | undefined;
  afterEach(async () => {
    await host?.close();
    host = undefined;
  });

  const N = 30_000;
  const responseBytes = 1024 + 30;

  it('WebSocket: the host stops relaying once the client stops reading, and resumes without loss', async () => {
    host = await startTestHost();
    const { ws, session } = await rawWsSession(host.endpoint, host.trust);
    ws.pause();
    for (const record of sealedRequests(session, N)) ws.send(record);
    const relayed = await settle(() => host!.stats().bytesOut, 700, 15_000);
    // Bounded by the relay high-water mark plus kernel socket buffers, far below the 31 MB asked for.
    expect(relayed).toBeLessThan(16 * 1024 * 1024);
    expect(relayed).toBeLessThan(N * responseBytes);
    const ids = new Set<number>();
    const errorCodes = new Set<string>();
    const all = new Promise<void>((resolve) => {
      ws.on('message', (d: Buffer) => {
        const r = decodeCbor(session.receive.open(new Uint8Array(d))) as {
          id: number;
          ok: boolean;
          error?: { code: string };
        };
        if (!r.ok) errorCodes.add(r.error!.code);
        ids.add(r.id);
        if (ids.size === N) resolve();
      });
    });
    ws.resume();
    expect(await within(all, 20_000)).not.toBe('hung');
    expect([...errorCodes].filter((c) => c !== 'TOO_MANY_IN_FLIGHT')).toEqual([]);
    ws.close();
  });

  it('Unix socket: the host stops relaying once the client stops reading, and resumes without loss', async () => {
    const dir = tempDir();
    host = await startTestHost({ listen: `unix:${join(dir, 'h.sock')}` });
    const { socket: s, session, decoder } = await rawStreamSession(join(dir, 'h.sock'), host.trust);
    s.pause();
    s.write(requests(session, N));
    const relayed = await settle(() => host!.stats().bytesOut, 700, 15_000);
    expect(relayed).toBeLessThan(16 * 1024 * 1024);
    expect(relayed).toBeLessThan(N * responseBytes);
    const ids = new Set<number>();
    const errorCodes = new Set<string>();
    const all = new Promise<void>((resolve) => {
      s.on('data', (chunk: Buffer) => {
        for (const f of decoder.push(chunk)) {
          const r = decodeCbor(session.receive.open(f)) as {
            id: number;
            ok: boolean;
            error?: { code: string };
          };
          if (!r.ok) errorCodes.add(r.error!.code);
          ids.add(r.id);
          if (ids.size === N) resolve();
        }
      });
    });
    s.resume();
    // Every request is answered exactly once. A client that pipelines thousands of requests without reading has
    // more than 256 in flight by definition: the enclave may refuse the excess (TOO_MANY_IN_FLIGHT), nothing else.
    expect(await within(all, 20_000)).not.toBe('hung');
    expect([...errorCodes].filter((c) => c !== 'TOO_MANY_IN_FLIGHT')).toEqual([]);
    s.destroy();
  });
});
