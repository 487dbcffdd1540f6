/**
 * Dual control (issue 6; docs/key-policy.md §10): decides whether the approvals of a request to a protected key
 * meet the key's quorum. Pure: the caller supplies the digest of this request (shared/approval.ts), the
 * registered principals and `now`.
 *
 * An approval counts when all hold: its approver is in the key's approver set, is a registered principal, holds the
 * `admin` role now, signed exactly this request's digest (compared in constant time), has not expired, and its
 * Ed25519 signature verifies under the approver's registered key. Each approver counts once. An approval that does
 * not count is listed with the reason; the request is refused with QUORUM_REQUIRED when fewer than `threshold`
 * count. An approval that expires more than 24 h (plus clock skew) after `now` makes the whole request
 * APPROVAL_INVALID: approvals are meant to be short-lived, and a long-lived one is a mistake to surface, not skip.
 */
import { createPublicKey, timingSafeEqual, verify } from 'node:crypto';
import {
  APPROVAL_LIMITS,
  type Approval,
  approvalSignedBytes,
  type QuorumDefinition,
} from '../../shared/approval.js';
import { KmsError } from '../../shared/kms-errors.js';

/** The registered principals, as enclave/principals.ts PrincipalRegistry lists them. */
export interface ApproverDirectory {
  list(): readonly {
    readonly name: string;
    readonly publicKey: Uint8Array;
    readonly roles: readonly string[];
  }[];
}

/** Why an approval did not count. */
export const APPROVAL_REJECTIONS = [
  'not-an-approver',
  'unknown-principal',
  'not-admin',
  'other-request',
  'expired',
  'signature-invalid',
  'duplicate',
] as const;
export type ApprovalRejection = (typeof APPROVAL_REJECTIONS)[number];

export interface QuorumEvaluation {
  readonly threshold: number;
  /** Approvers whose approval counted, in request order. */
  readonly approvedBy: readonly string[];
  readonly rejected: ReadonlyArray<{ index: number; approver: string; reason: ApprovalRejection }>;
}

export interface QuorumRequest {
  readonly quorum: QuorumDefinition;
  /** SHA-384 digest of this request (approvalRequestDigest), computed by the enclave. */
  readonly digest: Uint8Array;
  readonly approvals: readonly Approval[];
  readonly principals: ApproverDirectory | undefined;
  /** Milliseconds since the epoch. */
  readonly now: number;
}

function verifies(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    const key = createPublicKey({ key: Buffer.from(publicKey), format: 'der', type: 'spki' });
    return key.asymmetricKeyType === 'ed25519' && verify(null, message, key, signature);
  } catch {
    return false;
  }
}

type Registered = ReturnType<ApproverDirectory['list']>[number];

/** Why one approval does not count, or undefined when it counts. */
function rejection(
  a: Approval,
  principal: Registered | undefined,
  { quorum, digest, now }: QuorumRequest,
  approvedBy: readonly string[],
  approvedKeys: readonly Uint8Array[],
): ApprovalRejection | undefined {
  /* Precondition: the approver is one of the key's approvers. */
  if (!quorum.approvers.includes(a.approver)) return 'not-an-approver';
  /* Precondition: the approver is a registered principal… */
  if (principal === undefined) return 'unknown-principal';
  /* Precondition: …holding the admin role now. */
  if (!principal.roles.includes('admin')) return 'not-admin';
  /* Precondition: the approval is of this request (same op, key, sequence and parameters); constant time. */
  if (a.digest.length !== digest.length || !timingSafeEqual(a.digest, digest)) return 'other-request';
  /* Precondition: the approval has not expired. */
  if (a.expiresAt <= now) return 'expired';
  /* Precondition: the signature verifies over this digest and expiry under the approver's registered key. */
  if (!verifies(principal.publicKey, approvalSignedBytes(digest, a.expiresAt), a.signature)) {
    return 'signature-invalid';
  }
  /* Precondition: each approver counts once, and so does each key (one key registered under two names, e.g.
     before keys were stored canonically, is one person). */
  if (approvedBy.includes(a.approver)) return 'duplicate';
  if (approvedKeys.some((k) => Buffer.from(k).equals(Buffer.from(principal.publicKey)))) return 'duplicate';
  return undefined;
}

