/**
 * X-Wing (shared/xwing.ts) against the draft's published vectors (test/vectors/xwing-vectors.json: draft-10
 * Appendix C and D), against an independent implementation (@noble/post-quantum's `ml_kem768_x25519`) on random
 * inputs, and its checks: every length check, implicit rejection, low-order X25519 points, `destroy()`, and the
 * wiping of every intermediate secret that a test can observe (style §5, §7, §11).
 *
 * Wiping is observed by wrapping the primitives shared/xwing.ts calls (ML-KEM, SHAKE256/SHA3-256, X25519 derive):
 * the wrappers keep a reference to each secret they hand out or are handed, and the tests check those are zero
 * once the X-Wing call has returned. The code under test is unchanged.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { x25519 as nobleX25519 } from '@noble/curves/ed25519.js';
import { sha3_256, shake256 } from '@noble/hashes/sha3.js';
import { ml_kem768_x25519 } from '@noble/post-quantum/hybrid.js';
import fc from 'fast-check';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { CryptoError } from '../../shared/crypto-errors.js';
import { runs } from '../helpers/property-runs.js';

const seen = vi.hoisted(() => ({
  /** ML-KEM secret keys returned by keygen, and the 64-byte seeds it was given. */
  mlkemSecretKeys: [] as Uint8Array[],
  mlkemSeeds: [] as Uint8Array[],
  /** ML-KEM encapsulation randomness m and shared secrets (encapsulate and decapsulate). */
  mlkemMsgs: [] as Uint8Array[],
  mlkemSharedSecrets: [] as Uint8Array[],
  /** SHAKE256 outputs (the expanded seed) and SHA3-256 inputs (the combiner input). */
  shakeOutputs: [] as Uint8Array[],
  combinerInputs: [] as Uint8Array[],
  /** X25519 outputs of node:crypto diffieHellman. */
  dhOutputs: [] as Uint8Array[],
}));

vi.mock('@noble/post-quantum/ml-kem.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('@noble/post-quantum/ml-kem.js')>();
  const real = actual.ml_kem768;
  const ml_kem768 = {
    ...real,
    keygen: (seed?: Uint8Array) => {
      if (seed) seen.mlkemSeeds.push(seed);
      const kp = real.keygen(seed);
      seen.mlkemSecretKeys.push(kp.secretKey);
      return kp;
    },
    encapsulate: (pk: Uint8Array, m?: Uint8Array) => {
      if (m) seen.mlkemMsgs.push(m);
      const r = real.encapsulate(pk, m);
      seen.mlkemSharedSecrets.push(r.sharedSecret);
      return r;
    },
    decapsulate: (ct: Uint8Array, sk: Uint8Array) => {
      const ss = real.decapsulate(ct, sk);
      seen.mlkemSharedSecrets.push(ss);
      return ss;
    },
  };
  return { ...actual, ml_kem768 };
});

vi.mock('@noble/hashes/sha3.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('@noble/hashes/sha3.js')>();
  const shake256 = Object.assign((msg: Uint8Array, opts?: { dkLen?: number }) => {
    const out = actual.shake256(msg, opts);
    seen.shakeOutputs.push(out);
    return out;
  }, actual.shake256);
  const sha3_256 = Object.assign((msg: Uint8Array) => {
    seen.combinerInputs.push(msg);
    return actual.sha3_256(msg);
  }, actual.sha3_256);
  return { ...actual, shake256, sha3_256 };
});

vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  const diffieHellman: typeof actual.diffieHellman = (options) => {
    const out = actual.diffieHellman(options);
    seen.dhOutputs.push(out);
    return out;
  };
  return { ...actual, default: { ...actual, diffieHellman }, diffieHellman };
});

const {
  XWING,
  XWingDecapsulationKey,
  checkXWingPublicKey,
  xwingDecapsulate,
  xwingEncapsulate,
  xwingKeygen,
  xwingPublicKey,
} = await import('../../shared/xwing.js');
const { ml_kem768 } = await import('@noble/post-quantum/ml-kem.js');
const { randomBytes: osRandom } = await import('node:crypto');
const { expectCode } = await import('./helpers.js');

