/**
 * Error codes of root-key custody (design §4; docs/custody.md): M-of-N custodian shares of the enclave root key,
 * the custody bundle the host stores, and the locked state of an enclave waiting for its custodians.
 *
 * Codes are stable and never renamed; each summary is one line for docs/errors.md.
 */
import { EkmsError, type ErrorSpec, registerErrorCodes } from './errors.js';

export const CUSTODY_ERROR_CODES = {
  CUSTODY_INVALID: {
    retriable: false,
    summary:
      'The custody configuration or bundle is malformed or fails a check (signature, evidence, custody set, key check value, or the root key of the existing sealed state).',
  },
  CUSTODY_SHARE_INVALID: {
    retriable: false,
    summary:
      'A custodian share is malformed, duplicated, or does not match its commitment in the custody bundle; it is refused and the shares already held are kept.',
  },
  CUSTODY_THRESHOLD_NOT_MET: {
    retriable: false,
    summary: 'Fewer custodian shares than the custody threshold were given; the secret cannot be recovered.',
  },
  ROOT_KEY_LOCKED: {
    retriable: true,
    summary:
      'The enclave is locked: its root key is held by custodians and not enough shares have been submitted yet (`ekms custody unlock`).',
  },
} as const satisfies Record<string, ErrorSpec>;

registerErrorCodes(CUSTODY_ERROR_CODES);

export type CustodyErrorCode = keyof typeof CUSTODY_ERROR_CODES;

/** Root-key custody errors. */
export class CustodyError extends EkmsError<CustodyErrorCode> {}
