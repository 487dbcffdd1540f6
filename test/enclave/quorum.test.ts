/**
 * Dual control (issue 6; docs/key-policy.md §10): M-of-N admin approvals for the protected operations of a
 * protected key. The key service handlers run in process over a real keystore (MemoryStorage), the key-policy
 * authorizer and an in-memory principal registry; approvals are real Ed25519 signatures over the request digest of
 * shared/approval.ts, whose encoding is pinned by vectors from an independent implementation
 * (test/vectors/approval-vectors.json, test/vectors/make-approval-vectors.py).
 *
 * Every check of enclave/kms/quorum.ts and of the approval sequence in the keystore has a negative test below.
 */
import { createHash, createPrivateKey, generateKeyPairSync, type KeyObject, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { NitroClaims } from '../../attestation/claims.js';
import { createSimulatedNitroCa } from '../../attestation/simulated/index.js';
import { simulatedAttestor } from '../../enclave/attestor/attestor.js';
import { decodeKeyRecord, encodeKeyRecord, type KeyRecord } from '../../enclave/keystore/key-record.js';
import { Keystore } from '../../enclave/keystore/keystore.js';
import type { Principal } from '../../enclave/kms/authorizer.js';
import { KMS_OPERATIONS, type KmsContext } from '../../enclave/kms/operations.js';
import { policyAuthorizer } from '../../enclave/kms/policy-authorizer.js';
import { type ApproverDirectory, checkQuorumApprovers, evaluateApprovals } from '../../enclave/kms/quorum.js';
import { PrincipalRegistry, type RegisteredPrincipal } from '../../enclave/principals.js';
import { EnclaveIdentity } from '../../enclave/session.js';
import {
  APPROVAL_LIMITS,
  type Approval,
  approvalRequestBytes,
  approvalRequestDigest,
  approvalSignedBytes,
  deterministicCbor,
  PROTECTED_OPERATIONS,
  parseApprovals,
  parseQuorumDefinition,
  signApproval,
} from '../../shared/approval.js';
import { decodeCbor, encodeCbor } from '../../shared/cbor.js';
import { EkmsError } from '../../shared/errors.js';
import type { Params } from '../../shared/messages.js';
import { xwingKeygen } from '../../shared/xwing.js';
import { MemoryStorage } from '../helpers/memory-storage.js';

// ------------------------------------------------------------------------------------------------ fixtures

const T0 = Date.parse('2025-06-01T12:00:00.000Z');
const HOUR = 3_600_000;
const ROOT = new Uint8Array(32).fill(7);
const PCR0 = 'a0'.repeat(48);

interface Identity {
  readonly publicKey: Uint8Array;
  readonly privateKey: KeyObject;
}
function identity(): Identity {
  const k = generateKeyPairSync('ed25519');
  return {
    publicKey: new Uint8Array(k.publicKey.export({ type: 'spki', format: 'der' })),
    privateKey: k.privateKey,
  };
}

const ids = {
  root: identity(),
  carol: identity(),
  dave: identity(),
  erin: identity(),
  frank: identity(), // admin, never an approver
  uma: identity(), // user only
};
type Name = keyof typeof ids;
const ROLES: Record<Name, Array<'admin' | 'user'>> = {
  root: ['admin', 'user'],
  carol: ['admin'],
  dave: ['admin'],
  erin: ['admin'],
  frank: ['admin'],
  uma: ['user'],
};
function registered(name: Name, roles = ROLES[name]): RegisteredPrincipal {
  return { name, admin: roles.includes('admin'), publicKey: ids[name].publicKey, roles, tags: {} };
}
const registry = new PrincipalRegistry((Object.keys(ids) as Name[]).map((n) => registered(n)));

function principal(name: Name): Principal {
  return { name, authentication: 'signature', admin: ROLES[name].includes('admin'), roles: ROLES[name] };
}

const QUORUM = { threshold: 2, approvers: ['carol', 'dave', 'erin'] };

let clock: { now: number };
let storage: MemoryStorage;
let keystore: Keystore;

function ctxFor(as: Name, extra: Partial<KmsContext> = {}): KmsContext {
  return {
    keystore,
    authorizer: policyAuthorizer(keystore, () => clock.now),
    principal: principal(as),
    now: () => clock.now,
    principals: registry,
    ...extra,
  };
}

async function call(
  op: string,
  params: Params,
  as: Name = 'root',
  extra: Partial<KmsContext> = {},
): Promise<Params> {
  const handler = KMS_OPERATIONS[op];
  if (handler === undefined) throw new Error(`no op ${op}`);
  return handler(params, ctxFor(as, extra));
}

/** The lowercase hex SHA-256 of a workload context's recipient key (releaseKey's recipientDigest). */
function recipientDigestOf(ctx: Partial<KmsContext>): string {
  return createHash('sha256')
    .update(ctx.workload?.recipientPublicKey ?? new Uint8Array(0))
    .digest('hex');
}

async function rejects(p: Promise<unknown>, code: string): Promise<EkmsError> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof EkmsError)) throw err;
    expect(err.code, err.message).toBe(code);
    return err;
  }
  throw new Error(`expected ${code}, but it succeeded`);
}

function syncRejects(fn: () => unknown, code: string): EkmsError {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof EkmsError)) throw err;
    expect(err.code, err.message).toBe(code);
    return err;
  }
  throw new Error(`expected ${code}, but it succeeded`);
}

async function sequenceOf(keyId: string): Promise<number> {
  return (await keystore.get(keyId)).approvalSequence ?? 0;
}

/**
 * An approval by `who` of `op` on `keyId` with `params`, at the key's current sequence unless told otherwise.
 * `signer` signs in `who`'s name (a forgery when it is someone else).
 */
async function approve(
  who: Name,
  op: string,
  keyId: string,
  params: Params,
  o: { sequence?: number; expiresAt?: number; signer?: Name } = {},
): Promise<Approval> {
  const sequence = o.sequence ?? (await sequenceOf(keyId));
  const digest = approvalRequestDigest({ op, keyId, sequence, params });
  return signApproval(digest, ids[o.signer ?? who], who, o.expiresAt ?? clock.now + HOUR);
}

async function protectedKey(quorum = QUORUM): Promise<string> {
  const r = await call('createKey', { description: 'protected', quorum });
  return (r['keyMetadata'] as { keyId: string }).keyId;
}

async function plainKey(): Promise<string> {
  const r = await call('createKey', { description: 'plain' });
  return (r['keyMetadata'] as { keyId: string }).keyId;
}

beforeEach(async () => {
  clock = { now: T0 };
  storage = new MemoryStorage();
  keystore = await Keystore.open({ storage, rootKey: new Uint8Array(ROOT), now: () => clock.now });
});

// ------------------------------------------------------------------------------------------------ digest

