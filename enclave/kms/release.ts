/**
 * Attestation-gated release (design §3; docs/protocol.md §6): a key leaves the enclave only as an HPKE (RFC 9180)
 * ciphertext, KEM X-Wing, to the recipient public key that the caller's verified evidence binds, and only when
 * the key's release policy (an attestation policy, attestation/policy.ts) accepts the caller's claims.
 *
 * The response is a signed statement: CBOR {v:1, op, keyId, keyVersion, recipient: SHA-256(recipient key),
 * requestDigest, suite, enc, ciphertext[, ciphertextBlob]} and Ed25519(identity, "ekms-release-v1 " ‖ statement).
 * HPKE info = CBOR {ctx:"ekms-release-v1", op, keyId, keyVersion, requestDigest}; aad empty. Any HPKE
 * implementation with X-Wing opens it (test/e2e/release.test.ts opens it with hpke-js).
 */
import { createHash } from 'node:crypto';
import { evaluate, parsePolicy } from '../../attestation/policy.js';
import { encodeCbor } from '../../shared/cbor.js';
import { HPKE_SUITE, hpkeSeal } from '../../shared/hpke.js';
import { KmsError } from '../../shared/kms-errors.js';
import type { Params } from '../../shared/messages.js';
import { SessionError } from '../../shared/session-errors.js';
import type { AttestedWorkload } from '../authenticate.js';
import type { KeyRecord } from '../keystore/key-record.js';
import type { EnclaveIdentity } from '../session.js';

export const RELEASE_CONTEXT = 'ekms-release-v1';

export interface ReleaseContext {
  readonly workload: AttestedWorkload | undefined;
  readonly identity: EnclaveIdentity | undefined;
  readonly now: () => number;
  readonly requestDigest: Uint8Array | undefined;
}

/**
 * Checks that this session's attested workload may receive material of key `r`.
 * @throws SessionError RECIPIENT_NOT_ATTESTED; KmsError ACCESS_DENIED (no release policy, or claims refused —
 *   every violation listed)
 */
export function authorizeRelease(ctx: ReleaseContext, r: KeyRecord, op: string): AttestedWorkload {
  /* Precondition: the caller is an attested workload with a bound recipient key. */
  if (ctx.workload === undefined || ctx.identity === undefined || ctx.requestDigest === undefined) {
    throw new SessionError(
      'RECIPIENT_NOT_ATTESTED',
      `${op} with a recipient needs a session authenticated with workload evidence`,
    );
  }
  /* Precondition: the key has a release policy (keys without one are never released). */
  if (r.releasePolicy == null) {
    throw new KmsError(
      'ACCESS_DENIED',
      `key ${r.id} has no release policy: it is never released to a workload`,
      {
        details: { keyId: r.id, action: op },
      },
    );
  }
  const decision = evaluate(ctx.workload.claims, parsePolicy(JSON.parse(r.releasePolicy)), {
    now: new Date(ctx.now()),
  });
  /* Precondition: the workload's claims satisfy the key's release policy. */
  if (!decision.allowed) {
    const reasons = decision.violations.map((v) => `${v.code} (${v.field})`);
    throw new KmsError(
      'ACCESS_DENIED',
      `the release policy of key ${r.id} refuses this workload: ${reasons.join(', ')}`,
      {
        details: {
          keyId: r.id,
          action: op,
          violations: decision.violations.map((v) => ({ code: v.code, field: v.field })),
        },
      },
    );
  }
  return ctx.workload;
}

/** Wraps `material` to the workload's recipient key and signs the statement. The caller zeroes `material`. */
export function wrapForRecipient(
  ctx: ReleaseContext,
  workload: AttestedWorkload,
  fields: { op: string; keyId: string; keyVersion: number; ciphertextBlob?: Uint8Array },
  material: Uint8Array,
): Params {
  const requestDigest = ctx.requestDigest as Uint8Array;
  const info = encodeCbor({
    ctx: RELEASE_CONTEXT,
    op: fields.op,
    keyId: fields.keyId,
    keyVersion: fields.keyVersion,
    requestDigest,
  });
  const sealed = hpkeSeal(workload.recipientPublicKey, info, new Uint8Array(0), material);
  const statement = encodeCbor({
    v: 1,
    op: fields.op,
    keyId: fields.keyId,
    keyVersion: fields.keyVersion,
    recipient: new Uint8Array(createHash('sha256').update(workload.recipientPublicKey).digest()),
    requestDigest,
    suite: HPKE_SUITE.id,
    enc: sealed.enc,
    ciphertext: sealed.ciphertext,
    ...(fields.ciphertextBlob === undefined ? {} : { ciphertextBlob: fields.ciphertextBlob }),
  });
  const signature = (ctx.identity as EnclaveIdentity).signStatement(
    Buffer.concat([Buffer.from(`${RELEASE_CONTEXT} `), statement]),
  );
  return { release: statement, signature };
}
