/**
 * Suite registry of the key service's ciphertext formats (design §4; style §8; docs/ciphertext-format.md §1).
 *
 * A suite fixes every algorithm parameter of a ciphertext blob or an envelope stream: the AEAD, its key,
 * nonce and tag lengths, the KDF that derives a per-message key and a key commitment (shared/key-schedule.ts), and
 * the version of that derivation. The numeric id travels on the wire (uint16, big-endian); the name spells out every
 * parameter, like the AWS Encryption SDK's committing suite names.
 *
 * v1 suites derive with HKDF-SHA-384 (RFC 5869, extract with the per-message salt, then expand); v2 suites with one
 * HMAC-SHA-512 call (NIST SP 800-108r1 KDF in counter mode, one block), keyed by the key itself: half the cost or less
 * (docs/performance.md), the same 256-bit key and commitment. Every suite is key-committing: a ciphertext opens under
 * exactly one key (docs/ciphertext-format.md §4). Unknown ids and names are rejected with SUITE_UNKNOWN (fail closed,
 * style §4).
 */
import { CryptoError } from './crypto-errors.js';

/** Wire ids of the suites (uint16). Ids are never reused. */
export const SuiteId = {
  Aes256GcmHkdfSha384CommitV1: 0x0001,
  XChaCha20Poly1305HkdfSha384CommitV1: 0x0002,
  Aes256GcmKdfCtrHmacSha512CommitV2: 0x0003,
  XChaCha20Poly1305KdfCtrHmacSha512CommitV2: 0x0004,
} as const;
export type SuiteId = (typeof SuiteId)[keyof typeof SuiteId];

/** Suite names: every parameter spelled out. */
export const SuiteName = {
  Aes256GcmHkdfSha384CommitV1: 'AES-256-GCM/HKDF-SHA-384/COMMIT-v1',
  XChaCha20Poly1305HkdfSha384CommitV1: 'XCHACHA20-POLY1305/HKDF-SHA-384/COMMIT-v1',
  Aes256GcmKdfCtrHmacSha512CommitV2: 'AES-256-GCM/KDF-CTR-HMAC-SHA-512/COMMIT-v2',
  XChaCha20Poly1305KdfCtrHmacSha512CommitV2: 'XCHACHA20-POLY1305/KDF-CTR-HMAC-SHA-512/COMMIT-v2',
} as const;
export type SuiteName = (typeof SuiteName)[keyof typeof SuiteName];

/** AEAD algorithm identifiers used by the implementations. */
export const AeadAlgorithm = {
  Aes256Gcm: 'aes-256-gcm',
  XChaCha20Poly1305: 'xchacha20-poly1305',
} as const;
export type AeadAlgorithm = (typeof AeadAlgorithm)[keyof typeof AeadAlgorithm];

/** Every parameter of one suite. */
export interface Suite {
  readonly id: SuiteId;
  readonly name: SuiteName;
  readonly aead: AeadAlgorithm;
  /** AEAD key length in bytes (also the required length of the input key material). */
  readonly keyBytes: 32;
  /** AEAD nonce length in bytes. */
  readonly nonceBytes: 12 | 24;
  /** AEAD tag length in bytes. */
  readonly tagBytes: 16;
  /**
   * How the per-message key and commitment are derived (shared/key-schedule.ts): `hkdf-sha384` = HKDF-SHA-384
   * (RFC 5869) with the salt / message id as HKDF salt (v1); `kdf-ctr-hmac-sha512` = NIST SP 800-108r1 counter mode
   * with HMAC-SHA-512, one block, salt / message id in the context (v2).
   */
  readonly kdf: 'hkdf-sha384' | 'kdf-ctr-hmac-sha512';
  /** Length of the random salt (blob) or message id (stream) fed to HKDF as its salt. */
  readonly saltBytes: 32;
  /** Length of the key commitment stored in the header. */
  readonly commitmentBytes: 32;
}

