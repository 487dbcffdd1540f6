/**
 * Review: protocol edge cases of the shared codec (docs/protocol.md §2–§3). Hand-written CBOR where an encoder
 * would never produce the input.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeCbor, scanCbor } from '../../shared/cbor.js';
import { EkmsError } from '../../shared/errors.js';
import { encodeStreamFrame, FRAME_HEADER_BYTES, StreamFrameDecoder } from '../../shared/frame.js';
import { LIMITS } from '../../shared/limits.js';
import {
  decodeRequest,
  decodeResponse,
  encodeError,
  encodeOk,
  encodeRequest,
  peekRequestId,
} from '../../shared/messages.js';
import { runs } from '../helpers/property-runs.js';

const hex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
const text = (t: string): string => {
  const b = Buffer.from(t, 'utf8');
  if (b.length >= 24) throw new Error('test helper: short strings only');
  return (0x60 + b.length).toString(16) + b.toString('hex');
};

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof EkmsError) return err.code;
    throw err;
  }
  return 'NO_ERROR';
}

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  return '';
}

/** `{"v":1,"id":<idHex>,"op":"health"}` */
const requestWithId = (idHex: string): Uint8Array =>
  hex(`a3 ${text('v')} 01 ${text('id')} ${idHex} ${text('op')} ${text('health')}`);

describe('map keys', () => {
  it('refuses a map with a duplicate text key (FRAME_MALFORMED)', () => {
    const dup = hex(`a4 ${text('v')} 01 ${text('id')} 07 ${text('op')} ${text('health')} ${text('id')} 08`);
    expect(codeOf(() => decodeRequest(dup))).toBe('FRAME_MALFORMED');
    expect(messageOf(() => decodeRequest(dup))).toMatch(/duplicate CBOR map key/);
    const nested = hex(`a1 ${text('params')} a2 ${text('length')} 01 ${text('length')} 02`);
    expect(codeOf(() => decodeCbor(nested))).toBe('FRAME_MALFORMED');
  });

  it('refuses a duplicate key spelled differently: indefinite text, non-canonical integer (FRAME_MALFORMED)', () => {
    // "ab" definite, then "ab" as an indefinite string of two chunks (scanned only: cbor-x cannot decode those).
    const indef = hex(`a2 ${text('ab')} 01 7f ${text('a')} ${text('b')} ff 02`);
    expect(codeOf(() => scanCbor(indef, { allowIndefinite: true }))).toBe('FRAME_MALFORMED');
    expect(messageOf(() => scanCbor(indef, { allowIndefinite: true }))).toMatch(/duplicate CBOR map key/);
    // Integer key 1 as 0x01 and as 0x18 0x01.
    const ints = hex('a2 01 00 1801 00');
    const nonText = { textKeysOnly: false, maps: true, uniqueKeys: true } as const;
    expect(codeOf(() => decodeCbor(ints, nonText))).toBe('FRAME_MALFORMED');
    // Distinct keys of different types are fine: 1 and "1", 1 and -2.
    expect(codeOf(() => decodeCbor(hex(`a3 01 00 ${text('1')} 00 21 00`), nonText))).toBe('NO_ERROR');
    // Parsers of non-text-keyed formats keep their own key checks unless they opt in.
    expect(codeOf(() => decodeCbor(ints, { textKeysOnly: false, maps: true }))).toBe('NO_ERROR');
  });

  it('refuses a "__proto__" map key (FRAME_MALFORMED), which cbor-x would rename and alias', () => {
    const proto = hex(`a1 ${text('__proto__')} a1 ${text('length')} 05`);
    expect(codeOf(() => decodeCbor(proto))).toBe('FRAME_MALFORMED');
    expect(messageOf(() => decodeCbor(proto))).toMatch(/__proto__/);
    // Inside params, next to the key it would alias.
    const aliased = hex(
      `a4 ${text('v')} 01 ${text('id')} 07 ${text('op')} ${text('health')} ${text('params')} a2 ${text('__proto__')} 01 ${text('__proto_')} 02`,
    );
    expect(codeOf(() => decodeRequest(aliased))).toBe('FRAME_MALFORMED');
    expect(codeOf(() => decodeCbor(proto, { maps: true }))).toBe('FRAME_MALFORMED');
  });

  it('keeps decoded maps plain: no key reaches Object.prototype', () => {
    const v = decodeCbor(hex(`a2 ${text('constructor')} 01 ${text('toString')} 02`)) as Record<
      string,
      unknown
    >;
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(Object.keys(v)).toEqual(['constructor', 'toString']);
    expect(({} as Record<string, unknown>)['toString']).toBe(Object.prototype.toString);
  });

  it('accepts params with the maximum number of entries, refuses one more (FRAME_LIMIT_EXCEEDED)', () => {
    const params = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]));
    const ok = decodeRequest(encodeRequest(1, 'health', params(LIMITS.maxCborMapEntries)));
    expect(Object.keys(ok.params)).toHaveLength(LIMITS.maxCborMapEntries);
    expect(
      codeOf(() => decodeRequest(encodeRequest(1, 'health', params(LIMITS.maxCborMapEntries + 1)))),
    ).toBe('FRAME_LIMIT_EXCEEDED');
  });
});

