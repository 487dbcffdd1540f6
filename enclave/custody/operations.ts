/**
 * Custody operations (docs/custody.md §5), answered inside an attested session to anyone, authenticated or not:
 * a custodian proves nothing but its share, which is checked against its commitment in the signed bundle.
 *
 * | op | params | result |
 * |---|---|---|
 * | `custodyStatus` | — | `{locked, threshold, custodians, held, keyCheck, setDigest, generation}` |
 * | `custodyGetBundle` | — | `{bundle}`: the custody bundle bytes (public; the custodian's CLI verifies it) |
 * | `custodySubmitShare` | `index`, `share` (33 bytes) | `{held, threshold, unlocked}` |
 *
 * Without custody (the insecure simulation root key) they answer CUSTODY_INVALID.
 */
import { CustodyError } from '../../shared/custody-errors.js';
import { checkKeys } from '../kms/params.js';
import type { Operation, OperationContext } from '../operations.js';
import type { CustodyLock } from './custody.js';

function lockOf(ctx: OperationContext): CustodyLock {
  const lock = ctx.custody;
  /* Precondition: custody operations need an enclave started in custody mode. */
  if (lock === undefined) {
    throw new CustodyError('CUSTODY_INVALID', 'this enclave does not hold its root key in custody', {
      details: { reason: 'not-custody' },
    });
  }
  return lock;
}

/** `custodyStatus`: is the enclave locked, and which shares does it hold. */
export const custodyStatus: Operation = (params, ctx) => {
  checkKeys(params, []);
  return { ...lockOf(ctx).status() };
};

/** `custodyGetBundle`: the custody bundle, for a custodian to find, verify and decrypt its share. */
export const custodyGetBundle: Operation = (params, ctx) => {
  checkKeys(params, []);
  return { bundle: lockOf(ctx).bundleBytes() };
};

/**
 * `custodySubmitShare`: one custodian's decrypted share. The share travels only inside the session's records.
 * @throws CustodyError CUSTODY_SHARE_INVALID, CUSTODY_INVALID; ProtocolError REQUEST_INVALID (not locked)
 */
export const custodySubmitShare: Operation = async (params, ctx) => {
  checkKeys(params, ['index', 'share']);
  const share = params['share'];
  try {
    return { ...(await lockOf(ctx).submit(params['index'], share)) };
  } finally {
    // The request bytes are zeroed by the server; this is the decoded copy.
    if (share instanceof Uint8Array) share.fill(0);
  }
};
