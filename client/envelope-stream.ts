/**
 * Streaming envelope encryption (design §4; docs/ciphertext-format.md §5–§6): arbitrarily large data in
 * constant memory, under a data key from GenerateDataKey, as Node `Transform` streams or async generators.
 *
 * Two format versions (docs/ciphertext-format.md §5): 2 is written by default (decision 44), 1 on request; both are
 * read. Header (key-committing; authenticated by the key schedule in format 2, by a header tag in format 1):
 *   off          len  field
 *   0            4    magic "EKMS" (45 4b 4d 53)
 *   4            1    format version (2, or 1)
 *   5            2    suite id (u16, shared/suites.ts)
 *   7            4    chunk size S (u32, plaintext bytes of every regular chunk)
 *   11           32   message id (random per stream)
 *   43           1    key id length L (1..255)
 *   44           L    key id (printable ASCII; routing hint for the data-key decrypt)
 *   44+L         2    encrypted data key length E
 *   46+L         E    encrypted data key (the KMS ciphertext blob of the data key)
 *   46+L+E       4    context length C
 *   50+L+E       C    canonical encryption context (shared/encryption-context.ts)
 *   50+L+E+C     32   key commitment
 *   82+L+E+C     16   header tag (format 1 only)
 * Records, one per chunk:  type (u8: 0 regular, 1 final) ‖ index (u32) ‖ length (u32) ‖ ciphertext ‖ tag (16).
 * A regular chunk holds exactly S bytes; exactly one final chunk (type 1) ends the stream. Indices count from 0.
 *   format 2: the final chunk holds 1..S bytes, or 0 when it is the only one (the empty input);
 *   format 1: the final chunk holds 0..S-1 bytes (an input that is a multiple of S ends with an empty final chunk).
 *
 * Keys (the suite's key schedule, shared/key-schedule.ts; DK = the data key), 32 bytes each, with
 *   format 2: P = header bytes 0..11 ‖ SHA-256(header bytes before the commitment)
 *   format 1: P = header bytes 0..11
 *   v1 suites: streamKey ‖ commitment = HKDF-SHA-384(DK, messageId, "EKMS-STREAM-V1" ‖ P, 64)
 *   v2 suites: streamKey ‖ commitment = HMAC-SHA-512(DK, [1]₃₂ ‖ "EKMS-STREAM-V2" ‖ 0x00 ‖ P ‖ messageId ‖ [512]₃₂)
 *   chunk i    = AEAD(streamKey, nonce = i big-endian (96-bit for AES-GCM, 192-bit for XChaCha), AAD = A ‖ prefix),
 *                prefix = type ‖ index ‖ length;  A = empty (format 2), SHA-256(full header) (format 1)
 *   header tag = AEAD(streamKey, nonce = all 0xff, plaintext = empty, AAD = header bytes before the tag) (format 1)
 * In format 2 the commitment is a MAC of the whole header under DK (the header's digest is in the KDF input), so
 * checking it authenticates the header, and the stream key itself binds every chunk to it.
 * Detects: truncation (no final chunk), reordered/dropped/duplicated chunks (index), chunks from another stream
 * (key, and in format 1 the header digest), bytes after the final chunk, header or key changes (commitment; in
 * format 1 also the header tag). A chunk's plaintext is released only after its tag verifies; the final chunk's only
 * once the input has ended.
 *
 * AES-256-GCM goes through node:crypto (design §7: ~50× faster than pure JS); XChaCha20-Poly1305 through
 * @noble/ciphers. The client does not import enclave code (design §6), so this module talks to both directly.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  type DecipherGCM,
  randomFillSync,
  timingSafeEqual,
} from 'node:crypto';
import { Transform } from 'node:stream';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { allocUninitialized, copyBytes } from '../shared/bytes.js';
import { CryptoError } from '../shared/crypto-errors.js';
import {
  decodeContext,
  type EncryptionContext,
  type EncryptionContextInput,
  encodeContext,
  MAX_CONTEXT_ENCODING_BYTES,
} from '../shared/encryption-context.js';
import { EkmsError } from '../shared/errors.js';
import { deriveMessageKeys } from '../shared/key-schedule.js';
import { AeadAlgorithm, DEFAULT_SUITE_ID, getSuite, type Suite, type SuiteId } from '../shared/suites.js';

/** "EKMS": the first four bytes of every envelope stream. */

function randomMessageId(n: number): Uint8Array {
  // Into pooled memory (shared/bytes.ts): node:crypto would move a fresh small array off V8's heap first.
  return randomFillSync(allocUninitialized(n));
}
const STREAM_MAGIC = Uint8Array.of(0x45, 0x4b, 0x4d, 0x53);
/** Envelope stream format 1: header tag, empty final chunk after a multiple of the chunk size (read; written on request). */
export const STREAM_FORMAT_V1 = 1;
/** Envelope stream format 2: header authenticated by the key schedule, the final chunk may be full (decision 44). */
export const STREAM_FORMAT_V2 = 2;
/** The envelope stream format versions this module writes and reads. */
export type StreamFormatVersion = typeof STREAM_FORMAT_V1 | typeof STREAM_FORMAT_V2;
/** The format version new streams are written in. */
export const DEFAULT_STREAM_FORMAT: StreamFormatVersion = STREAM_FORMAT_V2;

/** Header bytes besides key id, encrypted data key and context: format 1 (with the 16-byte header tag). */
const HEADER_FIXED = 98;
/** The same for format 2 (no header tag). */
const HEADER_FIXED_V2 = 82;
const RECORD_PREFIX = 9;
const HEADER_DIGEST = 32;
const TYPE_REGULAR = 0;
const TYPE_FINAL = 1;

/** Size limits of the envelope stream format. (Candidates for shared/limits.ts.) */
export const STREAM_LIMITS = {
  /**
   * 1 MiB (decision 42): a record costs 12–19 µs besides its AES-GCM in a pipeline (a fresh node:crypto cipher and
   * its native buffers), 2–4 % of the 0.45–0.6 ms node's own stream takes for 1 MiB here; a decryptor holds up to one
   * chunk of plaintext until its tag verifies.
   */
  defaultChunkSize: 1024 * 1024,
  minChunkSize: 1,
  /** Largest chunk: also the most plaintext a decryptor holds back while it authenticates a chunk. */
  maxChunkSize: 16 * 1024 * 1024,
  maxKeyIdBytes: 255,
  maxEncryptedDataKeyBytes: 8 * 1024,
  /** Highest chunk index (u32); a stream has at most 2^32 chunks. */
  maxChunkIndex: 0xffff_ffff,
  maxHeaderBytes: HEADER_FIXED + 255 + 8 * 1024 + MAX_CONTEXT_ENCODING_BYTES,
} as const;

const KEY_ID = /^[\x21-\x7e]{1,255}$/;