describe('request ids', () => {
  it('accepts id 0', () => {
    expect(decodeRequest(encodeRequest(0, 'health')).id).toBe(0);
    expect(decodeResponse(encodeOk(0, {})).id).toBe(0);
  });

  it('accepts 2^53 − 1 written as a CBOR uint64, as any conforming encoder writes it', () => {
    expect(decodeRequest(requestWithId('1b 001fffffffffffff')).id).toBe(Number.MAX_SAFE_INTEGER);
    expect(decodeRequest(requestWithId('1b 0000000100000000')).id).toBe(2 ** 32);
  });

  it('writes ids of 2^32 and above as CBOR unsigned integers, not floats', () => {
    for (const id of [2 ** 32, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER]) {
      const bytes = encodeRequest(id, 'health');
      const at = Buffer.from(bytes).indexOf(Buffer.from(hex(text('id')))) + 3;
      expect(bytes[at], `id ${id}`).toBe(0x1b);
      expect(decodeRequest(bytes).id).toBe(id);
      expect(decodeResponse(encodeOk(id, {})).id).toBe(id);
      expect(decodeResponse(encodeError(id, new EkmsError('REQUEST_INVALID', 'x'))).id).toBe(id);
    }
  });

  it('refuses ids of 2^53 and above, negative and non-integer ids (MESSAGE_INVALID), and peeks none', () => {
    for (const idHex of [
      '1b 0020000000000000',
      '1b ffffffffffffffff',
      '20',
      '3b 0000000000000001',
      'fb 3ff8000000000000',
      'f6',
      'f7',
      'f4',
      '40',
      '80',
      'a0',
    ]) {
      const m = requestWithId(idHex);
      expect(
        codeOf(() => decodeRequest(m)),
        idHex,
      ).toBe('MESSAGE_INVALID');
      expect(peekRequestId(decodeCbor(m)), idHex).toBeNull();
    }
  });

  it('reads an integral float id as that integer and -0 as 0; the response carries an unsigned integer', () => {
    expect(decodeRequest(requestWithId('fb 4014000000000000')).id).toBe(5);
    const negZero = decodeRequest(requestWithId('f9 8000')).id;
    expect(Object.is(negZero, 0)).toBe(true);
    expect(Buffer.from(encodeOk(negZero, {})).toString('hex')).toContain(
      `${Buffer.from(hex(text('id'))).toString('hex')}00`,
    );
  });
});

