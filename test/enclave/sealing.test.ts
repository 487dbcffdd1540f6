/**
 * Sealed state (enclave/sealing.ts; docs/sealed-state.md): round trips, the blob layout read independently, every
 * check's negative case by code, rollback and fork detection within a run, the documented limit across restarts,
 * property tests over random mutations, and key / plaintext wiping.
 *
 * `node:crypto.hkdfSync` and the AEAD's `open` are wrapped (pass-through) so that the tests hold references to
 * the derived keys and to decrypted plaintexts and can check that they are zeroed.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { SEALED_ERROR_CODES } from '../../shared/crypto-errors.js';
import { EkmsError } from '../../shared/errors.js';
import { isSuiteId, SUITES, SuiteId } from '../../shared/suites.js';
import { runs } from '../helpers/property-runs.js';

const derived = vi.hoisted(() => [] as Uint8Array[]);
const opened = vi.hoisted(() => [] as Uint8Array[]);

vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  const hkdfSync: typeof actual.hkdfSync = (...args) => {
    const out = actual.hkdfSync(...args);
    derived.push(new Uint8Array(out));
    return out;
  };
  return { ...actual, default: { ...actual, hkdfSync }, hkdfSync };
});

vi.mock('../../enclave/crypto/aead.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../enclave/crypto/aead.js')>();
  return {
    ...actual,
    getAead: (id: number) => {
      const aead = actual.getAead(id);
      return {
        suite: aead.suite,
        seal: aead.seal,
        open: (...args: Parameters<typeof aead.open>) => {
          const plaintext = aead.open(...args);
          opened.push(plaintext);
          return plaintext;
        },
      };
    },
  };
});

const { SEALED_LIMITS, SEALED_MAGIC, Sealer, VersionTracker } = await import('../../enclave/sealing.js');

/** Deterministic bytes: SHA-256 counter mode over a label (test inputs only). */
function detBytes(label: string, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0, pos = 0; pos < length; i++, pos += 32) {
    const block = createHash('sha256').update(`${label}/${i}`).digest();
    out.set(block.subarray(0, Math.min(32, length - pos)), pos);
  }
  return out;
}

/** Runs `fn`, asserts it throws an EkmsError with `code` (and `message`), returns the error. */
function expectCode(fn: () => unknown, code: string, message?: RegExp): EkmsError {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, `expected ${code}`).toBeInstanceOf(EkmsError);
  const err = thrown as EkmsError;
  expect(err.code).toBe(code);
  if (message) expect(err.message).toMatch(message);
  return err;
}

const ROOT = detBytes('root key', 32);
const OTHER_ROOT = detBytes('another root key', 32);
const PLAIN = detBytes('state', 100);
const sealer = (options: { purpose?: string; suite?: SuiteId; root?: Uint8Array } = {}) =>
  new Sealer(options.root ?? ROOT, {
    purpose: options.purpose ?? 'keystore',
    ...(options.suite === undefined ? {} : { suite: options.suite }),
  });

/** An independent reader of the documented layout (docs/sealed-state.md §2). */
function readLayout(blob: Uint8Array) {
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const L = blob[23]!;
  const suite = SUITES[view.getUint16(5) as SuiteId];
  return {
    magic: blob.subarray(0, 4),
    format: blob[4],
    suiteId: view.getUint16(5),
    keyId: blob.subarray(7, 23),
    nameLength: L,
    name: String.fromCharCode(...blob.subarray(24, 24 + L)),
    version: view.getBigUint64(24 + L),
    nonceStart: 32 + L,
    bodyStart: 32 + L + suite.nonceBytes,
    suite,
  };
}

beforeEach(() => {
  derived.length = 0;
  opened.length = 0;
});

