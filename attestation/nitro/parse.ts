/**
 * `parseNitroDocument`: the structure of an AWS Nitro attestation document (style §2, stage 1).
 * Nothing is authenticated here; see verify.ts.
 *
 * Spec: RFC 9052 §4.2 (COSE_Sign1 = [protected: bstr, unprotected: map, payload: bstr, signature: bstr],
 * optionally CBOR tag 18); aws/aws-nitro-enclaves-nsm-api docs/attestation_process.md §2.2 (CDDL) and
 * §3.2.2 (syntactical validation), which this parser follows with these readings:
 * - protected header = {1: -35} (ES384) only, encoded a1 01 38 22 (as in every real document); the
 *   unprotected header is empty (AWS §3.1);
 * - signature: exactly 96 bytes (ES384 r ‖ s; the "32/48/64" in AWS §3.1 cannot hold an ES384 signature);
 * - module_id: non-empty text; digest: "SHA384"; timestamp: uint > 0 (ms), within JavaScript's Date range;
 * - pcrs: 1..32 entries, uint index 0..31 → bstr of 32, 48 or 64 bytes; this library also requires
 *   PCR0, PCR1 and PCR2, which its claims (measurement, debug) are made of;
 * - certificate and each cabundle entry: bstr of 1..1024 bytes (CDDL `cert`); cabundle: 1..8 entries
 *   (LIMITS.maxNitroCabundle; AWS documents carry 4);
 * - public_key, user_data, nonce: absent, null, or bstr of at most 1024 bytes. The CDDL says 0..1024 for
 *   all three; §3.2.2.2's 512 for user_data and nonce is contradicted by the NSM API, which accepts
 *   1024, and by real documents that carry 1024 (vectors blocky-1/2). Real documents encode an absent
 *   field as null, which §3.2.2.1's "no field content can be null" does not reflect;
 * - no other key, no duplicate key; the payload map may be definite or indefinite length.
 */
import { decodeCbor } from '../../shared/cbor.js';
import { FrameError } from '../../shared/errors.js';
import { LIMITS } from '../../shared/limits.js';
import { AttestationError, type AttestationErrorCode } from '../errors.js';
import { type CborMapEntry, cborMapEntries } from './cbor-walk.js';
import { COSE_ALG_ES384, ES384_PROTECTED_HEADER, ES384_SIGNATURE_BYTES } from './cose.js';
import type { NitroEvidence } from './types.js';

/** Largest DER certificate in a document (CDDL `cert = bytes .size (1..1024)`). */
export const NITRO_MAX_CERTIFICATE_BYTES = 1024;
/** PCR value lengths AWS allows. */
export const NITRO_PCR_LENGTHS: readonly number[] = [32, 48, 64];
/** PCRs this library requires (its claims are made of them). */
export const NITRO_REQUIRED_PCRS: readonly number[] = [0, 1, 2];
/** The latest instant a JavaScript Date can hold, in ms (ECMA-262 §21.4.1.22). */
const MAX_DATE_MS = 8_640_000_000_000_000;

const REQUIRED_FIELDS = ['module_id', 'digest', 'timestamp', 'pcrs', 'certificate', 'cabundle'] as const;
const OPTIONAL_FIELDS = ['public_key', 'user_data', 'nonce'] as const;
const KNOWN_FIELDS = new Set<string>([...REQUIRED_FIELDS, ...OPTIONAL_FIELDS]);

const MAJOR_UINT = 0;
const MAJOR_BYTES = 2;
const MAJOR_TEXT = 3;
const MAJOR_ARRAY = 4;
const MAJOR_MAP = 5;
const MAJOR_SIMPLE = 7;
const SIMPLE_NULL = 22;

function fieldError(
  field: string,
  why: string,
  code: AttestationErrorCode = 'EVIDENCE_FIELD_INVALID',
): AttestationError {
  return new AttestationError(code, `Nitro document field "${field}": ${why}`, { details: { field } });
}

const FRAME_TO_EVIDENCE: Readonly<Record<string, AttestationErrorCode>> = {
  FRAME_TOO_LARGE: 'EVIDENCE_TOO_LARGE',
  FRAME_TRUNCATED: 'EVIDENCE_TRUNCATED',
  FRAME_TRAILING_BYTES: 'EVIDENCE_TRAILING_BYTES',
};

