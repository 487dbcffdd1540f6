/**
 * HPKE (RFC 9180) in mode_base, single-shot, with one fixed suite: KEM X-Wing (0x647a), KDF HKDF-SHA256 (0x0001),
 * AEAD AES-256-GCM (0x0002). Design §3: keys released to an attested workload are HPKE ciphertexts to the X-Wing
 * public key that the workload's evidence binds by digest (`xwingPublicKeyDigest`); any HPKE implementation with
 * X-Wing opens them (test/crypto/hpke.test.ts checks @hpke/core + @hpke/hybridkem-x-wing both ways).
 *
 * What is implemented, by section:
 * - KEM (draft-connolly-cfrg-xwing-kem-10 §5.6): Encap() is X-Wing Encapsulate() and Decap() is Decapsulate()
 *   (shared/xwing.ts); enc is the 1120-byte X-Wing ciphertext. The KEM's 32-byte shared secret is used as HPKE's
 *   `shared_secret` directly: X-Wing is not a DHKEM, so there is no ExtractAndExpand over a DH output.
 * - KeySchedule (RFC 9180 §5.1) for mode_base (mode 0x00, psk = psk_id = ""), with LabeledExtract/LabeledExpand
 *   (§4) over HKDF-SHA256 (RFC 5869) built on `node:crypto` HMAC-SHA256. suite_id = "HPKE" ‖ I2OSP(kem_id, 2) ‖
 *   I2OSP(kdf_id, 2) ‖ I2OSP(aead_id, 2). Every LabeledExpand here asks for at most Nh = 32 bytes, so Expand is the
 *   single block T(1) = HMAC(prk, info ‖ 0x01), truncated.
 * - Single-shot Seal/Open (§6.1) at sequence number 0: nonce = base_nonce XOR I2OSP(0, Nn) = base_nonce.
 *   ciphertext = AES-256-GCM(key, nonce, aad, plaintext) ‖ 16-byte tag (§5.2's Seal/Open; AEAD via `node:crypto`).
 *
 * Left out: the psk, auth and auth_psk modes (X-Wing is not an authenticated KEM, draft §1.4), multi-message
 * contexts, the secret export interface (§5.3; `hpkeKeySchedule` computes exporter_secret for tests only), and
 * DeriveKeyPair (keys are X-Wing 32-byte seeds, shared/xwing.ts).
 *
 * Secret lifetime (style §7): the KEM shared secret, the key-schedule secret (PRK), the AEAD key and base nonce are
 * zeroed in `finally`, on success and on failure. The shared secret is fed to HMAC by `update`/key, never copied
 * into a concatenation. A failed open never returns, and zeroes, the unauthenticated plaintext OpenSSL produced.
 * The plaintext that `hpkeOpen` returns belongs to the caller, who zeroes it.
 *
 * Bounds (style §6), checked before any key work:
 * - info ≤ 1024 bytes: design §3 puts the key id, version and a request digest in it (well under 300 bytes); 1 KiB
 *   matches the Nitro user_data/nonce and context-string limits of shared/limits.ts. RFC 9180 §7.2.1 asks that at
 *   least 64 bytes be accepted.
 * - aad ≤ 64 KiB and plaintext ≤ 64 KiB: wrapped keys are a few dozen bytes, and a 64 KiB message still fits a frame
 *   (LIMITS.maxFrameBytes 256 KiB) with room for evidence; bulk data goes through envelope streams instead.
 * - ciphertext: between Nt = 16 (empty plaintext) and 64 KiB + 16 bytes. enc: exactly Nenc = 1120 bytes.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac } from 'node:crypto';
import { CryptoError } from './crypto-errors.js';
import { XWING, type XWingDecapsulationKey, xwingDecapsulate, xwingEncapsulate } from './xwing.js';

/**
 * The one HPKE suite of this service (style §8): mode_base, X-Wing, HKDF-SHA256, AES-256-GCM, with the RFC 9180
 * identifiers and sizes (§7: Nsecret, Nenc, Npk, Nsk of the KEM; Nh of the KDF; Nk, Nn, Nt of the AEAD).
 */