describe.each(Object.values(SUITES))('sealed blobs, $name', (suite) => {
  it('round-trips empty, small and maximal plaintexts at versions 0, 1 and 2^53-1', () => {
    const s = sealer({ suite: suite.id });
    const cases: [string, number, Uint8Array][] = [
      ['a', 0, new Uint8Array(0)],
      ['keystore.manifest', 1, PLAIN],
      ['x'.repeat(128), Number.MAX_SAFE_INTEGER, detBytes('big', SEALED_LIMITS.maxPlaintextBytes)],
    ];
    for (const [name, version, plaintext] of cases) {
      const blob = s.seal(name, version, plaintext);
      expect(blob.length).toBeLessThanOrEqual(SEALED_LIMITS.maxBlobBytes);
      expect(s.open(name, version, blob), name).toEqual(plaintext);
      expect(s.versions.highest(name)).toBe(version);
    }
  });

  it('writes the documented layout: magic, format 1, suite, key id, name, u64 version, nonce, ciphertext ‖ tag', () => {
    const blob = sealer({ suite: suite.id }).seal('keys-01', 258, PLAIN);
    const layout = readLayout(blob);
    expect([...layout.magic]).toEqual([0x45, 0x4b, 0x53, 0x53]);
    expect(layout.magic).toEqual(SEALED_MAGIC);
    expect(layout.format).toBe(1);
    expect(layout.suiteId).toBe(suite.id);
    expect(layout.name).toBe('keys-01');
    expect(layout.version).toBe(258n);
    expect(blob.length).toBe(32 + 7 + suite.nonceBytes + PLAIN.length + suite.tagBytes);
    // The plaintext does not appear in the blob.
    expect(Buffer.from(blob).includes(Buffer.from(PLAIN.subarray(0, 16)))).toBe(false);
  });

  it('uses a fresh random nonce per seal (same input, different blobs, both open)', () => {
    const s = sealer({ suite: suite.id });
    const a = s.seal('n', 1, PLAIN);
    const b = sealer({ suite: suite.id }).seal('n', 1, PLAIN);
    const la = readLayout(a);
    expect(a.subarray(la.nonceStart, la.bodyStart)).not.toEqual(b.subarray(la.nonceStart, la.bodyStart));
    expect(sealer().open('n', 1, a)).toEqual(PLAIN);
    expect(sealer().open('n', 1, b)).toEqual(PLAIN);
  });

  describe.each([0x01, 0x80, 0xff])('flipped byte (xor %i) at every position', (mask) => {
    it('fails with the code of the field it hits', () => {
      const blob = sealer({ suite: suite.id }).seal('state-a', 7, detBytes('small', 12));
      const L = 7;
      const expected = (i: number): string => {
        if (i < 4) return 'SEALED_BLOB_CORRUPT'; // magic
        if (i === 4) return 'SEALED_VERSION_UNSUPPORTED'; // format version
        if (i < 7) {
          // Suite id: an unregistered id is refused; another registered suite has its own key (key id mismatch).
          const id = new DataView(blob.buffer, blob.byteOffset).getUint16(5) ^ (i === 5 ? mask << 8 : mask);
          return isSuiteId(id) ? 'SEALED_KEY_MISMATCH' : 'SUITE_UNKNOWN';
        }
        if (i < 23) return 'SEALED_KEY_MISMATCH'; // sealing key id
        return 'SEALED_BLOB_CORRUPT'; // name length, name, version, nonce, ciphertext, tag
      };
      expect(blob.length).toBe(32 + L + suite.nonceBytes + 12 + 16);
      for (let i = 0; i < blob.length; i++) {
        const bad = blob.slice();
        bad[i]! ^= mask;
        const s = sealer();
        let err: unknown;
        try {
          s.open('state-a', 7, bad);
        } catch (e) {
          err = e;
        }
        expect(err, `byte ${i}`).toBeInstanceOf(EkmsError);
        expect((err as EkmsError).code, `byte ${i}`).toBe(expected(i));
      }
    });
  });

  it('truncated at every length fails with SEALED_BLOB_CORRUPT', () => {
    const blob = sealer({ suite: suite.id }).seal('state-a', 7, detBytes('small', 12));
    for (let n = 0; n < blob.length; n++) {
      const err = expectCode(() => sealer().open('state-a', 7, blob.subarray(0, n)), 'SEALED_BLOB_CORRUPT');
      expect(err.details?.['reason'], `length ${n}`).toMatch(/truncated|authentication|magic/);
    }
  });

  it('a blob with an edited version field fails authentication (SEALED_BLOB_CORRUPT)', () => {
    const blob = sealer({ suite: suite.id }).seal('state-a', 7, PLAIN);
    const edited = blob.slice();
    new DataView(edited.buffer).setBigUint64(24 + 7, 8n);
    expectCode(() => sealer().open('state-a', 8, edited), 'SEALED_BLOB_CORRUPT', /authentication failed/);
    expectCode(() => sealer().open('state-a', { minVersion: 0 }, edited), 'SEALED_BLOB_CORRUPT');
  });

  it('a blob with an edited name field fails authentication (SEALED_BLOB_CORRUPT)', () => {
    const blob = sealer({ suite: suite.id }).seal('state-a', 7, PLAIN);
    const edited = blob.slice();
    edited[24 + 6] = 'b'.charCodeAt(0); // 'state-a' → 'state-b'
    expectCode(() => sealer().open('state-b', 7, edited), 'SEALED_BLOB_CORRUPT', /authentication failed/);
  });
});

