/**
 * Ciphertext blobs of Encrypt / GenerateDataKey (design §4; docs/ciphertext-format.md §3–§4): self-describing,
 * versioned and key-committing, for plaintexts of at most 4096 bytes (the AWS KMS Encrypt limit).
 *
 *   off      len  field
 *   0        1    format byte 0xE1 (high nibble 0xE = ekms blob, low nibble = format version 1)
 *   1        2    suite id (u16, shared/suites.ts)
 *   3        1    key id length L (1..255)
 *   4        L    key id (printable ASCII 0x21..0x7E)
 *   4+L      4    key version (u32)
 *   8+L      32   salt (random per blob)
 *   40+L     32   key commitment
 *   72+L     2    ciphertext length N (u16, 0..4096)
 *   74+L     N    ciphertext
 *   74+L+N   16   tag
 *
 * Key schedule (the suite's, shared/key-schedule.ts), with P = bytes 0 .. 8+L (format byte, suite, key id, key
 * version) and K = the KEK version's key material, 32 bytes each:
 *   v1 suites: blobKey ‖ commitment = HKDF-SHA-384(K, salt, "EKMS-BLOB-V1" ‖ P, 64)
 *   v2 suites: blobKey ‖ commitment = HMAC-SHA-512(K, [1]₃₂ ‖ "EKMS-BLOB-V2" ‖ 0x00 ‖ P ‖ salt ‖ [512]₃₂)
 * AEAD: the suite's, nonce all zero (every blob has its own key), AAD = header (bytes 0 .. 74+L) ‖
 * canonical encryption context (shared/encryption-context.ts).
 *
 * `parseBlob` checks structure only (bounded, typed errors, no crypto) so that the enclave can find the key;
 * `openBlob` compares the commitment in constant time before it decrypts: a blob opens under exactly one key
 * (no "invisible salamanders"/partitioning oracles on AES-GCM, cf. the AWS Encryption SDK committing suites).
 * A wrong context cannot be told apart from tampering: both are DECRYPT_FAILED.
 */
import { timingSafeEqual } from 'node:crypto';
import { allocUninitialized, concatBytes, copyBytes } from '../../shared/bytes.js';
import { CryptoError } from '../../shared/crypto-errors.js';
import { type EncryptionContextInput, encodeContext } from '../../shared/encryption-context.js';
import { deriveMessageKeys } from '../../shared/key-schedule.js';
import { secureRandom } from '../../shared/random.js';
import { getSuite, type Suite, type SuiteId } from '../../shared/suites.js';
import { getAead } from './aead.js';

/** First byte of a format-1 blob. */
export const BLOB_FORMAT_V1 = 0xe1;

/** Size limits of the blob format. (Candidates for shared/limits.ts.) */
export const BLOB_LIMITS = {
  /** Largest plaintext sealed into one blob (AWS KMS Encrypt limit). */
  maxPlaintextBytes: 4096,
  /** Longest key id, in ASCII bytes (the length prefix is one byte). */
  maxKeyIdBytes: 255,
  /** Smallest possible blob: 1-byte key id, empty plaintext. */
  minBlobBytes: 1 + 2 + 1 + 1 + 4 + 32 + 32 + 2 + 0 + 16,
  /** Largest possible blob: 255-byte key id, 4096-byte plaintext. */
  maxBlobBytes: 1 + 2 + 1 + 255 + 4 + 32 + 32 + 2 + 4096 + 16,
} as const;

const KEY_ID = /^[\x21-\x7e]{1,255}$/;

/** Inputs of `sealBlob`. */
export interface SealBlobInput {
  readonly suite: SuiteId;
  readonly keyId: string;
  readonly keyVersion: number;
  /** The KEK version's key material (suite.keyBytes long). Borrowed: not kept, not modified. */
  readonly key: Uint8Array;
  readonly plaintext: Uint8Array;
  readonly context: EncryptionContextInput;
}

/** Options of `sealBlob`. */
export interface SealBlobOptions {
  /**
   * TESTS ONLY: a deterministic source for the salt, to reproduce test vectors. Production code never passes
   * it; the salt then comes from `secureRandom` (shared/random.ts: the OS CSPRNG).
   */
  readonly testRandom?: (length: number) => Uint8Array;
}

