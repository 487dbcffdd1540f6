/**
 * The host's side of the storage channel (shared/storage-protocol.ts; docs/sealed-state.md §7): serves the
 * enclave's get/put/delete/list requests from the blob store. The host never interprets a blob: it only sees
 * names, sizes and timing. Errors of the store travel back with their codes (STORE_*), so that the enclave can
 * fail the client's operation with the same code and nothing acknowledged is lost.
 *
 * It is also the audit-log sink: `audit.append` lines go to an AuditFileSink (host/audit-sink.ts), by default
 * `audit.jsonl` in the parent of the blob store's directory (`ekms start`: `<data dir>/audit.jsonl`).
 */
import net from 'node:net';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { decodeCbor } from '../shared/cbor.js';
import { EkmsError, ProtocolError } from '../shared/errors.js';
import { encodeStreamFrame, StreamFrameDecoder } from '../shared/frame.js';
import { LIMITS } from '../shared/limits.js';
import { encodeError, encodeOk, type Params, parseRequest, peekRequestId } from '../shared/messages.js';
import {
  auditAppendParams,
  listParams,
  nameParams,
  putParams,
  STORAGE_CBOR_OPTIONS,
  StorageOp,
} from '../shared/storage-protocol.js';
import { AUDIT_LOG_FILE, AuditFileSink } from './audit-sink.js';
import type { BlobStore } from './blob-store.js';

export interface StorageServer {
  close(): Promise<void>;
  /** Requests served, by operation (for metrics and tests). */
  readonly counts: Readonly<Record<string, number>>;
  /** Where `audit.append` lines go. */
  readonly auditLogPath: string;
}

export interface StorageServerOptions {
  /** The audit log file (default: `audit.jsonl` beside the store's directory). */
  readonly auditLogPath?: string;
}

/**
 * Answers one storage request.
 * @throws ProtocolError OPERATION_UNKNOWN, REQUEST_INVALID; StoreError (the store's codes)
 */
async function serve(store: BlobStore, audit: AuditFileSink, op: string, params: Params): Promise<Params> {
  switch (op) {
    case StorageOp.AuditAppend: {
      // Called synchronously on arrival, so appends keep the order the enclave sent them in.
      const { lines } = auditAppendParams(params);
      await audit.appendAll(lines);
      return {};
    }
    case StorageOp.Get: {
      const { name } = nameParams(params);
      return { bytes: (await store.get(name)) ?? null };
    }
    case StorageOp.Put: {
      const { name, bytes } = putParams(params);
      await store.put(name, bytes);
      return {};
    }
    case StorageOp.Delete: {
      const { name } = nameParams(params);
      return { deleted: await store.delete(name) };
    }
    case StorageOp.List: {
      const { after, limit } = listParams(params);
      const all = await store.list();
      const from = after === undefined ? all : all.filter((n) => n > after);
      const names = from.slice(0, limit);
      return { names, next: from.length > limit ? (names[names.length - 1] ?? null) : null };
    }
    default:
      throw new ProtocolError('OPERATION_UNKNOWN', `unknown storage operation "${op.slice(0, 64)}"`);
  }
}

/**
 * Listens on `socketPath` (a Unix socket in the host's private run directory) and serves `store` and the audit log.
 * @throws StoreError STORE_WRITE_FAILED, STORE_FULL (the audit log cannot be opened)
 */
export async function startStorageServer(
  socketPath: string,
  store: BlobStore,
  logger: Logger,
  options: StorageServerOptions = {},
): Promise<StorageServer> {
  const log = logger.child({ component: 'storage' });
  const auditLogPath = options.auditLogPath ?? join(dirname(store.dir), AUDIT_LOG_FILE);
  const audit = await AuditFileSink.open(auditLogPath);
  const counts: Record<string, number> = {};
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    const decoder = new StreamFrameDecoder(LIMITS.maxStorageFrameBytes);
    socket.on('error', (err) => log.info({ err: err.message }, 'storage connection error'));
    socket.on('close', () => sockets.delete(socket));
    const send = (body: Uint8Array): void => {
      if (socket.destroyed) return;
      // Answers of one tick (the appends of one audit batch resolve together) leave in one syscall.
      if (!socket.writableCorked) {
        socket.cork();
        process.nextTick(() => socket.uncork());
      }
      socket.write(encodeStreamFrame(body, LIMITS.maxStorageFrameBytes));
    };
    const handle = async (frame: Uint8Array): Promise<void> => {
      let id: number | null = null;
      try {
        const decoded = decodeCbor(frame, STORAGE_CBOR_OPTIONS);
        id = peekRequestId(decoded);
        const req = parseRequest(decoded);
        counts[req.op] = (counts[req.op] ?? 0) + 1;
        send(encodeOk(req.id, await serve(store, audit, req.op, req.params)));
      } catch (err) {
        log.warn({ code: (err as EkmsError).code ?? 'INTERNAL_ERROR', id }, 'storage request failed');
        send(
          encodeError(id, err instanceof EkmsError ? err : new EkmsError('INTERNAL_ERROR', 'storage failed')),
        );
      }
    };
    socket.on('data', (chunk: Buffer) => {
      let frames: Uint8Array[];
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        send(encodeError(null, err));
        socket.end();
        return;
      }
      for (const f of frames) void handle(f);
    });
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      void audit.close();
      reject(err);
    };
    server.once('error', onError);
    server.listen(socketPath, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err: err.message }, 'storage listener error'));
  return {
    counts,
    auditLogPath,
    close: async () => {
      await new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      });
      await audit.close();
    },
  };
}
