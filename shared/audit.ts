/**
 * The tamper-evident audit log (design §4 "Audit"; docs/audit.md): its record format, canonical encoding, hash
 * chain and checkpoint signatures, and the verifier `verifyAuditLog`. No I/O (style §13): the enclave's writer is
 * enclave/audit/audit-log.ts, the host appends lines it cannot read the meaning of (host/audit-sink.ts), and
 * `ekms audit verify` (client/cli/audit.ts) reads the file and supplies the boot-evidence check.
 *
 * Format (version 1). One record per line (JSONL): the canonical JSON text of the record, UTF-8, then "\n".
 * Canonical = `JSON.stringify` of an object with exactly the fields of its kind, in the order listed here, no
 * whitespace; the verifier re-encodes every record and refuses a line that differs (AUDIT_RECORD_MALFORMED), so
 * each record has exactly one byte form. Every record starts with
 *
 *   v:1, seq (0, 1, 2…), time (ISO-8601 UTC, ms), kind ("event" | "boot" | "checkpoint"),
 *   prev = hex SHA-256 of the previous line's exact bytes (without its "\n"); 64 zeros for seq 0
 *
 *   event:      principal, authentication, attested {type, measurement} | null, operation, keyId, keyVersion,
 *               contextDigest (hex SHA-256 of the canonical encryption context), outcome, code, requestId
 *   boot:       identity (hex Ed25519 public key of this enclave run), evidence {type, document (base64),
 *               certificates [PEM…]} binding it, resumed (the checkpoint line the run continues from) | null
 *   checkpoint: reason, head (= prev: the hash of the line before), count (events in the chain so far),
 *               signature = Ed25519(identity, "ekms-audit-v1 checkpoint" ‖ canonical checkpoint without signature)
 *
 * A checkpoint signs the head of the chain, hence every line before it. Records after the last checkpoint are
 * chained but not signed: a host can drop or rewrite them until the next checkpoint or boot (docs/audit.md §5).
 */
import { createHash, createPublicKey, verify } from 'node:crypto';
import { AuditError, type AuditErrorCode } from './audit-errors.js';
import { LIMITS } from './limits.js';
import type { EvidenceBundle } from './session.js';

/** The only record format version this build writes and reads. */
export const AUDIT_FORMAT_VERSION = 1;
/** `prev` of the first record (seq 0). */
export const AUDIT_GENESIS_PREV = '0'.repeat(64);
/** Domain separation of checkpoint signatures. */
export const AUDIT_CHECKPOINT_LABEL = 'ekms-audit-v1 checkpoint';
/** Events between two checkpoints, by default. */
export const DEFAULT_CHECKPOINT_EVERY = 64;

/**
 * Bounds of audit records (style §6; candidates for shared/limits.ts). A boot record is the largest: evidence of
 * up to LIMITS.maxEvidenceBytes in base64 (4/3), up to 4 PEM certificates of 8 KiB, and the resumed checkpoint.
 */
export const AUDIT_LIMITS = {
  /** Longest line, in UTF-8 bytes (without "\n"). */
  maxLineBytes: 128 * 1024,
  /** Longest resumed checkpoint line embedded in a boot record. */
  maxCheckpointLineBytes: 4 * 1024,
  /** Principal names and key ids, in UTF-16 code units. */
  maxNameChars: 512,
  /** Operation names. */
  maxOperationChars: 128,
  /** Request ids. */
  maxRequestIdChars: 128,
  /** Certificates in a boot record's evidence, and characters per PEM certificate. */
  maxEvidenceCertificates: 4,
  maxCertificateChars: 8 * 1024,
} as const;

/** How the caller of an operation was authenticated. */
export const AUDIT_AUTHENTICATIONS = ['none', 'signature', 'attestation', 'signature+attestation'] as const;
export type AuditAuthentication = (typeof AUDIT_AUTHENTICATIONS)[number];
export const AUDIT_OUTCOMES = ['allowed', 'denied', 'error'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];
/** Why a checkpoint was written: right after a boot record, every N events, on request, on clean shutdown. */
export const AUDIT_CHECKPOINT_REASONS = ['boot', 'interval', 'requested', 'shutdown'] as const;
export type AuditCheckpointReason = (typeof AUDIT_CHECKPOINT_REASONS)[number];

/** The attested identity of a workload caller, from its verified claims. */
export interface AuditAttested {
  readonly type: 'nitro' | 'sev-snp';
  /** Launch measurement (SHA-384, 96 hex digits). */
  readonly measurement: string;
}

interface AuditRecordBase {
  readonly v: 1;
  readonly seq: number;
  readonly time: string;
  readonly prev: string;
}

export interface AuditEventRecord extends AuditRecordBase {
  readonly kind: 'event';
  readonly principal: string | null;
  readonly authentication: AuditAuthentication;
  readonly attested: AuditAttested | null;
  readonly operation: string;
  readonly keyId: string | null;
  readonly keyVersion: number | null;
  readonly contextDigest: string | null;
  readonly outcome: AuditOutcome;
  /** The error code of a denial or an error; null when allowed. */
  readonly code: string | null;
  readonly requestId: string | null;
}

