/**
 * X-Wing: the hybrid post-quantum KEM X25519 + ML-KEM-768 (draft-connolly-cfrg-xwing-kem-10; HPKE KEM id 0x647a;
 * identical to MLKEM768-X25519 of draft-irtf-cfrg-concrete-hybrid-kems). Design §3, §7; docs/post-quantum.md.
 *
 * Composed, not re-implemented, for speed (design §7: noble's `ml_kem768_x25519` spends most of its time in its
 * pure-JS X25519):
 * - X25519 (RFC 7748) through `node:crypto` (OpenSSL), raw keys crossing into it as JWK (RFC 8037, see below);
 * - ML-KEM-768 (FIPS 203) through `@noble/post-quantum` (`KeyGen_internal(d, z)` = `keygen(d ‖ z)`,
 *   `Encaps_internal(ek, m)` = `encapsulate(ek, m)`, which performs the §7.2 encapsulation key check);
 * - SHAKE256 and SHA3-256 (FIPS 202) through `@noble/hashes`.
 *
 * The construction, exactly as the draft's §5 (byte offsets in brackets):
 * - expandDecapsulationKey(sk, 32 bytes): expanded = SHAKE256(sk, 96 bytes);
 *   (pk_M, sk_M) = ML-KEM-768.KeyGen_internal(expanded[0:32], expanded[32:64]); sk_X = expanded[64:96];
 *   pk_X = X25519(sk_X, 9). The public key is pk_M ‖ pk_X (1184 + 32 = 1216 bytes).
 * - Encapsulate(pk) = EncapsulateDerand(pk, eseed = random(64)): ek_X = eseed[32:64]; ct_X = X25519(ek_X, 9);
 *   ss_X = X25519(ek_X, pk_X); (ss_M, ct_M) = ML-KEM-768.Encaps_internal(pk_M, eseed[0:32]);
 *   ss = Combiner(ss_M, ss_X, ct_X, pk_X); ct = ct_M ‖ ct_X (1088 + 32 = 1120 bytes).
 * - Decapsulate(ct, sk): ss_M = ML-KEM-768.Decaps(sk_M, ct_M) (implicit rejection: a tampered ciphertext gives an
 *   unrelated shared secret, never an error); ss_X = X25519(sk_X, ct_X); ss = Combiner(ss_M, ss_X, ct_X, pk_X).
 * - Combiner = SHA3-256(ss_M ‖ ss_X ‖ ct_X ‖ pk_X ‖ XWingLabel), XWingLabel = "\.//^\" = 5c2e2f2f5e5c.
 *
 * All-zero X25519 output: the draft specifies none of RFC 7748 §6.1's optional checks (its reference code computes
 * X25519 and hashes whatever comes out), and the security proof does not need one: the combiner binds ct_X and pk_X,
 * and ss_M stays secret. So we do not reject; for a low-order point the X25519 output is, as the spec computes it,
 * 32 zero bytes. OpenSSL refuses to return that value, so low-order u-coordinates (a public property of public
 * bytes) are recognised first and given the all-zero output without calling OpenSSL. Decapsulation of a
 * well-sized ciphertext therefore never throws. (noble's `ml_kem768_x25519` throws on low-order points instead;
 * honest keys and ciphertexts never contain one.)
 *
 * Secret lifetime (style §7): every byte array this module allocates for a secret (expanded seed, ML-KEM secret key,
 * both component shared secrets, the combiner input, our copy of the encapsulation seed) is zeroed in `finally`, on
 * success and on failure. The base64url string of an X25519 private scalar handed to OpenSSL as JWK cannot be wiped
 * (JavaScript strings are immutable); it is garbage like any other and lives no longer than the call. Results (shared secrets, secret keys) belong to the caller, who zeroes
 * them. X25519 private scalars also live inside OpenSSL key objects, which JavaScript cannot wipe: OpenSSL cleanses
 * them when the object is garbage-collected. `XWingDecapsulationKey` (the draft's §5.5.1 cached expanded key) holds
 * one until `destroy()`.
 *
 * Left out: DeriveKeyPair(ikm) of the HPKE mapping (keys here come from a 32-byte seed), X.509/PKCS#8 encodings.
 */
import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { sha3_256, shake256 } from '@noble/hashes/sha3.js';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { CryptoError } from './crypto-errors.js';

