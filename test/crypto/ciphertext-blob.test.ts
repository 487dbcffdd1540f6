/**
 * Ciphertext blobs (enclave/crypto/ciphertext-blob.ts; docs/ciphertext-format.md §3–§4): round trips for both
 * suites, and one named negative test per check, asserting the code, then the message.
 */
import { describe, expect, it } from 'vitest';
import {
  BLOB_FORMAT_V1,
  BLOB_LIMITS,
  openBlob,
  type ParsedBlob,
  parseBlob,
  sealBlob,
} from '../../enclave/crypto/ciphertext-blob.js';
import { SUITES, SuiteId } from '../../shared/suites.js';
import { dirtyPool } from '../helpers/dirty-pool.js';
import { detBytes, expectCode } from './helpers.js';

const KEY = detBytes('blob kek', 32);
const OTHER_KEY = detBytes('blob other kek', 32);
const CONTEXT = { tenant: 'acme', purpose: 'backup' };
const suites = Object.values(SUITES);

function seal(suite: SuiteId, plaintext = detBytes('pt', 100), context: Record<string, string> = CONTEXT) {
  return sealBlob({ suite, keyId: 'key-1234', keyVersion: 7, key: KEY, plaintext, context });
}

/** Offsets of the fields of a blob with key id `key-1234` (L = 8). */
const L = 8;
const OFF = {
  suite: 1,
  keyIdLength: 3,
  keyId: 4,
  keyVersion: 4 + L,
  salt: 8 + L,
  commitment: 40 + L,
  ctLength: 72 + L,
  ct: 74 + L,
};

describe.each(suites)('ciphertext blob, $name', (suite) => {
  it('round-trips plaintexts of 0, 1, 100 and 4096 bytes', () => {
    for (const n of [0, 1, 100, 4096]) {
      const plaintext = detBytes(`pt ${n}`, n);
      const blob = seal(suite.id, plaintext);
      expect(blob.length).toBe(74 + L + n + 16);
      const parsed = parseBlob(blob);
      expect(parsed.suite.id).toBe(suite.id);
      expect(parsed.keyId).toBe('key-1234');
      expect(parsed.keyVersion).toBe(7);
      expect(openBlob(parsed, KEY, CONTEXT)).toEqual(plaintext);
    }
  });

  it('binds the context regardless of the order its entries were given in', () => {
    const blob = seal(suite.id);
    expect(
      openBlob(
        parseBlob(blob),
        KEY,
        new Map([
          ['purpose', 'backup'],
          ['tenant', 'acme'],
        ]),
      ),
    ).toEqual(detBytes('pt', 100));
  });

  it('uses a fresh salt per blob, so equal inputs give different blobs', () => {
    expect(seal(suite.id)).not.toEqual(seal(suite.id));
  });

  it('is deterministic given the salt (testRandom)', () => {
    const a = sealBlob(
      { suite: suite.id, keyId: 'k', keyVersion: 1, key: KEY, plaintext: new Uint8Array(3), context: {} },
      { testRandom: (n) => new Uint8Array(n).fill(9) },
    );
    const b = sealBlob(
      { suite: suite.id, keyId: 'k', keyVersion: 1, key: KEY, plaintext: new Uint8Array(3), context: {} },
      { testRandom: (n) => new Uint8Array(n).fill(9) },
    );
    expect(a).toEqual(b);
    expect(a.subarray(9, 41)).toEqual(new Uint8Array(32).fill(9));
  });

  it('leaves no byte of its pooled output unwritten (same blob whatever the pool held)', () => {
    const sealDirty = (byte: number, plaintext: Uint8Array) => {
      dirtyPool(byte);
      return sealBlob(
        { suite: suite.id, keyId: 'key-1234', keyVersion: 7, key: KEY, plaintext, context: CONTEXT },
        { testRandom: (n) => new Uint8Array(n).fill(9) },
      );
    };
    for (const n of [0, 1, 33, 500]) {
      const plaintext = detBytes(`pt ${n}`, n);
      const a = sealDirty(0xaa, plaintext);
      const b = sealDirty(0x55, plaintext);
      expect(a).toEqual(b);
      expect(openBlob(parseBlob(b), KEY, CONTEXT)).toEqual(plaintext);
    }
  });

  it('wrong key → CIPHERTEXT_KEY_MISMATCH', () => {
    expectCode(
      () => openBlob(parseBlob(seal(suite.id)), OTHER_KEY, CONTEXT),
      'CIPHERTEXT_KEY_MISMATCH',
      /commitment/,
    );
  });

  it('wrong context → DECRYPT_FAILED', () => {
    const parsed = parseBlob(seal(suite.id));
    expectCode(
      () => openBlob(parsed, KEY, { ...CONTEXT, tenant: 'evil' }),
      'DECRYPT_FAILED',
      /authentication/,
    );
    expectCode(() => openBlob(parsed, KEY, { ...CONTEXT, extra: '' }), 'DECRYPT_FAILED', /context/);
  });

  it('missing context → DECRYPT_FAILED', () => {
    expectCode(() => openBlob(parseBlob(seal(suite.id)), KEY, {}), 'DECRYPT_FAILED', /authentication/);
  });

  it('context supplied at open but none at seal → DECRYPT_FAILED', () => {
    expectCode(() => openBlob(parseBlob(seal(suite.id, undefined, {})), KEY, CONTEXT), 'DECRYPT_FAILED');
  });

  it('tag flip → DECRYPT_FAILED', () => {
    const blob = seal(suite.id);
    blob[blob.length - 1]! ^= 0x01;
    expectCode(() => openBlob(parseBlob(blob), KEY, CONTEXT), 'DECRYPT_FAILED', /authentication failed/);
  });

  it('ciphertext flip → DECRYPT_FAILED', () => {
    const blob = seal(suite.id);
    blob[OFF.ct]! ^= 0x80;
    expectCode(() => openBlob(parseBlob(blob), KEY, CONTEXT), 'DECRYPT_FAILED');
  });

  it('header flips (key id, key version, salt, commitment) → CIPHERTEXT_KEY_MISMATCH', () => {
    for (const at of [
      OFF.keyId,
      OFF.keyVersion + 3,
      OFF.salt,
      OFF.salt + 31,
      OFF.commitment,
      OFF.commitment + 31,
    ]) {
      const blob = seal(suite.id);
      blob[at]! ^= 0x02;
      expectCode(
        () => openBlob(parseBlob(blob), KEY, CONTEXT),
        'CIPHERTEXT_KEY_MISMATCH',
        /header was altered/,
      );
    }
  });

  it('suite id changed to the other registered suite → CIPHERTEXT_KEY_MISMATCH', () => {
    const blob = seal(suite.id);
    const other = suite.id === 1 ? 2 : 1;
    blob[OFF.suite + 1] = other;
    expectCode(() => openBlob(parseBlob(blob), KEY, CONTEXT), 'CIPHERTEXT_KEY_MISMATCH');
  });

  it('ciphertext length changed → CIPHERTEXT_TRUNCATED or CIPHERTEXT_TRAILING_BYTES', () => {
    const longer = seal(suite.id);
    longer[OFF.ctLength + 1]! += 1;
    expectCode(() => parseBlob(longer), 'CIPHERTEXT_TRUNCATED', /ends inside the ciphertext or tag/);
    const shorter = seal(suite.id);
    shorter[OFF.ctLength + 1]! -= 1;
    expectCode(() => parseBlob(shorter), 'CIPHERTEXT_TRAILING_BYTES', /1 byte\(s\) follow/);
  });
});

