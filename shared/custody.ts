/**
 * Root-key custody formats (design §4; docs/custody.md §4): the custody set (custodians' X-Wing public keys and the
 * threshold M), the custody bundle the enclave hands the host (one HPKE-encrypted Shamir share per custodian, a
 * commitment per share, the root key's public check value, all signed by the provisioning enclave's identity key
 * and carrying that enclave's attestation evidence), and the derivations both ends compute. No I/O (style §13).
 *
 * Byte-level choices (labels are versioned, "ekms-custody-v1"):
 * - set digest = SHA-256("ekms-custody-v1 set" ‖ CBOR {v:1, threshold, custodians:[{name, publicKey}]});
 * - key check  = HKDF-SHA-384(IKM = root key, salt = empty, info = "EKMS-CUSTODY-V1 key check", L = 16): public,
 *   identifies the root key without revealing it (like the sealing key id of docs/sealed-state.md §2);
 * - commitment_i = SHA-256("ekms-custody-v1 share commitment" ‖ salt(32) ‖ u8(index) ‖ share_i): a share whose
 *   commitment does not match is refused on its own, so one bad custodian cannot spoil the good shares. Shares of
 *   fewer than M custodians are uniformly random, so the commitments (and the key check) reveal nothing useful;
 * - share encryption: HPKE (shared/hpke.ts, X-Wing) to the custodian's public key, info = CBOR {ctx:
 *   "ekms-custody-v1 share", setDigest, index, keyCheck, generation}, empty aad;
 * - the body names the first admin the provisioning enclave pinned (or null): a recovery over a store without
 *   sealed principals may pin no other admin (enclave/custody/custody.ts `checkRootKeyAgainstState`);
 * - statement signature = Ed25519(identity, "ekms-custody-v1 bundle" ‖ body bytes), where `identity` is the
 *   provisioning enclave's per-boot key and `evidence` its attestation binding that key (docs/protocol.md §5.1).
 */
import { createHash, hkdfSync, verify } from 'node:crypto';
import { decodeCbor, encodeCbor } from './cbor.js';
import { CustodyError } from './custody-errors.js';
import { HPKE_SUITE } from './hpke.js';
import { decodeEvidence, type EvidenceBundle, ed25519PublicKey } from './session.js';
import { XWING } from './xwing.js';

/** The host blob that holds the custody bundle (not sealed: it holds only ciphertexts and public values). */
export const CUSTODY_BUNDLE_BLOB = 'custody.bundle';

/** Limits of custody documents (style §6). */
export const CUSTODY_LIMITS = Object.freeze({
  minCustodians: 2,
  maxCustodians: 16,
  minThreshold: 2,
  /** A bundle: 16 × (1216-byte key + 1120-byte enc + share) + evidence (≤ 32 KiB) stays far below this. */
  maxBundleBytes: 256 * 1024,
  /** Bytes of a share: a 32-byte root key + its x-coordinate. */
  shareBytes: 33,
  keyCheckBytes: 16,
  saltBytes: 32,
  /** The first admin's public key (SPKI DER; Ed25519 is 44 bytes). */
  maxAdminKeyBytes: 512,
});

const LABEL = 'ekms-custody-v1';
const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const HEX = /^(?:[0-9a-f]{2})+$/;

export interface Custodian {
  /** A label for humans (unique in the set). */
  readonly name: string;
  /** X-Wing public key (1216 bytes) that the custodian's share is encrypted to. */
  readonly publicKey: Uint8Array;
}

export interface CustodySet {
  /** M: how many custodians must submit their shares. */
  readonly threshold: number;
  /** The N custodians, in share-index order (index = position + 1). */
  readonly custodians: readonly Custodian[];
}

export interface BundleShare {
  /** 1..N, the custodian's position in the set + 1. */
  readonly index: number;
  readonly custodian: string;
  readonly commitment: Uint8Array;
  /** HPKE encapsulated key (X-Wing ciphertext, 1120 bytes). */
  readonly enc: Uint8Array;
  readonly ciphertext: Uint8Array;
}

