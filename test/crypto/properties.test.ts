/**
 * Property tests (style §12, fast-check) for the crypto codecs: decode(encode(x)) = x, and every random mutation
 * of a blob or a stream is a typed CryptoError — never a success, a crash with another error, or a hang.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encryptEnvelope, type StreamFormatVersion } from '../../client/envelope-stream.js';
import { openBlob, parseBlob, sealBlob } from '../../enclave/crypto/ciphertext-blob.js';
import { CryptoError } from '../../shared/crypto-errors.js';
import { decodeContext, encodeContext, normalizeContext } from '../../shared/encryption-context.js';
import { SuiteId } from '../../shared/suites.js';
import { runs } from '../helpers/property-runs.js';
import { concatBytes, decryptAll, detBytes, encryptAll, pieces } from './helpers.js';

const KEY = detBytes('prop kek', 32);
const DATA_KEY = detBytes('prop data key', 32);

const suiteArb = fc.constantFrom(
  SuiteId.Aes256GcmHkdfSha384CommitV1,
  SuiteId.XChaCha20Poly1305HkdfSha384CommitV1,
);
const contextKeyArb = fc
  .string({ unit: 'binary', minLength: 1, maxLength: 12 })
  .filter((k) => !/^ekms:/i.test(k));
const contextArb = fc.dictionary(contextKeyArb, fc.string({ unit: 'binary', maxLength: 16 }), { maxKeys: 6 });
const keyIdArb = fc.stringMatching(/^[\x21-\x7e]{1,40}$/);

/** A mutation of a byte string that always changes it. */
type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'append'; bytes: Uint8Array }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 40 }) }),
);

function mutate(bytes: Uint8Array, m: Mutation): Uint8Array {
  const at = bytes.length === 0 ? 0 : m.kind === 'append' ? 0 : (m as { at: number }).at % bytes.length;
  switch (m.kind) {
    case 'flip': {
      const out = bytes.slice();
      out[at]! ^= 1 << m.bit;
      return out;
    }
    case 'set': {
      const out = bytes.slice();
      out[at] = out[at] === m.value ? m.value ^ 0xff : m.value;
      return out;
    }
    case 'truncate':
      return bytes.slice(0, at);
    case 'append':
      return Uint8Array.from([...bytes, ...m.bytes]);
    case 'insert':
      return Uint8Array.from([...bytes.subarray(0, at), ...m.bytes, ...bytes.subarray(at)]);
    case 'delete':
      return Uint8Array.from([...bytes.subarray(0, at), ...bytes.subarray(at + m.count)]);
  }
}

describe('encryption context properties', () => {
  it('decode(encode(x)) = normalize(x), and the encoding is canonical', () => {
    fc.assert(
      fc.property(contextArb, (ctx) => {
        const enc = encodeContext(ctx);
        const decoded = decodeContext(enc);
        expect({ ...decoded }).toEqual({ ...normalizeContext(ctx) });
        expect(encodeContext(Object.entries(ctx).reverse())).toEqual(enc);
        expect(encodeContext(decoded)).toEqual(enc);
      }),
      { numRuns: runs(300) },
    );
  });

  it('the encoding equals a reference built from Buffer.from(utf8), for ASCII and non-ASCII strings', () => {
    const text = fc.oneof(
      fc.string({ unit: 'binary-ascii', maxLength: 12 }),
      fc.string({ unit: 'grapheme', maxLength: 6 }),
    );
    const key = text.filter((k) => k.length > 0 && !/^ekms:/i.test(k));
    fc.assert(
      fc.property(fc.dictionary(key, text, { maxKeys: 6 }), (ctx) => {
        const u16 = (n: number) => Buffer.of(n >> 8, n & 0xff);
        const pairs = Object.entries(ctx)
          .map(([k, v]) => [Buffer.from(k, 'utf8'), Buffer.from(v, 'utf8')] as const)
          .sort((a, b) => Buffer.compare(a[0], b[0]));
        const reference = Buffer.concat([
          u16(pairs.length),
          ...pairs.flatMap(([k, v]) => [u16(k.length), k, u16(v.length), v]),
        ]);
        expect(Buffer.from(encodeContext(ctx)).equals(reference)).toBe(true);
      }),
      { numRuns: runs(500) },
    );
  });

  it('arbitrary bytes decode to a context whose encoding is those bytes, or fail with CONTEXT_INVALID', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        let decoded: ReturnType<typeof decodeContext>;
        try {
          decoded = decodeContext(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(CryptoError);
          expect((err as CryptoError).code).toBe('CONTEXT_INVALID');
          return;
        }
        expect(encodeContext(decoded)).toEqual(bytes);
      }),
      { numRuns: runs(2000) },
    );
  });
});