/** The structure of a blob, as read by `parseBlob`. Byte fields are views of a private copy of the input. */
export interface ParsedBlob {
  readonly formatVersion: 1;
  readonly suite: Suite;
  readonly keyId: string;
  readonly keyVersion: number;
  readonly salt: Uint8Array;
  readonly commitment: Uint8Array;
  /** Bytes 0 .. 74+L: everything before the ciphertext (bound as AAD). */
  readonly header: Uint8Array;
  readonly ciphertext: Uint8Array;
  readonly tag: Uint8Array;
}

/** Only objects made by parseBlob are accepted by openBlob, so the header bytes always match the fields. */
const genuine = new WeakSet<ParsedBlob>();

function checkKeyId(keyId: unknown): asserts keyId is string {
  /* Precondition: the key id is 1..255 printable ASCII characters. */
  if (typeof keyId !== 'string' || !KEY_ID.test(keyId)) {
    throw new CryptoError(
      'CRYPTO_PARAMETER_INVALID',
      'key id must be 1..255 printable ASCII characters (no spaces)',
    );
  }
}

function checkKey(suite: Suite, key: unknown): asserts key is Uint8Array {
  /* Precondition: the key material is a byte array of the suite's key length. */
  if (!(key instanceof Uint8Array) || key.length !== suite.keyBytes) {
    throw new CryptoError('KEY_INVALID', `${suite.name} needs ${suite.keyBytes} bytes of key material`);
  }
}

/**
 * Derives the per-blob key and the commitment under the suite's key schedule (shared/key-schedule.ts). The two
 * results are views of one buffer; the caller zeroes both.
 */
function deriveBlobKeys(
  suite: Suite,
  key: Uint8Array,
  salt: Uint8Array,
  prefix: Uint8Array,
): { blobKey: Uint8Array; commitment: Uint8Array } {
  const { key: blobKey, commitment } = deriveMessageKeys(suite, 'BLOB', key, salt, prefix);
  return { blobKey, commitment };
}

/**
 * Seals a plaintext of at most 4096 bytes under a KEK version into a self-describing, key-committing blob.
 * @throws CryptoError SUITE_UNKNOWN, KEY_INVALID, CRYPTO_PARAMETER_INVALID (key id, key version, plaintext type),
 *   PLAINTEXT_TOO_LARGE, CONTEXT_INVALID.
 */
export function sealBlob(input: SealBlobInput, options: SealBlobOptions = {}): Uint8Array {
  const suite = getSuite(input.suite);
  checkKeyId(input.keyId);
  /* Precondition: the key version is a u32. */
  if (!Number.isInteger(input.keyVersion) || input.keyVersion < 0 || input.keyVersion > 0xffff_ffff) {
    throw new CryptoError('CRYPTO_PARAMETER_INVALID', 'key version must be an integer in 0..2^32-1');
  }
  checkKey(suite, input.key);
  if (!(input.plaintext instanceof Uint8Array)) {
    throw new CryptoError('CRYPTO_PARAMETER_INVALID', 'plaintext must be a byte array');
  }
  /* Precondition: the plaintext fits a blob (4096 bytes). */
  if (input.plaintext.length > BLOB_LIMITS.maxPlaintextBytes) {
    throw new CryptoError(
      'PLAINTEXT_TOO_LARGE',
      `plaintext of ${input.plaintext.length} bytes exceeds ${BLOB_LIMITS.maxPlaintextBytes}; use envelope encryption`,
    );
  }
  const contextBytes = encodeContext(input.context);

  const L = input.keyId.length;
  const n = input.plaintext.length;
  const headerLength = 74 + L;
  const out = allocUninitialized(headerLength + n + suite.tagBytes);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out.fill(0, 0, headerLength); // pooled memory: no header byte may carry leftovers, whatever the suite's sizes
  out[0] = BLOB_FORMAT_V1;
  view.setUint16(1, suite.id);
  out[3] = L;
  for (let i = 0; i < L; i++) out[4 + i] = input.keyId.charCodeAt(i);
  view.setUint32(4 + L, input.keyVersion);
  const salt = (options.testRandom ?? secureRandom)(suite.saltBytes);
  if (!(salt instanceof Uint8Array) || salt.length !== suite.saltBytes) {
    throw new CryptoError('CRYPTO_PARAMETER_INVALID', 'the random source returned the wrong number of bytes');
  }
  out.set(salt, 8 + L);
  const { blobKey, commitment } = deriveBlobKeys(suite, input.key, salt, out.subarray(0, 8 + L));
  try {
    out.set(commitment, 40 + L);
    view.setUint16(72 + L, n);
    const header = out.subarray(0, headerLength);
    const sealed = getAead(suite.id).seal(
      blobKey,
      new Uint8Array(suite.nonceBytes),
      input.plaintext,
      concatBytes(header, contextBytes),
    );
    /* Postcondition: the AEAD output fills the rest of the blob exactly (no pooled byte is left unwritten). */
    if (sealed.length !== n + suite.tagBytes) {
      throw new CryptoError(
        'CRYPTO_PARAMETER_INVALID',
        `${suite.name} returned ${sealed.length} sealed bytes`,
      );
    }
    out.set(sealed, headerLength);
    return out;
  } finally {
    blobKey.fill(0);
    commitment.fill(0);
  }
}

