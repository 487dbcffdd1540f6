/**
 * `authenticate`: who is on the other end of this session (design §3; docs/protocol.md §5.3). Inside an
 * established session the client proves, once:
 * - a principal: `publicKey` (Ed25519 SPKI DER) of a registered principal and `signature` over
 *   "ekms-session-v1 client-auth" ‖ binder (enclave/principals.ts);
 * - an attested workload: `evidence` (Nitro document or SNP report + certificates) whose user_data / REPORT_DATA
 *   equals SHA-256(recipient) ‖ SHA-256("ekms-session-v1 workload" ‖ binder), and `recipient`, its X-Wing public
 *   key: keys are released only wrapped to that key (kms/release.ts);
 * - or both. The binder is secret to the two ends, so neither proof can come from another session or the host.
 */
import { createHash } from 'node:crypto';
import type { Claims } from '../attestation/claims.js';
import { verifyEvidenceBundle } from '../attestation/evidence.js';
import { X509Cache } from '../attestation/x509/index.js';
import { EkmsError, ProtocolError } from '../shared/errors.js';
import type { Params } from '../shared/messages.js';
import { decodeEvidence, workloadBinding } from '../shared/session.js';
import { SessionError } from '../shared/session-errors.js';
import { checkXWingPublicKey, XWING } from '../shared/xwing.js';
import { bytesParam, checkKeys } from './kms/params.js';
import type { Operation } from './operations.js';

/** A workload whose evidence verified in this session, and the recipient key that evidence binds. */
export interface AttestedWorkload {
  readonly claims: Claims;
  readonly recipientPublicKey: Uint8Array;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Parsed certificates and verified chain links, shared by all sessions (workload evidence repeats its chain). */
const chainCache = new X509Cache();

export const authenticate: Operation = (params, ctx, caller) => {
  checkKeys(params, ['publicKey', 'signature', 'evidence', 'recipient']);
  /* Precondition: authentication happens inside a session, once. */
  if (caller.binder === undefined) {
    throw new SessionError('SESSION_REQUIRED', 'authenticate needs an attested session');
  }
  if (caller.principal.authentication !== 'none' || caller.workload !== undefined) {
    throw new ProtocolError('REQUEST_INVALID', 'this session is already authenticated');
  }
  const hasPrincipal = params['publicKey'] !== undefined || params['signature'] !== undefined;
  const hasWorkload = params['evidence'] !== undefined || params['recipient'] !== undefined;
  if (!hasPrincipal && !hasWorkload) {
    throw new ProtocolError(
      'REQUEST_INVALID',
      'give publicKey + signature, or evidence + recipient, or both',
    );
  }
  let principal = caller.principal;
  let workload: AttestedWorkload | undefined;
  if (hasPrincipal) {
    const p = ctx.principals.authenticate(
      bytesParam(params, 'publicKey'),
      bytesParam(params, 'signature'),
      caller.binder,
    );
    principal = { name: p.name, authentication: 'signature', admin: p.admin, roles: p.roles, tags: p.tags };
  }
  if (hasWorkload) {
    const recipient = bytesParam(params, 'recipient');
    if (recipient.length !== XWING.publicKeyBytes) {
      throw new ProtocolError(
        'REQUEST_INVALID',
        `recipient must be an X-Wing public key (${XWING.publicKeyBytes} bytes)`,
      );
    }
    /* Precondition: the recipient key is a valid X-Wing key (FIPS 203 §7.2), refused now rather than at the first
       release. */
    try {
      checkXWingPublicKey(recipient);
    } catch (err) {
      throw new ProtocolError('REQUEST_INVALID', `recipient: ${(err as Error).message}`, { cause: err });
    }
    let claims: Claims;
    try {
      const bundle = decodeEvidence(params['evidence'], 'evidence');
      claims = verifyEvidenceBundle(bundle, {
        now: new Date(ctx.now()),
        extraRoots: ctx.attestor.simulatedRoot === null ? [] : [ctx.attestor.simulatedRoot],
        cache: chainCache,
      });
    } catch (err) {
      const code = err instanceof EkmsError ? err.code : 'INTERNAL_ERROR';
      throw new SessionError('AUTHENTICATION_FAILED', `the workload evidence did not verify (${code})`, {
        cause: err,
        details: { reason: code },
      });
    }
    const expected = hex(workloadBinding(createHash('sha256').update(recipient).digest(), caller.binder));
    const bound = claims.type === 'nitro' ? claims.userData : claims.reportData;
    /* Precondition: the evidence binds this session and this recipient key (not replayed from another session). */
    if (bound !== expected) {
      throw new SessionError(
        'AUTHENTICATION_FAILED',
        `the workload evidence does not bind this session and recipient key (${claims.type === 'nitro' ? 'user_data' : 'REPORT_DATA'})`,
        { details: { reason: 'BINDING_MISMATCH' } },
      );
    }
    workload = { claims, recipientPublicKey: recipient };
    if (!hasPrincipal)
      principal = {
        name: `workload:${claims.measurement.slice(0, 16)}`,
        authentication: 'attestation',
        admin: false,
        roles: [],
        tags: {},
      };
  }
  caller.principal = principal;
  caller.workload = workload;
  return {
    principal: principal.name,
    admin: principal.admin,
    workload:
      workload === undefined
        ? null
        : {
            type: workload.claims.type,
            measurement: workload.claims.measurement,
            debug: workload.claims.debug,
            simulated: workload.claims.simulated,
          },
  } satisfies Params;
};
