/**
 * Generic X.509 certificate parsing and path validation for attestation PKIs (RFC 5280 §4, §6):
 * `parseCertificate` once per DER (cached by fingerprint), `buildCertificatePath` from a leaf through
 * a bag of intermediates to a pinned trust anchor, with an explicit `X509Cache` of verified links.
 * Fixed-shape chains (SEV-SNP) use the same parts: `parseCertificate`, `createLinkVerifier` (cache and work
 * bound), `assertValidAt`, the algorithm constants.
 * No I/O; `now`, trust anchors and the algorithm allow-list are always the caller's.
 */

export {
  type CertificateSignatureAlgorithm,
  describeSignatureAlgorithm,
  ECDSA_P384_SHA384,
  findSignatureAlgorithm,
  keySatisfies,
  RSA_PSS_SHA384,
  type SignatureKeyRequirement,
} from './algorithms.js';
export { type DecodedPem, X509Cache, type X509CacheOptions, type X509CacheStats } from './cache.js';
export {
  type CertificateExtension,
  type CertificateInput,
  certificateFingerprint,
  decodeCertificatePem,
  type KeyUsageName,
  MAX_CERTIFICATE_PEM_CHARS,
  type ParsedCertificate,
  parseCertificate,
} from './certificate.js';
export { createLinkVerifier, type LinkVerifier, MAX_LINK_CHECKS } from './link.js';
export {
  type BuildPathOptions,
  buildCertificatePath,
  type CertificatePath,
  type TrustAnchor,
} from './path.js';
export { assertValidAt } from './validity.js';