function looksLikeText(bytes: Uint8Array): string {
  const sample = bytes.subarray(0, 64);
  if (sample.length > 0 && sample.every((b) => /[A-Za-z0-9+/=_-]/.test(String.fromCharCode(b)))) {
    return ' (it looks like base64 or hex text: decode it to bytes first)';
  }
  return '';
}

/**
 * Reads a blob's structure: bounded, no crypto. The enclave uses `keyId`/`keyVersion` to find the key, then
 * calls `openBlob`. The result refers to a private copy of `bytes`.
 * @throws CryptoError CIPHERTEXT_MALFORMED, CIPHERTEXT_TOO_LARGE, CIPHERTEXT_TRUNCATED, CIPHERTEXT_TRAILING_BYTES,
 *   CIPHERTEXT_VERSION_UNSUPPORTED, SUITE_UNKNOWN.
 */
export function parseBlob(bytes: Uint8Array): ParsedBlob {
  /* Precondition: the input is a byte array. */
  if (!(bytes instanceof Uint8Array)) {
    throw new CryptoError('CIPHERTEXT_MALFORMED', 'a ciphertext blob must be a byte array');
  }
  /* Precondition: the blob is no larger than the largest valid blob (bounded before it is read). */
  if (bytes.length > BLOB_LIMITS.maxBlobBytes) {
    throw new CryptoError(
      'CIPHERTEXT_TOO_LARGE',
      `ciphertext blob of ${bytes.length} bytes exceeds ${BLOB_LIMITS.maxBlobBytes}`,
    );
  }
  if (bytes.length === 0) throw new CryptoError('CIPHERTEXT_TRUNCATED', 'ciphertext blob is empty');
  const first = bytes[0]!;
  /* Precondition: the format byte names format version 1. */
  if (first !== BLOB_FORMAT_V1) {
    if ((first & 0xf0) === (BLOB_FORMAT_V1 & 0xf0)) {
      throw new CryptoError(
        'CIPHERTEXT_VERSION_UNSUPPORTED',
        `ciphertext blob format version ${first & 0x0f} is not supported (this build reads version 1)`,
      );
    }
    throw new CryptoError(
      'CIPHERTEXT_MALFORMED',
      `not an ekms ciphertext blob: first byte 0x${first.toString(16).padStart(2, '0')}${looksLikeText(bytes)}`,
    );
  }
  // A private copy (for a Buffer, `bytes.slice()` would be a view of the caller's memory).
  const copy = copyBytes(bytes);
  const view = new DataView(copy.buffer, copy.byteOffset, copy.byteLength);
  const need = (end: number, what: string): void => {
    /* Precondition: every field lies within the blob. */
    if (copy.length < end) {
      throw new CryptoError(
        'CIPHERTEXT_TRUNCATED',
        `ciphertext blob ends inside the ${what} (${copy.length} bytes)`,
      );
    }
  };
  need(4, 'suite id and key id length');
  /* Precondition: the suite id is registered. */
  const suite = getSuite(view.getUint16(1));
  const L = copy[3]!;
  /* Precondition: the key id is non-empty printable ASCII. */
  if (L === 0) throw new CryptoError('CIPHERTEXT_MALFORMED', 'ciphertext blob has an empty key id');
  need(4 + L, 'key id');
  let keyId = '';
  for (let i = 4; i < 4 + L; i++) {
    const c = copy[i]!;
    if (c < 0x21 || c > 0x7e) {
      throw new CryptoError('CIPHERTEXT_MALFORMED', 'ciphertext blob key id is not printable ASCII');
    }
    keyId += String.fromCharCode(c);
  }
  const headerLength = 74 + L;
  need(headerLength, 'header');
  const keyVersion = view.getUint32(4 + L);
  const n = view.getUint16(72 + L);
  /* Precondition: the declared ciphertext length is at most 4096 bytes. */
  if (n > BLOB_LIMITS.maxPlaintextBytes) {
    throw new CryptoError(
      'CIPHERTEXT_MALFORMED',
      `ciphertext blob declares ${n} ciphertext bytes (at most ${BLOB_LIMITS.maxPlaintextBytes})`,
    );
  }
  const end = headerLength + n + suite.tagBytes;
  need(end, 'ciphertext or tag');
  /* Precondition: nothing follows the tag. */
  if (copy.length !== end) {
    throw new CryptoError(
      'CIPHERTEXT_TRAILING_BYTES',
      `${copy.length - end} byte(s) follow the ciphertext blob`,
    );
  }
  const parsed: ParsedBlob = Object.freeze({
    formatVersion: 1,
    suite,
    keyId,
    keyVersion,
    salt: copy.subarray(8 + L, 40 + L),
    commitment: copy.subarray(40 + L, 72 + L),
    header: copy.subarray(0, headerLength),
    ciphertext: copy.subarray(headerLength, headerLength + n),
    tag: copy.subarray(headerLength + n, end),
  });
  genuine.add(parsed);
  return parsed;
}