interface KemVector {
  name: string;
  seed: string;
  pk: string;
  eseed: string;
  ct: string;
  ss: string;
}
interface VectorFile {
  provenance: { source: string; repository: string; path: string; commit: string };
  vectors: KemVector[];
  keygenVectors: { name: string; seed: string; pk: string }[];
}

const FILE = JSON.parse(
  readFileSync(path.resolve(import.meta.dirname, '../vectors/xwing-vectors.json'), 'utf8'),
) as VectorFile;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));
const isZero = (b: Uint8Array) => b.every((x) => x === 0);
/** Fresh random bytes as a plain Uint8Array (a Buffer's `slice` is a view, not a copy). */
const randomBytes = (n: number) => new Uint8Array(osRandom(n));
const LABEL = Uint8Array.of(0x5c, 0x2e, 0x2f, 0x2f, 0x5e, 0x5c);

function clearSeen(): void {
  for (const list of Object.values(seen)) list.length = 0;
}

/** The draft's Combiner, written from §5.3 with noble's SHA3 (not the module's code). */
function combiner(ssM: Uint8Array, ssX: Uint8Array, ctX: Uint8Array, pkX: Uint8Array): Uint8Array {
  return sha3_256(Buffer.concat([ssM, ssX, ctX, pkX, LABEL]));
}

/** ML-KEM-768 decapsulation key of an X-Wing seed, per draft §5.2 (expanded[0:64] → KeyGen_internal). */
function mlkemSecretKeyOf(seed: Uint8Array): Uint8Array {
  return ml_kem768.keygen(shake256(seed, { dkLen: 96 }).subarray(0, 64)).secretKey;
}

describe('X-Wing vectors (draft-connolly-cfrg-xwing-kem-10 Appendix C)', () => {
  it('the vector file names its source', () => {
    expect(FILE.provenance.source).toMatch(/draft-connolly-cfrg-xwing-kem-10, Appendix C/);
    expect(FILE.provenance.repository).toBe('https://github.com/dconnolly/draft-connolly-cfrg-xwing-kem');
    expect(FILE.vectors.length).toBeGreaterThanOrEqual(3);
  });

  describe.each(FILE.vectors)('$name', (v) => {
    it('GenerateKeyPairDerand(seed) gives the published pk, and sk is the seed', () => {
      const kp = xwingKeygen(unhex(v.seed));
      expect(hex(kp.secretKey)).toBe(v.seed);
      expect(hex(kp.publicKey)).toBe(v.pk);
      expect(hex(xwingPublicKey(unhex(v.seed)))).toBe(v.pk);
      expect(hex(XWingDecapsulationKey.fromSecretKey(unhex(v.seed)).publicKey)).toBe(v.pk);
    });

    it('EncapsulateDerand(pk, eseed) gives the published ct and ss', () => {
      const { sharedSecret, ciphertext } = xwingEncapsulate(unhex(v.pk), { testOnlyEseed: unhex(v.eseed) });
      expect(hex(ciphertext)).toBe(v.ct);
      expect(hex(sharedSecret)).toBe(v.ss);
    });

    it('Decapsulate(ct, sk) gives the published ss, with the seed and with an expanded key', () => {
      expect(hex(xwingDecapsulate(unhex(v.ct), unhex(v.seed)))).toBe(v.ss);
      const key = XWingDecapsulationKey.fromSecretKey(unhex(v.seed));
      expect(hex(key.decapsulate(unhex(v.ct)))).toBe(v.ss);
      expect(hex(xwingDecapsulate(unhex(v.ct), key))).toBe(v.ss);
      key.destroy();
    });

    it('noble ml_kem768_x25519 agrees on the same vector (the cross-check is itself sound)', () => {
      expect(hex(ml_kem768_x25519.keygen(unhex(v.seed)).publicKey)).toBe(v.pk);
      const e = ml_kem768_x25519.encapsulate(unhex(v.pk), unhex(v.eseed));
      expect(hex(e.cipherText)).toBe(v.ct);
      expect(hex(e.sharedSecret)).toBe(v.ss);
    });
  });

  it.each(FILE.keygenVectors)('$name: public key of the X.509 example', (v) => {
    expect(hex(xwingKeygen(unhex(v.seed)).publicKey)).toBe(v.pk);
  });
});

