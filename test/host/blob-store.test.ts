/**
 * The host's sealed-blob store (host/blob-store.ts; docs/sealed-state.md §6), on real temporary directories.
 *
 * Failures are simulated with an injected filesystem that wraps the real one and fails a chosen step (open,
 * write, partial write, fsync, close, rename, directory fsync, unlink, read…). The tests run as root in CI, where
 * chmod 0500 does not stop writes, so "permission denied" and "read-only filesystem" are injected errnos; a real
 * chmod test runs only when the tests do not run as root.
 */
import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Sealer } from '../../enclave/sealing.js';
import {
  BlobStore,
  isBlobName,
  nodeStoreFs,
  STORE_LIMITS,
  type StoreFileHandle,
  type StoreFs,
} from '../../host/blob-store.js';
import { EkmsError } from '../../shared/errors.js';
import { STORE_ERROR_CODES, StoreError } from '../../shared/store-errors.js';
import { runs } from '../helpers/property-runs.js';

let dir: string;

beforeEach(async () => {
  dir = join(await mkdtemp(join(tmpdir(), 'ekms-store-')), 'blobs');
});

afterEach(async () => {
  await chmod(dir, 0o700).catch(() => undefined);
  await rm(dirname(dir), { recursive: true, force: true });
});

const enc = (s: string) => new TextEncoder().encode(s);

