/**
 * The decryptor deciphers an AES-GCM record's body as it arrives and holds the plaintext until the record's tag
 * verifies (client/envelope-stream.ts, EnvelopeDecryptor #openRecord). These tests pin what that must not change:
 * nothing of a record is released before its tag, a failed tag releases nothing of that record, and plaintext
 * deciphered but not yet released is zeroed when the decryptor fails or is destroyed. node:crypto's
 * createDecipheriv is wrapped (pass-through) to see the buffers the decryptor held.
 */
import type * as NodeCrypto from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  createDecryptStream,
  decryptEnvelope,
  type EncryptStreamOptions,
  EnvelopeDecryptor,
  EnvelopeEncryptor,
  type StreamFormatVersion,
} from '../../client/envelope-stream.js';
import { SuiteId } from '../../shared/suites.js';
import { concatBytes, detBytes, expectCode, streamLayout } from './helpers.js';

/** Every plaintext buffer the wrapped deciphers returned from update(), in order. */
const deciphered: Uint8Array[] = [];
/** Every decipher created, with its unwrapped update (to probe whether its context was freed). */
const deciphers: Array<(data: Uint8Array) => Buffer> = [];
/** If set, the update() call with this number (counting from 1) throws. */
let failUpdateAt: number | undefined;

vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof NodeCrypto>();
  return {
    ...real,
    createDecipheriv: (...args: Parameters<typeof real.createDecipheriv>) => {
      const decipher = real.createDecipheriv(...args);
      const update = decipher.update.bind(decipher) as (data: Uint8Array) => Buffer;
      deciphers.push(update);
      (decipher as { update: (data: Uint8Array) => Buffer }).update = (data: Uint8Array) => {
        if (deciphered.length + 1 === failUpdateAt) throw new Error('injected update failure');
        const out = update(data);
        deciphered.push(out);
        return out;
      };
      return decipher;
    },
  };
});

const DATA_KEY = detBytes('held data key', 32);
const CHUNK = 64;
const PLAINTEXT = detBytes('held plaintext', 3 * CHUNK + 10);

function sealed(formatVersion: StreamFormatVersion): Uint8Array {
  const options: EncryptStreamOptions = {
    formatVersion,
    dataKey: DATA_KEY,
    encryptedDataKey: detBytes('held edk', 40),
    keyId: 'key-1',
    context: { a: 'b' },
    chunkSize: CHUNK,
    suite: SuiteId.Aes256GcmKdfCtrHmacSha512CommitV2,
  };
  const enc = new EnvelopeEncryptor(options);
  const out: Uint8Array[] = [];
  enc.update(PLAINTEXT, out);
  enc.finish(out);
  return concatBytes(out);
}

/** A decryptor that has authenticated the header of `stream` (the first `headerLength` bytes). */
async function opened(stream: Uint8Array, headerLength: number): Promise<EnvelopeDecryptor> {
  const dec = new EnvelopeDecryptor({ resolveDataKey: () => DATA_KEY.slice() });
  const out: Uint8Array[] = [];
  const pending = dec.update(stream.subarray(0, headerLength), out);
  if (pending !== undefined) await pending;
  expect(out).toEqual([]);
  return dec;
}

const isZero = (b: Uint8Array) => b.every((x) => x === 0);

/**
 * True when no decipher created so far still has an OpenSSL context: node refuses update() once final() ran. The
 * probe is an empty update, which does not change an open decipher's state. Requires that deciphers were created.
 */
const allDeciphersFinished = () => {
  expect(deciphers.length).toBeGreaterThan(0);
  return deciphers.every((update) => {
    try {
      update(new Uint8Array(0));
      return false;
    } catch (err) {
      return /unsupported state/i.test((err as Error).message);
    }
  });
};

