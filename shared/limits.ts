/**
 * Every size and count limit in one place (style §6): every byte input is bounded before it is decoded.
 *
 * Changing a limit here changes it for the host, the enclave, the client and the verifiers alike.
 * The figures are chosen for the largest legitimate input plus head-room, not for convenience:
 * a Nitro attestation document is ~4.5–6 KiB, an SEV-SNP report is exactly 1184 bytes, and the largest
 * request (Encrypt of 4 KiB plus context and evidence) is well under 64 KiB.
 */
export const LIMITS = {
  /** Largest frame (one CBOR value) on any transport, in bytes. */
  maxFrameBytes: 256 * 1024,
  /** Deepest CBOR nesting accepted (arrays, maps and tags each add one level). */
  maxCborDepth: 16,
  /** Largest CBOR text string, in bytes. */
  maxCborStringBytes: 64 * 1024,
  /** Largest CBOR byte string, in bytes. */
  maxCborBytesLength: 128 * 1024,
  /** Most elements in one CBOR array. */
  maxCborArrayLength: 1024,
  /** Most entries in one CBOR map. */
  maxCborMapEntries: 256,
  /** Most CBOR data items in one frame (guards against millions of tiny items). */
  maxCborItems: 16 * 1024,

  /** Largest attestation document/report accepted by any parser, in bytes. */
  maxEvidenceBytes: 32 * 1024,
  /** Nitro: user_data, nonce and public_key are at most 1024 bytes each (AWS NSM API). */
  maxNitroOptionalFieldBytes: 1024,
  /** Nitro: at most 32 PCRs, 32/48/64 bytes each. */
  maxNitroPcrs: 32,
  /** Nitro: certificates in cabundle. */
  maxNitroCabundle: 8,
  /** Nitro: one DER certificate. */
  maxCertificateBytes: 4 * 1024,

  /** Encryption context: entries, and bytes per key or value. */
  maxContextEntries: 64,
  maxContextStringBytes: 1024,

  /** generateRandom: bytes per request. */
  minRandomBytes: 1,
  maxRandomBytes: 1024,

  /** Request ids are unsigned integers below 2^53 (JSON- and JS-safe). */
  maxRequestId: Number.MAX_SAFE_INTEGER,
  /** Operation names (ASCII). */
  maxOperationNameBytes: 64,

  /** Host: simultaneous client connections, and frames buffered per direction before backpressure. */
  maxConnections: 1024,
  maxInFlightPerConnection: 256,
  /** Bytes a host relay buffers towards a slow reader before pausing the other side. */
  relayHighWaterBytes: 1024 * 1024,

  // --- sealed state and the enclave ⇄ host storage channel (docs/sealed-state.md) ---
  /** Largest sealed blob (enclave/sealing.ts) and largest blob in the host store (host/blob-store.ts). */
  maxSealedBlobBytes: 1024 * 1024,
  /** Largest frame on the storage channel: one blob plus its request envelope. */
  maxStorageFrameBytes: 1024 * 1024 + 4096,
  /** Longest blob name (the host store's rule, [a-z0-9][a-z0-9._-]*). */
  maxBlobNameBytes: 128,
  /** Most names in one storage `list` page. */
  maxStorageListPage: 1000,

  // --- key service (docs/key-service.md) ---
  /** Customer keys per enclave (every key is one manifest entry; the manifest is one sealed blob). */
  maxKeys: 10_000,
  /** Versions per key (each rotation adds one; old versions keep decrypting). */
  maxKeyVersions: 1000,
  /** Aliases per enclave, and bytes per alias name (`alias/…`). */
  maxAliases: 1000,
  maxAliasNameBytes: 256,
  /** Bytes of a key's description. */
  maxKeyDescriptionBytes: 8192,
  /** Page size of ListKeys / ListAliases: default and maximum. */
  defaultListPage: 100,
  maxListPage: 1000,
  /** Encrypt: largest plaintext (the AWS KMS limit; larger data goes through envelope streams). */
  maxEncryptPlaintextBytes: 4096,
  /** GenerateDataKey: bytes of a data key. */
  minDataKeyBytes: 1,
  maxDataKeyBytes: 1024,
  /** ScheduleKeyDeletion: the waiting period, in days (AWS KMS's range; default 30). */
  minDeletionWindowDays: 7,
  maxDeletionWindowDays: 30,
  /** Automatic rotation period, in days (default 365). */
  minRotationPeriodDays: 1,
  maxRotationPeriodDays: 2560,
} as const;

export type Limits = typeof LIMITS;