describe('sealed blob checks', () => {
  it('a renamed blob (served for another name) fails with SEALED_BLOB_NAME_MISMATCH', () => {
    const blob = sealer().seal('key-1', 3, PLAIN);
    const err = expectCode(() => sealer().open('key-2', 3, blob), 'SEALED_BLOB_NAME_MISMATCH', /'key-1'/);
    expect(err.details).toEqual({ name: 'key-2', found: 'key-1' });
  });

  it('a version older than the exact version expected is SEALED_BLOB_ROLLBACK', () => {
    const blob = sealer().seal('k', 3, PLAIN);
    expectCode(() => sealer().open('k', 4, blob), 'SEALED_BLOB_ROLLBACK', /version 4 was expected/);
  });

  it('a version newer than the exact version expected is SEALED_BLOB_VERSION_MISMATCH', () => {
    const blob = sealer().seal('k', 5, PLAIN);
    expectCode(() => sealer().open('k', 4, blob), 'SEALED_BLOB_VERSION_MISMATCH', /newer than the expected/);
  });

  it('a version below minVersion is SEALED_BLOB_ROLLBACK; at or above it opens', () => {
    const blob = sealer().seal('k', 5, PLAIN);
    expectCode(
      () => sealer().open('k', { minVersion: 6 }, blob),
      'SEALED_BLOB_ROLLBACK',
      /at least version 6/,
    );
    expect(sealer().open('k', { minVersion: 5 }, blob)).toEqual(PLAIN);
    expect(sealer().open('k', { minVersion: 0 }, blob)).toEqual(PLAIN);
  });

  it('a blob sealed under another root key is SEALED_KEY_MISMATCH', () => {
    const blob = sealer({ root: OTHER_ROOT }).seal('k', 1, PLAIN);
    expectCode(() => sealer().open('k', 1, blob), 'SEALED_KEY_MISMATCH', /another root key/);
  });

  it('a blob sealed for another purpose is SEALED_KEY_MISMATCH', () => {
    const blob = sealer({ purpose: 'audit' }).seal('k', 1, PLAIN);
    expectCode(() => sealer({ purpose: 'keystore' }).open('k', 1, blob), 'SEALED_KEY_MISMATCH', /'keystore'/);
  });

  it('an unknown format version is SEALED_VERSION_UNSUPPORTED', () => {
    const blob = sealer().seal('k', 1, PLAIN);
    for (const format of [0, 2, 0xff]) {
      const bad = blob.slice();
      bad[4] = format;
      const err = expectCode(
        () => sealer().open('k', 1, bad),
        'SEALED_VERSION_UNSUPPORTED',
        /reads version 1/,
      );
      expect(err.details?.['format']).toBe(format);
    }
  });

  it('an unknown suite id is SUITE_UNKNOWN', () => {
    const blob = sealer().seal('k', 1, PLAIN);
    for (const id of [0x0000, 0x0005, 0xffff]) {
      const bad = blob.slice();
      new DataView(bad.buffer).setUint16(5, id);
      expectCode(() => sealer().open('k', 1, bad), 'SUITE_UNKNOWN', /unknown suite id/);
    }
  });

  it('a blob relabelled with the other registered suite is SEALED_KEY_MISMATCH (keys are per suite)', () => {
    const blob = sealer({ suite: SuiteId.Aes256GcmHkdfSha384CommitV1 }).seal('k', 1, PLAIN);
    const bad = blob.slice();
    new DataView(bad.buffer).setUint16(5, SuiteId.XChaCha20Poly1305HkdfSha384CommitV1);
    expectCode(() => sealer().open('k', 1, bad), 'SEALED_KEY_MISMATCH');
  });

  it('opens blobs of every registered suite whatever the sealing suite (agility)', () => {
    const x = sealer({ suite: SuiteId.XChaCha20Poly1305HkdfSha384CommitV1 }).seal('k', 1, PLAIN);
    expect(sealer({ suite: SuiteId.Aes256GcmHkdfSha384CommitV1 }).open('k', 1, x)).toEqual(PLAIN);
  });

  it('a stored name length of 0 or above 128 is SEALED_BLOB_CORRUPT', () => {
    const blob = sealer().seal('k', 1, PLAIN);
    for (const L of [0, 129, 255]) {
      const bad = blob.slice();
      bad[23] = L;
      const err = expectCode(() => sealer().open('k', 1, bad), 'SEALED_BLOB_CORRUPT');
      expect(err.details?.['reason']).toMatch(/name length/);
    }
  });

  it('a stored version above 2^53-1 is SEALED_BLOB_CORRUPT (before authentication)', () => {
    const blob = sealer().seal('k', 1, PLAIN);
    const bad = blob.slice();
    new DataView(bad.buffer).setBigUint64(25, 2n ** 53n);
    const err = expectCode(() => sealer().open('k', { minVersion: 0 }, bad), 'SEALED_BLOB_CORRUPT');
    expect(err.details?.['reason']).toBe('version out of range');
  });

  it('a blob above the size limit is SEALED_BLOB_CORRUPT before it is read', () => {
    const big = new Uint8Array(SEALED_LIMITS.maxBlobBytes + 1);
    big.set(sealer().seal('k', 1, PLAIN));
    const err = expectCode(() => sealer().open('k', 1, big), 'SEALED_BLOB_CORRUPT', /limit/);
    expect(opened).toHaveLength(0);
    expect(err.details?.['reason']).toMatch(/exceed/);
  });

  it('bytes appended after the tag fail authentication (SEALED_BLOB_CORRUPT)', () => {
    const blob = sealer().seal('k', 1, PLAIN);
    const longer = new Uint8Array(blob.length + 1);
    longer.set(blob);
    expectCode(() => sealer().open('k', 1, longer), 'SEALED_BLOB_CORRUPT', /authentication failed/);
  });

  it('text instead of bytes is SEALED_BLOB_CORRUPT (bad magic)', () => {
    const text = new TextEncoder().encode(Buffer.from(sealer().seal('k', 1, PLAIN)).toString('base64'));
    expectCode(() => sealer().open('k', 1, text), 'SEALED_BLOB_CORRUPT', /bad magic/);
  });

  it('does not modify the bytes it opens', () => {
    const blob = sealer().seal('k', 1, PLAIN);
    const copy = blob.slice();
    sealer().open('k', 1, blob);
    expect(blob).toEqual(copy);
  });

  it('a plaintext above the limit is SEALED_PLAINTEXT_TOO_LARGE', () => {
    const err = expectCode(
      () => sealer().seal('k', 1, new Uint8Array(SEALED_LIMITS.maxPlaintextBytes + 1)),
      'SEALED_PLAINTEXT_TOO_LARGE',
    );
    expect(err.details?.['limit']).toBe(SEALED_LIMITS.maxPlaintextBytes);
  });

  it('the largest header plus tag fits in the 1 KiB reserved below the blob limit', () => {
    const blob = sealer({ suite: SuiteId.XChaCha20Poly1305HkdfSha384CommitV1 }).seal(
      'z'.repeat(128),
      1,
      new Uint8Array(0),
    );
    expect(blob.length).toBe(32 + 128 + 24 + 16);
    expect(SEALED_LIMITS.maxPlaintextBytes + blob.length).toBeLessThanOrEqual(SEALED_LIMITS.maxBlobBytes);
  });
});

