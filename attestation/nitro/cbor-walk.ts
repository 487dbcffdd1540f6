/**
 * Reading the item heads of CBOR that `shared/cbor.ts` has already scanned (RFC 8949 §3).
 *
 * Why: `cbor-x` hands back values, not encodings, so after decoding one cannot tell a uint from an
 * integral float (`timestamp`, PCR indexes), nor see a duplicated map key (a `Map` keeps the last).
 * This walker lists the entries of one map with the major type of each key and value, so the parser
 * can check types and count entries. It allocates nothing but the entry list and never decodes values.
 *
 * It is only called on bytes that passed `scanCbor` (well-formed, bounded depth and lengths); a head
 * that runs past the input still ends in a typed error, never a crash.
 */
import { AttestationError } from '../errors.js';

/** One entry of a map: where its key and value start and end, and their major types. */
export interface CborMapEntry {
  readonly keyMajor: number;
  readonly keyStart: number;
  readonly valueMajor: number;
  /** Additional information of the value's head (for major 7: 22 = null, 23 = undefined). */
  readonly valueInfo: number;
  readonly valueStart: number;
  readonly valueEnd: number;
}

interface Head {
  readonly major: number;
  readonly info: number;
  /** The argument, or -1 for an indefinite length. */
  readonly arg: number;
  readonly next: number;
}

function broken(pos: number): AttestationError {
  return new AttestationError('EVIDENCE_MALFORMED', `CBOR item head at offset ${pos} runs past the input`);
}

function readHead(bytes: Uint8Array, pos: number): Head {
  if (pos >= bytes.length) throw broken(pos);
  const first = bytes[pos]!;
  const major = first >> 5;
  const info = first & 0x1f;
  if (info < 24) return { major, info, arg: info, next: pos + 1 };
  if (info === 31) return { major, info, arg: -1, next: pos + 1 };
  const size = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0;
  if (size === 0 || pos + 1 + size > bytes.length) throw broken(pos);
  let arg = 0;
  for (let i = 1; i <= size; i++) arg = arg * 256 + bytes[pos + i]!;
  return { major, info, arg, next: pos + 1 + size };
}

/** Offset just past the item starting at `pos`. */
function skipItem(bytes: Uint8Array, pos: number): number {
  const head = readHead(bytes, pos);
  const { major, arg } = head;
  let p = head.next;
  switch (major) {
    case 0:
    case 1:
    case 7:
      return p;
    case 2:
    case 3:
      if (arg >= 0) {
        if (p + arg > bytes.length) throw broken(pos);
        return p + arg;
      }
      while (bytes[p] !== 0xff) p = skipItem(bytes, p);
      return p + 1;
    case 4:
    case 5: {
      const per = major === 5 ? 2 : 1;
      if (arg >= 0) {
        for (let i = 0; i < arg * per; i++) p = skipItem(bytes, p);
        return p;
      }
      while (bytes[p] !== 0xff) {
        if (p >= bytes.length) throw broken(p);
        p = skipItem(bytes, p);
      }
      return p + 1;
    }
    default:
      // Tag: its content follows.
      return skipItem(bytes, p);
  }
}

/**
 * Lists the entries of the map starting at `pos` (definite or indefinite length).
 * @throws AttestationError EVIDENCE_MALFORMED when the item at `pos` is not a map.
 */
export function cborMapEntries(bytes: Uint8Array, pos = 0): CborMapEntry[] {
  const head = readHead(bytes, pos);
  if (head.major !== 5) {
    throw new AttestationError(
      'EVIDENCE_MALFORMED',
      `expected a CBOR map at offset ${pos}, found major type ${head.major}`,
    );
  }
  const entries: CborMapEntry[] = [];
  let p = head.next;
  for (let i = 0; head.arg < 0 || i < head.arg; i++) {
    if (head.arg < 0 && bytes[p] === 0xff) break;
    const keyStart = p;
    const keyMajor = readHead(bytes, p).major;
    const valueStart = skipItem(bytes, p);
    const valueHead = readHead(bytes, valueStart);
    const valueEnd = skipItem(bytes, valueStart);
    entries.push({
      keyMajor,
      keyStart,
      valueMajor: valueHead.major,
      valueInfo: valueHead.info,
      valueStart,
      valueEnd,
    });
    p = valueEnd;
  }
  return entries;
}