/** Evidence as a boot record carries it: the document in standard base64, the PEM certificates as they are. */
export interface AuditEvidence {
  readonly type: 'nitro' | 'sev-snp';
  readonly document: string;
  readonly certificates: readonly string[];
}

export interface AuditBootRecord extends AuditRecordBase {
  readonly kind: 'boot';
  /** The run's Ed25519 identity public key (32 bytes, hex). */
  readonly identity: string;
  readonly evidence: AuditEvidence;
  /** The exact checkpoint line the run continues from (seq - 1), or null for a new chain (seq 0). */
  readonly resumed: string | null;
}

export interface AuditCheckpointRecord extends AuditRecordBase {
  readonly kind: 'checkpoint';
  readonly reason: AuditCheckpointReason;
  /** Hash of the previous line (equal to `prev`; signed as the chain head). */
  readonly head: string;
  /** Event records in the chain from seq 0 up to this checkpoint. */
  readonly count: number;
  /** Ed25519 signature (64 bytes, hex). */
  readonly signature: string;
}

export type AuditRecord = AuditEventRecord | AuditBootRecord | AuditCheckpointRecord;
export type AuditCheckpointUnsigned = Omit<AuditCheckpointRecord, 'signature'>;

/** A position in the chain: a record's seq and the hash of its line. */
export interface AuditHead {
  readonly seq: number;
  readonly hash: string;
}

// ------------------------------------------------------------------------------------------ validation

const HEX64 = /^[0-9a-f]{64}$/;
const HEX96 = /^[0-9a-f]{96}$/;
const HEX128 = /^[0-9a-f]{128}$/;
const CODE = /^[A-Z][A-Z0-9_]{0,63}$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const PEM = /^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n?$/;

const FIELDS = {
  event: [
    'v',
    'seq',
    'time',
    'kind',
    'prev',
    'principal',
    'authentication',
    'attested',
    'operation',
    'keyId',
    'keyVersion',
    'contextDigest',
    'outcome',
    'code',
    'requestId',
  ],
  boot: ['v', 'seq', 'time', 'kind', 'prev', 'identity', 'evidence', 'resumed'],
  checkpoint: ['v', 'seq', 'time', 'kind', 'prev', 'reason', 'head', 'count', 'signature'],
} as const;

/** Where a record is, for error messages and details. */
interface Where {
  readonly line?: number;
  seq?: number;
}

function at(where: Where): string {
  const parts: string[] = [];
  if (where.seq !== undefined) parts.push(`seq ${where.seq}`);
  if (where.line !== undefined) parts.push(`line ${where.line}`);
  return parts.length > 0 ? `record ${parts.join(', ')}` : 'record';
}

function fail(code: AuditErrorCode, where: Where, message: string, cause?: unknown): AuditError {
  return new AuditError(code, `${at(where)}: ${message}`, {
    details: {
      ...(where.seq !== undefined ? { seq: where.seq } : {}),
      ...(where.line ? { line: where.line } : {}),
    },
    ...(cause === undefined ? {} : { cause }),
  });
}

