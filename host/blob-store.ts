/**
 * The host's sealed-blob store (design §1; docs/sealed-state.md §6): one file per blob in one directory, written
 * atomically. The store never interprets blob contents: the enclave sealed them, and it alone checks them
 * (enclave/sealing.ts). What the store guarantees is that a blob is always either its previous or its new
 * version, whole, whatever fails:
 *
 *   put:    write `.<name>.<16 hex>.tmp` (O_CREAT|O_EXCL, 0600) → fsync it → rename over `<name>` → fsync the dir
 *   delete: unlink `<name>` → fsync the dir
 *   open:   create the dir (0700) if needed and remove temp files left by a crash
 *
 * rename(2) replaces the target atomically (POSIX), and the file is synced before it, so a crash leaves the old
 * or the new file; the directory sync makes the rename itself durable. A failure before the rename removes the
 * temp file (best effort; `open` removes what is left). Puts and deletes of one name are applied in call order.
 *
 * Filesystem errors become StoreErrors with the errno and the failing step in `details`. The filesystem is an
 * injected dependency (`StoreFs`) so that tests can fail each step.
 *
 * One store per directory: `open` removes every temp file, including those of another live store on the same
 * directory (whose put then fails with STORE_WRITE_FAILED, its previous version intact).
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { LIMITS } from '../shared/limits.js';
import { StoreError } from '../shared/store-errors.js';

/**
 * Limits of the store. A blob travels host ⇄ enclave as one CBOR byte string, so its bound is the CBOR
 * byte-string limit (the same as enclave/sealing.ts). (Candidates for shared/limits.ts.)
 */
export const STORE_LIMITS = {
  /** Largest blob, in bytes. */
  maxBlobBytes: LIMITS.maxSealedBlobBytes,
  /** Longest blob name, in ASCII bytes. */
  maxNameBytes: LIMITS.maxBlobNameBytes,
} as const;

/** Blob names: lower case (case-insensitive filesystems cannot merge two names), no separators, no dot files. */
const NAME = /^[a-z0-9][a-z0-9._-]{0,127}$/;
/** Temp files: start with a dot, which no blob name does. */
const TEMP = /^\.[a-z0-9][a-z0-9._-]{0,127}\.[0-9a-f]{16}\.tmp$/;

/** The file handle operations the store uses (a subset of `fs/promises` FileHandle). */
export interface StoreFileHandle {
  writeFile(data: Uint8Array): Promise<void>;
  readFile(): Promise<Uint8Array>;
  stat(): Promise<{ readonly size: number; isFile(): boolean }>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** The filesystem operations the store uses; `nodeStoreFs` is the real one, tests inject failing ones. */
export interface StoreFs {
  /** Creates `path` and missing parents with `mode`; succeeds if it exists. */
  mkdir(path: string, mode: number): Promise<void>;
  readdir(path: string): Promise<string[]>;
  open(path: string, flags: number, mode?: number): Promise<StoreFileHandle>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
}

/** `node:fs/promises`. */
export const nodeStoreFs: StoreFs = {
  mkdir: async (path, mode) => {
    await fsp.mkdir(path, { recursive: true, mode });
  },
  readdir: (path) => fsp.readdir(path),
  open: (path, flags, mode) => fsp.open(path, flags, mode),
  rename: (from, to) => fsp.rename(from, to),
  unlink: (path) => fsp.unlink(path),
};

/** Options of `BlobStore.open`. */
export interface BlobStoreOptions {
  /** Filesystem to use (default: `nodeStoreFs`). Tests inject failures here. */
  readonly fs?: StoreFs;
}

/** A step of a store operation, named in error details. */
type Step =
  | 'mkdir'
  | 'readdir'
  | 'cleanup'
  | 'open'
  | 'write'
  | 'fsync'
  | 'close'
  | 'rename'
  | 'fsync-dir'
  | 'read'
  | 'unlink';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fsConstants;
const FULL = new Set(['ENOSPC', 'EDQUOT']);

function errnoOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'UNKNOWN';
}

function fsError(kind: 'write' | 'read', step: Step, name: string | undefined, cause: unknown): StoreError {
  const errno = errnoOf(cause);
  const details = { step, errno, ...(name === undefined ? {} : { name }) };
  const what = name === undefined ? 'the store directory' : `blob '${name}'`;
  if (kind === 'write' && FULL.has(errno)) {
    return new StoreError('STORE_FULL', `no space to store ${what} (${errno} at ${step})`, {
      cause,
      details,
    });
  }
  if (kind === 'write') {
    return new StoreError('STORE_WRITE_FAILED', `could not store ${what} (${errno} at ${step})`, {
      cause,
      details,
    });
  }
  return new StoreError('STORE_READ_FAILED', `could not read ${what} (${errno} at ${step})`, {
    cause,
    details,
  });
}

