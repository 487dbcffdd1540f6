/**
 * HPKE (shared/hpke.ts): RFC 9180 mode_base with X-Wing / HKDF-SHA256 / AES-256-GCM.
 *
 * - Key schedule: RFC 9180 Appendix A.1.1 (DHKEM(X25519), HKDF-SHA256, AES-128-GCM, mode_base): given its
 *   shared_secret and info, `hpkeKeySchedule` must give its key, base_nonce and exporter_secret (the schedule does
 *   not depend on the KEM given shared_secret), and sequence 0 must encrypt to its first ciphertext.
 * - Interop, both directions, with the independent implementation @hpke/core + @hpke/hybridkem-x-wing, including
 *   byte-identical output with the same encapsulation seed (their `ekm`, our `testOnlyEseed`).
 * - Every check has a named negative test (style §5), and the secrets are zeroed (style §7): node:crypto's HMAC and
 *   AES-GCM constructors and X-Wing's encapsulate/decapsulate are wrapped to keep a reference to every key, nonce
 *   and shared secret they see; the code under test is unchanged.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { Aes256Gcm, CipherSuite, HkdfSha256 } from '@hpke/core';
import { XWing } from '@hpke/hybridkem-x-wing';
import { shake256 } from '@noble/hashes/sha3.js';
import { beforeEach, describe, expect, it, vi } from 'vitest';

const seen = vi.hoisted(() => ({
  hmacKeys: [] as Uint8Array[],
  aeadKeys: [] as Uint8Array[],
  aeadNonces: [] as Uint8Array[],
  sharedSecrets: [] as Uint8Array[],
}));

vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  const createHmac = ((algorithm: string, key: Uint8Array, options?: object) => {
    seen.hmacKeys.push(key);
    return actual.createHmac(algorithm, key, options);
  }) as typeof actual.createHmac;
  const createCipheriv = ((algorithm: string, key: Uint8Array, iv: Uint8Array, options?: object) => {
    seen.aeadKeys.push(key);
    seen.aeadNonces.push(iv);
    return actual.createCipheriv(algorithm, key, iv, options as never);
  }) as typeof actual.createCipheriv;
  const createDecipheriv = ((algorithm: string, key: Uint8Array, iv: Uint8Array, options?: object) => {
    seen.aeadKeys.push(key);
    seen.aeadNonces.push(iv);
    return actual.createDecipheriv(algorithm, key, iv, options as never);
  }) as typeof actual.createDecipheriv;
  const wrapped = { createHmac, createCipheriv, createDecipheriv };
  return { ...actual, ...wrapped, default: { ...actual, ...wrapped } };
});

vi.mock('../../shared/xwing.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../shared/xwing.js')>();
  return {
    ...actual,
    xwingEncapsulate: (...args: Parameters<typeof actual.xwingEncapsulate>) => {
      const r = actual.xwingEncapsulate(...args);
      seen.sharedSecrets.push(r.sharedSecret);
      return r;
    },
    xwingDecapsulate: (...args: Parameters<typeof actual.xwingDecapsulate>) => {
      const ss = actual.xwingDecapsulate(...args);
      seen.sharedSecrets.push(ss);
      return ss;
    },
  };
});

const { HPKE_LIMITS, HPKE_SUITE, hpkeKeySchedule, hpkeOpen, hpkeSeal, xwingPublicKeyDigest } = await import(
  '../../shared/hpke.js'
);
const { XWING, XWingDecapsulationKey, xwingKeygen } = await import('../../shared/xwing.js');
const { detBytes, expectCode } = await import('./helpers.js');

const hex = (b: Uint8Array | ArrayBuffer) => Buffer.from(b as Uint8Array).toString('hex');
const unhex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));
const utf8 = (s: string) => new TextEncoder().encode(s);
const isZero = (b: Uint8Array) => b.every((x) => x === 0);
const ab = (u: Uint8Array): ArrayBuffer =>
  u.buffer.slice(u.byteOffset, u.byteOffset + u.byteLength) as ArrayBuffer;

function clearSeen(): void {
  for (const list of Object.values(seen)) list.length = 0;
}

const RECIPIENT = xwingKeygen(detBytes('hpke recipient', 32));
const INFO = utf8('ekms/wrap-key v1 key=k-1 version=3 request=5d41402abc4b2a76b9719d911017c592');
const AAD = utf8('response 42');
const PT = detBytes('data key', 32);

function newSuite(): CipherSuite {
  return new CipherSuite({ kem: new XWing(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });
}

describe('HPKE_SUITE', () => {
  it('names mode_base, X-Wing (0x647a), HKDF-SHA256 (1), AES-256-GCM (2) with RFC 9180 sizes', () => {
    expect(HPKE_SUITE).toEqual({
      id: 'HPKE-v1/Base/X-Wing/HKDF-SHA256/AES-256-GCM',
      mode: 0,
      kemId: 0x647a,
      kdfId: 1,
      aeadId: 2,
      nSecret: 32,
      nEnc: 1120,
      nPk: 1216,
      nSk: 32,
      nH: 32,
      nK: 32,
      nN: 12,
      nT: 16,
    });
    expect(Object.isFrozen(HPKE_SUITE)).toBe(true);
    expect(Object.isFrozen(HPKE_LIMITS)).toBe(true);
    expect(HPKE_SUITE.kemId).toBe(XWING.hpkeKemId);
  });
});

describe('HPKE key schedule: RFC 9180 Appendix A.1.1', () => {
  // RFC 9180 A.1.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, mode_base.
  const A11 = {
    suite: { kemId: 0x0020, kdfId: 0x0001, aeadId: 0x0001, nK: 16, nN: 12 },
    info: '4f6465206f6e2061204772656369616e2055726e',
    sharedSecret: 'fe0e18c9f024ce43799ae393c7e8fe8fce9d218875e8227b0187c04e7d2ea1fc',
    key: '4531685d41d65f03dc48f6b8302c05b0',
    baseNonce: '56d890e5accaaf011cff4b7d',
    exporterSecret: '45ff1c2e220db587171952c0592d5f5ebe103f1561a2614e38f2ffd47e99e3f8',
    // encryptions[0]: sequence number 0
    pt: '4265617574792069732074727574682c20747275746820626561757479',
    aad: '436f756e742d30',
    ct: 'f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a',
  };

  it('gives the published key, base_nonce and exporter_secret', () => {
    const ks = hpkeKeySchedule(unhex(A11.sharedSecret), unhex(A11.info), A11.suite);
    expect(hex(ks.key)).toBe(A11.key);
    expect(hex(ks.baseNonce)).toBe(A11.baseNonce);
    expect(hex(ks.exporterSecret)).toBe(A11.exporterSecret);
  });

  it('sequence 0 uses base_nonce as the nonce: the published first ciphertext', () => {
    const ks = hpkeKeySchedule(unhex(A11.sharedSecret), unhex(A11.info), A11.suite);
    const c = createCipheriv('aes-128-gcm', ks.key, ks.baseNonce);
    c.setAAD(unhex(A11.aad));
    const ct = Buffer.concat([c.update(unhex(A11.pt)), c.final(), c.getAuthTag()]);
    expect(hex(ct)).toBe(A11.ct);
  });

  it('Precondition: a KDF other than HKDF-SHA256 is SUITE_UNKNOWN', () => {
    expectCode(
      () => hpkeKeySchedule(unhex(A11.sharedSecret), unhex(A11.info), { ...A11.suite, kdfId: 0x0002 }),
      'SUITE_UNKNOWN',
      /KDF id 2 is not supported/,
    );
  });

  it('Precondition: an AEAD key or nonce length outside 1..32 is CRYPTO_PARAMETER_INVALID', () => {
    for (const bad of [{ nK: 0 }, { nK: 33 }, { nN: 64 }, { nN: 1.5 }]) {
      expectCode(
        () => hpkeKeySchedule(unhex(A11.sharedSecret), unhex(A11.info), { ...A11.suite, ...bad }),
        'CRYPTO_PARAMETER_INVALID',
        /LabeledExpand length/,
      );
    }
  });
});

describe('HPKE round trips', () => {
  it.each([
    ['empty plaintext, empty info and aad', 0, 0, 0],
    ['32-byte key, typical info', 32, INFO.length, AAD.length],
    ['1 KiB', 1024, 7, 100],
    ['every limit reached', HPKE_LIMITS.maxPlaintextBytes, HPKE_LIMITS.maxInfoBytes, HPKE_LIMITS.maxAadBytes],
  ])('%s', (_name, ptLen, infoLen, aadLen) => {
    const pt = detBytes('pt', ptLen);
    const info = detBytes('info', infoLen);
    const aad = detBytes('aad', aadLen);
    const { enc, ciphertext } = hpkeSeal(RECIPIENT.publicKey, info, aad, pt);
    expect(enc).toHaveLength(HPKE_SUITE.nEnc);
    expect(ciphertext).toHaveLength(ptLen + HPKE_SUITE.nT);
    expect(hex(hpkeOpen(RECIPIENT.secretKey, enc, info, aad, ciphertext))).toBe(hex(pt));
  });

  it('opens with an expanded XWingDecapsulationKey, which stays usable', () => {
    const key = XWingDecapsulationKey.fromSecretKey(RECIPIENT.secretKey);
    for (let i = 0; i < 3; i++) {
      const { enc, ciphertext } = hpkeSeal(key.publicKey, INFO, AAD, PT);
      expect(hex(hpkeOpen(key, enc, INFO, AAD, ciphertext))).toBe(hex(PT));
    }
    expect(key.destroyed).toBe(false);
    key.destroy();
  });

  it('accepts Buffers and views at an offset into a larger buffer', () => {
    const big = Buffer.alloc(4096, 0x11);
    big.set(RECIPIENT.publicKey, 3);
    big.set(PT, 2000);
    const pk = big.subarray(3, 3 + 1216);
    const pt = big.subarray(2000, 2032);
    const { enc, ciphertext } = hpkeSeal(pk, Buffer.from(INFO), Buffer.from(AAD), pt);
    const box = new Uint8Array(enc.length + ciphertext.length + 5);
    box.set(enc, 5);
    box.set(ciphertext, 5 + enc.length);
    const out = hpkeOpen(
      RECIPIENT.secretKey,
      box.subarray(5, 5 + enc.length),
      INFO,
      AAD,
      box.subarray(5 + enc.length),
    );
    expect(hex(out)).toBe(hex(PT));
  });

  it('every seal is fresh: enc and ciphertext differ for identical inputs', () => {
    const a = hpkeSeal(RECIPIENT.publicKey, INFO, AAD, PT);
    const b = hpkeSeal(RECIPIENT.publicKey, INFO, AAD, PT);
    expect(hex(a.enc)).not.toBe(hex(b.enc));
    expect(hex(a.ciphertext)).not.toBe(hex(b.ciphertext));
  });

  it('testOnlyEseed makes sealing deterministic', () => {
    const eseed = detBytes('eseed', 64);
    const a = hpkeSeal(RECIPIENT.publicKey, INFO, AAD, PT, { testOnlyEseed: eseed });
    const b = hpkeSeal(RECIPIENT.publicKey, INFO, AAD, PT, { testOnlyEseed: eseed });
    expect(hex(a.enc)).toBe(hex(b.enc));
    expect(hex(a.ciphertext)).toBe(hex(b.ciphertext));
  });
});

describe('HPKE interop with @hpke/core + @hpke/hybridkem-x-wing', () => {
  it('our hpkeSeal → @hpke open gives the plaintext', async () => {
    const suite = newSuite();
    const recipientKey = await suite.kem.importKey('raw', ab(RECIPIENT.secretKey), false);
    for (const pt of [new Uint8Array(0), PT, detBytes('long', 3000)]) {
      const { enc, ciphertext } = hpkeSeal(RECIPIENT.publicKey, INFO, AAD, pt);
      const opened = await suite.open(
        { recipientKey, enc: ab(enc), info: ab(INFO) },
        ab(ciphertext),
        ab(AAD),
      );
      expect(hex(opened)).toBe(hex(pt));
    }
  });

  it('@hpke seal → our hpkeOpen gives the plaintext', async () => {
    const suite = newSuite();
    const recipientPublicKey = await suite.kem.importKey('raw', ab(RECIPIENT.publicKey), true);
    for (const pt of [new Uint8Array(0), PT, detBytes('long', 3000)]) {
      const { ct, enc } = await suite.seal({ recipientPublicKey, info: ab(INFO) }, ab(pt), ab(AAD));
      const opened = hpkeOpen(RECIPIENT.secretKey, new Uint8Array(enc), INFO, AAD, new Uint8Array(ct));
      expect(hex(opened)).toBe(hex(pt));
    }
  });

  it('with the same encapsulation seed both produce identical enc and ciphertext', async () => {
    const suite = newSuite();
    const recipientPublicKey = await suite.kem.importKey('raw', ab(RECIPIENT.publicKey), true);
    for (let i = 0; i < 3; i++) {
      const eseed = detBytes(`interop eseed ${i}`, 64);
      const pt = detBytes(`interop pt ${i}`, 17 * i);
      const theirs = await suite.seal(
        { recipientPublicKey, info: ab(INFO), ekm: ab(eseed) },
        ab(pt),
        ab(AAD),
      );
      const ours = hpkeSeal(RECIPIENT.publicKey, INFO, AAD, pt, { testOnlyEseed: eseed });
      expect(hex(ours.enc), `case ${i}`).toBe(hex(theirs.enc));
      expect(hex(ours.ciphertext), `case ${i}`).toBe(hex(theirs.ct));
    }
  });

  it('keys agree: @hpke generateKeyPairDerand(seed) has our public key', async () => {
    const kem = new XWing();
    const seed = detBytes('derand', 32);
    const kp = await kem.generateKeyPairDerand(seed);
    expect(hex(await kem.serializePublicKey(kp.publicKey))).toBe(hex(xwingKeygen(seed).publicKey));
  });

  it('draft §5.6 DeriveKeyPair(ikm) = GenerateKeyPairDerand(SHAKE256(ikm, 32)) matches @hpke deriveKeyPair', async () => {
    const kem = new XWing();
    const ikm = detBytes('ikm', 32);
    const kp = await kem.deriveKeyPair(ab(ikm));
    const ours = xwingKeygen(shake256(ikm, { dkLen: 32 }));
    expect(hex(await kem.serializePublicKey(kp.publicKey))).toBe(hex(ours.publicKey));
  });

  it('@hpke open rejects our ciphertext under a wrong info (both bind info)', async () => {
    const suite = newSuite();
    const recipientKey = await suite.kem.importKey('raw', ab(RECIPIENT.secretKey), false);
    const { enc, ciphertext } = hpkeSeal(RECIPIENT.publicKey, INFO, AAD, PT);
    await expect(
      suite.open({ recipientKey, enc: ab(enc), info: ab(utf8('other')) }, ab(ciphertext), ab(AAD)),
    ).rejects.toThrow();
  });
});

describe('HPKE open failures (style §5: each check has a named negative test)', () => {
  const sealed = hpkeSeal(RECIPIENT.publicKey, INFO, AAD, PT);
  const open = (
    over: Partial<{ sk: Uint8Array; enc: Uint8Array; info: Uint8Array; aad: Uint8Array; ct: Uint8Array }>,
  ) =>
    hpkeOpen(
      over.sk ?? RECIPIENT.secretKey,
      over.enc ?? sealed.enc,
      over.info ?? INFO,
      over.aad ?? AAD,
      over.ct ?? sealed.ciphertext,
    );
  const flip = (b: Uint8Array, byte: number) => {
    const c = b.slice();
    c[byte]! ^= 0x01;
    return c;
  };
  const DECRYPT = /HPKE open failed/;

  it('the untouched message opens (control)', () => {
    expect(hex(open({}))).toBe(hex(PT));
  });

  it('Precondition: a different info is DECRYPT_FAILED', () => {
    expectCode(() => open({ info: utf8('ekms/wrap-key v1 key=k-2') }), 'DECRYPT_FAILED', DECRYPT);
    expectCode(() => open({ info: new Uint8Array(0) }), 'DECRYPT_FAILED', DECRYPT);
  });

  it('Precondition: a different aad is DECRYPT_FAILED', () => {
    expectCode(() => open({ aad: utf8('response 43') }), 'DECRYPT_FAILED', DECRYPT);
    expectCode(() => open({ aad: new Uint8Array(0) }), 'DECRYPT_FAILED', DECRYPT);
  });

  it.each([0, 500, 1087, 1088, 1119])('Precondition: enc with byte %i flipped is DECRYPT_FAILED', (byte) => {
    expectCode(() => open({ enc: flip(sealed.enc, byte) }), 'DECRYPT_FAILED', DECRYPT);
  });

  it.each([0, 31])('Precondition: ciphertext body byte %i flipped is DECRYPT_FAILED', (byte) => {
    expectCode(() => open({ ct: flip(sealed.ciphertext, byte) }), 'DECRYPT_FAILED', DECRYPT);
  });

  it.each([32, 40, 47])('Precondition: tag byte %i flipped is DECRYPT_FAILED', (byte) => {
    expectCode(() => open({ ct: flip(sealed.ciphertext, byte) }), 'DECRYPT_FAILED', DECRYPT);
  });

  it('Precondition: a truncated or extended ciphertext is DECRYPT_FAILED', () => {
    const ct = sealed.ciphertext;
    for (const cut of [1, 16, 32]) {
      expectCode(() => open({ ct: ct.subarray(0, ct.length - cut) }), 'DECRYPT_FAILED', DECRYPT);
    }
    expectCode(() => open({ ct: Buffer.concat([ct, Uint8Array.of(0)]) }), 'DECRYPT_FAILED', DECRYPT);
  });

  it('Precondition: a ciphertext shorter than the 16-byte tag is DECRYPT_FAILED (truncated)', () => {
    for (const n of [0, 1, 15]) {
      expectCode(
        () => open({ ct: sealed.ciphertext.subarray(0, n) }),
        'DECRYPT_FAILED',
        /shorter than the 16-byte tag/,
      );
    }
  });

  it('Precondition: the wrong recipient key is DECRYPT_FAILED', () => {
    expectCode(() => open({ sk: detBytes('someone else', 32) }), 'DECRYPT_FAILED', DECRYPT);
  });

  it('Precondition: enc and ciphertext taken from two different seals are DECRYPT_FAILED', () => {
    const other = hpkeSeal(RECIPIENT.publicKey, INFO, AAD, PT);
    expectCode(() => open({ enc: other.enc }), 'DECRYPT_FAILED', DECRYPT);
  });

  it('a failure carries the AEAD error as its cause, and no plaintext', () => {
    const err = expectCode(() => open({ aad: utf8('x') }), 'DECRYPT_FAILED');
    expect(err.cause).toBeInstanceOf(Error);
    expect(err.details).toBeUndefined();
  });
});

describe('HPKE input bounds (style §6)', () => {
  const sealed = hpkeSeal(RECIPIENT.publicKey, INFO, AAD, PT);
  const notBytes = 'text' as unknown as Uint8Array;

  it.each([0, 1215, 1217, 2432])('Precondition: a recipient public key of %i bytes is KEY_INVALID', (n) => {
    expectCode(
      () => hpkeSeal(new Uint8Array(n), INFO, AAD, PT),
      'KEY_INVALID',
      /public key must be 1216 bytes/,
    );
  });

  it('Precondition: a recipient public key failing the ML-KEM check is KEY_INVALID (HPKE EncapError)', () => {
    const pk = RECIPIENT.publicKey.slice();
    pk[0] = 0xff;
    pk[1] = 0xff;
    expectCode(() => hpkeSeal(pk, INFO, AAD, PT), 'KEY_INVALID', /FIPS 203 §7\.2/);
  });

  it.each([0, 31, 33, 64])('Precondition: a recipient secret key of %i bytes is KEY_INVALID', (n) => {
    expectCode(() => hpkeOpen(new Uint8Array(n), sealed.enc, INFO, AAD, sealed.ciphertext), 'KEY_INVALID');
  });

  it('Precondition: a destroyed XWingDecapsulationKey is KEY_INVALID', () => {
    const key = XWingDecapsulationKey.fromSecretKey(RECIPIENT.secretKey);
    key.destroy();
    expectCode(() => hpkeOpen(key, sealed.enc, INFO, AAD, sealed.ciphertext), 'KEY_INVALID', /destroyed/);
  });

  it.each([0, 32, 1119, 1121, 2240])('Precondition: an enc of %i bytes is CRYPTO_PARAMETER_INVALID', (n) => {
    const err = expectCode(
      () => hpkeOpen(RECIPIENT.secretKey, new Uint8Array(n), INFO, AAD, sealed.ciphertext),
      'CRYPTO_PARAMETER_INVALID',
      /enc must be a 1120-byte X-Wing ciphertext, got \d+/,
    );
    expect(err.details).toMatchObject({ expected: 1120, actual: n });
  });

  it('Precondition: info over 1024 bytes is CRYPTO_PARAMETER_INVALID, seal and open', () => {
    const info = new Uint8Array(HPKE_LIMITS.maxInfoBytes + 1);
    expectCode(
      () => hpkeSeal(RECIPIENT.publicKey, info, AAD, PT),
      'CRYPTO_PARAMETER_INVALID',
      /info must be at most 1024/,
    );
    expectCode(
      () => hpkeOpen(RECIPIENT.secretKey, sealed.enc, info, AAD, sealed.ciphertext),
      'CRYPTO_PARAMETER_INVALID',
      /info must be at most 1024/,
    );
  });

  it('Precondition: aad over 64 KiB is CRYPTO_PARAMETER_INVALID, seal and open', () => {
    const aad = new Uint8Array(HPKE_LIMITS.maxAadBytes + 1);
    expectCode(
      () => hpkeSeal(RECIPIENT.publicKey, INFO, aad, PT),
      'CRYPTO_PARAMETER_INVALID',
      /aad must be at most/,
    );
    expectCode(
      () => hpkeOpen(RECIPIENT.secretKey, sealed.enc, INFO, aad, sealed.ciphertext),
      'CRYPTO_PARAMETER_INVALID',
      /aad must be at most/,
    );
  });

  it('Precondition: a plaintext over 64 KiB is CRYPTO_PARAMETER_INVALID', () => {
    const err = expectCode(
      () => hpkeSeal(RECIPIENT.publicKey, INFO, AAD, new Uint8Array(HPKE_LIMITS.maxPlaintextBytes + 1)),
      'CRYPTO_PARAMETER_INVALID',
      /plaintext must be at most 65536 bytes, got 65537/,
    );
    expect(err.details).toMatchObject({ max: 65536, actual: 65537 });
  });

  it('Precondition: a ciphertext over 64 KiB + 16 is CRYPTO_PARAMETER_INVALID', () => {
    expectCode(
      () =>
        hpkeOpen(
          RECIPIENT.secretKey,
          sealed.enc,
          INFO,
          AAD,
          new Uint8Array(HPKE_LIMITS.maxCiphertextBytes + 1),
        ),
      'CRYPTO_PARAMETER_INVALID',
      /ciphertext must be at most 65552/,
    );
  });

  it('Precondition: non-byte info, aad, plaintext, enc or ciphertext is CRYPTO_PARAMETER_INVALID', () => {
    const pk = RECIPIENT.publicKey;
    const sk = RECIPIENT.secretKey;
    const { enc, ciphertext: ct } = sealed;
    expectCode(
      () => hpkeSeal(pk, notBytes, AAD, PT),
      'CRYPTO_PARAMETER_INVALID',
      /info must be a Uint8Array/,
    );
    expectCode(
      () => hpkeSeal(pk, INFO, notBytes, PT),
      'CRYPTO_PARAMETER_INVALID',
      /aad must be a Uint8Array/,
    );
    expectCode(
      () => hpkeSeal(pk, INFO, AAD, notBytes),
      'CRYPTO_PARAMETER_INVALID',
      /plaintext must be a Uint8Array/,
    );
    expectCode(() => hpkeOpen(sk, notBytes, INFO, AAD, ct), 'CRYPTO_PARAMETER_INVALID', /non-byte value/);
    expectCode(
      () => hpkeOpen(sk, enc, notBytes, AAD, ct),
      'CRYPTO_PARAMETER_INVALID',
      /info must be a Uint8Array/,
    );
    expectCode(
      () => hpkeOpen(sk, enc, INFO, notBytes, ct),
      'CRYPTO_PARAMETER_INVALID',
      /aad must be a Uint8Array/,
    );
    expectCode(
      () => hpkeOpen(sk, enc, INFO, AAD, notBytes),
      'CRYPTO_PARAMETER_INVALID',
      /ciphertext must be a/,
    );
  });

  it('Precondition: a testOnlyEseed that is not 64 bytes is CRYPTO_PARAMETER_INVALID', () => {
    expectCode(
      () => hpkeSeal(RECIPIENT.publicKey, INFO, AAD, PT, { testOnlyEseed: new Uint8Array(32) }),
      'CRYPTO_PARAMETER_INVALID',
      /testOnlyEseed/,
    );
  });
});

describe('xwingPublicKeyDigest', () => {
  it('is SHA-256 of the 1216-byte public key (32 bytes)', () => {
    const d = xwingPublicKeyDigest(RECIPIENT.publicKey);
    expect(d).toHaveLength(32);
    expect(hex(d)).toBe(createHash('sha256').update(RECIPIENT.publicKey).digest('hex'));
    expect(hex(xwingPublicKeyDigest(Buffer.from(RECIPIENT.publicKey)))).toBe(hex(d));
  });

  it.each([0, 32, 1184, 1215, 1217])('Precondition: a public key of %i bytes is KEY_INVALID', (n) => {
    const err = expectCode(
      () => xwingPublicKeyDigest(new Uint8Array(n)),
      'KEY_INVALID',
      /must be 1216 bytes/,
    );
    expect(err.details).toMatchObject({ expected: 1216, actual: n });
  });

  it('Precondition: a non-byte public key is KEY_INVALID', () => {
    expectCode(() => xwingPublicKeyDigest('pk' as unknown as Uint8Array), 'KEY_INVALID', /non-byte value/);
  });
});

describe('HPKE secret wiping (style §7)', () => {
  beforeEach(clearSeen);

  /** Every HMAC key (shared secret as the "secret" salt, the PRK), AEAD key, nonce and shared secret is zero. */
  function expectAllWiped(): void {
    expect(seen.sharedSecrets).toHaveLength(1);
    expect(seen.aeadKeys).toHaveLength(1);
    expect(seen.aeadNonces).toHaveLength(1);
    // psk_id_hash and info_hash (empty salt), secret (keyed by shared_secret), 3 × LabeledExpand (keyed by secret)
    expect(seen.hmacKeys).toHaveLength(6);
    expect(seen.hmacKeys.filter((k) => k.length > 0)).toHaveLength(4);
    expect(seen.hmacKeys[2]).toBe(seen.sharedSecrets[0]);
    for (const s of [...seen.sharedSecrets, ...seen.aeadKeys, ...seen.aeadNonces, ...seen.hmacKeys]) {
      expect(isZero(s)).toBe(true);
    }
  }

  it('hpkeSeal zeroes the shared secret, PRK, key and nonce', () => {
    const { ciphertext } = hpkeSeal(RECIPIENT.publicKey, INFO, AAD, PT);
    expect(isZero(ciphertext)).toBe(false);
    expectAllWiped();
  });

  it('hpkeOpen zeroes them after success', () => {
    const sealed = hpkeSeal(RECIPIENT.publicKey, INFO, AAD, PT);
    clearSeen();
    expect(hex(hpkeOpen(RECIPIENT.secretKey, sealed.enc, INFO, AAD, sealed.ciphertext))).toBe(hex(PT));
    expectAllWiped();
  });

  it('hpkeOpen zeroes them after DECRYPT_FAILED too', () => {
    const sealed = hpkeSeal(RECIPIENT.publicKey, INFO, AAD, PT);
    clearSeen();
    expectCode(
      () => hpkeOpen(RECIPIENT.secretKey, sealed.enc, INFO, utf8('no'), sealed.ciphertext),
      'DECRYPT_FAILED',
    );
    expectAllWiped();
  });

  it('hpkeKeySchedule zeroes its PRK; the outputs belong to the caller', () => {
    const ks = hpkeKeySchedule(detBytes('ss', 32), INFO, HPKE_SUITE);
    expect(isZero(ks.key) || isZero(ks.baseNonce) || isZero(ks.exporterSecret)).toBe(false);
    const prks = seen.hmacKeys.slice(3);
    expect(prks).toHaveLength(3);
    expect(prks.every(isZero)).toBe(true);
  });
});
