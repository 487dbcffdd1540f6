/**
 * Shamir secret sharing for root-key custody (enclave/custody/shamir.ts over `shamir-secret-sharing`), and the
 * custody bundle's integrity checks (shared/custody.ts): every M-subset of N recovers the secret, M−1 shares are
 * refused (and, given to the raw library, interpolate to something else), duplicates and malformed shares are
 * typed errors, and a tampered share is caught by its commitment and the key check value.
 */
import fc from 'fast-check';
import { combine } from 'shamir-secret-sharing';
import { describe, expect, it } from 'vitest';
import { combineShares, SHAMIR_LIMITS, shareX, splitSecret } from '../../enclave/custody/shamir.js';
import { rootKeyCheck, shareCommitment } from '../../shared/custody.js';
import { codeOf } from '../helpers/outcome.js';
import { runs } from '../helpers/property-runs.js';

/** Every k-subset of [0, n). */
function subsets(n: number, k: number): number[][] {
  const out: number[][] = [];
  const walk = (start: number, acc: number[]): void => {
    if (acc.length === k) {
      out.push([...acc]);
      return;
    }
    for (let i = start; i < n; i++) walk(i + 1, [...acc, i]);
  };
  walk(0, []);
  return out;
}

const eq = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

describe('Shamir split and combine', () => {
  it('every M-subset of N recovers the secret, exhaustively for N ≤ 5', async () => {
    for (let n = 2; n <= 5; n++) {
      for (let m = 2; m <= n; m++) {
        const secret = new Uint8Array(32).map((_, i) => (i * 37 + n * 11 + m) & 0xff);
        const shares = await splitSecret(secret, n, m);
        expect(shares, `${m} of ${n}`).toHaveLength(n);
        for (const s of shares) expect(s.length, `${m} of ${n}: share length`).toBe(33);
        for (let k = m; k <= n; k++) {
          for (const idx of subsets(n, k)) {
            const got = await combineShares(
              idx.map((i) => shares[i]!),
              m,
            );
            expect(eq(got, secret), `${m} of ${n}, shares ${idx.join(',')}`).toBe(true);
          }
        }
      }
    }
  });

  it('property: random secrets, N, M and subsets of size ≥ M recover the secret', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.integer({ min: 2, max: 8 }),
        fc.integer({ min: 2, max: 8 }),
        fc.integer(),
        async (secret, a, b, seed) => {
          const n = Math.max(a, b);
          const m = Math.min(a, b);
          const shares = await splitSecret(secret, n, m);
          // A pseudo-random subset of size M..N, in pseudo-random order.
          const order = shares
            .map((s, i) => ({ s, k: (seed * 31 + i * 7919) % 101 }))
            .sort((x, y) => x.k - y.k);
          const take = m + (Math.abs(seed) % (n - m + 1));
          const got = await combineShares(
            order.slice(0, take).map((o) => o.s),
            m,
          );
          return eq(got, secret);
        },
      ),
      { numRuns: runs(100) },
    );
  });

  it('M−1 shares are refused (CUSTODY_THRESHOLD_NOT_MET), for every (M−1)-subset of N ≤ 5', async () => {
    for (let n = 2; n <= 5; n++) {
      for (let m = 2; m <= n; m++) {
        const shares = await splitSecret(new Uint8Array(32).fill(7), n, m);
        for (const idx of subsets(n, m - 1)) {
          expect(
            await codeOf(
              combineShares(
                idx.map((i) => shares[i]!),
                m,
              ),
            ),
            `${m} of ${n}: ${idx.join(',')}`,
          ).toBe('CUSTODY_THRESHOLD_NOT_MET');
        }
      }
    }
  });

  it('property: M−1 shares given to the raw library interpolate to something other than the secret', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.integer({ min: 3, max: 8 }),
        async (secret, n) => {
          const m = n; // M−1 ≥ 2 shares so the library accepts them
          const shares = await splitSecret(secret, n, m);
          const wrong = await combine(shares.slice(0, m - 1));
          // The chance that M−1 shares of a random 32-byte secret interpolate to it is 2^-256.
          return !eq(wrong, secret);
        },
      ),
      { numRuns: runs(50) },
    );
  });

  it('refuses duplicate shares (CUSTODY_SHARE_INVALID), so a repeated share cannot stand in for a missing one', async () => {
    const shares = await splitSecret(new Uint8Array(32).fill(1), 3, 2);
    expect(await codeOf(combineShares([shares[0]!, shares[0]!], 2))).toBe('CUSTODY_SHARE_INVALID');
    // Same x-coordinate, different y: still a duplicate point.
    const forged = Uint8Array.from(shares[0]!);
    forged[0] = forged[0]! ^ 1;
    expect(await codeOf(combineShares([shares[0]!, forged], 2))).toBe('CUSTODY_SHARE_INVALID');
  });

  it('refuses malformed shares: lengths differ, too short, x = 0, not bytes', async () => {
    const shares = await splitSecret(new Uint8Array(32).fill(2), 3, 2);
    expect(await codeOf(combineShares([shares[0]!, shares[1]!.subarray(1)], 2))).toBe(
      'CUSTODY_SHARE_INVALID',
    );
    expect(await codeOf(combineShares([Uint8Array.of(1), Uint8Array.of(2)], 2))).toBe(
      'CUSTODY_SHARE_INVALID',
    );
    const x0 = Uint8Array.from(shares[1]!);
    x0[x0.length - 1] = 0;
    expect(await codeOf(combineShares([shares[0]!, x0], 2))).toBe('CUSTODY_SHARE_INVALID');
    expect(await codeOf(combineShares([shares[0]!, 'nope' as unknown as Uint8Array], 2))).toBe(
      'CUSTODY_SHARE_INVALID',
    );
  });

  it('refuses bad split parameters (CRYPTO_PARAMETER_INVALID)', async () => {
    const s = new Uint8Array(32);
    expect(await codeOf(splitSecret(s, 3, 1))).toBe('CRYPTO_PARAMETER_INVALID');
    expect(await codeOf(splitSecret(s, 2, 3))).toBe('CRYPTO_PARAMETER_INVALID');
    expect(await codeOf(splitSecret(s, SHAMIR_LIMITS.maxShares + 1, 2))).toBe('CRYPTO_PARAMETER_INVALID');
    expect(await codeOf(splitSecret(new Uint8Array(0), 3, 2))).toBe('CRYPTO_PARAMETER_INVALID');
    expect(await codeOf(splitSecret(new Uint8Array(65), 3, 2))).toBe('CRYPTO_PARAMETER_INVALID');
    expect(await codeOf(splitSecret(s, 2.5, 2))).toBe('CRYPTO_PARAMETER_INVALID');
  });

  it('x-coordinates are distinct and non-zero; shares differ from the secret', async () => {
    const secret = new Uint8Array(32).fill(9);
    const shares = await splitSecret(secret, 16, 5);
    const xs = shares.map(shareX);
    expect(new Set(xs).size).toBe(16);
    expect(xs.includes(0)).toBe(false);
    for (const sh of shares) expect(eq(sh.subarray(0, 32), secret)).toBe(false);
  });

  it('zeroes its copy of the secret and leaves the caller’s secret intact', async () => {
    const secret = new Uint8Array(32).fill(5);
    await splitSecret(secret, 3, 2);
    expect(secret.every((b) => b === 5)).toBe(true);
  });
});

