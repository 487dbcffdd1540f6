/**
 * Is a custody bundle's statement from a genuine enclave (docs/custody.md §4)? The bundle carries the provisioning
 * enclave's evidence, which binds its per-boot identity key exactly as in a session handshake (docs/protocol.md
 * §5.1): Nitro `public_key` = identity, `user_data` = SHA-256("ekms-session-v1 enclave identity" ‖ identity); SNP
 * REPORT_DATA = that digest ‖ 32 zero bytes. The evidence is archived: a Nitro leaf certificate lives about three
 * hours, so the chain is checked at the document's own signed `timestamp` (design §2), which must not lie in the
 * future; an SNP report has no timestamp and its VCEK is long-lived, so it is checked at `now`.
 * No I/O (style §13); `now` and the roots are the caller's.
 */

import type { CustodyBundle } from '../shared/custody.js';
import { CustodyError } from '../shared/custody-errors.js';
import { EkmsError } from '../shared/errors.js';
import { identityBinding } from '../shared/session.js';
import type { Claims } from './claims.js';
import { verifyEvidenceBundle } from './evidence.js';
import { parseNitroDocument } from './nitro/index.js';
import type { X509Cache } from './x509/index.js';

export interface BundleEvidencePolicy {
  /** The measurement the provisioning enclave must have had (Nitro PCR0, SNP MEASUREMENT). */
  readonly measurement: string;
  /** Extra roots (PEM) beyond the embedded vendor roots; they count as simulated. */
  readonly extraRoots: readonly string[];
  readonly allowSimulated: boolean;
  readonly allowDebug?: boolean;
  readonly now: Date;
  readonly cache?: X509Cache;
}

const CLOCK_SKEW_MS = 60_000;

function refuse(reason: string, message: string, cause?: unknown): CustodyError {
  return new CustodyError('CUSTODY_INVALID', `the custody bundle is not from a trusted enclave: ${message}`, {
    details: { reason },
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Verifies the evidence in a (signature-checked) custody bundle against `policy`; returns its claims.
 * @throws CustodyError CUSTODY_INVALID (details.reason: the verifier's code, SIMULATED_NOT_ALLOWED,
 *   DEBUG_NOT_ALLOWED, MEASUREMENT_NOT_ALLOWED, BINDING_MISMATCH, EVIDENCE_FROM_FUTURE)
 */
export function verifyBundleEvidence(bundle: CustodyBundle, policy: BundleEvidencePolicy): Claims {
  let claims: Claims;
  try {
    let at = policy.now;
    if (bundle.evidence.type === 'nitro') {
      const signedAt = parseNitroDocument(bundle.evidence.document).timestamp;
      /* Precondition: archived Nitro evidence is not dated in the future. */
      if (signedAt > policy.now.getTime() + CLOCK_SKEW_MS) {
        throw refuse('EVIDENCE_FROM_FUTURE', 'its evidence is dated in the future');
      }
      at = new Date(signedAt);
    }
    claims = verifyEvidenceBundle(bundle.evidence, {
      now: at,
      extraRoots: policy.extraRoots,
      ...(policy.cache === undefined ? {} : { cache: policy.cache }),
    });
  } catch (err) {
    if (err instanceof CustodyError) throw err;
    const code = err instanceof EkmsError ? err.code : 'INTERNAL_ERROR';
    throw refuse(code, `its evidence does not verify (${code})`, err);
  }
  /* Precondition: a simulated root only when allowed. */
  if (claims.simulated && !policy.allowSimulated) {
    throw refuse('SIMULATED_NOT_ALLOWED', 'its evidence is anchored at a simulated root');
  }
  /* Precondition: no debug enclave (its memory, and so the root key, is readable by the host). */
  if (claims.debug && policy.allowDebug !== true) throw refuse('DEBUG_NOT_ALLOWED', 'it was a debug enclave');
  /* Precondition: the provisioning enclave ran the trusted code. */
  if (claims.measurement !== policy.measurement) {
    throw refuse(
      'MEASUREMENT_NOT_ALLOWED',
      `measurement ${claims.measurement.slice(0, 16)}… is not the expected ${policy.measurement.slice(0, 16)}…`,
    );
  }
  /* Precondition: the evidence binds the identity key that signed the bundle. */
  const binding = Buffer.from(identityBinding(bundle.identity)).toString('hex');
  const bound =
    claims.type === 'nitro'
      ? claims.userData === binding && claims.publicKey === Buffer.from(bundle.identity).toString('hex')
      : claims.reportData === binding + '0'.repeat(64);
  if (!bound) throw refuse('BINDING_MISMATCH', 'its evidence does not bind the key that signed the bundle');
  return claims;
}