describe.each([2, 1] as const)(
  'envelope decryptor, format %i: plaintext held until the tag verifies (AES-GCM)',
  (formatVersion) => {
    afterEach(() => {
      deciphered.length = 0;
      deciphers.length = 0;
      failUpdateAt = undefined;
    });

    it('releases a record only with the last byte of its tag, fed one byte at a time', async () => {
      const stream = sealed(formatVersion);
      const { headerLength, records } = streamLayout(stream);
      const dec = await opened(stream, headerLength);
      const first = records[0]!;
      for (let i = first.start; i < first.end - 1; i++) {
        const out: Uint8Array[] = [];
        expect(dec.update(stream.subarray(i, i + 1), out)).toBeUndefined();
        expect(out, `released at byte ${i}`).toEqual([]);
      }
      // The body was deciphered as it came (one output per body byte), not held back as ciphertext.
      expect(deciphered.length).toBe(CHUNK);
      const out: Uint8Array[] = [];
      dec.update(stream.subarray(first.end - 1, first.end), out);
      expect(concatBytes(out)).toEqual(PLAINTEXT.subarray(0, CHUNK));
    });

    it('a record whose tag fails releases nothing of it, and what it deciphered is zeroed', async () => {
      const stream = sealed(formatVersion);
      const { headerLength, records } = streamLayout(stream);
      const second = records[1]!;
      const tampered = stream.slice();
      tampered[second.end - 1]! ^= 1;
      const dec = await opened(tampered, headerLength);
      const out: Uint8Array[] = [];
      dec.update(tampered.subarray(headerLength, second.end - 1), out);
      expect(concatBytes(out)).toEqual(PLAINTEXT.subarray(0, CHUNK));
      const heldOfSecond = deciphered.slice(-1);
      expect(concatBytes(heldOfSecond)).toEqual(PLAINTEXT.subarray(CHUNK, 2 * CHUNK));
      const more: Uint8Array[] = [];
      expect(allDeciphersFinished()).toBe(false);
      expectCode(() => dec.update(tampered.subarray(second.end - 1), more), 'STREAM_CHUNK_AUTH_FAILED');
      expect(more).toEqual([]);
      expect(heldOfSecond.every(isZero)).toBe(true);
      expect(allDeciphersFinished()).toBe(true);
    });

    it('destroy() in the middle of a record zeroes the plaintext deciphered so far', async () => {
      const stream = sealed(formatVersion);
      const { headerLength, records } = streamLayout(stream);
      const dec = await opened(stream, headerLength);
      const first = records[0]!;
      const out: Uint8Array[] = [];
      dec.update(stream.subarray(headerLength, first.start + 9 + CHUNK / 2), out);
      expect(out).toEqual([]);
      expect(concatBytes(deciphered)).toEqual(PLAINTEXT.subarray(0, CHUNK / 2));
      expect(allDeciphersFinished()).toBe(false);
      dec.destroy();
      expect(deciphered.every(isZero)).toBe(true);
      expect(dec.keyWiped).toBe(true);
      // The open record's cipher context (the expanded stream key) is freed too, not left to garbage collection.
      expect(allDeciphersFinished()).toBe(true);
    });

    it('finish() in the middle of a record → STREAM_TRUNCATED, and the held plaintext is zeroed', async () => {
      const stream = sealed(formatVersion);
      const { headerLength, records } = streamLayout(stream);
      const dec = await opened(stream, headerLength);
      dec.update(stream.subarray(headerLength, records[0]!.end - 4), []);
      expect(deciphered.length).toBeGreaterThan(0);
      expect(allDeciphersFinished()).toBe(false);
      expectCode(() => dec.finish([]), 'STREAM_TRUNCATED', /inside chunk 0/);
      expect(deciphered.every(isZero)).toBe(true);
      expect(allDeciphersFinished()).toBe(true);
    });

    it('a decipher that throws in the middle of a record fails the decryptor and zeroes what it held', async () => {
      const stream = sealed(formatVersion);
      const { headerLength, records } = streamLayout(stream);
      const dec = await opened(stream, headerLength);
      const first = records[0]!;
      failUpdateAt = 3;
      const out: Uint8Array[] = [];
      for (let i = headerLength; i < first.start + 9 + 2; i++) dec.update(stream.subarray(i, i + 1), out);
      expect(deciphered).toHaveLength(2);
      expect(() => dec.update(stream.subarray(first.start + 11, first.start + 12), out)).toThrow(
        /injected update failure/,
      );
      expect(out).toEqual([]);
      expect(deciphered.every(isZero)).toBe(true);
      expect(allDeciphersFinished()).toBe(true);
      expectCode(
        () => dec.update(stream.subarray(first.start + 12), []),
        'CRYPTO_PARAMETER_INVALID',
        /failed/,
      );
    });

    it('a Transform destroyed in the middle of a record zeroes what it held and frees the cipher', async () => {
      const stream = sealed(formatVersion);
      const { records } = streamLayout(stream);
      const t = createDecryptStream({ resolveDataKey: async () => DATA_KEY.slice() });
      const released: Uint8Array[] = [];
      t.on('data', (c: Uint8Array) => released.push(c));
      t.on('error', () => {});
      await new Promise<void>((resolve) =>
        t.write(stream.subarray(0, records[1]!.start + 9 + CHUNK / 2), () => resolve()),
      );
      expect(concatBytes(released)).toEqual(PLAINTEXT.subarray(0, CHUNK));
      const held = deciphered.slice(-1);
      expect(concatBytes(held)).toEqual(PLAINTEXT.subarray(CHUNK, CHUNK + CHUNK / 2));
      expect(allDeciphersFinished()).toBe(false);
      t.destroy();
      await new Promise((resolve) => setImmediate(resolve));
      expect(held.every(isZero)).toBe(true);
      expect(allDeciphersFinished()).toBe(true);
      expect(concatBytes(released)).toEqual(PLAINTEXT.subarray(0, CHUNK));
    });

    it('a consumer that stops the async generator in the middle of a record zeroes what it held', async () => {
      const stream = sealed(formatVersion);
      const { records } = streamLayout(stream);
      const pieces = [
        stream.subarray(0, records[1]!.start + 9 + CHUNK / 2),
        stream.subarray(records[1]!.start + 9 + CHUNK / 2),
      ];
      const got: Uint8Array[] = [];
      for await (const p of decryptEnvelope(pieces, { resolveDataKey: () => DATA_KEY.slice() })) {
        got.push(p);
        expect(allDeciphersFinished()).toBe(false);
        break;
      }
      expect(concatBytes(got)).toEqual(PLAINTEXT.subarray(0, CHUNK));
      const heldOfSecond = deciphered.slice(-1);
      expect(concatBytes(heldOfSecond)).toEqual(new Uint8Array(CHUNK / 2));
      expect(allDeciphersFinished()).toBe(true);
    });
  },
);