describe('X-Wing equals noble ml_kem768_x25519 on random inputs', () => {
  it('keygen, deterministic encapsulation and decapsulation agree byte for byte (25 random cases)', () => {
    for (let i = 0; i < 25; i++) {
      const seed = randomBytes(32);
      const eseed = randomBytes(64);
      const label = `case ${i} seed=${hex(seed)} eseed=${hex(eseed)}`;
      const ours = xwingKeygen(seed);
      const theirs = ml_kem768_x25519.keygen(seed);
      expect(hex(ours.publicKey), label).toBe(hex(theirs.publicKey));
      const e1 = xwingEncapsulate(ours.publicKey, { testOnlyEseed: eseed });
      const e2 = ml_kem768_x25519.encapsulate(theirs.publicKey, eseed);
      expect(hex(e1.ciphertext), label).toBe(hex(e2.cipherText));
      expect(hex(e1.sharedSecret), label).toBe(hex(e2.sharedSecret));
      expect(hex(xwingDecapsulate(e1.ciphertext, ours.secretKey)), label).toBe(hex(e1.sharedSecret));
      expect(hex(ml_kem768_x25519.decapsulate(e1.ciphertext, theirs.secretKey)), label).toBe(
        hex(e1.sharedSecret),
      );
    }
  });

  it('randomized encapsulation (OS randomness, OpenSSL ephemeral key) decapsulates with noble', () => {
    for (let i = 0; i < 10; i++) {
      const kp = xwingKeygen();
      expect(kp.secretKey).toHaveLength(32);
      expect(hex(kp.publicKey)).toBe(hex(ml_kem768_x25519.keygen(kp.secretKey).publicKey));
      const e = xwingEncapsulate(kp.publicKey);
      expect(e.ciphertext).toHaveLength(XWING.ciphertextBytes);
      expect(hex(ml_kem768_x25519.decapsulate(e.ciphertext, kp.secretKey))).toBe(hex(e.sharedSecret));
    }
  });

  it('implicit rejection: on a ciphertext with a flipped ML-KEM bit both give the same unrelated secret', () => {
    const kp = xwingKeygen(randomBytes(32));
    const { ciphertext, sharedSecret } = xwingEncapsulate(kp.publicKey);
    for (const bit of [0, 7, 8 * 500 + 3, 8 * 1087 + 7]) {
      const ct = ciphertext.slice();
      ct[bit >> 3]! ^= 1 << (bit & 7);
      const ours = xwingDecapsulate(ct, kp.secretKey);
      expect(hex(ours), `bit ${bit}`).not.toBe(hex(sharedSecret));
      expect(hex(ours), `bit ${bit}`).toBe(hex(ml_kem768_x25519.decapsulate(ct, kp.secretKey)));
    }
  });
});

describe('X-Wing constants', () => {
  it('sizes and the HPKE KEM id are those of draft §5.1 and §7', () => {
    expect(XWING).toMatchObject({
      secretKeyBytes: 32,
      publicKeyBytes: 1216,
      ciphertextBytes: 1120,
      sharedSecretBytes: 32,
      eseedBytes: 64,
      hpkeKemId: 0x647a,
    });
    expect(Object.isFrozen(XWING)).toBe(true);
  });
});

