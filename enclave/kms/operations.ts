/**
 * The key service operations (design §4; docs/key-service.md §4), modelled on the AWS KMS API: CreateKey,
 * DescribeKey, ListKeys, Enable/DisableKey, Encrypt, Decrypt, ReEncrypt, GenerateDataKey(WithoutPlaintext),
 * RotateKey, Enable/DisableKeyRotation, Schedule/CancelKeyDeletion and aliases.
 *
 * Every handler: checks its parameters (REQUEST_INVALID, CONTEXT_INVALID), resolves the key, asks the authorizer
 * (ACCESS_DENIED), then acts. Plaintext and key material stay inside the enclave except the plaintext that
 * Decrypt and GenerateDataKey return to their (for now: admin) caller; the server zeroes those buffers once the
 * response is encoded. ReEncrypt decrypts and re-encrypts inside and zeroes the plaintext in `finally`.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { parsePolicy } from '../../attestation/policy.js';
import {
  type Approval,
  approvalRequestDigest,
  type ProtectedOperation,
  parseApprovals,
  parseQuorumDefinition,
} from '../../shared/approval.js';
import { CryptoError } from '../../shared/crypto-errors.js';
import type { EncryptionContext } from '../../shared/encryption-context.js';
import { ProtocolError } from '../../shared/errors.js';
import { KmsError } from '../../shared/kms-errors.js';
import { LIMITS } from '../../shared/limits.js';
import type { Params } from '../../shared/messages.js';
import { secureRandom } from '../../shared/random.js';
import { DEFAULT_SUITE_ID, getSuite, getSuiteByName } from '../../shared/suites.js';
import type { AttestedWorkload } from '../authenticate.js';
import { openBlob, parseBlob, sealBlob } from '../crypto/ciphertext-blob.js';
import { currentVersion, type KeyRecord, MAX_RELEASE_POLICY_BYTES } from '../keystore/key-record.js';
import type { Keystore } from '../keystore/keystore.js';
import { type Authorizer, KmsAction, type Principal } from './authorizer.js';
import {
  DEFAULT_KEY_POLICY,
  DEFAULT_KEY_POLICY_DOCUMENT,
  lintKeyPolicy,
  parseKeyPolicyText,
  WORKLOAD_PRINCIPAL_PREFIX,
} from './key-policy.js';
import {
  bytesParam,
  checkKeys,
  contextParam,
  intParam,
  keyIdParam,
  optionalKeyIdParam,
  stringParam,
} from './params.js';
import { type ApproverDirectory, checkQuorumApprovers, requireQuorum } from './quorum.js';
import { authorizeRelease, type ReleaseContext, wrapForRecipient } from './release.js';

/** What a key service operation needs. */
export interface KmsContext extends Partial<Omit<ReleaseContext, 'now'>> {
  readonly keystore: Keystore;
  readonly authorizer: Authorizer;
  readonly principal: Principal;
  readonly now?: () => number;
  /** The registered principals: approvers of protected keys are checked against them (docs/key-policy.md §10). */
  readonly principals?: ApproverDirectory;
}

function releaseContext(ctx: KmsContext): ReleaseContext {
  return {
    workload: ctx.workload,
    identity: ctx.identity,
    now: ctx.now ?? Date.now,
    requestDigest: ctx.requestDigest,
  };
}

/** `recipient: true` asks for the key wrapped to the session's attested workload instead of in plaintext. */
function recipientParam(params: Params): boolean {
  const v = params['recipient'];
  if (v === undefined || v === false) return false;
  if (v === true) return true;
  throw new ProtocolError('REQUEST_INVALID', 'recipient must be a boolean');
}