/** The registry, by wire id. Frozen. */
export const SUITES: Readonly<Record<SuiteId, Suite>> = Object.freeze({
  [SuiteId.Aes256GcmHkdfSha384CommitV1]: Object.freeze({
    id: SuiteId.Aes256GcmHkdfSha384CommitV1,
    name: SuiteName.Aes256GcmHkdfSha384CommitV1,
    aead: AeadAlgorithm.Aes256Gcm,
    keyBytes: 32,
    nonceBytes: 12,
    tagBytes: 16,
    kdf: 'hkdf-sha384',
    saltBytes: 32,
    commitmentBytes: 32,
  }),
  [SuiteId.XChaCha20Poly1305HkdfSha384CommitV1]: Object.freeze({
    id: SuiteId.XChaCha20Poly1305HkdfSha384CommitV1,
    name: SuiteName.XChaCha20Poly1305HkdfSha384CommitV1,
    aead: AeadAlgorithm.XChaCha20Poly1305,
    keyBytes: 32,
    nonceBytes: 24,
    tagBytes: 16,
    kdf: 'hkdf-sha384',
    saltBytes: 32,
    commitmentBytes: 32,
  }),
  [SuiteId.Aes256GcmKdfCtrHmacSha512CommitV2]: Object.freeze({
    id: SuiteId.Aes256GcmKdfCtrHmacSha512CommitV2,
    name: SuiteName.Aes256GcmKdfCtrHmacSha512CommitV2,
    aead: AeadAlgorithm.Aes256Gcm,
    keyBytes: 32,
    nonceBytes: 12,
    tagBytes: 16,
    kdf: 'kdf-ctr-hmac-sha512',
    saltBytes: 32,
    commitmentBytes: 32,
  }),
  [SuiteId.XChaCha20Poly1305KdfCtrHmacSha512CommitV2]: Object.freeze({
    id: SuiteId.XChaCha20Poly1305KdfCtrHmacSha512CommitV2,
    name: SuiteName.XChaCha20Poly1305KdfCtrHmacSha512CommitV2,
    aead: AeadAlgorithm.XChaCha20Poly1305,
    keyBytes: 32,
    nonceBytes: 24,
    tagBytes: 16,
    kdf: 'kdf-ctr-hmac-sha512',
    saltBytes: 32,
    commitmentBytes: 32,
  }),
});

/**
 * The suite of new blobs and streams when a caller does not name one: AES-256-GCM through node:crypto (design §7)
 * with the one-HMAC v2 key schedule. Ciphertexts of every registered suite keep opening.
 */
export const DEFAULT_SUITE_ID: SuiteId = SuiteId.Aes256GcmKdfCtrHmacSha512CommitV2;

/** Type guard: is `id` a registered suite id? */
export function isSuiteId(id: unknown): id is SuiteId {
  return typeof id === 'number' && Object.hasOwn(SUITES, id);
}

/**
 * Looks a suite up by its wire id.
 * @throws CryptoError SUITE_UNKNOWN if the id is not registered (or not an integer).
 */
export function getSuite(id: number): Suite {
  /* Precondition: the suite id is registered; unknown ids fail closed. */
  if (!isSuiteId(id)) {
    throw new CryptoError('SUITE_UNKNOWN', `unknown suite id ${formatId(id)}`, {
      details: { suiteId: typeof id === 'number' ? id : String(id) },
    });
  }
  return SUITES[id];
}

/**
 * Looks a suite up by its exact name (e.g. `AES-256-GCM/HKDF-SHA-384/COMMIT-v1`).
 * @throws CryptoError SUITE_UNKNOWN if no suite has this name.
 */
export function getSuiteByName(name: string): Suite {
  for (const suite of Object.values(SUITES)) {
    if (suite.name === name) return suite;
  }
  throw new CryptoError('SUITE_UNKNOWN', `unknown suite name ${JSON.stringify(String(name)).slice(0, 80)}`);
}

function formatId(id: unknown): string {
  if (typeof id === 'number' && Number.isInteger(id) && id >= 0)
    return `0x${id.toString(16).padStart(4, '0')}`;
  return JSON.stringify(String(id)).slice(0, 40);
}
