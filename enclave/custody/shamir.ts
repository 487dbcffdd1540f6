/**
 * Shamir secret sharing over GF(256) (Shamir, "How to share a secret", CACM 1979) for the root key's M-of-N custody
 * (design §4; docs/custody.md). The arithmetic is the reviewed `shamir-secret-sharing` library (Privy; audited by
 * Cure53 and Zellic): per secret byte a random polynomial of degree M−1 over GF(2^8) with the byte as constant term,
 * evaluated at N distinct random non-zero x-coordinates. A share is the N y-bytes ‖ its x-coordinate (last byte).
 *
 * What this wrapper adds:
 * - input validation with typed errors (the library throws plain `Error`s): secret 1..64 bytes, 2 ≤ M ≤ N ≤ 16;
 *   shares of one length, x-coordinate non-zero (x = 0 would *be* the secret), no duplicate x-coordinates;
 * - the threshold is checked on combine: with fewer than M shares, Lagrange interpolation still returns bytes, just
 *   not the secret (information-theoretically independent of it), so fewer than M is refused up front
 *   (CUSTODY_THRESHOLD_NOT_MET). A wrong or tampered share also yields wrong bytes silently — integrity comes from
 *   the per-share commitments and the key check value of the custody bundle (enclave/custody/custody.ts), not here;
 * - secret lifetime (style §7): copies of inputs the wrapper makes are zeroed in `finally`; the shares `split`
 *   returns and the secret `combine` returns belong to the caller, who zeroes them. The library's internal
 *   per-byte temporaries (coefficients, samples) are not reachable from here and are left to the GC.
 */
import { combine, split } from 'shamir-secret-sharing';
import { CryptoError } from '../../shared/crypto-errors.js';
import { CustodyError } from '../../shared/custody-errors.js';

/** Bounds of the custody scheme (style §6). The library allows up to 255 shares; custody needs far fewer. */
export const SHAMIR_LIMITS = Object.freeze({
  minThreshold: 2,
  maxShares: 16,
  minSecretBytes: 1,
  maxSecretBytes: 64,
});

function checkCounts(shares: number, threshold: number): void {
  /* Precondition: 2 ≤ threshold ≤ shares ≤ 16, integers. */
  if (
    !Number.isInteger(shares) ||
    !Number.isInteger(threshold) ||
    threshold < SHAMIR_LIMITS.minThreshold ||
    threshold > shares ||
    shares > SHAMIR_LIMITS.maxShares
  ) {
    throw new CryptoError(
      'CRYPTO_PARAMETER_INVALID',
      `Shamir parameters must satisfy ${SHAMIR_LIMITS.minThreshold} ≤ threshold ≤ shares ≤ ${SHAMIR_LIMITS.maxShares} (got ${threshold} of ${shares})`,
    );
  }
}

/**
 * Splits `secret` into `shares` shares, any `threshold` of which recover it. New arrays, owned by the caller.
 * @throws CryptoError CRYPTO_PARAMETER_INVALID (secret size, counts)
 */
export async function splitSecret(
  secret: Uint8Array,
  shares: number,
  threshold: number,
): Promise<Uint8Array[]> {
  /* Precondition: the secret is 1..64 bytes. */
  if (
    !(secret instanceof Uint8Array) ||
    secret.length < SHAMIR_LIMITS.minSecretBytes ||
    secret.length > SHAMIR_LIMITS.maxSecretBytes
  ) {
    throw new CryptoError(
      'CRYPTO_PARAMETER_INVALID',
      `a secret to split must be ${SHAMIR_LIMITS.minSecretBytes}..${SHAMIR_LIMITS.maxSecretBytes} bytes`,
    );
  }
  checkCounts(shares, threshold);
  const copy = Uint8Array.from(secret);
  try {
    return await split(copy, shares, threshold);
  } finally {
    copy.fill(0);
  }
}

/** The x-coordinate of a share (its last byte). */
export function shareX(share: Uint8Array): number {
  return share[share.length - 1] ?? 0;
}

/**
 * Recovers the secret from at least `threshold` distinct shares. A new array, owned by the caller.
 * Shares of a *different* secret, or altered shares, recover wrong bytes without error: check the result.
 * @throws CustodyError CUSTODY_THRESHOLD_NOT_MET (fewer than threshold shares), CUSTODY_SHARE_INVALID (malformed:
 *   not bytes, lengths differ, too short or long, x = 0, duplicate x); CryptoError CRYPTO_PARAMETER_INVALID
 */
export async function combineShares(shares: readonly Uint8Array[], threshold: number): Promise<Uint8Array> {
  if (
    !Number.isInteger(threshold) ||
    threshold < SHAMIR_LIMITS.minThreshold ||
    threshold > SHAMIR_LIMITS.maxShares
  ) {
    throw new CryptoError('CRYPTO_PARAMETER_INVALID', `threshold must be 2..${SHAMIR_LIMITS.maxShares}`);
  }
  /* Precondition: at least `threshold` shares (fewer interpolate to bytes unrelated to the secret). */
  if (!Array.isArray(shares) || shares.length < threshold) {
    throw new CustodyError(
      'CUSTODY_THRESHOLD_NOT_MET',
      `${Array.isArray(shares) ? shares.length : 0} share(s) given; ${threshold} are needed`,
      { details: { given: Array.isArray(shares) ? shares.length : 0, threshold } },
    );
  }
  /* Precondition: at most maxShares shares. */
  if (shares.length > SHAMIR_LIMITS.maxShares) {
    throw new CustodyError('CUSTODY_SHARE_INVALID', `more than ${SHAMIR_LIMITS.maxShares} shares given`);
  }
  const first = shares[0];
  const length = first instanceof Uint8Array ? first.length : -1;
  const seen = new Set<number>();
  for (const [i, share] of shares.entries()) {
    /* Precondition: every share is bytes of one length, 2..65 (secret bytes + x). */
    if (
      !(share instanceof Uint8Array) ||
      share.length !== length ||
      share.length < SHAMIR_LIMITS.minSecretBytes + 1 ||
      share.length > SHAMIR_LIMITS.maxSecretBytes + 1
    ) {
      throw new CustodyError('CUSTODY_SHARE_INVALID', `share ${i} is malformed (length)`, {
        details: { share: i, reason: 'length' },
      });
    }
    const x = shareX(share);
    /* Precondition: x ≠ 0 (the polynomial at 0 is the secret itself; no honest share has it). */
    if (x === 0) {
      throw new CustodyError('CUSTODY_SHARE_INVALID', `share ${i} has x-coordinate 0`, {
        details: { share: i, reason: 'x-zero' },
      });
    }
    /* Precondition: x-coordinates are distinct (a repeated point adds nothing and breaks interpolation). */
    if (seen.has(x)) {
      throw new CustodyError(
        'CUSTODY_SHARE_INVALID',
        `share ${i} repeats the x-coordinate of another share`,
        {
          details: { share: i, reason: 'duplicate' },
        },
      );
    }
    seen.add(x);
  }
  const copies = shares.map((s) => Uint8Array.from(s));
  try {
    return await combine(copies);
  } finally {
    for (const c of copies) c.fill(0);
  }
}