export const HPKE_SUITE = Object.freeze({
  /** Versioned name: "HPKE-v1" is RFC 9180's version label; every parameter spelled out. */
  id: 'HPKE-v1/Base/X-Wing/HKDF-SHA256/AES-256-GCM',
  mode: 0x00,
  kemId: XWING.hpkeKemId,
  kdfId: 0x0001,
  aeadId: 0x0002,
  nSecret: XWING.sharedSecretBytes,
  nEnc: XWING.ciphertextBytes,
  nPk: XWING.publicKeyBytes,
  nSk: XWING.secretKeyBytes,
  nH: 32,
  nK: 32,
  nN: 12,
  nT: 16,
} as const);
export type HpkeSuite = typeof HPKE_SUITE;

/** Size limits of `hpkeSeal` / `hpkeOpen` inputs, in bytes (see the header for why these figures). */
export const HPKE_LIMITS = Object.freeze({
  maxInfoBytes: 1024,
  maxAadBytes: 64 * 1024,
  maxPlaintextBytes: 64 * 1024,
  maxCiphertextBytes: 64 * 1024 + HPKE_SUITE.nT,
} as const);

/** The result of `hpkeSeal`: the encapsulated key (X-Wing ciphertext) and the AEAD ciphertext with its tag. */
export interface HpkeSealed {
  readonly enc: Uint8Array;
  readonly ciphertext: Uint8Array;
}

/** Options of `hpkeSeal`. */
export interface HpkeSealOptions {
  /**
   * TESTS ONLY: the 64-byte X-Wing encapsulation seed (see `XWingEncapsulateOptions.testOnlyEseed`), to make
   * known-answer vectors and compare with other implementations' deterministic encapsulation.
   */
  readonly testOnlyEseed?: Uint8Array;
}

/** The parameters the key schedule depends on (KEM-independent given shared_secret). */
export interface HpkeKeyScheduleSuite {
  readonly kemId: number;
  readonly kdfId: number;
  readonly aeadId: number;
  /** AEAD key length. */
  readonly nK: number;
  /** AEAD nonce length. */
  readonly nN: number;
}

/** Outputs of the RFC 9180 §5.1 key schedule (mode_base). New arrays; the caller zeroes them. */
export interface HpkeKeySchedule {
  readonly key: Uint8Array;
  readonly baseNonce: Uint8Array;
  readonly exporterSecret: Uint8Array;
}

const HPKE_V1 = Buffer.from('HPKE-v1', 'latin1');
const MODE_BASE = 0x00;
const HKDF_SHA256 = 0x0001;
const NH = 32;
const EMPTY = new Uint8Array(0);
const LABEL = {
  pskIdHash: Buffer.from('psk_id_hash', 'latin1'),
  infoHash: Buffer.from('info_hash', 'latin1'),
  secret: Buffer.from('secret', 'latin1'),
  key: Buffer.from('key', 'latin1'),
  baseNonce: Buffer.from('base_nonce', 'latin1'),
  exp: Buffer.from('exp', 'latin1'),
} as const;

function i2osp2(n: number): Uint8Array {
  return Uint8Array.of((n >>> 8) & 0xff, n & 0xff);
}

/** suite_id = "HPKE" ‖ I2OSP(kem_id, 2) ‖ I2OSP(kdf_id, 2) ‖ I2OSP(aead_id, 2) (RFC 9180 §5.1). */
function suiteIdOf(suite: HpkeKeyScheduleSuite): Uint8Array {
  return Buffer.concat([
    Buffer.from('HPKE', 'latin1'),
    i2osp2(suite.kemId),
    i2osp2(suite.kdfId),
    i2osp2(suite.aeadId),
  ]);
}

