/**
 * AMD SEV-SNP attestation: `parseSnpReport(bytes) → SnpEvidence` (structure), then
 * `verifySnpReport(evidence, { trustAnchors, now, vek }) → SnpClaims` (chain, bindings, signature).
 * Policy evaluation lives elsewhere (attestation/policy). Spec references are in each module's header.
 */

/** The verifier cache is the shared `X509Cache` (one cache may serve the Nitro and SEV-SNP verifiers). */
export {
  X509Cache as SnpVerifierCache,
  type X509CacheOptions as SnpVerifierCacheOptions,
} from '../x509/index.js';
export { AMD_OIDS } from './certificate.js';
export { MAX_SNP_INTERMEDIATES } from './chain.js';
export { encodeSnpReport, type SnpReportFields } from './encode.js';
export {
  decodeSnpTcb,
  encodeSnpTcb,
  SNP_OFFSETS,
  SNP_PRODUCT_CPUID,
  SNP_REPORT_SIZE,
  SNP_SIGNED_LENGTH,
  SNP_SIZES,
  SNP_SUPPORTED_VERSIONS,
  type SnpReservedRange,
  snpChipIdLength,
  snpProductFromCpuid,
  snpProductReservedRanges,
  snpReservedRanges,
} from './layout.js';
export { parseSnpReport } from './parse.js';
export * from './roots.js';
export {
  type CertificateInput,
  SNP_PRODUCTS,
  type SnpCpuid,
  type SnpEvidence,
  type SnpFirmwareVersion,
  type SnpProduct,
  type SnpReportVersion,
  type SnpSignerInfo,
  type SnpSigningKey,
  type SnpTrustAnchor,
  type SnpVekExtensions,
} from './types.js';
export { type VerifySnpOptions, verifySnpReport } from './verify.js';
