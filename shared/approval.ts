/**
 * Quorum approvals (dual control, design §4 "Access control"; docs/key-policy.md §10): the request digest that
 * approvers sign, the bytes of an approval signature, and the shape checks of approvals and quorum definitions.
 * One module for the client (SDK, CLI) and the enclave, so both compute the same digest from the same rules.
 *
 * Request digest (version 1):
 *
 *   digest = SHA-384( dCBOR([ "ekms-approval-request-v1", op, keyId, sequence, params ]) )
 *
 *   op        the wire operation name (`scheduleKeyDeletion`, `putKeyPolicy`, …; PROTECTED_OPERATIONS)
 *   keyId     the canonical key id (a UUID, never an alias: an alias can be repointed after approval)
 *   sequence  the key's approval sequence (`keyMetadata.quorum.sequence`): it advances with every approved
 *             operation and every quorum change, so an approval is good for one operation only, even across
 *             enclave restarts (it is stored in the sealed key record), and goes stale when the quorum changes
 *   params    the request's parameters without `keyId` and `approvals`, as sent (defaults are not filled in:
 *             `{}` and `{pendingWindowInDays: 30}` are different requests)
 *
 * dCBOR is the core deterministic encoding of RFC 8949 §4.2.1, restricted to what request parameters hold: null,
 * booleans, integers (|n| ≤ 2^53 − 1, shortest head), well-formed text strings, byte strings, arrays, and maps with
 * text keys sorted by the bytes of their encoded keys (shorter keys first, then bytewise). No floats, tags,
 * indefinite lengths or undefined: anything else is APPROVAL_INVALID. It is written here rather than taken from
 * shared/cbor.ts (cbor-x), whose map order follows object insertion order.
 *
 * Approval signature (Ed25519, by the approver's registered principal key):
 *
 *   message = UTF-8("ekms-approval-v1") ‖ 0x00 ‖ digest (48 bytes) ‖ uint64 big-endian(expiresAt, ms since epoch)
 *
 * Test vector: test/vectors/approval-vectors.json (made by the command it records).
 * No I/O here (style §13): the caller supplies `now` and the keys.
 */
import { createHash, type KeyObject, sign } from 'node:crypto';
import { KmsError } from './kms-errors.js';

/** Domain separation of the request digest. */
export const APPROVAL_REQUEST_DOMAIN = 'ekms-approval-request-v1';
/** Domain separation of approval signatures. */
export const APPROVAL_SIGNATURE_DOMAIN = 'ekms-approval-v1';

/** Bounds of approvals and quorums (style §6). */
export const APPROVAL_LIMITS = Object.freeze({
  /** Approvals in one request. */
  maxApprovals: 32,
  /** Approvers in a quorum (N); the threshold M is 1..N. */
  maxApprovers: 16,
  /** An approval expires at most this long after the enclave's now (24 h)… */
  maxLifetimeMs: 24 * 60 * 60 * 1000,
  /** …plus this much clock skew between the approver's machine and the enclave. */
  clockSkewMs: 5 * 60 * 1000,
  digestBytes: 48,
  signatureBytes: 64,
  /** Principal names (enclave/principals.ts). */
  maxNameBytes: 64,
  /** Nesting of the parameters in a digest. */
  maxDepth: 8,
});

/** Operations that need a quorum on a protected key (wire names). */
export const PROTECTED_OPERATIONS = Object.freeze([
  'scheduleKeyDeletion',
  'putKeyPolicy',
  'putKeyReleasePolicy',
  'disableKey',
  'releaseKey',
  'putKeyQuorum',
  // A grant widens who may use the key, as a policy change does (docs/key-policy.md §10).
  'createGrant',
] as const);
export type ProtectedOperation = (typeof PROTECTED_OPERATIONS)[number];

export function isProtectedOperation(op: string): op is ProtectedOperation {
  return (PROTECTED_OPERATIONS as readonly string[]).includes(op);
}

/** A quorum: M of these N registered admins must approve protected operations. */
export interface QuorumDefinition {
  readonly threshold: number;
  readonly approvers: readonly string[];
}

/** An approval as requests carry it. */
export interface Approval {
  /** The approver's principal name. */
  readonly approver: string;
  /** The request digest the approver signed (48 bytes); the enclave compares it with its own. */
  readonly digest: Uint8Array;
  /** Milliseconds since the epoch. */
  readonly expiresAt: number;
  /** Ed25519 over `approvalSignedBytes(digest, expiresAt)` (64 bytes). */
  readonly signature: Uint8Array;
}

/** What approvers approve: the operation, the canonical key id, the key's approval sequence, the parameters. */
export interface ApprovalRequest {
  readonly op: string;
  readonly keyId: string;
  readonly sequence: number;
  /** The request parameters; `keyId` and `approvals` in it are ignored. */
  readonly params: Readonly<Record<string, unknown>>;
}

