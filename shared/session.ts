/**
 * The attested, hybrid post-quantum session between a client and the enclave (design §3; docs/protocol.md §5).
 * Both ends use this module; the host relays its bytes and can read none of the keys.
 *
 * Handshake (one round trip; the client's key share is an ephemeral X-Wing public key, the enclave encapsulates):
 *
 *   client → enclave  ClientHello  CBOR {v:1, t:"client-hello", suites:[text…], nonce:bstr(32), share:bstr(1216)}
 *   enclave → client  ServerHello  CBOR {v:1, t:"server-hello", body:bstr, sig:bstr(64)}
 *                     body = CBOR {suite:text, nonce:bstr(32), ct:bstr(1120), identity:bstr(32),
 *                                  evidence:{type:text, document:bstr, certificates:[text…]}}
 *
 * - TH = SHA-384("ekms-session-v1" ‖ u32(len CH) ‖ CH ‖ u32(len body) ‖ body), over the exact bytes sent, so the
 *   suite offer and the choice are both bound (no downgrade).
 * - sig = Ed25519(identity, "ekms-session-v1 server-hello" ‖ TH). The identity key is per boot; the evidence
 *   binds it: Nitro `public_key` = the raw key and `user_data` = identityBinding(key); SEV-SNP REPORT_DATA[0:32] =
 *   identityBinding(key). Freshness comes from the client's nonce inside CH, which the signature covers.
 * - ss = X-Wing.Decaps(ct) (client) = X-Wing.Encaps(share) (enclave). PRK = HKDF-Extract(SHA-384, salt=TH, ss);
 *   per direction: key = Expand(PRK, "ekms-session-v1 c2s key" | "… s2c key", 32),
 *   iv = Expand(PRK, "… c2s iv" | "… s2c iv", 12); binder = Expand(PRK, "ekms-session-v1 binder", 32).
 * - Records: every later frame is AES-256-GCM(key_dir, nonce = iv XOR u64be(seq), aad = "ekms-session-v1 record",
 *   plaintext = one request/response envelope). seq starts at 0 per direction and advances only after a record
 *   opened (style §9); a record that fails ends the session (SESSION_RECORD_INVALID): replay, reorder, drop,
 *   truncation and bit flips all fail the tag because the receiver's expected sequence number is implicit.
 *
 * The `binder` is a secret both ends share and the host cannot compute: principals sign it (client
 * authentication), and an attested workload's evidence carries it (with its recipient key digest), so neither can
 * be replayed into another session.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  hkdfSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { decodeCbor, encodeCbor } from './cbor.js';
import { EkmsError, FrameError } from './errors.js';
import { SessionError } from './session-errors.js';
import { XWING } from './xwing.js';

/** Session suites by id (style §8). The id spells out every algorithm; an unknown id is refused. */
export const SessionSuite = {
  XWingHkdfSha384Aes256GcmEd25519V1: 'EKMS-SESSION-v1/X-Wing/HKDF-SHA-384/AES-256-GCM/Ed25519',
} as const;
export type SessionSuite = (typeof SessionSuite)[keyof typeof SessionSuite];

/** Suites this build speaks, most preferred first. */
export const SUPPORTED_SESSION_SUITES: readonly SessionSuite[] = Object.freeze([
  SessionSuite.XWingHkdfSha384Aes256GcmEd25519V1,
]);

export const SESSION_PROTOCOL_VERSION = 1;
const LABEL = 'ekms-session-v1';
const NONCE_BYTES = 32;
const ED25519_PUBLIC_BYTES = 32;
const ED25519_SIGNATURE_BYTES = 64;
const TAG_BYTES = 16;
const RECORD_AAD = Buffer.from(`${LABEL} record`);
/** Records per direction before the session must be renewed (far below GCM's 2^32 safe limit per key). */
export const MAX_RECORDS_PER_DIRECTION = 2 ** 31;
/** Suites offered at most, and longest suite id. */
const MAX_SUITES = 16;
const MAX_SUITE_BYTES = 128;
/** Evidence: the document (≤ 32 KiB, as LIMITS.maxEvidenceBytes) and at most 4 PEM certificates. */
const MAX_EVIDENCE_BYTES = 32 * 1024;
const MAX_EVIDENCE_CERTIFICATES = 4;
const MAX_CERTIFICATE_PEM_CHARS = 8 * 1024;

