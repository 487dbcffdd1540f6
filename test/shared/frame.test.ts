import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeCbor, encodeCbor } from '../../shared/cbor.js';
import { EkmsError } from '../../shared/errors.js';
import { encodeStreamFrame, StreamFrameDecoder } from '../../shared/frame.js';
import { LIMITS } from '../../shared/limits.js';
import {
  decodeRequest,
  decodeResponse,
  encodeError,
  encodeOk,
  encodeRequest,
} from '../../shared/messages.js';
import { runs } from '../helpers/property-runs.js';

/** Values our protocol carries: maps with text keys, arrays, text, bytes, integers, booleans, null. */
const wireValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.string({ maxLength: 40 }),
    fc.uint8Array({ maxLength: 64 }),
    fc.integer({ min: -(2 ** 31), max: 2 ** 31 }),
    fc.maxSafeNat(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(
      fc.string({ minLength: 1, maxLength: 12 }).filter((k) => k !== '__proto__'),
      tie('value'),
      {
        maxKeys: 5,
      },
    ),
  ),
})).value;

/** cbor-x yields Node Buffers (a Uint8Array subclass) for byte strings; compare as plain Uint8Array. */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return Uint8Array.from(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof EkmsError) return err.code;
    throw err;
  }
  return 'NO_ERROR';
}

const sampleRequest = encodeRequest(7, 'generateRandom', {
  length: 32,
  note: 'x'.repeat(20),
  blob: new Uint8Array(9),
});