interface VectorCase {
  name: string;
  op: string;
  keyId: string;
  sequence: number;
  params: Record<string, unknown>;
  encoded: string;
  digest: string;
  signedBytes: string;
  signature: string;
}
const vectors = JSON.parse(
  readFileSync(new URL('../vectors/approval-vectors.json', import.meta.url), 'utf8'),
) as { approverSeed: string; approverSpki: string; expiresAt: number; cases: VectorCase[] };

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('request digest: test vectors from an independent implementation', () => {
  const key = createPrivateKey({
    key: Buffer.concat([
      Buffer.from('302e020100300506032b657004220420', 'hex'),
      Buffer.from(vectors.approverSeed, 'hex'),
    ]),
    format: 'der',
    type: 'pkcs8',
  });

  it.each(vectors.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const request = { op: c.op, keyId: c.keyId, sequence: c.sequence, params: c.params };
    expect(hex(approvalRequestBytes(request))).toBe(c.encoded);
    const digest = approvalRequestDigest(request);
    expect(hex(digest)).toBe(c.digest);
    expect(hex(approvalSignedBytes(digest, vectors.expiresAt))).toBe(c.signedBytes);
    // Ed25519 is deterministic: the same key signs the same bytes to the same signature.
    const a = signApproval(digest, { privateKey: key }, 'carol', vectors.expiresAt);
    expect(hex(a.signature)).toBe(c.signature);
    const spki = {
      key: Buffer.from(vectors.approverSpki, 'hex'),
      format: 'der' as const,
      type: 'spki' as const,
    };
    expect(verify(null, Buffer.from(c.signedBytes, 'hex'), spki, Buffer.from(c.signature, 'hex'))).toBe(true);
  });

  it('the encoding decodes to the documented array (cross-check with cbor-x)', () => {
    const c = vectors.cases[1] as VectorCase;
    expect(decodeCbor(Buffer.from(c.encoded, 'hex'))).toEqual([
      'ekms-approval-request-v1',
      c.op,
      c.keyId,
      c.sequence,
      c.params,
    ]);
  });

  it('maps are encoded in deterministic key order, whatever the insertion order', () => {
    const a = deterministicCbor({ b: 1, a: 2, aa: 3, ba: { y: [1, -1, null, true], x: 'z' } });
    const b = deterministicCbor({ ba: { x: 'z', y: [1, -1, null, true] }, aa: 3, a: 2, b: 1 });
    expect(hex(a)).toBe(hex(b));
    // Shorter keys first, then bytewise: a, b, aa, ba (RFC 8949 §4.2.1).
    expect(Object.keys(decodeCbor(a) as object)).toEqual(['a', 'b', 'aa', 'ba']);
    // Integers take the shortest head; cbor-x agrees below 2^32…
    for (const n of [0, 23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1, -1, -25]) {
      expect(hex(deterministicCbor(n)), String(n)).toBe(hex(encodeCbor(n)));
    }
    // …and above it encodes a float64, which is why the digest has its own encoder: here the 8-byte integer head.
    expect(hex(deterministicCbor(2 ** 32))).toBe('1b0000000100000000');
    expect(hex(deterministicCbor(Number.MAX_SAFE_INTEGER))).toBe('1b001fffffffffffff');
    expect(hex(deterministicCbor(-(2 ** 32) - 1))).toBe('3b0000000100000000');
  });

  it.each([
    ['a float', { x: 1.5 }],
    ['undefined', { x: undefined }],
    ['a lone surrogate', { x: '\uD800' }],
    ['a function', { x: () => 1 }],
    ['a Map', { x: new Map() }],
    ['nesting deeper than 8', { x: [[[[[[[[[1]]]]]]]]] }],
  ])('refuses %s (APPROVAL_INVALID)', (_what, value) => {
    syncRejects(() => deterministicCbor(value), 'APPROVAL_INVALID');
  });

  const base = {
    op: 'scheduleKeyDeletion',
    keyId: '0f8fad5b-d9cb-469f-a165-70867728950e',
    sequence: 4,
    params: { pendingWindowInDays: 7 },
  };
  it.each([
    ['another op', { op: 'disableKey' }],
    ['another key', { keyId: '7c9e6679-7425-40de-944b-e07fc1f90ae7' }],
    ['another sequence', { sequence: 5 }],
    ['another parameter value', { params: { pendingWindowInDays: 8 } }],
    ['an extra parameter', { params: { pendingWindowInDays: 7, x: null } }],
    ['a default spelt out', { params: {} }],
  ])('binds every field: %s gives another digest', (_what, change) => {
    expect(hex(approvalRequestDigest({ ...base, ...change }))).not.toBe(hex(approvalRequestDigest(base)));
  });

  it('ignores keyId and approvals inside the parameters (the key is bound canonically; approvals are not approved)', () => {
    const d = hex(approvalRequestDigest(base));
    expect(
      hex(approvalRequestDigest({ ...base, params: { ...base.params, keyId: 'alias/x', approvals: [1] } })),
    ).toBe(d);
  });

  it.each([
    ['an alias instead of the key id', { keyId: 'alias/payments' }],
    ['a negative sequence', { sequence: -1 }],
    ['a fractional sequence', { sequence: 1.5 }],
    ['an operation that takes no approvals', { op: 'encrypt' }],
  ])('refuses %s (APPROVAL_INVALID)', (_what, change) => {
    syncRejects(() => approvalRequestDigest({ ...base, ...change }), 'APPROVAL_INVALID');
  });

  it('the signed bytes are domain ‖ 0x00 ‖ digest ‖ uint64be(expiresAt); a wrong digest length is refused', () => {
    const digest = new Uint8Array(48).fill(9);
    const b = approvalSignedBytes(digest, 0x0102030405);
    expect(Buffer.from(b.subarray(0, 17)).toString('latin1')).toBe('ekms-approval-v1\0');
    expect(hex(b.subarray(17, 65))).toBe('09'.repeat(48));
    expect(hex(b.subarray(65))).toBe('0000000102030405');
    syncRejects(() => approvalSignedBytes(new Uint8Array(32), 1), 'APPROVAL_INVALID');
    syncRejects(() => approvalSignedBytes(digest, -1), 'APPROVAL_INVALID');
  });

  it('the protected operations are the six of the issue, and createGrant (a grant widens who may use the key)', () => {
    expect([...PROTECTED_OPERATIONS].sort()).toEqual([
      'createGrant',
      'disableKey',
      'putKeyPolicy',
      'putKeyQuorum',
      'putKeyReleasePolicy',
      'releaseKey',
      'scheduleKeyDeletion',
    ]);
  });
});

// ------------------------------------------------------------------------------------------------ shapes

describe('malformed approvals and quorum definitions', () => {
  const good = {
    approver: 'carol',
    digest: new Uint8Array(48),
    expiresAt: T0,
    signature: new Uint8Array(64),
  };
  it.each([
    ['not a list', { approver: 'carol' }],
    ['more than 32', Array.from({ length: 33 }, () => good)],
    ['an entry that is not a map', [good, 'carol']],
    ['an unknown field', [{ ...good, note: 'x' }]],
    ['a missing field', [{ approver: 'carol', digest: good.digest, expiresAt: T0 }]],
    ['an approver that is not a principal name', [{ ...good, approver: 'ca rol' }]],
    ['a 32-byte digest', [{ ...good, digest: new Uint8Array(32) }]],
    ['a 63-byte signature', [{ ...good, signature: new Uint8Array(63) }]],
    ['a signature in base64 text', [{ ...good, signature: 'AAAA' }]],
    ['a fractional expiresAt', [{ ...good, expiresAt: T0 + 0.5 }]],
    ['an ISO expiresAt', [{ ...good, expiresAt: new Date(T0).toISOString() }]],
  ])('approvals: %s → APPROVAL_INVALID', (_what, value) => {
    syncRejects(() => parseApprovals(value), 'APPROVAL_INVALID');
  });

  it('approvals: 32 well-formed entries and an absent list are accepted', () => {
    expect(parseApprovals(Array.from({ length: 32 }, () => good))).toHaveLength(32);
    expect(parseApprovals(undefined)).toEqual([]);
  });

  it.each([
    ['threshold 0', { threshold: 0, approvers: ['carol'] }],
    ['threshold above N', { threshold: 3, approvers: ['carol', 'dave'] }],
    ['a fractional threshold', { threshold: 1.5, approvers: ['carol', 'dave'] }],
    ['no approvers', { threshold: 1, approvers: [] }],
    ['17 approvers', { threshold: 1, approvers: Array.from({ length: 17 }, (_, i) => `a${i}`) }],
    ['a duplicate approver', { threshold: 1, approvers: ['carol', 'carol'] }],
    ['an approver that is not a name', { threshold: 1, approvers: ['*'] }],
    ['an unknown field', { threshold: 1, approvers: ['carol'], extra: 1 }],
    ['a list', [1, ['carol']]],
  ])('quorum: %s → QUORUM_INVALID', (_what, value) => {
    syncRejects(() => parseQuorumDefinition(value), 'QUORUM_INVALID');
  });

  it('quorum: 16-of-16 and 1-of-1 are accepted', () => {
    const names = Array.from({ length: 16 }, (_, i) => `a${i}`);
    expect(parseQuorumDefinition({ threshold: 16, approvers: names }).threshold).toBe(16);
    expect(parseQuorumDefinition({ threshold: 1, approvers: ['carol'] }).approvers).toEqual(['carol']);
  });
});

