/**
 * Encryption context (design §4; docs/ciphertext-format.md §2): a map of UTF-8 strings bound as AAD into every
 * ciphertext blob and envelope stream, so that decrypting with a different context fails. Policies may
 * require context keys and values (tenant binding); audit records carry its SHA-256 digest.
 *
 * Rules (fail closed, style §4; bounds from shared/limits.ts, style §6):
 * - at most LIMITS.maxContextEntries entries; keys and values at most LIMITS.maxContextStringBytes UTF-8 bytes;
 * - keys are non-empty; values may be empty; strings must be well-formed Unicode (no lone surrogates), so the
 *   UTF-8 encoding is exact — no normalisation is applied: `é` (NFC) and `e\u0301` (NFD) are different keys;
 * - no duplicate keys (arrays and maps may carry them; the last one never silently wins);
 * - keys starting with `ekms:` (ASCII, any case) are reserved for the service itself.
 *
 * Canonical encoding (unambiguous, one encoding per context):
 *   u16 count ‖ count × ( u16 keyLength ‖ key ‖ u16 valueLength ‖ value )   (big-endian, UTF-8)
 * with entries sorted by the UTF-8 bytes of their keys (strictly ascending). The empty context is `00 00`.
 * `decodeContext` accepts only that canonical form.
 */
import { createHash } from 'node:crypto';
import { copyBytes } from './bytes.js';
import { CryptoError } from './crypto-errors.js';
import { LIMITS } from './limits.js';

/** A validated, frozen, null-prototype context whose keys are in canonical order. */
export type EncryptionContext = Readonly<Record<string, string>>;

/** What callers may pass: a plain object, a Map, or key/value pairs (e.g. parsed from `--context k=v`). */
export type EncryptionContextInput =
  | Readonly<Record<string, string>>
  | ReadonlyMap<string, string>
  | ReadonlyArray<readonly [string, string]>;

/** Reserved key prefix (ASCII, compared case-insensitively), like `aws:` in AWS KMS. */
export const RESERVED_CONTEXT_PREFIX = 'ekms:';

/** Largest canonical encoding the limits allow, in bytes. */
export const MAX_CONTEXT_ENCODING_BYTES =
  2 + LIMITS.maxContextEntries * (4 + 2 * LIMITS.maxContextStringBytes);

export interface ContextOptions {
  /**
   * Accept keys with the reserved `ekms:` prefix. Only the service sets this, for entries it adds itself;
   * never pass it for caller-supplied contexts.
   */
  readonly allowReservedPrefix?: boolean;
}

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** With the `u` flag a surrogate pair is one code point, so this matches lone surrogates only. */
const LONE_SURROGATE = /\p{Cs}/u;
const RESERVED = /^ekms:/i;

interface EncodedEntry {
  readonly key: string;
  readonly value: string;
  readonly keyBytes: Uint8Array;
  readonly valueBytes: Uint8Array;
}

/**
 * A normalized context (from `normalizeContext` or `decodeContext`) remembers its validated entries, so that passing it
 * back to any function here skips validation (a GenerateDataKey otherwise validated the same context three times:
 * parameter, blob AAD, audit digest). The record hangs under a non-enumerable symbol set before the object is frozen;
 * what it holds is reachable only from this module (private fields read through functions made in a static block), an
 * object that did not come from here cannot pass for one (`#entries in x`), and it is used only for a frozen,
 * null-prototype object whose own entries are exactly the remembered ones, as data properties. Anything else is
 * validated from scratch.
 */
const CANONICAL: unique symbol = Symbol('ekms.canonicalContext');

let isCanonical: (x: unknown) => x is Canonical;
let entriesOfCanonical: (c: Canonical, options: ContextOptions) => readonly EncodedEntry[] | undefined;

class Canonical {
  readonly #entries: readonly EncodedEntry[];
  /** Validated with `allowReservedPrefix`: reusable only under the same option. */
  readonly #reservedAllowed: boolean;

  constructor(entries: readonly EncodedEntry[], reservedAllowed: boolean) {
    this.#entries = entries;
    this.#reservedAllowed = reservedAllowed;
    Object.freeze(this);
  }

  static {
    isCanonical = (x: unknown): x is Canonical => typeof x === 'object' && x !== null && #entries in x;
    entriesOfCanonical = (c, options) =>
      c.#reservedAllowed && options.allowReservedPrefix !== true ? undefined : c.#entries;
  }
}

