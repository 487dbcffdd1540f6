/**
 * Streaming envelope encryption (client/envelope-stream.ts; docs/ciphertext-format.md §5–§6): round trips for both
 * suites and both APIs, and one named negative test per check (truncation, reordering, swapping, duplication,
 * appended bytes, header and key checks), asserting the code, then the message.
 */
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it, vi } from 'vitest';
import {
  checkChunkIndex,
  createDecryptStream,
  createEncryptStream,
  DEFAULT_STREAM_FORMAT,
  type DecryptStreamOptions,
  type EncryptStreamOptions,
  EnvelopeDecryptor,
  EnvelopeEncryptor,
  type EnvelopeHeader,
  looksLikeEnvelopeStream,
  STREAM_LIMITS,
  type StreamFormatVersion,
} from '../../client/envelope-stream.js';
import { CryptoError } from '../../shared/crypto-errors.js';
import { TransportError } from '../../shared/errors.js';
import { SUITES, type SuiteId } from '../../shared/suites.js';
import {
  concatBytes,
  decryptAll,
  detBytes,
  detRandom,
  encryptAll,
  expectCode,
  expectCodeAsync,
  streamLayout,
} from './helpers.js';

const DATA_KEY = detBytes('stream data key', 32);
const EDK = detBytes('stream edk', 120);
const CONTEXT = { tenant: 'acme', file: 'report.csv' };

function encOptions(over: Partial<EncryptStreamOptions> = {}): EncryptStreamOptions {
  return {
    dataKey: DATA_KEY,
    encryptedDataKey: EDK,
    keyId: 'key-1',
    context: CONTEXT,
    chunkSize: 64,
    ...over,
  };
}

function decOptions(over: Partial<DecryptStreamOptions> = {}): DecryptStreamOptions {
  return { resolveDataKey: () => DATA_KEY.slice(), ...over };
}

/** Decrypts and requires failure with `code`; returns the released plaintext. */
async function expectStreamError(
  stream: Uint8Array,
  code: string,
  message?: RegExp,
  over = {},
  pieceSize = 4096,
) {
  const { plaintext, error } = await decryptAll(stream, decOptions(over), pieceSize);
  expectCode(
    () => {
      if (error !== undefined) throw error;
    },
    code,
    message,
  );
  return plaintext;
}

/** Both format versions: 2 (written by default) and 1 (still read, written on request). */
const FORMATS: readonly StreamFormatVersion[] = [2, 1];

function cut(stream: Uint8Array, ranges: ReadonlyArray<readonly [number, number]>): Uint8Array {
  return concatBytes(ranges.map(([s, e]) => stream.subarray(s, e)));
}

