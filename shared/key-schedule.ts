/**
 * Key schedules of the ciphertext formats (docs/ciphertext-format.md §3.1, §5.3): from a key (a KEK version's
 * material for a blob, the data key for a stream), a 32-byte random salt / message id and the ciphertext's prefix P,
 * the per-message AEAD key and the key commitment, 32 bytes each, as two views of one 64-byte output.
 *
 * - v1 suites (`hkdf-sha384`): HKDF-SHA-384 (RFC 5869, node:crypto `hkdfSync`)
 *     key ‖ commitment = HKDF(IKM = key, salt = salt, info = label_v1 ‖ P, L = 64)
 * - v2 suites (`kdf-ctr-hmac-sha512`): the NIST SP 800-108r1 §4.1 KDF in counter mode with HMAC-SHA-512 as the PRF,
 *   for L = 512 bits, i.e. one PRF block (node:crypto `createHmac`):
 *     key ‖ commitment = HMAC-SHA-512(key, [1]₃₂ ‖ label_v2 ‖ 0x00 ‖ P ‖ salt ‖ [512]₃₂)
 *   The key is uniformly random and 256 bits long, a full-strength PRF key, so no extraction step is needed
 *   (SP 800-56C / SP 800-108: key-derivation keys need not be a hash length); the random salt in the context makes
 *   every message's input distinct. One HMAC instead of HKDF's extract-then-expand: ~4.5 µs instead of ~11-18 µs per
 *   message on these machines (docs/performance.md), the same output size, and a commitment that still takes a
 *   collision of 256 bits of HMAC output (~2^128 work) to forge (docs/ciphertext-format.md §4).
 *
 * Labels: "EKMS-BLOB-V1" / "EKMS-STREAM-V1" for v1, "EKMS-BLOB-V2" / "EKMS-STREAM-V2" for v2, so the two schedules and
 * the two formats never derive from the same input.
 */
import { createHmac, hkdfSync } from 'node:crypto';
import { CryptoError } from './crypto-errors.js';
import type { Suite } from './suites.js';

/** What the derived key protects: the label's first part. */
export type MessageKind = 'BLOB' | 'STREAM';

const encoder = new TextEncoder();
const LABELS: Readonly<Record<Suite['kdf'], Readonly<Record<MessageKind, Uint8Array>>>> = {
  'hkdf-sha384': { BLOB: encoder.encode('EKMS-BLOB-V1'), STREAM: encoder.encode('EKMS-STREAM-V1') },
  'kdf-ctr-hmac-sha512': { BLOB: encoder.encode('EKMS-BLOB-V2'), STREAM: encoder.encode('EKMS-STREAM-V2') },
};
/** [i]₃₂ for the only iteration, i = 1. */
const COUNTER_1 = Uint8Array.of(0, 0, 0, 1);
/** The 0x00 separator between label and context. */
const SEPARATOR = Uint8Array.of(0);
/** [L]₃₂: 512 bits of output. */
const LENGTH_512 = Uint8Array.of(0, 0, 2, 0);

/** A derived key and commitment: views of `okm`, which the caller zeroes (zeroing `okm` zeroes both). */
export interface MessageKeys {
  readonly okm: Uint8Array;
  readonly key: Uint8Array;
  readonly commitment: Uint8Array;
}

/**
 * Derives a message's AEAD key and key commitment under the suite's key schedule. The caller has checked the lengths
 * (key: suite.keyBytes, salt: suite.saltBytes).
 */
export function deriveMessageKeys(
  suite: Suite,
  kind: MessageKind,
  key: Uint8Array,
  salt: Uint8Array,
  prefix: Uint8Array,
): MessageKeys {
  const label = LABELS[suite.kdf][kind];
  const length = suite.keyBytes + suite.commitmentBytes;
  let okm: Uint8Array;
  if (suite.kdf === 'kdf-ctr-hmac-sha512') {
    const out = createHmac('sha512', key)
      .update(COUNTER_1)
      .update(label)
      .update(SEPARATOR)
      .update(prefix)
      .update(salt)
      .update(LENGTH_512)
      .digest();
    /* Precondition: the suite's key and commitment fill the one 64-byte block exactly (nothing left unzeroed). */
    if (length !== out.length) {
      out.fill(0);
      throw new CryptoError(
        'SUITE_UNKNOWN',
        `${suite.name}: key and commitment must fill ${out.length} bytes`,
      );
    }
    okm = new Uint8Array(out.buffer, out.byteOffset, length);
  } else {
    const info = new Uint8Array(label.length + prefix.length);
    info.set(label, 0);
    info.set(prefix, label.length);
    okm = new Uint8Array(hkdfSync('sha384', key, salt, info, length));
  }
  return {
    okm,
    key: okm.subarray(0, suite.keyBytes),
    commitment: okm.subarray(suite.keyBytes, length),
  };
}