// ------------------------------------------------------------------------------------------------ protection

describe('protecting a key', () => {
  it('createKey with a quorum: DescribeKey shows it with sequence 0; an unprotected key shows null', async () => {
    const id = await protectedKey();
    const m = (await call('describeKey', { keyId: id }))['keyMetadata'] as Record<string, unknown>;
    expect(m['quorum']).toEqual({ threshold: 2, approvers: ['carol', 'dave', 'erin'], sequence: 0 });
    const plain = (await call('describeKey', { keyId: await plainKey() }))['keyMetadata'] as Record<
      string,
      unknown
    >;
    expect(plain['quorum']).toBeNull();
  });

  it.each([
    ['a user-only principal', ['carol', 'uma']],
    ['an unregistered name', ['carol', 'zed']],
  ])(
    'approvers must be registered admins: %s → QUORUM_INVALID (at creation and with putKeyQuorum)',
    async (_w, approvers) => {
      const err = await rejects(call('createKey', { quorum: { threshold: 1, approvers } }), 'QUORUM_INVALID');
      expect(err.message).toMatch(/not: (uma|zed)/);
      const id = await plainKey();
      await rejects(
        call('putKeyQuorum', { keyId: id, quorum: { threshold: 1, approvers } }),
        'QUORUM_INVALID',
      );
      expect((await keystore.get(id)).quorum).toBeUndefined();
    },
  );

  it('putKeyQuorum on an unprotected key needs no approvals and advances the sequence', async () => {
    const id = await plainKey();
    const r = await call('putKeyQuorum', { keyId: id, quorum: QUORUM });
    expect((r['keyMetadata'] as Record<string, unknown>)['quorum']).toEqual({ ...QUORUM, sequence: 1 });
    expect(r['approvedBy']).toBeUndefined();
  });

  it('putKeyQuorum is decided by the key policy as PutKeyPolicy: a user may not protect a key', async () => {
    const id = await plainKey();
    await rejects(call('putKeyQuorum', { keyId: id, quorum: QUORUM }, 'uma'), 'ACCESS_DENIED');
  });

  it('putKeyQuorum needs the quorum parameter (null removes)', async () => {
    await rejects(call('putKeyQuorum', { keyId: await plainKey() }), 'REQUEST_INVALID');
  });
});

