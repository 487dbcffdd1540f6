/**
 * Byte-level mutations for property tests of decoders (style §12): flip a bit, set a byte, insert a byte, delete a
 * byte, truncate. `at` is reduced modulo the input length, so any natural number is a valid position.
 */
import fc from 'fast-check';

export interface ByteMutation {
  readonly kind: 'flip' | 'set' | 'insert' | 'delete' | 'truncate';
  readonly at: number;
  /** The bit (0..7) for `flip`, the byte for `set` and `insert`; unused otherwise. */
  readonly value: number;
}

/** Uniform mutations; `bytes` biases the values written by `set` and `insert` (default: any byte). */
export function byteMutation(
  bytes: fc.Arbitrary<number> = fc.integer({ min: 0, max: 255 }),
): fc.Arbitrary<ByteMutation> {
  return fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: bytes }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), value: bytes }),
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), value: fc.constant(0) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(), value: fc.constant(0) }),
  );
}

/** `bytes` with `m` applied (a new array, or a view for `truncate`); an empty input is returned as is. */
export function applyMutation(bytes: Uint8Array, m: ByteMutation): Uint8Array {
  if (bytes.length === 0) return bytes;
  const at = m.at % bytes.length;
  switch (m.kind) {
    case 'flip': {
      const out = Uint8Array.from(bytes);
      out[at]! ^= 1 << m.value;
      return out;
    }
    case 'set': {
      const out = Uint8Array.from(bytes);
      out[at] = m.value;
      return out;
    }
    case 'insert':
      return Uint8Array.from([...bytes.subarray(0, at), m.value, ...bytes.subarray(at)]);
    case 'delete':
      return Uint8Array.from([...bytes.subarray(0, at), ...bytes.subarray(at + 1)]);
    default:
      return bytes.subarray(0, at);
  }
}