describe('CBOR codec', () => {
  it('round-trips protocol values (property)', () => {
    fc.assert(
      fc.property(wireValue, (v) => {
        expect(plain(decodeCbor(encodeCbor(v)))).toEqual(v);
      }),
      { numRuns: runs(2000) },
    );
  });

  it('rejects every truncation of a valid item with FRAME_TRUNCATED', () => {
    for (let n = 0; n < sampleRequest.length; n++) {
      expect(
        codeOf(() => decodeCbor(sampleRequest.subarray(0, n))),
        `prefix ${n}`,
      ).toBe('FRAME_TRUNCATED');
    }
  });

  it('rejects trailing bytes with FRAME_TRAILING_BYTES', () => {
    const bytes = new Uint8Array([...sampleRequest, 0x00]);
    expect(codeOf(() => decodeCbor(bytes))).toBe('FRAME_TRAILING_BYTES');
  });

  it('turns every single-bit flip into a value or a typed error, never a crash (exhaustive)', () => {
    for (let i = 0; i < sampleRequest.length; i++) {
      for (let b = 0; b < 8; b++) {
        const m = Uint8Array.from(sampleRequest);
        m[i]! ^= 1 << b;
        const code = codeOf(() => decodeRequest(m));
        expect(code, `byte ${i} bit ${b}`).toMatch(
          /^(NO_ERROR|FRAME_[A-Z_]+|MESSAGE_INVALID|PROTOCOL_VERSION_UNSUPPORTED)$/,
        );
      }
    }
  });

  it('never crashes on random bytes (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const code = codeOf(() => decodeRequest(bytes));
        expect(code).toMatch(/^(NO_ERROR|FRAME_[A-Z_]+|MESSAGE_INVALID|PROTOCOL_VERSION_UNSUPPORTED)$/);
      }),
      { numRuns: runs(5000) },
    );
  });

  it('rejects nesting deeper than the limit with FRAME_TOO_DEEP', () => {
    const depth = LIMITS.maxCborDepth + 1;
    const bytes = new Uint8Array([...new Array(depth - 1).fill(0x81), 0x01]);
    expect(codeOf(() => decodeCbor(bytes))).toBe('FRAME_TOO_DEEP');
    const ok = new Uint8Array([...new Array(LIMITS.maxCborDepth - 1).fill(0x81), 0x01]);
    expect(codeOf(() => decodeCbor(ok))).toBe('NO_ERROR');
  });

  it('rejects a byte string whose declared length exceeds the limit without allocating it', () => {
    // 0x5a = byte string with a 4-byte length: 0xffffffff bytes announced, 3 present.
    const bytes = new Uint8Array([0x5a, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
    expect(codeOf(() => decodeCbor(bytes))).toBe('FRAME_LIMIT_EXCEEDED');
    const huge = new Uint8Array([0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    expect(codeOf(() => decodeCbor(huge))).toBe('FRAME_LIMIT_EXCEEDED');
  });

  it('rejects arrays and maps above their entry limits', () => {
    const arr = new Uint8Array([0x9a, 0x00, 0x10, 0x00, 0x00]); // array of 2^20 elements announced
    expect(codeOf(() => decodeCbor(arr))).toBe('FRAME_LIMIT_EXCEEDED');
    const map = new Uint8Array([0xba, 0x00, 0x10, 0x00, 0x00]);
    expect(codeOf(() => decodeCbor(map))).toBe('FRAME_LIMIT_EXCEEDED');
  });

  it('rejects tags, indefinite lengths and non-text map keys unless allowed', () => {
    expect(codeOf(() => decodeCbor(new Uint8Array([0xd2, 0x80])))).toBe('FRAME_MALFORMED'); // tag 18
    expect(codeOf(() => decodeCbor(new Uint8Array([0xd2, 0x80]), { allowTags: [18] }))).toBe('NO_ERROR');
    expect(codeOf(() => decodeCbor(new Uint8Array([0x9f, 0x01, 0xff])))).toBe('FRAME_MALFORMED');
    expect(codeOf(() => decodeCbor(new Uint8Array([0x9f, 0x01, 0xff]), { allowIndefinite: true }))).toBe(
      'NO_ERROR',
    );
    expect(codeOf(() => decodeCbor(new Uint8Array([0xa1, 0x01, 0x02])))).toBe('FRAME_MALFORMED');
    expect(
      codeOf(() => decodeCbor(new Uint8Array([0xa1, 0x01, 0x02]), { textKeysOnly: false, maps: true })),
    ).toBe('NO_ERROR');
  });

  it('rejects invalid UTF-8, reserved additional information and stray breaks', () => {
    expect(codeOf(() => decodeCbor(new Uint8Array([0x62, 0xc3, 0x28])))).toBe('FRAME_MALFORMED');
    expect(codeOf(() => decodeCbor(new Uint8Array([0x1c])))).toBe('FRAME_MALFORMED');
    expect(codeOf(() => decodeCbor(new Uint8Array([0xff])))).toBe('FRAME_MALFORMED');
    expect(codeOf(() => decodeCbor(new Uint8Array([0x82, 0x01, 0xff])))).toBe('FRAME_MALFORMED');
  });

  it('rejects too many items in one frame', () => {
    // An array of 1000 arrays of 20 zeros: 21k items, each container within limits.
    const inner = [0x94, ...new Array(20).fill(0)];
    const bytes = new Uint8Array([0x99, 0x03, 0xe8, ...new Array(1000).fill(inner).flat()]);
    expect(codeOf(() => decodeCbor(bytes))).toBe('FRAME_LIMIT_EXCEEDED');
  });
});

describe('stream frames', () => {
  it('reassembles frames from arbitrary chunkings (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 8 }),
        fc.array(fc.nat(50), { maxLength: 30 }),
        (bodies, cuts) => {
          const stream = Buffer.concat(bodies.map((b) => encodeStreamFrame(b)));
          const dec = new StreamFrameDecoder();
          const out: Uint8Array[] = [];
          let pos = 0;
          for (const c of cuts) {
            out.push(...dec.push(stream.subarray(pos, Math.min(stream.length, pos + c))));
            pos = Math.min(stream.length, pos + c);
          }
          out.push(...dec.push(stream.subarray(pos)));
          dec.end();
          expect(out.map((f) => Buffer.from(f).toString('hex'))).toEqual(
            bodies.map((b) => Buffer.from(b).toString('hex')),
          );
        },
      ),
      { numRuns: runs(1000) },
    );
  });

  it('refuses a header announcing more than the limit before buffering the body (FRAME_TOO_LARGE)', () => {
    const dec = new StreamFrameDecoder();
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, LIMITS.maxFrameBytes + 1);
    expect(codeOf(() => dec.push(header))).toBe('FRAME_TOO_LARGE');
    expect(dec.pendingBytes).toBe(0);
  });

  it('refuses to encode an oversized frame (FRAME_TOO_LARGE)', () => {
    expect(codeOf(() => encodeStreamFrame(new Uint8Array(LIMITS.maxFrameBytes + 1)))).toBe('FRAME_TOO_LARGE');
    expect(codeOf(() => encodeStreamFrame(new Uint8Array(LIMITS.maxFrameBytes)))).toBe('NO_ERROR');
  });

  it('reports a stream that ends inside a frame (FRAME_TRUNCATED), for every cut point', () => {
    const frame = encodeStreamFrame(sampleRequest);
    for (let n = 1; n < frame.length; n++) {
      const dec = new StreamFrameDecoder();
      expect(dec.push(frame.subarray(0, n))).toEqual([]);
      expect(
        codeOf(() => dec.end()),
        `cut at ${n}`,
      ).toBe('FRAME_TRUNCATED');
    }
  });
});