describe('quorum met', () => {
  const subsets = [
    ['carol', 'dave'],
    ['carol', 'erin'],
    ['dave', 'erin'],
    ['erin', 'carol'],
    ['carol', 'dave', 'erin'],
  ] as const;
  it.each(subsets.map((s) => [s.join('+'), s] as const))(
    '2-of-3 by %s: DisableKey proceeds',
    async (_n, who) => {
      const id = await protectedKey();
      const params = { keyId: id };
      const approvals = await Promise.all(who.map((w) => approve(w, 'disableKey', id, params)));
      const r = await call('disableKey', { ...params, approvals });
      expect((r['keyMetadata'] as Record<string, unknown>)['state']).toBe('Disabled');
      expect(r['approvedBy']).toEqual([...who]);
      expect(await sequenceOf(id)).toBe(1);
    },
  );

  it('every protected key-admin operation goes through with a quorum, and is refused without one', async () => {
    const policy = JSON.stringify({
      version: 1,
      statements: [{ effect: 'Allow', principals: ['role:admin'], actions: ['admin:*'] }],
    });
    const release = JSON.stringify({ version: 1, allowSimulated: true, measurements: [PCR0] });
    const cases: Array<[string, (id: string) => Params]> = [
      ['putKeyPolicy', (id) => ({ keyId: id, policy })],
      ['putKeyReleasePolicy', (id) => ({ keyId: id, releasePolicy: release })],
      ['scheduleKeyDeletion', (id) => ({ keyId: id, pendingWindowInDays: 7 })],
      ['disableKey', (id) => ({ keyId: id })],
      [
        'putKeyQuorum',
        (id) => ({ keyId: id, quorum: { threshold: 3, approvers: ['carol', 'dave', 'erin'] } }),
      ],
      ['createGrant', (id) => ({ keyId: id, grantee: 'uma', operations: ['Decrypt'] })],
    ];
    for (const [op, paramsOf] of cases) {
      const id = await protectedKey();
      const params = paramsOf(id);
      const before = storage.counts.put;
      const err = await rejects(call(op, params), 'QUORUM_REQUIRED');
      expect(err.details, op).toMatchObject({ keyId: id, op, threshold: 2, valid: 0, rejected: [] });
      expect(storage.counts.put, `${op} stores nothing when refused`).toBe(before);
      const approvals = [await approve('carol', op, id, params), await approve('erin', op, id, params)];
      const r = await call(op, { ...params, approvals });
      expect(r['approvedBy'], op).toEqual(['carol', 'erin']);
      expect(await sequenceOf(id), op).toBe(1);
    }
  });

  it('one admin cannot route around the quorum with a grant: createGrant on a protected key needs it', async () => {
    const id = await protectedKey();
    const params = { keyId: id, grantee: 'uma', operations: ['Decrypt'], expiresInSeconds: 3600 };
    await rejects(call('createGrant', params, 'frank'), 'QUORUM_REQUIRED');
    expect((await keystore.get(id)).grants ?? []).toEqual([]);
    // An approval of another grant (other grantee, other operations, other lifetime) does not count.
    const other = { ...params, grantee: 'frank' };
    await rejects(
      call('createGrant', {
        ...params,
        approvals: [
          await approve('carol', 'createGrant', id, other),
          await approve('dave', 'createGrant', id, other),
        ],
      }),
      'QUORUM_REQUIRED',
    );
    const approvals = [
      await approve('carol', 'createGrant', id, params),
      await approve('dave', 'createGrant', id, params),
    ];
    const r = await call('createGrant', { ...params, approvals }, 'frank');
    expect(r['approvedBy']).toEqual(['carol', 'dave']);
    expect((await keystore.get(id)).grants?.map((g) => g.grantee)).toEqual(['uma']);
    expect(await sequenceOf(id)).toBe(1);
    // Unprotected keys grant as before; revoking a grant narrows access and needs nothing.
    const plain = await plainKey();
    await call('createGrant', { keyId: plain, grantee: 'uma', operations: ['Decrypt'] }, 'frank');
    await call('revokeGrant', { keyId: id, grantId: r['grantId'] as string }, 'frank');
  });

  it('an alias on a protected key stays on it: repointing or deleting it is QUORUM_REQUIRED until the quorum is removed', async () => {
    const id = await protectedKey();
    const mine = await plainKey();
    await call('createAlias', { aliasName: 'alias/payroll', targetKeyId: id }, 'frank');
    const moved = await rejects(
      call('updateAlias', { aliasName: 'alias/payroll', targetKeyId: mine }, 'frank'),
      'QUORUM_REQUIRED',
    );
    expect(moved.details).toMatchObject({ keyId: id, aliasName: 'alias/payroll' });
    await rejects(call('deleteAlias', { aliasName: 'alias/payroll' }, 'frank'), 'QUORUM_REQUIRED');
    expect(keystore.resolve('alias/payroll')).toBe(id);
    // Pointing an alias at a protected key, or moving one from a plain key to it, is fine.
    await call('createAlias', { aliasName: 'alias/other', targetKeyId: mine }, 'frank');
    await call('updateAlias', { aliasName: 'alias/other', targetKeyId: id }, 'frank');
    // Once the quorum (with its own approvals) removes the protection, the alias moves.
    const remove = { keyId: id, quorum: null };
    await call('putKeyQuorum', {
      ...remove,
      approvals: [
        await approve('carol', 'putKeyQuorum', id, remove),
        await approve('erin', 'putKeyQuorum', id, remove),
      ],
    });
    await call('updateAlias', { aliasName: 'alias/payroll', targetKeyId: mine }, 'frank');
    expect(keystore.resolve('alias/payroll')).toBe(mine);
  });

  it('lint: a protected key whose policy lets a role or everyone read it is PROTECTED_BY_ROLE; named principals are not', async () => {
    const codes = async (id: string) =>
      ((await call('lintKeyPolicy', { keyId: id }))['findings'] as Array<{ code: string }>).map(
        (f) => f.code,
      );
    const id = await protectedKey();
    expect(await codes(id)).toContain('PROTECTED_BY_ROLE'); // the default policy: role:user may Decrypt
    expect(await codes(await plainKey())).not.toContain('PROTECTED_BY_ROLE');
    const named = JSON.stringify({
      version: 1,
      statements: [
        { effect: 'Allow', principals: ['uma'], actions: ['use:*'] },
        { effect: 'Allow', principals: ['role:admin'], actions: ['admin:*'] },
        { effect: 'Allow', principals: ['*'], actions: ['DescribeKey'] },
      ],
    });
    const params = { keyId: id, policy: named };
    await call('putKeyPolicy', {
      ...params,
      approvals: [
        await approve('carol', 'putKeyPolicy', id, params),
        await approve('dave', 'putKeyPolicy', id, params),
      ],
    });
    expect(await codes(id)).not.toContain('PROTECTED_BY_ROLE');
    expect(await codes(id)).not.toContain('PROTECTED_UNREGISTERED_PRINCIPAL');
    // A name nobody holds yet is flagged: the first admin to register it would get the statement.
    const future = named.replace('"uma"', '"app-payroll"');
    const p2 = { keyId: id, policy: future };
    await call('putKeyPolicy', {
      ...p2,
      approvals: [
        await approve('carol', 'putKeyPolicy', id, p2),
        await approve('dave', 'putKeyPolicy', id, p2),
      ],
    });
    expect(await codes(id)).toContain('PROTECTED_UNREGISTERED_PRINCIPAL');
  });

  it('a grant goes to a principal that exists: an unregistered grantee is GRANT_INVALID, also with approvals', async () => {
    const id = await protectedKey();
    const params = { keyId: id, grantee: 'not-yet-registered', operations: ['Decrypt'] };
    const approvals = [
      await approve('carol', 'createGrant', id, params),
      await approve('dave', 'createGrant', id, params),
    ];
    await rejects(call('createGrant', { ...params, approvals }), 'GRANT_INVALID');
    await rejects(call('createGrant', { ...params, keyId: await plainKey() }), 'GRANT_INVALID');
    expect(await sequenceOf(id)).toBe(0);
    // A workload principal (named by its measurement; no registered name has a ':') may be a grantee.
    const w = { keyId: await plainKey(), grantee: `workload:${PCR0.slice(0, 16)}`, operations: ['Decrypt'] };
    expect((await call('createGrant', w))['grantId']).toEqual(expect.any(String));
  });

  it('an alias on a destroyed protected key is freed by removing the quorum (allowed on a destroyed key, approved)', async () => {
    const id = await protectedKey();
    await call('createAlias', { aliasName: 'alias/old', targetKeyId: id });
    const del = { keyId: id, pendingWindowInDays: 7 };
    await call('scheduleKeyDeletion', {
      ...del,
      approvals: [
        await approve('carol', 'scheduleKeyDeletion', id, del),
        await approve('dave', 'scheduleKeyDeletion', id, del),
      ],
    });
    clock.now += 8 * 24 * HOUR;
    expect((await keystore.get(id)).state).toBe('Destroyed');
    await rejects(call('deleteAlias', { aliasName: 'alias/old' }), 'QUORUM_REQUIRED');
    const remove = { keyId: id, quorum: null };
    await call('putKeyQuorum', {
      ...remove,
      approvals: [
        await approve('carol', 'putKeyQuorum', id, remove),
        await approve('dave', 'putKeyQuorum', id, remove),
      ],
    });
    await call('deleteAlias', { aliasName: 'alias/old' });
    // Setting a quorum on a destroyed key stays refused.
    await rejects(call('putKeyQuorum', { keyId: id, quorum: QUORUM }), 'KEY_STATE_INVALID');
  });

  it('the alias rule is checked inside the keystore: two concurrent moves cannot carry an alias off a protected key', async () => {
    const p = await protectedKey();
    const u1 = await plainKey();
    const u2 = await plainKey();
    await call('createAlias', { aliasName: 'alias/x', targetKeyId: u1 });
    const results = await Promise.allSettled([
      call('updateAlias', { aliasName: 'alias/x', targetKeyId: p }),
      call('updateAlias', { aliasName: 'alias/x', targetKeyId: u2 }),
    ]);
    // Both read U1 before either changed it; whatever order the keystore applies them in, the alias ends on P
    // (the move away from P, if second, is refused there).
    expect(results[0].status).toBe('fulfilled');
    expect(keystore.resolve('alias/x')).toBe(p);
  });

  it('operations that are not protected work on a protected key without approvals', async () => {
    const id = await protectedKey();
    await call('encrypt', { keyId: id, plaintext: new Uint8Array([1]) }, 'root');
    await call('rotateKey', { keyId: id });
    await call('enableKeyRotation', { keyId: id, rotationPeriodDays: 30 });
    await call('enableKey', { keyId: id });
    expect(await sequenceOf(id)).toBe(0);
  });
});