/** Is `name` a valid blob name (1..128 of [a-z0-9._-], starting with [a-z0-9])? */
export function isBlobName(name: unknown): name is string {
  return typeof name === 'string' && NAME.test(name);
}

function checkName(name: unknown): asserts name is string {
  /* Precondition: the name is 1..128 of [a-z0-9._-] starting with [a-z0-9]: no separator, no NUL, no "." or
     "..", no dot file (temp files start with a dot), no option-like leading "-". */
  if (!isBlobName(name)) {
    const shown = typeof name === 'string' ? JSON.stringify(name.slice(0, 40)) : typeof name;
    throw new StoreError(
      'STORE_NAME_INVALID',
      `invalid blob name ${shown}: use 1..${STORE_LIMITS.maxNameBytes} characters of [a-z0-9._-], starting with [a-z0-9]`,
    );
  }
}

async function closeQuietly(handle: StoreFileHandle | undefined): Promise<void> {
  try {
    await handle?.close();
  } catch {
    // A close error after a failed operation adds nothing; the operation's error is reported.
  }
}

/** An atomic, name-validated store of opaque blobs in one directory. */
export class BlobStore {
  readonly dir: string;
  readonly #fs: StoreFs;
  /** Per-name tail of the queue of puts and deletes, so that they apply in call order. */
  readonly #queues = new Map<string, Promise<unknown>>();

  private constructor(dir: string, fs: StoreFs) {
    this.dir = dir;
    this.#fs = fs;
  }

  /**
   * Opens (creating, mode 0700) the store directory and removes temp files left by a crashed put.
   * @throws StoreError STORE_WRITE_FAILED / STORE_FULL (mkdir, cleanup), STORE_READ_FAILED (readdir).
   */
  static async open(dir: string, options: BlobStoreOptions = {}): Promise<BlobStore> {
    const store = new BlobStore(dir, options.fs ?? nodeStoreFs);
    try {
      await store.#fs.mkdir(dir, 0o700);
    } catch (err) {
      throw fsError('write', 'mkdir', undefined, err);
    }
    for (const entry of await store.#readdir()) {
      if (!TEMP.test(entry)) continue;
      try {
        await store.#fs.unlink(join(dir, entry));
      } catch (err) {
        if (errnoOf(err) !== 'ENOENT') throw fsError('write', 'cleanup', undefined, err);
      }
    }
    return store;
  }

