/**
 * Access control with the real processes (issue 6; docs/key-policy.md): registered principals with roles and tags,
 * the default separation-of-duties policy, tenant binding through principal tags, explicit deny, grants (narrow,
 * expiring, context-constrained, revocable), lint, and every decision in the audit log.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConnectOptions, connect, type EkmsClient } from '../../client/sdk.js';
import type { Host } from '../../host/host.js';
import { codeOf } from '../helpers/outcome.js';
import { startTestHost } from '../helpers/service.js';

function identity() {
  const k = generateKeyPairSync('ed25519');
  return {
    publicKey: new Uint8Array(k.publicKey.export({ type: 'spki', format: 'der' })),
    privateKey: k.privateKey,
  };
}

const admin = identity();
const carol = identity(); // admin role only
const alice = identity(); // user, tenant A
const bob = identity(); // user, tenant B

let dir: string;
let host: Host;
const clients: EkmsClient[] = [];
let as: Record<'admin' | 'carol' | 'alice' | 'bob', EkmsClient>;
let keyId: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ekms-acl-'));
  host = await startTestHost({
    stateDir: join(dir, 'state'),
    simulatedCaFile: join(dir, 'sim-ca.json'),
    adminPublicKey: admin.publicKey,
  });

  const open = async (principal: ReturnType<typeof identity>) => {
    const options: ConnectOptions = { trust: host.trust, principal, timeoutMs: 10_000 };
    const c = await connect(host.endpoint, options);
    clients.push(c);
    return c;
  };
  const a = await open(admin);
  await a.createPrincipal({ name: 'carol', publicKey: carol.publicKey, roles: ['admin'] });
  await a.createPrincipal({
    name: 'alice',
    publicKey: alice.publicKey,
    roles: ['user'],
    tags: { tenant: 'A' },
  });
  await a.createPrincipal({ name: 'bob', publicKey: bob.publicKey, roles: ['user'], tags: { tenant: 'B' } });
  as = { admin: a, carol: await open(carol), alice: await open(alice), bob: await open(bob) };
  keyId = (await a.createKey({ description: 'acl' })).keyId;
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await host?.close();
  rmSync(dir, { recursive: true, force: true });
});

const enc = (c: EkmsClient, tenant: string) => c.encrypt(keyId, new TextEncoder().encode('x'), { tenant });

describe('principals', () => {
  it('are listed with roles and tags; duplicates and bad definitions are refused; only admins register', async () => {
    const list = (await as.admin.listPrincipals())['principals'] as Array<{ name: string; roles: string[] }>;
    expect(list.map((p) => [p.name, p.roles])).toEqual([
      ['admin', ['admin', 'user']],
      ['carol', ['admin']],
      ['alice', ['user']],
      ['bob', ['user']],
    ]);
    expect(
      await codeOf(
        as.admin.createPrincipal({ name: 'alice', publicKey: identity().publicKey, roles: ['user'] }),
      ),
    ).toBe('PRINCIPAL_EXISTS');
    expect(
      await codeOf(as.admin.createPrincipal({ name: 'eve', publicKey: alice.publicKey, roles: ['user'] })),
    ).toBe('PRINCIPAL_EXISTS');
    expect(
      await codeOf(
        as.admin.createPrincipal({ name: 'eve', publicKey: identity().publicKey, roles: ['root'] }),
      ),
    ).toBe('PRINCIPAL_INVALID');
    expect(
      await codeOf(
        as.alice.createPrincipal({ name: 'eve', publicKey: identity().publicKey, roles: ['admin'] }),
      ),
    ).toBe('ACCESS_DENIED');
    expect(await codeOf(as.alice.listPrincipals())).toBe('ACCESS_DENIED');
  });
});

describe('the default policy separates duties', () => {
  it.each([
    ['carol (admin) describes, rotates', 'carol', (c: EkmsClient) => c.describeKey(keyId), 'OK'],
    ['carol (admin) may not encrypt', 'carol', (c: EkmsClient) => enc(c, 'A'), 'ACCESS_DENIED'],
    [
      'carol (admin) may not generate data keys',
      'carol',
      (c: EkmsClient) => c.generateDataKey(keyId),
      'ACCESS_DENIED',
    ],
    ['alice (user) encrypts', 'alice', (c: EkmsClient) => enc(c, 'A'), 'OK'],
    [
      'alice (user) may not schedule deletion',
      'alice',
      (c: EkmsClient) => c.scheduleKeyDeletion(keyId, 7),
      'ACCESS_DENIED',
    ],
    ['alice (user) may not disable', 'alice', (c: EkmsClient) => c.disableKey(keyId), 'ACCESS_DENIED'],
    [
      'alice (user) may not set the policy',
      'alice',
      (c: EkmsClient) => c.putKeyPolicy(keyId, null),
      'ACCESS_DENIED',
    ],
    ['alice (user) may not create keys', 'alice', (c: EkmsClient) => c.createKey({}), 'ACCESS_DENIED'],
  ] as const)('%s', async (_label, who, call, expected) => {
    expect(await codeOf(call(as[who]))).toBe(expected);
  });
});

describe('a key policy binds tenants through principal tags; an explicit deny wins', () => {
  beforeAll(async () => {
    const policy = {
      version: 1,
      statements: [
        { sid: 'admins', effect: 'Allow', principals: ['role:admin'], actions: ['admin:*'] },
        {
          sid: 'own-tenant',
          effect: 'Allow',
          principals: ['role:user'],
          actions: ['use:*'],
          // biome-ignore lint/suspicious/noTemplateCurlyInString: a key policy variable, not a JS template
          conditions: { context: { equals: { tenant: '${principal.tag.tenant}' } } },
        },
        { sid: 'no-decrypt-bob', effect: 'Deny', principals: ['bob'], actions: ['Decrypt'] },
      ],
    };
    await as.admin.putKeyPolicy(keyId, JSON.stringify(policy));
  });

  it('alice uses tenant A only; bob tenant B only', async () => {
    expect(await codeOf(enc(as.alice, 'A'))).toBe('OK');
    expect(await codeOf(enc(as.alice, 'B'))).toBe('ACCESS_DENIED');
    expect(await codeOf(enc(as.bob, 'B'))).toBe('OK');
    expect(await codeOf(enc(as.bob, 'A'))).toBe('ACCESS_DENIED');
  });

  it('the explicit deny wins over the tenant allow (and over any grant)', async () => {
    const blob = (await enc(as.bob, 'B')).ciphertextBlob;
    expect(await codeOf(as.bob.decrypt(blob, { tenant: 'B' }))).toBe('ACCESS_DENIED');
    await as.admin.createGrant(keyId, { grantee: 'bob', operations: ['Decrypt'], expiresInSeconds: 600 });
    expect(await codeOf(as.bob.decrypt(blob, { tenant: 'B' }))).toBe('ACCESS_DENIED');
  });

  it('an invalid policy is refused with its path (KEY_POLICY_INVALID)', async () => {
    expect(
      await codeOf(as.admin.putKeyPolicy(keyId, '{"version":1,"statements":[{"effect":"Maybe"}]}')),
    ).toBe('KEY_POLICY_INVALID');
  });
});

describe('grants', () => {
  it('delegate named operations to a principal, within a context subset, until revoked', async () => {
    expect(await codeOf(enc(as.carol, 'A'))).toBe('ACCESS_DENIED');
    const g = await as.admin.createGrant(keyId, {
      grantee: 'carol',
      operations: ['Encrypt'],
      contextSubset: { tenant: 'A' },
      expiresInSeconds: 600,
    });
    expect(await codeOf(enc(as.carol, 'A'))).toBe('OK');
    expect(await codeOf(enc(as.carol, 'B'))).toBe('ACCESS_DENIED');
    const blob = (await enc(as.carol, 'A')).ciphertextBlob;
    expect(await codeOf(as.carol.decrypt(blob, { tenant: 'A' }))).toBe('ACCESS_DENIED');
    const listed = (await as.admin.listGrants(keyId))['grants'] as Array<{
      grantId: string;
      grantee: string;
    }>;
    expect(listed.some((x) => x.grantId === g.grantId && x.grantee === 'carol')).toBe(true);
    await as.admin.revokeGrant(keyId, g.grantId);
    expect(await codeOf(enc(as.carol, 'A'))).toBe('ACCESS_DENIED');
    expect(await codeOf(as.admin.revokeGrant(keyId, g.grantId))).toBe('GRANT_NOT_FOUND');
  });

  it('never delegate administration (GRANT_INVALID); only admins create them', async () => {
    expect(
      await codeOf(as.admin.createGrant(keyId, { grantee: 'alice', operations: ['ScheduleKeyDeletion'] })),
    ).toBe('GRANT_INVALID');
    expect(await codeOf(as.alice.createGrant(keyId, { grantee: 'alice', operations: ['Encrypt'] }))).toBe(
      'ACCESS_DENIED',
    );
  });
});

describe('lint and audit', () => {
  it('lint flags a key released to simulated evidence', async () => {
    const k = await as.admin.createKey({
      releasePolicy: JSON.stringify({ version: 1, allowSimulated: true, measurements: ['ab'.repeat(48)] }),
    });
    const codes = (await as.admin.lintKeyPolicy(k.keyId)).map((f) => f.code);
    expect(codes).toContain('ATTESTATION_SIMULATED_ALLOWED');
  });

  it('every decision reaches the audit log, denials with their code', async () => {
    // The host's copy of the audit log (docs/audit.md); lines reach it asynchronously.
    const file = join(dir, 'audit.jsonl');
    let lines: Array<Record<string, unknown>> = [];
    for (let i = 0; i < 50; i++) {
      lines = readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      if (lines.some((l) => l['principal'] === 'alice' && l['outcome'] === 'denied')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const denied = lines.filter((l) => l['principal'] === 'alice' && l['outcome'] === 'denied');
    expect(denied.length).toBeGreaterThan(0);
    expect(denied.every((l) => l['code'] === 'ACCESS_DENIED')).toBe(true);
    expect(
      lines.some(
        (l) => l['principal'] === 'carol' && l['operation'] === 'encrypt' && l['outcome'] === 'allowed',
      ),
    ).toBe(true);
  });
});