describe('parameters', () => {
  it('a root key that is not 32 bytes is KEY_INVALID', () => {
    for (const key of [new Uint8Array(31), new Uint8Array(33), 'x'.repeat(32)]) {
      expectCode(() => new Sealer(key as Uint8Array, { purpose: 'keystore' }), 'KEY_INVALID', /32 bytes/);
    }
  });

  it('an invalid purpose is CRYPTO_PARAMETER_INVALID', () => {
    for (const purpose of ['', 'Keystore', 'a/b', 'a\0b', 'x'.repeat(65), '-a']) {
      expectCode(() => new Sealer(ROOT, { purpose }), 'CRYPTO_PARAMETER_INVALID', /purpose/);
    }
  });

  it('an unknown sealing suite is SUITE_UNKNOWN', () => {
    expectCode(() => new Sealer(ROOT, { purpose: 'p', suite: 9 as SuiteId }), 'SUITE_UNKNOWN');
  });

  it('invalid names are CRYPTO_PARAMETER_INVALID in seal and open', () => {
    const s = sealer();
    const blob = s.seal('ok', 1, PLAIN);
    for (const name of ['', '../x', 'a/b', 'a\0b', 'x'.repeat(129), '.hidden', 'Upper', '-x', 'a b']) {
      expectCode(() => s.seal(name, 2, PLAIN), 'CRYPTO_PARAMETER_INVALID', /name/);
      expectCode(() => s.open(name, 1, blob), 'CRYPTO_PARAMETER_INVALID', /name/);
    }
  });

  it('invalid versions are CRYPTO_PARAMETER_INVALID', () => {
    const s = sealer();
    const blob = s.seal('ok', 1, PLAIN);
    for (const v of [-1, 1.5, Number.NaN, 2 ** 53, Number.POSITIVE_INFINITY]) {
      expectCode(() => s.seal('ok', v, PLAIN), 'CRYPTO_PARAMETER_INVALID', /version/);
      expectCode(() => s.open('ok', v, blob), 'CRYPTO_PARAMETER_INVALID', /expected version/);
      expectCode(() => s.open('ok', { minVersion: v }, blob), 'CRYPTO_PARAMETER_INVALID', /minVersion/);
    }
  });

  it('non-byte plaintexts and blobs are CRYPTO_PARAMETER_INVALID', () => {
    const s = sealer();
    expectCode(
      () => s.seal('ok', 1, 'text' as unknown as Uint8Array),
      'CRYPTO_PARAMETER_INVALID',
      /plaintext/,
    );
    expectCode(
      () => s.open('ok', 1, [1, 2] as unknown as Uint8Array),
      'CRYPTO_PARAMETER_INVALID',
      /byte array/,
    );
  });
});