/** Decodes with the shared bounded decoder; its FrameErrors become EVIDENCE_* codes. */
function decode(bytes: Uint8Array, what: string, allowIndefinite: boolean): unknown {
  try {
    return decodeCbor(bytes, {
      maps: true,
      textKeysOnly: false,
      allowIndefinite,
      maxBytes: LIMITS.maxEvidenceBytes,
      maxBytesLength: LIMITS.maxEvidenceBytes,
    });
  } catch (cause) {
    if (cause instanceof FrameError) {
      const code = FRAME_TO_EVIDENCE[cause.code] ?? 'EVIDENCE_MALFORMED';
      throw new AttestationError(code, `${what}: ${cause.message}`, { cause });
    }
    throw cause;
  }
}

const copy = (b: Uint8Array): Uint8Array => Uint8Array.prototype.slice.call(b);
const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;

function parseProtectedHeader(bytes: Uint8Array): void {
  const header = decode(bytes, 'COSE_Sign1 protected header', false);
  /* Precondition: the protected header is a map. */
  if (!(header instanceof Map))
    throw fieldError('protected', 'the protected header is not a CBOR map', 'EVIDENCE_MALFORMED');
  /* Precondition: the protected header is exactly {1: -35} (alg ES384). */
  if (header.size !== 1 || header.get(1) !== COSE_ALG_ES384) {
    const alg = header.get(1);
    throw fieldError(
      'protected',
      `the protected header must be {1: -35} (ES384); it names alg ${alg === undefined ? '(none)' : String(alg)}` +
        `${header.size > 1 ? ` with ${header.size - 1} other parameter(s)` : ''}`,
      'EVIDENCE_ALGORITHM_UNSUPPORTED',
    );
  }
  /*
   * Precondition: the protected header is encoded exactly as a1 01 38 22. The checks above read the
   * decoded map, which hides a duplicated key (cbor-x keeps the last of {1: -7, 1: -35}), a float -35.0
   * or a non-shortest head; a reader keeping the first key would see another algorithm.
   */
  if (!Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).equals(ES384_PROTECTED_HEADER)) {
    throw fieldError(
      'protected',
      `the protected header must be encoded as a1013822 ({1: -35}, shortest form, no duplicate key); ` +
        `got ${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')}`,
      'EVIDENCE_MALFORMED',
    );
  }
}

function boundedBytes(
  field: string,
  value: unknown,
  entry: CborMapEntry,
  min: number,
  max: number,
): Uint8Array {
  /* Precondition: the field is a byte string of bounded length. */
  if (entry.valueMajor !== MAJOR_BYTES || !isBytes(value)) throw fieldError(field, 'expected a byte string');
  if (value.length < min || value.length > max) {
    throw fieldError(field, `${value.length} bytes, expected ${min}..${max}`);
  }
  return copy(value);
}

function optionalBytes(field: string, value: unknown, entry: CborMapEntry | undefined): Uint8Array | null {
  if (entry === undefined) return null;
  if (entry.valueMajor === MAJOR_SIMPLE && entry.valueInfo === SIMPLE_NULL && value === null) return null;
  /* Precondition: public_key, user_data and nonce are null or at most 1024 bytes. */
  return boundedBytes(field, value, entry, 0, LIMITS.maxNitroOptionalFieldBytes);
}

function parsePcrs(payload: Uint8Array, entry: CborMapEntry, value: unknown): Map<number, Uint8Array> {
  /* Precondition: pcrs is a map. */
  if (entry.valueMajor !== MAJOR_MAP || !(value instanceof Map)) throw fieldError('pcrs', 'expected a map');
  const entries = cborMapEntries(payload, entry.valueStart);
  /* Precondition: no PCR index appears twice. */
  if (entries.length !== value.size)
    throw fieldError('pcrs', 'a PCR index appears more than once', 'EVIDENCE_MALFORMED');
  /* Precondition: 1..32 PCRs (AWS §3.2.2.2). */
  if (value.size < 1 || value.size > LIMITS.maxNitroPcrs) {
    throw fieldError('pcrs', `${value.size} PCRs, expected 1..${LIMITS.maxNitroPcrs}`);
  }
  const pcrs = new Map<number, Uint8Array>();
  let i = 0;
  for (const [index, pcr] of value) {
    const e = entries[i++]!;
    /* Precondition: PCR indexes are unsigned integers 0..31. */
    if (e.keyMajor !== MAJOR_UINT || typeof index !== 'number' || index < 0 || index >= LIMITS.maxNitroPcrs) {
      throw fieldError(
        'pcrs',
        `PCR index ${String(index)} is not an unsigned integer in 0..${LIMITS.maxNitroPcrs - 1}`,
      );
    }
    /* Precondition: PCR values are byte strings of 32, 48 or 64 bytes. */
    if (e.valueMajor !== MAJOR_BYTES || !isBytes(pcr) || !NITRO_PCR_LENGTHS.includes(pcr.length)) {
      throw fieldError(
        'pcrs',
        `PCR${index} must be a byte string of ${NITRO_PCR_LENGTHS.join('/')} bytes` +
          `${isBytes(pcr) ? `, got ${pcr.length}` : ''}`,
      );
    }
    pcrs.set(index, copy(pcr));
  }
  for (const required of NITRO_REQUIRED_PCRS) {
    /* Precondition: PCR0, PCR1 and PCR2 are present (measurement and debug are made of them). */
    if (!pcrs.has(required)) throw fieldError('pcrs', `PCR${required} is missing`);
  }
  return pcrs;
}