/** The header of an envelope stream, as given to `resolveDataKey`. Byte fields are copies. */
export interface EnvelopeHeader {
  readonly formatVersion: StreamFormatVersion;
  readonly suite: Suite;
  readonly chunkSize: number;
  readonly messageId: Uint8Array;
  readonly keyId: string;
  readonly encryptedDataKey: Uint8Array;
  readonly context: EncryptionContext;
}

/** Options of `createEncryptStream` / `encryptEnvelope`. */
export interface EncryptStreamOptions {
  /**
   * The plaintext data key (suite.keyBytes = 32 bytes). Borrowed: the stream derives its own keys at construction
   * and keeps no reference; the caller zeroes it afterwards.
   */
  readonly dataKey: Uint8Array;
  /** The data key sealed by the KMS (GenerateDataKey's ciphertext blob). */
  readonly encryptedDataKey: Uint8Array;
  readonly keyId: string;
  /** Bound into the header (and, by the KMS, into the encrypted data key). Pass `{}` for none. */
  readonly context: EncryptionContextInput;
  /** Plaintext bytes per regular chunk (default 1 MiB, 1 .. 16 MiB). */
  readonly chunkSize?: number;
  /** Default DEFAULT_SUITE_ID (AES-256-GCM/KDF-CTR-HMAC-SHA-512/COMMIT-v2). */
  readonly suite?: SuiteId;
  /**
   * Default 2 (DEFAULT_STREAM_FORMAT). Format 1 only for readers older than format 2 (every reader of this module
   * reads both).
   */
  readonly formatVersion?: StreamFormatVersion;
  /**
   * TESTS ONLY: deterministic randomness for the message id, to reproduce test vectors. Production code never
   * passes it; the message id then comes from `crypto.randomFillSync` (the OS CSPRNG).
   */
  readonly testRandom?: (length: number) => Uint8Array;
}

/** Options of `createDecryptStream` / `decryptEnvelope`. */
export interface DecryptStreamOptions {
  /**
   * Returns the plaintext data key for a header (typically a KMS Decrypt of `header.encryptedDataKey` with
   * `header.context`). Ownership passes to the stream: it zeroes the returned array once its keys are derived.
   */
  readonly resolveDataKey: (header: EnvelopeHeader) => Promise<Uint8Array> | Uint8Array;
  /** If given, the header's context must equal it exactly (CONTEXT_MISMATCH otherwise), before any key is asked for. */
  readonly context?: EncryptionContextInput;
  /** Refuse headers declaring larger chunks (default and maximum 16 MiB): bounds the memory a stream may hold. */
  readonly maxChunkSize?: number;
}

function param(message: string): CryptoError {
  return new CryptoError('CRYPTO_PARAMETER_INVALID', message);
}

