/**
 * The host's audit-log sink (design §1, §4; docs/audit.md §6): appends the lines the enclave sends over the
 * storage channel (`audit.append`) to one JSONL file, by default `audit.jsonl` beside the blob store's directory
 * (`ekms start`: `<data dir>/audit.jsonl`).
 *
 * The host cannot forge or edit records undetected (they are hash-chained and signed by the enclave); its job is
 * to keep them in order and durable. Appends are applied in call order; lines that arrive while a write is in
 * progress are written together as one batch followed by one fsync, and each append resolves after the fsync of
 * its batch. After a failed write the file may end inside a line, so the sink refuses every later append
 * (STORE_WRITE_FAILED) until it is reopened; `open` cuts a partial last line left by a crash (never acknowledged:
 * its fsync did not complete).
 */
import { constants as fsConstants } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { StoreError } from '../shared/store-errors.js';

export const AUDIT_LOG_FILE = 'audit.jsonl';

const NEWLINE = Buffer.of(0x0a);
/**
 * Shortest time between two fsyncs of the log (group commit, like PostgreSQL's commit_delay): under load each
 * fsync then covers the lines of several milliseconds, not of one event-loop turn. The enclave answers once a line
 * is chained and handed over (it waits for durability only past 256 pending lines, docs/audit.md), so this delays
 * durability by at most this much, never a response.
 */
export const AUDIT_SYNC_INTERVAL_MS = 2;

interface Pending {
  readonly bytes: Buffer;
  resolve(): void;
  reject(err: StoreError): void;
}

function writeError(step: string, cause: unknown): StoreError {
  const errno = (cause as { code?: unknown } | null)?.code;
  const e = typeof errno === 'string' ? errno : 'UNKNOWN';
  return new StoreError(
    e === 'ENOSPC' || e === 'EDQUOT' ? 'STORE_FULL' : 'STORE_WRITE_FAILED',
    `could not append to the audit log (${e} at ${step})`,
    { cause, details: { step, errno: e } },
  );
}

export class AuditFileSink {
  readonly path: string;
  readonly #fh: fsp.FileHandle;
  #queue: Pending[] = [];
  #writing = false;
  #broken: StoreError | undefined;
  #closed = false;
  /** When the last fsync completed (performance.now()). */
  #lastSync = Number.NEGATIVE_INFINITY;
  /** Batches written (one fsync each), for tests and metrics. */
  batches = 0;

  readonly #syncIntervalMs: number;

  private constructor(path: string, fh: fsp.FileHandle, syncIntervalMs: number) {
    this.path = path;
    this.#fh = fh;
    this.#syncIntervalMs = syncIntervalMs;
  }

  /**
   * Opens (creating, mode 0600) the log for appending; cuts a partial last line. `syncIntervalMs`: the shortest time
   * between two fsyncs (default AUDIT_SYNC_INTERVAL_MS).
   * @throws StoreError STORE_WRITE_FAILED, STORE_FULL
   */
  static async open(
    path: string,
    options: { readonly syncIntervalMs?: number } = {},
  ): Promise<AuditFileSink> {
    const syncIntervalMs = options.syncIntervalMs ?? AUDIT_SYNC_INTERVAL_MS;
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(path, fsConstants.O_RDWR | fsConstants.O_CREAT | fsConstants.O_APPEND, 0o600);
    } catch (err) {
      throw writeError('open', err);
    }
    try {
      const { size } = await fh.stat();
      if (size > 0) {
        // Find the last "\n", reading backwards in blocks; everything after it is a torn append.
        const block = Buffer.alloc(64 * 1024);
        let end = size;
        let keep = 0;
        while (end > 0) {
          const start = Math.max(0, end - block.length);
          const { bytesRead } = await fh.read(block, 0, end - start, start);
          const nl = block.subarray(0, bytesRead).lastIndexOf(0x0a);
          if (nl >= 0) {
            keep = start + nl + 1;
            break;
          }
          end = start;
        }
        if (keep < size) {
          await fh.truncate(keep);
          await fh.sync();
        }
      }
    } catch (err) {
      await fh.close().catch(() => {});
      throw writeError('open', err);
    }
    return new AuditFileSink(path, fh, syncIntervalMs);
  }

  /**
   * Appends one line (a "\n" is added); resolves once it is synced.
   * @throws StoreError STORE_WRITE_FAILED, STORE_FULL
   */
  append(line: Uint8Array): Promise<void> {
    return this.appendAll([line]);
  }

  /**
   * Appends several lines in order, in the same batch; resolves once all are synced.
   * @throws StoreError STORE_WRITE_FAILED, STORE_FULL
   */
  appendAll(lines: readonly Uint8Array[]): Promise<void> {
    if (this.#closed) return Promise.reject(new StoreError('STORE_WRITE_FAILED', 'the audit log is closed'));
    if (this.#broken !== undefined) return Promise.reject(this.#broken);
    const parts: Uint8Array[] = [];
    for (const line of lines) parts.push(line, NEWLINE);
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ bytes: Buffer.concat(parts), resolve, reject });
      if (!this.#writing) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#writing = true;
    while (this.#queue.length > 0) {
      // Group commit: at most one fsync per sync interval; lines arriving meanwhile join the batch.
      const wait = this.#lastSync + this.#syncIntervalMs - performance.now();
      if (wait > 0 && !this.#closed) await new Promise((r) => setTimeout(r, wait));
      const batch = this.#queue;
      this.#queue = [];
      if (this.#broken !== undefined) {
        for (const p of batch) p.reject(this.#broken);
        continue;
      }
      let step = 'write';
      try {
        const data = Buffer.concat(batch.map((p) => p.bytes));
        let off = 0;
        while (off < data.length) {
          const { bytesWritten } = await this.#fh.write(data, off, data.length - off);
          off += bytesWritten;
        }
        step = 'fsync';
        await this.#fh.sync();
        this.#lastSync = performance.now();
        this.batches += 1;
        for (const p of batch) p.resolve();
      } catch (err) {
        this.#broken = writeError(step, err);
        for (const p of batch) p.reject(this.#broken);
      }
    }
    this.#writing = false;
  }

  /** Waits for pending appends, then closes the file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#writing || this.#queue.length > 0) await new Promise((r) => setTimeout(r, 5));
    await this.#fh.close();
  }
}
