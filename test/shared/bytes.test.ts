/**
 * Pooled byte arrays (shared/bytes.ts): exact lengths, private copies, plain Uint8Array results (so `slice` copies),
 * and UTF-8 encoding identical to TextEncoder.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allocUninitialized, concatBytes, copyBytes, utf8Bytes } from '../../shared/bytes.js';
import { decodeCbor, encodeCbor } from '../../shared/cbor.js';
import { encodeStreamFrame, StreamFrameDecoder } from '../../shared/frame.js';
import { dirtyPool } from '../helpers/dirty-pool.js';

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

  it('copies are private: changing the source does not change them', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), fc.uint8Array({ maxLength: 300 }), (x, y) => {
        const xs = Array.from(x);
        const ys = Array.from(y);
        const cx = copyBytes(x);
        const both = concatBytes(x, y);
        x.fill(0xaa);
        y.fill(0x55);
        expect(Array.from(cx)).toEqual(xs);
        expect(Array.from(both)).toEqual([...xs, ...ys]);
      }),
    );
    // A plain Uint8Array: slice copies (a Buffer's would be a view).
    const copy = copyBytes(Uint8Array.of(1, 2, 3));
    const sliced = copy.slice(0, 2);
    sliced[0] = 7;
    expect(copy[0]).toBe(1);
  });

  it('pooled results are fully written: the same bytes whatever the pool held before', () => {
    // The dirt reaches new pooled arrays (else this test could not fail).
    dirtyPool(0xaa);
    expect(Array.from(allocUninitialized(16))).toEqual(new Array(16).fill(0xaa));
    const frame = encodeCbor({
      id: 7,
      op: 'generateDataKey',
      params: { keyId: 'k', bytes: new Uint8Array(40) },
    });
    const run = (byte: number) => {
      dirtyPool(byte);
      const framed = encodeStreamFrame(frame);
      dirtyPool(byte);
      const encoded = encodeCbor({ a: 'x'.repeat(100), b: new Uint8Array(70).fill(3) });
      dirtyPool(byte);
      const decoded = decodeCbor(encoded);
      // A frame split across three chunks is reassembled in a pooled array.
      const decoder = new StreamFrameDecoder();
      dirtyPool(byte);
      const parts = [framed.subarray(0, 3), framed.subarray(3, 20), framed.subarray(20)];
      const frames = parts.flatMap((p) => decoder.push(p));
      dirtyPool(byte);
      return {
        framed: Array.from(framed),
        encoded: Array.from(encoded),
        decoded,
        reassembled: frames.map((f) => Array.from(f)),
        copy: Array.from(copyBytes(frame)),
        concat: Array.from(concatBytes(frame, frame)),
      };
    };
    const a = run(0xaa);
    const b = run(0x55);
    expect(a).toEqual(b);
    expect(a.reassembled).toEqual([Array.from(frame)]);
    expect(a.framed.slice(4)).toEqual(Array.from(frame));
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
