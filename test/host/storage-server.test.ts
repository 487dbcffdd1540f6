/**
 * The storage channel (shared/storage-protocol.ts): host/storage-server.ts over a real BlobStore, and the enclave's
 * StorageClient, in one process over a real Unix socket. Store errors travel back with their codes; hostile frames
 * get typed errors; a broken channel fails what is in flight with STORAGE_UNAVAILABLE and reports the loss.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { StorageClient } from '../../enclave/storage/storage-client.js';
import { BlobStore, nodeStoreFs, type StoreFs } from '../../host/blob-store.js';
import { type StorageServer, startStorageServer } from '../../host/storage-server.js';
import { encodeCbor } from '../../shared/cbor.js';
import type { EkmsError } from '../../shared/errors.js';
import { encodeStreamFrame, StreamFrameDecoder } from '../../shared/frame.js';
import { LIMITS } from '../../shared/limits.js';
import { decodeResponse, encodeRequest } from '../../shared/messages.js';
import { decodeStorageRequest } from '../../shared/storage-protocol.js';

const silent = pino({ level: 'silent' });

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as EkmsError).code;
  }
  throw new Error('expected a rejection');
}

/** Sends raw frames on a fresh connection and collects the decoded responses until `count` arrived or it closed. */
async function raw(
  path: string,
  bytes: Uint8Array,
  count: number,
): Promise<ReturnType<typeof decodeResponse>[]> {
  const socket = net.connect(path);
  const decoder = new StreamFrameDecoder(LIMITS.maxStorageFrameBytes);
  const out: ReturnType<typeof decodeResponse>[] = [];
  return new Promise((resolve) => {
    socket.on('data', (chunk) => {
      for (const f of decoder.push(chunk)) out.push(decodeResponse(f));
      if (out.length >= count) {
        socket.destroy();
        resolve(out);
      }
    });
    socket.on('close', () => resolve(out));
    socket.on('error', () => resolve(out));
    socket.write(bytes);
  });
}