export interface BundleBody {
  readonly v: 1;
  readonly suite: string;
  readonly set: CustodySet;
  readonly setDigest: Uint8Array;
  readonly keyCheck: Uint8Array;
  /** 1 at provisioning; a re-split of the same root key increments it (custodians refuse older generations). */
  readonly generation: number;
  readonly createdAt: string;
  /**
   * The first admin the provisioning enclave pinned (`--admin-key`, SPKI DER), or null. An unlock over a store
   * without sealed principals may pin only this admin: otherwise a host could unlock a fork holding just the bundle
   * with its own admin key, and splice the resulting `principals` blob (sealed under the real root key) into the
   * real state (docs/custody.md §6).
   */
  readonly admin: Uint8Array | null;
  readonly salt: Uint8Array;
  readonly shares: readonly BundleShare[];
}

export interface CustodyBundle {
  readonly body: BundleBody;
  /** The exact signed bytes of `body`. */
  readonly bodyBytes: Uint8Array;
  /** The provisioning enclave's per-boot Ed25519 identity key (32 bytes). */
  readonly identity: Uint8Array;
  /** That enclave's attestation evidence, binding `identity` (docs/protocol.md §5.1). */
  readonly evidence: EvidenceBundle;
  readonly signature: Uint8Array;
}

function invalid(message: string, reason = 'malformed'): CustodyError {
  return new CustodyError('CUSTODY_INVALID', message, { details: { reason } });
}

function bytesField(m: Record<string, unknown>, key: string, length?: number, max = 64 * 1024): Uint8Array {
  const v = m[key];
  /* Precondition: byte fields are byte strings of the required length. */
  if (!(v instanceof Uint8Array) || (length !== undefined && v.length !== length) || v.length > max) {
    throw invalid(`${key} must be ${length === undefined ? 'a byte string' : `${length} bytes`}`);
  }
  return v;
}

function asMap(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) {
    throw invalid(`${what} must be a map`);
  }
  return v as Record<string, unknown>;
}

function exactKeys(m: Record<string, unknown>, keys: readonly string[], what: string): void {
  for (const k of Object.keys(m)) {
    /* Precondition: no unknown fields (fail closed, style §4). */
    if (!keys.includes(k)) throw invalid(`${what} has an unknown field "${k}"`);
  }
}

/**
 * Checks a custody set: 2 ≤ M ≤ N ≤ 16, unique names and keys, X-Wing key sizes.
 * @throws CustodyError CUSTODY_INVALID
 */
export function checkCustodySet(set: CustodySet): CustodySet {
  const n = set.custodians.length;
  /* Precondition: 2 ≤ threshold ≤ custodians ≤ 16. */
  if (
    n < CUSTODY_LIMITS.minCustodians ||
    n > CUSTODY_LIMITS.maxCustodians ||
    !Number.isInteger(set.threshold) ||
    set.threshold < CUSTODY_LIMITS.minThreshold ||
    set.threshold > n
  ) {
    throw invalid(
      `a custody set needs ${CUSTODY_LIMITS.minThreshold} ≤ threshold ≤ custodians ≤ ${CUSTODY_LIMITS.maxCustodians} (got ${String(set.threshold)} of ${n})`,
    );
  }
  const names = new Set<string>();
  const keys = new Set<string>();
  for (const c of set.custodians) {
    /* Precondition: names follow the principal name rule and are unique. */
    if (typeof c.name !== 'string' || !NAME.test(c.name) || names.has(c.name)) {
      throw invalid(`custodian name "${String(c.name)}" is invalid or repeated`);
    }
    /* Precondition: each key is an X-Wing public key, and no key appears twice (one person, one share). */
    if (!(c.publicKey instanceof Uint8Array) || c.publicKey.length !== XWING.publicKeyBytes) {
      throw invalid(`custodian ${c.name}: the public key must be ${XWING.publicKeyBytes} bytes (X-Wing)`);
    }
    const hex = Buffer.from(c.publicKey).toString('hex');
    if (keys.has(hex)) throw invalid(`custodian ${c.name}: the same public key appears twice`);
    names.add(c.name);
    keys.add(hex);
  }
  return set;
}