describe('X-Wing length checks (style §5: each check has a named negative test)', () => {
  const kp = xwingKeygen(unhex(FILE.vectors[0]!.seed));
  const ct = unhex(FILE.vectors[0]!.ct);
  const notBytes = 'a string' as unknown as Uint8Array;

  it.each([0, 31, 33, 96])(
    'Precondition: a seed of %i bytes is KEY_INVALID (keygen, publicKey, fromSecretKey)',
    (n) => {
      const err = expectCode(
        () => xwingKeygen(new Uint8Array(n)),
        'KEY_INVALID',
        /X-Wing seed must be 32 bytes/,
      );
      expect(err.details).toMatchObject({ expected: 32, actual: n });
      expectCode(() => xwingPublicKey(new Uint8Array(n)), 'KEY_INVALID', /secret key must be 32 bytes/);
      expectCode(() => XWingDecapsulationKey.fromSecretKey(new Uint8Array(n)), 'KEY_INVALID');
      expectCode(() => xwingDecapsulate(ct, new Uint8Array(n)), 'KEY_INVALID');
    },
  );

  it('Precondition: the length message hints at hex and base64 text encodings', () => {
    expectCode(
      () => xwingKeygen(new Uint8Array(64)),
      'KEY_INVALID',
      /got 64 \(twice the size: hex-encoded\?\)/,
    );
    expectCode(() => xwingKeygen(new Uint8Array(44)), 'KEY_INVALID', /got 44 \(base64-encoded\?\)/);
    expectCode(() => xwingEncapsulate(new Uint8Array(2432)), 'KEY_INVALID', /hex-encoded/);
  });

  it('Precondition: a non-Uint8Array key, seed or ciphertext is rejected with its code', () => {
    expectCode(() => xwingKeygen(notBytes), 'KEY_INVALID', /must be a Uint8Array/);
    expectCode(() => xwingEncapsulate(notBytes), 'KEY_INVALID', /must be a Uint8Array/);
    expectCode(
      () => xwingDecapsulate(notBytes, kp.secretKey),
      'CRYPTO_PARAMETER_INVALID',
      /must be a Uint8Array/,
    );
    expectCode(() => xwingDecapsulate(ct, notBytes), 'KEY_INVALID', /must be a Uint8Array/);
  });

  it.each([0, 1184, 1215, 1217])('Precondition: a public key of %i bytes is KEY_INVALID', (n) => {
    const err = expectCode(
      () => xwingEncapsulate(new Uint8Array(n)),
      'KEY_INVALID',
      /X-Wing public key must be 1216 bytes/,
    );
    expect(err.details).toMatchObject({ expected: 1216, actual: n });
  });

  it.each([0, 32, 63, 65])('Precondition: a testOnlyEseed of %i bytes is CRYPTO_PARAMETER_INVALID', (n) => {
    expectCode(
      () => xwingEncapsulate(kp.publicKey, { testOnlyEseed: new Uint8Array(n) }),
      'CRYPTO_PARAMETER_INVALID',
      /testOnlyEseed must be 64 bytes/,
    );
  });

  it.each([0, 1088, 1119, 1121])(
    'Precondition: a ciphertext of %i bytes is CRYPTO_PARAMETER_INVALID',
    (n) => {
      const key = XWingDecapsulationKey.fromSecretKey(kp.secretKey);
      expectCode(
        () => xwingDecapsulate(new Uint8Array(n), kp.secretKey),
        'CRYPTO_PARAMETER_INVALID',
        /1120 bytes/,
      );
      expectCode(() => key.decapsulate(new Uint8Array(n)), 'CRYPTO_PARAMETER_INVALID', /1120 bytes/);
      key.destroy();
    },
  );

  it('Precondition: the ML-KEM part of the public key fails the FIPS 203 §7.2 modulus check → KEY_INVALID', () => {
    const pk = kp.publicKey.slice();
    pk[0] = 0xff; // first 12-bit coefficient becomes 0x?ff | 0xf00 ≥ q = 3329
    pk[1] = 0xff;
    const err = expectCode(() => xwingEncapsulate(pk), 'KEY_INVALID', /FIPS 203 §7\.2/);
    expect(err.cause).toBeDefined();
    expect(err).toBeInstanceOf(CryptoError);
  });
});

describe('X-Wing implicit rejection', () => {
  const kp = xwingKeygen(randomBytes(32));
  const { ciphertext, sharedSecret } = xwingEncapsulate(kp.publicKey);
  const key = XWingDecapsulationKey.fromSecretKey(kp.secretKey);

  it('any single bit flip gives a different 32-byte secret, never an error (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1120 * 8 - 1 }), (bit) => {
        const ct = ciphertext.slice();
        ct[bit >> 3]! ^= 1 << (bit & 7);
        const ss = key.decapsulate(ct);
        expect(ss).toHaveLength(32);
        expect(hex(ss)).not.toBe(hex(sharedSecret));
      }),
      { numRuns: runs(60) },
    );
  });

  it('a ciphertext for another key, and random bytes, decapsulate without throwing', () => {
    const other = xwingEncapsulate(xwingKeygen().publicKey).ciphertext;
    expect(hex(key.decapsulate(other))).not.toBe(hex(sharedSecret));
    expect(key.decapsulate(randomBytes(1120))).toHaveLength(32);
  });
});