function malformed(where: Where, message: string, cause?: unknown): AuditError {
  return fail('AUDIT_RECORD_MALFORMED', where, message, cause);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/* Precondition: a record (and each nested object) has exactly the fields of its kind (fail closed, style §4). */
function exactKeys(o: Record<string, unknown>, keys: readonly string[], what: string, where: Where): void {
  for (const k of Object.keys(o)) {
    if (!keys.includes(k)) throw malformed(where, `${what} has an unknown field "${k.slice(0, 40)}"`);
  }
  for (const k of keys) if (!Object.hasOwn(o, k)) throw malformed(where, `${what} lacks the field "${k}"`);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function text(o: Record<string, unknown>, k: string, max: number, where: Where): string {
  const v = o[k];
  if (typeof v !== 'string' || v.length === 0 || v.length > max) {
    throw malformed(where, `${k} must be a string of 1..${max} characters`);
  }
  return v;
}

function nullableText(o: Record<string, unknown>, k: string, max: number, where: Where): string | null {
  return o[k] === null ? null : text(o, k, max, where);
}

function matching(o: Record<string, unknown>, k: string, re: RegExp, what: string, where: Where): string {
  const v = o[k];
  if (typeof v !== 'string' || !re.test(v)) throw malformed(where, `${k} must be ${what}`);
  return v;
}

function hex(o: Record<string, unknown>, k: string, re: RegExp, what: string, where: Where): string {
  return matching(o, k, re, `${what} in lowercase hex`, where);
}

function oneOf<T extends string>(
  o: Record<string, unknown>,
  k: string,
  values: readonly T[],
  where: Where,
): T {
  const v = o[k];
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
    throw malformed(where, `${k} must be one of ${values.join(', ')}`);
  }
  return v as T;
}

/** The last time string checkTime accepted: records written within the same millisecond skip the parse. */
let lastValidTime: string | undefined;

function checkTime(o: Record<string, unknown>, where: Where): string {
  const v = o['time'];
  if (typeof v === 'string' && v === lastValidTime) return v;
  /* Precondition: time is an ISO-8601 UTC instant with milliseconds, as Date#toISOString writes it. */
  if (
    typeof v !== 'string' ||
    !ISO.test(v) ||
    Number.isNaN(Date.parse(v)) ||
    new Date(v).toISOString() !== v
  ) {
    throw malformed(where, 'time must be an ISO-8601 UTC instant (YYYY-MM-DDTHH:MM:SS.sssZ)');
  }
  lastValidTime = v;
  return v;
}

function checkEvidence(v: unknown, where: Where): AuditEvidence {
  if (!isObject(v)) throw malformed(where, 'evidence must be an object');
  exactKeys(v, ['type', 'document', 'certificates'], 'evidence', where);
  const type = oneOf(v, 'type', ['nitro', 'sev-snp'] as const, where);
  const document = v['document'];
  const maxChars = Math.ceil(LIMITS.maxEvidenceBytes / 3) * 4;
  /* Precondition: the evidence document is standard base64 of at most LIMITS.maxEvidenceBytes bytes. */
  if (
    typeof document !== 'string' ||
    document.length === 0 ||
    document.length > maxChars ||
    !BASE64.test(document)
  ) {
    throw malformed(
      where,
      `evidence.document must be standard base64 of 1..${LIMITS.maxEvidenceBytes} bytes`,
    );
  }
  const certs = v['certificates'];
  if (
    !Array.isArray(certs) ||
    certs.length > AUDIT_LIMITS.maxEvidenceCertificates ||
    !certs.every((c) => typeof c === 'string' && c.length <= AUDIT_LIMITS.maxCertificateChars && PEM.test(c))
  ) {
    throw malformed(
      where,
      `evidence.certificates must be at most ${AUDIT_LIMITS.maxEvidenceCertificates} PEM certificates`,
    );
  }
  return { type, document, certificates: certs as string[] };
}

function checkAttested(v: unknown, where: Where): AuditAttested | null {
  if (v === null) return null;
  if (!isObject(v)) throw malformed(where, 'attested must be null or an object');
  exactKeys(v, ['type', 'measurement'], 'attested', where);
  return {
    type: oneOf(v, 'type', ['nitro', 'sev-snp'] as const, where),
    measurement: hex(v, 'measurement', HEX96, 'a SHA-384 measurement (96 hex digits)', where),
  };
}

/**
 * Checks the fields of a record object (parsed from a line, or built by the writer) and returns a typed record
 * with its fields in canonical order.
 * @throws AuditError AUDIT_RECORD_MALFORMED, AUDIT_VERSION_UNSUPPORTED
 */
function checkRecord(o: unknown, where: Where): AuditRecord {
  if (!isObject(o)) throw malformed(where, 'a record must be a JSON object');
  if (isCount(o['seq'])) where.seq = o['seq'];
  /* Precondition: the format version is one this build reads. */
  if (o['v'] !== AUDIT_FORMAT_VERSION) {
    if (typeof o['v'] === 'number') {
      throw fail(
        'AUDIT_VERSION_UNSUPPORTED',
        where,
        `format version ${o['v']} is not read by this build (${AUDIT_FORMAT_VERSION})`,
      );
    }
    throw malformed(where, 'v must be the format version 1');
  }
  const kind = oneOf(o, 'kind', ['event', 'boot', 'checkpoint'] as const, where);
  exactKeys(o, FIELDS[kind], `a ${kind} record`, where);
  if (!isCount(o['seq'])) throw malformed(where, 'seq must be an integer in 0..2^53-1');
  // Built as literals in canonical field order (v, seq, time, kind, prev, then the kind's fields): the result
  // serialises to the canonical line as it is, without a re-ordering copy (the writer's hot path).
  const v = AUDIT_FORMAT_VERSION;
  const seq = o['seq'];
  const time = checkTime(o, where);
  const prev = hex(o, 'prev', HEX64, 'a SHA-256 hash', where);
  switch (kind) {
    case 'event': {
      const outcome = oneOf(o, 'outcome', AUDIT_OUTCOMES, where);
      const code =
        o['code'] === null ? null : matching(o, 'code', CODE, 'an UPPER_SNAKE_CASE error code', where);
      /* Precondition: an allowed operation has no error code; a denial or an error has one. */
      if ((outcome === 'allowed') !== (code === null)) {
        throw malformed(
          where,
          `outcome "${outcome}" ${code === null ? 'needs' : 'must not have'} an error code`,
        );
      }
      const keyVersion = o['keyVersion'];
      if (keyVersion !== null && !isCount(keyVersion)) {
        throw malformed(where, 'keyVersion must be null or an integer in 0..2^53-1');
      }
      return {
        v,
        seq,
        time,
        kind,
        prev,
        principal: nullableText(o, 'principal', AUDIT_LIMITS.maxNameChars, where),
        authentication: oneOf(o, 'authentication', AUDIT_AUTHENTICATIONS, where),
        attested: checkAttested(o['attested'], where),
        operation: text(o, 'operation', AUDIT_LIMITS.maxOperationChars, where),
        keyId: nullableText(o, 'keyId', AUDIT_LIMITS.maxNameChars, where),
        keyVersion,
        contextDigest:
          o['contextDigest'] === null ? null : hex(o, 'contextDigest', HEX64, 'a SHA-256 digest', where),
        outcome,
        code,
        requestId: nullableText(o, 'requestId', AUDIT_LIMITS.maxRequestIdChars, where),
      };
    }
    case 'boot': {
      const resumed = o['resumed'];
      if (
        resumed !== null &&
        (typeof resumed !== 'string' || resumed.length > AUDIT_LIMITS.maxCheckpointLineBytes)
      ) {
        throw malformed(where, 'resumed must be null or a checkpoint line');
      }
      return {
        v,
        seq,
        time,
        kind,
        prev,
        identity: hex(o, 'identity', HEX64, 'an Ed25519 public key (64 hex digits)', where),
        evidence: checkEvidence(o['evidence'], where),
        resumed,
      };
    }
    case 'checkpoint': {
      if (!isCount(o['count'])) throw malformed(where, 'count must be an integer in 0..2^53-1');
      return {
        v,
        seq,
        time,
        kind,
        prev,
        reason: oneOf(o, 'reason', AUDIT_CHECKPOINT_REASONS, where),
        head: hex(o, 'head', HEX64, 'a SHA-256 hash', where),
        count: o['count'],
        signature: hex(o, 'signature', HEX128, 'an Ed25519 signature (128 hex digits)', where),
      };
    }
  }
}

/** The record as a plain object with its fields in canonical order (nested objects too). */
function ordered(r: AuditRecord | AuditCheckpointUnsigned): Record<string, unknown> {
  const base = { v: r.v, seq: r.seq, time: r.time, kind: r.kind, prev: r.prev };
  switch (r.kind) {
    case 'event':
      return {
        ...base,
        principal: r.principal,
        authentication: r.authentication,
        attested: r.attested === null ? null : { type: r.attested.type, measurement: r.attested.measurement },
        operation: r.operation,
        keyId: r.keyId,
        keyVersion: r.keyVersion,
        contextDigest: r.contextDigest,
        outcome: r.outcome,
        code: r.code,
        requestId: r.requestId,
      };
    case 'boot':
      return {
        ...base,
        identity: r.identity,
        evidence: {
          type: r.evidence.type,
          document: r.evidence.document,
          certificates: [...r.evidence.certificates],
        },
        resumed: r.resumed,
      };
    case 'checkpoint':
      return {
        ...base,
        reason: r.reason,
        head: r.head,
        count: r.count,
        ...('signature' in r ? { signature: r.signature } : {}),
      };
  }
}

// ------------------------------------------------------------------------------------------ encoding

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The canonical line of a record (without "\n"). The writer's records pass the verifier's checks by construction.
 * @throws AuditError AUDIT_RECORD_MALFORMED (a field out of its rules or bounds)
 */
export function encodeAuditRecord(record: AuditRecord): string {
  const where: Where = {};
  // checkRecord returns a fresh record in canonical field order (no extra fields: exactKeys refuses them).
  const line = JSON.stringify(checkRecord(record, where));
  // Buffer.byteLength counts UTF-8 bytes as TextEncoder would, without allocating them.
  if (Buffer.byteLength(line, 'utf8') > AUDIT_LIMITS.maxLineBytes) {
    throw malformed(where, `the line exceeds ${AUDIT_LIMITS.maxLineBytes} bytes`);
  }
  return line;
}

/**
 * Parses one line (without its "\n") into a record: bounded, strict UTF-8, JSON, exact fields, canonical form.
 * @throws AuditError AUDIT_RECORD_MALFORMED, AUDIT_VERSION_UNSUPPORTED
 */
export function parseAuditLine(line: string | Uint8Array, lineNumber?: number): AuditRecord {
  const where: Where = lineNumber === undefined ? {} : { line: lineNumber };
  const bytes = typeof line === 'string' ? utf8.encode(line) : line;
  /* Precondition: a line is bounded before it is decoded (style §6). */
  if (bytes.length > AUDIT_LIMITS.maxLineBytes) {
    throw malformed(where, `the line exceeds ${AUDIT_LIMITS.maxLineBytes} bytes`);
  }
  if (bytes.length === 0) throw malformed(where, 'the line is empty');
  let textLine: string;
  try {
    textLine = typeof line === 'string' ? line : strictUtf8.decode(bytes);
  } catch (cause) {
    throw malformed(where, 'the line is not valid UTF-8', cause);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(textLine);
  } catch (cause) {
    throw malformed(where, 'the line is not JSON', cause);
  }
  const record = checkRecord(parsed, where);
  /* Precondition: the line is the record's canonical encoding (one byte form per record: no spacing, reordered
     or duplicated fields, alternative escapes). */
  if (JSON.stringify(ordered(record)) !== textLine) {
    throw malformed(where, 'the line is not in canonical form (field order, spacing or escapes differ)');
  }
  return record;
}

/** Hex SHA-256 of a line's exact bytes (UTF-8, without "\n"): the next record's `prev`. */
export function auditLineHash(line: string | Uint8Array): string {
  // A string is hashed as its UTF-8 bytes (node:crypto encodes it: no intermediate array).
  const h = createHash('sha256');
  return (typeof line === 'string' ? h.update(line, 'utf8') : h.update(line)).digest('hex');
}

/**
 * What a checkpoint's signature covers: "ekms-audit-v1 checkpoint" ‖ the canonical JSON of the checkpoint without
 * its `signature` field (same field order).
 * @throws AuditError AUDIT_RECORD_MALFORMED
 */
export function checkpointSigningInput(checkpoint: AuditCheckpointUnsigned): Uint8Array {
  // Validate with a placeholder signature: the other fields must follow the rules of a checkpoint.
  checkRecord(ordered({ ...checkpoint, signature: '0'.repeat(128) }), {});
  return utf8.encode(`${AUDIT_CHECKPOINT_LABEL}${JSON.stringify(ordered(checkpoint))}`);
}

/** Does the checkpoint's signature verify under `identity` (32 raw bytes)? Never throws. */
export function checkpointSignatureValid(checkpoint: AuditCheckpointRecord, identity: Uint8Array): boolean {
  try {
    const { signature, ...unsigned } = checkpoint;
    const key = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(identity).toString('base64url') },
      format: 'jwk',
    });
    return verify(null, checkpointSigningInput(unsigned), key, Buffer.from(signature, 'hex'));
  } catch {
    return false;
  }
}

