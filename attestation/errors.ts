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
  EVIDENCE_MALFORMED: { retriable: false, summary: 'Evidence is not of the expected structure (CBOR/COSE/layout).' },
  EVIDENCE_FIELD_INVALID: {
    retriable: false,
    summary: 'A field of the evidence is missing, of the wrong type or out of bounds.',
  },
  EVIDENCE_VERSION_UNSUPPORTED: { retriable: false, summary: 'The evidence format version is not supported.' },
  EVIDENCE_ALGORITHM_UNSUPPORTED: {
    retriable: false,
    summary: 'The evidence names a signature or digest algorithm that is not accepted.',
  },
  EVIDENCE_RESERVED_NONZERO: { retriable: false, summary: 'A reserved (must-be-zero) range of the evidence is not zero.' },
  // --- signatures and certificates ---
  EVIDENCE_SIGNATURE_INVALID: { retriable: false, summary: 'The signature over the evidence does not verify.' },
  CERT_INVALID: {
    retriable: false,
    summary: 'A certificate cannot be parsed or violates its constraints (CA flag, key usage, algorithm).',
  },
  CERT_EXPIRED: { retriable: false, summary: 'A certificate of the chain has expired at the verification time.' },
  CERT_NOT_YET_VALID: { retriable: false, summary: 'A certificate of the chain is not yet valid at the verification time.' },
  CERT_CHAIN_INVALID: {
    retriable: false,
    summary: 'The certificate chain cannot be built or a link signature does not verify.',
  },
  CERT_ROOT_UNTRUSTED: { retriable: false, summary: 'The chain does not end at a trusted root.' },
  CERT_MISSING: { retriable: false, summary: 'A certificate the chain needs (e.g. the SNP VCEK/VLEK) was not supplied.' },
  // --- SEV-SNP bindings between the report and its signing key ---
  TCB_MISMATCH: { retriable: false, summary: "The VCEK/VLEK's TCB extensions differ from the report's REPORTED_TCB." },
  CHIP_ID_MISMATCH: { retriable: false, summary: "The VCEK's hwID differs from the report's CHIP_ID." },
  // --- policy (attestation/policy.ts) ---
  POLICY_INVALID: { retriable: false, summary: 'An attestation policy document is invalid (unknown keys, wrong types).' },
  POLICY_VIOLATION: {
    retriable: false,
    summary: 'Verified claims violate the policy; details list every violation.',
  },
} as const satisfies Record<string, ErrorSpec>;

registerErrorCodes(ATTESTATION_ERROR_CODES);

export type AttestationErrorCode = keyof typeof ATTESTATION_ERROR_CODES;

/** Every failure of parsing, verifying or evaluating evidence. */
export class AttestationError extends EkmsError<AttestationErrorCode> {}