describe('X-Wing low-order X25519 points (draft: no RFC 7748 §6.1 check; the output is 32 zero bytes)', () => {
  // u-coordinates of small order (the libsodium / noble-curves blocklist), written independently of the module:
  // 0, 1, the two points of order 8, p-1, and the non-canonical p and p+1 (≡ 0, 1), plus 0 with the top bit set.
  const LOW_ORDER: readonly string[] = [
    '0000000000000000000000000000000000000000000000000000000000000000',
    '0100000000000000000000000000000000000000000000000000000000000000',
    'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
    '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
    'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    '0000000000000000000000000000000000000000000000000000000000000080',
  ];
  const seed = randomBytes(32);
  const kp = xwingKeygen(seed);
  const pkX = kp.publicKey.subarray(1184);

  it('the list really is low order: noble-curves X25519 refuses each point', () => {
    for (const u of LOW_ORDER)
      expect(() => nobleX25519.getSharedSecret(randomBytes(32), unhex(u)), u).toThrow();
  });

  it.each(LOW_ORDER)('Decapsulate with ct_X = %s: no throw; ss = Combiner(ss_M, 0^32, ct_X, pk_X)', (u) => {
    const ct = xwingEncapsulate(kp.publicKey).ciphertext;
    ct.set(unhex(u), 1088);
    const ssM = ml_kem768.decapsulate(ct.subarray(0, 1088), mlkemSecretKeyOf(seed));
    const want = combiner(ssM, new Uint8Array(32), unhex(u), pkX);
    expect(hex(xwingDecapsulate(ct, kp.secretKey))).toBe(hex(want));
    // noble's ml_kem768_x25519 throws here instead (documented in shared/xwing.ts).
    expect(() => ml_kem768_x25519.decapsulate(ct, kp.secretKey)).toThrow();
  });

  it.each(LOW_ORDER)('Encapsulate to pk_X = %s: no throw; ss = Combiner(ss_M, 0^32, ct_X, pk_X)', (u) => {
    const pk = kp.publicKey.slice();
    pk.set(unhex(u), 1184);
    const eseed = randomBytes(64);
    const { sharedSecret, ciphertext } = xwingEncapsulate(pk, { testOnlyEseed: eseed });
    const { sharedSecret: ssM, cipherText: ctM } = ml_kem768.encapsulate(
      pk.subarray(0, 1184),
      eseed.subarray(0, 32),
    );
    const ctX = nobleX25519.getPublicKey(eseed.subarray(32, 64));
    expect(hex(ciphertext)).toBe(hex(Buffer.concat([ctM, ctX])));
    expect(hex(sharedSecret)).toBe(hex(combiner(ssM, new Uint8Array(32), ctX, unhex(u))));
  });
});

describe('XWingDecapsulationKey.destroy()', () => {
  it('Precondition: a destroyed key refuses to decapsulate (KEY_INVALID); destroy is idempotent', () => {
    const kp = xwingKeygen(randomBytes(32));
    const { ciphertext, sharedSecret } = xwingEncapsulate(kp.publicKey);
    const key = XWingDecapsulationKey.fromSecretKey(kp.secretKey);
    expect(key.destroyed).toBe(false);
    expect(hex(key.decapsulate(ciphertext))).toBe(hex(sharedSecret));
    key.destroy();
    expect(key.destroyed).toBe(true);
    expectCode(() => key.decapsulate(ciphertext), 'KEY_INVALID', /destroyed/);
    expectCode(() => xwingDecapsulate(ciphertext, key), 'KEY_INVALID', /destroyed/);
    key.destroy();
    expect(key.destroyed).toBe(true);
    expect(key.publicKey).toHaveLength(1216); // public data stays readable
  });

  it('zeroes the cached ML-KEM secret key', () => {
    clearSeen();
    const key = XWingDecapsulationKey.fromSecretKey(randomBytes(32));
    expect(seen.mlkemSecretKeys).toHaveLength(1);
    const mlkemSk = seen.mlkemSecretKeys[0]!;
    expect(isZero(mlkemSk)).toBe(false); // held while the key is alive
    key.destroy();
    expect(isZero(mlkemSk)).toBe(true);
  });

  it('does not keep or alter the seed it was built from', () => {
    const seed = randomBytes(32);
    const copy = seed.slice();
    XWingDecapsulationKey.fromSecretKey(seed).destroy();
    expect(hex(seed)).toBe(hex(copy));
  });
});