/**
 * LabeledExtract(salt, label, ikm) = Extract(salt, "HPKE-v1" ‖ suite_id ‖ label ‖ ikm), Extract = HMAC-SHA256 keyed
 * by salt (RFC 5869 §2.2; an empty salt is the same HMAC key as Nh zero bytes). ikm is streamed, not copied.
 */
function labeledExtract(
  suiteId: Uint8Array,
  salt: Uint8Array,
  label: Uint8Array,
  ikm: Uint8Array,
): Uint8Array {
  const out = createHmac('sha256', salt).update(HPKE_V1).update(suiteId).update(label).update(ikm).digest();
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * LabeledExpand(prk, label, info, L) = Expand(prk, I2OSP(L, 2) ‖ "HPKE-v1" ‖ suite_id ‖ label ‖ info, L).
 * L ≤ Nh here, so Expand (RFC 5869 §2.3) is T(1) = HMAC(prk, labeled_info ‖ 0x01) truncated to L.
 */
function labeledExpand(
  suiteId: Uint8Array,
  prk: Uint8Array,
  label: Uint8Array,
  info: Uint8Array,
  length: number,
): Uint8Array {
  if (!Number.isInteger(length) || length < 1 || length > NH) {
    throw new CryptoError(
      'CRYPTO_PARAMETER_INVALID',
      `HPKE LabeledExpand length must be 1..${NH}, got ${length}`,
    );
  }
  const t1 = createHmac('sha256', prk)
    .update(i2osp2(length))
    .update(HPKE_V1)
    .update(suiteId)
    .update(label)
    .update(info)
    .update(Uint8Array.of(0x01))
    .digest();
  try {
    return Uint8Array.from(t1.subarray(0, length));
  } finally {
    t1.fill(0);
  }
}

/**
 * KeySchedule<ROLE>(mode_base, shared_secret, info, psk = "", psk_id = "") of RFC 9180 §5.1: key, base_nonce and
 * exporter_secret. Exported for the RFC 9180 Appendix A known-answer test (the schedule does not depend on the KEM
 * given shared_secret); production code calls `hpkeSeal` / `hpkeOpen`.
 * @internal
 * @throws CryptoError SUITE_UNKNOWN when `suite.kdfId` is not HKDF-SHA256 (0x0001); CRYPTO_PARAMETER_INVALID when
 *   `suite.nK` or `suite.nN` is not in 1..32.
 */
export function hpkeKeySchedule(
  sharedSecret: Uint8Array,
  info: Uint8Array,
  suite: HpkeKeyScheduleSuite,
): HpkeKeySchedule {
  /* Precondition: only HKDF-SHA256 is implemented; another KDF id is an unknown suite (style §4, §8). */
  if (suite.kdfId !== HKDF_SHA256) {
    throw new CryptoError(
      'SUITE_UNKNOWN',
      `HPKE KDF id ${suite.kdfId} is not supported (only HKDF-SHA256, 1)`,
    );
  }
  const suiteId = suiteIdOf(suite);
  const pskIdHash = labeledExtract(suiteId, EMPTY, LABEL.pskIdHash, EMPTY);
  const infoHash = labeledExtract(suiteId, EMPTY, LABEL.infoHash, info);
  const context = Buffer.concat([Uint8Array.of(MODE_BASE), pskIdHash, infoHash]);
  // secret = LabeledExtract(shared_secret, "secret", psk): shared_secret is the HMAC key, psk is empty.
  const secret = labeledExtract(suiteId, sharedSecret, LABEL.secret, EMPTY);
  let key: Uint8Array | undefined;
  let baseNonce: Uint8Array | undefined;
  try {
    key = labeledExpand(suiteId, secret, LABEL.key, context, suite.nK);
    baseNonce = labeledExpand(suiteId, secret, LABEL.baseNonce, context, suite.nN);
    const exporterSecret = labeledExpand(suiteId, secret, LABEL.exp, context, NH);
    const result = { key, baseNonce, exporterSecret };
    key = baseNonce = undefined; // handed over
    return result;
  } finally {
    secret.fill(0);
    key?.fill(0);
    baseNonce?.fill(0);
  }
}

/** key and base_nonce only: the single-shot API has no use for exporter_secret, so it is zeroed at once. */
function keyAndNonce(sharedSecret: Uint8Array, info: Uint8Array): { key: Uint8Array; nonce: Uint8Array } {
  const ks = hpkeKeySchedule(sharedSecret, info, HPKE_SUITE);
  ks.exporterSecret.fill(0);
  return { key: ks.key, nonce: ks.baseNonce };
}

/* Precondition: every byte input is a Uint8Array within its bound before any work (style §6). */
function requireBounded(value: unknown, max: number, what: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new CryptoError('CRYPTO_PARAMETER_INVALID', `HPKE ${what} must be a Uint8Array`);
  }
  if (value.length > max) {
    throw new CryptoError(
      'CRYPTO_PARAMETER_INVALID',
      `HPKE ${what} must be at most ${max} bytes, got ${value.length}`,
      {
        details: { max, actual: value.length },
      },
    );
  }
}