describe('storage channel', () => {
  let dir: string;
  let path: string;
  let server: StorageServer;
  let client: StorageClient;
  let failNext: string | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ekms-storage-'));
    path = join(dir, 'storage.sock');
    // A filesystem that fails the next temp-file open with the errno in `failNext` (ENOSPC → STORE_FULL).
    const fs: StoreFs = {
      ...nodeStoreFs,
      open: async (p, flags, mode) => {
        if (failNext !== undefined && p.endsWith('.tmp')) {
          const code = failNext;
          failNext = undefined;
          throw Object.assign(new Error(code), { code });
        }
        return nodeStoreFs.open(p, flags, mode);
      },
    };
    server = await startStorageServer(path, await BlobStore.open(join(dir, 'state'), { fs }), silent);
    client = await StorageClient.connect(path);
  });
  afterAll(async () => {
    client.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => {
    failNext = undefined;
  });

  it('puts, gets, lists and deletes blobs', async () => {
    const blob = new Uint8Array(1000).map((_, i) => i & 0xff);
    await client.put('key.a', blob);
    expect(Buffer.from((await client.get('key.a'))!)).toEqual(Buffer.from(blob));
    expect(await client.get('missing')).toBeUndefined();
    expect(await client.list()).toContain('key.a');
    expect(await client.delete('key.a')).toBe(true);
    expect(await client.delete('key.a')).toBe(false);
    expect(await client.get('key.a')).toBeUndefined();
  });

  it('carries a blob of the maximum sealed size, and refuses a larger one with a code', async () => {
    const big = new Uint8Array(LIMITS.maxSealedBlobBytes).fill(7);
    await client.put('big', big);
    expect((await client.get('big'))!.length).toBe(LIMITS.maxSealedBlobBytes);
    await client.delete('big');
  });

  it('pages list() across more than one page (1000 names per page)', async () => {
    const names = Array.from({ length: 1203 }, (_, i) => `n.${String(i).padStart(5, '0')}`);
    for (let i = 0; i < names.length; i += 100) {
      await Promise.all(names.slice(i, i + 100).map((n) => client.put(n, Uint8Array.of(1))));
    }
    const listed = (await client.list()).filter((n) => n.startsWith('n.'));
    expect(listed).toEqual(names);
    await Promise.all(names.map((n) => client.delete(n)));
  });

  it('returns the store error codes to the enclave (STORE_FULL, STORE_NAME_INVALID), and the next put works', async () => {
    failNext = 'ENOSPC';
    expect(await codeOf(client.put('full', Uint8Array.of(1)))).toBe('STORE_FULL');
    failNext = 'EACCES';
    expect(await codeOf(client.put('full', Uint8Array.of(1)))).toBe('STORE_WRITE_FAILED');
    await client.put('full', Uint8Array.of(2));
    expect(Array.from((await client.get('full'))!)).toEqual([2]);
  });

  it('refuses invalid names and parameters with REQUEST_INVALID before the store sees them', async () => {
    expect(await codeOf(client.get('../etc/passwd'))).toBe('REQUEST_INVALID');
    expect(await codeOf(client.put('UPPER', Uint8Array.of(1)))).toBe('REQUEST_INVALID');
    const [r] = await raw(
      path,
      encodeStreamFrame(encodeRequest(1, 'store.put', { name: 'x', bytes: 'text' })),
      1,
    );
    expect(r?.ok).toBe(false);
    if (r && !r.ok) expect(r.error.code).toBe('REQUEST_INVALID');
  });

  it('audit.append takes line or lines (1..512, each 1..128 KiB without line breaks); anything else is REQUEST_INVALID', async () => {
    const line = new TextEncoder().encode('{"ok":1}');
    const cases: Array<[Record<string, unknown>, boolean]> = [
      [{ line }, true],
      [{ lines: [line, line] }, true],
      [{ lines: [] }, false],
      [{ lines: Array.from({ length: 513 }, () => line) }, false],
      [{ line, lines: [line] }, false],
      [{}, false],
      [{ lines: [line, 'text'] }, false],
      [{ lines: [line, new TextEncoder().encode('a\nb')] }, false],
      [{ lines: line }, false],
      [{ lines: [line], extra: 1 }, false],
    ];
    const frames = Buffer.concat(
      cases.map(([params], i) => encodeStreamFrame(encodeRequest(i + 1, 'audit.append', params))),
    );
    const answers = await raw(path, frames, cases.length);
    expect(answers).toHaveLength(cases.length);
    for (const a of answers) {
      const [, ok] = cases[(a.id as number) - 1] ?? [];
      expect(a.ok, JSON.stringify(cases[(a.id as number) - 1]?.[0])).toBe(ok);
      if (!a.ok) expect(a.error.code).toBe('REQUEST_INVALID');
    }
  });

  it('answers an unknown operation with OPERATION_UNKNOWN and undecodable CBOR with a frame code', async () => {
    const frames = Buffer.concat([
      encodeStreamFrame(encodeRequest(5, 'store.format', {})),
      encodeStreamFrame(Uint8Array.of(0xff, 0x00)),
      encodeStreamFrame(encodeCbor({ v: 1, id: 6, op: 'store.get', params: { name: 'a', extra: 1 } })),
    ]);
    const out = await raw(path, frames, 3);
    // Answers complete in any order; match them by id (null: the frame could not be read).
    const byId = Object.fromEntries(out.map((r) => [String(r.id), r.ok ? 'ok' : r.error.code]));
    expect(byId).toEqual({ '5': 'OPERATION_UNKNOWN', null: 'FRAME_MALFORMED', '6': 'REQUEST_INVALID' });
  });

  it('answers a frame header announcing more than the storage frame limit and closes that connection', async () => {
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, LIMITS.maxStorageFrameBytes + 1);
    const out = await raw(path, header, 1);
    expect(out[0]?.ok).toBe(false);
    if (out[0] && !out[0].ok) expect(out[0].error.code).toBe('FRAME_TOO_LARGE');
    // The server itself is unaffected.
    await client.put('still', Uint8Array.of(3));
  });

  it('fails requests in flight with STORAGE_UNAVAILABLE when the channel breaks, reports the loss once, and refuses later requests', async () => {
    // A server that never answers, then closes.
    const silentPath = join(dir, 'silent.sock');
    const sockets: net.Socket[] = [];
    const mute = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => mute.listen(silentPath, r));
    const lost: string[] = [];
    const c = await StorageClient.connect(silentPath, { onLost: (e) => lost.push(e.code) });
    const pending = c.get('x');
    await new Promise((r) => setTimeout(r, 20));
    for (const s of sockets) s.destroy();
    expect(await codeOf(pending)).toBe('STORAGE_UNAVAILABLE');
    expect(lost).toEqual(['STORAGE_UNAVAILABLE']);
    expect(await codeOf(c.put('y', Uint8Array.of(1)))).toBe('STORAGE_UNAVAILABLE');
    await new Promise<void>((r) => mute.close(() => r()));
  });

  it('times out a request the host never answers (STORAGE_UNAVAILABLE)', async () => {
    const mutePath = join(dir, 'mute.sock');
    const mute = net.createServer((s) => s.resume()); // reads (so it sees the client leave), never answers
    await new Promise<void>((r) => mute.listen(mutePath, r));
    const c = await StorageClient.connect(mutePath, { timeoutMs: 50 });
    expect(await codeOf(c.get('x'))).toBe('STORAGE_UNAVAILABLE');
    c.close();
    await new Promise<void>((r) => mute.close(() => r()));
  });

  it('refuses to connect to a missing socket with STORAGE_UNAVAILABLE', async () => {
    expect(await codeOf(StorageClient.connect(join(dir, 'nothing.sock')))).toBe('STORAGE_UNAVAILABLE');
  });

  it('a host that pages backwards cannot make list() loop for ever', async () => {
    const loopPath = join(dir, 'loop.sock');
    // Answers every list request with the same page and the same "next" name.
    const loop = net.createServer((s) => {
      const d = new StreamFrameDecoder(LIMITS.maxStorageFrameBytes);
      s.on('data', (chunk) => {
        for (const f of d.push(chunk)) {
          const { id } = decodeStorageRequest(f);
          s.write(encodeStreamFrame(encodeCbor({ v: 1, id, ok: true, result: { names: ['a'], next: 'a' } })));
        }
      });
    });
    await new Promise<void>((r) => loop.listen(loopPath, r));
    const c = await StorageClient.connect(loopPath, { timeoutMs: 1000 });
    expect(await codeOf(c.list())).toBe('MESSAGE_INVALID');
    c.close();
    await new Promise<void>((r) => loop.close(() => r()));
  });
});
