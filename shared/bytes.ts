/**
 * Byte arrays for hot paths, carved from Node's shared 8 KiB allocation pool (`Buffer.allocUnsafe`).
 *
 * Why: on these machines every array with its own off-heap backing store (`new Uint8Array(n)` for n > 64,
 * `slice()`, `TextEncoder.encode`) costs 1–3.5 µs of the calling thread plus as much again on V8's helper threads
 * (allocation, external-memory accounting, sweeping), 30–40× a pooled slice (docs/performance.md). A request used
 * to make about a dozen of them in each process.
 *
 * What callers must know: the result is a plain `Uint8Array` (not a `Buffer`, so `slice` still copies) viewing part
 * of a shared `ArrayBuffer`: read it through `byteOffset`/`byteLength`, never through `.buffer` alone. Its bytes are
 * not zeroed on allocation; the helpers here overwrite every byte before returning. Zeroing a result (`fill(0)`)
 * wipes exactly its bytes, as for any array.
 */

/** Sizes below this come from the pool (Node serves `allocUnsafe` from its pool up to half the pool size). */
const POOLED_BELOW = Buffer.poolSize >>> 1;

/** A view over `n` bytes the caller must overwrite completely (contents are leftovers until then). */
export function allocUninitialized(n: number): Uint8Array {
  if (n >= POOLED_BELOW) return new Uint8Array(n);
  const b = Buffer.allocUnsafe(n);
  return new Uint8Array(b.buffer, b.byteOffset, n);
}

/** A private copy of `bytes` (no aliasing with the source). */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  const out = allocUninitialized(bytes.length);
  out.set(bytes);
  return out;
}

/** `a ‖ b` in a new array. */
export function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = allocUninitialized(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** The UTF-8 encoding of a string (well-formed strings; lone surrogates become U+FFFD, as with `TextEncoder`). */
export function utf8Bytes(s: string): Uint8Array {
  const b = Buffer.from(s, 'utf8');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}