describe('quorum not met', () => {
  let id: string;
  const params = (): Params => ({ keyId: id, pendingWindowInDays: 7 });
  const op = 'scheduleKeyDeletion';
  beforeEach(async () => {
    id = await protectedKey();
  });

  async function refused(approvals: Approval[]): Promise<EkmsError> {
    const err = await rejects(call(op, { ...params(), approvals }), 'QUORUM_REQUIRED');
    expect((await keystore.get(id)).state).toBe('Enabled');
    expect(await sequenceOf(id)).toBe(0);
    return err;
  }

  it('too few: one approval of a 2-of-3 quorum (details: valid count, threshold, approvers)', async () => {
    const err = await refused([await approve('carol', op, id, params())]);
    expect(err.details).toMatchObject({ threshold: 2, valid: 1, approvedBy: ['carol'], sequence: 0 });
    expect(err.message).toMatch(/needs 2 of \[carol, dave, erin\] to approve; 1 valid approval/);
  });

  it('too few: none at all', async () => {
    expect((await refused([])).details).toMatchObject({ valid: 0 });
  });

  it('a duplicate approver counts once', async () => {
    const a = await approve('carol', op, id, params());
    const b = await approve('carol', op, id, params(), { expiresAt: clock.now + 2 * HOUR });
    const err = await refused([a, b, a]);
    expect(err.details).toMatchObject({
      valid: 1,
      rejected: [
        { index: 1, approver: 'carol', reason: 'duplicate' },
        { index: 2, approver: 'carol', reason: 'duplicate' },
      ],
    });
    expect(err.message).toMatch(/approval 1 \(carol\): duplicate/);
  });

  it('a stale approval (expired) does not count; expiring exactly now is expired', async () => {
    const stale = await approve('dave', op, id, params(), { expiresAt: clock.now - 1 });
    const edge = await approve('erin', op, id, params(), { expiresAt: clock.now });
    const err = await refused([await approve('carol', op, id, params()), stale, edge]);
    expect(err.details?.['rejected']).toEqual([
      { index: 1, approver: 'dave', reason: 'expired' },
      { index: 2, approver: 'erin', reason: 'expired' },
    ]);
  });

  it('an approval that was valid when signed expires while waiting (the clock moves)', async () => {
    const approvals = [await approve('carol', op, id, params()), await approve('dave', op, id, params())];
    clock.now += HOUR;
    expect((await refused(approvals)).details).toMatchObject({ valid: 0 });
  });

  it('an expiry more than 24 h (+5 min skew) ahead is APPROVAL_INVALID; at the limit it counts', async () => {
    const limit = clock.now + APPROVAL_LIMITS.maxLifetimeMs + APPROVAL_LIMITS.clockSkewMs;
    const far = await approve('dave', op, id, params(), { expiresAt: limit + 1 });
    const err = await rejects(
      call(op, { ...params(), approvals: [await approve('carol', op, id, params()), far] }),
      'APPROVAL_INVALID',
    );
    expect(err.details).toMatchObject({ index: 1, approver: 'dave' });
    const atLimit = await approve('dave', op, id, params(), { expiresAt: limit });
    await call(op, { ...params(), approvals: [await approve('carol', op, id, params()), atLimit] });
  });

  it.each([
    ['different parameters', (k: string) => approve('dave', op, k, { keyId: k, pendingWindowInDays: 8 })],
    ['parameters with the default spelt differently', (k: string) => approve('dave', op, k, { keyId: k })],
    ['a different op', (k: string) => approve('dave', 'disableKey', k, { keyId: k })],
    [
      'another sequence',
      (k: string) => approve('dave', op, k, { keyId: k, pendingWindowInDays: 7 }, { sequence: 1 }),
    ],
  ])('a signature over a different request does not count: %s', async (_what, make) => {
    const err = await refused([await approve('carol', op, id, params()), await make(id)]);
    expect(err.details?.['rejected']).toEqual([{ index: 1, approver: 'dave', reason: 'other-request' }]);
  });

  it('a signature over a different request does not count: another key', async () => {
    const other = await protectedKey();
    const err = await refused([
      await approve('carol', op, id, params()),
      await approve('dave', op, other, { keyId: other, pendingWindowInDays: 7 }),
    ]);
    expect(err.details?.['rejected']).toEqual([{ index: 1, approver: 'dave', reason: 'other-request' }]);
  });

  it('an approval that claims this digest but signed another request does not count (signature-invalid)', async () => {
    const other = await approve('dave', op, id, { keyId: id, pendingWindowInDays: 8 });
    const digest = approvalRequestDigest({ op, keyId: id, sequence: 0, params: params() });
    const err = await refused([await approve('carol', op, id, params()), { ...other, digest }]);
    expect(err.details?.['rejected']).toEqual([{ index: 1, approver: 'dave', reason: 'signature-invalid' }]);
  });

  it('a tampered signature does not count', async () => {
    const a = await approve('dave', op, id, params());
    const sig = Uint8Array.from(a.signature);
    sig[10] = (sig[10] as number) ^ 1;
    const err = await refused([await approve('carol', op, id, params()), { ...a, signature: sig }]);
    expect(err.details?.['rejected']).toEqual([{ index: 1, approver: 'dave', reason: 'signature-invalid' }]);
  });

  it('a changed expiry does not count (the expiry is signed)', async () => {
    const a = await approve('dave', op, id, params());
    const err = await refused([
      await approve('carol', op, id, params()),
      { ...a, expiresAt: a.expiresAt + 1 },
    ]);
    expect(err.details?.['rejected']).toEqual([{ index: 1, approver: 'dave', reason: 'signature-invalid' }]);
  });

  it("an approval in an approver's name signed by someone else does not count", async () => {
    const forged = await approve('dave', op, id, params(), { signer: 'erin' });
    const err = await refused([await approve('carol', op, id, params()), forged]);
    expect(err.details?.['rejected']).toEqual([{ index: 1, approver: 'dave', reason: 'signature-invalid' }]);
  });

  it('an admin who is not one of the approvers does not count; nor does a user', async () => {
    const err = await refused([
      await approve('carol', op, id, params()),
      await approve('frank', op, id, params()),
      await approve('uma', op, id, params()),
      await approve('root', op, id, params()),
    ]);
    expect(err.details?.['rejected']).toEqual([
      { index: 1, approver: 'frank', reason: 'not-an-approver' },
      { index: 2, approver: 'uma', reason: 'not-an-approver' },
      { index: 3, approver: 'root', reason: 'not-an-approver' },
    ]);
  });

  it('the key policy applies first: a user with a valid quorum is ACCESS_DENIED', async () => {
    const approvals = [await approve('carol', op, id, params()), await approve('dave', op, id, params())];
    await rejects(call(op, { ...params(), approvals }, 'uma'), 'ACCESS_DENIED');
  });

  it('malformed approvals are refused before anything else (APPROVAL_INVALID)', async () => {
    await rejects(call(op, { ...params(), approvals: 'carol' }), 'APPROVAL_INVALID');
  });
});