function errnoError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected`), { code });
}

/** Asserts that `promise` rejects with a StoreError of `code` (and `message`); returns the error. */
async function expectStoreCode(
  promise: Promise<unknown>,
  code: string,
  message?: RegExp,
): Promise<StoreError> {
  let thrown: unknown;
  try {
    await promise;
  } catch (err) {
    thrown = err;
  }
  expect(thrown, `expected ${code}`).toBeInstanceOf(StoreError);
  const err = thrown as StoreError;
  expect(err.code).toBe(code);
  if (message) expect(err.message).toMatch(message);
  return err;
}

type Step =
  | 'mkdir'
  | 'readdir'
  | 'open-temp'
  | 'open-dir'
  | 'open-blob'
  | 'write'
  | 'write-partial'
  | 'fsync-temp'
  | 'fsync-dir'
  | 'close-temp'
  | 'rename'
  | 'unlink-temp'
  | 'unlink-blob'
  | 'stat'
  | 'read';

/**
 * The real filesystem with faults: `fail(step, path)` returns an errno to throw at that step, or undefined.
 * `write-partial` writes the first half of the data, then throws. Records every step in `calls`.
 */
function faultyFs(fail: (step: Step, path: string) => string | undefined): StoreFs & { calls: Step[] } {
  const calls: Step[] = [];
  const at = (step: Step, path: string): void => {
    calls.push(step);
    const errno = fail(step, path);
    if (errno !== undefined) throw errnoError(errno);
  };
  const kind = (path: string): 'temp' | 'dir' | 'blob' =>
    path.endsWith('.tmp') ? 'temp' : path === dir ? 'dir' : 'blob';
  return {
    calls,
    mkdir: async (path, mode) => {
      at('mkdir', path);
      await nodeStoreFs.mkdir(path, mode);
    },
    readdir: async (path) => {
      at('readdir', path);
      return nodeStoreFs.readdir(path);
    },
    open: async (path, flags, mode) => {
      const k = kind(path);
      at(`open-${k}`, path);
      const h = await nodeStoreFs.open(path, flags, mode);
      const wrapped: StoreFileHandle = {
        writeFile: async (data) => {
          const partial = fail('write-partial', path);
          if (partial !== undefined) {
            calls.push('write-partial');
            await h.writeFile(data.subarray(0, data.length >> 1));
            throw errnoError(partial);
          }
          at('write', path);
          await h.writeFile(data);
        },
        readFile: async () => {
          at('read', path);
          return h.readFile();
        },
        stat: async () => {
          at('stat', path);
          return h.stat();
        },
        sync: async () => {
          at(k === 'dir' ? 'fsync-dir' : 'fsync-temp', path);
          await h.sync();
        },
        close: async () => {
          await h.close(); // like close(2), the descriptor is released even when an error is reported
          if (k === 'temp') at('close-temp', path);
        },
      };
      return wrapped;
    },
    rename: async (from, to) => {
      at('rename', to);
      await nodeStoreFs.rename(from, to);
    },
    unlink: async (path) => {
      at(path.endsWith('.tmp') ? 'unlink-temp' : 'unlink-blob', path);
      await nodeStoreFs.unlink(path);
    },
  };
}

/** Entries of the store directory, temp files included. */
const entries = async () => (await readdir(dir)).sort();

describe('BlobStore basics', () => {
  it('creates the directory (0700), puts, gets, lists and deletes opaque blobs', async () => {
    const store = await BlobStore.open(dir);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect(await store.get('a')).toBeUndefined();
    await store.put('b', enc('second'));
    await store.put('a', enc('first'));
    await store.put('empty', new Uint8Array(0));
    expect(await store.get('a')).toEqual(enc('first'));
    expect(await store.get('empty')).toEqual(new Uint8Array(0));
    expect(await store.list()).toEqual(['a', 'b', 'empty']);
    expect((await stat(join(dir, 'a'))).mode & 0o777).toBe(0o600);
    expect(await store.delete('a')).toBe(true);
    expect(await store.delete('a')).toBe(false);
    expect(await store.get('a')).toBeUndefined();
    expect(await store.list()).toEqual(['b', 'empty']);
  });

  it('replaces a blob with a new version and stores bytes verbatim (never interprets them)', async () => {
    const store = await BlobStore.open(dir);
    const sealedLooking = new Sealer(new Uint8Array(32).fill(7), { purpose: 'keystore' }).seal(
      'k',
      1,
      enc('x'),
    );
    await store.put('k', enc('old'));
    await store.put('k', sealedLooking);
    expect(await store.get('k')).toEqual(sealedLooking);
    expect(await readFile(join(dir, 'k'))).toEqual(Buffer.from(sealedLooking));
    expect(await entries()).toEqual(['k']);
  });

  it('copies the bytes at the call: later changes to the caller buffer are not stored', async () => {
    const store = await BlobStore.open(dir);
    const buf = enc('original');
    const done = store.put('k', buf);
    buf.fill(0x21);
    await done;
    expect(await store.get('k')).toEqual(enc('original'));
  });

  it('writes temp file, fsyncs it, renames, then fsyncs the directory, in this order', async () => {
    const fs = faultyFs(() => undefined);
    const store = await BlobStore.open(dir, { fs });
    fs.calls.length = 0;
    await store.put('k', enc('v'));
    expect(fs.calls).toEqual([
      'open-temp',
      'write',
      'fsync-temp',
      'close-temp',
      'rename',
      'open-dir',
      'fsync-dir',
    ]);
    fs.calls.length = 0;
    await store.delete('k');
    expect(fs.calls).toEqual(['unlink-blob', 'open-dir', 'fsync-dir']);
  });

  it('list() skips temp files and entries that are not blob names', async () => {
    const store = await BlobStore.open(dir);
    await store.put('x', enc('1'));
    await writeFile(join(dir, 'README.TXT'), 'operator notes');
    await writeFile(join(dir, '.x.0123456789abcdef.tmp'), 'partial');
    expect(await store.list()).toEqual(['x']);
  });
});

describe('names', () => {
  const BAD: [string, unknown][] = [
    ['parent traversal', '../x'],
    ['dot-dot', '..'],
    ['dot', '.'],
    ['separator', 'a/b'],
    ['backslash', 'a\\b'],
    ['absolute', '/etc/passwd'],
    ['empty', ''],
    ['too long', 'x'.repeat(STORE_LIMITS.maxNameBytes + 1)],
    ['NUL', 'a\0b'],
    ['dot file (temp namespace)', '.hidden'],
    ['leading dash', '-rf'],
    ['upper case', 'Key'],
    ['space', 'a b'],
    ['non-ASCII', 'clé'],
    ['not a string', 42],
  ];

  it.each(BAD)('a name with %s is STORE_NAME_INVALID in put, get and delete', async (_label, name) => {
    const store = await BlobStore.open(dir);
    const n = name as string;
    await expectStoreCode(store.put(n, enc('x')), 'STORE_NAME_INVALID', /invalid blob name/);
    await expectStoreCode(store.get(n), 'STORE_NAME_INVALID');
    await expectStoreCode(store.delete(n), 'STORE_NAME_INVALID');
    expect(await entries()).toEqual([]);
    expect(isBlobName(name)).toBe(false);
  });

  it('accepts names of 1 and 128 characters with . _ - inside', async () => {
    const store = await BlobStore.open(dir);
    for (const name of ['a', '0', 'key_1.v-2', 'z'.repeat(STORE_LIMITS.maxNameBytes)]) {
      await store.put(name, enc(name));
      expect(await store.get(name)).toEqual(enc(name));
    }
  });

  it('property: every accepted name stays inside the directory, and the store and the sealer agree', () => {
    const root = new Uint8Array(32).fill(1);
    const sealer = new Sealer(root, { purpose: 'keystore' });
    let version = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.stringMatching(/^[a-z0-9._\-/\\A-Z\0 ]{0,140}$/),
          fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,130}$/),
          fc.string(),
        ),
        (name) => {
          const ok = isBlobName(name);
          if (ok) expect(dirname(join(dir, name))).toBe(dir);
          let sealerOk = true;
          try {
            sealer.seal(name, version++, new Uint8Array(0));
          } catch {
            sealerOk = false;
          }
          expect(sealerOk, JSON.stringify(name)).toBe(ok);
        },
      ),
      { numRuns: runs(2000) },
    );
    sealer.close();
  });
});

describe('sizes', () => {
  it('a blob above the limit is STORE_BLOB_TOO_LARGE; at the limit it is stored', async () => {
    const store = await BlobStore.open(dir);
    const err = await expectStoreCode(
      store.put('big', new Uint8Array(STORE_LIMITS.maxBlobBytes + 1)),
      'STORE_BLOB_TOO_LARGE',
      /exceeds/,
    );
    expect(err.details).toMatchObject({
      bytes: STORE_LIMITS.maxBlobBytes + 1,
      limit: STORE_LIMITS.maxBlobBytes,
    });
    await store.put('big', new Uint8Array(STORE_LIMITS.maxBlobBytes).fill(3));
    expect((await store.get('big'))?.length).toBe(STORE_LIMITS.maxBlobBytes);
  });

  it('a stored file above the limit is STORE_BLOB_TOO_LARGE on get (checked before reading it)', async () => {
    const fs = faultyFs(() => undefined);
    const store = await BlobStore.open(dir, { fs });
    await writeFile(join(dir, 'planted'), new Uint8Array(STORE_LIMITS.maxBlobBytes + 1));
    fs.calls.length = 0;
    await expectStoreCode(store.get('planted'), 'STORE_BLOB_TOO_LARGE', /stored blob/);
    expect(fs.calls).not.toContain('read');
  });

  it('a blob that is not a byte array is STORE_BLOB_INVALID', async () => {
    const store = await BlobStore.open(dir);
    await expectStoreCode(store.put('k', 'text' as unknown as Uint8Array), 'STORE_BLOB_INVALID');
    expect(await entries()).toEqual([]);
  });

  it('the store can hold the largest sealed blob', async () => {
    const { SEALED_LIMITS } = await import('../../enclave/sealing.js');
    expect(STORE_LIMITS.maxBlobBytes).toBeGreaterThanOrEqual(SEALED_LIMITS.maxBlobBytes);
    expect(STORE_LIMITS.maxNameBytes).toBe(SEALED_LIMITS.maxNameBytes);
  });
});

describe('atomicity under failure', () => {
  const BEFORE_RENAME: Step[] = ['open-temp', 'write', 'write-partial', 'fsync-temp', 'close-temp', 'rename'];
  const OLD = enc('old version, complete');
  const NEW = enc('new version, longer than the old one, complete');

  it.each(BEFORE_RENAME)(
    'a failure at %s leaves the previous version intact and no temp file',
    async (step) => {
      await (await BlobStore.open(dir)).put('k', OLD);
      const store = await BlobStore.open(dir, { fs: faultyFs((s) => (s === step ? 'EIO' : undefined)) });
      const err = await expectStoreCode(store.put('k', NEW), 'STORE_WRITE_FAILED', /EIO/);
      expect(err.retriable).toBe(true);
      expect(err.details).toMatchObject({ name: 'k', errno: 'EIO' });
      expect(await (await BlobStore.open(dir)).get('k')).toEqual(OLD);
      expect(await entries()).toEqual(['k']);
    },
  );

  it.each(BEFORE_RENAME)('a failure at %s on a first put leaves no blob', async (step) => {
    const store = await BlobStore.open(dir, { fs: faultyFs((s) => (s === step ? 'EIO' : undefined)) });
    await expectStoreCode(store.put('k', NEW), 'STORE_WRITE_FAILED');
    expect(await store.get('k')).toBeUndefined();
    expect(await entries()).toEqual([]);
  });

  it('names the failing step in details', async () => {
    const steps: [Step, string][] = [
      ['open-temp', 'open'],
      ['write', 'write'],
      ['fsync-temp', 'fsync'],
      ['close-temp', 'close'],
      ['rename', 'rename'],
      ['fsync-dir', 'fsync-dir'],
    ];
    for (const [step, reported] of steps) {
      const store = await BlobStore.open(dir, { fs: faultyFs((s) => (s === step ? 'EIO' : undefined)) });
      const err = await expectStoreCode(store.put('k', NEW), 'STORE_WRITE_FAILED');
      expect(err.details?.['step'], step).toBe(reported);
    }
  });

  it('a failure of the directory fsync (after the rename) leaves the new version, whole', async () => {
    await (await BlobStore.open(dir)).put('k', OLD);
    const store = await BlobStore.open(dir, { fs: faultyFs((s) => (s === 'fsync-dir' ? 'EIO' : undefined)) });
    await expectStoreCode(store.put('k', NEW), 'STORE_WRITE_FAILED', /fsync-dir/);
    expect(await store.get('k')).toEqual(NEW);
    expect(await entries()).toEqual(['k']);
  });

  it('ENOSPC in the middle of the write is STORE_FULL (retriable); the previous version is intact', async () => {
    await (await BlobStore.open(dir)).put('k', OLD);
    const store = await BlobStore.open(dir, {
      fs: faultyFs((s) => (s === 'write-partial' ? 'ENOSPC' : undefined)),
    });
    const err = await expectStoreCode(store.put('k', NEW), 'STORE_FULL', /no space/);
    expect(err.retriable).toBe(true);
    expect(err.details).toEqual({ name: 'k', step: 'write', errno: 'ENOSPC' });
    expect(await store.get('k')).toEqual(OLD);
    expect(await entries()).toEqual(['k']);
  });

  it.each([
    ['ENOSPC', 'STORE_FULL'],
    ['EDQUOT', 'STORE_FULL'],
    ['EACCES', 'STORE_WRITE_FAILED'],
    ['EPERM', 'STORE_WRITE_FAILED'],
    ['EROFS', 'STORE_WRITE_FAILED'],
    ['EIO', 'STORE_WRITE_FAILED'],
    ['EMFILE', 'STORE_WRITE_FAILED'],
  ])('errno %s when creating the temp file is %s with the errno in details', async (errno, code) => {
    await (await BlobStore.open(dir)).put('k', OLD);
    const store = await BlobStore.open(dir, { fs: faultyFs((s) => (s === 'open-temp' ? errno : undefined)) });
    const err = await expectStoreCode(store.put('k', NEW), code);
    expect(err.details).toEqual({ name: 'k', step: 'open', errno });
    expect(err.retriable).toBe(true);
    expect(await store.get('k')).toEqual(OLD);
  });

  it('an error without an errno is reported as UNKNOWN, still typed', async () => {
    const fs = faultyFs(() => undefined);
    const store = await BlobStore.open(dir, {
      fs: {
        ...fs,
        rename: async () => {
          throw new Error('no code');
        },
      },
    });
    const err = await expectStoreCode(store.put('k', NEW), 'STORE_WRITE_FAILED');
    expect(err.details?.['errno']).toBe('UNKNOWN');
  });

  it('a crash that leaves the temp file behind (its removal fails too) is cleaned by the next open', async () => {
    await (await BlobStore.open(dir)).put('k', OLD);
    const store = await BlobStore.open(dir, {
      fs: faultyFs((s) => (s === 'rename' || s === 'unlink-temp' ? 'EIO' : undefined)),
    });
    await expectStoreCode(store.put('k', NEW), 'STORE_WRITE_FAILED');
    const left = await entries();
    expect(left).toHaveLength(2);
    expect(left.filter((e) => e.endsWith('.tmp'))).toHaveLength(1);
    const reopened = await BlobStore.open(dir);
    expect(await entries()).toEqual(['k']);
    expect(await reopened.get('k')).toEqual(OLD);
  });

  it('open() removes leftover temp files only, never other entries', async () => {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'k'), OLD);
    await writeFile(join(dir, '.k.0123456789abcdef.tmp'), NEW.subarray(0, 5));
    await writeFile(join(dir, '.other.fedcba9876543210.tmp'), NEW);
    await writeFile(join(dir, '.k.tmp'), 'not ours');
    await writeFile(join(dir, 'NOTES'), 'not ours');
    const store = await BlobStore.open(dir);
    expect(await entries()).toEqual(['.k.tmp', 'NOTES', 'k']);
    expect(await store.get('k')).toEqual(OLD);
  });

  it('permission denied (a 0500 directory; injected, since root ignores modes) is STORE_WRITE_FAILED', async () => {
    await (await BlobStore.open(dir)).put('k', OLD);
    const store = await BlobStore.open(dir, {
      fs: faultyFs((s) => (s === 'open-temp' ? 'EACCES' : undefined)),
    });
    await expectStoreCode(store.put('k', NEW), 'STORE_WRITE_FAILED', /EACCES/);
    await expectStoreCode(
      (
        await BlobStore.open(dir, { fs: faultyFs((s) => (s === 'unlink-blob' ? 'EACCES' : undefined)) })
      ).delete('k'),
      'STORE_WRITE_FAILED',
      /EACCES/,
    );
    expect(await store.get('k')).toEqual(OLD);
  });

  it.skipIf(process.getuid?.() === 0)(
    'permission denied on a real 0500 directory (non-root only)',
    async () => {
      const store = await BlobStore.open(dir);
      await store.put('k', OLD);
      await chmod(dir, 0o500);
      const err = await expectStoreCode(store.put('k', NEW), 'STORE_WRITE_FAILED');
      expect(err.details?.['errno']).toBe('EACCES');
      expect(await store.get('k')).toEqual(OLD);
    },
  );

  it('a read-only filesystem at open (mkdir) is STORE_WRITE_FAILED; readdir failure is STORE_READ_FAILED', async () => {
    let err = await expectStoreCode(
      BlobStore.open(dir, { fs: faultyFs((s) => (s === 'mkdir' ? 'EROFS' : undefined)) }),
      'STORE_WRITE_FAILED',
    );
    expect(err.details).toEqual({ step: 'mkdir', errno: 'EROFS' });
    err = await expectStoreCode(
      BlobStore.open(dir, { fs: faultyFs((s) => (s === 'readdir' ? 'EACCES' : undefined)) }),
      'STORE_READ_FAILED',
    );
    expect(err.retriable).toBe(true);
  });
});

describe('reads', () => {
  it('an I/O error reading a blob is STORE_READ_FAILED (retriable), not "missing"', async () => {
    await (await BlobStore.open(dir)).put('k', enc('v'));
    for (const step of ['open-blob', 'stat', 'read'] as Step[]) {
      const store = await BlobStore.open(dir, { fs: faultyFs((s) => (s === step ? 'EIO' : undefined)) });
      const err = await expectStoreCode(store.get('k'), 'STORE_READ_FAILED', /EIO/);
      expect(err.retriable, step).toBe(true);
    }
  });

  it('list() failure is STORE_READ_FAILED', async () => {
    let broken = false;
    const store = await BlobStore.open(dir, {
      fs: faultyFs((s) => (broken && s === 'readdir' ? 'EIO' : undefined)),
    });
    broken = true;
    const err = await expectStoreCode(store.list(), 'STORE_READ_FAILED', /EIO/);
    expect(err.details).toEqual({ step: 'readdir', errno: 'EIO' });
  });

  it('a symbolic link is not followed (STORE_READ_FAILED, ELOOP)', async () => {
    const store = await BlobStore.open(dir);
    const outside = join(dirname(dir), 'secret');
    await writeFile(outside, 'outside the store');
    await symlink(outside, join(dir, 'link'));
    expect((await lstat(join(dir, 'link'))).isSymbolicLink()).toBe(true);
    const err = await expectStoreCode(store.get('link'), 'STORE_READ_FAILED');
    expect(err.details?.['errno']).toBe('ELOOP');
  });

  it('a directory in place of a blob is STORE_READ_FAILED (not a regular file)', async () => {
    const store = await BlobStore.open(dir);
    await mkdir(join(dir, 'sub'));
    await expectStoreCode(store.get('sub'), 'STORE_READ_FAILED', /not a regular file/);
  });
});

describe('concurrency', () => {
  it('concurrent puts of one name apply in call order and end with the last one, whole', async () => {
    const store = await BlobStore.open(dir);
    const versions = Array.from({ length: 25 }, (_, i) => enc(`version ${i} `.repeat(i + 1)));
    await Promise.all(versions.map((v) => store.put('k', v)));
    expect(await store.get('k')).toEqual(versions.at(-1));
    expect(await entries()).toEqual(['k']);
  });

  it('puts and deletes of one name apply in call order', async () => {
    const store = await BlobStore.open(dir);
    const results = await Promise.all([
      store.put('k', enc('a')),
      store.delete('k'),
      store.delete('k'),
      store.put('k', enc('b')),
    ]);
    expect(results).toEqual([undefined, true, false, undefined]);
    expect(await store.get('k')).toEqual(enc('b'));
  });

  it('a failed put does not block the next put of the same name', async () => {
    let failures = 1;
    const store = await BlobStore.open(dir, {
      fs: faultyFs((s) => (s === 'write' && failures-- > 0 ? 'EIO' : undefined)),
    });
    const [first, second] = await Promise.allSettled([store.put('k', enc('a')), store.put('k', enc('b'))]);
    expect(first.status).toBe('rejected');
    expect(second.status).toBe('fulfilled');
    expect(await store.get('k')).toEqual(enc('b'));
  });

  it('two stores racing on one directory end with one complete version and no temp files', async () => {
    await mkdir(dir, { recursive: true });
    const [a, b] = await Promise.all([BlobStore.open(dir), BlobStore.open(dir)]);
    const versions = Array.from({ length: 40 }, (_, i) =>
      enc(`writer ${i % 2} version ${i} `.repeat(50 + i)),
    );
    await Promise.all(versions.map((v, i) => (i % 2 === 0 ? a : b).put('k', v)));
    const final = await a.get('k');
    expect(versions.some((v) => Buffer.from(v).equals(Buffer.from(final!)))).toBe(true);
    expect(await entries()).toEqual(['k']);
  });
});

describe('error table', () => {
  it('STORE_WRITE_FAILED, STORE_READ_FAILED, STORE_FULL and STORAGE_UNAVAILABLE are retriable; the others are not', () => {
    const retriable = Object.entries(STORE_ERROR_CODES)
      .filter(([, spec]) => spec.retriable)
      .map(([code]) => code)
      .sort();
    expect(retriable).toEqual([
      'STORAGE_UNAVAILABLE',
      'STORE_FULL',
      'STORE_READ_FAILED',
      'STORE_WRITE_FAILED',
    ]);
    expect(new EkmsError('STORE_FULL', 'x').retriable).toBe(true);
  });
});