/**
 * The custodians file of `ekms start --custodians FILE` (JSON):
 * `{"version":1,"threshold":M,"custodians":[{"name":"…","publicKey":"<hex>"}…]}`.
 * @throws CustodyError CUSTODY_INVALID
 */
export function parseCustodySetJson(doc: unknown, source: string): CustodySet {
  const m = asMap(doc, source);
  exactKeys(m, ['version', 'threshold', 'custodians'], source);
  if (m['version'] !== 1) throw invalid(`${source}: version must be 1`);
  const list = m['custodians'];
  if (!Array.isArray(list) || list.length > CUSTODY_LIMITS.maxCustodians) {
    throw invalid(`${source}: custodians must be a list of at most ${CUSTODY_LIMITS.maxCustodians}`);
  }
  const custodians = list.map((c, i) => {
    const e = asMap(c, `${source}: custodians[${i}]`);
    exactKeys(e, ['name', 'publicKey', 'fingerprint'], `${source}: custodians[${i}]`);
    const pk = e['publicKey'];
    if (typeof pk !== 'string' || !HEX.test(pk)) {
      throw invalid(`${source}: custodians[${i}].publicKey must be lowercase hex`);
    }
    const publicKey = new Uint8Array(Buffer.from(pk, 'hex'));
    /* Precondition: a fingerprint, when given, matches the key (catches a key pasted from the wrong file). */
    if (e['fingerprint'] !== undefined && e['fingerprint'] !== custodianFingerprint(publicKey)) {
      throw invalid(`${source}: custodians[${i}].fingerprint does not match its public key`);
    }
    return { name: e['name'] as string, publicKey };
  });
  return checkCustodySet({ threshold: m['threshold'] as number, custodians });
}

/** The custodians file form of a set (hex keys, with fingerprints). */
export function custodySetToJson(set: CustodySet): Record<string, unknown> {
  return {
    version: 1,
    threshold: set.threshold,
    custodians: set.custodians.map((c) => ({
      name: c.name,
      publicKey: Buffer.from(c.publicKey).toString('hex'),
      fingerprint: custodianFingerprint(c.publicKey),
    })),
  };
}

function setValue(set: CustodySet): Record<string, unknown> {
  return {
    v: 1,
    threshold: set.threshold,
    custodians: set.custodians.map((c) => ({ name: c.name, publicKey: c.publicKey })),
  };
}

/** Canonical CBOR of a custody set (what `--custody` passes to the enclave, and what the digest covers). */
export function encodeCustodySet(set: CustodySet): Uint8Array {
  return encodeCbor(setValue(checkCustodySet(set)));
}

function setFromValue(value: unknown): CustodySet {
  const m = asMap(value, 'custody set');
  exactKeys(m, ['v', 'threshold', 'custodians'], 'custody set');
  if (m['v'] !== 1) throw invalid('custody set version must be 1');
  const list = m['custodians'];
  if (!Array.isArray(list) || list.length > CUSTODY_LIMITS.maxCustodians) {
    throw invalid('custody set custodians must be a short list');
  }
  const custodians = list.map((c, i) => {
    const e = asMap(c, `custodians[${i}]`);
    exactKeys(e, ['name', 'publicKey'], `custodians[${i}]`);
    return { name: e['name'] as string, publicKey: bytesField(e, 'publicKey', XWING.publicKeyBytes) };
  });
  return checkCustodySet({ threshold: m['threshold'] as number, custodians });
}

/**
 * Decodes the canonical CBOR of a custody set.
 * @throws CustodyError CUSTODY_INVALID
 */
export function decodeCustodySet(bytes: Uint8Array): CustodySet {
  let value: unknown;
  try {
    value = decodeCbor(bytes);
  } catch (cause) {
    throw new CustodyError('CUSTODY_INVALID', 'the custody set is not valid CBOR', { cause });
  }
  return setFromValue(value);
}

/** SHA-256("ekms-custody-v1 set" ‖ canonical CBOR of the set). */
export function custodySetDigest(set: CustodySet): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`${LABEL} set`).update(encodeCustodySet(set)).digest());
}