describe('approval checks that need another principal registry (evaluateApprovals)', () => {
  const digest = new Uint8Array(48).fill(1);
  const quorum = { threshold: 2, approvers: ['carol', 'dave'] };
  const sign = (who: Name) => signApproval(digest, ids[who], who, T0 + HOUR);
  const directory = (entries: RegisteredPrincipal[]): ApproverDirectory => ({ list: () => entries });

  it('an approver who is no longer an admin does not count (roles are read at checking time)', () => {
    const e = evaluateApprovals({
      quorum,
      digest,
      approvals: [sign('carol'), sign('dave')],
      principals: directory([registered('carol'), registered('dave', ['user'])]),
      now: T0,
    });
    expect(e.approvedBy).toEqual(['carol']);
    expect(e.rejected).toEqual([{ index: 1, approver: 'dave', reason: 'not-admin' }]);
  });

  it('a quorum whose approvers hold fewer distinct keys than its threshold is QUORUM_INVALID (it could never be met)', () => {
    const twin: RegisteredPrincipal = { ...registered('dave'), publicKey: ids.carol.publicKey };
    const shared = directory([registered('carol'), twin, registered('erin')]);
    const err = syncRejects(
      () => checkQuorumApprovers({ threshold: 3, approvers: ['carol', 'dave', 'erin'] }, shared),
      'QUORUM_INVALID',
    );
    expect(err.details).toMatchObject({ distinctKeys: 2, threshold: 3 });
    // Two distinct keys meet a threshold of two.
    expect(() =>
      checkQuorumApprovers({ threshold: 2, approvers: ['carol', 'dave', 'erin'] }, shared),
    ).not.toThrow();
  });

  it('one key registered under two approver names counts once (duplicate)', () => {
    const twin: RegisteredPrincipal = { ...registered('dave'), publicKey: ids.carol.publicKey };
    const e = evaluateApprovals({
      quorum,
      digest,
      approvals: [sign('carol'), signApproval(digest, ids.carol, 'dave', T0 + HOUR)],
      principals: directory([registered('carol'), twin]),
      now: T0,
    });
    expect(e.approvedBy).toEqual(['carol']);
    expect(e.rejected).toEqual([{ index: 1, approver: 'dave', reason: 'duplicate' }]);
  });

  it('an approver who is not registered does not count', () => {
    const e = evaluateApprovals({
      quorum,
      digest,
      approvals: [sign('carol'), sign('dave')],
      principals: directory([registered('carol')]),
      now: T0,
    });
    expect(e.rejected).toEqual([{ index: 1, approver: 'dave', reason: 'unknown-principal' }]);
  });

  it('without a principal registry nothing counts (fail closed)', () => {
    const e = evaluateApprovals({
      quorum,
      digest,
      approvals: [sign('carol')],
      principals: undefined,
      now: T0,
    });
    expect(e.approvedBy).toEqual([]);
    expect(e.rejected).toEqual([{ index: 0, approver: 'carol', reason: 'unknown-principal' }]);
  });

  it('both valid: counted in request order', () => {
    const e = evaluateApprovals({
      quorum,
      digest,
      approvals: [sign('dave'), sign('carol')],
      principals: registry,
      now: T0,
    });
    expect(e.approvedBy).toEqual(['dave', 'carol']);
  });
});