/** Sizes of X-Wing values, in bytes (draft §5.1), and its HPKE KEM identifier (draft §7). */
export const XWING = Object.freeze({
  /** The decapsulation (secret) key: a 32-byte seed. */
  secretKeyBytes: 32,
  /** The encapsulation (public) key: pk_M ‖ pk_X. */
  publicKeyBytes: 1216,
  /** The ciphertext: ct_M ‖ ct_X. */
  ciphertextBytes: 1120,
  sharedSecretBytes: 32,
  /** Randomness of one encapsulation (EncapsulateDerand's eseed). */
  eseedBytes: 64,
  /** HPKE KEM identifier (IANA "HPKE KEM Identifiers"; Nsecret 32, Nenc 1120, Npk 1216, Nsk 32). */
  hpkeKemId: 0x647a,
  /** The specification these bytes follow. */
  specification: 'draft-connolly-cfrg-xwing-kem-10',
} as const);

/** An X-Wing key pair: the 32-byte secret seed and the 1216-byte public key. */
export interface XWingKeyPair {
  readonly secretKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** The result of an encapsulation: the shared secret (caller zeroes it) and the ciphertext to send. */
export interface XWingEncapsulation {
  readonly sharedSecret: Uint8Array;
  readonly ciphertext: Uint8Array;
}

/** Options of `xwingEncapsulate`. */
export interface XWingEncapsulateOptions {
  /**
   * TESTS ONLY: the 64-byte encapsulation seed of EncapsulateDerand (draft §5.4.1), to reproduce published vectors.
   * Reusing or predicting it reveals the shared secret. Production code never passes it: the seed then comes from
   * the OS CSPRNG. The caller's bytes are copied, not wiped.
   */
  readonly testOnlyEseed?: Uint8Array;
}

const MLKEM_PUBLIC_KEY_BYTES = 1184;
const MLKEM_CIPHERTEXT_BYTES = 1088;
const X25519_BYTES = 32;
const XWING_LABEL = Uint8Array.of(0x5c, 0x2e, 0x2f, 0x2f, 0x5e, 0x5c);

/**
 * u-coordinates of the points of order dividing 8 on Curve25519 and its twist (RFC 7748 §6.1; the list libsodium and
 * noble-curves block), after the decoding of RFC 7748 §5 (top bit masked, reduced mod p). For these, and only these,
 * X25519 with a clamped scalar outputs zero.
 */
const P25519 = 2n ** 255n - 19n;
const LOW_ORDER_U: ReadonlySet<bigint> = new Set([
  0n,
  1n,
  P25519 - 1n,
  // e0eb7a7c…5f49b800 and 5f9c95bc…d09f1157 (little-endian), the two points of order 8
  325606250916557431795983626356110631294008115727848805560023387167927233504n,
  39382357235489614581723060781553021112529911719440698176882885853963445705823n,
]);

/** Tells the length actually received, with a hint when the bytes look like a text encoding of the value. */
function lengthMessage(what: string, expected: number, actual: number): string {
  let hint = '';
  if (actual === expected * 2) hint = ' (twice the size: hex-encoded?)';
  else if (actual === Math.ceil(expected / 3) * 4) hint = ' (base64-encoded?)';
  return `${what} must be ${expected} bytes, got ${actual}${hint}`;
}

/* Precondition: every byte input is a Uint8Array of exactly the length its field has (style §6). */
function requireBytes(
  value: unknown,
  expected: number,
  what: string,
  code: 'KEY_INVALID' | 'CRYPTO_PARAMETER_INVALID',
): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new CryptoError(code, `${what} must be a Uint8Array`, { details: { expected } });
  }
  if (value.length !== expected) {
    throw new CryptoError(code, lengthMessage(what, expected, value.length), {
      details: { expected, actual: value.length },
    });
  }
}

function isLowOrderU(u: Uint8Array): boolean {
  let n = 0n;
  for (let i = X25519_BYTES - 1; i >= 0; i--) n = (n << 8n) | BigInt(i === 31 ? u[i]! & 0x7f : u[i]!);
  return LOW_ORDER_U.has(n % P25519);
}

/*
 * X25519 keys cross into OpenSSL as JWK (RFC 8037), the fast raw-key path of node 20: importing a PKCS#8 DER private
 * key runs OpenSSL 3's decoder framework (~0.6 ms per key, slower than noble's pure-JS X25519), JWK ~0.04 ms. The
 * parser requires `x` but derives the public key from `d` for a private key, so `x` is left empty.
 */
function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

function x25519PrivateKey(scalar: Uint8Array): KeyObject {
  return createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: b64url(scalar), x: '' }, format: 'jwk' });
}