/** A release policy parameter: JSON text of an attestation policy (checked now), or null to remove it. */
function releasePolicyParam(params: Params): string | null | undefined {
  const v = params['releasePolicy'];
  if (v === undefined || v === null) return v;
  if (typeof v !== 'string' || Buffer.byteLength(v) > MAX_RELEASE_POLICY_BYTES) {
    throw new ProtocolError(
      'REQUEST_INVALID',
      `releasePolicy must be JSON text of at most ${MAX_RELEASE_POLICY_BYTES} bytes`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(v);
  } catch {
    throw new ProtocolError('REQUEST_INVALID', 'releasePolicy is not JSON');
  }
  parsePolicy(json); // AttestationError POLICY_INVALID, listing what is wrong
  return v;
}

export type KmsOperation = (params: Params, ctx: KmsContext) => Promise<Params>;

const iso = (ms: number): string => new Date(ms).toISOString();

/** The public description of a key: never its material. */
export function keyMetadata(r: KeyRecord, aliases: readonly string[]): Params {
  return {
    keyId: r.id,
    description: r.description,
    state: r.state,
    keyUsage: 'ENCRYPT_DECRYPT',
    suite: getSuite(r.suite).name,
    createdAt: iso(r.createdAt),
    currentVersion: currentVersion(r).version,
    versions: r.versions.map((v) => ({ version: v.version, createdAt: iso(v.createdAt) })),
    rotation:
      r.rotationPeriodDays === null || r.nextRotationAt === null
        ? null
        : { periodDays: r.rotationPeriodDays, nextRotationAt: iso(r.nextRotationAt) },
    deletionDate: r.deletion === null ? null : iso(r.deletion.deletionDate),
    pendingWindowDays: r.deletion === null ? null : r.deletion.windowDays,
    destroyedAt: r.destroyedAt === null ? null : iso(r.destroyedAt),
    deniedUses:
      r.deniedUses === null
        ? null
        : {
            count: r.deniedUses.count,
            lastAt: iso(r.deniedUses.lastAt),
            lastOperation: r.deniedUses.lastOperation,
          },
    aliases: [...aliases],
    releasePolicy: r.releasePolicy ?? null,
    quorum:
      r.quorum === undefined
        ? null
        : {
            threshold: r.quorum.threshold,
            approvers: [...r.quorum.approvers],
            sequence: r.approvalSequence ?? 0,
          },
  };
}

function metadataOf(ctx: KmsContext, r: KeyRecord): Params {
  return {
    keyMetadata: keyMetadata(
      r,
      ctx.keystore.aliases(r.id).map((a) => a.name),
    ),
  };
}

async function authorize(
  ctx: KmsContext,
  action: KmsAction,
  keyId?: string,
  encryptionContext?: EncryptionContext,
): Promise<void> {
  await ctx.authorizer.authorize({
    principal: ctx.principal,
    action,
    ...(keyId === undefined ? {} : { keyId }),
    ...(encryptionContext === undefined ? {} : { encryptionContext }),
    ...(ctx.workload === undefined ? {} : { claims: ctx.workload.claims }),
  });
}

/**
 * Dual control (docs/key-policy.md §10). On a protected key, `approvals` must meet the key's quorum for this exact
 * request (op, key id, the key's approval sequence, parameters): QUORUM_REQUIRED otherwise. Returns the sequence
 * the check saw — the keystore changes the key only if it is still the key's, and advances it in the same write —
 * and who approved. On an unprotected key the approvals are not looked at (their shape was checked).
 * Call after the authorizer: the key policy applies first.
 */
async function quorumFor(
  ctx: KmsContext,
  op: ProtectedOperation,
  id: string,
  params: Params,
  approvals: readonly Approval[],
): Promise<{ sequence: number; approvedBy: readonly string[] | null }> {
  const r = await ctx.keystore.get(id);
  const sequence = r.approvalSequence ?? 0;
  if (r.quorum === undefined) return { sequence, approvedBy: null };
  const digest = approvalRequestDigest({ op, keyId: id, sequence, params });
  const approvedBy = requireQuorum({
    quorum: r.quorum,
    digest,
    approvals,
    principals: ctx.principals,
    now: (ctx.now ?? Date.now)(),
    keyId: id,
    op,
    sequence,
  });
  return { sequence, approvedBy };
}

/** A result with the approvers of a quorum-approved operation (absent for unprotected keys). */
function approved(result: Params, approvedBy: readonly string[] | null): Params {
  return approvedBy === null ? result : { ...result, approvedBy: [...approvedBy] };
}

/**
 * Attestation-gated release (docs/protocol.md §6): the key's release policy must accept the session's attested
 * workload, and no explicit Deny of the key policy may match (an explicit Deny wins over every allow, releases
 * included: docs/key-policy.md §5). Returns the workload.
 * @throws SessionError RECIPIENT_NOT_ATTESTED; KmsError ACCESS_DENIED
 */
async function authorizeRecipient(
  ctx: KmsContext,
  rc: ReleaseContext,
  r: KeyRecord,
  action: KmsAction,
  encryptionContext?: EncryptionContext,
): Promise<AttestedWorkload> {
  const workload = authorizeRelease(rc, r, action);
  await ctx.authorizer.authorize({
    principal: ctx.principal,
    action,
    keyId: r.id,
    ...(encryptionContext === undefined ? {} : { encryptionContext }),
    claims: workload.claims,
    denyOnly: true,
  });
  return workload;
}

/** Seals `plaintext` under the current version of an enabled key. */
function sealUnder(r: KeyRecord, plaintext: Uint8Array, context: EncryptionContext): Params {
  const v = currentVersion(r);
  if (v.material === null) throw new KmsError('KEY_DESTROYED', `key ${r.id} was destroyed`);
  const ciphertextBlob = sealBlob({
    suite: r.suite,
    keyId: r.id,
    keyVersion: v.version,
    key: v.material,
    plaintext,
    context,
  });
  return { ciphertextBlob, keyId: r.id, keyVersion: v.version };
}

/**
 * Opens a blob: finds its key and version, checks the key is usable and authorised, and decrypts.
 * @throws CryptoError (blob structure, DECRYPT_FAILED…), KmsError KEY_ID_MISMATCH, KEY_VERSION_NOT_FOUND, state codes
 */
async function openUnder(
  ctx: KmsContext,
  blob: Uint8Array,
  context: EncryptionContext,
  expectedKey: string | undefined,
  action: KmsAction,
  authorizeKey?: (r: KeyRecord) => Promise<unknown>,
): Promise<{ plaintext: Uint8Array; keyId: string; keyVersion: number }> {
  const parsed = parseBlob(blob);
  /* Precondition: a caller that names a key gets an answer only for ciphertexts of that key. */
  if (expectedKey !== undefined && ctx.keystore.resolve(expectedKey) !== parsed.keyId) {
    throw new KmsError('KEY_ID_MISMATCH', `the ciphertext was made under another key than ${expectedKey}`);
  }
  const id = ctx.keystore.resolve(parsed.keyId);
  if (authorizeKey === undefined) await authorize(ctx, action, id, context);
  else await authorizeKey(await ctx.keystore.get(id));
  const r = await ctx.keystore.use(id, action);
  const v = r.versions[parsed.keyVersion - 1];
  if (v === undefined || v.version !== parsed.keyVersion || v.material === null) {
    throw new KmsError('KEY_VERSION_NOT_FOUND', `key ${id} has no version ${parsed.keyVersion}`);
  }
  /* Precondition: the blob names its key's suite (a key keeps the suite it was created with), so one KEK is only ever
     used under one key schedule. A relabelled blob would fail the commitment anyway; this refuses it before. */
  if (parsed.suite.id !== r.suite) {
    throw new CryptoError(
      'CIPHERTEXT_KEY_MISMATCH',
      `the ciphertext names suite ${parsed.suite.name}; key ${id} uses another suite`,
    );
  }
  return { plaintext: openBlob(parsed, v.material, context), keyId: id, keyVersion: v.version };
}

function dataKeyLength(params: Params): number {
  const spec = params['keySpec'];
  const n = intParam(params, 'numberOfBytes', LIMITS.minDataKeyBytes, LIMITS.maxDataKeyBytes);
  if (spec !== undefined && n !== undefined) {
    throw new ProtocolError('REQUEST_INVALID', 'give keySpec or numberOfBytes, not both');
  }
  if (n !== undefined) return n;
  if (spec === undefined || spec === 'AES_256') return 32;
  if (spec === 'AES_128') return 16;
  throw new ProtocolError('REQUEST_INVALID', 'keySpec must be AES_256 or AES_128');
}

const createKey: KmsOperation = async (params, ctx) => {
  checkKeys(params, ['description', 'suite', 'rotationPeriodDays', 'aliasName', 'releasePolicy', 'quorum']);
  const releasePolicy = releasePolicyParam(params) ?? null;
  const quorum = params['quorum'] == null ? null : parseQuorumDefinition(params['quorum']);
  const description = stringParam(params, 'description', LIMITS.maxKeyDescriptionBytes) ?? '';
  const suiteName = stringParam(params, 'suite', 128);
  const suite = suiteName === undefined ? DEFAULT_SUITE_ID : getSuiteByName(suiteName).id;
  const rotationPeriodDays =
    intParam(params, 'rotationPeriodDays', LIMITS.minRotationPeriodDays, LIMITS.maxRotationPeriodDays) ??
    null;
  const aliasName = stringParam(params, 'aliasName', LIMITS.maxAliasNameBytes);
  await authorize(ctx, KmsAction.CreateKey);
  if (aliasName !== undefined) await authorize(ctx, KmsAction.CreateAlias);
  if (quorum !== null) checkQuorumApprovers(quorum, ctx.principals);
  // Key and alias are stored in one manifest write (the keystore checks the alias first): all or nothing.
  const r = await ctx.keystore.create(
    { description, suite, rotationPeriodDays, releasePolicy, quorum },
    aliasName,
  );
  return metadataOf(ctx, r);
};

const describeKey: KmsOperation = async (params, ctx) => {
  checkKeys(params, ['keyId']);
  const id = ctx.keystore.resolve(keyIdParam(params));
  await authorize(ctx, KmsAction.DescribeKey, id);
  return metadataOf(ctx, await ctx.keystore.get(id));
};

/** Pages: `limit` (1..1000, default 100) entries after `marker` (the last key id of the previous page). */
const listKeys: KmsOperation = async (params, ctx) => {
  checkKeys(params, ['limit', 'marker']);
  const limit = intParam(params, 'limit', 1, LIMITS.maxListPage) ?? LIMITS.defaultListPage;
  const marker = stringParam(params, 'marker', 256);
  await authorize(ctx, KmsAction.ListKeys);
  const all = ctx.keystore.list();
  const from = marker === undefined ? all : all.filter((k) => k.id > marker);
  const page = from.slice(0, limit);
  const truncated = from.length > limit;
  return {
    keys: page.map((k) => ({ keyId: k.id, state: k.state })),
    truncated,
    nextMarker: truncated ? (page[page.length - 1]?.id ?? null) : null,
  };
};

function enableDisable(enabled: boolean): KmsOperation {
  return async (params, ctx) => {
    if (enabled) {
      checkKeys(params, ['keyId']);
      const id = ctx.keystore.resolve(keyIdParam(params));
      await authorize(ctx, KmsAction.EnableKey, id);
      return metadataOf(ctx, await ctx.keystore.setEnabled(id, true));
    }
    /* Disabling is protected: it stops every use of the key (dual control, docs/key-policy.md §10). */
    checkKeys(params, ['keyId', 'approvals']);
    const id = ctx.keystore.resolve(keyIdParam(params));
    const approvals = parseApprovals(params['approvals']);
    await authorize(ctx, KmsAction.DisableKey, id);
    const q = await quorumFor(ctx, 'disableKey', id, params, approvals);
    return approved(metadataOf(ctx, await ctx.keystore.setEnabled(id, false, q.sequence)), q.approvedBy);
  };
}

const encrypt: KmsOperation = async (params, ctx) => {
  checkKeys(params, ['keyId', 'plaintext', 'encryptionContext']);
  const plaintext = bytesParam(params, 'plaintext');
  try {
    /* Precondition: Encrypt takes at most 4096 bytes (larger data: envelope encryption with a data key). */
    if (plaintext.length > LIMITS.maxEncryptPlaintextBytes) {
      throw new CryptoError(
        'PLAINTEXT_TOO_LARGE',
        `plaintext of ${plaintext.length} bytes exceeds ${LIMITS.maxEncryptPlaintextBytes}; use encryptStream (envelope encryption)`,
      );
    }
    const context = contextParam(params);
    const id = ctx.keystore.resolve(keyIdParam(params));
    await authorize(ctx, KmsAction.Encrypt, id, context);
    return sealUnder(await ctx.keystore.use(id, KmsAction.Encrypt), plaintext, context);
  } finally {
    // The caller's plaintext is zeroed whatever the outcome (a refusal must not leave it in enclave memory).
    plaintext.fill(0);
  }
};

const decrypt: KmsOperation = async (params, ctx) => {
  checkKeys(params, ['ciphertextBlob', 'encryptionContext', 'keyId', 'recipient']);
  const blob = bytesParam(params, 'ciphertextBlob');
  const context = contextParam(params);
  const expected = optionalKeyIdParam(params, 'keyId');
  if (recipientParam(params)) {
    const rc = releaseContext(ctx);
    const out = await openUnder(ctx, blob, context, expected, KmsAction.Decrypt, (r) =>
      authorizeRecipient(ctx, rc, r, KmsAction.Decrypt, context),
    );
    try {
      const workload = authorizeRelease(rc, await ctx.keystore.get(out.keyId), 'Decrypt');
      return {
        keyId: out.keyId,
        keyVersion: out.keyVersion,
        ...wrapForRecipient(
          rc,
          workload,
          { op: 'Decrypt', keyId: out.keyId, keyVersion: out.keyVersion },
          out.plaintext,
        ),
      };
    } finally {
      out.plaintext.fill(0);
    }
  }
  const out = await openUnder(ctx, blob, context, expected, KmsAction.Decrypt);
  return { plaintext: out.plaintext, keyId: out.keyId, keyVersion: out.keyVersion };
};

/**
 * `releaseKey`: a version (default: current) of a key's material, wrapped to the attested workload's recipient
 * key, when the key's release policy accepts the workload's claims.
 */
const releaseKey: KmsOperation = async (params, ctx) => {
  checkKeys(params, ['keyId', 'keyVersion', 'approvals', 'recipientDigest']);
  const id = ctx.keystore.resolve(keyIdParam(params));
  const requested = intParam(params, 'keyVersion', 1, LIMITS.maxKeyVersions);
  const approvals = parseApprovals(params['approvals']);
  // Lowercase hex (a JSON value, so that the approval request documents carry it: client/approval.ts).
  const named = stringParam(params, 'recipientDigest', 64);
  if (named !== undefined && !/^[0-9a-f]{64}$/.test(named)) {
    throw new ProtocolError('REQUEST_INVALID', 'recipientDigest must be 64 lowercase hex digits (SHA-256)');
  }
  const rc = releaseContext(ctx);
  const record = await ctx.keystore.get(id);
  const workload = await authorizeRecipient(ctx, rc, record, KmsAction.ReleaseKey);
  const recipientDigest = createHash('sha256').update(workload.recipientPublicKey).digest();
  /* Precondition: a named recipient is this session's attested recipient key (approvals signed over it). */
  if (named !== undefined && !timingSafeEqual(Buffer.from(named, 'hex'), recipientDigest)) {
    throw new KmsError(
      'ACCESS_DENIED',
      `recipientDigest does not name this session's attested recipient key (SHA-256 ${recipientDigest.toString('hex')})`,
      { details: { keyId: id, action: 'ReleaseKey' } },
    );
  }
  /* Precondition: a protected key's release names its recipient, so its approvals cover who receives the key. */
  if (record.quorum !== undefined && named === undefined) {
    throw new KmsError(
      'APPROVAL_INVALID',
      `releaseKey of protected key ${id} must name its recipient: recipientDigest = SHA-256 of the attested recipient key (${recipientDigest.toString('hex')}), signed by the approvers`,
      { details: { keyId: id, recipientDigest: recipientDigest.toString('hex') } },
    );
  }
  const q = await quorumFor(ctx, 'releaseKey', id, params, approvals);
  // The key's state and the version are checked first, so a release that cannot happen leaves its approvals usable.
  const r = await ctx.keystore.use(id, 'ReleaseKey');
  const v = requested === undefined ? currentVersion(r) : r.versions[requested - 1];
  if (v === undefined || v.material === null) {
    throw new KmsError('KEY_VERSION_NOT_FOUND', `key ${id} has no version ${requested}`);
  }
  // A protected key's approvals are used up (sequence advanced and stored) before any material leaves.
  if (q.approvedBy !== null) await ctx.keystore.consumeApproval(id, q.sequence);
  return approved(
    {
      keyId: id,
      keyVersion: v.version,
      ...wrapForRecipient(rc, workload, { op: 'ReleaseKey', keyId: id, keyVersion: v.version }, v.material),
    },
    q.approvedBy,
  );
};

/** `putKeyPolicy`: sets (or with null removes: the default separation-of-duties policy applies) a key policy. */
const putKeyPolicy: KmsOperation = async (params, ctx) => {
  checkKeys(params, ['keyId', 'policy', 'approvals']);
  const id = ctx.keystore.resolve(keyIdParam(params));
  if (!('policy' in params))
    throw new ProtocolError('REQUEST_INVALID', 'policy is required (null removes it)');
  const text = params['policy'];
  if (text !== null && typeof text !== 'string')
    throw new ProtocolError('REQUEST_INVALID', 'policy must be JSON text or null');
  if (text !== null) parseKeyPolicyText(text); // KEY_POLICY_INVALID with the path of the problem
  const approvals = parseApprovals(params['approvals']);
  await authorize(ctx, KmsAction.PutKeyPolicy, id);
  const q = await quorumFor(ctx, 'putKeyPolicy', id, params, approvals);
  return approved(metadataOf(ctx, await ctx.keystore.setKeyPolicy(id, text, q.sequence)), q.approvedBy);
};

/**
 * `putKeyQuorum`: protects a key with a quorum `{threshold, approvers}` of registered admins, or (null) removes the
 * protection. Decided by the key policy as PutKeyPolicy (the quorum is part of the key's access rules); on a key
 * already protected it needs the current quorum's approvals, so protection is never removed or weakened silently.
 */
const putKeyQuorum: KmsOperation = async (params, ctx) => {
  checkKeys(params, ['keyId', 'quorum', 'approvals']);
  const id = ctx.keystore.resolve(keyIdParam(params));
  if (!('quorum' in params)) {
    throw new ProtocolError('REQUEST_INVALID', 'quorum is required (null removes it)');
  }
  const quorum = params['quorum'] === null ? null : parseQuorumDefinition(params['quorum']);
  const approvals = parseApprovals(params['approvals']);
  await authorize(ctx, KmsAction.PutKeyPolicy, id);
  if (quorum !== null) checkQuorumApprovers(quorum, ctx.principals);
  const q = await quorumFor(ctx, 'putKeyQuorum', id, params, approvals);
  return approved(metadataOf(ctx, await ctx.keystore.setQuorum(id, quorum, q.sequence)), q.approvedBy);
};

/** `getKeyPolicy`: the key's policy text, or the default policy (`default: true`). */
const getKeyPolicy: KmsOperation = async (params, ctx) => {
  checkKeys(params, ['keyId']);
  const id = ctx.keystore.resolve(keyIdParam(params));
  await authorize(ctx, KmsAction.GetKeyPolicy, id);
  const r = await ctx.keystore.get(id);
  return {
    keyId: id,
    policy: r.keyPolicy ?? JSON.stringify(DEFAULT_KEY_POLICY_DOCUMENT),
    default: r.keyPolicy == null,
  };
};

/**
 * `lintKeyPolicy`: findings about the key's effective policy and release policy (e.g. RELEASE_WITHOUT_ATTESTATION,
 * WILDCARD_PRINCIPAL_USE, ADMIN_CAN_USE; docs/key-policy.md §6).
 */
const lintKeyPolicyOp: KmsOperation = async (params, ctx) => {
  checkKeys(params, ['keyId']);
  const id = ctx.keystore.resolve(keyIdParam(params));
  await authorize(ctx, KmsAction.GetKeyPolicy, id);
  const r = await ctx.keystore.get(id);
  const policy = r.keyPolicy == null ? DEFAULT_KEY_POLICY : parseKeyPolicyText(r.keyPolicy);
  const findings = lintKeyPolicy(policy, {
    releasePolicy: r.releasePolicy ?? null,
    protectedKey: r.quorum !== undefined,
    isRegistered: (n) => (ctx.principals?.list() ?? []).some((p) => p.name === n),
  });
  return {
    keyId: id,
    findings: findings.map((f) => ({
      code: f.code,
      message: f.message,
      statement: f.statement === undefined ? null : f.statement,
    })),
  };
};

/** Operations a grant may delegate (use only: a grant never administers a key). */
const GRANTABLE: ReadonlySet<string> = new Set([
  KmsAction.Encrypt,
  KmsAction.Decrypt,
  KmsAction.ReEncryptFrom,
  KmsAction.ReEncryptTo,
  KmsAction.GenerateDataKey,
  KmsAction.GenerateDataKeyWithoutPlaintext,
  KmsAction.DescribeKey,
]);
const DAY_SECONDS = 86_400;

/**
 * `createGrant`: delegates named use operations on a key to a principal, until it expires (60 s .. 30 days,
 * default 1 day), optionally only for requests whose encryption context contains `contextSubset`.
 */
const createGrant: KmsOperation = async (params, ctx) => {
  checkKeys(params, ['keyId', 'grantee', 'operations', 'contextSubset', 'expiresInSeconds', 'approvals']);
  const id = ctx.keystore.resolve(keyIdParam(params));
  const grantee = stringParam(params, 'grantee', 64);
  const operations = params['operations'];
  /* Precondition: a grant names a principal and 1..7 grantable (use) operations. */
  if (grantee === undefined || grantee === '') throw new KmsError('GRANT_INVALID', 'grantee is required');
  if (
    !Array.isArray(operations) ||
    operations.length === 0 ||
    operations.length > GRANTABLE.size ||
    !operations.every((o) => typeof o === 'string' && GRANTABLE.has(o))
  ) {
    throw new KmsError(
      'GRANT_INVALID',
      `operations must be 1..${GRANTABLE.size} of ${[...GRANTABLE].join(', ')}`,
    );
  }
  const subset =
    params['contextSubset'] === undefined || params['contextSubset'] === null
      ? null
      : contextParam(params, 'contextSubset');
  const seconds = intParam(params, 'expiresInSeconds', 60, 30 * DAY_SECONDS) ?? DAY_SECONDS;
  const approvals = parseApprovals(params['approvals']);
  await authorize(ctx, KmsAction.CreateGrant, id);
  /* Precondition: the grantee exists now — a registered principal, or a workload principal (named by its
     measurement; registered names cannot contain ':'). A grant to a name nobody holds yet would go to whichever
     admin registers that name first, around whoever approved the grant. */
  if (
    !grantee.startsWith(WORKLOAD_PRINCIPAL_PREFIX) &&
    !(ctx.principals?.list() ?? []).some((p) => p.name === grantee)
  ) {
    throw new KmsError('GRANT_INVALID', `grantee ${grantee} is not a registered principal`, {
      details: { grantee },
    });
  }
  // On a protected key a grant needs the quorum: it widens who may use the key, as a policy change does.
  const q = await quorumFor(ctx, 'createGrant', id, params, approvals);
  const now = (ctx.now ?? Date.now)();
  const grant = {
    id: randomUUID(),
    grantee,
    operations: [...new Set(operations as string[])],
    contextSubset: subset === null ? null : { ...subset },
    createdAt: now,
    expiresAt: now + seconds * 1000,
    createdBy: ctx.principal.name,
  };
  await ctx.keystore.addGrant(id, grant, q.sequence);
  return approved(
    { keyId: id, grantId: grant.id, expiresAt: new Date(grant.expiresAt).toISOString() },
    q.approvedBy,
  );
};

const listGrants: KmsOperation = async (params, ctx) => {
  checkKeys(params, ['keyId']);
  const id = ctx.keystore.resolve(keyIdParam(params));
  await authorize(ctx, KmsAction.ListGrants, id);
  const now = (ctx.now ?? Date.now)();
  const r = await ctx.keystore.get(id);
  return {
    keyId: id,
    grants: (r.grants ?? [])
      .filter((g) => g.expiresAt > now)
      .map((g) => ({
        grantId: g.id,
        grantee: g.grantee,
        operations: [...g.operations],
        contextSubset: g.contextSubset,
        createdAt: new Date(g.createdAt).toISOString(),
        expiresAt: new Date(g.expiresAt).toISOString(),
        createdBy: g.createdBy,
      })),
  };
};

const revokeGrant: KmsOperation = async (params, ctx) => {
  checkKeys(params, ['keyId', 'grantId']);
  const id = ctx.keystore.resolve(keyIdParam(params));
  const grantId = stringParam(params, 'grantId', 64);
  if (grantId === undefined) throw new ProtocolError('REQUEST_INVALID', 'grantId is required');
  await authorize(ctx, KmsAction.RevokeGrant, id);
  await ctx.keystore.revokeGrant(id, grantId);
  return { keyId: id, grantId };
};

/** `putKeyReleasePolicy`: sets or (null) removes the attestation policy that gates releases of a key. */
const putKeyReleasePolicy: KmsOperation = async (params, ctx) => {
  checkKeys(params, ['keyId', 'releasePolicy', 'approvals']);
  const id = ctx.keystore.resolve(keyIdParam(params));
  if (!('releasePolicy' in params))
    throw new ProtocolError('REQUEST_INVALID', 'releasePolicy is required (null removes it)');
  const policy = releasePolicyParam(params) ?? null;
  const approvals = parseApprovals(params['approvals']);
  await authorize(ctx, KmsAction.PutKeyReleasePolicy, id);
  const q = await quorumFor(ctx, 'putKeyReleasePolicy', id, params, approvals);
  return approved(metadataOf(ctx, await ctx.keystore.setReleasePolicy(id, policy, q.sequence)), q.approvedBy);
};

const reEncrypt: KmsOperation = async (params, ctx) => {
  checkKeys(params, [
    'ciphertextBlob',
    'sourceEncryptionContext',
    'sourceKeyId',
    'destinationKeyId',
    'destinationEncryptionContext',
  ]);
  const blob = bytesParam(params, 'ciphertextBlob');
  const sourceContext = contextParam(params, 'sourceEncryptionContext');
  const destinationContext = contextParam(params, 'destinationEncryptionContext');
  const sourceKey = optionalKeyIdParam(params, 'sourceKeyId');
  const destination = ctx.keystore.resolve(keyIdParam(params, 'destinationKeyId'));
  await authorize(ctx, KmsAction.ReEncryptTo, destination, destinationContext);
  const source = await openUnder(ctx, blob, sourceContext, sourceKey, KmsAction.ReEncryptFrom);
  try {
    const sealed = sealUnder(
      await ctx.keystore.use(destination, KmsAction.ReEncryptTo),
      source.plaintext,
      destinationContext,
    );
    return { ...sealed, sourceKeyId: source.keyId, sourceKeyVersion: source.keyVersion };
  } finally {
    source.plaintext.fill(0);
  }
};

function generateDataKey(withPlaintext: boolean): KmsOperation {
  const action = withPlaintext ? KmsAction.GenerateDataKey : KmsAction.GenerateDataKeyWithoutPlaintext;
  return async (params, ctx) => {
    checkKeys(params, ['keyId', 'keySpec', 'numberOfBytes', 'encryptionContext', 'recipient']);
    const length = dataKeyLength(params);
    const context = contextParam(params);
    const id = ctx.keystore.resolve(keyIdParam(params));
    if (withPlaintext && recipientParam(params)) {
      // The data key goes to the attested workload only, wrapped; the caller never sees it in plaintext.
      const rc = releaseContext(ctx);
      const workload = await authorizeRecipient(
        ctx,
        rc,
        await ctx.keystore.get(id),
        KmsAction.GenerateDataKey,
        context,
      );
      const r = await ctx.keystore.use(id, action);
      const dataKey = secureRandom(length);
      try {
        const sealed = sealUnder(r, dataKey, context);
        const fields = { op: 'GenerateDataKey', keyId: r.id, keyVersion: sealed['keyVersion'] as number };
        return {
          ...sealed,
          ...wrapForRecipient(
            rc,
            workload,
            { ...fields, ciphertextBlob: sealed['ciphertextBlob'] as Uint8Array },
            dataKey,
          ),
        };
      } finally {
        dataKey.fill(0);
      }
    }
    await authorize(ctx, action, id, context);
    const r = await ctx.keystore.use(id, action);
    const dataKey = secureRandom(length);
    const sealed = sealUnder(r, dataKey, context);
    if (withPlaintext) return { plaintext: dataKey, ...sealed };
    dataKey.fill(0);
    return sealed;
  };
}

const rotateKey: KmsOperation = async (params, ctx) => {
  checkKeys(params, ['keyId']);
  const id = ctx.keystore.resolve(keyIdParam(params));
  await authorize(ctx, KmsAction.RotateKey, id);
  return metadataOf(ctx, await ctx.keystore.rotate(id));
};

const enableKeyRotation: KmsOperation = async (params, ctx) => {
  checkKeys(params, ['keyId', 'rotationPeriodDays']);
  const id = ctx.keystore.resolve(keyIdParam(params));
  const days =
    intParam(params, 'rotationPeriodDays', LIMITS.minRotationPeriodDays, LIMITS.maxRotationPeriodDays) ?? 365;
  await authorize(ctx, KmsAction.EnableKeyRotation, id);
  return metadataOf(ctx, await ctx.keystore.setRotation(id, days));
};

const disableKeyRotation: KmsOperation = async (params, ctx) => {
  checkKeys(params, ['keyId']);
  const id = ctx.keystore.resolve(keyIdParam(params));
  await authorize(ctx, KmsAction.DisableKeyRotation, id);
  return metadataOf(ctx, await ctx.keystore.setRotation(id, null));
};

const scheduleKeyDeletion: KmsOperation = async (params, ctx) => {
  checkKeys(params, ['keyId', 'pendingWindowInDays', 'approvals']);
  const id = ctx.keystore.resolve(keyIdParam(params));
  const days =
    intParam(params, 'pendingWindowInDays', LIMITS.minDeletionWindowDays, LIMITS.maxDeletionWindowDays) ??
    LIMITS.maxDeletionWindowDays;
  const approvals = parseApprovals(params['approvals']);
  await authorize(ctx, KmsAction.ScheduleKeyDeletion, id);
  const q = await quorumFor(ctx, 'scheduleKeyDeletion', id, params, approvals);
  return approved(metadataOf(ctx, await ctx.keystore.scheduleDeletion(id, days, q.sequence)), q.approvedBy);
};

const cancelKeyDeletion: KmsOperation = async (params, ctx) => {
  checkKeys(params, ['keyId']);
  const id = ctx.keystore.resolve(keyIdParam(params));
  await authorize(ctx, KmsAction.CancelKeyDeletion, id);
  return metadataOf(ctx, await ctx.keystore.cancelDeletion(id));
};

function setAlias(replace: boolean): KmsOperation {
  return async (params, ctx) => {
    checkKeys(params, ['aliasName', 'targetKeyId']);
    const name = stringParam(params, 'aliasName', LIMITS.maxAliasNameBytes);
    if (name === undefined) throw new ProtocolError('REQUEST_INVALID', 'aliasName is required');
    const id = ctx.keystore.resolve(keyIdParam(params, 'targetKeyId'));
    const action = replace ? KmsAction.UpdateAlias : KmsAction.CreateAlias;
    /* Precondition: repointing an alias needs the right on the key it points to now as well as on the new target
       (as AWS KMS): otherwise a principal allowed on its own key could take over another tenant's alias. */
    if (replace) {
      const current = currentAliasTarget(ctx, name);
      if (current !== undefined && current !== id) await authorize(ctx, action, current);
    }
    await authorize(ctx, action, id);
    // Re-checked inside the keystore's serialised change: a concurrent move onto a protected key counts.
    await ctx.keystore.setAlias(name, id, replace, (current, target) => {
      if (current !== undefined && current.id !== target) refuseIfProtected(current, name, 'repoint');
    });
    return { aliasName: name, targetKeyId: id };
  };
}

/**
 * An alias that names a protected key stays on it: repointing it elsewhere (or deleting it, after which it could be
 * created again elsewhere) would let one admin send the data that callers encrypt under the alias to another key,
 * around the quorum. It moves once the protection is removed, which itself needs the quorum (putKeyQuorum null;
 * also on a destroyed key).
 * @throws KmsError QUORUM_REQUIRED
 */
function refuseIfProtected(r: KeyRecord, alias: string, what: string): void {
  if (r.quorum !== undefined) {
    throw new KmsError(
      'QUORUM_REQUIRED',
      `cannot ${what} ${alias}: it names protected key ${r.id}; remove the key's quorum first (approved by the quorum)`,
      { details: { keyId: r.id, aliasName: alias } },
    );
  }
}

/** The key an existing alias points to, or undefined. */
function currentAliasTarget(ctx: KmsContext, name: string): string | undefined {
  return ctx.keystore.aliases().find((a) => a.name === name)?.keyId;
}

const deleteAlias: KmsOperation = async (params, ctx) => {
  checkKeys(params, ['aliasName']);
  const name = stringParam(params, 'aliasName', LIMITS.maxAliasNameBytes);
  if (name === undefined) throw new ProtocolError('REQUEST_INVALID', 'aliasName is required');
  /* Precondition: deleting an alias is decided on the key it points to (a missing alias: asked without a key). */
  await authorize(ctx, KmsAction.DeleteAlias, currentAliasTarget(ctx, name));
  await ctx.keystore.deleteAlias(name, (current) => {
    if (current !== undefined) refuseIfProtected(current, name, 'delete');
  });
  return {};
};

const listAliases: KmsOperation = async (params, ctx) => {
  checkKeys(params, ['keyId', 'limit', 'marker']);
  const keyId = optionalKeyIdParam(params, 'keyId');
  const id = keyId === undefined ? undefined : ctx.keystore.resolve(keyId);
  const limit = intParam(params, 'limit', 1, LIMITS.maxListPage) ?? LIMITS.defaultListPage;
  const marker = stringParam(params, 'marker', LIMITS.maxAliasNameBytes);
  await authorize(ctx, KmsAction.ListAliases, id);
  const from = ctx.keystore.aliases(id).filter((a) => marker === undefined || a.name > marker);
  const page = from.slice(0, limit);
  const truncated = from.length > limit;
  return {
    aliases: page.map((a) => ({ aliasName: a.name, targetKeyId: a.keyId })),
    truncated,
    nextMarker: truncated ? (page[page.length - 1]?.name ?? null) : null,
  };
};

/** Wire name → handler. */
export const KMS_OPERATIONS: Readonly<Record<string, KmsOperation>> = Object.freeze({
  createKey,
  describeKey,
  listKeys,
  enableKey: enableDisable(true),
  disableKey: enableDisable(false),
  encrypt,
  decrypt,
  reEncrypt,
  generateDataKey: generateDataKey(true),
  generateDataKeyWithoutPlaintext: generateDataKey(false),
  rotateKey,
  enableKeyRotation,
  disableKeyRotation,
  scheduleKeyDeletion,
  cancelKeyDeletion,
  releaseKey,
  putKeyReleasePolicy,
  putKeyPolicy,
  putKeyQuorum,
  getKeyPolicy,
  lintKeyPolicy: lintKeyPolicyOp,
  createGrant,
  listGrants,
  revokeGrant,
  createAlias: setAlias(false),
  updateAlias: setAlias(true),
  deleteAlias,
  listAliases,
});
