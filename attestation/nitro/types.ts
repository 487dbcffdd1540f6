/**
 * Types of the AWS Nitro verifier: the parsed attestation document (`NitroEvidence`) and the fields
 * of its payload.
 *
 * Spec: aws/aws-nitro-enclaves-nsm-api docs/attestation_process.md §2.2 (AttestationDocument CDDL) and
 * §3.2.2 (syntactical validation); the AWS Nitro Enclaves user guide, "Verifying the root of trust".
 */
import type { TrustAnchor, X509Cache } from '../x509/index.js';

/** The one digest function AWS defines for PCRs. */
export type NitroDigest = 'SHA384';

/**
 * A structurally valid Nitro attestation document (output of `parseNitroDocument`). Nothing here is
 * authenticated yet; `verifyNitroDocument` re-parses `bytes` and trusts nothing else of this object.
 */
export interface NitroEvidence {
  readonly type: 'nitro';
  /** A private copy of the whole document. */
  readonly bytes: Uint8Array;
  /** Whether the COSE_Sign1 carried CBOR tag 18 (AWS's documents do not). */
  readonly tagged: boolean;
  /** The protected header exactly as signed (contents of the first bstr): a1 01 38 22 = {1: -35}. */
  readonly protectedHeader: Uint8Array;
  /** The payload exactly as signed (contents of the third bstr). */
  readonly payload: Uint8Array;
  /** ES384 signature, r ‖ s (2 × 48 bytes). */
  readonly signature: Uint8Array;
  readonly moduleId: string;
  readonly digest: NitroDigest;
  /** Milliseconds since the epoch (UTC). */
  readonly timestamp: number;
  /** PCR index (0..31) → value (32, 48 or 64 bytes), in document order. */
  readonly pcrs: ReadonlyMap<number, Uint8Array>;
  /** The signing (leaf) certificate, DER. */
  readonly certificate: Uint8Array;
  /** [root, intermediate 1, …, intermediate n], DER. */
  readonly cabundle: readonly Uint8Array[];
  /** Optional fields: null when absent or encoded as CBOR null. */
  readonly publicKey: Uint8Array | null;
  readonly userData: Uint8Array | null;
  readonly nonce: Uint8Array | null;
}

/** Options of `verifyNitroDocument`. `trustAnchors` and `now` are required: the library never defaults them. */
export interface VerifyNitroOptions {
  /** Pinned roots (e.g. `AWS_NITRO_TRUST_ANCHORS`, plus a simulated root only when configured). */
  readonly trustAnchors: readonly TrustAnchor[];
  /** The instant at which every certificate must be valid (archived evidence: its time; live: the clock). */
  readonly now: Date;
  /** Reuse parsed certificates and verified links across calls. */
  readonly cache?: X509Cache;
}

/** The payload fields, as `encodeNitroPayload` writes them (AWS's key order). */
export interface NitroPayloadFields {
  readonly moduleId: string;
  readonly digest: NitroDigest;
  readonly timestamp: number;
  readonly pcrs: ReadonlyMap<number, Uint8Array>;
  readonly certificate: Uint8Array;
  readonly cabundle: readonly Uint8Array[];
  readonly publicKey: Uint8Array | null;
  readonly userData: Uint8Array | null;
  readonly nonce: Uint8Array | null;
}