describe('rollback within a run (VersionTracker)', () => {
  it('refuses an older version than one sealed in this run (SEALED_BLOB_ROLLBACK)', () => {
    const s = sealer();
    const v1 = s.seal('k', 1, detBytes('v1', 10));
    const v2 = s.seal('k', 2, detBytes('v2', 10));
    expect(s.versions.highest('k')).toBe(2);
    expectCode(() => s.open('k', { minVersion: 0 }, v1), 'SEALED_BLOB_ROLLBACK', /acknowledged in this run/);
    expect(s.open('k', { minVersion: 0 }, v2)).toEqual(detBytes('v2', 10));
  });

  it('refuses an older version than one opened in this run (SEALED_BLOB_ROLLBACK)', () => {
    const writer = sealer();
    const v3 = writer.seal('k', 3, PLAIN);
    const v5 = writer.seal('k', 5, PLAIN);
    const reader = sealer();
    reader.open('k', { minVersion: 0 }, v5);
    const err = expectCode(() => reader.open('k', { minVersion: 0 }, v3), 'SEALED_BLOB_ROLLBACK');
    expect(err.details).toMatchObject({ name: 'k', version: 3, acknowledged: 5 });
    expect(reader.open('k', 5, v5)).toEqual(PLAIN);
  });

  it('tracks names separately', () => {
    const s = sealer();
    const a1 = s.seal('a', 1, PLAIN);
    s.seal('b', 9, PLAIN);
    expect(s.open('a', 1, a1)).toEqual(PLAIN);
  });

  it('refuses to seal a version that is not above the acknowledged one (SEALED_BLOB_ROLLBACK)', () => {
    const s = sealer();
    s.seal('k', 2, PLAIN);
    expectCode(() => s.seal('k', 2, PLAIN), 'SEALED_BLOB_ROLLBACK', /already acknowledged/);
    expectCode(() => s.seal('k', 1, PLAIN), 'SEALED_BLOB_ROLLBACK', /versions only increase/);
    expect(() => s.seal('k', 3, PLAIN)).not.toThrow();
  });

  it('refuses another blob at the acknowledged version: forked state (SEALED_BLOB_VERSION_MISMATCH)', () => {
    // Two runs from the same root key each sealed a version 2 (e.g. after an undetected rollback at start-up).
    const runA = sealer();
    const runB = sealer();
    const a2 = runA.seal('k', 2, detBytes('a', 10));
    const b2 = runB.seal('k', 2, detBytes('b', 10));
    expectCode(() => runA.open('k', 2, b2), 'SEALED_BLOB_VERSION_MISMATCH', /forked state/);
    expect(runA.open('k', 2, a2)).toEqual(detBytes('a', 10));
  });

  it('a blob that disappears after it was acknowledged is SEALED_BLOB_ROLLBACK (checkMissing)', () => {
    const s = sealer();
    expect(() => s.versions.checkMissing('k')).not.toThrow();
    s.seal('k', 1, PLAIN);
    expectCode(() => s.versions.checkMissing('k'), 'SEALED_BLOB_ROLLBACK', /missing/);
  });

  it('after a deliberate delete: missing is fine, the old blob is refused, a higher version is accepted', () => {
    const s = sealer();
    const v1 = s.seal('k', 1, PLAIN);
    s.versions.markDeleted('k');
    expect(() => s.versions.checkMissing('k')).not.toThrow();
    expectCode(() => s.open('k', { minVersion: 0 }, v1), 'SEALED_BLOB_ROLLBACK', /deleted/);
    expectCode(() => s.seal('k', 1, PLAIN), 'SEALED_BLOB_ROLLBACK');
    const v2 = s.seal('k', 2, PLAIN);
    expect(s.open('k', 2, v2)).toEqual(PLAIN);
    expectCode(() => s.versions.checkMissing('k'), 'SEALED_BLOB_ROLLBACK');
  });

  it('sealers of one run can share a tracker', () => {
    const versions = new VersionTracker();
    const a = new Sealer(ROOT, { purpose: 'keystore', versions });
    const b = new Sealer(ROOT, { purpose: 'keystore', versions });
    const v1 = a.seal('k', 1, PLAIN);
    b.seal('k', 2, PLAIN);
    expectCode(() => a.open('k', { minVersion: 0 }, v1), 'SEALED_BLOB_ROLLBACK');
  });

  it('LIMIT: after a restart (new tracker) an older authentic blob is accepted unless minVersion says otherwise', () => {
    const run1 = sealer();
    const v1 = run1.seal('k', 1, detBytes('old', 10));
    run1.seal('k', 2, detBytes('new', 10));
    run1.close();
    // The host serves version 1 to the restarted enclave: nothing in the enclave remembers version 2.
    const run2 = sealer();
    expect(run2.open('k', { minVersion: 0 }, v1)).toEqual(detBytes('old', 10));
    // With a trusted external counter (docs/sealed-state.md §5) the caller would pass its value as minVersion.
    expectCode(() => sealer().open('k', { minVersion: 2 }, v1), 'SEALED_BLOB_ROLLBACK');
  });
});