describe('X-Wing secret wiping (style §7)', () => {
  const kp = xwingKeygen(randomBytes(32));
  beforeEach(clearSeen);

  it('keygen zeroes the expanded seed and the ML-KEM secret key; the caller gets a copy of the seed', () => {
    const seed = randomBytes(32);
    const copy = seed.slice();
    const out = xwingKeygen(seed);
    expect(out.secretKey).not.toBe(seed);
    expect(hex(seed)).toBe(hex(copy)); // the caller's seed is untouched
    seed.fill(0xaa);
    expect(hex(out.secretKey)).toBe(hex(copy)); // …and not shared
    expect(seen.shakeOutputs).toHaveLength(1);
    expect(seen.mlkemSecretKeys).toHaveLength(1);
    expect(isZero(seen.shakeOutputs[0]!)).toBe(true);
    expect(isZero(seen.mlkemSeeds[0]!)).toBe(true); // a view of the expanded seed
    expect(isZero(seen.mlkemSecretKeys[0]!)).toBe(true);
  });

  it('xwingPublicKey zeroes the expanded seed and the ML-KEM secret key', () => {
    xwingPublicKey(kp.secretKey);
    expect(seen.shakeOutputs.every(isZero)).toBe(true);
    expect(seen.mlkemSecretKeys.every(isZero)).toBe(true);
  });

  it('encapsulation zeroes m, ss_M, ss_X and the combiner input, and leaves the caller eseed alone', () => {
    const eseed = randomBytes(64);
    const copy = eseed.slice();
    const { sharedSecret } = xwingEncapsulate(kp.publicKey, { testOnlyEseed: eseed });
    expect(hex(eseed)).toBe(hex(copy));
    expect(isZero(sharedSecret)).toBe(false);
    expect(seen.mlkemMsgs).toHaveLength(1);
    expect(seen.mlkemSharedSecrets).toHaveLength(1);
    expect(seen.dhOutputs).toHaveLength(1);
    expect(seen.combinerInputs).toHaveLength(1);
    for (const s of [
      seen.mlkemMsgs[0]!,
      seen.mlkemSharedSecrets[0]!,
      seen.dhOutputs[0]!,
      seen.combinerInputs[0]!,
    ]) {
      expect(isZero(s)).toBe(true);
    }
  });

  // Regression: `testOnlyEseed.slice(0, 32)` was a view for a Buffer (Buffer#slice = subarray), so the `finally`
  // wiped the caller's eseed[0:32], contrary to the JSDoc ("The caller's bytes are copied, not wiped").
  it('a Buffer testOnlyEseed is left alone (copied, not wiped through Buffer#slice)', () => {
    const eseed = osRandom(64);
    const copy = Buffer.from(eseed);
    xwingEncapsulate(kp.publicKey, { testOnlyEseed: eseed });
    expect(hex(eseed)).toBe(hex(copy));
  });

  it('randomized encapsulation zeroes m, ss_M, ss_X and the combiner input', () => {
    xwingEncapsulate(kp.publicKey);
    const all = [...seen.mlkemMsgs, ...seen.mlkemSharedSecrets, ...seen.dhOutputs, ...seen.combinerInputs];
    expect(all).toHaveLength(4);
    expect(all.every(isZero)).toBe(true);
  });

  it('encapsulation zeroes m and nothing leaks when the public key check fails', () => {
    const pk = kp.publicKey.slice();
    pk[0] = 0xff;
    pk[1] = 0xff;
    expectCode(() => xwingEncapsulate(pk, { testOnlyEseed: randomBytes(64) }), 'KEY_INVALID');
    expect(seen.mlkemMsgs).toHaveLength(1);
    expect(isZero(seen.mlkemMsgs[0]!)).toBe(true);
    expect(seen.dhOutputs).toHaveLength(0);
  });

  it('decapsulation with a seed zeroes ss_M, ss_X, the combiner input, the expanded seed and ML-KEM key', () => {
    const { ciphertext } = xwingEncapsulate(kp.publicKey);
    clearSeen();
    const ss = xwingDecapsulate(ciphertext, kp.secretKey);
    expect(isZero(ss)).toBe(false);
    const all = [
      ...seen.mlkemSharedSecrets,
      ...seen.dhOutputs,
      ...seen.combinerInputs,
      ...seen.shakeOutputs,
      ...seen.mlkemSecretKeys,
    ];
    expect(all).toHaveLength(5);
    expect(all.every(isZero)).toBe(true);
  });

  it('decapsulation with an expanded key zeroes ss_M, ss_X and the combiner input (key kept until destroy)', () => {
    const key = XWingDecapsulationKey.fromSecretKey(kp.secretKey);
    const { ciphertext } = xwingEncapsulate(kp.publicKey);
    clearSeen();
    key.decapsulate(ciphertext);
    const all = [...seen.mlkemSharedSecrets, ...seen.dhOutputs, ...seen.combinerInputs];
    expect(all).toHaveLength(3);
    expect(all.every(isZero)).toBe(true);
    key.destroy();
  });
});

