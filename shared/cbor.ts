/**
 * Bounded CBOR (RFC 8949) decoding and deterministic-enough encoding.
 *
 * `cbor-x` does the decoding, but it has no depth or size limits and allocates what a length prefix asks
 * for. So every input is first walked by `scanCbor`, which reads only item heads (no allocation), and
 * rejects — with a typed `FrameError` — anything truncated, malformed, too deep, too long, with too many
 * items, with trailing bytes, or using features the caller did not allow (tags, indefinite lengths,
 * non-text map keys). Only input that passed the scan is handed to `cbor-x`.
 *
 * With `uniqueKeys` (the default for text-keyed protocol frames) maps must not repeat a key (RFC 8949 §5.6): a
 * decoder keeps one of the two values, and which one is exactly the kind of parser differential a signed or
 * transcript-bound message must not have. A `__proto__` key is refused too: decoding maps as objects, cbor-x
 * renames it `__proto_`, so it would silently alias another key.
 *
 * This is a bounds check, not a codec: the scanner never builds values.
 */
import { Decoder, Encoder } from 'cbor-x';
import { copyBytes } from './bytes.js';
import { FrameError } from './errors.js';
import { LIMITS } from './limits.js';

/** What a caller allows beyond plain definite-length CBOR. */
export interface CborScanOptions {
  /** Maximum nesting depth (default LIMITS.maxCborDepth). */
  readonly maxDepth?: number;
  /** Maximum total input length (default LIMITS.maxFrameBytes). */
  readonly maxBytes?: number;
  /** Tag numbers accepted (default none). */
  readonly allowTags?: readonly number[];
  /** Accept indefinite-length strings, arrays and maps (default false). */
  readonly allowIndefinite?: boolean;
  /** Require every map key to be a text string (default true). */
  readonly textKeysOnly?: boolean;
  /**
   * Refuse a map that repeats a key, and a "__proto__" key (default: the value of `textKeysOnly`, so protocol
   * frames always get it; parsers of other formats that do their own key checks, e.g. Nitro's, may opt in).
   */
  readonly uniqueKeys?: boolean;
  /** Maximum text string bytes (default LIMITS.maxCborStringBytes). */
  readonly maxStringBytes?: number;
  /** Maximum byte string bytes (default LIMITS.maxCborBytesLength). */
  readonly maxBytesLength?: number;
  /** Maximum elements in one array (default LIMITS.maxCborArrayLength). */
  readonly maxArrayLength?: number;
  /** Maximum entries in one map (default LIMITS.maxCborMapEntries). */
  readonly maxMapEntries?: number;
  /** Maximum data items in the whole input (default LIMITS.maxCborItems). */
  readonly maxItems?: number;
}

interface ScanState {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  pos: number;
  items: number;
  /** The value of the text string scanned last (map keys are compared by value). */
  lastText: string;
  readonly opts: Required<CborScanOptions>;
}

const BREAK = -1;

function defaults(opts: CborScanOptions): Required<CborScanOptions> {
  return {
    maxDepth: opts.maxDepth ?? LIMITS.maxCborDepth,
    maxBytes: opts.maxBytes ?? LIMITS.maxFrameBytes,
    allowTags: opts.allowTags ?? [],
    allowIndefinite: opts.allowIndefinite ?? false,
    textKeysOnly: opts.textKeysOnly ?? true,
    uniqueKeys: opts.uniqueKeys ?? opts.textKeysOnly ?? true,
    maxStringBytes: opts.maxStringBytes ?? LIMITS.maxCborStringBytes,
    maxBytesLength: opts.maxBytesLength ?? LIMITS.maxCborBytesLength,
    maxArrayLength: opts.maxArrayLength ?? LIMITS.maxCborArrayLength,
    maxMapEntries: opts.maxMapEntries ?? LIMITS.maxCborMapEntries,
    maxItems: opts.maxItems ?? LIMITS.maxCborItems,
  };
}