describe('custody integrity: commitments and key check', () => {
  it('property: a tampered share fails its commitment, and a combination with it fails the key check', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.integer({ min: 0, max: 32 }),
        fc.integer({ min: 1, max: 255 }),
        async (rootKey, pos, mask) => {
          const salt = new Uint8Array(32).fill(3);
          const shares = await splitSecret(rootKey, 3, 2);
          const commitments = shares.map((s, i) => shareCommitment(salt, i + 1, s));
          const bad = Uint8Array.from(shares[1]!);
          bad[pos] = bad[pos]! ^ mask;
          // Detected on arrival, alone: the good share keeps its commitment.
          expect(eq(shareCommitment(salt, 2, bad), commitments[1]!)).toBe(false);
          expect(eq(shareCommitment(salt, 1, shares[0]!), commitments[0]!)).toBe(true);
          // And had it been combined, the result would not pass the key check.
          if (pos < 32) {
            const got = await combineShares([shares[0]!, bad], 2);
            expect(eq(rootKeyCheck(got), rootKeyCheck(rootKey))).toBe(false);
          }
          return true;
        },
      ),
      { numRuns: runs(60) },
    );
  });

  it('a commitment binds the share index (a share moved to another index is refused)', async () => {
    const salt = new Uint8Array(32).fill(4);
    const [s1] = await splitSecret(new Uint8Array(32).fill(8), 3, 2);
    expect(eq(shareCommitment(salt, 1, s1!), shareCommitment(salt, 2, s1!))).toBe(false);
  });
});