describe.each(
  Object.values(SUITES).flatMap((suite) => FORMATS.map((formatVersion) => ({ suite, formatVersion }))),
)('envelope stream, $suite.name, format $formatVersion', ({ suite, formatVersion }) => {
  const opts = (over: Partial<EncryptStreamOptions> = {}) =>
    encOptions({ suite: suite.id, formatVersion, ...over });

  it('round-trips empty input, partial, exact multiples and ragged sizes, fed in any piece size', async () => {
    for (const n of [0, 1, 63, 64, 65, 128, 129, 640, 1000]) {
      const plaintext = detBytes(`stream pt ${n}`, n);
      for (const pieceSize of [1, 7, 64, 5000]) {
        const stream = await encryptAll(plaintext, opts(), pieceSize);
        for (const readSize of [1, 13, 100_000]) {
          const { plaintext: back, error } = await decryptAll(stream, decOptions(), readSize);
          expect(error).toBeUndefined();
          expect(back).toEqual(plaintext);
        }
      }
    }
  });

  it('empty input is a header and one empty final chunk', async () => {
    const stream = await encryptAll(new Uint8Array(0), opts());
    const { records } = streamLayout(stream);
    expect(records).toEqual([expect.objectContaining({ type: 1, index: 0, length: 0 })]);
    expect((await decryptAll(stream, decOptions())).plaintext).toEqual(new Uint8Array(0));
  });

  it('an exact multiple of the chunk size ends with a full final chunk (format 2) or an empty one (format 1)', async () => {
    for (const pieceSize of [1, 64, 65, 192]) {
      const stream = await encryptAll(detBytes('x', 192), opts(), pieceSize);
      const { records } = streamLayout(stream);
      expect(records.map((r) => [r.type, r.index, r.length])).toEqual(
        formatVersion === 2
          ? [
              [0, 0, 64],
              [0, 1, 64],
              [1, 2, 64],
            ]
          : [
              [0, 0, 64],
              [0, 1, 64],
              [0, 2, 64],
              [1, 3, 0],
            ],
      );
      expect((await decryptAll(stream, decOptions(), 7)).plaintext).toEqual(detBytes('x', 192));
    }
  });

  it('seals a full chunk only once it is known whether it is the last (format 2) or at once (format 1)', () => {
    const enc = new EnvelopeEncryptor(opts());
    const out: Uint8Array[] = [];
    enc.update(detBytes('a', 64), out);
    const records = () => streamLayout(concatBytes(out)).records.map((r) => [r.type, r.index, r.length]);
    expect(records()).toEqual(formatVersion === 2 ? [] : [[0, 0, 64]]);
    enc.update(detBytes('b', 1), out);
    expect(records()).toEqual([[0, 0, 64]]);
    enc.finish(out);
    expect(streamLayout(concatBytes(out)).records.map((r) => [r.type, r.length])).toEqual([
      [0, 64],
      [1, 1],
    ]);
  });

  it('gives resolveDataKey the header: suite, chunk size, message id, key id, encrypted data key, context', async () => {
    const stream = await encryptAll(
      detBytes('x', 10),
      opts({ chunkSize: 100, testRandom: () => new Uint8Array(32).fill(5) }),
    );
    const seen: EnvelopeHeader[] = [];
    const { error } = await decryptAll(stream, {
      resolveDataKey: (h) => {
        seen.push(h);
        return DATA_KEY.slice();
      },
    });
    expect(error).toBeUndefined();
    expect(seen).toHaveLength(1);
    const h = seen[0]!;
    expect(h.formatVersion).toBe(formatVersion);
    expect(h.suite).toBe(suite);
    expect(h.chunkSize).toBe(100);
    expect(h.messageId).toEqual(new Uint8Array(32).fill(5));
    expect(h.keyId).toBe('key-1');
    expect(h.encryptedDataKey).toEqual(EDK);
    expect({ ...h.context }).toEqual(CONTEXT);
  });

  it('starts with the magic "EKMS" and the format version', async () => {
    const stream = await encryptAll(new Uint8Array(0), opts());
    expect(Buffer.from(stream.subarray(0, 5)).toString('hex')).toBe(`454b4d530${formatVersion}`);
    expect(looksLikeEnvelopeStream(stream)).toBe(true);
    expect(looksLikeEnvelopeStream(stream.subarray(0, 4))).toBe(false);
    expect(looksLikeEnvelopeStream(Uint8Array.of(0xe1, 0, 1, 2, 3))).toBe(false);
  });

  it('uses a fresh message id per stream', async () => {
    const a = await encryptAll(detBytes('x', 10), opts());
    const b = await encryptAll(detBytes('x', 10), opts());
    expect(a.subarray(11, 43)).not.toEqual(b.subarray(11, 43));
    expect(a).not.toEqual(b);
  });
});

describe('envelope stream: Node Transform API', () => {
  it('round-trips 2 MiB through pipeline() with a resolver that is async', async () => {
    const plaintext = detBytes('transform', 2 * 1024 * 1024 + 17);
    const encrypted: Buffer[] = [];
    await pipeline(
      Readable.from([plaintext.subarray(0, 1000), plaintext.subarray(1000)]),
      createEncryptStream({ dataKey: DATA_KEY, encryptedDataKey: EDK, keyId: 'key-1', context: CONTEXT }),
      new Writable({
        write(chunk: Buffer, _e, cb) {
          encrypted.push(chunk);
          cb();
        },
      }),
    );
    const decrypted: Buffer[] = [];
    await pipeline(
      Readable.from(encrypted),
      createDecryptStream({ resolveDataKey: async () => DATA_KEY.slice(), context: CONTEXT }),
      new Writable({
        write(chunk: Buffer, _e, cb) {
          decrypted.push(chunk);
          cb();
        },
      }),
    );
    expect(Buffer.concat(decrypted).equals(plaintext)).toBe(true);
    // Default 1 MiB chunks: two regular chunks and a final one of 17 bytes.
    const records = streamLayout(concatBytes(encrypted)).records;
    expect(records).toHaveLength(3);
    expect(STREAM_LIMITS.defaultChunkSize).toBe(1024 * 1024);
    expect(encrypted[0]![4]).toBe(DEFAULT_STREAM_FORMAT);
    expect(DEFAULT_STREAM_FORMAT).toBe(2);
  });

  it('a tampered stream fails the pipeline with the typed code', async () => {
    const stream = await encryptAll(detBytes('x', 300), encOptions());
    stream[stream.length - 1]! ^= 1;
    await expectCodeAsync(
      () =>
        pipeline(
          Readable.from([stream]),
          createDecryptStream(decOptions()),
          new Writable({ write: (_c, _e, cb) => cb() }),
        ),
      'STREAM_CHUNK_AUTH_FAILED',
      /chunk 4/,
    );
  });

  it('invalid options throw synchronously from the factory', () => {
    expectCode(
      () => createEncryptStream(encOptions({ chunkSize: 0 })),
      'CRYPTO_PARAMETER_INVALID',
      /chunk size/,
    );
    expectCode(() => createDecryptStream(decOptions({ context: { '': 'x' } })), 'CONTEXT_INVALID');
  });
});