function need(s: ScanState, n: number): void {
  if (s.pos + n > s.bytes.length) {
    throw new FrameError('FRAME_TRUNCATED', `CBOR ends early: need ${n} more byte(s) at offset ${s.pos}`);
  }
}

/** Reads the argument of an item head; returns -2 for "indefinite" (additional info 31). */
function readArgument(s: ScanState, ai: number): number {
  if (ai < 24) return ai;
  switch (ai) {
    case 24:
      need(s, 1);
      return s.bytes[s.pos++]!;
    case 25: {
      need(s, 2);
      const v = s.view.getUint16(s.pos);
      s.pos += 2;
      return v;
    }
    case 26: {
      need(s, 4);
      const v = s.view.getUint32(s.pos);
      s.pos += 4;
      return v;
    }
    case 27: {
      need(s, 8);
      const v = s.view.getBigUint64(s.pos);
      s.pos += 8;
      // Values above 2^53 are only meaningful as integers or floats; as lengths they exceed every limit.
      return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
    }
    case 31:
      return -2;
    default:
      throw new FrameError(
        'FRAME_MALFORMED',
        `reserved CBOR additional information ${ai} at offset ${s.pos - 1}`,
      );
  }
}

function countItem(s: ScanState): void {
  s.items += 1;
  if (s.items > s.opts.maxItems) {
    throw new FrameError('FRAME_LIMIT_EXCEEDED', `more than ${s.opts.maxItems} CBOR items`);
  }
}

/** Checks a string's (running) length against its limit; the caller then checks that its bytes are present. */
function checkLength(s: ScanState, major: number, len: number): void {
  const max = major === 2 ? s.opts.maxBytesLength : s.opts.maxStringBytes;
  if (len > max) {
    throw new FrameError(
      'FRAME_LIMIT_EXCEEDED',
      `CBOR ${major === 2 ? 'byte' : 'text'} string of ${len} bytes exceeds the limit of ${max}`,
    );
  }
}

/**
 * Scans one item; returns its major type, or BREAK for a break stop code.
 * `depth` is the nesting level of this item (top level = 1).
 */