describe('property tests', () => {
  const ALLOWED = new Set([
    'SEALED_BLOB_CORRUPT',
    'SEALED_VERSION_UNSUPPORTED',
    'SEALED_KEY_MISMATCH',
    'SUITE_UNKNOWN',
  ]);
  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('set' as const), pos: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('truncate' as const), pos: fc.nat() }),
    fc.record({
      kind: fc.constant('insert' as const),
      pos: fc.nat(),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
    }),
    fc.record({ kind: fc.constant('delete' as const), pos: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
  );
  type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;
  function apply(blob: Uint8Array, m: Mutation): Uint8Array {
    const pos = m.pos % (blob.length + 1);
    const b = Buffer.from(blob);
    switch (m.kind) {
      case 'set': {
        const out = blob.slice();
        out[pos % blob.length] = m.value;
        return out;
      }
      case 'truncate':
        return blob.subarray(0, pos % blob.length);
      case 'insert':
        return Buffer.concat([b.subarray(0, pos), m.bytes, b.subarray(pos)]);
      case 'delete':
        return Buffer.concat([b.subarray(0, pos), b.subarray(pos + m.count)]);
    }
  }

  it('every mutation of a sealed blob is a typed error, never a plaintext', () => {
    const reader = sealer();
    fc.assert(
      fc.property(
        fc.constantFrom(...Object.values(SuiteId)),
        fc.uint8Array({ maxLength: 64 }),
        fc.array(mutation, { minLength: 1, maxLength: 3 }),
        (suiteId, plaintext, mutations) => {
          const blob = new Sealer(ROOT, { purpose: 'keystore', suite: suiteId }).seal('m', 1, plaintext);
          const bad = mutations.reduce(apply, blob);
          fc.pre(!Buffer.from(bad).equals(Buffer.from(blob)));
          let err: unknown;
          try {
            reader.open('m', { minVersion: 0 }, bad);
          } catch (e) {
            err = e;
          }
          expect(err).toBeInstanceOf(EkmsError);
          expect(ALLOWED.has((err as EkmsError).code), (err as EkmsError).code).toBe(true);
        },
      ),
      { numRuns: runs(2000) },
    );
  });

  it('open(seal(x)) = x for random names, versions, suites and plaintexts', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,127}$/),
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.constantFrom(...Object.values(SuiteId)),
        fc.uint8Array({ maxLength: 512 }),
        (name, version, suiteId, plaintext) => {
          const blob = new Sealer(ROOT, { purpose: 'keystore', suite: suiteId }).seal(
            name,
            version,
            plaintext,
          );
          expect(sealer().open(name, version, blob)).toEqual(plaintext);
        },
      ),
      { numRuns: runs(300) },
    );
  });
});

