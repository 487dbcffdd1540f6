/**
 * The enclave's end of the storage channel (shared/storage-protocol.ts): a request/response client over one
 * stream to the host. Requests are matched by id and time out; when the channel ends, every request in flight
 * fails with STORAGE_UNAVAILABLE and `onLost` runs (the enclave process exits and is restarted by the host's
 * supervisor, which reconnects it: there is no silent reconnect that could hide lost writes).
 */
import net from 'node:net';
import { utf8Bytes } from '../../shared/bytes.js';
import { type EkmsError, fromWireError, ProtocolError } from '../../shared/errors.js';
import { encodeStreamFrame, StreamFrameDecoder } from '../../shared/frame.js';
import { LIMITS } from '../../shared/limits.js';
import { encodeRequest, type Params } from '../../shared/messages.js';
import {
  AUDIT_APPEND_MAX_BATCH_BYTES,
  AUDIT_APPEND_MAX_LINES,
  decodeStorageResponse,
  StorageOp,
} from '../../shared/storage-protocol.js';
import { StoreError } from '../../shared/store-errors.js';
import type { BlobStorage } from './blob-storage.js';

export interface StorageClientOptions {
  /** Per-request timeout (default 30 s: a put is an fsync or two). */
  readonly timeoutMs?: number;
  /** Called once when the channel ends or breaks. */
  readonly onLost?: (reason: EkmsError) => void;
}

interface Pending {
  resolve(result: Params): void;
  reject(err: EkmsError): void;
  timer: NodeJS.Timeout;
}

function unavailable(message: string): StoreError {
  return new StoreError('STORAGE_UNAVAILABLE', message);
}

export class StorageClient implements BlobStorage {
  readonly #socket: net.Socket;
  readonly #pending = new Map<number, Pending>();
  readonly #timeoutMs: number;
  readonly #onLost: ((reason: EkmsError) => void) | undefined;
  #nextId = 1;
  /** Audit lines waiting for the end of this event-loop turn (appendAudit). */
  #auditBatch:
    | {
        lines: Uint8Array[];
        bytes: number;
        waiters: Array<{ resolve(): void; reject(err: unknown): void }>;
      }
    | undefined;
  #lost: EkmsError | undefined;

