/**
 * An in-memory BlobStorage (enclave/storage/blob-storage.ts) for tests, playing the untrusted host: it keeps every
 * blob ever put under each name, and lets a test make it misbehave the way docs/sealed-state.md §5 says a host may:
 * fail a request with a store code (STORE_FULL, STORE_WRITE_FAILED, STORE_READ_FAILED…), report a write as failed
 * although it was applied, drop a blob, serve an older copy, corrupt a byte, or roll the whole store back.
 *
 * Bytes are copied on put and on get, as over the real storage channel: the enclave may zero what it receives
 * (root-key.ts does) without touching what the "host" holds, and the host keeps what it was given.
 */

import type { BlobStorage } from '../../enclave/storage/blob-storage.js';
import { StoreError, type StoreErrorCode } from '../../shared/store-errors.js';

export type StorageOp = 'get' | 'put' | 'delete' | 'list';

/** Which request a fault applies to: any name, one name, or the names a predicate accepts. */
export type NameMatcher = string | RegExp | ((name: string) => boolean);

export interface FaultOptions {
  /** The request(s) to fail; default: any name. */
  readonly name?: NameMatcher;
  /** The error code; default STORE_WRITE_FAILED for put/delete, STORE_READ_FAILED for get/list. */
  readonly code?: StoreErrorCode;
  /** How many matching requests fail (default 1). */
  readonly times?: number;
  /** put/delete only: apply the change, then report the failure (the host stored it but the answer was lost). */
  readonly applied?: boolean;
}

interface Fault {
  readonly op: StorageOp;
  readonly matches: (name: string) => boolean;
  readonly code: StoreErrorCode;
  remaining: number;
  readonly applied: boolean;
}

/** Request counters, per operation and per name. */
export interface StorageCounters {
  get: number;
  put: number;
  delete: number;
  list: number;
  /** Requests that failed through an injected fault. */
  failed: number;
}

function matcher(name: NameMatcher | undefined): (n: string) => boolean {
  if (name === undefined) return () => true;
  if (typeof name === 'string') return (n) => n === name;
  if (name instanceof RegExp) return (n) => name.test(n);
  return name;
}

const copy = (bytes: Uint8Array): Uint8Array => new Uint8Array(bytes);

export class MemoryStorage implements BlobStorage {
  readonly #blobs = new Map<string, Uint8Array>();
  /** Every blob put under each name, oldest first (including puts reported as failed but applied). */
  readonly #history = new Map<string, Uint8Array[]>();
  readonly #faults: Fault[] = [];
  readonly counts: StorageCounters = { get: 0, put: 0, delete: 0, list: 0, failed: 0 };
  readonly #putsByName = new Map<string, number>();
  readonly #getsByName = new Map<string, number>();

  // ------------------------------------------------------------------------------------------ BlobStorage

  async get(name: string): Promise<Uint8Array | undefined> {
    this.counts.get += 1;
    this.#getsByName.set(name, (this.#getsByName.get(name) ?? 0) + 1);
    this.#maybeFail('get', name, () => {});
    const bytes = this.#blobs.get(name);
    return bytes === undefined ? undefined : copy(bytes);
  }

  async put(name: string, bytes: Uint8Array): Promise<void> {
    this.counts.put += 1;
    this.#putsByName.set(name, (this.#putsByName.get(name) ?? 0) + 1);
    if (!(bytes instanceof Uint8Array)) throw new StoreError('STORE_BLOB_INVALID', 'not a byte array');
    const stored = copy(bytes);
    this.#maybeFail('put', name, () => this.#store(name, stored));
    this.#store(name, stored);
  }

  async delete(name: string): Promise<boolean> {
    this.counts.delete += 1;
    this.#maybeFail('delete', name, () => this.#blobs.delete(name));
    return this.#blobs.delete(name);
  }

