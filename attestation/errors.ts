/**
 * Attestation error codes: parsing (EVIDENCE_*), certificates (CERT_*), SEV-SNP bindings and policy.
 * Codes are stable; docs/errors.md lists each. Sections are owned by the module named in their comment.
 */
import { EkmsError, type ErrorSpec, registerErrorCodes } from '../shared/errors.js';

export const ATTESTATION_ERROR_CODES = {
  // --- parsing, common to every TEE (attestation/*/parse.ts) ---
  EVIDENCE_TOO_LARGE: { retriable: false, summary: 'Evidence exceeds the maximum evidence size.' },
  EVIDENCE_TRUNCATED: { retriable: false, summary: 'Evidence is shorter than its format requires.' },
  EVIDENCE_TRAILING_BYTES: { retriable: false, summary: 'Bytes follow the end of the evidence.' },
  EVIDENCE_MALFORMED: {
    retriable: false,
    summary: 'Evidence is not of the expected structure (CBOR/COSE/layout).',
  },
  EVIDENCE_FIELD_INVALID: {
    retriable: false,
    summary: 'A field of the evidence is missing, of the wrong type or out of bounds.',
  },
  EVIDENCE_VERSION_UNSUPPORTED: {
    retriable: false,
    summary: 'The evidence format version is not supported.',
  },
  EVIDENCE_ALGORITHM_UNSUPPORTED: {
    retriable: false,
    summary: 'The evidence names a signature or digest algorithm that is not accepted.',
  },
  EVIDENCE_RESERVED_NONZERO: {
    retriable: false,
    summary: 'A reserved (must-be-zero) range of the evidence is not zero.',
  },
  // --- signatures and certificates ---
  EVIDENCE_SIGNATURE_INVALID: {
    retriable: false,
    summary: 'The signature over the evidence does not verify.',
  },
  CERT_INVALID: {
    retriable: false,
    summary: 'A certificate cannot be parsed or violates its constraints (CA flag, key usage, algorithm).',
  },
  CERT_EXPIRED: {
    retriable: false,
    summary: 'A certificate of the chain has expired at the verification time.',
  },
  CERT_NOT_YET_VALID: {
    retriable: false,
    summary: 'A certificate of the chain is not yet valid at the verification time.',
  },
  CERT_CHAIN_INVALID: {
    retriable: false,
    summary: 'The certificate chain cannot be built or a link signature does not verify.',
  },
  CERT_ROOT_UNTRUSTED: { retriable: false, summary: 'The chain does not end at a trusted root.' },
  CERT_MISSING: {
    retriable: false,
    summary: 'A certificate the chain needs (e.g. the SNP VCEK/VLEK) was not supplied.',
  },
  // --- SEV-SNP bindings between the report and its signing key ---
  TCB_MISMATCH: {
    retriable: false,
    summary: "The VCEK/VLEK's TCB extensions differ from the report's REPORTED_TCB.",
  },
  CHIP_ID_MISMATCH: { retriable: false, summary: "The VCEK's hwID differs from the report's CHIP_ID." },
  SIGNING_KEY_MISMATCH: {
    retriable: false,
    summary: "The report's SIGNING_KEY (VCEK/VLEK) differs from the kind of certificate supplied.",
  },
  // --- policy (attestation/policy.ts) ---
  POLICY_INVALID: {
    retriable: false,
    summary: 'An attestation policy document is invalid (unknown keys, wrong types).',
  },
  POLICY_VIOLATION: {
    retriable: false,
    summary: 'Verified claims violate the policy; details list every violation.',
  },
} as const satisfies Record<string, ErrorSpec>;

registerErrorCodes(ATTESTATION_ERROR_CODES);

export type AttestationErrorCode = keyof typeof ATTESTATION_ERROR_CODES;

/** Every failure of parsing, verifying or evaluating evidence. */
export class AttestationError extends EkmsError<AttestationErrorCode> {}

/**
 * Policy violation codes (attestation/policy.ts): the `code` of each entry of a `Decision`'s violations and of
 * `details.violations` of a POLICY_VIOLATION error. Never thrown on their own. docs/attestation-policy.md
 * describes when each applies.
 */
export const POLICY_VIOLATION_CODES = {
  TYPE_NOT_ALLOWED: { retriable: false, summary: "The claims' TEE type is not in the policy's `types`." },
  SIMULATED_NOT_ALLOWED: {
    retriable: false,
    summary: 'The evidence chains to a simulated root and the policy does not allow it.',
  },
  ROOT_NOT_ALLOWED: {
    retriable: false,
    summary: "The anchoring root's fingerprint is not in the policy's `rootFingerprints`.",
  },
  DEBUG_NOT_ALLOWED: {
    retriable: false,
    summary: 'The evidence comes from a debug enclave/guest and the policy does not allow it.',
  },
  MEASUREMENT_NOT_ALLOWED: {
    retriable: false,
    summary: "The launch measurement is not in the policy's `measurements`.",
  },
  PCR_NOT_ALLOWED: {
    retriable: false,
    summary: 'A Nitro PCR value is not one of the values the policy lists for that PCR.',
  },
  PCR_MISSING: { retriable: false, summary: 'A Nitro PCR the policy constrains is absent from the claims.' },
  TCB_TOO_LOW: {
    retriable: false,
    summary: "A component of the SEV-SNP REPORTED_TCB is below the policy's `minTcb`.",
  },
  VMPL_NOT_ALLOWED: { retriable: false, summary: "The SEV-SNP VMPL is not in the policy's `vmpl`." },
  SIGNER_NOT_ALLOWED: {
    retriable: false,
    summary: "The SEV-SNP signing key kind (vcek/vlek) is not in the policy's `signers`.",
  },
  PRODUCT_NOT_ALLOWED: {
    retriable: false,
    summary: "The SEV-SNP product is not in the policy's `products`.",
  },
  GUEST_SVN_TOO_LOW: {
    retriable: false,
    summary: "The SEV-SNP GUEST_SVN is below the policy's `minGuestSvn`.",
  },
  HOST_DATA_MISMATCH: {
    retriable: false,
    summary: "The SEV-SNP HOST_DATA differs from the policy's `hostData`.",
  },
  EVIDENCE_TOO_OLD: {
    retriable: false,
    summary: "The evidence's signed timestamp is older than the policy's `maxAgeSeconds`.",
  },
  EVIDENCE_FROM_FUTURE: {
    retriable: false,
    summary: "The evidence's signed timestamp is later than `now` plus the clock skew.",
  },
  EVIDENCE_AGE_UNKNOWN: {
    retriable: false,
    summary: 'The policy limits the age of evidence that carries no usable timestamp (SEV-SNP).',
  },
  NONCE_MISMATCH: {
    retriable: false,
    summary: 'The Nitro nonce differs from the required value (policy or request).',
  },
  USER_DATA_MISMATCH: {
    retriable: false,
    summary: 'The Nitro user_data differs from the required value (policy or request).',
  },
  PUBLIC_KEY_MISMATCH: {
    retriable: false,
    summary: 'The Nitro public_key differs from the required value (policy or request).',
  },
  REPORT_DATA_MISMATCH: {
    retriable: false,
    summary: 'The SEV-SNP REPORT_DATA differs from the required value (policy or request).',
  },
  CONDITION_NOT_APPLICABLE: {
    retriable: false,
    summary: "An unscoped policy condition does not apply to the claims' TEE type (fail closed).",
  },
} as const satisfies Record<string, ErrorSpec>;

registerErrorCodes(POLICY_VIOLATION_CODES);

export type PolicyViolationCode = keyof typeof POLICY_VIOLATION_CODES;