describe('checkXWingPublicKey (FIPS 203 §7.2 encapsulation key check, without encapsulating)', () => {
  const codeOf = (pk: Uint8Array): string => {
    try {
      checkXWingPublicKey(pk);
      return 'OK';
    } catch (err) {
      return err instanceof CryptoError ? err.code : 'OTHER';
    }
  };
  /** Sets 12-bit coefficient `index` (0..767) of the ML-KEM part to `value` (ByteEncode12, little-endian). */
  const withCoefficient = (pk: Uint8Array, index: number, value: number): Uint8Array => {
    const out = pk.slice();
    const at = Math.floor(index / 2) * 3;
    if (index % 2 === 0) {
      out[at] = value & 0xff;
      out[at + 1] = ((out[at + 1] as number) & 0xf0) | (value >> 8);
    } else {
      out[at + 1] = ((out[at + 1] as number) & 0x0f) | ((value & 0x0f) << 4);
      out[at + 2] = value >> 4;
    }
    return out;
  };

  it('accepts generated keys and refuses wrong lengths', () => {
    const pk = xwingKeygen().publicKey;
    expect(codeOf(pk)).toBe('OK');
    expect(codeOf(pk.subarray(0, 1215))).toBe('KEY_INVALID');
    expect(codeOf(new Uint8Array(1217))).toBe('KEY_INVALID');
  });

  it('a coefficient of q or more is refused (first, last, even and odd positions); q - 1 is accepted', () => {
    const pk = xwingKeygen().publicKey;
    for (const index of [0, 1, 500, 767]) {
      expect(codeOf(withCoefficient(pk, index, 3329))).toBe('KEY_INVALID');
      expect(codeOf(withCoefficient(pk, index, 4095))).toBe('KEY_INVALID');
      expect(codeOf(withCoefficient(pk, index, 3328))).toBe('OK');
    }
  });

  it("agrees with noble's encapsulation (which performs the same check) on keys with random coefficients (property)", () => {
    const base = xwingKeygen().publicKey;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 767 }), fc.integer({ min: 0, max: 4095 }), (index, value) => {
        const pk = withCoefficient(base, index, value);
        const ours = codeOf(pk);
        let noble = 'OK';
        try {
          xwingEncapsulate(pk);
        } catch (err) {
          noble = err instanceof CryptoError ? err.code : 'OTHER';
        }
        expect(ours).toBe(noble);
        expect(ours).toBe(value < 3329 ? 'OK' : 'KEY_INVALID');
      }),
      { numRuns: runs(200) },
    );
  });
});
