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
} as const;

export type Limits = typeof LIMITS;