/** The raw 32-byte u-coordinate of a public (or private) key object: X25519(sk, 9) for a private one. */
function x25519PublicBytes(key: KeyObject): Uint8Array {
  const x = (key.type === 'private' ? createPublicKey(key) : key).export({ format: 'jwk' }).x;
  const raw = typeof x === 'string' ? Buffer.from(x, 'base64url') : undefined;
  if (raw?.length !== X25519_BYTES) throw new Error('node:crypto exported an X25519 key of unexpected shape');
  return Uint8Array.from(raw);
}

/** X25519(sk, u) per RFC 7748 §5, all-zero for low-order u (see the header). A new array; the caller zeroes it. */
function x25519(privateKey: KeyObject, u: Uint8Array): Uint8Array {
  if (isLowOrderU(u)) return new Uint8Array(X25519_BYTES);
  const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64url(u) }, format: 'jwk' });
  const shared = diffieHellman({ privateKey, publicKey });
  return new Uint8Array(shared.buffer, shared.byteOffset, shared.byteLength);
}

/** SHA3-256(ss_M ‖ ss_X ‖ ct_X ‖ pk_X ‖ XWingLabel) (draft §5.3). */
function combine(ssM: Uint8Array, ssX: Uint8Array, ctX: Uint8Array, pkX: Uint8Array): Uint8Array {
  const input = new Uint8Array(4 * 32 + XWING_LABEL.length);
  try {
    input.set(ssM, 0);
    input.set(ssX, 32);
    input.set(ctX, 64);
    input.set(pkX, 96);
    input.set(XWING_LABEL, 128);
    return sha3_256(input);
  } finally {
    input.fill(0);
  }
}

/** The expanded decapsulation key of draft §5.2. */
interface Expanded {
  readonly mlkemSecretKey: Uint8Array;
  readonly mlkemPublicKey: Uint8Array;
  readonly x25519Key: KeyObject;
  readonly x25519Public: Uint8Array;
}

function expandDecapsulationKey(seed: Uint8Array): Expanded {
  const expanded = shake256(seed, { dkLen: 96 });
  let mlkemSecretKey: Uint8Array | undefined;
  try {
    const mlkem = ml_kem768.keygen(expanded.subarray(0, 64));
    mlkemSecretKey = mlkem.secretKey;
    const x25519Key = x25519PrivateKey(expanded.subarray(64, 96));
    const expandedKey = {
      mlkemSecretKey,
      mlkemPublicKey: mlkem.publicKey,
      x25519Key,
      x25519Public: x25519PublicBytes(x25519Key),
    };
    mlkemSecretKey = undefined; // handed over
    return expandedKey;
  } finally {
    expanded.fill(0);
    mlkemSecretKey?.fill(0);
  }
}

function publicKeyOf(e: Expanded): Uint8Array {
  const pk = new Uint8Array(XWING.publicKeyBytes);
  pk.set(e.mlkemPublicKey, 0);
  pk.set(e.x25519Public, MLKEM_PUBLIC_KEY_BYTES);
  return pk;
}

/**
 * Generates an X-Wing key pair: GenerateKeyPair (draft §5.2), or GenerateKeyPairDerand(seed) when a 32-byte seed is
 * given. The returned secret key is a copy of the seed (or fresh OS randomness); the caller zeroes it.
 * @throws CryptoError KEY_INVALID when `seed` is not 32 bytes.
 */
export function xwingKeygen(seed?: Uint8Array): XWingKeyPair {
  let secretKey: Uint8Array;
  if (seed === undefined) {
    secretKey = new Uint8Array(randomBytes(XWING.secretKeyBytes));
  } else {
    requireBytes(seed, XWING.secretKeyBytes, 'an X-Wing seed', 'KEY_INVALID');
    secretKey = Uint8Array.from(seed);
  }
  const expanded = expandDecapsulationKey(secretKey);
  try {
    return { secretKey, publicKey: publicKeyOf(expanded) };
  } finally {
    expanded.mlkemSecretKey.fill(0);
  }
}

/**
 * The public key of an X-Wing secret key (32-byte seed).
 * @throws CryptoError KEY_INVALID when `secretKey` is not 32 bytes.
 */
export function xwingPublicKey(secretKey: Uint8Array): Uint8Array {
  requireBytes(secretKey, XWING.secretKeyBytes, 'an X-Wing secret key', 'KEY_INVALID');
  const expanded = expandDecapsulationKey(secretKey);
  try {
    return publicKeyOf(expanded);
  } finally {
    expanded.mlkemSecretKey.fill(0);
  }
}

