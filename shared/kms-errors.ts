/**
 * Error codes of the key service (design §4; docs/key-service.md): key lookup and state, aliases, limits and
 * authorisation. Crypto failures (DECRYPT_FAILED, CIPHERTEXT_*, CONTEXT_INVALID…) keep their codes from
 * shared/crypto-errors.ts; sealed-state failures theirs (SEALED_*); storage failures theirs (STORE_*).
 *
 * Codes are stable and never renamed; each summary is one line for docs/errors.md.
 */
import { EkmsError, type ErrorSpec, registerErrorCodes } from './errors.js';

export const KMS_ERROR_CODES = {
  KEY_NOT_FOUND: { retriable: false, summary: 'No key has this id, and no alias has this name.' },
  KEY_VERSION_NOT_FOUND: {
    retriable: false,
    summary: 'The ciphertext names a version of the key that does not exist.',
  },
  KEY_DISABLED: { retriable: false, summary: 'The key is disabled; enable it before using it.' },
  KEY_PENDING_DELETION: {
    retriable: false,
    summary:
      'The key is scheduled for deletion and cannot be used (the attempt is recorded); cancel the deletion to use it.',
  },
  KEY_DESTROYED: {
    retriable: false,
    summary:
      'The key material was destroyed at the end of its deletion window; its ciphertexts are unrecoverable.',
  },
  KEY_STATE_INVALID: {
    retriable: false,
    summary:
      "The operation is not valid in the key's current state (e.g. cancelling a deletion that is not scheduled).",
  },
  KEY_UNAVAILABLE: {
    retriable: false,
    summary:
      "The key's sealed record could not be loaded (corrupt, rolled back or missing); it is never used.",
  },
  KEY_ID_MISMATCH: {
    retriable: false,
    summary: 'The ciphertext was made under another key than the key id the request names.',
  },
  KEY_LIMIT_EXCEEDED: {
    retriable: false,
    summary: 'A key service limit is reached (keys, versions of a key, or aliases).',
  },
  ALIAS_INVALID: {
    retriable: false,
    summary:
      'An alias name is not alias/ followed by 1..250 of [A-Za-z0-9/_-], or uses the reserved alias/ekms/ prefix.',
  },
  ALIAS_EXISTS: { retriable: false, summary: 'An alias of this name already exists.' },
  ALIAS_NOT_FOUND: { retriable: false, summary: 'No alias has this name.' },
  ACCESS_DENIED: {
    retriable: false,
    summary: 'The caller is not authorised to perform this operation on this key.',
  },
  ROOT_KEY_UNAVAILABLE: {
    retriable: false,
    summary:
      'The enclave root key is missing or unreadable while sealed key state exists; the enclave refuses to start rather than create a new root key.',
  },
  PRINCIPAL_INVALID: {
    retriable: false,
    summary: 'A principal definition is invalid (name, roles, tags or Ed25519 public key).',
  },
  PRINCIPAL_EXISTS: {
    retriable: false,
    summary: 'A principal with this name or public key is already registered.',
  },
  GRANT_INVALID: {
    retriable: false,
    summary: 'A grant is invalid (grantee, operations, constraints or lifetime).',
  },
  GRANT_NOT_FOUND: { retriable: false, summary: 'The key has no grant with this id.' },
  KEY_POLICY_INVALID: {
    retriable: false,
    summary:
      'A key policy document is invalid (version, unknown key, type, bounds, action, principal, condition); details.path locates it.',
  },
  QUORUM_INVALID: {
    retriable: false,
    summary:
      'A quorum definition is invalid (threshold, approvers: 1..16 distinct registered admins, 1 ≤ threshold ≤ approvers).',
  },
  QUORUM_REQUIRED: {
    retriable: false,
    summary:
      'The key is protected and the request lacks enough valid approvals; details list the threshold, the valid count and why each approval did not count.',
  },
  APPROVAL_INVALID: {
    retriable: false,
    summary:
      'An approval is malformed (fields, sizes, more than 32) or expires more than 24 hours ahead, or the request cannot be approved.',
  },
} as const satisfies Record<string, ErrorSpec>;

registerErrorCodes(KMS_ERROR_CODES);

export type KmsErrorCode = keyof typeof KMS_ERROR_CODES;

/** Every failure of the key service's own rules. */
export class KmsError extends EkmsError<KmsErrorCode> {}