/**
 * Opens a parsed blob with the KEK version's key material and the encryption context it was sealed with.
 * Checks the key commitment (constant time) before decrypting.
 * @throws CryptoError CRYPTO_PARAMETER_INVALID (not from parseBlob), KEY_INVALID, CONTEXT_INVALID,
 *   CIPHERTEXT_KEY_MISMATCH (wrong key or altered header), DECRYPT_FAILED (altered ciphertext/tag or other context).
 */
export function openBlob(parsed: ParsedBlob, key: Uint8Array, context: EncryptionContextInput): Uint8Array {
  /* Precondition: the blob was produced by parseBlob (its header bytes match its fields). */
  if (!genuine.has(parsed)) {
    throw new CryptoError('CRYPTO_PARAMETER_INVALID', 'openBlob takes the result of parseBlob');
  }
  const { suite } = parsed;
  checkKey(suite, key);
  const contextBytes = encodeContext(context);
  const L = parsed.keyId.length;
  const { blobKey, commitment } = deriveBlobKeys(suite, key, parsed.salt, parsed.header.subarray(0, 8 + L));
  try {
    /* Precondition: the key commitment matches (constant time) before any decryption. */
    if (!timingSafeEqual(commitment, parsed.commitment)) {
      throw new CryptoError(
        'CIPHERTEXT_KEY_MISMATCH',
        `key commitment mismatch: blob was not sealed under ${parsed.keyId} version ${parsed.keyVersion} with this key material (or its header was altered)`,
      );
    }
    const sealed = new Uint8Array(parsed.ciphertext.length + parsed.tag.length);
    sealed.set(parsed.ciphertext, 0);
    sealed.set(parsed.tag, parsed.ciphertext.length);
    /* Precondition: the AEAD tag verifies over header ‖ context (DECRYPT_FAILED otherwise). */
    return getAead(suite.id).open(
      blobKey,
      new Uint8Array(suite.nonceBytes),
      sealed,
      concatBytes(parsed.header, contextBytes),
    );
  } finally {
    blobKey.fill(0);
    commitment.fill(0);
  }
}