describe('ciphertext blob properties', () => {
  const inputArb = fc.record({
    suite: suiteArb,
    keyId: keyIdArb,
    keyVersion: fc.integer({ min: 0, max: 0xffff_ffff }),
    plaintext: fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc.uint8Array({ minLength: 4000, maxLength: 4096 }),
    ),
    context: contextArb,
  });

  it('open(parse(seal(x))) = x.plaintext, for both suites', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const blob = sealBlob({ ...input, key: KEY });
        const parsed = parseBlob(blob);
        expect(parsed.keyId).toBe(input.keyId);
        expect(parsed.keyVersion).toBe(input.keyVersion);
        expect(openBlob(parsed, KEY, input.context)).toEqual(input.plaintext);
      }),
      { numRuns: runs(200) },
    );
  });

  it('every mutation of a blob is a CryptoError', () => {
    fc.assert(
      fc.property(
        inputArb.map((i) => ({ ...i, plaintext: i.plaintext.subarray(0, 64) })),
        mutationArb,
        (input, m) => {
          const blob = mutate(sealBlob({ ...input, key: KEY }), m);
          expect(() => openBlob(parseBlob(blob), KEY, input.context)).toThrow(CryptoError);
        },
      ),
      { numRuns: runs(1000) },
    );
  });
});

describe('envelope stream properties', () => {
  const streamArb = fc.record({
    suite: suiteArb,
    formatVersion: fc.constantFrom<StreamFormatVersion>(2, 1),
    plaintext: fc.uint8Array({ maxLength: 700 }),
    chunkSize: fc.integer({ min: 1, max: 300 }),
    writeSize: fc.integer({ min: 1, max: 800 }),
    // Empty pieces between the others (0: none): the encryptor must treat them as nothing.
    emptyEvery: fc.integer({ min: 0, max: 3 }),
    readSize: fc.integer({ min: 1, max: 2000 }),
    context: contextArb,
    keyId: keyIdArb,
  });

  it('decrypt(encrypt(x)) = x for any sizes, chunk sizes and piece boundaries', async () => {
    await fc.assert(
      fc.asyncProperty(streamArb, async (s) => {
        const opts = { ...s, dataKey: DATA_KEY, encryptedDataKey: Uint8Array.of(1, 2, 3) };
        const input = pieces(s.plaintext, s.writeSize).flatMap((p, i) =>
          s.emptyEvery > 0 && i % s.emptyEvery === 0 ? [new Uint8Array(0), p] : [p],
        );
        if (s.emptyEvery > 0) input.push(new Uint8Array(0));
        const parts: Uint8Array[] = [];
        for await (const part of encryptEnvelope(input, opts)) parts.push(part);
        const stream = concatBytes(parts);
        expect(stream[4]).toBe(s.formatVersion);
        const { plaintext, error } = await decryptAll(
          stream,
          { resolveDataKey: () => DATA_KEY.slice(), context: s.context },
          s.readSize,
        );
        expect(error).toBeUndefined();
        expect(plaintext).toEqual(s.plaintext);
      }),
      { numRuns: runs(200) },
    );
  });

  it('every mutation of a stream is a CryptoError, and only authentic plaintext is released', async () => {
    await fc.assert(
      fc.asyncProperty(
        streamArb.map((s) => ({
          ...s,
          plaintext: s.plaintext.subarray(0, 200),
          chunkSize: 1 + (s.chunkSize % 64),
        })),
        mutationArb,
        async (s, m) => {
          const opts = { ...s, dataKey: DATA_KEY, encryptedDataKey: Uint8Array.of(1, 2, 3) };
          const stream = mutate(await encryptAll(s.plaintext, opts, s.writeSize), m);
          const { plaintext, error } = await decryptAll(
            stream,
            { resolveDataKey: () => DATA_KEY.slice() },
            s.readSize,
          );
          expect(error).toBeInstanceOf(CryptoError);
          expect(plaintext).toEqual(s.plaintext.subarray(0, plaintext.length));
        },
      ),
      { numRuns: runs(1000) },
    );
  });
});
