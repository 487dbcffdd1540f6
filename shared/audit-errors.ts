/**
 * Error codes of the tamper-evident audit log (design §4 "Audit"; docs/audit.md): the format and chain checks of
 * `verifyAuditLog` (shared/audit.ts) and the enclave's writer (enclave/audit/audit-log.ts).
 *
 * Verification errors name the record: `details.seq` is the sequence number of the record at which the check
 * failed (when it could be read) and `details.line` its 1-based line number in the file. Host-side append failures
 * keep the store's codes (STORE_WRITE_FAILED, STORE_FULL); the enclave reports them as AUDIT_UNAVAILABLE.
 *
 * Codes are stable and never renamed; each summary is one line for docs/errors.md.
 */
import { EkmsError, type ErrorSpec, registerErrorCodes } from './errors.js';

export const AUDIT_ERROR_CODES = {
  AUDIT_RECORD_MALFORMED: {
    retriable: false,
    summary:
      'An audit line is not one record in canonical form (bad JSON, missing, unknown or ill-typed field, too long).',
  },
  AUDIT_VERSION_UNSUPPORTED: {
    retriable: false,
    summary: 'An audit record names a format version this build does not read.',
  },
  AUDIT_CHAIN_BROKEN: {
    retriable: false,
    summary:
      'An audit record does not follow the line before it (seq or hash): a record was edited, deleted, inserted or reordered.',
  },
  AUDIT_SIGNATURE_INVALID: {
    retriable: false,
    summary: "An audit checkpoint's signature does not verify under the identity key of the enclave run.",
  },
  AUDIT_CHECKPOINT_INVALID: {
    retriable: false,
    summary: "An authentic audit checkpoint's head or event count disagrees with the records before it.",
  },
  AUDIT_TRUNCATED: {
    retriable: false,
    summary:
      'Audit records are missing: a boot record or the expected head points past the end of the log, or the file ends inside a line.',
  },
  AUDIT_HEAD_ROLLBACK: {
    retriable: false,
    summary:
      "An enclave boot resumed from an older chain head than the log's latest checkpoint (its sealed audit head was rolled back or lost).",
  },
  AUDIT_BOOT_UNTRUSTED: {
    retriable: false,
    summary:
      "A boot record's attestation evidence does not verify, is not trusted, or does not bind the record's identity key.",
  },
  AUDIT_TAIL_UNSEALED: {
    retriable: false,
    summary: 'Audit records are not covered by a signed checkpoint (refused with --require-sealed).',
  },
  AUDIT_UNAVAILABLE: {
    retriable: true,
    summary:
      'The enclave could not write the audit log (the host refused or lost an append, or the log is closed); the operation is refused until a restart.',
  },
} as const satisfies Record<string, ErrorSpec>;

registerErrorCodes(AUDIT_ERROR_CODES);

export type AuditErrorCode = keyof typeof AUDIT_ERROR_CODES;

/** Every failure of the audit log, its writer and its verifier. */
export class AuditError extends EkmsError<AuditErrorCode> {}
