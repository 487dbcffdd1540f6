/**
 * Helpers shared by the crypto tests (test/crypto/*.test.ts): error assertions, deterministic bytes, and an
 * independent reader of the envelope stream layout (docs/ciphertext-format.md §5) used to cut streams apart.
 */
import { createHash } from 'node:crypto';
import { expect } from 'vitest';
import {
  type DecryptStreamOptions,
  decryptEnvelope,
  type EncryptStreamOptions,
  encryptEnvelope,
} from '../../client/envelope-stream.js';
import { CryptoError } from '../../shared/crypto-errors.js';

/** Deterministic bytes: SHA-256 counter mode over a label (test inputs only). */
export function detBytes(label: string, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0, pos = 0; pos < length; i++) {
    const block = createHash('sha256').update(`${label}/${i}`).digest();
    out.set(block.subarray(0, Math.min(32, length - pos)), pos);
    pos += 32;
  }
  return out;
}

/** A deterministic random source for `testRandom`, returning successive blocks of `detBytes(label, …)`. */
export function detRandom(label: string): (n: number) => Uint8Array {
  let counter = 0;
  return (n) => detBytes(`${label}#${counter++}`, n);
}

/** Asserts that `fn` throws a CryptoError with `code` (and a message matching `message`, if given). */
export function expectCode(fn: () => unknown, code: string, message?: RegExp): CryptoError {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  return checkError(thrown, code, message);
}

/** Async variant of `expectCode`. */
export async function expectCodeAsync(fn: () => Promise<unknown>, code: string, message?: RegExp) {
  let thrown: unknown;
  try {
    await fn();
  } catch (err) {
    thrown = err;
  }
  return checkError(thrown, code, message);
}

function checkError(thrown: unknown, code: string, message?: RegExp): CryptoError {
  expect(thrown, `expected a CryptoError ${code}`).toBeInstanceOf(CryptoError);
  const err = thrown as CryptoError;
  expect(err.code).toBe(code);
  if (message) expect(err.message).toMatch(message);
  return err;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** Splits `bytes` into pieces of `size` (the last one shorter). */
export function pieces(bytes: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

/** Encrypts a whole buffer with the async generator API, feeding it in pieces of `pieceSize`. */
export async function encryptAll(
  plaintext: Uint8Array,
  options: EncryptStreamOptions,
  pieceSize = 4096,
): Promise<Uint8Array> {
  const out: Uint8Array[] = [];
  for await (const p of encryptEnvelope(pieces(plaintext, pieceSize), options)) out.push(p);
  return concatBytes(out);
}

/**
 * Decrypts a whole buffer with the async generator API. Returns the plaintext, or the error and whatever
 * plaintext was released before it.
 */
export async function decryptAll(
  ciphertext: Uint8Array,
  options: DecryptStreamOptions,
  pieceSize = 4096,
): Promise<{ plaintext: Uint8Array; error?: unknown }> {
  const out: Uint8Array[] = [];
  try {
    for await (const p of decryptEnvelope(pieces(ciphertext, pieceSize), options)) out.push(p);
    return { plaintext: concatBytes(out) };
  } catch (error) {
    return { plaintext: concatBytes(out), error };
  }
}

/** Byte ranges of an envelope stream, read independently of the implementation (docs §5). */
export interface StreamLayout {
  readonly headerLength: number;
  readonly records: ReadonlyArray<{
    start: number;
    end: number;
    type: number;
    index: number;
    length: number;
  }>;
}

export function streamLayout(bytes: Uint8Array, tagBytes = 16): StreamLayout {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const L = bytes[43]!;
  const E = view.getUint16(44 + L);
  const C = view.getUint32(46 + L + E);
  // Format 1 ends its header with a 16-byte header tag; format 2 has none.
  const headerLength = (bytes[4] === 1 ? 98 : 82) + L + E + C;
  const records = [];
  let pos = headerLength;
  while (pos < bytes.length) {
    const type = bytes[pos]!;
    const index = view.getUint32(pos + 1);
    const length = view.getUint32(pos + 5);
    const end = pos + 9 + length + tagBytes;
    records.push({ start: pos, end, type, index, length });
    pos = end;
  }
  return { headerLength, records };
}