/** A boot record's evidence from an evidence bundle. */
export function auditEvidence(bundle: EvidenceBundle): AuditEvidence {
  return {
    type: bundle.type,
    document: Buffer.from(
      bundle.document.buffer,
      bundle.document.byteOffset,
      bundle.document.byteLength,
    ).toString('base64'),
    certificates: [...bundle.certificates],
  };
}

/** The evidence bundle a boot record carries (for attestation/evidence.ts `verifyEvidenceBundle`). */
export function auditEvidenceBundle(evidence: AuditEvidence): EvidenceBundle {
  return {
    type: evidence.type,
    document: new Uint8Array(Buffer.from(evidence.document, 'base64')),
    certificates: [...evidence.certificates],
  };
}

// ------------------------------------------------------------------------------------------ verification

/** Events by outcome. */
export interface AuditOutcomeCounts {
  allowed: number;
  denied: number;
  error: number;
}

/** One enclave run, as its boot record states it. */
export interface AuditBootSummary {
  readonly seq: number;
  readonly line: number;
  readonly time: string;
  readonly identity: string;
  readonly evidenceType: 'nitro' | 'sev-snp';
}

/** What `verifyAuditLog` found. Everything counted is on the verified chain (abandoned records excepted). */
export interface AuditSummary {
  /** Lines in the file. */
  readonly lines: number;
  /** Event records on the chain. */
  readonly events: number;
  readonly checkpoints: number;
  readonly boots: readonly AuditBootSummary[];
  /** The latest checkpoint (the signed head): feed it back as `expectHead` to detect a later truncation. */
  readonly head: AuditHead | null;
  /** The last record. */
  readonly last: AuditHead | null;
  /** Records after the latest checkpoint: chained, but not yet signed. */
  readonly unsealed: number;
  /**
   * Records a run left after its last checkpoint when it ended without a clean shutdown; the next boot continued
   * from that checkpoint. They are not authenticated and not counted in `events`, `keys`, `principals`.
   */
  readonly abandoned: number;
  /** Checkpoints taken from a boot record's `resumed` because their line was not appended before a crash. */
  readonly recovered: number;
  /** Whether boot evidence was checked (`checkBoot`) or not. */
  readonly bootEvidence: 'checked' | 'unchecked';
  /** Events per key id (events without a key are not listed). */
  readonly keys: Readonly<Record<string, AuditOutcomeCounts>>;
  /** Events per principal (events without one are counted in `anonymous`). */
  readonly principals: Readonly<Record<string, AuditOutcomeCounts>>;
  readonly anonymous: AuditOutcomeCounts;
}