/** Attestation evidence as it travels: the document (Nitro COSE_Sign1 or SNP report) and chain certificates. */
export interface EvidenceBundle {
  readonly type: 'nitro' | 'sev-snp';
  readonly document: Uint8Array;
  /** PEM certificates not carried by the document (SNP: the VCEK/VLEK and the ASK). */
  readonly certificates: readonly string[];
}

export interface ClientHello {
  readonly suites: readonly string[];
  readonly nonce: Uint8Array;
  /** The client's ephemeral X-Wing public key (1216 bytes). */
  readonly share: Uint8Array;
}

export interface ServerHelloBody {
  readonly suite: string;
  readonly nonce: Uint8Array;
  /** X-Wing ciphertext to the client's share (1120 bytes). */
  readonly ct: Uint8Array;
  /** The enclave's per-boot Ed25519 identity public key (32 bytes, raw). */
  readonly identity: Uint8Array;
  readonly evidence: EvidenceBundle;
}

function invalid(message: string): SessionError {
  return new SessionError('SESSION_HANDSHAKE_INVALID', message);
}

function asMap(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw invalid(`${what} must be a CBOR map`);
  }
  return value as Record<string, unknown>;
}

/* Precondition: a handshake map has exactly the fields of its version (unknown fields are refused, style §4). */
function exactKeys(m: Record<string, unknown>, keys: readonly string[], what: string): void {
  const got = Object.keys(m);
  for (const k of got) if (!keys.includes(k)) throw invalid(`${what}: unknown field "${k}"`);
  for (const k of keys) if (!(k in m)) throw invalid(`${what}: missing field "${k}"`);
}

function bytesField(
  m: Record<string, unknown>,
  key: string,
  size: number | [number, number],
  what: string,
): Uint8Array {
  const v = m[key];
  if (!(v instanceof Uint8Array)) throw invalid(`${what}.${key} must be a byte string`);
  const [min, max] = typeof size === 'number' ? [size, size] : size;
  if (v.length < min || v.length > max) {
    throw invalid(`${what}.${key} must be ${min === max ? min : `${min}..${max}`} bytes, got ${v.length}`);
  }
  return new Uint8Array(v);
}

function checkVersionAndType(m: Record<string, unknown>, type: string, what: string): void {
  if (m['v'] !== SESSION_PROTOCOL_VERSION) {
    throw new EkmsError(
      'PROTOCOL_VERSION_UNSUPPORTED',
      `${what}: session protocol version ${String(m['v'])} is not spoken here (1)`,
    );
  }
  if (m['t'] !== type) throw invalid(`${what}: expected t="${type}", got ${JSON.stringify(m['t'])}`);
}

function decodeHandshake(frame: Uint8Array, what: string): Record<string, unknown> {
  let decoded: unknown;
  try {
    decoded = decodeCbor(frame);
  } catch (err) {
    if (err instanceof FrameError) throw invalid(`${what} is not a valid CBOR frame (${err.code})`);
    throw err;
  }
  return asMap(decoded, what);
}

/** Encodes a ClientHello frame. */
export function encodeClientHello(hello: ClientHello): Uint8Array {
  return encodeCbor({
    v: SESSION_PROTOCOL_VERSION,
    t: 'client-hello',
    suites: [...hello.suites],
    nonce: hello.nonce,
    share: hello.share,
  });
}

/**
 * Decodes and checks a ClientHello frame (structure and sizes only).
 * @throws SessionError SESSION_HANDSHAKE_INVALID; EkmsError PROTOCOL_VERSION_UNSUPPORTED
 */
