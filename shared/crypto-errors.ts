/**
 * Error codes of the key service's cryptographic core (design §4; style §1): suites, encryption context,
 * ciphertext blobs (enclave/crypto/ciphertext-blob.ts), the streaming envelope format
 * (client/envelope-stream.ts) and sealed state (enclave/sealing.ts). Byte layouts and what each check defends
 * against: docs/ciphertext-format.md and docs/sealed-state.md.
 *
 * Codes are stable and never renamed; each summary is one line for docs/errors.md.
 */
import { EkmsError, type ErrorSpec, registerErrorCodes } from './errors.js';

export const CRYPTO_ERROR_CODES = {
  // --- suites and parameters ---
  SUITE_UNKNOWN: { retriable: false, summary: 'The suite id or name is not in the suite registry.' },
  KEY_INVALID: {
    retriable: false,
    summary: 'Key material is not a byte array of the length the suite requires.',
  },
  CRYPTO_PARAMETER_INVALID: {
    retriable: false,
    summary: 'A crypto call has an invalid parameter (key id, key version, nonce, chunk size, option).',
  },
  PLAINTEXT_TOO_LARGE: {
    retriable: false,
    summary: 'The plaintext exceeds the 4096-byte limit of a ciphertext blob.',
  },
  // --- encryption context ---
  CONTEXT_INVALID: {
    retriable: false,
    summary:
      'An encryption context is not a valid string map (limits, UTF-8, empty or duplicate or reserved key).',
  },
  CONTEXT_MISMATCH: {
    retriable: false,
    summary: 'The encryption context differs from the one the data was bound to.',
  },
  // --- ciphertext blobs ---
  CIPHERTEXT_MALFORMED: { retriable: false, summary: 'Bytes are not a well-formed ciphertext blob.' },
  CIPHERTEXT_TOO_LARGE: { retriable: false, summary: 'A ciphertext blob exceeds the maximum blob size.' },
  CIPHERTEXT_TRUNCATED: { retriable: false, summary: 'A ciphertext blob ends before its declared length.' },
  CIPHERTEXT_TRAILING_BYTES: { retriable: false, summary: 'Bytes follow the end of a ciphertext blob.' },
  CIPHERTEXT_VERSION_UNSUPPORTED: {
    retriable: false,
    summary: 'The ciphertext (blob or stream) names a format version this build does not read.',
  },
  CIPHERTEXT_KEY_MISMATCH: {
    retriable: false,
    summary:
      'The key commitment does not match: the ciphertext was not made under this key (or its header changed).',
  },
  DECRYPT_FAILED: {
    retriable: false,
    summary: 'Authentication failed: the ciphertext or its encryption context differs from what was sealed.',
  },
  // --- streaming envelope ---
  STREAM_HEADER_INVALID: {
    retriable: false,
    summary: 'The envelope stream header is malformed or out of bounds.',
  },
  STREAM_HEADER_AUTH_FAILED: {
    retriable: false,
    summary: 'The envelope stream header tag does not verify (format 1 streams).',
  },
  STREAM_TRUNCATED: { retriable: false, summary: 'The envelope stream ended before its final chunk.' },
  STREAM_CHUNK_INVALID: {
    retriable: false,
    summary: 'An envelope stream chunk record is malformed or out of bounds.',
  },
  STREAM_CHUNK_OUT_OF_ORDER: {
    retriable: false,
    summary: 'An envelope stream chunk index is not the next one (reordered, dropped or duplicated chunk).',
  },
  STREAM_CHUNK_AUTH_FAILED: {
    retriable: false,
    summary: 'An envelope stream chunk tag does not verify (altered, or taken from another stream).',
  },
  STREAM_TRAILING_BYTES: { retriable: false, summary: 'Bytes follow the final chunk of an envelope stream.' },
  STREAM_LIMIT_EXCEEDED: {
    retriable: false,
    summary: 'The envelope stream would exceed its maximum chunk count.',
  },
  STREAM_DATA_KEY_UNAVAILABLE: {
    retriable: false,
    summary: 'The data key resolver failed or returned something other than a data key.',
  },
} as const satisfies Record<string, ErrorSpec>;

registerErrorCodes(CRYPTO_ERROR_CODES);

export type CryptoErrorCode = keyof typeof CRYPTO_ERROR_CODES;

/** Every failure of the cryptographic core: suites, contexts, blobs and envelope streams. */
export class CryptoError extends EkmsError<CryptoErrorCode> {}

/**
 * Sealed state (enclave/sealing.ts; docs/sealed-state.md): blobs the enclave seals under a root-derived key and
 * stores through the untrusted host. Parameter errors reuse CRYPTO_PARAMETER_INVALID, KEY_INVALID, SUITE_UNKNOWN.
 */
export const SEALED_ERROR_CODES = {
  SEALED_BLOB_CORRUPT: {
    retriable: false,
    summary: 'A sealed blob is malformed, truncated or fails authentication; it is never used.',
  },
  SEALED_VERSION_UNSUPPORTED: {
    retriable: false,
    summary: 'A sealed blob names a format version this build does not read.',
  },
  SEALED_KEY_MISMATCH: {
    retriable: false,
    summary: 'A sealed blob was sealed under another root key or for another purpose.',
  },
  SEALED_BLOB_NAME_MISMATCH: {
    retriable: false,
    summary: 'An authentic sealed blob carries another name than the one requested (blobs swapped).',
  },
  SEALED_BLOB_ROLLBACK: {
    retriable: false,
    summary:
      'A sealed blob is older than the version acknowledged or required, or went missing; or a sealed version did not increase.',
  },
  SEALED_BLOB_VERSION_MISMATCH: {
    retriable: false,
    summary:
      'A sealed blob is newer than the exact version expected, or differs from the blob acknowledged at its version (forked state).',
  },
  SEALED_PLAINTEXT_TOO_LARGE: {
    retriable: false,
    summary: 'The plaintext exceeds the maximum size of a sealed blob.',
  },
  SEALED_SEALER_CLOSED: { retriable: false, summary: 'The sealer was closed and its keys zeroed.' },
} as const satisfies Record<string, ErrorSpec>;

registerErrorCodes(SEALED_ERROR_CODES);

export type SealedErrorCode = keyof typeof SEALED_ERROR_CODES;

/** Every failure of opening or sealing enclave state (besides parameter errors, which are CryptoErrors). */
export class SealedStateError extends EkmsError<SealedErrorCode> {}