/** A custodian key's fingerprint: SHA-256 of the X-Wing public key, lowercase hex (shown by `custody keygen`). */
export function custodianFingerprint(publicKey: Uint8Array): string {
  return createHash('sha256').update(publicKey).digest('hex');
}

/** The root key's public check value (16 bytes; see the header). */
export function rootKeyCheck(rootKey: Uint8Array): Uint8Array {
  return new Uint8Array(
    hkdfSync('sha384', rootKey, new Uint8Array(0), 'EKMS-CUSTODY-V1 key check', CUSTODY_LIMITS.keyCheckBytes),
  );
}

/** The commitment to share `index` (see the header). */
export function shareCommitment(salt: Uint8Array, index: number, share: Uint8Array): Uint8Array {
  return new Uint8Array(
    createHash('sha256')
      .update(`${LABEL} share commitment`)
      .update(salt)
      .update(Uint8Array.of(index))
      .update(share)
      .digest(),
  );
}

/** The HPKE `info` of share `index`: binds the set, the index, the root key's check value and the generation. */
export function shareInfo(
  body: Pick<BundleBody, 'setDigest' | 'keyCheck' | 'generation'>,
  index: number,
): Uint8Array {
  return encodeCbor({
    ctx: `${LABEL} share`,
    setDigest: body.setDigest,
    index,
    keyCheck: body.keyCheck,
    generation: body.generation,
  });
}

/** What the identity key signs: "ekms-custody-v1 bundle" ‖ body bytes. */
export function bundleSignedContent(bodyBytes: Uint8Array): Uint8Array {
  const label = Buffer.from(`${LABEL} bundle`, 'latin1');
  const out = new Uint8Array(label.length + bodyBytes.length);
  out.set(label, 0);
  out.set(bodyBytes, label.length);
  return out;
}

/** Encodes a bundle body (the signed part). */
export function encodeBundleBody(body: BundleBody): Uint8Array {
  return encodeCbor({
    v: 1,
    suite: body.suite,
    set: setValue(body.set),
    setDigest: body.setDigest,
    keyCheck: body.keyCheck,
    generation: body.generation,
    createdAt: body.createdAt,
    admin: body.admin,
    salt: body.salt,
    shares: body.shares.map((s) => ({
      index: s.index,
      custodian: s.custodian,
      commitment: s.commitment,
      enc: s.enc,
      ciphertext: s.ciphertext,
    })),
  });
}

/** Encodes a whole bundle (what the host stores as `custody.bundle`). */
export function encodeBundle(bundle: Omit<CustodyBundle, 'body'>): Uint8Array {
  return encodeCbor({
    v: 1,
    body: bundle.bodyBytes,
    identity: bundle.identity,
    evidence: {
      type: bundle.evidence.type,
      document: bundle.evidence.document,
      certificates: [...bundle.evidence.certificates],
    },
    signature: bundle.signature,
  });
}