/**
 * SealBase(pkR, info, aad, pt) (RFC 9180 §6.1) with X-Wing / HKDF-SHA256 / AES-256-GCM: encapsulates a fresh shared
 * secret to `recipientPublicKey` and encrypts `plaintext` under the derived key at sequence number 0.
 * @throws CryptoError KEY_INVALID when `recipientPublicKey` is not 1216 bytes or fails the ML-KEM encapsulation key
 *   check (HPKE's EncapError); CRYPTO_PARAMETER_INVALID when `info`, `aad` or `plaintext` is not a Uint8Array or
 *   exceeds HPKE_LIMITS, or `testOnlyEseed` is not 64 bytes.
 */
export function hpkeSeal(
  recipientPublicKey: Uint8Array,
  info: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
  options: HpkeSealOptions = {},
): HpkeSealed {
  requireBounded(info, HPKE_LIMITS.maxInfoBytes, 'info');
  requireBounded(aad, HPKE_LIMITS.maxAadBytes, 'aad');
  requireBounded(plaintext, HPKE_LIMITS.maxPlaintextBytes, 'plaintext');
  const { sharedSecret, ciphertext: enc } = xwingEncapsulate(
    recipientPublicKey,
    options.testOnlyEseed === undefined ? {} : { testOnlyEseed: options.testOnlyEseed },
  );
  let key: Uint8Array | undefined;
  let nonce: Uint8Array | undefined;
  try {
    ({ key, nonce } = keyAndNonce(sharedSecret, info));
    const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: HPKE_SUITE.nT });
    cipher.setAAD(aad);
    const ciphertext = new Uint8Array(plaintext.length + HPKE_SUITE.nT);
    const body = cipher.update(plaintext);
    const tail = cipher.final();
    ciphertext.set(body, 0);
    ciphertext.set(tail, body.length);
    ciphertext.set(cipher.getAuthTag(), body.length + tail.length);
    return { enc, ciphertext };
  } finally {
    sharedSecret.fill(0);
    key?.fill(0);
    nonce?.fill(0);
  }
}

/**
 * OpenBase(enc, skR, info, aad, ct) (RFC 9180 §6.1): decapsulates `enc` with the recipient's X-Wing secret key (the
 * 32-byte seed, or an expanded `XWingDecapsulationKey`, which is not destroyed) and decrypts `ciphertext`.
 * A wrong key, enc, info, aad or any altered byte gives DECRYPT_FAILED (X-Wing's implicit rejection turns a bad enc
 * into an unrelated key, which the AEAD then rejects).
 * @throws CryptoError DECRYPT_FAILED when authentication fails or `ciphertext` is shorter than the 16-byte tag;
 *   CRYPTO_PARAMETER_INVALID when `enc` is not 1120 bytes, or `info`, `aad` or `ciphertext` is not a Uint8Array or
 *   exceeds HPKE_LIMITS; KEY_INVALID when `recipientSecretKey` is not 32 bytes or is a destroyed expanded key.
 */