/**
 * Counts the approvals that meet the rules of the file header.
 * @throws KmsError APPROVAL_INVALID (an approval expires too far ahead; details.index)
 */
export function evaluateApprovals(request: QuorumRequest): QuorumEvaluation {
  const { approvals, now } = request;
  const latest = now + APPROVAL_LIMITS.maxLifetimeMs + APPROVAL_LIMITS.clockSkewMs;
  for (const [index, a] of approvals.entries()) {
    /* Precondition: an approval expires at most 24 h (plus 5 min of clock skew) after now. */
    if (a.expiresAt > latest) {
      throw new KmsError(
        'APPROVAL_INVALID',
        `approval ${index} (${a.approver}) expires ${new Date(a.expiresAt).toISOString()}, more than 24 h ahead`,
        { details: { index, approver: a.approver } },
      );
    }
  }
  const registered = new Map((request.principals?.list() ?? []).map((p) => [p.name, p]));
  const approvedBy: string[] = [];
  const approvedKeys: Uint8Array[] = [];
  const rejected: Array<{ index: number; approver: string; reason: ApprovalRejection }> = [];
  for (const [index, a] of approvals.entries()) {
    const principal = registered.get(a.approver);
    const reason = rejection(a, principal, request, approvedBy, approvedKeys);
    if (reason === undefined && principal !== undefined) {
      approvedBy.push(a.approver);
      approvedKeys.push(principal.publicKey);
    } else if (reason !== undefined) rejected.push({ index, approver: a.approver, reason });
  }
  return { threshold: request.quorum.threshold, approvedBy, rejected };
}

/**
 * Requires the quorum: returns the approvers who approved, or throws.
 * @throws KmsError QUORUM_REQUIRED (details: keyId, op, threshold, valid, approvedBy, sequence, digest (hex),
 *   rejected [{index, approver, reason}]), APPROVAL_INVALID (see evaluateApprovals)
 */
export function requireQuorum(
  request: QuorumRequest & { readonly keyId: string; readonly op: string; readonly sequence: number },
): readonly string[] {
  const e = evaluateApprovals(request);
  if (e.approvedBy.length >= e.threshold) return e.approvedBy;
  const why = e.rejected.map((r) => `approval ${r.index} (${r.approver}): ${r.reason}`);
  throw new KmsError(
    'QUORUM_REQUIRED',
    `key ${request.keyId} is protected: ${request.op} needs ${e.threshold} of [${request.quorum.approvers.join(', ')}] to approve; ${e.approvedBy.length} valid approval(s)${why.length > 0 ? ` (${why.join('; ')})` : ''}`,
    {
      details: {
        keyId: request.keyId,
        op: request.op,
        threshold: e.threshold,
        valid: e.approvedBy.length,
        approvedBy: [...e.approvedBy],
        sequence: request.sequence,
        digest: Buffer.from(request.digest).toString('hex'),
        rejected: e.rejected.map((r) => ({ ...r })),
      },
    },
  );
}

/**
 * Checks that every approver of a quorum being set is a registered principal with the admin role (a quorum that
 * names anyone else could never be met, and would lock the key's protected operations for good).
 * @throws KmsError QUORUM_INVALID
 */
export function checkQuorumApprovers(
  quorum: QuorumDefinition,
  principals: ApproverDirectory | undefined,
): void {
  const registered = new Map((principals?.list() ?? []).map((p) => [p.name, p]));
  const notAdmins = quorum.approvers.filter((n) => registered.get(n)?.roles.includes('admin') !== true);
  /* Precondition: approvers are registered admins. */
  if (notAdmins.length > 0) {
    throw new KmsError(
      'QUORUM_INVALID',
      `quorum: approvers must be registered principals with the admin role; not: ${notAdmins.join(', ')}`,
      { details: { notAdmins } },
    );
  }
  /* Precondition: M distinct keys can approve (one key under two names counts once: a quorum it alone could not
     meet would lock the key, its removal included). */
  const keys = new Set(
    quorum.approvers.map((n) => Buffer.from(registered.get(n)!.publicKey).toString('hex')),
  );
  if (keys.size < quorum.threshold) {
    throw new KmsError(
      'QUORUM_INVALID',
      `quorum: ${quorum.threshold} approvals needed but the approvers hold only ${keys.size} distinct keys`,
      { details: { distinctKeys: keys.size, threshold: quorum.threshold } },
    );
  }
}