describe('parseBlob structure checks', () => {
  const blob = seal(SuiteId.Aes256GcmHkdfSha384CommitV1);

  it('unknown suite → SUITE_UNKNOWN', () => {
    const b = blob.slice();
    b[OFF.suite + 1] = 0x7f;
    expectCode(() => parseBlob(b), 'SUITE_UNKNOWN', /0x007f/);
  });

  it('unknown format version → CIPHERTEXT_VERSION_UNSUPPORTED', () => {
    const b = blob.slice();
    b[0] = 0xe2;
    expectCode(() => parseBlob(b), 'CIPHERTEXT_VERSION_UNSUPPORTED', /version 2/);
  });

  it('not a blob at all → CIPHERTEXT_MALFORMED, with a hint for text encodings', () => {
    expectCode(() => parseBlob(new Uint8Array([0x00, 1, 2])), 'CIPHERTEXT_MALFORMED', /first byte 0x00$/);
    const base64 = new TextEncoder().encode(Buffer.from(blob).toString('base64'));
    expectCode(() => parseBlob(base64), 'CIPHERTEXT_MALFORMED', /base64/);
  });

  it('not a byte array → CIPHERTEXT_MALFORMED', () => {
    expectCode(() => parseBlob('4XAB' as unknown as Uint8Array), 'CIPHERTEXT_MALFORMED', /byte array/);
  });

  it('empty → CIPHERTEXT_TRUNCATED', () => {
    expectCode(() => parseBlob(new Uint8Array(0)), 'CIPHERTEXT_TRUNCATED', /empty/);
  });

  it('truncated at every length → CIPHERTEXT_TRUNCATED', () => {
    for (let n = 1; n < blob.length; n++) {
      expectCode(() => parseBlob(blob.subarray(0, n)), 'CIPHERTEXT_TRUNCATED', /ends inside/);
    }
  });

  it('trailing bytes → CIPHERTEXT_TRAILING_BYTES', () => {
    const b = new Uint8Array(blob.length + 1);
    b.set(blob);
    expectCode(() => parseBlob(b), 'CIPHERTEXT_TRAILING_BYTES', /1 byte\(s\) follow/);
  });

  it('larger than the largest blob → CIPHERTEXT_TOO_LARGE (before anything is read)', () => {
    const b = new Uint8Array(BLOB_LIMITS.maxBlobBytes + 1);
    b[0] = BLOB_FORMAT_V1;
    expectCode(() => parseBlob(b), 'CIPHERTEXT_TOO_LARGE', /exceeds 4441/);
  });

  it('empty key id → CIPHERTEXT_MALFORMED', () => {
    const b = blob.slice();
    b[OFF.keyIdLength] = 0;
    expectCode(() => parseBlob(b), 'CIPHERTEXT_MALFORMED', /empty key id/);
  });

  it('non-ASCII key id → CIPHERTEXT_MALFORMED', () => {
    const b = blob.slice();
    b[OFF.keyId] = 0x20;
    expectCode(() => parseBlob(b), 'CIPHERTEXT_MALFORMED', /printable ASCII/);
  });

  it('declared ciphertext longer than 4096 → CIPHERTEXT_MALFORMED', () => {
    const b = blob.slice();
    new DataView(b.buffer).setUint16(OFF.ctLength, 4097);
    expectCode(() => parseBlob(b), 'CIPHERTEXT_MALFORMED', /4097/);
  });

  it('parses from a private copy: mutating the input afterwards changes nothing', () => {
    const b = blob.slice();
    const parsed = parseBlob(b);
    b.fill(0);
    expect(openBlob(parsed, KEY, CONTEXT)).toEqual(detBytes('pt', 100));
  });

  it('openBlob takes only results of parseBlob → CRYPTO_PARAMETER_INVALID', () => {
    const forged = { ...parseBlob(blob) } as ParsedBlob;
    expectCode(() => openBlob(forged, KEY, CONTEXT), 'CRYPTO_PARAMETER_INVALID', /parseBlob/);
  });
});