export function hpkeOpen(
  recipientSecretKey: Uint8Array | XWingDecapsulationKey,
  enc: Uint8Array,
  info: Uint8Array,
  aad: Uint8Array,
  ciphertext: Uint8Array,
): Uint8Array {
  requireBounded(info, HPKE_LIMITS.maxInfoBytes, 'info');
  requireBounded(aad, HPKE_LIMITS.maxAadBytes, 'aad');
  requireBounded(ciphertext, HPKE_LIMITS.maxCiphertextBytes, 'ciphertext');
  /* Precondition: enc is exactly Nenc bytes (an X-Wing ciphertext). */
  if (!(enc instanceof Uint8Array) || enc.length !== HPKE_SUITE.nEnc) {
    const actual = enc instanceof Uint8Array ? enc.length : undefined;
    throw new CryptoError(
      'CRYPTO_PARAMETER_INVALID',
      `HPKE enc must be a ${HPKE_SUITE.nEnc}-byte X-Wing ciphertext, got ${actual ?? 'a non-byte value'}`,
      { details: { expected: HPKE_SUITE.nEnc, actual } },
    );
  }
  /* Precondition: the ciphertext holds at least the AEAD tag. */
  if (ciphertext.length < HPKE_SUITE.nT) {
    throw new CryptoError(
      'DECRYPT_FAILED',
      `HPKE ciphertext is ${ciphertext.length} bytes, shorter than the ${HPKE_SUITE.nT}-byte tag (truncated)`,
    );
  }
  const sharedSecret = xwingDecapsulate(enc, recipientSecretKey);
  let key: Uint8Array | undefined;
  let nonce: Uint8Array | undefined;
  let body: Buffer | undefined;
  let tail: Buffer | undefined;
  try {
    ({ key, nonce } = keyAndNonce(sharedSecret, info));
    const split = ciphertext.length - HPKE_SUITE.nT;
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: HPKE_SUITE.nT });
    decipher.setAuthTag(ciphertext.subarray(split));
    decipher.setAAD(aad);
    body = decipher.update(ciphertext.subarray(0, split));
    try {
      tail = decipher.final();
    } catch (cause) {
      throw new CryptoError(
        'DECRYPT_FAILED',
        'HPKE open failed: the ciphertext, enc, info or aad differs from what was sealed, or the key is wrong',
        { cause },
      );
    }
    const plaintext = new Uint8Array(split);
    plaintext.set(body, 0);
    plaintext.set(tail, body.length);
    return plaintext;
  } finally {
    sharedSecret.fill(0);
    key?.fill(0);
    nonce?.fill(0);
    body?.fill(0);
    tail?.fill(0);
  }
}

/**
 * SHA-256 of an X-Wing public key (32 bytes): what attestation evidence binds (Nitro `user_data`, SEV-SNP
 * `report_data`) so that a key released by HPKE goes only to the attested workload (design §3).
 * @throws CryptoError KEY_INVALID when `publicKey` is not a 1216-byte Uint8Array.
 */
export function xwingPublicKeyDigest(publicKey: Uint8Array): Uint8Array {
  /* Precondition: the digest is only defined over a whole X-Wing public key. */
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== XWING.publicKeyBytes) {
    const actual = publicKey instanceof Uint8Array ? publicKey.length : undefined;
    throw new CryptoError(
      'KEY_INVALID',
      `an X-Wing public key must be ${XWING.publicKeyBytes} bytes, got ${actual ?? 'a non-byte value'}`,
      { details: { expected: XWING.publicKeyBytes, actual } },
    );
  }
  return new Uint8Array(createHash('sha256').update(publicKey).digest());
}