export function decodeClientHello(frame: Uint8Array): ClientHello {
  const m = decodeHandshake(frame, 'ClientHello');
  checkVersionAndType(m, 'client-hello', 'ClientHello');
  exactKeys(m, ['v', 't', 'suites', 'nonce', 'share'], 'ClientHello');
  const suites = m['suites'];
  if (!Array.isArray(suites) || suites.length === 0 || suites.length > MAX_SUITES) {
    throw invalid(`ClientHello.suites must list 1..${MAX_SUITES} suite ids`);
  }
  for (const s of suites) {
    if (typeof s !== 'string' || s.length === 0 || s.length > MAX_SUITE_BYTES)
      throw invalid('ClientHello.suites holds a bad suite id');
  }
  return {
    suites: suites as string[],
    nonce: bytesField(m, 'nonce', NONCE_BYTES, 'ClientHello'),
    share: bytesField(m, 'share', XWING.publicKeyBytes, 'ClientHello'),
  };
}

function encodeEvidence(e: EvidenceBundle): Record<string, unknown> {
  return { type: e.type, document: e.document, certificates: [...e.certificates] };
}

/**
 * Checks an evidence bundle's structure and bounds (a ServerHello's, or a workload's in `authenticate`).
 * @throws SessionError SESSION_HANDSHAKE_INVALID
 */
export function decodeEvidence(value: unknown, what: string): EvidenceBundle {
  const m = asMap(value, what);
  exactKeys(m, ['type', 'document', 'certificates'], what);
  const type = m['type'];
  if (type !== 'nitro' && type !== 'sev-snp') throw invalid(`${what}.type must be nitro or sev-snp`);
  const certificates = m['certificates'];
  if (!Array.isArray(certificates) || certificates.length > MAX_EVIDENCE_CERTIFICATES) {
    throw invalid(
      `${what}.certificates must be a list of at most ${MAX_EVIDENCE_CERTIFICATES} PEM certificates`,
    );
  }
  for (const c of certificates) {
    if (
      typeof c !== 'string' ||
      c.length > MAX_CERTIFICATE_PEM_CHARS ||
      !c.startsWith('-----BEGIN CERTIFICATE-----')
    ) {
      throw invalid(`${what}.certificates must hold PEM certificates`);
    }
  }
  return {
    type,
    document: bytesField(m, 'document', [1, MAX_EVIDENCE_BYTES], what),
    certificates: certificates as string[],
  };
}

/** Encodes the ServerHello body (the bytes the transcript and the signature cover). */
export function encodeServerHelloBody(body: ServerHelloBody): Uint8Array {
  return encodeCbor({
    suite: body.suite,
    nonce: body.nonce,
    ct: body.ct,
    identity: body.identity,
    evidence: encodeEvidence(body.evidence),
  });
}

/** Encodes a ServerHello frame from its encoded body and signature. */
export function encodeServerHello(body: Uint8Array, sig: Uint8Array): Uint8Array {
  return encodeCbor({ v: SESSION_PROTOCOL_VERSION, t: 'server-hello', body, sig });
}

/**
 * Decodes and checks a ServerHello frame (structure and sizes only; the caller verifies the signature and the
 * evidence).
 * @throws SessionError SESSION_HANDSHAKE_INVALID; EkmsError PROTOCOL_VERSION_UNSUPPORTED
 */
export function decodeServerHello(frame: Uint8Array): {
  body: ServerHelloBody;
  bodyBytes: Uint8Array;
  sig: Uint8Array;
} {
  const m = decodeHandshake(frame, 'ServerHello');
  checkVersionAndType(m, 'server-hello', 'ServerHello');
  exactKeys(m, ['v', 't', 'body', 'sig'], 'ServerHello');
  const bodyBytes = bytesField(m, 'body', [1, 64 * 1024], 'ServerHello');
  const sig = bytesField(m, 'sig', ED25519_SIGNATURE_BYTES, 'ServerHello');
  const b = decodeHandshake(bodyBytes, 'ServerHello.body');
  exactKeys(b, ['suite', 'nonce', 'ct', 'identity', 'evidence'], 'ServerHello.body');
  const suite = b['suite'];
  if (typeof suite !== 'string' || suite.length === 0 || suite.length > MAX_SUITE_BYTES)
    throw invalid('ServerHello.body.suite must be a suite id');
  return {
    body: {
      suite,
      nonce: bytesField(b, 'nonce', NONCE_BYTES, 'ServerHello.body'),
      ct: bytesField(b, 'ct', XWING.ciphertextBytes, 'ServerHello.body'),
      identity: bytesField(b, 'identity', ED25519_PUBLIC_BYTES, 'ServerHello.body'),
      evidence: decodeEvidence(b['evidence'], 'ServerHello.body.evidence'),
    },
    bodyBytes,
    sig,
  };
}