function concat(parts: readonly Uint8Array[], total?: number): Uint8Array {
  const out = new Uint8Array(total ?? parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/**
 * Derives the stream key and the commitment under the suite's key schedule (shared/key-schedule.ts) from the header
 * bytes before the commitment (`keyed`). Format 1 takes P = its bytes 0..11 (magic, version, suite, chunk size);
 * format 2 P = those ‖ SHA-256(keyed), so that the key and the commitment depend on every header byte (a digest
 * keeps P 43 bytes for both key schedules: node's HKDF takes at most 1024 bytes of info, a header up to ~140 KiB).
 * The two results are views of one buffer; the caller zeroes both.
 */
function deriveStreamKeys(
  suite: Suite,
  version: StreamFormatVersion,
  dataKey: Uint8Array,
  keyed: Uint8Array,
) {
  const fixed = keyed.subarray(0, 11);
  let p = fixed;
  if (version === STREAM_FORMAT_V2) {
    p = allocUninitialized(11 + HEADER_DIGEST); // pooled, every byte written
    p.set(fixed, 0);
    p.set(headerDigest(keyed), 11);
  }
  // The message id as a view of the (pooled) header bytes (see the comment on small arrays above setNonceIndex).
  const { key: streamKey, commitment } = deriveMessageKeys(
    suite,
    'STREAM',
    dataKey,
    keyed.subarray(11, 43),
    p,
  );
  return { streamKey, commitment };
}

/**
 * SHA-256 of the header (public bytes), without an off-heap array: node returns a digest Buffer with its own backing
 * store (~2 µs on these machines, shared/bytes.ts); as a 'binary' (Latin-1) string it is one character per byte,
 * copied back into a pooled array.
 */
function headerDigest(header: Uint8Array): Uint8Array {
  const b = Buffer.from(createHash('sha256').update(header).digest('binary'), 'binary');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function headerTag(suite: Suite, key: Uint8Array, authenticated: Uint8Array): Uint8Array {
  const nonce = allocUninitialized(suite.nonceBytes).fill(0xff);
  if (suite.aead === AeadAlgorithm.Aes256Gcm) {
    const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: suite.tagBytes });
    cipher.setAAD(authenticated);
    cipher.final();
    // Node's tag Buffer as is (it has its own memory; a copy would be a small array node:crypto moves off the heap).
    return cipher.getAuthTag();
  }
  return xchacha20poly1305(key, nonce, authenticated).encrypt(new Uint8Array(0));
}

// Small arrays (≤ 64 bytes) live on V8's heap, and anything that needs their memory moves them off it (~1.2–1.8 µs
// each on these machines, shared/bytes.ts): `new DataView(a.buffer)`, and every node:crypto call taking one (key, IV,
// AAD, tag, timingSafeEqual). So the per-record fields are read and written byte by byte, and every small array this
// module hands to node:crypto (message id, nonces, record AAD, tags read from the input) comes from Node's pool.

/** Writes chunk index `index` big-endian into the last four bytes of `nonce` (the bytes before stay zero). */
function setNonceIndex(nonce: Uint8Array, index: number): void {
  const at = nonce.length - 4;
  nonce[at] = index >>> 24;
  nonce[at + 1] = (index >>> 16) & 0xff;
  nonce[at + 2] = (index >>> 8) & 0xff;
  nonce[at + 3] = index & 0xff;
}

/** @throws CryptoError CIPHERTEXT_VERSION_UNSUPPORTED unless `version` is a stream format this build reads. */
function checkFormatVersion(version: number): void {
  /* Precondition: the format version is 2 or 1. */
  if (version !== STREAM_FORMAT_V2 && version !== STREAM_FORMAT_V1) {
    throw new CryptoError(
      'CIPHERTEXT_VERSION_UNSUPPORTED',
      `envelope stream format version ${version} is not supported (this build reads versions 1 and 2)`,
    );
  }
}

/** The big-endian u16 at `at`. */
function readU16(bytes: Uint8Array, at: number): number {
  return (bytes[at]! << 8) | bytes[at + 1]!;
}

/** The big-endian u32 at `at`. */
function readU32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

/** Writes a record prefix (type ‖ index ‖ length, big-endian) at `at`. */
function writePrefix(target: Uint8Array, at: number, type: number, index: number, length: number): void {
  target[at] = type;
  target[at + 1] = index >>> 24;
  target[at + 2] = (index >>> 16) & 0xff;
  target[at + 3] = (index >>> 8) & 0xff;
  target[at + 4] = index & 0xff;
  target[at + 5] = length >>> 24;
  target[at + 6] = (length >>> 16) & 0xff;
  target[at + 7] = (length >>> 8) & 0xff;
  target[at + 8] = length & 0xff;
}

/**
 * Does `bytes` start like an envelope stream ("EKMS" then a version byte)? A cheap sniff for callers that accept
 * either a stream or something else; it authenticates nothing.
 */
export function looksLikeEnvelopeStream(bytes: Uint8Array): boolean {
  return bytes.length >= 5 && STREAM_MAGIC.every((b, i) => bytes[i] === b);
}

/**
 * Checks that a record may take chunk index `index`: indices are u32, and a regular chunk may not take the last
 * index because the final chunk must follow it.
 * @throws CryptoError STREAM_LIMIT_EXCEEDED.
 */
export function checkChunkIndex(index: number, final: boolean): void {
  /* Precondition: the chunk index fits a u32, leaving room for the final chunk. */
  if (index > STREAM_LIMITS.maxChunkIndex || (!final && index === STREAM_LIMITS.maxChunkIndex)) {
    throw new CryptoError(
      'STREAM_LIMIT_EXCEEDED',
      `an envelope stream holds at most 2^32 chunks (index ${index})`,
    );
  }
}

/**
 * Checks a writer's chunk size and format version, and returns them with their defaults filled in. The encryptor
 * calls it; callers that do work before creating one (the SDK asks the KMS for a data key) call it first.
 * @throws CryptoError CRYPTO_PARAMETER_INVALID.
 */
export function checkStreamLayoutOptions(
  options: Pick<EncryptStreamOptions, 'chunkSize' | 'formatVersion'>,
): { chunkSize: number; formatVersion: StreamFormatVersion } {
  const formatVersion = options.formatVersion ?? DEFAULT_STREAM_FORMAT;
  /* Precondition: the format version is one this module writes. */
  if (formatVersion !== STREAM_FORMAT_V2 && formatVersion !== STREAM_FORMAT_V1) {
    throw param(`envelope stream format version must be ${STREAM_FORMAT_V2} or ${STREAM_FORMAT_V1}`);
  }
  const chunkSize = options.chunkSize ?? STREAM_LIMITS.defaultChunkSize;
  /* Precondition: the chunk size is an integer in 1 .. 16 MiB. */
  if (
    !Number.isInteger(chunkSize) ||
    chunkSize < STREAM_LIMITS.minChunkSize ||
    chunkSize > STREAM_LIMITS.maxChunkSize
  ) {
    throw param(
      `chunk size must be an integer in ${STREAM_LIMITS.minChunkSize}..${STREAM_LIMITS.maxChunkSize}`,
    );
  }
  return { chunkSize, formatVersion };
}

/**
 * The encrypting half, without I/O: feed plaintext pieces, collect output pieces. Used by the Transform and the
 * async generator; exported for callers with their own I/O.
 */
export class EnvelopeEncryptor {
  readonly #suite: Suite;
  readonly #chunkSize: number;
  readonly #header: Uint8Array;
  /** Format 1: the header digest that starts every record's AAD. Format 2: undefined (the AAD is the prefix). */
  readonly #digest: Uint8Array | undefined;
  /** Format 2: the last chunk is final even when full, so a full chunk waits until a byte after it is known. */
  readonly #fullFinal: boolean;
  readonly #nonce: Uint8Array;
  #key: Uint8Array;
  #index = 0;
  readonly #pending = new ByteQueue();
  #headerEmitted = false;
  #finished = false;

  /**
   * @throws CryptoError SUITE_UNKNOWN, KEY_INVALID, CRYPTO_PARAMETER_INVALID (key id, encrypted data key, chunk size,
   *   format version, random source), CONTEXT_INVALID.
   */
  constructor(options: EncryptStreamOptions) {
    const suite = getSuite(options.suite ?? DEFAULT_SUITE_ID);
    const { formatVersion: version, chunkSize } = checkStreamLayoutOptions(options);
    /* Precondition: the data key is a byte array of the suite's key length. */
    if (!(options.dataKey instanceof Uint8Array) || options.dataKey.length !== suite.keyBytes) {
      throw new CryptoError('KEY_INVALID', `${suite.name} needs a ${suite.keyBytes}-byte data key`);
    }
    /* Precondition: the key id is 1..255 printable ASCII characters. */
    if (typeof options.keyId !== 'string' || !KEY_ID.test(options.keyId)) {
      throw param('key id must be 1..255 printable ASCII characters (no spaces)');
    }
    const edk = options.encryptedDataKey;
    /* Precondition: the encrypted data key is a non-empty byte array of bounded size. */
    if (
      !(edk instanceof Uint8Array) ||
      edk.length === 0 ||
      edk.length > STREAM_LIMITS.maxEncryptedDataKeyBytes
    ) {
      throw param(`encrypted data key must be 1..${STREAM_LIMITS.maxEncryptedDataKeyBytes} bytes`);
    }
    const context = encodeContext(options.context);
    // One OS CSPRNG draw per id, not a pool of random bytes (only the id's storage is pooled): a library can be
    // snapshotted or its process cloned with its heap, and a pooled id handed out twice under a reused data key would
    // repeat the stream's key and nonces.
    const messageId = (options.testRandom ?? randomMessageId)(suite.saltBytes);
    if (!(messageId instanceof Uint8Array) || messageId.length !== suite.saltBytes) {
      throw param('the random source returned the wrong number of bytes');
    }

    const L = options.keyId.length;
    const E = edk.length;
    const C = context.length;
    const commitAt = 50 + L + E + C;
    // Pooled (shared/bytes.ts): every byte is written below.
    const header = allocUninitialized(
      (version === STREAM_FORMAT_V1 ? HEADER_FIXED : HEADER_FIXED_V2) + L + E + C,
    );
    const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
    header.set(STREAM_MAGIC, 0);
    header[4] = version;
    view.setUint16(5, suite.id);
    view.setUint32(7, chunkSize);
    header.set(messageId, 11);
    header[43] = L;
    for (let i = 0; i < L; i++) header[44 + i] = options.keyId.charCodeAt(i);
    view.setUint16(44 + L, E);
    header.set(edk, 46 + L);
    view.setUint32(46 + L + E, C);
    header.set(context, 50 + L + E);
    const { streamKey, commitment } = deriveStreamKeys(
      suite,
      version,
      options.dataKey,
      header.subarray(0, commitAt),
    );
    try {
      header.set(commitment, commitAt);
      if (version === STREAM_FORMAT_V1) {
        const tagAt = commitAt + suite.commitmentBytes;
        header.set(headerTag(suite, streamKey, header.subarray(0, tagAt)), tagAt);
      }
    } catch (err) {
      streamKey.fill(0);
      throw err;
    } finally {
      commitment.fill(0);
    }
    this.#suite = suite;
    this.#chunkSize = chunkSize;
    this.#header = header;
    this.#digest = version === STREAM_FORMAT_V1 ? headerDigest(header) : undefined;
    this.#fullFinal = version === STREAM_FORMAT_V2;
    this.#key = streamKey;
    this.#nonce = allocUninitialized(suite.nonceBytes).fill(0);
  }

  /**
   * The stream header (emitted before the first record). A view of pooled memory (shared/bytes.ts): read it through
   * `byteOffset`/`byteLength`, not `.buffer` alone.
   */
  get header(): Uint8Array {
    return this.#header;
  }

  /** True once the derived stream key has been zeroed (after `finish` or `destroy`). */
  get keyWiped(): boolean {
    return this.#key.every((b) => b === 0);
  }

  /**
   * Adds plaintext; appends any output (header, complete regular records) to `out`. Holds at most one chunk of
   * input by reference: do not modify a piece after passing it (nor reuse its memory for the next read). In format 2
   * the last bytes given are always held until the next `update` or `finish`, since they may be the final chunk.
   * Output pieces may be views of shared memory (the header and each record's AAD, of which the prefix is a view,
   * come from Node's pool): read each through
   * `byteOffset`/`byteLength`, never `.buffer` alone, and never write through `.buffer`.
   * @throws CryptoError CRYPTO_PARAMETER_INVALID (not bytes, or after finish), STREAM_LIMIT_EXCEEDED.
   */
  update(piece: Uint8Array, out: Uint8Array[]): void {
    if (this.#finished) throw param('envelope encryptor already finished');
    if (!(piece instanceof Uint8Array)) throw param('plaintext pieces must be byte arrays');
    this.#emitHeader(out);
    if (piece.length === 0) return;
    try {
      this.#chunkRegular(piece, out);
    } catch (err) {
      this.destroy();
      throw err;
    }
  }

  /** Seals the regular chunks `piece` completes; keeps the rest (at most one chunk, by reference). */
  #chunkRegular(piece: Uint8Array, out: Uint8Array[]): void {
    const size = this.#chunkSize;
    // Format 2: a chunk is sealed as regular only once a byte after it has arrived (the last one is final even when
    // full), so `full` chunk bytes are kept, not sealed. Format 1 seals a chunk as soon as it is complete.
    const full = this.#fullFinal ? 1 : 0;
    let rest = piece;
    if (this.#pending.length > 0) {
      // Complete the chunk begun by earlier pieces.
      const need = size - this.#pending.length;
      if (rest.length < need + full) {
        this.#pending.push(rest);
        return;
      }
      this.#pending.push(rest.subarray(0, need));
      this.#seal(TYPE_REGULAR, this.#pending.take(size), size, out);
      rest = rest.subarray(need);
    }
    // Whole chunks straight from the piece (views, no copy); keep the remainder.
    while (rest.length >= size + full) {
      this.#seal(TYPE_REGULAR, [rest.subarray(0, size)], size, out);
      rest = rest.subarray(size);
    }
    this.#pending.push(rest);
  }

  /**
   * Seals the final chunk (format 2: 1..S bytes, 0 for the empty input; format 1: 0..S-1 bytes) and zeroes the
   * stream key.
   * @throws CryptoError CRYPTO_PARAMETER_INVALID (after finish), STREAM_LIMIT_EXCEEDED.
   */
  finish(out: Uint8Array[]): void {
    if (this.#finished) throw param('envelope encryptor already finished');
    try {
      this.#emitHeader(out);
      const length = this.#pending.length;
      this.#seal(TYPE_FINAL, this.#pending.take(length), length, out);
    } finally {
      this.destroy();
    }
  }

  /** Zeroes the stream key and drops buffered input. Idempotent. */
  destroy(): void {
    this.#finished = true;
    this.#key.fill(0);
    this.#pending.clear();
  }

  #emitHeader(out: Uint8Array[]): void {
    if (!this.#headerEmitted) {
      out.push(this.#header);
      this.#headerEmitted = true;
    }
  }

  #seal(type: number, parts: readonly Uint8Array[], length: number, out: Uint8Array[]): void {
    const index = this.#index;
    checkChunkIndex(index, type === TYPE_FINAL);
    const suite = this.#suite;
    // AAD = [format 1: header digest ‖] record prefix (pooled, every byte written below); the prefix is emitted as a
    // view of it.
    const digest = this.#digest;
    const at = digest === undefined ? 0 : HEADER_DIGEST;
    const aad = allocUninitialized(at + RECORD_PREFIX);
    if (digest !== undefined) aad.set(digest, 0);
    writePrefix(aad, at, type, index, length);
    setNonceIndex(this.#nonce, index);
    out.push(at === 0 ? aad : aad.subarray(at));
    if (suite.aead === AeadAlgorithm.Aes256Gcm) {
      const cipher = createCipheriv('aes-256-gcm', this.#key, this.#nonce, { authTagLength: suite.tagBytes });
      cipher.setAAD(aad);
      for (const part of parts) {
        const body = cipher.update(part);
        if (body.length > 0) out.push(body);
      }
      cipher.final();
      out.push(cipher.getAuthTag());
    } else {
      const plaintext = concat(parts, length);
      try {
        out.push(xchacha20poly1305(this.#key, this.#nonce, aad).encrypt(plaintext));
      } finally {
        plaintext.fill(0);
      }
    }
    this.#index = index + 1;
  }
}

/** A FIFO of byte arrays, read by copy (small fields) or by view (chunk bodies). */
class ByteQueue {
  #parts: Uint8Array[] = [];
  #start = 0;
  length = 0;

  push(part: Uint8Array): void {
    if (part.length > 0) {
      this.#parts.push(part);
      this.length += part.length;
    }
  }

  /**
   * The first `n` bytes without consuming them: a view of the first part when it holds them all (no copy), else a
   * pooled copy. Only to be read, and only until the queue or its parts change. Requires n <= length.
   */
  view(n: number): Uint8Array {
    const head = this.#parts[this.#start];
    return head !== undefined && head.length >= n ? head.subarray(0, n) : this.peek(n);
  }

  /** Copies the first `n` bytes without consuming them (into pooled memory). Requires n <= length. */
  peek(n: number): Uint8Array {
    // Pooled even when small: what is read here goes to node:crypto (tags, record prefixes, the header's copy).
    const out = allocUninitialized(n);
    this.#copy(out, 0, n);
    return out;
  }

  /** Copies and consumes the first `n` bytes. */
  read(n: number): Uint8Array {
    const out = this.peek(n);
    this.take(n);
    return out;
  }

  /** Copies the first `n` bytes into `target` at `offset` and consumes them. */
  readInto(target: Uint8Array, offset: number, n: number): void {
    this.#copy(target, offset, n);
    this.take(n);
  }

  #copy(target: Uint8Array, offset: number, n: number): void {
    let pos = 0;
    for (let i = this.#start; pos < n; i++) {
      const part = this.#parts[i]!;
      const k = Math.min(part.length, n - pos);
      target.set(k === part.length ? part : part.subarray(0, k), offset + pos);
      pos += k;
    }
  }

  /** Consumes the first `n` bytes, returned as views (no copy). Requires n <= length. */
  take(n: number): Uint8Array[] {
    const views: Uint8Array[] = [];
    let left = n;
    while (left > 0) {
      const head = this.#parts[this.#start]!;
      if (head.length <= left) {
        views.push(head);
        this.#parts[this.#start] = EMPTY;
        this.#start++;
        left -= head.length;
      } else {
        views.push(head.subarray(0, left));
        this.#parts[this.#start] = head.subarray(left);
        left = 0;
      }
    }
    this.length -= n;
    if (this.#start > 64 && this.#start * 2 > this.#parts.length) {
      this.#parts = this.#parts.slice(this.#start);
      this.#start = 0;
    }
    return views;
  }

  clear(): void {
    this.#parts = [];
    this.#start = 0;
    this.length = 0;
  }
}

const EMPTY = new Uint8Array(0);

type DecryptState = 'header' | 'key' | 'prefix' | 'body' | 'done' | 'failed';

function headerInvalid(message: string, cause?: unknown): CryptoError {
  return new CryptoError(
    'STREAM_HEADER_INVALID',
    `invalid envelope stream header: ${message}`,
    cause === undefined ? {} : { cause },
  );
}

function chunkAuthFailed(index: number, cause: unknown): CryptoError {
  return new CryptoError(
    'STREAM_CHUNK_AUTH_FAILED',
    `chunk ${index} does not authenticate (altered, or from another stream)`,
    { cause },
  );
}

function wipeAll(parts: readonly Uint8Array[]): void {
  for (const p of parts) p.fill(0);
}

/**
 * The decrypting half, without I/O. `update` returns a promise only while the data key is being resolved
 * (once per stream); otherwise it works synchronously. Output contains only authenticated plaintext.
 */
export class EnvelopeDecryptor {
  readonly #resolveDataKey: DecryptStreamOptions['resolveDataKey'];
  readonly #expectedContext: Uint8Array | undefined;
  readonly #maxChunkSize: number;
  readonly #queue = new ByteQueue();
  #state: DecryptState = 'header';
  #headerNeed = 44;
  #headerStage = 0;
  #headerBytes: Uint8Array | undefined;
  #header: EnvelopeHeader | undefined;
  #contextBytes: Uint8Array | undefined;
  #digest: Uint8Array | undefined;
  #key: Uint8Array | undefined;
  #nonce: Uint8Array | undefined;
  #index = 0;
  #recordType = 0;
  #recordLength = 0;
  #recordAad: Uint8Array | undefined;
  /** AES-GCM: the open record's decipher, the body bytes still to come and the plaintext so far (held, unreleased). */
  #decipher: DecipherGCM | undefined;
  #bodyLeft = 0;
  #recordPlain: Uint8Array[] = [];
  #heldFinal: Uint8Array[] = [];
  #keyEverSet = false;
  #headerAuthenticated = false;

  /**
   * @throws CryptoError CRYPTO_PARAMETER_INVALID (resolver or max chunk size), CONTEXT_INVALID (expected context).
   */
  constructor(options: DecryptStreamOptions) {
    if (typeof options.resolveDataKey !== 'function') throw param('resolveDataKey must be a function');
    this.#resolveDataKey = options.resolveDataKey;
    this.#expectedContext = options.context === undefined ? undefined : encodeContext(options.context);
    const max = options.maxChunkSize ?? STREAM_LIMITS.maxChunkSize;
    if (!Number.isInteger(max) || max < STREAM_LIMITS.minChunkSize || max > STREAM_LIMITS.maxChunkSize) {
      throw param(
        `maxChunkSize must be an integer in ${STREAM_LIMITS.minChunkSize}..${STREAM_LIMITS.maxChunkSize}`,
      );
    }
    this.#maxChunkSize = max;
  }

  /**
   * The authenticated header, once the data key has been resolved and the header checked: its commitment (format 2,
   * where that authenticates every header byte), its commitment and header tag (format 1).
   */
  get header(): EnvelopeHeader | undefined {
    return this.#headerAuthenticated ? this.#header : undefined;
  }

  /** True once a data key was derived and has since been zeroed (after `finish`, `destroy` or a failure). */
  get keyWiped(): boolean {
    return this.#keyEverSet && (this.#key === undefined || this.#key.every((b) => b === 0));
  }

  /**
   * Adds ciphertext; appends authenticated plaintext to `out`. Returns a promise while the data key is resolved.
   * If it throws (or the promise rejects), `out` holds the plaintext of the chunks authenticated before the failure.
   * Holds the bytes it has not consumed yet by reference: do not modify a piece after passing it (a header split
   * over pieces is checked field by field as they arrive). The complete header is the decryptor's own copy.
   * @throws CryptoError STREAM_HEADER_INVALID, CIPHERTEXT_VERSION_UNSUPPORTED, SUITE_UNKNOWN, CONTEXT_MISMATCH,
   *   STREAM_DATA_KEY_UNAVAILABLE, CIPHERTEXT_KEY_MISMATCH, STREAM_HEADER_AUTH_FAILED, STREAM_CHUNK_INVALID,
   *   STREAM_CHUNK_OUT_OF_ORDER, STREAM_CHUNK_AUTH_FAILED, STREAM_LIMIT_EXCEEDED, STREAM_TRAILING_BYTES,
   *   CRYPTO_PARAMETER_INVALID (misuse); errors thrown by `resolveDataKey` pass through if they are EkmsErrors.
   */
  update(piece: Uint8Array, out: Uint8Array[]): Promise<void> | undefined {
    if (!(piece instanceof Uint8Array)) throw this.#fail(param('ciphertext pieces must be byte arrays'));
    if (this.#state === 'failed') throw param('envelope decryptor already failed');
    if (this.#state === 'key') throw param('update called while the data key is being resolved');
    /* Precondition: nothing follows the final chunk. */
    if (this.#state === 'done') {
      if (piece.length === 0) return undefined;
      throw this.#fail(
        new CryptoError(
          'STREAM_TRAILING_BYTES',
          `${piece.length} byte(s) follow the final chunk of the stream`,
        ),
      );
    }
    this.#queue.push(piece);
    return this.#drain(out);
  }

  /**
   * Ends the input: checks that the final chunk arrived and releases its plaintext into `out`; zeroes keys.
   * @throws CryptoError STREAM_TRUNCATED, CRYPTO_PARAMETER_INVALID (misuse).
   */
  finish(out: Uint8Array[]): void {
    if (this.#state === 'failed') throw param('envelope decryptor already failed');
    /* Precondition: the stream ended with its final chunk (truncation is detected). */
    if (this.#state !== 'done') {
      const where =
        this.#state === 'header' || this.#state === 'key'
          ? 'inside the header'
          : this.#state === 'body'
            ? `inside chunk ${this.#index}`
            : `after chunk ${this.#index - 1} without a final chunk`;
      throw this.#fail(new CryptoError('STREAM_TRUNCATED', `envelope stream ends ${where}`));
    }
    for (const p of this.#heldFinal) out.push(p);
    this.#heldFinal = [];
    this.destroy();
    this.#state = 'done';
  }

  /** Zeroes keys and held plaintext, frees an open record's cipher context; drops buffered input. Idempotent. */
  destroy(): void {
    this.#key?.fill(0);
    wipeAll(this.#heldFinal);
    this.#heldFinal = [];
    wipeAll(this.#recordPlain);
    this.#recordPlain = [];
    const decipher = this.#decipher;
    this.#decipher = undefined;
    if (decipher !== undefined) {
      // The open record's OpenSSL context holds the expanded stream key until final() frees (and cleanses) it, or
      // until garbage collection: finish it now. Without a tag it fails, as intended; its output is discarded.
      try {
        decipher.final();
      } catch {
        // Expected: no tag was set. The context is freed either way.
      }
    }
    this.#queue.clear();
    if (this.#state !== 'done') this.#state = 'failed';
  }

  #fail(err: unknown): unknown {
    this.destroy();
    this.#state = 'failed';
    return err;
  }

  #drain(out: Uint8Array[]): Promise<void> | undefined {
    try {
      for (;;) {
        switch (this.#state) {
          case 'header': {
            if (!this.#parseHeader()) return undefined;
            this.#state = 'key';
            return this.#resolveKey().then(
              () => this.#drain(out),
              (err: unknown) => {
                throw this.#fail(err);
              },
            );
          }
          case 'prefix':
            if (this.#queue.length < RECORD_PREFIX) return undefined;
            this.#readPrefix();
            break;
          case 'body':
            if (!this.#openRecord(out)) return undefined;
            break;
          case 'done':
            /* Precondition: nothing follows the final chunk. */
            if (this.#queue.length > 0) {
              throw new CryptoError(
                'STREAM_TRAILING_BYTES',
                `${this.#queue.length} byte(s) follow the final chunk of the stream`,
              );
            }
            return undefined;
          default:
            throw param(`envelope decryptor is in state ${this.#state}`);
        }
      }
    } catch (err) {
      throw this.#fail(err);
    }
  }

  /** Validates what is available of the header; returns true once it is complete and structurally valid. */
  #parseHeader(): boolean {
    const q = this.#queue;
    // Fields are read from views of the input where one piece holds them (a header usually arrives whole in the
    // first piece), big-endian byte by byte (no DataView: over a small input array it would move that array off
    // V8's heap); the complete header is copied once, below.
    const magicBytes = q.view(Math.min(q.length, 5));
    for (let i = 0; i < Math.min(magicBytes.length, 4); i++) {
      /* Precondition: the input starts with the "EKMS" magic. */
      if (magicBytes[i] !== STREAM_MAGIC[i]) {
        const hint = magicBytes[0] === 0xe1 ? ' (this looks like a ciphertext blob, not a stream)' : '';
        throw headerInvalid(`not an ekms envelope stream${hint}`);
      }
    }
    if (magicBytes.length === 5) checkFormatVersion(magicBytes[4]!);
    while (q.length >= this.#headerNeed) {
      const bytes = q.view(this.#headerNeed);
      if (this.#headerStage < 3) {
        this.#headerNeed = this.#checkHeaderStage(bytes, this.#headerStage);
        this.#headerStage++;
        continue;
      }
      // The whole header is available: copied first (pooled, private: the input may be reused), and everything from
      // here on is read from the copy the key schedule authenticates. Its fields are checked again there: a piece
      // changed after it was passed (against update's contract) fails as a bad header would, never half-checked.
      const kept = copyBytes(bytes);
      let need = 0;
      for (let stage = 0; stage < 3; stage++) need = this.#checkHeaderStage(kept, stage);
      /* Precondition: the copy has the length its fields give (they are the ones the earlier stages checked). */
      if (need !== kept.length) {
        throw headerInvalid(
          'the header changed while it was read (an input piece was modified after update)',
        );
      }
      const L = kept[43]!;
      const E = readU16(kept, 44 + L);
      const C = readU32(kept, 46 + L + E);
      let context: EncryptionContext;
      try {
        /* Precondition: the context is a canonical encoding of a valid context. */
        context = decodeContext(kept.subarray(50 + L + E, 50 + L + E + C));
      } catch (cause) {
        throw headerInvalid(cause instanceof Error ? cause.message : 'bad context', cause);
      }
      q.take(this.#headerNeed);
      this.#headerBytes = kept;
      this.#contextBytes = kept.subarray(50 + L + E, 50 + L + E + C);
      this.#header = Object.freeze({
        // Checked above (the magic check runs on every call until the header is complete).
        formatVersion: kept[4] as StreamFormatVersion,
        suite: getSuite(readU16(kept, 5)),
        chunkSize: readU32(kept, 7),
        messageId: kept.slice(11, 43),
        keyId: String.fromCharCode(...kept.subarray(44, 44 + L)),
        encryptedDataKey: kept.slice(46 + L, 46 + L + E),
        context,
      });
      return true;
    }
    return false;
  }

  /**
   * Checks the header fields stage `stage` (0..2) reads from `bytes` (at least that stage's length) and returns how
   * many header bytes the next stage needs: 0 the fixed fields through the key id length, 1 the key id and the
   * encrypted data key length, 2 the context length (then the whole header's length).
   */
  #checkHeaderStage(bytes: Uint8Array, stage: number): number {
    const L = bytes[43]!;
    switch (stage) {
      case 0: {
        // Checked on the input as soon as it arrives (#parseHeader); again here for the header's copy.
        checkFormatVersion(bytes[4]!);
        /* Precondition: the suite id is registered. */
        getSuite(readU16(bytes, 5));
        const chunkSize = readU32(bytes, 7);
        /* Precondition: the chunk size lies in 1 .. maxChunkSize (bounds what a chunk may make us hold). */
        if (chunkSize < STREAM_LIMITS.minChunkSize || chunkSize > this.#maxChunkSize) {
          throw headerInvalid(`chunk size ${chunkSize} is outside 1..${this.#maxChunkSize}`);
        }
        /* Precondition: the key id length is 1..255. */
        if (L === 0) throw headerInvalid('empty key id');
        return 46 + L;
      }
      case 1: {
        for (let i = 44; i < 44 + L; i++) {
          /* Precondition: the key id is printable ASCII. */
          if (bytes[i]! < 0x21 || bytes[i]! > 0x7e) throw headerInvalid('key id is not printable ASCII');
        }
        const E = readU16(bytes, 44 + L);
        /* Precondition: the encrypted data key is 1 .. 8 KiB. */
        if (E === 0 || E > STREAM_LIMITS.maxEncryptedDataKeyBytes) {
          throw headerInvalid(
            `encrypted data key length ${E} is outside 1..${STREAM_LIMITS.maxEncryptedDataKeyBytes}`,
          );
        }
        return 50 + L + E;
      }
      default: {
        const C = readU32(bytes, 46 + L + readU16(bytes, 44 + L));
        /* Precondition: the context encoding is 2 .. MAX_CONTEXT_ENCODING_BYTES. */
        if (C < 2 || C > MAX_CONTEXT_ENCODING_BYTES) {
          throw headerInvalid(`context length ${C} is outside 2..${MAX_CONTEXT_ENCODING_BYTES}`);
        }
        return 50 + L + readU16(bytes, 44 + L) + C + this.#headerTail(bytes);
      }
    }
  }

  /** What follows the context in a header: the commitment, and in format 1 the header tag. */
  #headerTail(bytes: Uint8Array): number {
    const suite = getSuite(readU16(bytes, 5));
    return suite.commitmentBytes + (bytes[4] === STREAM_FORMAT_V1 ? suite.tagBytes : 0);
  }

  async #resolveKey(): Promise<void> {
    const header = this.#header!;
    const bytes = this.#headerBytes!;
    /* Precondition: the header's context equals the expected context (before any key is asked for). */
    if (
      this.#expectedContext !== undefined &&
      Buffer.compare(this.#contextBytes!, this.#expectedContext) !== 0
    ) {
      throw new CryptoError(
        'CONTEXT_MISMATCH',
        'the envelope stream was encrypted under a different encryption context than the one expected',
      );
    }
    let dataKey: unknown;
    try {
      dataKey = await this.#resolveDataKey(header);
    } catch (cause) {
      if (cause instanceof EkmsError) throw cause;
      throw new CryptoError('STREAM_DATA_KEY_UNAVAILABLE', 'resolveDataKey failed', { cause });
    }
    const suite = header.suite;
    let derived: { streamKey: Uint8Array; commitment: Uint8Array };
    try {
      if (this.#state !== 'key') throw param('envelope decryptor was destroyed while resolving the data key');
      /* Precondition: the resolver returned a byte array of the suite's key length. */
      if (!(dataKey instanceof Uint8Array) || dataKey.length !== suite.keyBytes) {
        throw new CryptoError(
          'STREAM_DATA_KEY_UNAVAILABLE',
          `resolveDataKey must return a ${suite.keyBytes}-byte data key`,
        );
      }
      derived = deriveStreamKeys(
        suite,
        header.formatVersion,
        dataKey,
        bytes.subarray(0, this.#commitStart()),
      );
    } finally {
      if (dataKey instanceof Uint8Array) dataKey.fill(0);
    }
    const { streamKey, commitment } = derived;
    this.#key = streamKey;
    this.#keyEverSet = true;
    const v1 = header.formatVersion === STREAM_FORMAT_V1;
    try {
      const commitStart = this.#commitStart();
      const tagStart = commitStart + suite.commitmentBytes;
      /*
       * Precondition: the key commitment matches (constant time) before anything is decrypted. In format 2 the
       * commitment is a MAC of the whole header under the data key: this check also authenticates the header.
       */
      if (!timingSafeEqual(commitment, bytes.subarray(commitStart, tagStart))) {
        throw new CryptoError(
          'CIPHERTEXT_KEY_MISMATCH',
          'key commitment mismatch: the data key does not belong to this stream (or its header was altered)',
        );
      }
      /* Precondition: format 1: the header tag verifies. */
      if (
        v1 &&
        !timingSafeEqual(headerTag(suite, streamKey, bytes.subarray(0, tagStart)), bytes.subarray(tagStart))
      ) {
        throw new CryptoError('STREAM_HEADER_AUTH_FAILED', 'the envelope stream header was altered');
      }
    } finally {
      commitment.fill(0);
    }
    this.#headerAuthenticated = true;
    this.#digest = v1 ? headerDigest(bytes) : undefined;
    this.#nonce = allocUninitialized(suite.nonceBytes).fill(0);
    this.#state = 'prefix';
  }

  /** Where the commitment starts in the header (it ends format 2's header; format 1's header tag follows it). */
  #commitStart(): number {
    const { suite, formatVersion } = this.#header!;
    const tag = formatVersion === STREAM_FORMAT_V1 ? suite.tagBytes : 0;
    return this.#headerBytes!.length - suite.commitmentBytes - tag;
  }

  #readPrefix(): void {
    // The record prefix is read straight into its place in the chunk AAD (pooled, every byte written here): format 2
    // the prefix alone, format 1 header digest ‖ prefix.
    const digest = this.#digest;
    const at = digest === undefined ? 0 : HEADER_DIGEST;
    const aad = allocUninitialized(at + RECORD_PREFIX);
    if (digest !== undefined) aad.set(digest, 0);
    this.#queue.readInto(aad, at, RECORD_PREFIX);
    const type = aad[at]!;
    const index = readU32(aad, at + 1);
    const length = readU32(aad, at + 5);
    const chunkSize = this.#header!.chunkSize;
    /* Precondition: the record type is regular (0) or final (1). */
    if (type !== TYPE_REGULAR && type !== TYPE_FINAL) {
      throw new CryptoError('STREAM_CHUNK_INVALID', `chunk ${this.#index} has unknown record type ${type}`);
    }
    /* Precondition: the chunk index is the next one (no reordering, dropping or duplication). */
    if (index !== this.#index) {
      throw new CryptoError(
        'STREAM_CHUNK_OUT_OF_ORDER',
        `expected chunk ${this.#index}, got chunk ${index} (${index < this.#index ? 'duplicated or replayed' : 'reordered or dropped'})`,
        { details: { expected: this.#index, got: index } },
      );
    }
    checkChunkIndex(index, type === TYPE_FINAL);
    /*
     * Precondition: a regular chunk holds exactly S bytes (bounds every record); the final chunk 1..S bytes, 0 only
     * as the first (format 2: one encoding per plaintext), or 0..S-1 bytes (format 1).
     */
    if (
      type === TYPE_REGULAR
        ? length !== chunkSize
        : this.#header!.formatVersion === STREAM_FORMAT_V1
          ? length >= chunkSize
          : length > chunkSize || (length === 0 && index > 0)
    ) {
      throw new CryptoError(
        'STREAM_CHUNK_INVALID',
        `${type === TYPE_FINAL ? 'final' : 'regular'} chunk ${index} declares ${length} bytes (chunk size ${chunkSize})`,
      );
    }
    this.#recordAad = aad;
    this.#recordType = type;
    this.#recordLength = length;
    const suite = this.#header!.suite;
    if (suite.aead === AeadAlgorithm.Aes256Gcm) {
      setNonceIndex(this.#nonce!, index);
      const decipher = createDecipheriv('aes-256-gcm', this.#key!, this.#nonce!, {
        authTagLength: suite.tagBytes,
      });
      this.#decipher = decipher; // before anything can throw: destroy() finishes it
      this.#bodyLeft = length;
      decipher.setAAD(aad);
    }
    this.#state = 'body';
  }

  /**
   * Opens the current record as far as the input allows; returns true once it is complete and authenticated.
   * AES-GCM deciphers the body as it arrives (each piece while it is fresh in cache, one output per piece, as node's
   * own Decipher stream does) and holds the plaintext until the tag verifies; XChaCha20-Poly1305 (one-shot) waits
   * for the whole record. Either way nothing of a record is released before its tag verifies, and a decryptor holds
   * at most one record: its ciphertext or its plaintext.
   */
  #openRecord(out: Uint8Array[]): boolean {
    const suite = this.#header!.suite;
    const q = this.#queue;
    let plain: Uint8Array[];
    const decipher = this.#decipher;
    if (decipher !== undefined) {
      if (this.#bodyLeft > 0) {
        const n = Math.min(q.length, this.#bodyLeft);
        for (const part of q.take(n)) {
          const p = decipher.update(part);
          if (p.length > 0) this.#recordPlain.push(p);
        }
        this.#bodyLeft -= n;
        if (this.#bodyLeft > 0) return false;
      }
      if (q.length < suite.tagBytes) return false;
      decipher.setAuthTag(q.read(suite.tagBytes));
      plain = this.#recordPlain;
      this.#recordPlain = [];
      this.#decipher = undefined;
      try {
        /* Precondition: the chunk tag verifies before its plaintext is released. */
        decipher.final();
      } catch (cause) {
        wipeAll(plain);
        throw chunkAuthFailed(this.#index, cause);
      }
    } else {
      if (q.length < this.#recordLength + suite.tagBytes) return false;
      const body = q.take(this.#recordLength);
      const tag = q.read(suite.tagBytes);
      const nonce = this.#nonce!;
      setNonceIndex(nonce, this.#index);
      const sealed = concat([...body, tag], this.#recordLength + tag.length);
      try {
        plain = [xchacha20poly1305(this.#key!, nonce, this.#recordAad!).decrypt(sealed)];
      } catch (cause) {
        throw chunkAuthFailed(this.#index, cause);
      }
    }
    this.#index++;
    if (this.#recordType === TYPE_FINAL) {
      // Released by finish(), once the input has ended without trailing bytes.
      this.#heldFinal = plain;
      this.#key!.fill(0);
      this.#state = 'done';
    } else {
      for (const p of plain) out.push(p);
      this.#state = 'prefix';
    }
    return true;
  }
}

/**
 * A Transform that encrypts plaintext into an envelope stream (header, then records).
 * @throws CryptoError from the constructor of EnvelopeEncryptor (synchronously); stream errors are CryptoErrors.
 */
export function createEncryptStream(options: EncryptStreamOptions): Transform {
  const encryptor = new EnvelopeEncryptor(options);
  return new Transform({
    transform(chunk: Uint8Array, _encoding, callback) {
      emitAll(this, (out) => encryptor.update(chunk, out), callback);
    },
    flush(callback) {
      emitAll(this, (out) => encryptor.finish(out), callback);
    },
    destroy(err, callback) {
      encryptor.destroy();
      callback(err);
    },
  });
}

/** Runs a synchronous step that fills `out`, then pushes what it produced, or reports its error. */
function emitAll(
  stream: Transform,
  step: (out: Uint8Array[]) => void,
  callback: (err?: Error | null) => void,
): void {
  const out: Uint8Array[] = [];
  try {
    step(out);
  } catch (err) {
    callback(err as Error);
    return;
  }
  for (const part of out) stream.push(part);
  callback();
}

/**
 * A Transform that decrypts an envelope stream. It reads the header, calls `resolveDataKey` once, then emits each
 * chunk's plaintext only after its tag verifies (the final chunk's only after the input ends).
 * @throws CryptoError CRYPTO_PARAMETER_INVALID, CONTEXT_INVALID synchronously; stream errors as EnvelopeDecryptor.update.
 */
export function createDecryptStream(options: DecryptStreamOptions): Transform {
  const decryptor = new EnvelopeDecryptor(options);
  return new Transform({
    transform(chunk: Uint8Array, _encoding, callback) {
      const out: Uint8Array[] = [];
      // On failure, `out` still holds the chunks authenticated before it: they are released, then the error.
      const done = (err?: unknown) => {
        for (const part of out) this.push(part);
        callback(err as Error | null | undefined);
      };
      let pending: Promise<void> | undefined;
      try {
        pending = decryptor.update(chunk, out);
      } catch (err) {
        done(err);
        return;
      }
      if (pending === undefined) done();
      else pending.then(() => done(), done);
    },
    flush(callback) {
      emitAll(this, (out) => decryptor.finish(out), callback);
    },
    destroy(err, callback) {
      decryptor.destroy();
      callback(err);
    },
  });
}

/**
 * Encrypts an (async) iterable of plaintext pieces into envelope-stream pieces (views: see EnvelopeEncryptor.update).
 * @throws CryptoError as EnvelopeEncryptor.
 */
export async function* encryptEnvelope(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: EncryptStreamOptions,
): AsyncGenerator<Uint8Array, void, undefined> {
  const encryptor = new EnvelopeEncryptor(options);
  try {
    for await (const piece of source) {
      const out: Uint8Array[] = [];
      encryptor.update(piece, out);
      yield* out;
    }
    const out: Uint8Array[] = [];
    encryptor.finish(out);
    yield* out;
  } finally {
    encryptor.destroy();
  }
}

/**
 * Decrypts an (async) iterable of envelope-stream pieces into authenticated plaintext pieces.
 * @throws CryptoError as EnvelopeDecryptor.update and finish.
 */
export async function* decryptEnvelope(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: DecryptStreamOptions,
): AsyncGenerator<Uint8Array, void, undefined> {
  const decryptor = new EnvelopeDecryptor(options);
  try {
    for await (const piece of source) {
      const out: Uint8Array[] = [];
      try {
        const pending = decryptor.update(piece, out);
        if (pending !== undefined) await pending;
      } catch (err) {
        // Chunks authenticated before the failure are released, then the error.
        yield* out;
        throw err;
      }
      yield* out;
    }
    const out: Uint8Array[] = [];
    decryptor.finish(out);
    yield* out;
  } finally {
    decryptor.destroy();
  }
}