describe('secret lifetime', () => {
  it('derives one key per registered suite at construction and zeroes them all on close()', () => {
    const s = sealer();
    expect(derived).toHaveLength(Object.keys(SUITES).length);
    for (const okm of derived) expect(okm.some((b) => b !== 0)).toBe(true);
    s.close();
    expect(s.closed).toBe(true);
    for (const okm of derived) expect(okm.every((b) => b === 0)).toBe(true);
    s.close(); // idempotent
  });

  it('a closed sealer refuses seal and open with SEALED_SEALER_CLOSED', () => {
    const blob = sealer().seal('k', 1, PLAIN);
    const s = sealer();
    s.close();
    expectCode(() => s.seal('k', 2, PLAIN), 'SEALED_SEALER_CLOSED');
    expectCode(() => s.open('k', 1, blob), 'SEALED_SEALER_CLOSED');
  });

  it('keeps no reference to the root key: the caller may zero it after construction', () => {
    const root = ROOT.slice();
    const s = new Sealer(root, { purpose: 'keystore' });
    root.fill(0);
    const blob = s.seal('k', 1, PLAIN);
    expect(sealer().open('k', 1, blob)).toEqual(PLAIN);
  });

  it('zeroes the decrypted plaintext when an authentic blob is refused (name, version, rollback, fork)', () => {
    const writer = sealer();
    const v1 = writer.seal('k', 1, PLAIN);
    const v2 = writer.seal('k', 2, PLAIN);
    const refusals: [() => unknown, string][] = [
      [() => sealer().open('other', 1, v1), 'SEALED_BLOB_NAME_MISMATCH'],
      [() => sealer().open('k', 2, v1), 'SEALED_BLOB_ROLLBACK'],
      [() => sealer().open('k', 0, v1), 'SEALED_BLOB_VERSION_MISMATCH'],
      [() => writer.open('k', { minVersion: 0 }, v1), 'SEALED_BLOB_ROLLBACK'],
    ];
    const forked = sealer();
    forked.open('k', 2, v2);
    refusals.push([() => forked.open('k', 2, sealer().seal('k', 2, PLAIN)), 'SEALED_BLOB_VERSION_MISMATCH']);
    for (const [fn, code] of refusals) {
      opened.length = 0;
      expectCode(fn, code);
      expect(opened, code).toHaveLength(1);
      expect(opened[0]!.length).toBe(PLAIN.length);
      expect(
        opened[0]!.every((b) => b === 0),
        code,
      ).toBe(true);
    }
  });

  it('returns the plaintext to the caller intact on success', () => {
    const blob = sealer().seal('k', 1, PLAIN);
    const out = sealer().open('k', 1, blob);
    expect(out).toEqual(PLAIN);
    expect(opened).toHaveLength(1);
  });
});

describe('error table', () => {
  it('registers every SEALED_* code as non-retriable', () => {
    for (const [code, spec] of Object.entries(SEALED_ERROR_CODES)) {
      expect(code.startsWith('SEALED_'), code).toBe(true);
      expect(spec.retriable, code).toBe(false);
      expect(new EkmsError(code, 'x').retriable).toBe(false);
    }
  });
});