describe('sealBlob / openBlob parameter checks', () => {
  const base = {
    suite: SuiteId.Aes256GcmHkdfSha384CommitV1,
    keyId: 'k1',
    keyVersion: 1,
    key: KEY,
    plaintext: new Uint8Array(1),
    context: {},
  };

  it('unknown suite → SUITE_UNKNOWN', () => {
    expectCode(() => sealBlob({ ...base, suite: 9 as SuiteId }), 'SUITE_UNKNOWN', /0x0009/);
  });

  it('plaintext over 4096 bytes → PLAINTEXT_TOO_LARGE', () => {
    expectCode(
      () => sealBlob({ ...base, plaintext: new Uint8Array(4097) }),
      'PLAINTEXT_TOO_LARGE',
      /envelope/,
    );
  });

  it('wrong key length → KEY_INVALID (seal and open)', () => {
    expectCode(() => sealBlob({ ...base, key: new Uint8Array(16) }), 'KEY_INVALID', /32 bytes/);
    expectCode(() => openBlob(parseBlob(sealBlob(base)), new Uint8Array(31), {}), 'KEY_INVALID', /32 bytes/);
  });

  it('invalid key ids → CRYPTO_PARAMETER_INVALID', () => {
    for (const keyId of ['', 'has space', 'ключ', 'x'.repeat(256)]) {
      expectCode(() => sealBlob({ ...base, keyId }), 'CRYPTO_PARAMETER_INVALID', /key id/);
    }
    expect(parseBlob(sealBlob({ ...base, keyId: 'x'.repeat(255) })).keyId).toBe('x'.repeat(255));
  });

  it('invalid key versions → CRYPTO_PARAMETER_INVALID', () => {
    for (const keyVersion of [-1, 1.5, 2 ** 32, Number.NaN]) {
      expectCode(() => sealBlob({ ...base, keyVersion }), 'CRYPTO_PARAMETER_INVALID', /key version/);
    }
    expect(parseBlob(sealBlob({ ...base, keyVersion: 2 ** 32 - 1 })).keyVersion).toBe(2 ** 32 - 1);
  });

  it('invalid context → CONTEXT_INVALID (seal and open)', () => {
    expectCode(() => sealBlob({ ...base, context: { 'ekms:x': 'y' } }), 'CONTEXT_INVALID', /reserved/);
    expectCode(() => openBlob(parseBlob(sealBlob(base)), KEY, { '': 'y' }), 'CONTEXT_INVALID', /empty/);
  });

  it('a random source of the wrong length → CRYPTO_PARAMETER_INVALID', () => {
    expectCode(
      () => sealBlob(base, { testRandom: () => new Uint8Array(3) }),
      'CRYPTO_PARAMETER_INVALID',
      /random/,
    );
  });
});
