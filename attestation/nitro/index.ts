/**
 * AWS Nitro Enclaves attestation: `parseNitroDocument(bytes) → NitroEvidence` (structure), then
 * `verifyNitroDocument(evidence, { trustAnchors, now, cache }) → NitroClaims` (chain, signature).
 * Policy evaluation lives elsewhere. Spec references are in each module's header.
 */

export {
  COSE_ALG_ES384,
  COSE_SIGN1_TAG,
  type CoseSign1Parts,
  ES384_PROTECTED_HEADER,
  ES384_SIGNATURE_BYTES,
  encodeCoseSign1,
  sigStructure1,
} from './cose.js';
export { encodeNitroPayload } from './encode.js';
export {
  NITRO_MAX_CERTIFICATE_BYTES,
  NITRO_PCR_LENGTHS,
  NITRO_REQUIRED_PCRS,
  parseNitroDocument,
} from './parse.js';
export {
  AWS_NITRO_ROOT_G1,
  AWS_NITRO_ROOT_G1_PEM,
  AWS_NITRO_ROOT_G1_SHA256,
  AWS_NITRO_TRUST_ANCHORS,
} from './roots.js';
export type { NitroDigest, NitroEvidence, NitroPayloadFields, VerifyNitroOptions } from './types.js';
export { verifyNitroDocument } from './verify.js';