/**
 * The enclave picks the first of the client's suites that it speaks (the client's order is its preference).
 * @throws SessionError SESSION_SUITE_UNSUPPORTED
 */
export function chooseSuite(offered: readonly string[]): SessionSuite {
  for (const s of offered) {
    if ((SUPPORTED_SESSION_SUITES as readonly string[]).includes(s)) return s as SessionSuite;
  }
  throw new SessionError(
    'SESSION_SUITE_UNSUPPORTED',
    `none of the offered session suites is supported (${SUPPORTED_SESSION_SUITES.join(', ')})`,
  );
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** TH = SHA-384("ekms-session-v1" ‖ u32(len CH) ‖ CH ‖ u32(len body) ‖ body). */
export function transcriptHash(clientHello: Uint8Array, serverHelloBody: Uint8Array): Uint8Array {
  const h = createHash('sha384');
  h.update(LABEL)
    .update(u32(clientHello.length))
    .update(clientHello)
    .update(u32(serverHelloBody.length))
    .update(serverHelloBody);
  return new Uint8Array(h.digest());
}

function signedContent(purpose: string, th: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`${LABEL} ${purpose}`), th]);
}

/** Ed25519 public key object from its 32 raw bytes. @throws SessionError SESSION_HANDSHAKE_INVALID */
export function ed25519PublicKey(raw: Uint8Array): KeyObject {
  try {
    return createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') },
      format: 'jwk',
    });
  } catch (cause) {
    throw new SessionError('SESSION_HANDSHAKE_INVALID', 'not an Ed25519 public key', { cause });
  }
}

/** The raw 32 bytes of an Ed25519 public (or private) key object. */
export function ed25519Raw(key: KeyObject): Uint8Array {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const x = pub.export({ format: 'jwk' }).x;
  if (typeof x !== 'string') throw new Error('not an Ed25519 key');
  return new Uint8Array(Buffer.from(x, 'base64url'));
}

/** The enclave's signature over the transcript. */
export function signTranscript(identity: KeyObject, th: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, signedContent('server-hello', th), identity));
}

/**
 * Verifies the enclave's signature over the transcript.
 * @throws SessionError SESSION_SIGNATURE_INVALID
 */
export function verifyTranscriptSignature(identity: Uint8Array, th: Uint8Array, sig: Uint8Array): void {
  /* Precondition: the ServerHello is signed by the identity key the evidence binds, over this exact transcript. */
  if (!verify(null, signedContent('server-hello', th), ed25519PublicKey(identity), sig)) {
    throw new SessionError(
      'SESSION_SIGNATURE_INVALID',
      "the enclave's signature over the handshake transcript does not verify",
    );
  }
}

/**
 * What attestation evidence carries to bind an enclave identity key:
 * SHA-256("ekms-session-v1 enclave identity" ‖ key) (32 bytes).
 */
export function identityBinding(identity: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`${LABEL} enclave identity`).update(identity).digest());
}

/**
 * What an attested workload's evidence carries (Nitro `user_data`, SEV-SNP REPORT_DATA; 64 bytes):
 * SHA-256(recipient X-Wing public key) ‖ SHA-256("ekms-session-v1 workload" ‖ binder).
 */
export function workloadBinding(recipientPublicKeyDigest: Uint8Array, binder: Uint8Array): Uint8Array {
  const out = new Uint8Array(64);
  out.set(recipientPublicKeyDigest, 0);
  out.set(createHash('sha256').update(`${LABEL} workload`).update(binder).digest(), 32);
  return out;
}

/** What a principal signs to authenticate in a session: "ekms-session-v1 client-auth" ‖ binder. */
export function clientAuthContent(binder: Uint8Array): Uint8Array {
  return new Uint8Array(signedContent('client-auth', binder));
}