function canonicalOf(input: unknown, options: ContextOptions): readonly EncodedEntry[] | undefined {
  if (typeof input !== 'object' || input === null) return undefined;
  if (Object.getPrototypeOf(input) !== null || !Object.isFrozen(input)) return undefined;
  const d = Object.getOwnPropertyDescriptor(input, CANONICAL);
  if (d === undefined || !isCanonical(d.value)) return undefined;
  const entries = entriesOfCanonical(d.value, options);
  if (entries === undefined) return undefined;
  // The object's own entries must be exactly the remembered ones (a record moved onto another object is useless).
  const keys = Object.keys(input);
  if (keys.length !== entries.length) return undefined;
  for (const e of entries) {
    const p = Object.getOwnPropertyDescriptor(input, e.key);
    if (p === undefined || !p.enumerable || p.value !== e.value || p.get !== undefined) return undefined;
  }
  return entries;
}

function invalid(message: string, details?: Readonly<Record<string, unknown>>): CryptoError {
  return new CryptoError(
    'CONTEXT_INVALID',
    `invalid encryption context: ${message}`,
    details ? { details } : {},
  );
}

/** Lists the entries of any accepted input shape, checking types. Duplicates are kept for the caller to see. */
function entriesOf(input: unknown): Array<readonly [unknown, unknown]> {
  /* Precondition: the context is a plain object, a Map or an array of [key, value] pairs. */
  if (input instanceof Map) return [...input.entries()];
  if (Array.isArray(input)) {
    return input.map((pair: unknown, i) => {
      if (!Array.isArray(pair) || pair.length !== 2) throw invalid(`entry ${i} is not a [key, value] pair`);
      return [pair[0], pair[1]] as const;
    });
  }
  if (typeof input !== 'object' || input === null) throw invalid('expected an object of strings');
  const proto = Object.getPrototypeOf(input);
  if (proto !== Object.prototype && proto !== null) throw invalid('expected a plain object of strings');
  if (Object.getOwnPropertySymbols(input).some((k) => k !== CANONICAL)) {
    throw invalid('symbol keys are not allowed');
  }
  return Object.entries(input);
}

/** The UTF-8 bytes of `s` when it is all ASCII (then also its Latin-1 bytes), else undefined. */
function asciiBytes(s: string): Uint8Array | undefined {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) return undefined;
    out[i] = c;
  }
  return out;
}

function checkString(s: unknown, what: 'key' | 'value', index: number): Uint8Array {
  /* Precondition: keys and values are strings. */
  if (typeof s !== 'string') throw invalid(`${what} of entry ${index} is not a string`);
  /* Precondition: at most maxContextStringBytes UTF-8 bytes per key or value. */
  if (s.length > LIMITS.maxContextStringBytes) {
    // Fast reject: UTF-8 is never shorter than the UTF-16 length.
    throw invalid(`${what} of entry ${index} exceeds ${LIMITS.maxContextStringBytes} bytes`);
  }
  // Most contexts are ASCII: one byte per code unit, no surrogates to check (the common path costs no native call).
  const ascii = asciiBytes(s);
  if (ascii !== undefined) return ascii;
  /* Precondition: strings are well-formed Unicode, so their UTF-8 encoding is exact. */
  if (LONE_SURROGATE.test(s))
    throw invalid(`${what} of entry ${index} contains a lone surrogate (not UTF-8)`);
  const bytes = encoder.encode(s);
  if (bytes.length > LIMITS.maxContextStringBytes) {
    throw invalid(`${what} of entry ${index} exceeds ${LIMITS.maxContextStringBytes} bytes`);
  }
  return bytes;
}