describe('values cbor-x would turn into surprising types', () => {
  const tagged: Array<[string, string]> = [
    ['tag 0 (date/time string)', `c0 ${text('2020-01-01')}`],
    ['tag 1 (epoch date)', 'c1 1a5e0be100'],
    ['tag 2 (bignum)', 'c2 42 0101'],
    ['tag 28 (shareable)', 'd81c 80'],
    ['tag 258 (set)', 'd90102 80'],
    ['tag 259 (map)', 'd90103 a0'],
    ['tag 55799 (self-described)', 'd9d9f7 a0'],
    ['record tag 57343', 'd9dfff 80'],
  ];
  for (const [name, h] of tagged) {
    it(`refuses ${name} anywhere in a frame (FRAME_MALFORMED)`, () => {
      expect(codeOf(() => decodeCbor(hex(h)))).toBe('FRAME_MALFORMED');
      const inParams = hex(
        `a4 ${text('v')} 01 ${text('id')} 07 ${text('op')} ${text('health')} ${text('params')} a1 ${text('x')} ${h}`,
      );
      expect(codeOf(() => decodeRequest(inParams))).toBe('FRAME_MALFORMED');
    });
  }

  it('refuses unassigned simple values (FRAME_MALFORMED), never returns an object for them', () => {
    for (const h of ['e0', 'f0', 'f3', 'f8 20', 'f8 ff']) {
      expect(
        codeOf(() => decodeCbor(hex(h))),
        h,
      ).toBe('FRAME_MALFORMED');
    }
  });

  it('decodes undefined, floats and -0 as JS primitives (operations validate their own parameters)', () => {
    expect(decodeCbor(hex('f7'))).toBeUndefined();
    expect(Object.is(decodeCbor(hex('f9 8000')), -0)).toBe(true);
    expect(Number.isNaN(decodeCbor(hex('f9 7e00')))).toBe(true);
    // params: undefined counts as omitted.
    const req = decodeRequest(
      hex(`a4 ${text('v')} 01 ${text('id')} 07 ${text('op')} ${text('health')} ${text('params')} f7`),
    );
    expect(req.params).toEqual({});
  });

  it('accepts operation names that are Object.prototype members as names (the enclave looks them up as own keys)', () => {
    for (const op of ['constructor', 'hasOwnProperty', 'toString', 'valueOf', 'isPrototypeOf']) {
      expect(decodeRequest(encodeRequest(1, op)).op).toBe(op);
    }
    expect(codeOf(() => decodeRequest(encodeRequest(1, '__proto__')))).toBe('MESSAGE_INVALID');
  });
});

describe('indefinite lengths where allowed', () => {
  it('scans an indefinite string split into several chunks (each chunk checked, not the running total)', () => {
    expect(codeOf(() => scanCbor(hex('5f 43 010203 43 040506 41 07 ff'), { allowIndefinite: true }))).toBe(
      'NO_ERROR',
    );
    expect(codeOf(() => scanCbor(hex(`7f ${text('ab')} ${text('cd')} ff`), { allowIndefinite: true }))).toBe(
      'NO_ERROR',
    );
    // cbor-x itself has no indefinite-length strings: decoding one is still a typed error, never a crash.
    expect(codeOf(() => decodeCbor(hex('5f 41 01 41 02 ff'), { allowIndefinite: true }))).toBe(
      'FRAME_MALFORMED',
    );
  });

  it('applies the string limit to the sum of the chunks (FRAME_LIMIT_EXCEEDED)', () => {
    const chunk = `59 ${(32 * 1024).toString(16).padStart(4, '0')} ${'00'.repeat(32 * 1024)}`;
    const mixed = hex(`7f ${chunk} ${chunk} 61 41 ff`); // byte-string chunks inside a text string
    expect(codeOf(() => scanCbor(mixed, { allowIndefinite: true }))).toBe('FRAME_MALFORMED');
    const textChunk = `79 ${(32 * 1024).toString(16).padStart(4, '0')} ${'41'.repeat(32 * 1024)}`;
    const tooLong = hex(`7f ${textChunk} ${textChunk} 61 41 ff`);
    expect(codeOf(() => scanCbor(tooLong, { allowIndefinite: true }))).toBe('FRAME_LIMIT_EXCEEDED');
  });
});

describe('StreamFrameDecoder memory', () => {
  it('holds at most the frame being assembled (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 20 }),
        fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 40 }),
        (lengths, cuts) => {
          const frames = lengths.map((n) => encodeStreamFrame(new Uint8Array(n).fill(n % 251)));
          const stream = Buffer.concat(frames);
          const starts: number[] = [];
          let at = 0;
          for (const f of frames) {
            starts.push(at);
            at += f.length;
          }
          const d = new StreamFrameDecoder();
          let pos = 0;
          let got = 0;
          for (const cut of [...cuts, stream.length]) {
            const next = Math.min(stream.length, pos + cut);
            got += d.push(stream.subarray(pos, next)).length;
            pos = next;
            // The frame that is incomplete at `pos` starts at the last boundary at or before it.
            const i = starts.filter((s) => s <= pos).length - 1;
            const tailStart = pos === stream.length ? stream.length : starts[i]!;
            const tail = pos - tailStart;
            const frameLen = pos === stream.length ? 0 : frames[i]!.length;
            expect(tail).toBeLessThan(Math.max(frameLen, 1));
            expect([tail, tail - FRAME_HEADER_BYTES]).toContain(d.pendingBytes);
            if (pos === stream.length) break;
          }
          expect(got).toBe(frames.length);
          d.end();
        },
      ),
      { numRuns: runs(300) },
    );
  });
});