/** ML-KEM's modulus q (FIPS 203 §2.4). */
const MLKEM_Q = 3329;
/** The ByteEncode12 part of an ML-KEM-768 encapsulation key: 3 polynomials × 256 coefficients × 12 bits. */
const MLKEM768_T_BYTES = 1152;

/**
 * Checks an X-Wing public key without using it: 1216 bytes, and its ML-KEM-768 part passes the FIPS 203 §7.2
 * encapsulation key check — every 12-bit coefficient of ByteEncode12(t̂) is below q, which is exactly when
 * ByteEncode12(ByteDecode12(ek)) = ek. The same check `xwingEncapsulate` performs through noble; done here so a
 * recipient key can be refused when it is presented (authentication), not at the first release.
 * @throws CryptoError KEY_INVALID
 */
export function checkXWingPublicKey(publicKey: Uint8Array): void {
  requireBytes(publicKey, XWING.publicKeyBytes, 'an X-Wing public key', 'KEY_INVALID');
  // ByteEncode12 packs two coefficients into three bytes, little-endian (FIPS 203 Algorithm 5).
  for (let i = 0; i < MLKEM768_T_BYTES; i += 3) {
    const b0 = publicKey[i] as number;
    const b1 = publicKey[i + 1] as number;
    const b2 = publicKey[i + 2] as number;
    const c0 = b0 | ((b1 & 0x0f) << 8);
    const c1 = (b1 >> 4) | (b2 << 4);
    if (c0 >= MLKEM_Q || c1 >= MLKEM_Q) {
      throw new CryptoError(
        'KEY_INVALID',
        'the ML-KEM-768 part of the X-Wing public key fails the FIPS 203 §7.2 encapsulation key check',
      );
    }
  }
}

/**
 * Encapsulate(pk) (draft §5.4): a fresh 32-byte shared secret and the 1120-byte ciphertext that carries it.
 * @throws CryptoError KEY_INVALID when `publicKey` is not 1216 bytes or its ML-KEM part fails the FIPS 203 §7.2
 *   encapsulation key check; CRYPTO_PARAMETER_INVALID when `testOnlyEseed` is not 64 bytes.
 */
export function xwingEncapsulate(
  publicKey: Uint8Array,
  options: XWingEncapsulateOptions = {},
): XWingEncapsulation {
  requireBytes(publicKey, XWING.publicKeyBytes, 'an X-Wing public key', 'KEY_INVALID');
  let m: Uint8Array; // ML-KEM's encapsulation randomness, eseed[0:32]
  let ek: KeyObject; // the ephemeral X25519 key, ek_X = eseed[32:64]
  if (options.testOnlyEseed === undefined) {
    m = randomBytes(32);
    // ek_X = random(32): OpenSSL draws the scalar from its OS-seeded DRBG and it never enters JavaScript memory.
    ek = generateKeyPairSync('x25519').privateKey;
  } else {
    requireBytes(options.testOnlyEseed, XWING.eseedBytes, 'testOnlyEseed', 'CRYPTO_PARAMETER_INVALID');
    m = Uint8Array.from(options.testOnlyEseed.subarray(0, 32)); // a copy even for a Buffer (whose slice is a view)
    ek = x25519PrivateKey(options.testOnlyEseed.subarray(32, 64));
  }
  const pkM = publicKey.subarray(0, MLKEM_PUBLIC_KEY_BYTES);
  const pkX = publicKey.subarray(MLKEM_PUBLIC_KEY_BYTES);
  let ssM: Uint8Array | undefined;
  let ssX: Uint8Array | undefined;
  try {
    let ctM: Uint8Array;
    try {
      ({ cipherText: ctM, sharedSecret: ssM } = ml_kem768.encapsulate(pkM, m));
    } catch (cause) {
      /* Precondition: the ML-KEM encapsulation key passes the FIPS 203 §7.2 modulus check (draft §4). */
      throw new CryptoError(
        'KEY_INVALID',
        'the ML-KEM-768 part of the X-Wing public key fails the FIPS 203 §7.2 encapsulation key check',
        { cause },
      );
    }
    const ctX = x25519PublicBytes(ek);
    ssX = x25519(ek, pkX);
    const ciphertext = new Uint8Array(XWING.ciphertextBytes);
    ciphertext.set(ctM, 0);
    ciphertext.set(ctX, MLKEM_CIPHERTEXT_BYTES);
    return { sharedSecret: combine(ssM, ssX, ctX, pkX), ciphertext };
  } finally {
    m.fill(0);
    ssM?.fill(0);
    ssX?.fill(0);
  }
}