function scanItem(s: ScanState, depth: number): number {
  if (depth > s.opts.maxDepth) {
    throw new FrameError('FRAME_TOO_DEEP', `CBOR nesting deeper than ${s.opts.maxDepth}`);
  }
  need(s, 1);
  const head = s.bytes[s.pos++]!;
  const major = head >> 5;
  const ai = head & 0x1f;
  if (major === 7 && ai === 31) return BREAK;
  countItem(s);
  const arg = readArgument(s, ai);
  const indefinite = arg === -2;
  if (indefinite && !s.opts.allowIndefinite) {
    if (major >= 2 && major <= 5) {
      throw new FrameError(
        'FRAME_MALFORMED',
        `indefinite-length CBOR item at offset ${s.pos - 1} is not allowed here`,
      );
    }
  }
  switch (major) {
    case 0:
    case 1:
      if (indefinite) throw new FrameError('FRAME_MALFORMED', 'indefinite length on a CBOR integer');
      return major;
    case 2:
    case 3: {
      if (!indefinite) {
        checkLength(s, major, arg);
        need(s, arg);
        if (major === 3) s.lastText = checkUtf8(s, arg);
        s.pos += arg;
        return major;
      }
      // Indefinite string: definite chunks of the same major type, then a break.
      let total = 0;
      let text = '';
      for (;;) {
        need(s, 1);
        const h = s.bytes[s.pos]!;
        if (h === 0xff) {
          s.pos += 1;
          if (major === 3) s.lastText = text;
          return major;
        }
        s.pos += 1;
        if (h >> 5 !== major)
          throw new FrameError('FRAME_MALFORMED', 'mixed chunk types in an indefinite string');
        const len = readArgument(s, h & 0x1f);
        if (len < 0) throw new FrameError('FRAME_MALFORMED', 'nested indefinite string chunk');
        total += len;
        checkLength(s, major, total);
        need(s, len);
        if (major === 3) text += checkUtf8(s, len);
        s.pos += len;
        countItem(s);
      }
    }
    case 4: {
      if (!indefinite && arg > s.opts.maxArrayLength) {
        throw new FrameError(
          'FRAME_LIMIT_EXCEEDED',
          `CBOR array of ${arg} elements exceeds ${s.opts.maxArrayLength}`,
        );
      }
      let n = 0;
      for (;;) {
        if (!indefinite && n === arg) return major;
        const m = scanItem(s, depth + 1);
        if (m === BREAK) {
          if (indefinite) return major;
          throw new FrameError('FRAME_MALFORMED', 'unexpected CBOR break inside a definite array');
        }
        n += 1;
        if (n > s.opts.maxArrayLength) {
          throw new FrameError('FRAME_LIMIT_EXCEEDED', `CBOR array longer than ${s.opts.maxArrayLength}`);
        }
      }
    }
    case 5: {
      if (!indefinite && arg > s.opts.maxMapEntries) {
        throw new FrameError(
          'FRAME_LIMIT_EXCEEDED',
          `CBOR map of ${arg} entries exceeds ${s.opts.maxMapEntries}`,
        );
      }
      let n = 0;
      const seen = new Set<string>();
      for (;;) {
        if (!indefinite && n === arg) return major;
        const keyStart = s.pos;
        const k = scanItem(s, depth + 1);
        if (k === BREAK) {
          if (indefinite) return major;
          throw new FrameError('FRAME_MALFORMED', 'unexpected CBOR break inside a definite map');
        }
        if (s.opts.textKeysOnly && k !== 3) {
          throw new FrameError('FRAME_MALFORMED', 'CBOR map keys must be text strings');
        }
        if (s.opts.uniqueKeys) {
          /* Precondition: map keys are unique (by value, whatever their encoding) and none is "__proto__". */
          const key = keyIdentity(s, keyStart, k);
          if (key === 't:__proto__') {
            throw new FrameError(
              'FRAME_MALFORMED',
              `CBOR map key "__proto__" at offset ${keyStart} is not allowed`,
            );
          }
          if (seen.has(key)) {
            throw new FrameError('FRAME_MALFORMED', `duplicate CBOR map key at offset ${keyStart}`);
          }
          seen.add(key);
        }
        const v = scanItem(s, depth + 1);
        if (v === BREAK) throw new FrameError('FRAME_MALFORMED', 'CBOR map key without a value');
        n += 1;
        if (n > s.opts.maxMapEntries) {
          throw new FrameError('FRAME_LIMIT_EXCEEDED', `CBOR map larger than ${s.opts.maxMapEntries}`);
        }
      }
    }
    case 6: {
      if (indefinite) throw new FrameError('FRAME_MALFORMED', 'indefinite length on a CBOR tag');
      if (!s.opts.allowTags.includes(arg)) {
        throw new FrameError('FRAME_MALFORMED', `CBOR tag ${arg} is not allowed here`);
      }
      const m = scanItem(s, depth + 1);
      if (m === BREAK) throw new FrameError('FRAME_MALFORMED', 'CBOR tag without content');
      return major;
    }
    default: {
      // Major 7: simple values and floats. ai 24 is a one-byte simple value, which must be >= 32.
      if (ai === 24 && arg < 32) throw new FrameError('FRAME_MALFORMED', 'non-canonical CBOR simple value');
      if (indefinite) throw new FrameError('FRAME_MALFORMED', 'unexpected CBOR break');
      return major;
    }
  }
}

/**
 * A map key's identity for the duplicate check: text by its value (so an indefinite-length spelling of a key
 * equals the definite one), integers by their value (so 0x01 equals the non-canonical 0x18 0x01), anything else
 * by its bytes.
 */