function parseTimestamp(entry: CborMapEntry, value: unknown): number {
  /* Precondition: timestamp is an unsigned integer (not a float, not negative). */
  if (entry.valueMajor !== MAJOR_UINT || (typeof value !== 'number' && typeof value !== 'bigint')) {
    throw fieldError('timestamp', 'expected an unsigned integer (milliseconds since the epoch)');
  }
  /* Precondition: 0 < timestamp ≤ the last instant a Date can hold. */
  if (value <= 0 || value > MAX_DATE_MS) throw fieldError('timestamp', `${String(value)} is out of range`);
  return Number(value);
}

/**
 * Parses the structure of a Nitro attestation document (COSE_Sign1, tagged or untagged).
 * @throws AttestationError EVIDENCE_TOO_LARGE, EVIDENCE_TRUNCATED, EVIDENCE_TRAILING_BYTES,
 *   EVIDENCE_MALFORMED (not CBOR / not COSE_Sign1 / duplicate keys), EVIDENCE_ALGORITHM_UNSUPPORTED
 *   (protected header other than ES384, digest other than SHA384), EVIDENCE_FIELD_INVALID (a field
 *   missing, unknown, of the wrong type or out of bounds; `details.field` names it)
 */
export function parseNitroDocument(bytes: Uint8Array): NitroEvidence {
  /* Precondition: the input is bytes. */
  if (!(bytes instanceof Uint8Array))
    throw new AttestationError('EVIDENCE_MALFORMED', 'a Nitro document must be bytes');
  /* Precondition: the document is bounded before it is decoded. */
  if (bytes.length > LIMITS.maxEvidenceBytes) {
    throw new AttestationError(
      'EVIDENCE_TOO_LARGE',
      `Nitro document of ${bytes.length} bytes exceeds the limit of ${LIMITS.maxEvidenceBytes}`,
    );
  }
  if (bytes.length === 0) throw new AttestationError('EVIDENCE_TRUNCATED', 'empty Nitro document');
  const own = copy(bytes);
  // Tag 18 in its one-byte form (0xd2); AWS's own documents are untagged.
  const tagged = own[0] === 0xd2;
  const outer = decode(tagged ? own.subarray(1) : own, 'COSE_Sign1', false);
  /* Precondition: the document is a COSE_Sign1 array of four items. */
  if (!Array.isArray(outer) || outer.length !== 4) {
    throw new AttestationError('EVIDENCE_MALFORMED', 'a Nitro document is a COSE_Sign1: an array of 4 items');
  }
  const [protectedHeader, unprotected, payload, signature] = outer as unknown[];
  /* Precondition: the protected header is a byte string. */
  if (!isBytes(protectedHeader))
    throw fieldError('protected', 'expected a byte string', 'EVIDENCE_MALFORMED');
  parseProtectedHeader(protectedHeader);
  /* Precondition: the unprotected header is an empty map (AWS §3.1). */
  if (!(unprotected instanceof Map) || unprotected.size !== 0) {
    throw fieldError('unprotected', 'expected an empty map');
  }
  /* Precondition: the payload is attached (a non-empty byte string). */
  if (!isBytes(payload) || payload.length === 0)
    throw fieldError('payload', 'expected a non-empty byte string');
  /* Precondition: the signature is 96 bytes (ES384 r ‖ s). */
  if (!isBytes(signature) || signature.length !== ES384_SIGNATURE_BYTES) {
    throw fieldError(
      'signature',
      `expected a byte string of ${ES384_SIGNATURE_BYTES} bytes${isBytes(signature) ? `, got ${signature.length}` : ''}`,
    );
  }

  const body = copy(payload);
  const map = decode(body, 'Nitro payload', true);
  /* Precondition: the payload is a map. */
  if (!(map instanceof Map))
    throw new AttestationError('EVIDENCE_MALFORMED', 'the Nitro payload is not a CBOR map');
  const entries = cborMapEntries(body, 0);
  /* Precondition: no payload key appears twice. */
  if (entries.length !== map.size) {
    throw new AttestationError('EVIDENCE_MALFORMED', 'the Nitro payload has a duplicate key');
  }
  const fields = new Map<string, { value: unknown; entry: CborMapEntry }>();
  let i = 0;
  for (const [key, value] of map) {
    const entry = entries[i++]!;
    /* Precondition: payload keys are text strings. */
    if (entry.keyMajor !== MAJOR_TEXT || typeof key !== 'string') {
      throw new AttestationError(
        'EVIDENCE_FIELD_INVALID',
        `Nitro payload key ${String(key)} is not a text string`,
        {
          details: { field: String(key) },
        },
      );
    }
    /* Precondition: no unknown payload key (fail closed). */
    if (!KNOWN_FIELDS.has(key)) throw fieldError(key, 'unknown field');
    fields.set(key, { value, entry });
  }
  for (const name of REQUIRED_FIELDS) {
    /* Precondition: every required field is present. */
    if (!fields.has(name)) throw fieldError(name, 'missing');
  }
  const get = (name: string): { value: unknown; entry: CborMapEntry } => fields.get(name)!;

  const moduleId = get('module_id');
  /* Precondition: module_id is a non-empty text string. */
  if (
    moduleId.entry.valueMajor !== MAJOR_TEXT ||
    typeof moduleId.value !== 'string' ||
    moduleId.value.length === 0
  ) {
    throw fieldError('module_id', 'expected a non-empty text string');
  }
  const digest = get('digest');
  /* Precondition: digest is a text string. */
  if (digest.entry.valueMajor !== MAJOR_TEXT || typeof digest.value !== 'string') {
    throw fieldError('digest', 'expected a text string');
  }
  /* Precondition: digest is "SHA384", the only digest AWS defines. */
  if (digest.value !== 'SHA384') {
    throw fieldError(
      'digest',
      `"${digest.value}" is not supported (only SHA384)`,
      'EVIDENCE_ALGORITHM_UNSUPPORTED',
    );
  }
  const timestamp = parseTimestamp(get('timestamp').entry, get('timestamp').value);
  const pcrs = parsePcrs(body, get('pcrs').entry, get('pcrs').value);
  const certificate = boundedBytes(
    'certificate',
    get('certificate').value,
    get('certificate').entry,
    1,
    NITRO_MAX_CERTIFICATE_BYTES,
  );
  const cabundleField = get('cabundle');
  /* Precondition: cabundle is an array of 1..8 entries. */
  if (cabundleField.entry.valueMajor !== MAJOR_ARRAY || !Array.isArray(cabundleField.value)) {
    throw fieldError('cabundle', 'expected an array');
  }
  const list = cabundleField.value as unknown[];
  if (list.length < 1 || list.length > LIMITS.maxNitroCabundle) {
    throw fieldError('cabundle', `${list.length} certificates, expected 1..${LIMITS.maxNitroCabundle}`);
  }
  const cabundle = list.map((cert, k) => {
    /* Precondition: each cabundle entry is a byte string of 1..1024 bytes. */
    if (!isBytes(cert) || cert.length < 1 || cert.length > NITRO_MAX_CERTIFICATE_BYTES) {
      throw fieldError(`cabundle[${k}]`, `expected a byte string of 1..${NITRO_MAX_CERTIFICATE_BYTES} bytes`);
    }
    return copy(cert);
  });

  return {
    type: 'nitro',
    bytes: own,
    tagged,
    protectedHeader: copy(protectedHeader),
    payload: body,
    signature: copy(signature),
    moduleId: moduleId.value,
    digest: 'SHA384',
    timestamp,
    pcrs,
    certificate,
    cabundle,
    publicKey: optionalBytes('public_key', fields.get('public_key')?.value, fields.get('public_key')?.entry),
    userData: optionalBytes('user_data', fields.get('user_data')?.value, fields.get('user_data')?.entry),
    nonce: optionalBytes('nonce', fields.get('nonce')?.value, fields.get('nonce')?.entry),
  };
}
