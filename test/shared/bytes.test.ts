/**
 * Pooled byte arrays (shared/bytes.ts): exact lengths, private copies, plain Uint8Array results (so `slice` copies),
 * and UTF-8 encoding identical to TextEncoder.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allocUninitialized, concatBytes, copyBytes, utf8Bytes } from '../../shared/bytes.js';

describe('pooled bytes', () => {
  it('allocates exactly n bytes, pooled below half the pool size and its own buffer above', () => {
    for (const n of [0, 1, 64, 65, 4095, 4096, 70_000]) {
      const a = allocUninitialized(n);
      expect(a.length).toBe(n);
      expect(a.byteLength).toBe(n);
      expect(Object.getPrototypeOf(a)).toBe(Uint8Array.prototype);
    }
    expect(allocUninitialized(100).buffer.byteLength).toBeGreaterThan(100);
    expect(allocUninitialized(70_000).buffer.byteLength).toBe(70_000);
  });

  it('copies are private: neither the source nor other pooled arrays change them', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), fc.uint8Array({ maxLength: 300 }), (x, y) => {
        const xs = Array.from(x);
        const ys = Array.from(y);
        const cx = copyBytes(x);
        const both = concatBytes(x, y);
        x.fill(0xaa);
        y.fill(0x55);
        copyBytes(y).fill(1); // a neighbour in the pool
        expect(Array.from(cx)).toEqual(xs);
        expect(Array.from(both)).toEqual([...xs, ...ys]);
      }),
    );
    const src = Uint8Array.of(1, 2, 3);
    const copy = copyBytes(src);
    src[0] = 9;
    expect(Array.from(copy)).toEqual([1, 2, 3]);
    // A plain Uint8Array: slice copies (a Buffer's would be a view).
    const sliced = copy.slice(0, 2);
    sliced[0] = 7;
    expect(copy[0]).toBe(1);
    // Zeroing one pooled array leaves its neighbours alone.
    const a = copyBytes(Uint8Array.of(5, 5, 5));
    const b = copyBytes(Uint8Array.of(6, 6, 6));
    a.fill(0);
    expect(Array.from(b)).toEqual([6, 6, 6]);
  });

  it('encodes UTF-8 exactly as TextEncoder does, lone surrogates included', () => {
    const te = new TextEncoder();
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => {
        expect(utf8Bytes(s)).toEqual(te.encode(s));
      }),
    );
    expect(utf8Bytes('a\ud800b')).toEqual(te.encode('a\ud800b'));
  });
});