function keyIdentity(s: ScanState, start: number, major: number): string {
  if (major === 3) return `t:${s.lastText}`;
  if (major === 0 || major === 1) {
    const ai = s.bytes[start]! & 0x1f;
    const view = s.view;
    const value =
      ai < 24
        ? BigInt(ai)
        : ai === 24
          ? BigInt(s.bytes[start + 1]!)
          : ai === 25
            ? BigInt(view.getUint16(start + 1))
            : ai === 26
              ? BigInt(view.getUint32(start + 1))
              : view.getBigUint64(start + 1);
    return `i:${major}:${value}`;
  }
  let hex = '';
  for (let i = start; i < s.pos; i++) hex += s.bytes[i]!.toString(16).padStart(2, '0');
  return `r:${hex}`;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Validates and returns the text string of `len` bytes at the current position. */
function checkUtf8(s: ScanState, len: number): string {
  try {
    return utf8.decode(s.bytes.subarray(s.pos, s.pos + len));
  } catch (cause) {
    throw new FrameError('FRAME_MALFORMED', `CBOR text string at offset ${s.pos} is not valid UTF-8`, {
      cause,
    });
  }
}

/**
 * Checks that `bytes` hold exactly one well-formed CBOR item within the limits. Reads heads only.
 * @throws FrameError FRAME_TOO_LARGE, FRAME_TRUNCATED, FRAME_MALFORMED (also for a repeated or "__proto__" map
 *   key), FRAME_TOO_DEEP, FRAME_TRAILING_BYTES, FRAME_LIMIT_EXCEEDED
 */
export function scanCbor(bytes: Uint8Array, options: CborScanOptions = {}): void {
  const opts = defaults(options);
  if (bytes.length > opts.maxBytes) {
    throw new FrameError('FRAME_TOO_LARGE', `${bytes.length} bytes exceed the limit of ${opts.maxBytes}`);
  }
  if (bytes.length === 0)
    throw new FrameError('FRAME_TRUNCATED', 'empty input where a CBOR item was expected');
  const s: ScanState = {
    bytes,
    view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    pos: 0,
    items: 0,
    lastText: '',
    opts,
  };
  const m = scanItem(s, 1);
  if (m === BREAK) throw new FrameError('FRAME_MALFORMED', 'CBOR break at top level');
  if (s.pos !== bytes.length) {
    throw new FrameError('FRAME_TRAILING_BYTES', `${bytes.length - s.pos} byte(s) after the CBOR item`);
  }
}

/** Decoder options that match what real attestation documents and our protocol carry (design §7). */
const decoderOptions = {
  useRecords: false,
  tagUint8Array: false,
  useTag259ForMaps: false,
  int64AsNumber: false,
} as const;

const objectDecoder = new Decoder({ ...decoderOptions, mapsAsObjects: true });
const mapDecoder = new Decoder({ ...decoderOptions, mapsAsObjects: false });

/** Options for `decodeCbor`. */
export interface CborDecodeOptions extends CborScanOptions {
  /** Decode maps as JS `Map` (keeps non-string keys and key types) instead of plain objects. */
  readonly maps?: boolean;
}

/**
 * Scans, then decodes one CBOR item. Byte strings come back as `Uint8Array` views copied out of the
 * input (so the caller may zero the input).
 * @throws FrameError (see `scanCbor`)
 */
export function decodeCbor(bytes: Uint8Array, options: CborDecodeOptions = {}): unknown {
  scanCbor(bytes, options);
  const copy = copyBytes(bytes);
  try {
    return (options.maps === true ? mapDecoder : objectDecoder).decode(copy);
  } catch (cause) {
    // The scan accepted it, so this is a cbor-x limitation; still a typed error, never a crash.
    throw new FrameError('FRAME_MALFORMED', 'CBOR could not be decoded', { cause });
  }
}

const encoder = new Encoder({
  useRecords: false,
  mapsAsObjects: true,
  tagUint8Array: false,
  useTag259ForMaps: false,
  variableMapSize: true,
  useFloat32: 0,
} as ConstructorParameters<typeof Encoder>[0]);

/** Encodes a value as CBOR (maps from plain objects, `Uint8Array` as byte strings, no tags). */
export function encodeCbor(value: unknown): Uint8Array {
  // cbor-x may return a view of its reusable buffer: copy so the result is ours alone.
  return copyBytes(encoder.encode(value));
}