export interface VerifyAuditOptions {
  /**
   * Checks a boot record's evidence: that it verifies, is trusted, and binds `identity` (the CLI does it with
   * attestation/evidence.ts and the profile's trust). Throw to refuse; the error becomes AUDIT_BOOT_UNTRUSTED.
   * `null` skips the check: the log is then only self-consistent (a rewritten log with a swapped identity key
   * passes), and the summary says `bootEvidence: "unchecked"`.
   */
  readonly checkBoot: ((boot: AuditBootRecord) => void) | null;
  /** A checkpoint the log must still contain (e.g. `head` of an earlier verification). */
  readonly expectHead?: AuditHead;
  /** Refuse unsealed and abandoned records (AUDIT_TAIL_UNSEALED). */
  readonly requireSealed?: boolean;
}

interface Segment {
  records: number;
  events: AuditEventRecord[];
}

function emptyCounts(): AuditOutcomeCounts {
  return { allowed: 0, denied: 0, error: 0 };
}

/**
 * Verifies a log line by line (streaming): `add` each line's bytes without its "\n", then `finish`.
 * `verifyAuditLog` wraps it for a whole file.
 */
export class AuditLogVerifier {
  readonly #options: VerifyAuditOptions;
  #lineNo = 0;
  #last: (AuditHead & { kind: AuditRecord['kind']; reason: AuditCheckpointReason | null }) | null = null;
  /** The latest checkpoint on the chain. */
  #checkpoint: (AuditHead & { count: number }) | null = null;
  /** The current run's identity key (from its boot record). */
  #identity: Uint8Array | null = null;
  /** Events on the chain so far. */
  #events = 0;
  #segment: Segment = { records: 0, events: [] };
  #checkpoints = 0;
  #abandoned = 0;
  #recovered = 0;
  #expectFound = false;
  readonly #boots: AuditBootSummary[] = [];
  readonly #keys = new Map<string, AuditOutcomeCounts>();
  readonly #principals = new Map<string, AuditOutcomeCounts>();
  readonly #anonymous = emptyCounts();

