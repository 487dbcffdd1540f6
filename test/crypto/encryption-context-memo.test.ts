/**
 * shared/encryption-context.ts, decodeContext's memo of the last encoding: what it keeps lives in memory of its own,
 * not in Node's shared allocation pool, where other code writing through a pooled Buffer's `.buffer` (a bug, but one
 * this repository's docs warn about) would change it and make other bytes decode as the remembered context. In a
 * file of its own: the test overwrites part of the current pool slab.
 */
import { describe, expect, it } from 'vitest';
import { decodeContext, encodeContext } from '../../shared/encryption-context.js';
import { expectCode } from './helpers.js';

describe('decodeContext memo', () => {
  it('keeps its copy outside the shared pool: overwriting the pool does not change what it matches', () => {
    // Start a fresh pool slab, so that what is overwritten below holds only what this test allocates from it.
    let first: Buffer;
    do first = Buffer.allocUnsafe(1024);
    while (first.byteOffset !== 0);
    const slab = new Uint8Array(first.buffer);
    const enc = encodeContext({ tenant: 'pool' });
    expect({ ...decodeContext(enc) }).toEqual({ tenant: 'pool' });
    // A buggy neighbour zeroes the rest of the slab (everything pooled since `first`).
    slab.fill(0, first.length);
    // All-zero bytes of the same length are not a valid encoding (0 entries, then trailing bytes).
    expectCode(() => decodeContext(new Uint8Array(enc.length)), 'CONTEXT_INVALID', /follow the last entry/);
    // Leave the memo holding a context this test did not damage.
    expect({ ...decodeContext(encodeContext({ other: 'x' })) }).toEqual({ other: 'x' });
  });
});
