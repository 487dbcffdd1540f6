/**
 * Randomness for the enclave's hot paths: data keys and ciphertext-blob salts (not for library code in clients,
 * whose process may be snapshotted or cloned with its heap: the envelope stream draws each message id from the OS
 * CSPRNG itself, one `randomFillSync` per message).
 * Bytes from the OS CSPRNG (`node:crypto`, OpenSSL's DRBG seeded from the OS), drawn 4 KiB at a time.
 *
 * Why a pool: each `crypto.randomBytes` / `randomFillSync` call costs about 6.5 µs on these machines whatever its
 * size (32 bytes or 4 KiB: the call, not the bytes; up to ~19 µs under load), and a GenerateDataKey makes two (the data
 * key and the salt): 8 % of the enclave's CPU under load (docs/performance.md). Drawing 4 KiB per call makes it ~0.1 µs
 * per draw.
 *
 * Rules that keep this as strong as a direct call: the bytes still come from the OS CSPRNG only; each byte is
 * handed out once, and zeroed in the pool as it is handed out, so the pool holds only bytes no one has seen yet
 * (at most 4 KiB, inside the process's memory like every key it holds); large requests bypass the pool.
 */
import { randomBytes, randomFillSync } from 'node:crypto';

const POOL_BYTES = 4096;
/** Requests larger than this go straight to `randomBytes`. */
const MAX_POOLED = 256;

const pool = new Uint8Array(POOL_BYTES);
let offset = POOL_BYTES; // empty: filled on first use

/** `n` fresh random bytes (a new array the caller owns). */
export function secureRandom(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0) throw new RangeError('secureRandom: n must be a non-negative integer');
  if (n > MAX_POOLED) return new Uint8Array(randomBytes(n));
  if (offset + n > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const out = pool.slice(offset, offset + n);
  pool.fill(0, offset, offset + n);
  offset += n;
  return out;
}
