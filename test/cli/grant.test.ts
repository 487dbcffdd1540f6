/**
 * `ekms key grant create|list|revoke` (client/cli/key.ts; docs/key-policy.md §9–§10) through the real CLI against
 * one real service: the design §5 contract (one JSON document with --json, exit 0/1/2), a grant being what lets a
 * principal use a key (an admin-only principal, whom the default policy refuses every use) until it is revoked,
 * the usage errors, an unregistered grantee, and a protected key's quorum — refused without approvals, accepted
 * with an approval of the request `ekms approval request createGrant` writes for the same values.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { durationOption } from '../../client/cli/common.js';
import {
  type CliResult,
  type CliService,
  failureOf,
  ISO,
  jsonOf,
  KEY_ID,
  mapLimit,
  runCli,
  startCliService,
} from '../helpers/cli-service.js';
import { connectProfile } from '../helpers/connect.js';

/** Generous, as in test/cli/key.test.ts: a loaded machine must not make it flaky. */
const TEST_TIMEOUT = 120_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

describe('ekms key grant (CLI against a real service)', () => {
  let svc: CliService;
  /** carol's profile: the service's, authenticated with carol's key (admin role only: no use of keys by policy). */
  let carolProfile: string;
  /** Keys made with the SDK in beforeAll (CLI processes are what the budget goes on): one per test. */
  let keys: { plain: string; other: string; protected: string };
  const file = (name: string): string => join(svc.dir, name);
  const ekms = (args: readonly string[], profile = svc.profile): Promise<CliResult> =>
    runCli([...args, '--profile', profile], { cwd: svc.dir });
  const ok = async (args: readonly string[], profile?: string): Promise<Record<string, unknown>> => {
    const r = await ekms([...args, '--json'], profile);
    const doc = jsonOf(r);
    expect(doc, `${args.join(' ')}: ${r.stderr}`).toMatchObject({ ok: true });
    expect(r.code).toBe(0);
    return doc;
  };
  const fail = async (args: readonly string[], profile?: string) =>
    failureOf(await ekms([...args, '--json'], profile));

  beforeAll(async () => {
    svc = await startCliService('ekms-cli-grant-');
    // carol (the grantee) and dave (a quorum approver): admins only, registered with the SDK as in
    // test/cli/approval.test.ts; their keys as PEM files, and a profile that authenticates as carol.
    const publicKeys: Record<string, Buffer> = {};
    const admin = await connectProfile(svc.profile);
    try {
      for (const name of ['carol', 'dave']) {
        const k = generateKeyPairSync('ed25519');
        writeFileSync(file(`${name}.key`), k.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
        publicKeys[name] = k.publicKey.export({ type: 'spki', format: 'der' });
        await admin.createPrincipal({ name, publicKey: new Uint8Array(publicKeys[name]), roles: ['admin'] });
      }
      keys = {
        plain: (await admin.createKey()).keyId,
        other: (await admin.createKey()).keyId,
        protected: (await admin.createKey({ quorum: { threshold: 1, approvers: ['dave'] } })).keyId,
      };
    } finally {
      admin.close();
    }
    const profile = JSON.parse(readFileSync(svc.profile, 'utf8')) as Record<string, unknown>;
    carolProfile = file('carol-profile.json');
    writeFileSync(
      carolProfile,
      JSON.stringify({
        ...profile,
        admin: { name: 'carol', publicKey: publicKeys['carol']!.toString('hex'), keyFile: 'carol.key' },
      }),
    );
  }, TEST_TIMEOUT);
  afterAll(async () => {
    await svc?.stop();
  });

  it(
    'create, list, use by the grantee through the grant, revoke: then the list is empty and the use refused',
    async () => {
      const keyId = keys.plain;
      // carol holds only the admin role: the default policy refuses her every use of the key.
      const encrypt = ['key', 'encrypt', '--key', keyId, '--plaintext-b64', 'aGVsbG8=', '--context', 'app=x'];
      const before = await fail(encrypt, carolProfile);
      expect([before.exit, before.code]).toEqual([1, 'ACCESS_DENIED']);

      const t0 = Date.now();
      const created = await ok([
        'key',
        'grant',
        'create',
        keyId,
        '--grantee',
        'carol',
        '--operation',
        'Encrypt',
        '--context',
        'app=x',
        '--expires-in',
        '1h',
      ]);
      expect(Object.keys(created).sort()).toEqual(['expiresAt', 'grantId', 'keyId', 'ok']);
      expect(created['keyId']).toBe(keyId);
      expect(created['grantId']).toMatch(KEY_ID);
      expect(created['expiresAt']).toMatch(ISO);
      expect(Math.abs(Date.parse(created['expiresAt'] as string) - (t0 + HOUR_MS))).toBeLessThan(60_000);
      const grantId = created['grantId'] as string;

      const [listed, human, used] = await mapLimit(
        [
          () => ok(['key', 'grant', 'list', keyId]),
          () => ekms(['key', 'grant', 'list', keyId]),
          () => ok(encrypt, carolProfile),
        ],
        2,
        (f): Promise<unknown> => f(),
      );
      expect(listed).toEqual({
        ok: true,
        keyId,
        grants: [
          {
            grantId,
            grantee: 'carol',
            operations: ['Encrypt'],
            contextSubset: { app: 'x' },
            createdAt: expect.stringMatching(ISO),
            expiresAt: created['expiresAt'],
            createdBy: 'admin',
          },
        ],
      });
      const h = human as CliResult;
      expect([h.code, h.stderr]).toEqual([0, '']);
      const expires = String(created['expiresAt']).replace(/\./g, '\\.');
      expect(h.stdout.toString()).toMatch(
        new RegExp(
          `^GRANT ID +GRANTEE +OPERATIONS +CONTEXT SUBSET +EXPIRES\n${grantId} +carol +Encrypt +app=x +${expires}\n$`,
        ),
      );
      // The grant is what lets carol use the key.
      expect(used).toMatchObject({ keyId, keyVersion: 1 });

      const revoked = await ok(['key', 'grant', 'revoke', keyId, grantId]);
      expect(revoked).toEqual({ ok: true, keyId, grantId, revoked: true });

      const [empty, after] = await mapLimit(
        [() => ok(['key', 'grant', 'list', keyId]), () => fail(encrypt, carolProfile)],
        2,
        (f): Promise<unknown> => f(),
      );
      expect(empty).toEqual({ ok: true, keyId, grants: [] });
      expect(after).toMatchObject({ exit: 1, code: 'ACCESS_DENIED' });
    },
    TEST_TIMEOUT,
  );

  it(
    'bad arguments are USAGE_ERROR (exit 2); an unregistered grantee is GRANT_INVALID (exit 1)',
    async () => {
      const create = ['key', 'grant', 'create', keys.other];
      const cases: Array<[string[], number, string]> = [
        [[...create, '--operation', 'Decrypt'], 2, 'USAGE_ERROR'], // no --grantee
        [[...create, '--grantee', 'carol'], 2, 'USAGE_ERROR'], // no --operation
        [[...create, '--grantee', 'carol', '--operation', 'Decrypt', '--context', 'app'], 2, 'USAGE_ERROR'],
        [
          [...create, '--grantee', 'carol', '--operation', 'Decrypt', '--expires-in', '31d'],
          2,
          'USAGE_ERROR',
        ],
        [[...create, '--grantee', 'mallory', '--operation', 'Decrypt'], 1, 'GRANT_INVALID'],
      ];
      const results = await mapLimit(cases, 2, ([args]) => fail(args));
      results.forEach((r, i) => {
        const [args, exit, code] = cases[i]!;
        expect([r.exit, r.code], args.join(' ')).toEqual([exit, code]);
      });
    },
    TEST_TIMEOUT,
  );

  it(
    'a protected key: create without approvals is QUORUM_REQUIRED; with an approval of `approval request createGrant` for the same values it is created',
    async () => {
      const keyId = keys.protected;
      const grant = [
        '--grantee',
        'carol',
        '--operation',
        'Encrypt',
        '--operation',
        'Decrypt',
        '--context',
        'app=y',
      ];
      const [plain] = await mapLimit(
        [
          () => fail(['key', 'grant', 'create', keyId, ...grant, '--expires-in', '2h']),
          () =>
            ok([
              'approval',
              'request',
              'createGrant',
              '--key',
              keyId,
              '--grantee',
              'carol',
              '--grant-operation',
              'Encrypt',
              '--grant-operation',
              'Decrypt',
              '--grant-context',
              'app=y',
              '--grant-seconds',
              '7200',
              '--out',
              file('grant-req.json'),
            ]),
        ],
        2,
        (f): Promise<unknown> => f(),
      );
      expect(plain).toMatchObject({ exit: 1, code: 'QUORUM_REQUIRED' });

      const sign = await runCli(
        [
          'approval',
          'sign',
          file('grant-req.json'),
          '--key',
          file('dave.key'),
          '--name',
          'dave',
          '--out',
          file('dave-grant.json'),
        ],
        { cwd: svc.dir },
      );
      expect(sign.code, sign.stderr).toBe(0);
      const done = await ok([
        'key',
        'grant',
        'create',
        keyId,
        ...grant,
        '--expires-in',
        '2h',
        '--approval',
        file('dave-grant.json'),
      ]);
      expect(Object.keys(done).sort()).toEqual(['approvedBy', 'expiresAt', 'grantId', 'keyId', 'ok']);
      expect(done).toMatchObject({ keyId, approvedBy: ['dave'] });
      expect(done['grantId']).toMatch(KEY_ID);
    },
    TEST_TIMEOUT,
  );
});

describe('--expires-in of key grant create (durationOption)', () => {
  const grantLifetime = (v: string): number =>
    durationOption(v, '--expires-in', 60_000, 30 * DAY_MS, '60s..30d');
  it('takes N followed by s, m, h or d within 60 s .. 30 days', () => {
    expect(grantLifetime('60s')).toBe(60_000);
    expect(grantLifetime('30m')).toBe(30 * 60_000);
    expect(grantLifetime('1h')).toBe(HOUR_MS);
    expect(grantLifetime('7d')).toBe(7 * DAY_MS);
    expect(grantLifetime('30d')).toBe(30 * DAY_MS);
    for (const bad of ['59s', '0m', '31d', '721h', '1w', '1.5h', '-1h', 'h', '1 h', '', '1000000d']) {
      expect(() => grantLifetime(bad), bad).toThrow(expect.objectContaining({ code: 'USAGE_ERROR' }));
    }
  });
});