  constructor(options: VerifyAuditOptions) {
    this.#options = options;
  }

  /**
   * Checks the next line.
   * @throws AuditError AUDIT_RECORD_MALFORMED, AUDIT_VERSION_UNSUPPORTED, AUDIT_CHAIN_BROKEN,
   *   AUDIT_SIGNATURE_INVALID, AUDIT_CHECKPOINT_INVALID, AUDIT_TRUNCATED, AUDIT_HEAD_ROLLBACK, AUDIT_BOOT_UNTRUSTED
   */
  add(line: Uint8Array): void {
    this.#lineNo += 1;
    const record = parseAuditLine(line, this.#lineNo);
    const hash = auditLineHash(line);
    const where: Where = { line: this.#lineNo, seq: record.seq };
    if (record.kind === 'boot') this.#boot(record, hash, where);
    else this.#next(record, hash, where);
  }

  /** A record that must follow the last line directly. */
  #next(record: AuditEventRecord | AuditCheckpointRecord, hash: string, where: Where): void {
    const last = this.#last;
    /* Precondition: the log starts with a boot record at seq 0. */
    if (last === null) {
      if (record.seq !== 0) {
        throw fail(
          'AUDIT_TRUNCATED',
          where,
          `the log starts at seq ${record.seq}: earlier records are missing`,
        );
      }
      throw fail('AUDIT_CHAIN_BROKEN', where, 'the first record must be a boot record');
    }
    this.#follows(record, last, where);
    /* Precondition: nothing but a boot record follows a clean-shutdown checkpoint. */
    if (last.kind === 'checkpoint' && last.reason === 'shutdown') {
      throw fail(
        'AUDIT_CHAIN_BROKEN',
        where,
        `a ${record.kind} record follows the shutdown checkpoint seq ${last.seq}; only a boot record may`,
      );
    }
    if (record.kind === 'event') {
      this.#events += 1;
      this.#segment.records += 1;
      this.#segment.events.push(record);
    } else {
      this.#sealCheckpoint(record, hash, where);
    }
    this.#last = {
      seq: record.seq,
      hash,
      kind: record.kind,
      reason: record.kind === 'checkpoint' ? record.reason : null,
    };
  }