/** A UTF-16 surrogate without its pair: such a string has no UTF-8 form. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const KEY_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function invalid(message: string, details: Record<string, unknown> = {}): KmsError {
  return new KmsError('APPROVAL_INVALID', message, { details });
}

// ------------------------------------------------------------------------------------------ deterministic CBOR

function head(major: number, n: number): Uint8Array {
  const m = major << 5;
  if (n < 24) return Uint8Array.of(m | n);
  if (n < 0x100) return Uint8Array.of(m | 24, n);
  if (n < 0x10000) return Uint8Array.of(m | 25, n >> 8, n & 0xff);
  if (n < 0x100000000) return Uint8Array.of(m | 26, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  const out = new Uint8Array(9);
  out[0] = m | 27;
  new DataView(out.buffer).setBigUint64(1, BigInt(n));
  return out;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return a.length - b.length;
}

function encodeItem(v: unknown, depth: number, out: Uint8Array[], path: string): void {
  /* Precondition: parameters nest at most APPROVAL_LIMITS.maxDepth levels. */
  if (depth > APPROVAL_LIMITS.maxDepth) throw invalid(`${path}: nested too deeply for a request digest`);
  if (v === null) out.push(Uint8Array.of(0xf6));
  else if (v === false) out.push(Uint8Array.of(0xf4));
  else if (v === true) out.push(Uint8Array.of(0xf5));
  else if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw invalid(`${path}: only integers can be approved (no floats)`);
    out.push(v >= 0 ? head(0, v) : head(1, -1 - v));
  } else if (typeof v === 'string') {
    if (LONE_SURROGATE.test(v)) throw invalid(`${path}: text is not well-formed Unicode`);
    const bytes = new TextEncoder().encode(v);
    out.push(head(3, bytes.length), bytes);
  } else if (v instanceof Uint8Array) {
    out.push(head(2, v.length), Uint8Array.from(v));
  } else if (Array.isArray(v)) {
    out.push(head(4, v.length));
    for (const [i, x] of v.entries()) encodeItem(x, depth + 1, out, `${path}[${i}]`);
  } else if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    const entries = Object.entries(v as Record<string, unknown>).map(([k, x]) => {
      const key: Uint8Array[] = [];
      encodeItem(k, depth + 1, key, path);
      const value: Uint8Array[] = [];
      encodeItem(x, depth + 1, value, `${path}.${k}`);
      return { key: concat(key), value };
    });
    entries.sort((a, b) => compareBytes(a.key, b.key));
    out.push(head(5, entries.length));
    for (const e of entries) out.push(e.key, ...e.value);
  } else {
    throw invalid(`${path}: ${typeof v} cannot be part of a request digest`);
  }
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * The RFC 8949 §4.2.1 deterministic encoding of a value (the subset described in the file header).
 * @throws KmsError APPROVAL_INVALID (a float, undefined, a function, ill-formed text, too deep)
 */
export function deterministicCbor(value: unknown): Uint8Array {
  const out: Uint8Array[] = [];
  encodeItem(value, 0, out, '$');
  return concat(out);
}

// ------------------------------------------------------------------------------------------ digest and signature

/** The bytes hashed into the request digest (exposed for the test vector and for auditors). */
export function approvalRequestBytes(request: ApprovalRequest): Uint8Array {
  /* Precondition: approvals name a canonical key id (not an alias) and a valid sequence. */
  if (!KEY_ID.test(request.keyId)) throw invalid('an approval request names a key id (not an alias)');
  if (!Number.isSafeInteger(request.sequence) || request.sequence < 0) {
    throw invalid('an approval request needs the key approval sequence (a non-negative integer)');
  }
  if (!isProtectedOperation(request.op)) {
    throw invalid(`${request.op.slice(0, 64)} is not an operation that takes approvals`, {
      op: request.op.slice(0, 64),
    });
  }
  const { keyId: _k, approvals: _a, ...params } = request.params;
  return deterministicCbor([APPROVAL_REQUEST_DOMAIN, request.op, request.keyId, request.sequence, params]);
}

/**
 * SHA-384 of the approval request (file header).
 * @throws KmsError APPROVAL_INVALID (not a protected operation, alias instead of key id, unencodable params)
 */
export function approvalRequestDigest(request: ApprovalRequest): Uint8Array {
  return new Uint8Array(createHash('sha384').update(approvalRequestBytes(request)).digest());
}

/**
 * The message an approver signs: domain ‖ 0x00 ‖ digest ‖ uint64be(expiresAt).
 * @throws KmsError APPROVAL_INVALID (digest not 48 bytes, expiresAt not a non-negative integer)
 */
export function approvalSignedBytes(digest: Uint8Array, expiresAt: number): Uint8Array {
  if (!(digest instanceof Uint8Array) || digest.length !== APPROVAL_LIMITS.digestBytes) {
    throw invalid(`an approval digest is ${APPROVAL_LIMITS.digestBytes} bytes`);
  }
  if (!Number.isSafeInteger(expiresAt) || expiresAt < 0) {
    throw invalid('expiresAt must be milliseconds since the epoch');
  }
  const domain = new TextEncoder().encode(APPROVAL_SIGNATURE_DOMAIN);
  const time = new Uint8Array(8);
  new DataView(time.buffer).setBigUint64(0, BigInt(expiresAt));
  return concat([domain, Uint8Array.of(0), digest, time]);
}