  async list(): Promise<string[]> {
    this.counts.list += 1;
    this.#maybeFail('list', '', () => {});
    return [...this.#blobs.keys()].sort();
  }

  // ------------------------------------------------------------------------------------------ faults

  /**
   * The next matching `op` request(s) fail with a StoreError. Faults are consumed in the order they were added.
   * For `list`, a name matcher is ignored (the request has no name).
   */
  failNext(op: StorageOp, options: FaultOptions = {}): void {
    const code =
      options.code ?? (op === 'put' || op === 'delete' ? 'STORE_WRITE_FAILED' : 'STORE_READ_FAILED');
    this.#faults.push({
      op,
      matches: op === 'list' ? () => true : matcher(options.name),
      code,
      remaining: options.times ?? 1,
      applied: options.applied ?? false,
    });
  }

  /** Forgets every pending fault. */
  clearFaults(): void {
    this.#faults.length = 0;
  }

  /** Number of injected faults not yet triggered. */
  get pendingFaults(): number {
    return this.#faults.reduce((n, f) => n + f.remaining, 0);
  }

  #maybeFail(op: StorageOp, name: string, apply: () => void): void {
    const i = this.#faults.findIndex((f) => f.op === op && f.remaining > 0 && f.matches(name));
    if (i < 0) return;
    const fault = this.#faults[i]!;
    fault.remaining -= 1;
    if (fault.remaining === 0) this.#faults.splice(i, 1);
    if (fault.applied) apply();
    this.counts.failed += 1;
    throw new StoreError(fault.code, `injected ${fault.code} on ${op}${name ? ` of ${name}` : ''}`, {
      details: { step: op, injected: true },
    });
  }

  #store(name: string, bytes: Uint8Array): void {
    this.#blobs.set(name, bytes);
    const h = this.#history.get(name) ?? [];
    h.push(bytes);
    this.#history.set(name, h);
  }

  // ------------------------------------------------------------------------------------------ host tampering

  /** Names currently stored (sorted). */
  names(): string[] {
    return [...this.#blobs.keys()].sort();
  }

  has(name: string): boolean {
    return this.#blobs.has(name);
  }

  /** A copy of the current blob, or undefined. Not counted. */
  peek(name: string): Uint8Array | undefined {
    const b = this.#blobs.get(name);
    return b === undefined ? undefined : copy(b);
  }

  /** Copies of every blob put under `name`, oldest first. */
  history(name: string): Uint8Array[] {
    return (this.#history.get(name) ?? []).map(copy);
  }

  /** Puts under `name` so far (successful or failed). */
  putsOf(name: string): number {
    return this.#putsByName.get(name) ?? 0;
  }

  /** Gets of `name` so far. */
  getsOf(name: string): number {
    return this.#getsByName.get(name) ?? 0;
  }

  /** Writes raw bytes as the host would (not counted, not in the history). */
  set(name: string, bytes: Uint8Array): void {
    this.#blobs.set(name, copy(bytes));
  }

  /** The host loses a blob. Returns whether there was one. */
  drop(name: string): boolean {
    return this.#blobs.delete(name);
  }

  /**
   * The host serves an older copy: the blob becomes the one put `stepsBack` puts before the current one
   * (1 = the previous put).
   * @throws Error if the history is not that long
   */
  rollback(name: string, stepsBack = 1): Uint8Array {
    const h = this.#history.get(name) ?? [];
    const older = h[h.length - 1 - stepsBack];
    if (older === undefined) throw new Error(`no blob ${stepsBack} put(s) before the current '${name}'`);
    this.#blobs.set(name, copy(older));
    return copy(older);
  }

  /** The host serves the `index`-th blob ever put under `name` (0 = the first). */
  restore(name: string, index: number): void {
    const b = (this.#history.get(name) ?? [])[index];
    if (b === undefined) throw new Error(`no put #${index} of '${name}'`);
    this.#blobs.set(name, copy(b));
  }

  /** Flips bits of one byte (offset counted from the end if negative). */
  corrupt(name: string, offset: number, xor = 0x01): void {
    const b = this.#blobs.get(name);
    if (b === undefined) throw new Error(`no blob '${name}' to corrupt`);
    const i = offset < 0 ? b.length + offset : offset;
    if (i < 0 || i >= b.length) throw new Error(`offset ${offset} outside '${name}' (${b.length} bytes)`);
    const next = copy(b);
    next[i] = next[i]! ^ xor;
    this.#blobs.set(name, next);
  }

  /** Cuts a blob to its first `length` bytes. */
  truncate(name: string, length: number): void {
    const b = this.#blobs.get(name);
    if (b === undefined) throw new Error(`no blob '${name}' to truncate`);
    this.#blobs.set(name, b.slice(0, length));
  }

  /** The host serves blob `from` under name `to` (and keeps `from`). */
  swap(from: string, to: string): void {
    const b = this.#blobs.get(from);
    if (b === undefined) throw new Error(`no blob '${from}'`);
    this.#blobs.set(to, copy(b));
  }

  /** The whole store as it is now (copies). */
  snapshot(): Map<string, Uint8Array> {
    return new Map([...this.#blobs].map(([n, b]) => [n, copy(b)]));
  }

  /** Rolls the whole store back to a snapshot (names not in it disappear). History is kept. */
  restoreSnapshot(snapshot: ReadonlyMap<string, Uint8Array>): void {
    this.#blobs.clear();
    for (const [n, b] of snapshot) this.#blobs.set(n, copy(b));
  }
}