/** The keys of one session, per direction, and the binder. The owner calls `destroy()` at the end. */
export interface SessionKeys {
  readonly c2sKey: Uint8Array;
  readonly c2sIv: Uint8Array;
  readonly s2cKey: Uint8Array;
  readonly s2cIv: Uint8Array;
  readonly binder: Uint8Array;
}

/** HKDF-SHA-384 over the X-Wing shared secret with TH as salt (see the header). */
export function deriveSessionKeys(sharedSecret: Uint8Array, th: Uint8Array): SessionKeys {
  const expand = (label: string, length: number): Uint8Array =>
    new Uint8Array(hkdfSync('sha384', sharedSecret, th, `${LABEL} ${label}`, length));
  return {
    c2sKey: expand('c2s key', 32),
    c2sIv: expand('c2s iv', 12),
    s2cKey: expand('s2c key', 32),
    s2cIv: expand('s2c iv', 12),
    binder: expand('binder', 32),
  };
}

export function destroySessionKeys(k: SessionKeys): void {
  k.c2sKey.fill(0);
  k.c2sIv.fill(0);
  k.s2cKey.fill(0);
  k.s2cIv.fill(0);
  k.binder.fill(0);
}

function recordNonce(iv: Uint8Array, seq: number): Buffer {
  const nonce = Buffer.from(iv);
  const s = Buffer.alloc(8);
  s.writeBigUInt64BE(BigInt(seq));
  for (let i = 0; i < 8; i++) nonce[4 + i]! ^= s[i]!;
  return nonce;
}

/**
 * One direction of the record layer: seals (sender) or opens (receiver) records in order.
 * The sequence number advances only after success; any failure is final for the session.
 */
export class RecordProtector {
  #key: Buffer;
  #iv: Uint8Array;
  #seq = 0;
  #failed = false;

  constructor(key: Uint8Array, iv: Uint8Array) {
    this.#key = Buffer.from(key);
    this.#iv = Uint8Array.from(iv);
  }

  /** Records sealed or opened so far. */
  get sequence(): number {
    return this.#seq;
  }

  #checkLimit(): void {
    if (this.#failed) throw new SessionError('SESSION_RECORD_INVALID', 'the session already failed');
    /* Precondition: a key never seals or opens more than MAX_RECORDS_PER_DIRECTION records. */
    if (this.#seq >= MAX_RECORDS_PER_DIRECTION) {
      throw new SessionError('SESSION_LIMIT_REACHED', 'the session used up its record sequence numbers');
    }
  }

  /** @throws SessionError SESSION_LIMIT_REACHED */
  seal(plaintext: Uint8Array): Uint8Array {
    this.#checkLimit();
    const c = createCipheriv('aes-256-gcm', this.#key, recordNonce(this.#iv, this.#seq));
    c.setAAD(RECORD_AAD);
    const out = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
    this.#seq++;
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }

  /** @throws SessionError SESSION_RECORD_INVALID, SESSION_LIMIT_REACHED */
  open(record: Uint8Array): Uint8Array {
    this.#checkLimit();
    /* Precondition: a record authenticates under this direction's key at the next expected sequence number. */
    if (record.length < TAG_BYTES) {
      this.#failed = true;
      throw new SessionError('SESSION_RECORD_INVALID', `record ${this.#seq} is shorter than its tag`);
    }
    try {
      const d = createDecipheriv('aes-256-gcm', this.#key, recordNonce(this.#iv, this.#seq));
      d.setAAD(RECORD_AAD);
      d.setAuthTag(record.subarray(record.length - TAG_BYTES));
      const out = Buffer.concat([d.update(record.subarray(0, record.length - TAG_BYTES)), d.final()]);
      this.#seq++;
      return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    } catch {
      this.#failed = true;
      throw new SessionError(
        'SESSION_RECORD_INVALID',
        `record ${this.#seq} failed authentication (replayed, reordered, dropped, truncated or tampered)`,
      );
    }
  }

  /** Zeroes the key. */
  destroy(): void {
    this.#key.fill(0);
    this.#iv.fill(0);
    this.#failed = true;
  }
}

/** Creates an Ed25519 private key object from PKCS#8 PEM (principal keys). */
export function ed25519PrivateKeyFromPem(pem: string): KeyObject {
  return createPrivateKey(pem);
}