/**
 * An expanded X-Wing decapsulation key (draft §5.5.1): expanding the seed costs one ML-KEM key generation and one
 * X25519 base-point multiplication, so a recipient that decapsulates many ciphertexts keeps this object and calls
 * `destroy()` when done (it zeroes the ML-KEM secret key and drops the X25519 key object). Never serialise it: only
 * the 32-byte seed is an X-Wing secret key.
 */
export class XWingDecapsulationKey {
  /** The 1216-byte public key. */
  readonly publicKey: Uint8Array;
  #mlkemSecretKey: Uint8Array;
  #x25519Key: KeyObject | undefined;
  #x25519Public: Uint8Array;

  private constructor(expanded: Expanded) {
    this.#mlkemSecretKey = expanded.mlkemSecretKey;
    this.#x25519Key = expanded.x25519Key;
    this.#x25519Public = expanded.x25519Public;
    this.publicKey = publicKeyOf(expanded);
  }

  /**
   * Expands a 32-byte secret key (seed). The seed is read, not kept.
   * @throws CryptoError KEY_INVALID when `secretKey` is not 32 bytes.
   */
  static fromSecretKey(secretKey: Uint8Array): XWingDecapsulationKey {
    requireBytes(secretKey, XWING.secretKeyBytes, 'an X-Wing secret key', 'KEY_INVALID');
    return new XWingDecapsulationKey(expandDecapsulationKey(secretKey));
  }

  /** Has `destroy()` run? */
  get destroyed(): boolean {
    return this.#x25519Key === undefined;
  }

  /**
   * Decapsulate(ct) (draft §5.5). A ciphertext that was not made for this key (tampered, truncated-and-padded,
   * random) yields an unrelated shared secret, not an error: ML-KEM's implicit rejection.
   * @throws CryptoError CRYPTO_PARAMETER_INVALID when `ciphertext` is not 1120 bytes; KEY_INVALID after `destroy()`.
   */
  decapsulate(ciphertext: Uint8Array): Uint8Array {
    requireBytes(ciphertext, XWING.ciphertextBytes, 'an X-Wing ciphertext', 'CRYPTO_PARAMETER_INVALID');
    const x25519Key = this.#x25519Key;
    if (x25519Key === undefined) {
      throw new CryptoError('KEY_INVALID', 'this X-Wing decapsulation key was destroyed');
    }
    const ctM = ciphertext.subarray(0, MLKEM_CIPHERTEXT_BYTES);
    const ctX = ciphertext.subarray(MLKEM_CIPHERTEXT_BYTES);
    let ssM: Uint8Array | undefined;
    let ssX: Uint8Array | undefined;
    try {
      ssM = ml_kem768.decapsulate(ctM, this.#mlkemSecretKey);
      ssX = x25519(x25519Key, ctX);
      return combine(ssM, ssX, ctX, this.#x25519Public);
    } finally {
      ssM?.fill(0);
      ssX?.fill(0);
    }
  }

  /** Zeroes the ML-KEM secret key and drops the X25519 key object (OpenSSL cleanses it when collected). Idempotent. */
  destroy(): void {
    this.#mlkemSecretKey.fill(0);
    this.#x25519Key = undefined;
  }
}

/**
 * Decapsulate(ct, sk) (draft §5.5) with a 32-byte secret key (expanded for this call and wiped) or an expanded key.
 * Never throws for a well-sized ciphertext: a wrong or tampered one yields an unrelated shared secret.
 * @throws CryptoError CRYPTO_PARAMETER_INVALID when `ciphertext` is not 1120 bytes; KEY_INVALID when `secretKey` is
 *   not 32 bytes or is a destroyed expanded key.
 */
export function xwingDecapsulate(
  ciphertext: Uint8Array,
  secretKey: Uint8Array | XWingDecapsulationKey,
): Uint8Array {
  if (secretKey instanceof XWingDecapsulationKey) return secretKey.decapsulate(ciphertext);
  requireBytes(ciphertext, XWING.ciphertextBytes, 'an X-Wing ciphertext', 'CRYPTO_PARAMETER_INVALID');
  const key = XWingDecapsulationKey.fromSecretKey(secretKey);
  try {
    return key.decapsulate(ciphertext);
  } finally {
    key.destroy();
  }
}