describe.each(FORMATS)('envelope stream, format %i: chunk sequence checks', (formatVersion) => {
  const encOpts = (over: Partial<EncryptStreamOptions> = {}) => encOptions({ formatVersion, ...over });
  const plaintext = detBytes('sequence', 64 * 3 + 10); // records: 0,1,2 regular; 3 final (10 bytes)

  it('truncated: final chunk missing → STREAM_TRUNCATED', async () => {
    const stream = await encryptAll(plaintext, encOpts());
    const { records } = streamLayout(stream);
    const released = await expectStreamError(
      stream.subarray(0, records[3]!.start),
      'STREAM_TRUNCATED',
      /after chunk 2 without a final chunk/,
    );
    expect(released).toEqual(plaintext.subarray(0, 192));
  });

  it('truncated at every length → STREAM_TRUNCATED, releasing only whole authenticated chunks', async () => {
    const stream = await encryptAll(plaintext, encOpts());
    for (let n = 0; n < stream.length; n++) {
      const released = await expectStreamError(
        stream.subarray(0, n),
        'STREAM_TRUNCATED',
        /envelope stream ends/,
      );
      expect(released.length % 64).toBe(0);
      expect(released).toEqual(plaintext.subarray(0, released.length));
    }
  });

  it('reordered chunks → STREAM_CHUNK_OUT_OF_ORDER', async () => {
    const stream = await encryptAll(plaintext, encOpts());
    const { headerLength, records: r } = streamLayout(stream);
    const swapped = cut(stream, [
      [0, headerLength],
      [r[1]!.start, r[1]!.end],
      [r[0]!.start, r[0]!.end],
      [r[2]!.start, stream.length],
    ]);
    const released = await expectStreamError(
      swapped,
      'STREAM_CHUNK_OUT_OF_ORDER',
      /expected chunk 0, got chunk 1 \(reordered/,
    );
    expect(released.length).toBe(0);
  });

  it('a record index is read as an unsigned big-endian u32, every byte of it', async () => {
    // The prefix fields are read byte by byte (no DataView over a small array): a sign or byte-order slip would show
    // here as a different or negative index.
    const stream = await encryptAll(plaintext, encOpts());
    const { records: r } = streamLayout(stream);
    for (const index of [0x80000001, 0x01020304, 0x00ff0000]) {
      const forged = stream.slice();
      new DataView(forged.buffer).setUint32(r[0]!.start + 1, index);
      await expectStreamError(
        forged,
        'STREAM_CHUNK_OUT_OF_ORDER',
        new RegExp(`expected chunk 0, got chunk ${index} \\(reordered`),
      );
    }
  });

  it('dropped middle chunk → STREAM_CHUNK_OUT_OF_ORDER', async () => {
    const stream = await encryptAll(plaintext, encOpts());
    const { records: r } = streamLayout(stream);
    const dropped = cut(stream, [
      [0, r[1]!.start],
      [r[2]!.start, stream.length],
    ]);
    await expectStreamError(dropped, 'STREAM_CHUNK_OUT_OF_ORDER', /expected chunk 1, got chunk 2/);
  });

  it('duplicated chunk → STREAM_CHUNK_OUT_OF_ORDER', async () => {
    const stream = await encryptAll(plaintext, encOpts());
    const { records: r } = streamLayout(stream);
    const dup = cut(stream, [
      [0, r[1]!.end],
      [r[1]!.start, stream.length],
    ]);
    const released = await expectStreamError(
      dup,
      'STREAM_CHUNK_OUT_OF_ORDER',
      /got chunk 1 \(duplicated or replayed\)/,
    );
    expect(released).toEqual(plaintext.subarray(0, 128));
  });

  it('reordered chunks with rewritten indices → STREAM_CHUNK_AUTH_FAILED', async () => {
    const stream = await encryptAll(plaintext, encOpts());
    const { headerLength, records: r } = streamLayout(stream);
    const swapped = cut(stream, [
      [0, headerLength],
      [r[1]!.start, r[1]!.end],
      [r[0]!.start, r[0]!.end],
      [r[2]!.start, stream.length],
    ]);
    const view = new DataView(swapped.buffer);
    view.setUint32(headerLength + 1, 0);
    view.setUint32(headerLength + (r[1]!.end - r[1]!.start) + 1, 1);
    await expectStreamError(swapped, 'STREAM_CHUNK_AUTH_FAILED', /chunk 0 does not authenticate/);
  });

  it('chunk swapped in from another stream under the same data key → STREAM_CHUNK_AUTH_FAILED', async () => {
    const a = await encryptAll(plaintext, encOpts());
    const b = await encryptAll(plaintext, encOpts());
    const ra = streamLayout(a).records;
    const rb = streamLayout(b).records;
    const mixed = cut(a, [[0, ra[1]!.start]]);
    const spliced = concatBytes([mixed, b.subarray(rb[1]!.start, rb[1]!.end), a.subarray(ra[2]!.start)]);
    const released = await expectStreamError(spliced, 'STREAM_CHUNK_AUTH_FAILED', /another stream/);
    expect(released).toEqual(plaintext.subarray(0, 64));
  });

  it('chunk swapped in from a stream with the same data key and message id but another header → STREAM_CHUNK_AUTH_FAILED', async () => {
    const fixed = { testRandom: () => new Uint8Array(32).fill(1) };
    const a = await encryptAll(plaintext, encOpts(fixed));
    const b = await encryptAll(plaintext, encOpts({ ...fixed, keyId: 'key-2' }));
    const ra = streamLayout(a).records;
    const rb = streamLayout(b).records;
    const spliced = concatBytes([
      a.subarray(0, ra[0]!.start),
      b.subarray(rb[0]!.start, rb[0]!.end),
      a.subarray(ra[1]!.start),
    ]);
    await expectStreamError(spliced, 'STREAM_CHUNK_AUTH_FAILED', /chunk 0/);
  });

  it('regular chunk relabelled final (truncation attempt) → STREAM_CHUNK_AUTH_FAILED (2) / STREAM_CHUNK_INVALID (1)', async () => {
    const stream = await encryptAll(plaintext, encOpts());
    const { records: r } = streamLayout(stream);
    const t = stream.slice(0, r[2]!.end);
    t[r[2]!.start] = 1;
    // Format 2 allows a full final chunk, so only the tag (the type is authenticated) catches it.
    const released =
      formatVersion === 2
        ? await expectStreamError(t, 'STREAM_CHUNK_AUTH_FAILED', /chunk 2 does not authenticate/)
        : await expectStreamError(
            t,
            'STREAM_CHUNK_INVALID',
            /final chunk 2 declares 64 bytes \(chunk size 64\)/,
          );
    expect(released).toEqual(plaintext.subarray(0, 128));
  });

  it('final chunk relabelled regular → STREAM_CHUNK_INVALID', async () => {
    const stream = await encryptAll(plaintext, encOpts());
    stream[streamLayout(stream).records[3]!.start] = 0;
    await expectStreamError(stream, 'STREAM_CHUNK_INVALID', /regular chunk 3 declares 10 bytes/);
  });

  it('final chunk longer than a chunk, or (format 1) as long → STREAM_CHUNK_INVALID', async () => {
    const stream = await encryptAll(detBytes('x', 64), encOpts());
    const { records: r } = streamLayout(stream);
    const last = r.at(-1)!;
    for (const length of formatVersion === 2 ? [65, 0xffff_ffff] : [64, 65]) {
      const t = stream.slice();
      new DataView(t.buffer).setUint32(last.start + 5, length);
      await expectStreamError(
        t,
        'STREAM_CHUNK_INVALID',
        new RegExp(`final chunk ${last.index} declares ${length} bytes`),
      );
    }
  });

  // Format 2 only (registered for it alone, not skipped for format 1).
  if (formatVersion === 2) {
    it('format 2: an empty final chunk after other chunks → STREAM_CHUNK_INVALID; a full final chunk relabelled regular → STREAM_CHUNK_AUTH_FAILED', async () => {
      const stream = await encryptAll(detBytes('x', 128), encOpts());
      const { records: r } = streamLayout(stream);
      expect(r.map((x) => [x.type, x.length])).toEqual([
        [0, 64],
        [1, 64],
      ]);
      // One encoding per plaintext: an empty final chunk may only stand alone (the empty input).
      const empty = concatBytes([
        stream.subarray(0, r[1]!.start),
        Uint8Array.of(1, 0, 0, 0, 1, 0, 0, 0, 0),
        new Uint8Array(16),
      ]);
      const released = await expectStreamError(
        empty,
        'STREAM_CHUNK_INVALID',
        /final chunk 1 declares 0 bytes/,
      );
      expect(released).toEqual(detBytes('x', 128).subarray(0, 64));
      const relabelled = stream.slice();
      relabelled[r[1]!.start] = 0;
      await expectStreamError(relabelled, 'STREAM_CHUNK_AUTH_FAILED', /chunk 1 does not authenticate/);
    });
  }

  it('unknown record type → STREAM_CHUNK_INVALID', async () => {
    const stream = await encryptAll(plaintext, encOpts());
    stream[streamLayout(stream).records[0]!.start] = 2;
    await expectStreamError(stream, 'STREAM_CHUNK_INVALID', /unknown record type 2/);
  });

  it('appended bytes after the final chunk → STREAM_TRAILING_BYTES, without releasing the final chunk', async () => {
    const stream = await encryptAll(plaintext, encOpts());
    for (const extra of [Uint8Array.of(0), stream.subarray(streamLayout(stream).headerLength)]) {
      const appended = concatBytes([stream, extra]);
      for (const pieceSize of [1, 64, appended.length]) {
        const released = await expectStreamError(
          appended,
          'STREAM_TRAILING_BYTES',
          /follow the final chunk/,
          {},
          pieceSize,
        );
        expect(released).toEqual(plaintext.subarray(0, 192));
      }
    }
  });

  it('a whole second stream appended → STREAM_TRAILING_BYTES', async () => {
    const stream = await encryptAll(plaintext, encOpts());
    await expectStreamError(concatBytes([stream, stream]), 'STREAM_TRAILING_BYTES');
  });

  it('flipped bit at every byte of a small stream → a typed error, releasing only authentic plaintext', async () => {
    for (const suite of Object.values(SUITES)) {
      const small = detBytes('flip', 40);
      const stream = await encryptAll(
        small,
        encOpts({ suite: suite.id, chunkSize: 16, context: { a: 'b' } }),
      );
      const { headerLength } = streamLayout(stream);
      for (let i = 0; i < stream.length; i++) {
        for (const bit of [0x01, 0x80]) {
          const t = stream.slice();
          t[i]! ^= bit;
          const { plaintext, error } = await decryptAll(t, decOptions(), 7);
          expect(error, `byte ${i} bit ${bit} (${suite.name})`).toBeInstanceOf(CryptoError);
          expect(plaintext).toEqual(small.subarray(0, plaintext.length));
          if (i < headerLength) expect(plaintext.length, `header byte ${i}`).toBe(0);
          else expect(plaintext.length).toBeLessThan(small.length);
        }
      }
    }
  });
});

describe.each(FORMATS)('envelope stream, format %i: header and key checks', (formatVersion) => {
  const encOpts = (over: Partial<EncryptStreamOptions> = {}) => encOptions({ formatVersion, ...over });
  const plaintext = detBytes('header', 100);
  async function stream(over: Partial<EncryptStreamOptions> = {}) {
    return encryptAll(plaintext, encOpts(over));
  }
  const L = 5; // 'key-1'
  const E = EDK.length;

  it('wrong data key → CIPHERTEXT_KEY_MISMATCH', async () => {
    await expectStreamError(await stream(), 'CIPHERTEXT_KEY_MISMATCH', /does not belong to this stream/, {
      resolveDataKey: () => detBytes('other', 32),
    });
  });

  it('message id or commitment altered → CIPHERTEXT_KEY_MISMATCH', async () => {
    const s = await stream();
    const { headerLength } = streamLayout(s);
    const commitEnd = headerLength - (formatVersion === 1 ? 16 : 0);
    for (const at of [11, 42, commitEnd - 32, commitEnd - 1]) {
      const t = s.slice();
      t[at]! ^= 4;
      await expectStreamError(t, 'CIPHERTEXT_KEY_MISMATCH', /header was altered/);
    }
  });

  it('key id, encrypted data key, context (or format 1 header tag) altered → CIPHERTEXT_KEY_MISMATCH (2) / STREAM_HEADER_AUTH_FAILED (1)', async () => {
    // The resolver ignores the header and returns the right data key: only the header check can catch these.
    const s = await stream();
    const { headerLength } = streamLayout(s);
    const code = formatVersion === 2 ? 'CIPHERTEXT_KEY_MISMATCH' : 'STREAM_HEADER_AUTH_FAILED';
    const offsets = [44, 46 + L, 46 + L + E - 1, 50 + L + E + 5];
    if (formatVersion === 1) offsets.push(headerLength - 16, headerLength - 1);
    for (const at of offsets) {
      const t = s.slice();
      t[at]! ^= 1;
      await expectStreamError(t, code, /header was altered/);
    }
    // The sans-IO decryptor never exposes a header that failed authentication.
    const t = s.slice();
    t[44]! ^= 1;
    const dec = new EnvelopeDecryptor(decOptions());
    await expectCodeAsync(async () => dec.update(t, []), code);
    expect(dec.header).toBeUndefined();
  });

  it('expected context differs → CONTEXT_MISMATCH, before the data key is asked for', async () => {
    const resolveDataKey = vi.fn(() => DATA_KEY.slice());
    for (const context of [{}, { ...CONTEXT, tenant: 'other' }, { ...CONTEXT, extra: '1' }]) {
      await expectStreamError(await stream(), 'CONTEXT_MISMATCH', /different encryption context/, {
        resolveDataKey,
        context,
      });
    }
    expect(resolveDataKey).not.toHaveBeenCalled();
    const ok = await decryptAll(
      await stream(),
      decOptions({ context: new Map(Object.entries(CONTEXT).reverse()) }),
    );
    expect(ok.error).toBeUndefined();
  });

  it('not a stream → STREAM_HEADER_INVALID (with a hint for ciphertext blobs)', async () => {
    await expectStreamError(
      new TextEncoder().encode('hello world'),
      'STREAM_HEADER_INVALID',
      /not an ekms envelope stream$/,
    );
    await expectStreamError(Uint8Array.of(0xe1, 0, 1), 'STREAM_HEADER_INVALID', /ciphertext blob/);
    await expectStreamError(Uint8Array.of(0x45, 0x4b, 0x4d, 0x00), 'STREAM_HEADER_INVALID', /not an ekms/);
  });

  it('unknown format version → CIPHERTEXT_VERSION_UNSUPPORTED', async () => {
    for (const version of [0, 3, 0xff]) {
      const s = await stream();
      s[4] = version;
      await expectStreamError(s, 'CIPHERTEXT_VERSION_UNSUPPORTED', new RegExp(`version ${version} is not`));
      await expectStreamError(s.subarray(0, 5), 'CIPHERTEXT_VERSION_UNSUPPORTED');
    }
  });

  it('format version switched to the other one (downgrade or upgrade) → CIPHERTEXT_KEY_MISMATCH', async () => {
    // The version byte is an input of the key schedule in both formats; the header lengths differ by the tag too.
    const s = await stream();
    s[4] = formatVersion === 2 ? 1 : 2;
    await expectStreamError(s, 'CIPHERTEXT_KEY_MISMATCH');
  });

  it('unknown suite → SUITE_UNKNOWN', async () => {
    const s = await stream();
    s[6] = 0x33;
    await expectStreamError(s, 'SUITE_UNKNOWN', /0x0033/);
  });

  it('suite switched to the other registered suite → CIPHERTEXT_KEY_MISMATCH', async () => {
    const s = await stream();
    s[6] = s[6] === 1 ? 2 : 1;
    await expectStreamError(s, 'CIPHERTEXT_KEY_MISMATCH');
  });

  it('chunk size 0, above 16 MiB, or above maxChunkSize → STREAM_HEADER_INVALID', async () => {
    for (const [size, over] of [
      [0, {}],
      [STREAM_LIMITS.maxChunkSize + 1, {}],
      [65, { maxChunkSize: 64 }],
    ] as const) {
      const s = await stream();
      new DataView(s.buffer).setUint32(7, size);
      await expectStreamError(s, 'STREAM_HEADER_INVALID', /chunk size \d+ is outside/, over);
    }
    expect((await decryptAll(await stream(), decOptions({ maxChunkSize: 64 }))).error).toBeUndefined();
  });

  it('chunk size changed within bounds → CIPHERTEXT_KEY_MISMATCH (it is an input of the key derivation)', async () => {
    const s = await stream();
    new DataView(s.buffer).setUint32(7, 100);
    await expectStreamError(s, 'CIPHERTEXT_KEY_MISMATCH');
  });

  it('empty key id, non-ASCII key id, empty or oversized encrypted data key → STREAM_HEADER_INVALID', async () => {
    const cases: Array<[(b: Uint8Array, v: DataView) => void, RegExp]> = [
      [(b) => (b[43] = 0), /empty key id/],
      [(b) => (b[44] = 0x20), /printable ASCII/],
      [(_b, v) => v.setUint16(44 + L, 0), /encrypted data key length 0/],
      [(_b, v) => v.setUint16(44 + L, 8193), /encrypted data key length 8193/],
      [(_b, v) => v.setUint32(46 + L + E, 1), /context length 1 is outside/],
      [(_b, v) => v.setUint32(46 + L + E, 200_000), /context length 200000 is outside/],
    ];
    for (const [mutate, message] of cases) {
      const s = await stream();
      mutate(s, new DataView(s.buffer));
      await expectStreamError(s, 'STREAM_HEADER_INVALID', message);
    }
  });

  it('non-canonical context in the header → STREAM_HEADER_INVALID', async () => {
    const s = await stream({ context: { a: '1', b: '2' } });
    // Swap the key bytes 'a' and 'b': still well-formed, no longer sorted.
    const at = 50 + L + E;
    expect(s[at + 4]).toBe(0x61);
    s[at + 4] = 0x62;
    s[at + 10] = 0x61;
    await expectStreamError(s, 'STREAM_HEADER_INVALID', /canonical order/);
  });

  it('resolveDataKey failures → STREAM_DATA_KEY_UNAVAILABLE; EkmsErrors pass through', async () => {
    const s = await stream();
    await expectStreamError(s, 'STREAM_DATA_KEY_UNAVAILABLE', /resolveDataKey failed/, {
      resolveDataKey: () => {
        throw new Error('kms down');
      },
    });
    await expectStreamError(s, 'STREAM_DATA_KEY_UNAVAILABLE', /32-byte data key/, {
      resolveDataKey: () => new Uint8Array(16),
    });
    await expectStreamError(s, 'STREAM_DATA_KEY_UNAVAILABLE', /32-byte data key/, {
      resolveDataKey: () => 'key' as unknown as Uint8Array,
    });
    const { error } = await decryptAll(s, {
      resolveDataKey: async () => {
        throw new TransportError('CONNECTION_CLOSED', 'gone');
      },
    });
    expect(error).toBeInstanceOf(TransportError);
    expect((error as TransportError).code).toBe('CONNECTION_CLOSED');
  });

  it('takes ownership of the resolved data key and zeroes it', async () => {
    const given = DATA_KEY.slice();
    const { error } = await decryptAll(await stream(), { resolveDataKey: () => given });
    expect(error).toBeUndefined();
    expect(given.every((b) => b === 0)).toBe(true);
    const wrong = detBytes('wrong', 32);
    await decryptAll(await stream(), { resolveDataKey: () => wrong });
    expect(wrong.every((b) => b === 0)).toBe(true);
  });
});

describe('envelope stream: parameters and limits', () => {
  it('invalid encrypt options → typed errors', () => {
    expectCode(
      () => new EnvelopeEncryptor(encOptions({ chunkSize: 0 })),
      'CRYPTO_PARAMETER_INVALID',
      /chunk size/,
    );
    expectCode(
      () => new EnvelopeEncryptor(encOptions({ chunkSize: 1.5 })),
      'CRYPTO_PARAMETER_INVALID',
      /chunk size/,
    );
    expectCode(
      () => new EnvelopeEncryptor(encOptions({ chunkSize: STREAM_LIMITS.maxChunkSize + 1 })),
      'CRYPTO_PARAMETER_INVALID',
      /chunk size/,
    );
    expectCode(
      () => new EnvelopeEncryptor(encOptions({ dataKey: new Uint8Array(16) })),
      'KEY_INVALID',
      /32-byte/,
    );
    expectCode(
      () => new EnvelopeEncryptor(encOptions({ keyId: 'a b' })),
      'CRYPTO_PARAMETER_INVALID',
      /key id/,
    );
    expectCode(() => new EnvelopeEncryptor(encOptions({ keyId: '' })), 'CRYPTO_PARAMETER_INVALID', /key id/);
    expectCode(
      () => new EnvelopeEncryptor(encOptions({ encryptedDataKey: new Uint8Array(0) })),
      'CRYPTO_PARAMETER_INVALID',
      /encrypted data key/,
    );
    expectCode(
      () => new EnvelopeEncryptor(encOptions({ encryptedDataKey: new Uint8Array(8193) })),
      'CRYPTO_PARAMETER_INVALID',
      /encrypted data key/,
    );
    expectCode(
      () => new EnvelopeEncryptor(encOptions({ context: { 'ekms:a': 'b' } })),
      'CONTEXT_INVALID',
      /reserved/,
    );
    expectCode(() => new EnvelopeEncryptor(encOptions({ suite: 7 as SuiteId })), 'SUITE_UNKNOWN');
    for (const formatVersion of [0, 3, '2'] as unknown as StreamFormatVersion[]) {
      expectCode(
        () => new EnvelopeEncryptor(encOptions({ formatVersion })),
        'CRYPTO_PARAMETER_INVALID',
        /format version must be 2 or 1/,
      );
    }
    expectCode(
      () => new EnvelopeEncryptor(encOptions({ testRandom: () => new Uint8Array(1) })),
      'CRYPTO_PARAMETER_INVALID',
      /random/,
    );
  });

  it('invalid decrypt options → CRYPTO_PARAMETER_INVALID', () => {
    expectCode(
      () => new EnvelopeDecryptor({ resolveDataKey: undefined as unknown as () => Uint8Array }),
      'CRYPTO_PARAMETER_INVALID',
      /resolveDataKey/,
    );
    expectCode(
      () => new EnvelopeDecryptor(decOptions({ maxChunkSize: 0 })),
      'CRYPTO_PARAMETER_INVALID',
      /maxChunkSize/,
    );
  });

  it('chunk index past 2^32 − 1, or a regular chunk at the last index → STREAM_LIMIT_EXCEEDED', () => {
    expect(() => checkChunkIndex(0, false)).not.toThrow();
    expect(() => checkChunkIndex(0xffff_fffe, false)).not.toThrow();
    expect(() => checkChunkIndex(0xffff_ffff, true)).not.toThrow();
    expectCode(() => checkChunkIndex(0xffff_ffff, false), 'STREAM_LIMIT_EXCEEDED', /2\^32 chunks/);
    expectCode(() => checkChunkIndex(2 ** 32, true), 'STREAM_LIMIT_EXCEEDED', /2\^32 chunks/);
  });

  it('misuse of the sans-IO halves → CRYPTO_PARAMETER_INVALID', async () => {
    const enc = new EnvelopeEncryptor(encOptions());
    const out: Uint8Array[] = [];
    expectCode(
      () => enc.update('text' as unknown as Uint8Array, out),
      'CRYPTO_PARAMETER_INVALID',
      /byte arrays/,
    );
    enc.finish(out);
    expectCode(() => enc.update(new Uint8Array(1), out), 'CRYPTO_PARAMETER_INVALID', /already finished/);
    expectCode(() => enc.finish(out), 'CRYPTO_PARAMETER_INVALID', /already finished/);

    const dec = new EnvelopeDecryptor(decOptions());
    const pending = dec.update(concatBytes(out), []);
    expect(pending).toBeInstanceOf(Promise);
    expect(dec.header).toBeUndefined();
    expectCode(() => dec.update(new Uint8Array(1), []), 'CRYPTO_PARAMETER_INVALID', /being resolved/);
    await pending;
    const plain: Uint8Array[] = [];
    dec.finish(plain);
    expect(concatBytes(plain).length).toBe(0);
    expect(dec.header?.keyId).toBe('key-1');
  });

  it('a decryptor destroyed while the data key is resolved fails and still zeroes the key', async () => {
    const enc = new EnvelopeEncryptor(encOptions());
    const out: Uint8Array[] = [];
    enc.finish(out);
    const given = DATA_KEY.slice();
    const dec = new EnvelopeDecryptor({ resolveDataKey: async () => given });
    const pending = dec.update(concatBytes(out), []);
    dec.destroy();
    await expectCodeAsync(() => pending!, 'CRYPTO_PARAMETER_INVALID', /destroyed/);
    expect(given.every((b) => b === 0)).toBe(true);
  });

  it('keeps its own copy of the header: a piece that held it may be overwritten once update returned', async () => {
    for (const formatVersion of FORMATS) {
      const enc = new EnvelopeEncryptor(encOptions({ formatVersion }));
      const out: Uint8Array[] = [];
      const pt = detBytes('header copy', 150);
      enc.update(pt, out);
      enc.finish(out);
      const stream = concatBytes(out);
      const headerLength = enc.header.length;
      // The header alone in one piece (read from a view of it), then that memory reused while the key is resolved.
      const piece = stream.slice(0, headerLength);
      const dec = new EnvelopeDecryptor({ resolveDataKey: async () => DATA_KEY.slice() });
      const plain: Uint8Array[] = [];
      const pending = dec.update(piece, plain);
      expect(pending).toBeInstanceOf(Promise);
      piece.fill(0xee);
      await pending;
      await dec.update(stream.slice(headerLength), plain);
      dec.finish(plain);
      expect(concatBytes(plain)).toEqual(pt);
      expect(dec.header?.encryptedDataKey).toEqual(EDK);
      expect({ ...dec.header?.context }).toEqual(CONTEXT);
    }
  });

  it('a header piece modified after update (against the contract) fails as a bad header, before any key is asked for', async () => {
    const enc = new EnvelopeEncryptor(encOptions({ keyId: 'key-1' }));
    const out: Uint8Array[] = [];
    enc.update(detBytes('modified header', 20), out);
    enc.finish(out);
    const stream = concatBytes(out);
    const L = 5;
    const E = EDK.length;
    const C =
      (stream[46 + L + E]! << 24) |
      (stream[47 + L + E]! << 16) |
      (stream[48 + L + E]! << 8) |
      stream[49 + L + E]!;
    const beforeCommitment = 50 + L + E + C;
    const cases: ReadonlyArray<readonly [string, (a: Uint8Array) => void, RegExp]> = [
      ['chunk size 0', (a) => a.fill(0, 7, 11), /chunk size 0 is outside/],
      [
        'a key id byte not printable',
        (a) => {
          a[44] = 0x20;
        },
        /not printable ASCII/,
      ],
      [
        'the encrypted data key one byte longer',
        (a) => {
          a[45 + L] = a[45 + L]! + 1;
        },
        /changed while it was read/,
      ],
      [
        'the context one byte longer',
        (a) => {
          a[49 + L + E] = a[49 + L + E]! + 1;
        },
        /changed while it was read/,
      ],
    ];
    for (const [what, modify, message] of cases) {
      const piece = stream.slice(0, beforeCommitment);
      let asked = 0;
      const dec = new EnvelopeDecryptor({
        resolveDataKey: () => {
          asked++;
          return DATA_KEY.slice();
        },
      });
      // Every field is checked as the piece arrives; the commitment is still to come.
      expect(dec.update(piece, [])).toBeUndefined();
      modify(piece);
      expectCode(() => dec.update(stream.slice(beforeCommitment), []), 'STREAM_HEADER_INVALID', message);
      expect(asked, what).toBe(0);
    }
  });

  it('is deterministic given the message id (testRandom)', async () => {
    const pt = detBytes('det', 300);
    const a = await encryptAll(pt, encOptions({ testRandom: detRandom('m') }));
    const b = await encryptAll(pt, encOptions({ testRandom: detRandom('m') }), 1);
    expect(a).toEqual(b);
  });
});