  private constructor(socket: net.Socket, options: StorageClientOptions) {
    this.#socket = socket;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#onLost = options.onLost;
    const decoder = new StreamFrameDecoder(LIMITS.maxStorageFrameBytes);
    socket.on('data', (chunk: Buffer) => {
      let frames: Uint8Array[];
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        this.#fail(unavailable(`the storage channel broke: ${(err as Error).message}`));
        return;
      }
      for (const frame of frames) this.#onFrame(frame);
    });
    socket.on('error', (err) => this.#fail(unavailable(`the storage channel failed: ${err.message}`)));
    socket.on('close', () => this.#fail(unavailable('the storage channel closed')));
  }

  /**
   * Connects to the host's storage socket.
   * @throws StoreError STORAGE_UNAVAILABLE
   */
  static connect(path: string, options: StorageClientOptions = {}): Promise<StorageClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(path);
      const onError = (err: Error): void =>
        reject(unavailable(`cannot reach the host's storage at ${path}: ${err.message}`));
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        resolve(new StorageClient(socket, options));
      });
    });
  }

  #onFrame(frame: Uint8Array): void {
    let res: ReturnType<typeof decodeStorageResponse>;
    try {
      res = decodeStorageResponse(frame);
    } catch (err) {
      this.#fail(unavailable(`unreadable storage response: ${(err as Error).message}`));
      return;
    }
    if (res.id === null) {
      this.#fail(res.ok ? unavailable('storage notice') : fromWireError(res.error));
      return;
    }
    const p = this.#pending.get(res.id);
    if (p === undefined) return;
    this.#pending.delete(res.id);
    clearTimeout(p.timer);
    if (res.ok) p.resolve(res.result);
    else p.reject(fromWireError(res.error));
  }

  #fail(reason: EkmsError): void {
    if (this.#lost !== undefined) return;
    this.#lost = reason;
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(reason);
    }
    this.#pending.clear();
    this.#socket.destroy();
    this.#onLost?.(reason);
  }

  #request(op: StorageOp, params: Params): Promise<Params> {
    if (this.#lost !== undefined) return Promise.reject(this.#lost);
    const id = this.#nextId++;
    return new Promise<Params>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(unavailable(`the host did not answer ${op} within ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      const socket = this.#socket;
      // Requests issued in one tick (audit lines of concurrent requests) leave in one syscall.
      if (!socket.writableCorked) {
        socket.cork();
        process.nextTick(() => socket.uncork());
      }
      socket.write(encodeStreamFrame(encodeRequest(id, op, params), LIMITS.maxStorageFrameBytes));
    });
  }

  async get(name: string): Promise<Uint8Array | undefined> {
    const r = await this.#request(StorageOp.Get, { name });
    const bytes = r['bytes'];
    if (bytes === null) return undefined;
    if (!(bytes instanceof Uint8Array))
      throw new ProtocolError('MESSAGE_INVALID', 'store.get: bytes missing');
    return bytes;
  }

  async put(name: string, bytes: Uint8Array): Promise<void> {
    await this.#request(StorageOp.Put, { name, bytes });
  }

  async delete(name: string): Promise<boolean> {
    const r = await this.#request(StorageOp.Delete, { name });
    return r['deleted'] === true;
  }

  async list(): Promise<string[]> {
    const names: string[] = [];
    let after: string | undefined;
    for (;;) {
      const r = await this.#request(StorageOp.List, after === undefined ? {} : { after });
      const page = r['names'];
      const next = r['next'];
      if (!Array.isArray(page) || !page.every((n) => typeof n === 'string')) {
        throw new ProtocolError('MESSAGE_INVALID', 'store.list: names missing');
      }
      names.push(...(page as string[]));
      if (typeof next !== 'string') return names;
      // A host that pages backwards would loop for ever.
      if (after !== undefined && next <= after) {
        throw new ProtocolError('MESSAGE_INVALID', 'store.list: the next page does not advance');
      }
      after = next;
    }
  }

  /**
   * Appends one audit-log line (without "\n") at the host; resolves once the host has written and synced it.
   * This is the `sink` of enclave/audit/audit-log.ts: `sink: (line) => client.appendAudit(line)`.
   * @throws StoreError STORE_WRITE_FAILED, STORE_FULL, STORAGE_UNAVAILABLE; ProtocolError REQUEST_INVALID
   */
  appendAudit(line: string): Promise<void> {
    if (this.#lost !== undefined) return Promise.reject(this.#lost);
    const bytes = utf8Bytes(line);
    // Lines of one event-loop turn go to the host in one `audit.append` (one frame, one write and one fsync
    // there, one answer): the per-line cost of the storage channel on both sides is what limits throughput
    // (docs/performance.md). setImmediate, not nextTick: it collects the lines of every request the poll phase
    // delivered, not only those of one socket read. Order is kept: batches leave in order on one stream.
    let batch = this.#auditBatch;
    if (
      batch !== undefined &&
      (batch.lines.length >= AUDIT_APPEND_MAX_LINES ||
        batch.bytes + bytes.length > AUDIT_APPEND_MAX_BATCH_BYTES)
    ) {
      this.#flushAudit();
      batch = undefined;
    }
    if (batch === undefined) {
      batch = { lines: [], bytes: 0, waiters: [] };
      this.#auditBatch = batch;
      setImmediate(() => {
        if (this.#auditBatch === batch) this.#flushAudit();
      });
    }
    const b = batch;
    return new Promise<void>((resolve, reject) => {
      b.lines.push(bytes);
      b.bytes += bytes.length;
      b.waiters.push({ resolve, reject });
    });
  }

  #flushAudit(): void {
    const batch = this.#auditBatch;
    this.#auditBatch = undefined;
    if (batch === undefined || batch.lines.length === 0) return;
    this.#request(StorageOp.AuditAppend, { lines: batch.lines }).then(
      () => {
        for (const w of batch.waiters) w.resolve();
      },
      (err: unknown) => {
        for (const w of batch.waiters) w.reject(err);
      },
    );
  }

  /** Closes the channel (no `onLost` call). */
  close(): void {
    if (this.#lost === undefined) {
      this.#lost = unavailable('the storage client was closed');
      for (const p of this.#pending.values()) {
        clearTimeout(p.timer);
        p.reject(this.#lost);
      }
      this.#pending.clear();
    }
    this.#socket.destroy();
  }
}