function checkKey(key: string, index: number, options: ContextOptions): void {
  /* Precondition: keys are non-empty. */
  if (key.length === 0) throw invalid(`key of entry ${index} is empty`);
  /* Precondition: the `ekms:` prefix is reserved for the service. */
  if (options.allowReservedPrefix !== true && RESERVED.test(key)) {
    throw invalid(
      `key ${JSON.stringify(key.slice(0, 64))} uses the reserved prefix "${RESERVED_CONTEXT_PREFIX}"`,
    );
  }
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

function validated(input: EncryptionContextInput, options: ContextOptions): readonly EncodedEntry[] {
  const cached = canonicalOf(input, options);
  if (cached !== undefined) return cached;
  const raw = entriesOf(input);
  /* Precondition: at most maxContextEntries entries. */
  if (raw.length > LIMITS.maxContextEntries) {
    throw invalid(`${raw.length} entries exceed the limit of ${LIMITS.maxContextEntries}`);
  }
  const entries: EncodedEntry[] = raw.map(([k, v], i) => {
    const keyBytes = checkString(k, 'key', i);
    const valueBytes = checkString(v, 'value', i);
    checkKey(k as string, i, options);
    return { key: k as string, value: v as string, keyBytes, valueBytes };
  });
  if (entries.length > 1) entries.sort((a, b) => compareBytes(a.keyBytes, b.keyBytes));
  for (let i = 1; i < entries.length; i++) {
    /* Precondition: no duplicate keys. */
    if (compareBytes(entries[i - 1]!.keyBytes, entries[i]!.keyBytes) === 0) {
      throw invalid(`duplicate key ${JSON.stringify(entries[i]!.key.slice(0, 64))}`);
    }
  }
  return entries;
}

function freeze(entries: readonly EncodedEntry[], options: ContextOptions): EncryptionContext {
  const out: Record<string, string> = Object.create(null);
  for (const e of entries) out[e.key] = e.value;
  // Not enumerable: invisible to Object.keys/entries, JSON and CBOR encoders.
  Object.defineProperty(out, CANONICAL, {
    value: new Canonical(Object.freeze([...entries]), options.allowReservedPrefix === true),
    enumerable: false,
  });
  return Object.freeze(out);
}

function encodeEntries(entries: readonly EncodedEntry[]): Uint8Array {
  let size = 2;
  for (const e of entries) size += 4 + e.keyBytes.length + e.valueBytes.length;
  // Big-endian lengths written byte by byte: a DataView over `out.buffer` would make V8 move a small (on-heap) array
  // off the heap, ~2 µs on these machines (shared/bytes.ts).
  const out = new Uint8Array(size);
  const setU16 = (at: number, n: number) => {
    out[at] = n >>> 8;
    out[at + 1] = n & 0xff;
  };
  setU16(0, entries.length);
  let pos = 2;
  for (const e of entries) {
    setU16(pos, e.keyBytes.length);
    out.set(e.keyBytes, pos + 2);
    pos += 2 + e.keyBytes.length;
    setU16(pos, e.valueBytes.length);
    out.set(e.valueBytes, pos + 2);
    pos += 2 + e.valueBytes.length;
  }
  return out;
}

/**
 * Validates a context and returns it frozen, with a null prototype and keys in canonical order.
 * @throws CryptoError CONTEXT_INVALID if any rule in the file header is broken.
 */
export function normalizeContext(
  input: EncryptionContextInput,
  options: ContextOptions = {},
): EncryptionContext {
  return freeze(validated(input, options), options);
}

/**
 * Validates a context and returns it as a plain object, for a request to the service (keys inserted in canonical
 * order; JavaScript still lists integer-like keys first, and the service sorts again):
 * unlike `normalizeContext` nothing is frozen or remembered, since the object is only encoded.
 * @throws CryptoError CONTEXT_INVALID if any rule in the file header is broken.
 */
export function contextObject(
  input: EncryptionContextInput,
  options: ContextOptions = {},
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of validated(input, options)) {
    // A "__proto__" key must become an own property, not the prototype.
    if (e.key === '__proto__') {
      Object.defineProperty(out, e.key, {
        value: e.value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else out[e.key] = e.value;
  }
  return out;
}

/**
 * Validates a context and returns its canonical encoding (the bytes bound as AAD).
 * @throws CryptoError CONTEXT_INVALID if any rule in the file header is broken.
 */
export function encodeContext(input: EncryptionContextInput, options: ContextOptions = {}): Uint8Array {
  return encodeEntries(validated(input, options));
}

/** Encodings up to this size are remembered by decodeContext (one at a time); larger ones are decoded each time. */
const DECODED_CACHE_MAX_BYTES = 1024;
/**
 * The last encoding decodeContext accepted without options (a private copy) and the frozen context it returned.
 * Streams of one tenant carry the same context in every header; decoding it again (UTF-8 checks, copies, freezing)
 * was ~6 µs of a message's fixed cost inside a stream pipeline on these machines (docs/performance.md). The result
 * is immutable, so handing the same object out again is safe; a hit needs the very same bytes.
 */
let lastEncoding: Uint8Array | undefined;
let lastDecoded: EncryptionContext | undefined;

/** Byte equality of public data (no timing concern: encodings travel in cleartext headers). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Decodes a canonical context encoding. Accepts only the canonical form (sorted keys, no duplicates, no
 * trailing bytes) and applies the same rules as `encodeContext`, so `encodeContext(decodeContext(b))` equals `b`.
 * Decoding the encoding decoded last (without options) returns the same frozen object again.
 * @throws CryptoError CONTEXT_INVALID if the bytes are truncated, oversized, not UTF-8, not canonical, or break a rule.
 */
export function decodeContext(bytes: Uint8Array, options: ContextOptions = {}): EncryptionContext {
  /* Precondition: the input is a byte array no larger than the largest valid encoding. */
  if (!(bytes instanceof Uint8Array)) throw invalid('encoding is not a byte array');
  if (bytes.length > MAX_CONTEXT_ENCODING_BYTES) {
    throw invalid(`encoding of ${bytes.length} bytes exceeds ${MAX_CONTEXT_ENCODING_BYTES}`);
  }
  // Only decodes under the default rules are remembered and reused: one that allowed the reserved prefix must not
  // make the same bytes acceptable without it (every use of the option in this file tests `=== true`).
  if (options.allowReservedPrefix === true || bytes.length > DECODED_CACHE_MAX_BYTES) {
    return decodeUncached(bytes, options);
  }
  if (lastEncoding !== undefined && sameBytes(lastEncoding, bytes)) return lastDecoded!;
  // The copy is what is decoded and what is remembered, so the two always agree (however the caller's array
  // changes meanwhile), and it has memory of its own: not Node's shared pool, which other code can write through
  // `.buffer`.
  const own = new Uint8Array(bytes);
  const decoded = decodeUncached(own, options);
  lastEncoding = own;
  lastDecoded = decoded;
  return decoded;
}

function decodeUncached(bytes: Uint8Array, options: ContextOptions): EncryptionContext {
  // Lengths read byte by byte, not through a DataView over `bytes.buffer` (see encodeEntries).
  const u16 = (at: number): number => (bytes[at]! << 8) | bytes[at + 1]!;
  let pos = 0;
  const need = (n: number): void => {
    /* Precondition: every declared length lies within the encoding. */
    if (pos + n > bytes.length) throw invalid(`encoding ends early at offset ${pos}`);
  };
  const readString = (what: 'key' | 'value', index: number): { s: string; b: Uint8Array } => {
    need(2);
    const len = u16(pos);
    pos += 2;
    if (len > LIMITS.maxContextStringBytes) {
      throw invalid(`${what} of entry ${index} exceeds ${LIMITS.maxContextStringBytes} bytes`);
    }
    need(len);
    const b = bytes.subarray(pos, pos + len);
    pos += len;
    let s: string;
    try {
      s = strictDecoder.decode(b);
    } catch (cause) {
      throw new CryptoError(
        'CONTEXT_INVALID',
        `invalid encryption context: ${what} of entry ${index} is not UTF-8`,
        {
          cause,
        },
      );
    }
    return { s, b };
  };
  need(2);
  const count = u16(0);
  pos = 2;
  if (count > LIMITS.maxContextEntries) {
    throw invalid(`${count} entries exceed the limit of ${LIMITS.maxContextEntries}`);
  }
  const entries: EncodedEntry[] = [];
  for (let i = 0; i < count; i++) {
    const k = readString('key', i);
    const v = readString('value', i);
    checkKey(k.s, i, options);
    const prev = entries[i - 1];
    /* Precondition: keys are strictly ascending by UTF-8 bytes (canonical; no duplicates). */
    if (prev !== undefined && compareBytes(prev.keyBytes, k.b) >= 0) {
      throw invalid(`entry ${i} is out of canonical order or duplicates a key`);
    }
    // Copies: the normalized result keeps its entries, which must not follow later changes to `bytes`.
    entries.push({ key: k.s, value: v.s, keyBytes: copyBytes(k.b), valueBytes: copyBytes(v.b) });
  }
  /* Precondition: nothing follows the last entry. */
  if (pos !== bytes.length) throw invalid(`${bytes.length - pos} byte(s) follow the last entry`);
  return freeze(entries, options);
}

/**
 * SHA-256 of the canonical encoding: the context digest recorded in audit records.
 * @throws CryptoError CONTEXT_INVALID if the context is invalid.
 */
export function contextDigest(input: EncryptionContextInput, options: ContextOptions = {}): Uint8Array {
  return new Uint8Array(createHash('sha256').update(encodeContext(input, options)).digest());
}

/**
 * Do two contexts hold exactly the same entries? Compares canonical encodings.
 * @throws CryptoError CONTEXT_INVALID if either context is invalid.
 */
export function contextsEqual(
  a: EncryptionContextInput,
  b: EncryptionContextInput,
  options: ContextOptions = {},
): boolean {
  return Buffer.compare(encodeContext(a, options), encodeContext(b, options)) === 0;
}
