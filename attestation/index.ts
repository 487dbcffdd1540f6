/**
 * Attestation: parse → verify → evaluate, one verifier per TEE (style §2). No I/O; `now` and trust anchors are
 * always parameters. Import from here; the sub-folders are implementation.
 */
export type { Claims, CommonClaims, NitroClaims, SnpClaims, TcbVersion, TeeType } from './claims.js';
export * from './errors.js';
export * from './evidence.js';
export * from './nitro/index.js';
export * from './policy.js';
export * from './sev-snp/index.js';
export * from './simulated/index.js';
export type { TrustAnchor } from './x509/index.js';
export { X509Cache } from './x509/index.js';
