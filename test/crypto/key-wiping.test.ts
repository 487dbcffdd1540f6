/**
 * Secret lifetime (style §7): every key the crypto core derives is zeroed when it is no longer needed — after
 * success and after every failure. The key schedule (shared/key-schedule.ts, HKDF for v1 suites, one HMAC for v2) is
 * wrapped so that the test holds a reference to each derived output (the code under test is unchanged) and can check
 * that all of them are zero afterwards.
 */
import { describe, expect, it, vi } from 'vitest';
import type { CryptoError } from '../../shared/crypto-errors.js';

const derived = vi.hoisted(() => [] as Uint8Array[]);

vi.mock('../../shared/key-schedule.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../shared/key-schedule.js')>();
  const deriveMessageKeys: typeof actual.deriveMessageKeys = (...args) => {
    const keys = actual.deriveMessageKeys(...args);
    derived.push(keys.okm);
    return keys;
  };
  return { ...actual, deriveMessageKeys };
});

const { decryptEnvelope, EnvelopeDecryptor, EnvelopeEncryptor } = await import(
  '../../client/envelope-stream.js'
);
const { openBlob, parseBlob, sealBlob } = await import('../../enclave/crypto/ciphertext-blob.js');
const { SUITES } = await import('../../shared/suites.js');
const { concatBytes, decryptAll, detBytes, encryptAll } = await import('./helpers.js');

function takeDerived(): Uint8Array[] {
  return derived.splice(0, derived.length);
}

function expectAllZero(keys: Uint8Array[], expectedCount: number): void {
  expect(keys).toHaveLength(expectedCount);
  for (const k of keys) expect(k.every((b) => b === 0)).toBe(true);
}

const KEY = detBytes('wipe kek', 32);

describe.each(Object.values(SUITES))('key wiping, $name', (suite) => {
  const seal = (context = { a: 'b' }) =>
    sealBlob({ suite: suite.id, keyId: 'k', keyVersion: 1, key: KEY, plaintext: detBytes('p', 50), context });

  it('sealBlob zeroes its blob key and commitment (one key-schedule output)', () => {
    takeDerived();
    seal();
    expectAllZero(takeDerived(), 1);
  });

  it('openBlob zeroes them on success, on key mismatch and on authentication failure', () => {
    const parsed = parseBlob(seal());
    takeDerived();
    expect(openBlob(parsed, KEY, { a: 'b' })).toEqual(detBytes('p', 50));
    expectAllZero(takeDerived(), 1);
    expect(() => openBlob(parsed, detBytes('other', 32), { a: 'b' })).toThrow(/commitment/);
    expectAllZero(takeDerived(), 1);
    expect(() => openBlob(parsed, KEY, { a: 'c' })).toThrow(/authentication/);
    expectAllZero(takeDerived(), 1);
  });

  it.each([2, 1] as const)(
    'the stream encryptor (format %i) zeroes its stream key and commitment once finished or destroyed',
    (formatVersion) => {
      takeDerived();
      const enc = new EnvelopeEncryptor({
        dataKey: KEY,
        encryptedDataKey: new Uint8Array(8),
        keyId: 'k',
        context: {},
        suite: suite.id,
        formatVersion,
      });
      const [okm] = takeDerived();
      const streamKey = okm!.subarray(0, 32);
      expect(streamKey.some((b) => b !== 0)).toBe(true);
      expect(okm!.subarray(32).every((b) => b === 0)).toBe(true); // the commitment, once written to the header
      expect(enc.keyWiped).toBe(false);
      enc.update(detBytes('x', 100_000), []);
      expect(streamKey.some((b) => b !== 0)).toBe(true);
      enc.finish([]);
      expect(enc.keyWiped).toBe(true);
      expect(okm!.every((b) => b === 0)).toBe(true);

      const abandoned = new EnvelopeEncryptor({
        dataKey: KEY,
        encryptedDataKey: new Uint8Array(8),
        keyId: 'k',
        context: {},
        formatVersion,
      });
      abandoned.destroy();
      expect(abandoned.keyWiped).toBe(true);
      expectAllZero(takeDerived(), 1);
    },
  );

  it.each([2, 1] as const)(
    'the stream decryptor (format %i) zeroes its keys on success and on every failure',
    async (formatVersion) => {
      const opts = {
        dataKey: KEY,
        encryptedDataKey: new Uint8Array(8),
        keyId: 'k',
        context: {},
        suite: suite.id,
        chunkSize: 64,
        formatVersion,
      };
      const stream = await encryptAll(detBytes('x', 200), opts);
      takeDerived();

      const ok = new EnvelopeDecryptor({ resolveDataKey: () => KEY.slice() });
      await ok.update(stream.subarray(0, stream.length - 1), []);
      expect(ok.keyWiped).toBe(false);
      ok.update(stream.subarray(stream.length - 1), []);
      expect(ok.keyWiped).toBe(true); // zeroed as soon as the final chunk is authenticated
      ok.finish([]);
      expect(ok.keyWiped).toBe(true);
      expectAllZero(takeDerived(), 1);

      const tampered = stream.slice();
      tampered[tampered.length - 20]! ^= 1;
      const wrongKey = stream.slice();
      const keyIdAltered = stream.slice();
      keyIdAltered[44] = 0x6a; // 'k' → 'j': format 1 fails its header tag, format 2 its commitment
      const cases: Array<[Uint8Array, Uint8Array]> = [
        [tampered, KEY], // chunk authentication failure
        [wrongKey, detBytes('other', 32)], // commitment failure
        [keyIdAltered, KEY], // header authentication failure
        [stream.subarray(0, stream.length - 1), KEY], // truncation
        [concatBytes([stream, new Uint8Array(1)]), KEY], // trailing bytes
      ];
      for (const [bytes, key] of cases) {
        const { error } = await decryptAll(bytes, { resolveDataKey: () => key.slice() });
        expect(error).toBeDefined();
        if (bytes === keyIdAltered) {
          expect((error as CryptoError).code).toBe(
            formatVersion === 1 ? 'STREAM_HEADER_AUTH_FAILED' : 'CIPHERTEXT_KEY_MISMATCH',
          );
        }
        expectAllZero(takeDerived(), 1);
      }

      // A consumer that stops early: the generator's finally still wipes.
      for await (const _ of decryptEnvelope([stream], { resolveDataKey: () => KEY.slice() })) break;
      expectAllZero(takeDerived(), 1);
    },
  );
});
