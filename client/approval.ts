/**
 * Quorum approvals on the client side (docs/key-policy.md §10): the request and approval documents the CLI writes
 * and reads (`ekms approval request|sign|submit`), and re-exports of the shared digest and signing helpers.
 *
 * Request document (REQ.json), what every approver checks before signing:
 *   { "version": 1, "kind": "ekms-approval-request", "op": "scheduleKeyDeletion", "keyId": "<uuid>",
 *     "sequence": 0, "params": { "pendingWindowInDays": 7 }, "digest": "<96 hex digits>" }
 * Approval document (APPROVAL.json):
 *   { "version": 1, "kind": "ekms-approval", "approver": "carol", "op": …, "keyId": …, "sequence": …,
 *     "digest": "<hex>", "expiresAt": "<ISO 8601>", "signature": "<base64>" }
 * `digest` is always recomputed from op, keyId, sequence and params: a document whose digest differs is refused
 * (APPROVAL_INVALID), so what an approver reads is what they sign.
 */
import {
  APPROVAL_LIMITS,
  type Approval,
  approvalRequestDigest,
  isProtectedOperation,
} from '../shared/approval.js';
import { KmsError } from '../shared/kms-errors.js';

export {
  APPROVAL_LIMITS,
  type Approval,
  type ApprovalRequest,
  approvalRequestDigest,
  PROTECTED_OPERATIONS,
  type ProtectedOperation,
  type QuorumDefinition,
  signApproval,
} from '../shared/approval.js';

export interface ApprovalRequestDocument {
  readonly version: 1;
  readonly kind: 'ekms-approval-request';
  readonly op: string;
  readonly keyId: string;
  readonly sequence: number;
  /** The operation's parameters without keyId and approvals (JSON values only). */
  readonly params: Readonly<Record<string, unknown>>;
  /** Hex SHA-384 request digest. */
  readonly digest: string;
}

export interface ApprovalDocument {
  readonly version: 1;
  readonly kind: 'ekms-approval';
  readonly approver: string;
  readonly op: string;
  readonly keyId: string;
  readonly sequence: number;
  readonly digest: string;
  readonly expiresAt: string;
  readonly signature: string;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function invalid(message: string): KmsError {
  return new KmsError('APPROVAL_INVALID', message);
}

/**
 * The request document for `op` on the canonical key id at the key's approval sequence.
 * @throws KmsError APPROVAL_INVALID (not a protected operation, alias, unencodable params)
 */
export function approvalRequestDocument(
  op: string,
  keyId: string,
  sequence: number,
  params: Readonly<Record<string, unknown>>,
): ApprovalRequestDocument {
  const { keyId: _k, approvals: _a, ...rest } = params;
  const digest = approvalRequestDigest({ op, keyId, sequence, params: rest });
  return {
    version: 1,
    kind: 'ekms-approval-request',
    op,
    keyId,
    sequence,
    params: rest,
    digest: hex(digest),
  };
}

/**
 * Checks a request document read from a file and recomputes its digest.
 * @throws KmsError APPROVAL_INVALID
 */
export function parseApprovalRequestDocument(doc: unknown): ApprovalRequestDocument {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw invalid('not a request document');
  const d = doc as Record<string, unknown>;
  if (d['version'] !== 1 || d['kind'] !== 'ekms-approval-request') {
    throw invalid('not an ekms approval request (version 1, kind "ekms-approval-request")');
  }
  const { op, keyId, sequence, params, digest } = d;
  if (typeof op !== 'string' || !isProtectedOperation(op)) throw invalid('op is not a protected operation');
  if (typeof keyId !== 'string' || typeof sequence !== 'number')
    throw invalid('keyId and sequence are required');
  if (typeof params !== 'object' || params === null || Array.isArray(params))
    throw invalid('params must be a map');
  const again = approvalRequestDocument(op, keyId, sequence, params as Record<string, unknown>);
  /* Precondition: the digest in the file is the digest of what the file says (no hidden parameters). */
  if (again.digest !== digest) {
    throw invalid('the request digest does not match its op, keyId, sequence and params (edited file?)');
  }
  return again;
}

/** The document form of an approval. */
export function approvalDocument(a: Approval, request: ApprovalRequestDocument): ApprovalDocument {
  return {
    version: 1,
    kind: 'ekms-approval',
    approver: a.approver,
    op: request.op,
    keyId: request.keyId,
    sequence: request.sequence,
    digest: hex(a.digest),
    expiresAt: new Date(a.expiresAt).toISOString(),
    signature: Buffer.from(a.signature).toString('base64'),
  };
}

/**
 * An approval from its document (the enclave decides whether it counts).
 * @throws KmsError APPROVAL_INVALID (malformed document)
 */
export function approvalFromDocument(doc: unknown): Approval {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw invalid('not an approval document');
  const d = doc as Record<string, unknown>;
  if (d['version'] !== 1 || d['kind'] !== 'ekms-approval') {
    throw invalid('not an ekms approval (version 1, kind "ekms-approval")');
  }
  const { approver, digest, expiresAt, signature } = d;
  const ms = typeof expiresAt === 'string' ? Date.parse(expiresAt) : Number.NaN;
  if (typeof approver !== 'string') throw invalid('approver must be a string');
  if (typeof digest !== 'string' || !/^[0-9a-f]{96}$/.test(digest))
    throw invalid('digest must be 96 hex digits');
  if (!Number.isSafeInteger(ms)) throw invalid('expiresAt must be an ISO 8601 time');
  if (typeof signature !== 'string' || !/^[A-Za-z0-9+/]{86}==$/.test(signature)) {
    throw invalid(`signature must be ${APPROVAL_LIMITS.signatureBytes} bytes of base64`);
  }
  return {
    approver,
    digest: new Uint8Array(Buffer.from(digest, 'hex')),
    expiresAt: ms,
    signature: new Uint8Array(Buffer.from(signature, 'base64')),
  };
}