/**
 * Signs an approval of `digest` until `expiresAt` with the approver's Ed25519 private key.
 * @throws KmsError APPROVAL_INVALID (see approvalSignedBytes; a name that is not a principal name; not Ed25519)
 */
export function signApproval(
  digest: Uint8Array,
  credentials: { readonly privateKey: KeyObject },
  approver: string,
  expiresAt: number,
): Approval {
  if (!NAME.test(approver)) throw invalid('the approver must be a principal name');
  if (credentials.privateKey.asymmetricKeyType !== 'ed25519')
    throw invalid('approvals are Ed25519 signatures');
  const signature = new Uint8Array(
    sign(null, approvalSignedBytes(digest, expiresAt), credentials.privateKey),
  );
  return { approver, digest: Uint8Array.from(digest), expiresAt, signature };
}

// ------------------------------------------------------------------------------------------ shape checks

/**
 * Checks the `approvals` parameter of a request: a list of at most APPROVAL_LIMITS.maxApprovals maps
 * `{approver, digest, expiresAt, signature}` with exactly these fields and types. Whether an approval counts is
 * decided later (enclave/kms/quorum.ts); this refuses only what is malformed.
 * @throws KmsError APPROVAL_INVALID (details.index: the approval at fault)
 */
export function parseApprovals(value: unknown): Approval[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw invalid('approvals must be a list');
  /* Precondition: at most APPROVAL_LIMITS.maxApprovals approvals (bounded work per request). */
  if (value.length > APPROVAL_LIMITS.maxApprovals) {
    throw invalid(`at most ${APPROVAL_LIMITS.maxApprovals} approvals per request`, { count: value.length });
  }
  return value.map((a, index) => {
    const bad = (what: string): never => {
      throw invalid(`approval ${index}: ${what}`, { index });
    };
    if (typeof a !== 'object' || a === null || Array.isArray(a) || a instanceof Uint8Array) bad('not a map');
    const m = a as Record<string, unknown>;
    for (const k of Object.keys(m)) {
      if (!['approver', 'digest', 'expiresAt', 'signature'].includes(k))
        bad(`unknown field "${k.slice(0, 32)}"`);
    }
    const { approver, digest, expiresAt, signature } = m;
    if (typeof approver !== 'string' || !NAME.test(approver)) bad('approver must be a principal name');
    if (!(digest instanceof Uint8Array) || digest.length !== APPROVAL_LIMITS.digestBytes) {
      bad(`digest must be ${APPROVAL_LIMITS.digestBytes} bytes`);
    }
    if (typeof expiresAt !== 'number' || !Number.isSafeInteger(expiresAt) || expiresAt < 0) {
      bad('expiresAt must be milliseconds since the epoch (an integer)');
    }
    if (!(signature instanceof Uint8Array) || signature.length !== APPROVAL_LIMITS.signatureBytes) {
      bad(`signature must be ${APPROVAL_LIMITS.signatureBytes} bytes (Ed25519)`);
    }
    return {
      approver: approver as string,
      digest: digest as Uint8Array,
      expiresAt: expiresAt as number,
      signature: signature as Uint8Array,
    };
  });
}

/**
 * Checks a quorum definition's shape: `{threshold, approvers}` with 1 ≤ threshold ≤ approvers ≤ 16, approvers
 * distinct principal names. Whether they are registered admins is the enclave's check.
 * @throws KmsError QUORUM_INVALID
 */
export function parseQuorumDefinition(value: unknown): QuorumDefinition {
  const bad = (what: string): never => {
    throw new KmsError('QUORUM_INVALID', `quorum: ${what}`);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    return bad('must be a map {threshold, approvers}');
  }
  const m = value as Record<string, unknown>;
  for (const k of Object.keys(m)) {
    if (k !== 'threshold' && k !== 'approvers') bad(`unknown field "${k.slice(0, 32)}"`);
  }
  const { threshold, approvers } = m;
  if (
    !Array.isArray(approvers) ||
    approvers.length === 0 ||
    approvers.length > APPROVAL_LIMITS.maxApprovers ||
    !approvers.every((a) => typeof a === 'string' && NAME.test(a))
  ) {
    return bad(`approvers must be 1..${APPROVAL_LIMITS.maxApprovers} principal names`);
  }
  if (new Set(approvers).size !== approvers.length) bad('approvers must be distinct');
  if (
    typeof threshold !== 'number' ||
    !Number.isInteger(threshold) ||
    threshold < 1 ||
    threshold > approvers.length
  ) {
    bad(`threshold must be an integer from 1 to the number of approvers (${approvers.length})`);
  }
  return Object.freeze({
    threshold: threshold as number,
    approvers: Object.freeze([...(approvers as string[])]),
  });
}