function decodeBody(bodyBytes: Uint8Array): BundleBody {
  const m = asMap(decodeCbor(bodyBytes), 'bundle body');
  exactKeys(
    m,
    ['v', 'suite', 'set', 'setDigest', 'keyCheck', 'generation', 'createdAt', 'admin', 'salt', 'shares'],
    'bundle body',
  );
  if (m['v'] !== 1) throw invalid('bundle body version must be 1', 'version');
  /* Precondition: the share encryption suite is the one this build speaks. */
  if (m['suite'] !== HPKE_SUITE.id) throw invalid(`unknown share suite ${String(m['suite'])}`, 'suite');
  const set = setFromValue(m['set']);
  const setDigest = bytesField(m, 'setDigest', 32);
  /* Precondition: the body's set digest is the digest of the set it carries. */
  if (!Buffer.from(setDigest).equals(Buffer.from(custodySetDigest(set)))) {
    throw invalid('the bundle set digest does not match its custody set', 'set-digest');
  }
  const generation = m['generation'];
  if (typeof generation !== 'number' || !Number.isSafeInteger(generation) || generation < 1) {
    throw invalid('generation must be a positive integer');
  }
  const createdAt = m['createdAt'];
  if (typeof createdAt !== 'string' || createdAt.length > 64) throw invalid('createdAt must be an ISO date');
  /* Precondition: the first admin is named explicitly: null, or a non-empty bounded byte string (SPKI DER). */
  if (!Object.hasOwn(m, 'admin')) throw invalid('the bundle must name its first admin (or null)');
  const admin =
    m['admin'] === null ? null : bytesField(m, 'admin', undefined, CUSTODY_LIMITS.maxAdminKeyBytes);
  if (admin !== null && admin.length === 0) throw invalid('admin must be null or a public key');
  const list = m['shares'];
  /* Precondition: one share per custodian, in index order. */
  if (!Array.isArray(list) || list.length !== set.custodians.length) {
    throw invalid('the bundle must hold one share per custodian');
  }
  const shares = list.map((s, i): BundleShare => {
    const e = asMap(s, `shares[${i}]`);
    exactKeys(e, ['index', 'custodian', 'commitment', 'enc', 'ciphertext'], `shares[${i}]`);
    if (e['index'] !== i + 1 || e['custodian'] !== set.custodians[i]?.name) {
      throw invalid(`shares[${i}] must be custodian ${set.custodians[i]?.name} at index ${i + 1}`);
    }
    return {
      index: i + 1,
      custodian: e['custodian'] as string,
      commitment: bytesField(e, 'commitment', 32),
      enc: bytesField(e, 'enc', HPKE_SUITE.nEnc),
      ciphertext: bytesField(e, 'ciphertext', CUSTODY_LIMITS.shareBytes + HPKE_SUITE.nT),
    };
  });
  return {
    v: 1,
    suite: HPKE_SUITE.id,
    set,
    setDigest,
    keyCheck: bytesField(m, 'keyCheck', CUSTODY_LIMITS.keyCheckBytes),
    generation,
    createdAt,
    admin,
    salt: bytesField(m, 'salt', CUSTODY_LIMITS.saltBytes),
    shares,
  };
}

/**
 * Decodes a custody bundle and checks its structure and its signature under the identity key it names. Whether
 * that identity belongs to a genuine enclave (its evidence) is the caller's check: `verifyBundleEvidence` in
 * attestation/custody-evidence.ts.
 * @throws CustodyError CUSTODY_INVALID
 */
export function decodeBundle(bytes: Uint8Array): CustodyBundle {
  /* Precondition: the bundle is bounded before it is decoded. */
  if (!(bytes instanceof Uint8Array) || bytes.length > CUSTODY_LIMITS.maxBundleBytes) {
    throw invalid(`a custody bundle must be at most ${CUSTODY_LIMITS.maxBundleBytes} bytes`);
  }
  try {
    const m = asMap(decodeCbor(bytes), 'custody bundle');
    exactKeys(m, ['v', 'body', 'identity', 'evidence', 'signature'], 'custody bundle');
    if (m['v'] !== 1) throw invalid('custody bundle version must be 1', 'version');
    const bodyBytes = bytesField(m, 'body', undefined, CUSTODY_LIMITS.maxBundleBytes);
    const body = decodeBody(bodyBytes);
    const identity = bytesField(m, 'identity', 32);
    const signature = bytesField(m, 'signature', 64);
    const evidence = decodeEvidence(m['evidence'], 'evidence');
    /* Precondition: the provisioning enclave's identity key signed the body. */
    let ok = false;
    try {
      ok = verify(null, bundleSignedContent(bodyBytes), ed25519PublicKey(identity), signature);
    } catch {
      ok = false;
    }
    if (!ok) throw invalid('the custody bundle signature does not verify', 'signature');
    return { body, bodyBytes, identity, evidence, signature };
  } catch (err) {
    if (err instanceof CustodyError) throw err;
    throw new CustodyError('CUSTODY_INVALID', 'the custody bundle is malformed', {
      cause: err,
      details: { reason: 'malformed' },
    });
  }
}