  /* Precondition: a record's seq is one more than the previous line's, and its prev is that line's hash. */
  #follows(record: AuditRecord, last: AuditHead, where: Where): void {
    if (record.seq !== last.seq + 1) {
      const why =
        record.seq > last.seq + 1
          ? `records seq ${last.seq + 1}..${record.seq - 1} are missing`
          : 'the seq repeats or goes back (inserted, duplicated or reordered records)';
      throw fail('AUDIT_CHAIN_BROKEN', where, `expected seq ${last.seq + 1} after seq ${last.seq}: ${why}`);
    }
    if (record.prev !== last.hash) {
      throw fail(
        'AUDIT_CHAIN_BROKEN',
        where,
        `prev does not match the hash of the line before (seq ${last.seq}): a record was edited, deleted, inserted or reordered`,
      );
    }
  }

  #sealCheckpoint(record: AuditCheckpointRecord, hash: string, where: Where): void {
    const identity = this.#identity;
    /* Precondition: the checkpoint is signed by the identity key of the current run (its boot record's). */
    if (identity === null || !checkpointSignatureValid(record, identity)) {
      throw fail(
        'AUDIT_SIGNATURE_INVALID',
        where,
        "the checkpoint's signature does not verify under the identity key of the enclave run",
      );
    }
    /* Precondition: an authentic checkpoint's head is the hash of the line before it. */
    if (record.head !== record.prev) {
      throw fail('AUDIT_CHECKPOINT_INVALID', where, 'head differs from the hash of the previous line');
    }
    /* Precondition: an authentic checkpoint counts the events of the chain before it. */
    if (record.count !== this.#events) {
      throw fail(
        'AUDIT_CHECKPOINT_INVALID',
        where,
        `the checkpoint counts ${record.count} events, the chain has ${this.#events}`,
      );
    }
    const expect = this.#options.expectHead;
    if (expect !== undefined && expect.seq === record.seq) {
      /* Precondition: the expected checkpoint is still in the log, unchanged. */
      if (expect.hash !== hash) {
        throw fail('AUDIT_CHAIN_BROKEN', where, `this checkpoint is not the expected head ${expect.hash}`);
      }
      this.#expectFound = true;
    }
    this.#checkpoints += 1;
    this.#checkpoint = { seq: record.seq, hash, count: record.count };
    this.#commit();
  }

  /** The unsealed segment becomes part of the signed chain. */
  #commit(): void {
    for (const e of this.#segment.events) {
      const counts = (map: Map<string, AuditOutcomeCounts>, k: string): AuditOutcomeCounts => {
        let c = map.get(k);
        if (c === undefined) {
          c = emptyCounts();
          map.set(k, c);
        }
        return c;
      };
      if (e.keyId !== null) counts(this.#keys, e.keyId)[e.outcome] += 1;
      (e.principal === null ? this.#anonymous : counts(this.#principals, e.principal))[e.outcome] += 1;
    }
    this.#segment = { records: 0, events: [] };
  }

  #boot(record: AuditBootRecord, hash: string, where: Where): void {
    const last = this.#last;
    if (record.seq === 0) {
      /* Precondition: a new chain (seq 0, prev zero, nothing resumed) starts only at the top of the log. */
      if (record.prev !== AUDIT_GENESIS_PREV || record.resumed !== null) {
        throw fail(
          'AUDIT_CHAIN_BROKEN',
          where,
          'a seq 0 boot record must have prev = 0…0 and resumed = null',
        );
      }
      if (last !== null) {
        throw fail(
          'AUDIT_HEAD_ROLLBACK',
          where,
          `a new chain starts after seq ${last.seq}: the enclave's sealed audit head was lost`,
        );
      }
    } else {
      if (last === null) {
        throw fail(
          'AUDIT_TRUNCATED',
          where,
          `the log starts at seq ${record.seq}: earlier records are missing`,
        );
      }
      this.#resume(record, last, where);
    }
    this.#runBootCheck(record, where);
    this.#identity = new Uint8Array(Buffer.from(record.identity, 'hex'));
    this.#boots.push({
      seq: record.seq,
      line: this.#lineNo,
      time: record.time,
      identity: record.identity,
      evidenceType: record.evidence.type,
    });
    this.#segment.records += 1;
    this.#last = { seq: record.seq, hash, kind: 'boot', reason: null };
  }

  /** Where a boot record continues the chain: the last line, the latest checkpoint, or a lost checkpoint line. */
  #resume(record: AuditBootRecord, last: AuditHead, where: Where): void {
    /* Precondition: a resuming boot record carries the checkpoint it continues from, and points at it. */
    if (record.resumed === null) {
      throw fail(
        'AUDIT_CHAIN_BROKEN',
        where,
        `a boot record at seq ${record.seq} must name the checkpoint it resumes`,
      );
    }
    let resumed: AuditRecord;
    try {
      resumed = parseAuditLine(record.resumed);
    } catch (cause) {
      throw fail(
        'AUDIT_RECORD_MALFORMED',
        where,
        `resumed is not a record: ${(cause as Error).message}`,
        cause,
      );
    }
    if (
      resumed.kind !== 'checkpoint' ||
      resumed.seq !== record.seq - 1 ||
      auditLineHash(record.resumed) !== record.prev
    ) {
      throw fail(
        'AUDIT_CHAIN_BROKEN',
        where,
        'resumed must be the checkpoint line at seq - 1 whose hash is prev',
      );
    }
    const cp = this.#checkpoint;
    if (last.seq === resumed.seq && last.hash === record.prev) {
      // Continues from the last line (the usual case: it is the run's final checkpoint).
      this.#events = resumed.count;
    } else if (cp !== null && cp.seq === resumed.seq && cp.hash === record.prev) {
      // The previous run ended without a clean shutdown: what it wrote after its last checkpoint is abandoned.
      this.#abandoned += this.#segment.records;
      this.#segment = { records: 0, events: [] };
      this.#events = cp.count;
    } else if (resumed.seq === last.seq + 1) {
      // The enclave sealed the head and crashed before the checkpoint line was appended: the boot record carries
      // that line. It must chain to the last line and verify like any checkpoint.
      this.#next(resumed, record.prev, where);
      this.#recovered += 1;
    } else if (resumed.seq > last.seq + 1) {
      throw fail(
        'AUDIT_TRUNCATED',
        where,
        `the enclave resumed from the checkpoint at seq ${resumed.seq}, but the log ends at seq ${last.seq}: records seq ${last.seq + 1}..${resumed.seq} are missing`,
      );
    } else if (cp !== null && resumed.seq < cp.seq) {
      throw fail(
        'AUDIT_HEAD_ROLLBACK',
        where,
        `the enclave resumed from seq ${resumed.seq}, older than the log's latest checkpoint (seq ${cp.seq}): its sealed audit head was rolled back`,
      );
    } else {
      throw fail(
        'AUDIT_CHAIN_BROKEN',
        where,
        `the enclave resumed from a checkpoint at seq ${resumed.seq} that differs from the log's record at that seq`,
      );
    }
  }

  #runBootCheck(record: AuditBootRecord, where: Where): void {
    const check = this.#options.checkBoot;
    if (check === null) return;
    try {
      check(record);
    } catch (cause) {
      const code = (cause as { code?: unknown })?.code;
      throw fail(
        'AUDIT_BOOT_UNTRUSTED',
        where,
        `the boot evidence is refused: ${typeof code === 'string' ? `${code}: ` : ''}${(cause as Error)?.message ?? String(cause)}`,
        cause,
      );
    }
  }

  /**
   * Ends the log and returns the summary.
   * @throws AuditError AUDIT_TRUNCATED, AUDIT_CHAIN_BROKEN (expected head missing), AUDIT_TAIL_UNSEALED
   */
  finish(): AuditSummary {
    const expect = this.#options.expectHead;
    const where: Where = { line: this.#lineNo };
    if (expect !== undefined && !this.#expectFound) {
      const lastSeq = this.#last?.seq ?? -1;
      if (lastSeq < expect.seq) {
        throw fail(
          'AUDIT_TRUNCATED',
          where,
          `the log ends at seq ${lastSeq}, before the expected checkpoint seq ${expect.seq}`,
        );
      }
      throw fail(
        'AUDIT_CHAIN_BROKEN',
        where,
        `the log has no checkpoint seq ${expect.seq} with hash ${expect.hash}`,
      );
    }
    const unsealed = this.#segment.records;
    if (this.#options.requireSealed === true && (unsealed > 0 || this.#abandoned > 0)) {
      throw fail(
        'AUDIT_TAIL_UNSEALED',
        where,
        `${unsealed} record(s) after the last checkpoint and ${this.#abandoned} abandoned record(s) are not signed`,
      );
    }
    this.#commit();
    const cp = this.#checkpoint;
    const last = this.#last;
    return {
      lines: this.#lineNo,
      events: this.#events,
      checkpoints: this.#checkpoints,
      boots: [...this.#boots],
      head: cp === null ? null : { seq: cp.seq, hash: cp.hash },
      last: last === null ? null : { seq: last.seq, hash: last.hash },
      unsealed,
      abandoned: this.#abandoned,
      recovered: this.#recovered,
      bootEvidence: this.#options.checkBoot === null ? 'unchecked' : 'checked',
      keys: Object.fromEntries(this.#keys),
      principals: Object.fromEntries(this.#principals),
      anonymous: { ...this.#anonymous },
    };
  }
}

/**
 * Verifies a whole audit log: every line's format, the hash chain, the checkpoint signatures (under each run's
 * identity key), the continuation of the chain across enclave restarts, and (through `checkBoot`) each run's
 * boot evidence. Returns the summary, or throws at the first failure, naming the record's seq and line.
 * @throws AuditError AUDIT_RECORD_MALFORMED, AUDIT_VERSION_UNSUPPORTED, AUDIT_CHAIN_BROKEN, AUDIT_SIGNATURE_INVALID,
 *   AUDIT_CHECKPOINT_INVALID, AUDIT_TRUNCATED, AUDIT_HEAD_ROLLBACK, AUDIT_BOOT_UNTRUSTED, AUDIT_TAIL_UNSEALED
 */
export function verifyAuditLog(log: string | Uint8Array, options: VerifyAuditOptions): AuditSummary {
  const bytes = typeof log === 'string' ? utf8.encode(log) : log;
  const verifier = new AuditLogVerifier(options);
  let start = 0;
  while (start < bytes.length) {
    const nl = bytes.indexOf(0x0a, start);
    /* Precondition: every line ends with "\n" (a partial last line is a torn or cut append). */
    if (nl < 0) {
      throw fail(
        'AUDIT_TRUNCATED',
        { line: countLines(bytes) },
        'the log ends inside a line (no final newline)',
      );
    }
    verifier.add(bytes.subarray(start, nl));
    start = nl + 1;
  }
  return verifier.finish();
}

function countLines(bytes: Uint8Array): number {
  let n = 1;
  for (const b of bytes) if (b === 0x0a) n += 1;
  return n;
}