describe('envelopes', () => {
  it('round-trips requests and responses', () => {
    const req = decodeRequest(sampleRequest);
    expect(req).toMatchObject({ v: 1, id: 7, op: 'generateRandom' });
    expect(decodeResponse(encodeOk(3, { a: 1 }))).toEqual({ v: 1, id: 3, ok: true, result: { a: 1 } });
    const err = decodeResponse(encodeError(4, new EkmsError('REQUEST_INVALID', 'bad')));
    expect(err).toEqual({
      v: 1,
      id: 4,
      ok: false,
      error: { code: 'REQUEST_INVALID', message: 'bad', retriable: false },
    });
  });

  it('hides the text of unexpected errors behind INTERNAL_ERROR', () => {
    const res = decodeResponse(encodeError(1, new Error('secret internals')));
    expect(res.ok).toBe(false);
    if (!res.ok) {
      expect(res.error.code).toBe('INTERNAL_ERROR');
      expect(res.error.message).not.toContain('secret');
    }
  });

  const bad: Array<[string, unknown, string]> = [
    ['not a map', [1, 2], 'MESSAGE_INVALID'],
    ['unknown version', { v: 2, id: 1, op: 'health' }, 'PROTOCOL_VERSION_UNSUPPORTED'],
    ['missing version', { id: 1, op: 'health' }, 'PROTOCOL_VERSION_UNSUPPORTED'],
    ['string id', { v: 1, id: '1', op: 'health' }, 'MESSAGE_INVALID'],
    ['negative id', { v: 1, id: -1, op: 'health' }, 'MESSAGE_INVALID'],
    ['fractional id', { v: 1, id: 1.5, op: 'health' }, 'MESSAGE_INVALID'],
    ['numeric op', { v: 1, id: 1, op: 5 }, 'MESSAGE_INVALID'],
    ['op with spaces', { v: 1, id: 1, op: 'a b' }, 'MESSAGE_INVALID'],
    ['params not a map', { v: 1, id: 1, op: 'health', params: [1] }, 'MESSAGE_INVALID'],
    ['params as bytes', { v: 1, id: 1, op: 'health', params: new Uint8Array(2) }, 'MESSAGE_INVALID'],
    ['unknown field', { v: 1, id: 1, op: 'health', extra: true }, 'MESSAGE_INVALID'],
  ];
  for (const [name, msg, code] of bad) {
    it(`rejects a request with ${name} (${code})`, () => {
      expect(codeOf(() => decodeRequest(encodeCbor(msg)))).toBe(code);
    });
  }

  it('rejects ill-typed responses', () => {
    expect(codeOf(() => decodeResponse(encodeCbor({ v: 1, id: 1, ok: 'yes' })))).toBe('MESSAGE_INVALID');
    expect(codeOf(() => decodeResponse(encodeCbor({ v: 1, id: 1, ok: true, result: 3 })))).toBe(
      'MESSAGE_INVALID',
    );
    expect(codeOf(() => decodeResponse(encodeCbor({ v: 1, id: 1, ok: false, error: { code: 1 } })))).toBe(
      'MESSAGE_INVALID',
    );
  });
});
