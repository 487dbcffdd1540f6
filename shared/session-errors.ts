/**
 * Error codes of the attested session (design §3; docs/protocol.md §5): handshake, enclave trust, records and
 * workload release. Codes are stable and never renamed; each summary is one line for docs/errors.md.
 */
import { EkmsError, type ErrorSpec, registerErrorCodes } from './errors.js';

export const SESSION_ERROR_CODES = {
  SESSION_HANDSHAKE_INVALID: {
    retriable: false,
    summary: 'A handshake message is malformed, out of order, or has fields of the wrong size.',
  },
  SESSION_SUITE_UNSUPPORTED: {
    retriable: false,
    summary: 'No session suite is common to both sides, or the enclave chose one the client did not offer.',
  },
  SESSION_SIGNATURE_INVALID: {
    retriable: false,
    summary:
      "The enclave's signature over the handshake transcript does not verify (tampered handshake or downgrade).",
  },
  SESSION_RECORD_INVALID: {
    retriable: false,
    summary:
      'A session record failed authentication (replayed, reordered, dropped, truncated or tampered): the session ends.',
  },
  SESSION_LIMIT_REACHED: {
    retriable: true,
    summary: 'The session used up its record sequence numbers; open a new session.',
  },
  SESSION_REQUIRED: {
    retriable: false,
    summary: 'The enclave only accepts requests inside an established attested session.',
  },
  ENCLAVE_NOT_TRUSTED: {
    retriable: false,
    summary:
      "The enclave's attestation evidence does not satisfy the client's trust policy (root, measurement, debug, binding).",
  },
  AUTHENTICATION_FAILED: {
    retriable: false,
    summary:
      'The client could not be authenticated: unknown principal, bad signature over the session, or workload evidence refused.',
  },
  RECIPIENT_NOT_ATTESTED: {
    retriable: false,
    summary:
      'A key can be released only to a recipient key that the caller’s verified evidence binds; this session has none (or another).',
  },
} as const satisfies Record<string, ErrorSpec>;

export type SessionErrorCode = keyof typeof SESSION_ERROR_CODES;

/** Session, enclave-trust and client-authentication errors. */
export class SessionError extends EkmsError<SessionErrorCode> {}

registerErrorCodes(SESSION_ERROR_CODES);