  async #readdir(): Promise<string[]> {
    try {
      return await this.#fs.readdir(this.dir);
    } catch (err) {
      throw fsError('read', 'readdir', undefined, err);
    }
  }

  #enqueue<T>(name: string, op: () => Promise<T>): Promise<T> {
    const run = (this.#queues.get(name) ?? Promise.resolve()).then(op);
    const tail = run.catch(() => undefined);
    this.#queues.set(name, tail);
    void tail.then(() => {
      if (this.#queues.get(name) === tail) this.#queues.delete(name);
    });
    return run;
  }

  /**
   * Stores `bytes` as blob `name`, replacing any previous version atomically. The bytes are copied at the call.
   * On any error the blob is its previous version or (if only the final directory sync failed) the new one,
   * always whole.
   * @throws StoreError STORE_NAME_INVALID, STORE_BLOB_INVALID, STORE_BLOB_TOO_LARGE, STORE_FULL (ENOSPC, EDQUOT),
   *   STORE_WRITE_FAILED (any other errno: EACCES, EROFS, EIO…).
   */
  async put(name: string, bytes: Uint8Array): Promise<void> {
    checkName(name);
    /* Precondition: the blob is a byte array. */
    if (!(bytes instanceof Uint8Array)) {
      throw new StoreError('STORE_BLOB_INVALID', 'a blob must be a byte array');
    }
    /* Precondition: the blob is no larger than the maximum blob size. */
    if (bytes.length > STORE_LIMITS.maxBlobBytes) {
      throw new StoreError(
        'STORE_BLOB_TOO_LARGE',
        `blob '${name}' of ${bytes.length} bytes exceeds ${STORE_LIMITS.maxBlobBytes}`,
        { details: { name, bytes: bytes.length, limit: STORE_LIMITS.maxBlobBytes } },
      );
    }
    // A real copy (for a Buffer, `bytes.slice()` is a view of the caller's memory, which may change meanwhile).
    const copy = new Uint8Array(bytes);
    return this.#enqueue(name, () => this.#write(name, copy));
  }

  async #write(name: string, bytes: Uint8Array): Promise<void> {
    const fs = this.#fs;
    const temp = join(this.dir, `.${name}.${randomBytes(8).toString('hex')}.tmp`);
    let step: Step = 'open';
    let handle: StoreFileHandle | undefined;
    let renamed = false;
    try {
      handle = await fs.open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
      step = 'write';
      await handle.writeFile(bytes);
      step = 'fsync';
      await handle.sync();
      step = 'close';
      const written = handle;
      handle = undefined;
      await written.close();
      step = 'rename';
      await fs.rename(temp, join(this.dir, name));
      renamed = true;
      step = 'fsync-dir';
      await this.#syncDir();
    } catch (err) {
      await closeQuietly(handle);
      if (!renamed) {
        try {
          await fs.unlink(temp);
        } catch {
          // Left for the next `open` to remove; the previous version is untouched either way.
        }
      }
      throw fsError('write', step, name, err);
    }
  }

  async #syncDir(): Promise<void> {
    const handle = await this.#fs.open(this.dir, O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await closeQuietly(handle);
    }
  }

  /**
   * Reads blob `name`, or undefined if there is none. Symbolic links are not followed.
   * @throws StoreError STORE_NAME_INVALID, STORE_BLOB_TOO_LARGE (the stored file exceeds the maximum blob size),
   *   STORE_READ_FAILED (EACCES, EIO, ELOOP for a symbolic link, not a regular file…).
   */
  async get(name: string): Promise<Uint8Array | undefined> {
    checkName(name);
    let step: Step = 'open';
    let handle: StoreFileHandle | undefined;
    try {
      handle = await this.#fs.open(join(this.dir, name), O_RDONLY | O_NOFOLLOW);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return undefined;
      throw fsError('read', step, name, err);
    }
    try {
      step = 'read';
      const stat = await handle.stat();
      /* Precondition: the entry is a regular file. */
      if (!stat.isFile()) {
        throw new StoreError('STORE_READ_FAILED', `blob '${name}' is not a regular file`, {
          details: { name, step, errno: 'EISDIR' },
        });
      }
      /* Precondition: the stored blob is no larger than the maximum blob size (checked before reading it). */
      if (stat.size > STORE_LIMITS.maxBlobBytes) {
        throw new StoreError(
          'STORE_BLOB_TOO_LARGE',
          `stored blob '${name}' of ${stat.size} bytes exceeds ${STORE_LIMITS.maxBlobBytes}`,
          { details: { name, bytes: stat.size, limit: STORE_LIMITS.maxBlobBytes } },
        );
      }
      const data = await handle.readFile();
      if (data.length > STORE_LIMITS.maxBlobBytes) {
        throw new StoreError(
          'STORE_BLOB_TOO_LARGE',
          `stored blob '${name}' grew beyond the limit while read`,
          {
            details: { name, bytes: data.length, limit: STORE_LIMITS.maxBlobBytes },
          },
        );
      }
      return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw fsError('read', step, name, err);
    } finally {
      await closeQuietly(handle);
    }
  }

  /**
   * Names of the stored blobs, sorted. Temp files and entries that are not valid names are not listed.
   * @throws StoreError STORE_READ_FAILED.
   */
  async list(): Promise<string[]> {
    return (await this.#readdir()).filter((entry) => NAME.test(entry)).sort();
  }

  /**
   * Deletes blob `name`. Returns false if there was none (so a retried delete is not an error).
   * @throws StoreError STORE_NAME_INVALID, STORE_WRITE_FAILED.
   */
  async delete(name: string): Promise<boolean> {
    checkName(name);
    return this.#enqueue(name, async () => {
      try {
        await this.#fs.unlink(join(this.dir, name));
      } catch (err) {
        if (errnoOf(err) === 'ENOENT') return false;
        throw fsError('write', 'unlink', name, err);
      }
      try {
        await this.#syncDir();
      } catch (err) {
        throw fsError('write', 'fsync-dir', name, err);
      }
      return true;
    });
  }
}