describe('single use', () => {
  it('a replayed approval set is refused the second time (the sequence advanced)', async () => {
    const id = await protectedKey();
    const policy = JSON.stringify({
      version: 1,
      statements: [{ effect: 'Allow', principals: ['role:admin'], actions: ['admin:*'] }],
    });
    const params = { keyId: id, policy };
    const approvals = [
      await approve('carol', 'putKeyPolicy', id, params),
      await approve('dave', 'putKeyPolicy', id, params),
    ];
    await call('putKeyPolicy', { ...params, approvals });
    const err = await rejects(call('putKeyPolicy', { ...params, approvals }), 'QUORUM_REQUIRED');
    expect(err.details?.['rejected']).toEqual([
      { index: 0, approver: 'carol', reason: 'other-request' },
      { index: 1, approver: 'dave', reason: 'other-request' },
    ]);
    expect(err.details).toMatchObject({ sequence: 1 });
  });

  it('…also after a restart: the sequence is in the sealed key record', async () => {
    const id = await protectedKey();
    const params = { keyId: id, releasePolicy: null };
    const approvals = [
      await approve('carol', 'putKeyReleasePolicy', id, params),
      await approve('dave', 'putKeyReleasePolicy', id, params),
    ];
    await call('putKeyReleasePolicy', { ...params, approvals });
    keystore.close();
    keystore = await Keystore.open({ storage, rootKey: new Uint8Array(ROOT), now: () => clock.now });
    expect(await sequenceOf(id)).toBe(1);
    await rejects(call('putKeyReleasePolicy', { ...params, approvals }), 'QUORUM_REQUIRED');
  });

  it('the same approvals sent twice at once: exactly one succeeds (compare-and-advance in the keystore)', async () => {
    const id = await protectedKey();
    const params = { keyId: id, pendingWindowInDays: 7 };
    const approvals = [
      await approve('carol', 'scheduleKeyDeletion', id, params),
      await approve('dave', 'scheduleKeyDeletion', id, params),
    ];
    const results = await Promise.allSettled([
      call('scheduleKeyDeletion', { ...params, approvals }),
      call('scheduleKeyDeletion', { ...params, approvals }),
      call('disableKey', {
        keyId: id,
        approvals: [
          await approve('erin', 'disableKey', id, { keyId: id }),
          await approve('dave', 'disableKey', id, { keyId: id }),
        ],
      }),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected') expect((r.reason as EkmsError).code).toBe('QUORUM_REQUIRED');
    }
    expect(await sequenceOf(id)).toBe(1);
  });

  it('an operation that fails after the quorum check does not use up the approvals (store failure, state error)', async () => {
    const id = await protectedKey();
    const params = { keyId: id, pendingWindowInDays: 7 };
    const approvals = [
      await approve('carol', 'scheduleKeyDeletion', id, params),
      await approve('dave', 'scheduleKeyDeletion', id, params),
    ];
    storage.failNext('put', { name: `key.${id}` });
    await rejects(call('scheduleKeyDeletion', { ...params, approvals }), 'STORE_WRITE_FAILED');
    expect(await sequenceOf(id)).toBe(0);
    // The same approvals still work once the store does.
    await call('scheduleKeyDeletion', { ...params, approvals });
    expect(await sequenceOf(id)).toBe(1);
    // Approved again at sequence 1, but the key is already pending deletion: refused, sequence unchanged.
    const again = [
      await approve('carol', 'scheduleKeyDeletion', id, params),
      await approve('dave', 'scheduleKeyDeletion', id, params),
    ];
    await rejects(call('scheduleKeyDeletion', { ...params, approvals: again }), 'KEY_STATE_INVALID');
    expect(await sequenceOf(id)).toBe(1);
  });
});

describe('the quorum protects itself', () => {
  it('cannot be removed without the quorum', async () => {
    const id = await protectedKey();
    await rejects(call('putKeyQuorum', { keyId: id, quorum: null }), 'QUORUM_REQUIRED');
    await rejects(
      call('putKeyQuorum', {
        keyId: id,
        quorum: null,
        approvals: [await approve('carol', 'putKeyQuorum', id, { keyId: id, quorum: null })],
      }),
      'QUORUM_REQUIRED',
    );
    expect((await keystore.get(id)).quorum).toEqual(QUORUM);
  });

  it('cannot be weakened without the quorum (lower threshold, own approver set)', async () => {
    const id = await protectedKey();
    for (const quorum of [
      { threshold: 1, approvers: ['carol', 'dave', 'erin'] },
      { threshold: 1, approvers: ['frank'] },
      { threshold: 2, approvers: ['frank', 'root'] },
    ]) {
      // Approvals by the new approvers do not count: only the current quorum can change itself.
      const params = { keyId: id, quorum };
      const approvals = [
        await approve('frank', 'putKeyQuorum', id, params),
        await approve('root', 'putKeyQuorum', id, params),
      ];
      await rejects(call('putKeyQuorum', { ...params, approvals }), 'QUORUM_REQUIRED');
    }
    expect((await keystore.get(id)).quorum).toEqual(QUORUM);
  });

  it('with the quorum it can be removed; approvals gathered before the change are void; re-protecting does not revive them', async () => {
    const id = await protectedKey();
    const disable = { keyId: id };
    const early = [
      await approve('carol', 'disableKey', id, disable),
      await approve('dave', 'disableKey', id, disable),
    ];
    const remove = { keyId: id, quorum: null };
    await call('putKeyQuorum', {
      ...remove,
      approvals: [
        await approve('dave', 'putKeyQuorum', id, remove),
        await approve('erin', 'putKeyQuorum', id, remove),
      ],
    });
    expect((await keystore.get(id)).quorum).toBeUndefined();
    expect(await sequenceOf(id)).toBe(1);
    await call('putKeyQuorum', { keyId: id, quorum: QUORUM }); // unprotected: no approvals needed
    expect(await sequenceOf(id)).toBe(2);
    await rejects(call('disableKey', { ...disable, approvals: early }), 'QUORUM_REQUIRED');
    expect((await keystore.get(id)).state).toBe('Enabled');
  });
});

describe('unprotected keys are unaffected', () => {
  it('protected operations need no approvals; approvals given are shape-checked and ignored', async () => {
    const id = await plainKey();
    await call('putKeyPolicy', { keyId: id, policy: null });
    await call('putKeyReleasePolicy', { keyId: id, releasePolicy: null });
    const stray = await approve('carol', 'disableKey', id, { keyId: id });
    const r = await call('disableKey', { keyId: id, approvals: [stray] });
    expect(r['approvedBy']).toBeUndefined();
    await rejects(call('disableKey', { keyId: id, approvals: [{ approver: 'carol' }] }), 'APPROVAL_INVALID');
    await call('scheduleKeyDeletion', { keyId: id, pendingWindowInDays: 7 });
    expect(await sequenceOf(id)).toBe(0);
  });

  it('operations that take no approvals refuse the parameter (REQUEST_INVALID)', async () => {
    const id = await plainKey();
    await rejects(call('rotateKey', { keyId: id, approvals: [] }), 'REQUEST_INVALID');
  });
});

describe('ReleaseKey (export to an attested workload) on a protected key', () => {
  let workloadCtx: Partial<KmsContext>;
  beforeAll(async () => {
    const ca = await createSimulatedNitroCa({ now: new Date(T0) });
    const enclave = new EnclaveIdentity(simulatedAttestor('sim-nitro', 'ab'.repeat(48), ca), () => T0);
    const claims: NitroClaims = {
      type: 'nitro',
      debug: false,
      timestamp: new Date(T0 - 30_000).toISOString(),
      measurement: PCR0,
      rootFingerprint: '0f'.repeat(32),
      simulated: true,
      moduleId: 'i-0123456789abcdef0-enc0123456789abcdef',
      pcrs: { '0': PCR0 },
      userData: null,
      nonce: null,
      publicKey: null,
    };
    workloadCtx = {
      principal: {
        name: `workload:${PCR0.slice(0, 16)}`,
        authentication: 'attestation',
        admin: false,
        roles: [],
      },
      workload: { claims, recipientPublicKey: xwingKeygen().publicKey },
      identity: enclave,
      requestDigest: new Uint8Array(32).fill(5),
    };
  });

  it('needs the quorum; the approvals are used up before the material leaves; an unprotected key releases as before', async () => {
    const releasePolicy = JSON.stringify({ version: 1, allowSimulated: true, measurements: [PCR0] });
    const id = (
      (await call('createKey', { releasePolicy, quorum: QUORUM }))['keyMetadata'] as { keyId: string }
    ).keyId;
    const params = { keyId: id, keyVersion: 1, recipientDigest: recipientDigestOf(workloadCtx) };
    await rejects(call('releaseKey', params, 'root', workloadCtx), 'QUORUM_REQUIRED');
    const approvals = [
      await approve('carol', 'releaseKey', id, params),
      await approve('erin', 'releaseKey', id, params),
    ];
    // Approved for version 1: a request for the current version without naming it is another request.
    await rejects(
      call(
        'releaseKey',
        { keyId: id, recipientDigest: params.recipientDigest, approvals },
        'root',
        workloadCtx,
      ),
      'QUORUM_REQUIRED',
    );
    const r = await call('releaseKey', { ...params, approvals }, 'root', workloadCtx);
    expect(r['release']).toBeInstanceOf(Uint8Array);
    expect(r['approvedBy']).toEqual(['carol', 'erin']);
    expect(await sequenceOf(id)).toBe(1);
    await rejects(call('releaseKey', { ...params, approvals }, 'root', workloadCtx), 'QUORUM_REQUIRED');

    const plain = ((await call('createKey', { releasePolicy }))['keyMetadata'] as { keyId: string }).keyId;
    const p = await call('releaseKey', { keyId: plain }, 'root', workloadCtx);
    expect(p['release']).toBeInstanceOf(Uint8Array);
  });

  it('a release that cannot happen (no such version, a disabled key) leaves the sequence and approvals usable', async () => {
    const releasePolicy = JSON.stringify({ version: 1, allowSimulated: true, measurements: [PCR0] });
    const id = (
      (await call('createKey', { releasePolicy, quorum: QUORUM }))['keyMetadata'] as { keyId: string }
    ).keyId;
    const digestHex = recipientDigestOf(workloadCtx);
    const missing = { keyId: id, keyVersion: 5, recipientDigest: digestHex };
    const forMissing = [
      await approve('carol', 'releaseKey', id, missing),
      await approve('dave', 'releaseKey', id, missing),
    ];
    await rejects(
      call('releaseKey', { ...missing, approvals: forMissing }, 'root', workloadCtx),
      'KEY_VERSION_NOT_FOUND',
    );
    expect(await sequenceOf(id)).toBe(0);
    const params = { keyId: id, keyVersion: 1, recipientDigest: digestHex };
    const approvals = [
      await approve('carol', 'releaseKey', id, params),
      await approve('dave', 'releaseKey', id, params),
    ];
    // Disabled (with its own quorum, sequence 0 → 1), a release fails on the state and uses nothing up.
    const disable = { keyId: id };
    await call('disableKey', {
      ...disable,
      approvals: [
        await approve('carol', 'disableKey', id, disable),
        await approve('erin', 'disableKey', id, disable),
      ],
    });
    const now1 = [
      await approve('carol', 'releaseKey', id, params),
      await approve('dave', 'releaseKey', id, params),
    ];
    await rejects(call('releaseKey', { ...params, approvals: now1 }, 'root', workloadCtx), 'KEY_DISABLED');
    expect(await sequenceOf(id)).toBe(1);
    await call('enableKey', { keyId: id });
    const r = await call('releaseKey', { ...params, approvals: now1 }, 'root', workloadCtx);
    expect(r['approvedBy']).toEqual(['carol', 'dave']);
    expect(await sequenceOf(id)).toBe(2);
    // The approvals gathered at sequence 0 were voided by the approved disable, not by the failed releases.
    await rejects(call('releaseKey', { ...params, approvals }, 'root', workloadCtx), 'QUORUM_REQUIRED');
  });
});

describe('ReleaseKey approvals name the receiving workload (recipientDigest)', () => {
  const PCR = 'cd'.repeat(48);
  let ctxA: Partial<KmsContext>;
  let ctxB: Partial<KmsContext>;
  beforeAll(async () => {
    const ca = await createSimulatedNitroCa({ now: new Date(T0) });
    const enclave = new EnclaveIdentity(simulatedAttestor('sim-nitro', 'ab'.repeat(48), ca), () => T0);
    const claims: NitroClaims = {
      type: 'nitro',
      debug: false,
      timestamp: new Date(T0 - 30_000).toISOString(),
      measurement: PCR,
      rootFingerprint: '0f'.repeat(32),
      simulated: true,
      moduleId: 'i-0123456789abcdef0-enc0123456789abcdef',
      pcrs: { '0': PCR },
      userData: null,
      nonce: null,
      publicKey: null,
    };
    const ctx = (): Partial<KmsContext> => ({
      principal: {
        name: `workload:${PCR.slice(0, 16)}`,
        authentication: 'attestation',
        admin: false,
        roles: [],
      },
      workload: { claims, recipientPublicKey: xwingKeygen().publicKey },
      identity: enclave,
      requestDigest: new Uint8Array(32).fill(5),
    });
    ctxA = ctx();
    ctxB = ctx();
  });
  const protectedKey = async (): Promise<string> => {
    const releasePolicy = JSON.stringify({ version: 1, allowSimulated: true, measurements: [PCR] });
    return ((await call('createKey', { releasePolicy, quorum: QUORUM }))['keyMetadata'] as { keyId: string })
      .keyId;
  };

  it('a protected release must name its recipient (APPROVAL_INVALID, the digest in the message)', async () => {
    const id = await protectedKey();
    const e = await rejects(call('releaseKey', { keyId: id }, 'root', ctxA), 'APPROVAL_INVALID');
    expect(e.message).toContain(recipientDigestOf(ctxA));
  });

  it("a recipientDigest that is not the session's recipient key is refused (ACCESS_DENIED); malformed: REQUEST_INVALID", async () => {
    const id = await protectedKey();
    await rejects(
      call('releaseKey', { keyId: id, recipientDigest: recipientDigestOf(ctxB) }, 'root', ctxA),
      'ACCESS_DENIED',
    );
    await rejects(
      call('releaseKey', { keyId: id, recipientDigest: 'AB'.repeat(32) }, 'root', ctxA),
      'REQUEST_INVALID',
    );
    await rejects(call('releaseKey', { keyId: id, recipientDigest: 'ab' }, 'root', ctxA), 'REQUEST_INVALID');
  });

  it('approvals for workload A do not release the key to workload B', async () => {
    const id = await protectedKey();
    const forA = { keyId: id, recipientDigest: recipientDigestOf(ctxA) };
    const approvals = [
      await approve('carol', 'releaseKey', id, forA),
      await approve('erin', 'releaseKey', id, forA),
    ];
    // B cannot claim A's digest (not its key), and under its own digest the approvals are for another request.
    await rejects(call('releaseKey', { ...forA, approvals }, 'root', ctxB), 'ACCESS_DENIED');
    const forB = { keyId: id, recipientDigest: recipientDigestOf(ctxB) };
    await rejects(call('releaseKey', { ...forB, approvals }, 'root', ctxB), 'QUORUM_REQUIRED');
    expect(await sequenceOf(id)).toBe(0);
    const r = await call('releaseKey', { ...forA, approvals }, 'root', ctxA);
    expect(r['approvedBy']).toEqual(['carol', 'erin']);
  });

  it('an explicit Deny in the key policy wins over the release policy: ReleaseKey, Decrypt and GenerateDataKey with a recipient', async () => {
    const releasePolicy = JSON.stringify({ version: 1, allowSimulated: true, measurements: [PCR] });
    const id = ((await call('createKey', { releasePolicy }))['keyMetadata'] as { keyId: string }).keyId;
    const blob = (
      await call('encrypt', { keyId: id, plaintext: new Uint8Array(8), encryptionContext: { a: 'b' } })
    )['ciphertextBlob'];
    // Allowed by the release policy alone.
    await call('releaseKey', { keyId: id }, 'root', ctxA);
    await call(
      'decrypt',
      { ciphertextBlob: blob, encryptionContext: { a: 'b' }, recipient: true },
      'root',
      ctxA,
    );
    const deny = JSON.stringify({
      version: 1,
      statements: [
        { sid: 'Admins', effect: 'Allow', principals: ['role:admin'], actions: ['*'] },
        { sid: 'NoWorkloads', effect: 'Deny', principals: ['workload:*'], actions: ['*'] },
      ],
    });
    await call('putKeyPolicy', { keyId: id, policy: deny });
    for (const [op, params] of [
      ['releaseKey', { keyId: id }],
      ['decrypt', { ciphertextBlob: blob, encryptionContext: { a: 'b' }, recipient: true }],
      ['generateDataKey', { keyId: id, encryptionContext: { a: 'b' }, recipient: true }],
    ] as const) {
      const e = await rejects(call(op, params as Params, 'root', ctxA), 'ACCESS_DENIED');
      expect(e.message).toContain('NoWorkloads');
    }
    // A Deny for other principals does not touch the workload.
    const denyOthers = JSON.stringify({
      version: 1,
      statements: [
        { sid: 'Admins', effect: 'Allow', principals: ['role:admin'], actions: ['*'] },
        { sid: 'NoMallory', effect: 'Deny', principals: ['mallory'], actions: ['*'] },
      ],
    });
    await call('putKeyPolicy', { keyId: id, policy: denyOthers });
    await call('releaseKey', { keyId: id }, 'root', ctxA);
  });
});

describe('sealed key record', () => {
  const record: KeyRecord = {
    id: '0f8fad5b-d9cb-469f-a165-70867728950e',
    description: '',
    createdAt: T0,
    suite: 1,
    state: 'Enabled',
    versions: [{ version: 1, createdAt: T0, material: new Uint8Array(32).fill(1) }],
    rotationPeriodDays: null,
    nextRotationAt: null,
    deletion: null,
    destroyedAt: null,
    deniedUses: null,
  } as KeyRecord;
  const name = `key.${record.id}`;

  it('a record without a quorum (as written before quorums existed) loads as unprotected at sequence 0', () => {
    const back = decodeKeyRecord(encodeKeyRecord(record), name);
    expect(back.quorum).toBeUndefined();
    expect(back.approvalSequence).toBeUndefined();
    expect(Object.keys(decodeCbor(encodeKeyRecord(record)) as object)).not.toContain('quorum');
  });

  it('quorum and sequence round-trip', () => {
    const back = decodeKeyRecord(encodeKeyRecord({ ...record, quorum: QUORUM, approvalSequence: 9 }), name);
    expect(back.quorum).toEqual(QUORUM);
    expect(back.approvalSequence).toBe(9);
  });

  it.each([
    ['threshold above N', { quorum: [3, ['a', 'b']] }],
    ['threshold 0', { quorum: [0, ['a']] }],
    ['duplicate approvers', { quorum: [1, ['a', 'a']] }],
    ['not a pair', { quorum: { threshold: 1, approvers: ['a'] } }],
    ['a negative sequence', { approvalSequence: -1 }],
    ['a zero sequence (never written)', { approvalSequence: 0 }],
  ])('a corrupt quorum field is SEALED_BLOB_CORRUPT: %s', (_what, extra) => {
    const raw = decodeCbor(encodeKeyRecord(record)) as Record<string, unknown>;
    syncRejects(() => decodeKeyRecord(encodeCbor({ ...raw, ...extra }), name), 'SEALED_BLOB_CORRUPT');
  });
});
