/**
 * `ekms key quorum …` and `ekms approval request|sign|submit` (client/cli/approval.ts; docs/key-policy.md §10)
 * through the real CLI against one real service: the design §5 contract (one JSON document with --json, exit
 * 0/1/2), the offline signing step that shows what it approves and refuses an edited request file, and the
 * enclave's refusals (too few approvals, replay) reaching the command line with their codes.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asciiJson } from '../../client/cli/approval.js';
import {
  type CliResult,
  type CliService,
  failureOf,
  jsonOf,
  runCli,
  startCliService,
} from '../helpers/cli-service.js';
import { connectProfile } from '../helpers/connect.js';

const TEST_TIMEOUT = 120_000;

describe('ekms approval (CLI against a real service)', () => {
  let svc: CliService;
  const file = (name: string): string => join(svc.dir, name);
  const ekms = (args: readonly string[]): Promise<CliResult> =>
    runCli([...args, '--profile', svc.profile], { cwd: svc.dir });
  const ok = async (args: readonly string[], withProfile = true): Promise<Record<string, unknown>> => {
    const r = withProfile
      ? await ekms([...args, '--json'])
      : await runCli([...args, '--json'], { cwd: svc.dir });
    const doc = jsonOf(r);
    expect(doc, `${args.join(' ')}: ${r.stderr}`).toMatchObject({ ok: true });
    expect(r.code).toBe(0);
    return doc;
  };
  const fail = async (args: readonly string[], withProfile = true) => {
    const r = withProfile
      ? await ekms([...args, '--json'])
      : await runCli([...args, '--json'], { cwd: svc.dir });
    return failureOf(r);
  };

  beforeAll(async () => {
    svc = await startCliService('ekms-cli-approval-');
    // Two more admins, registered with the SDK (there is no principal command yet); their keys as PEM files.
    const admin = await connectProfile(svc.profile);
    try {
      for (const name of ['carol', 'dave']) {
        const k = generateKeyPairSync('ed25519');
        writeFileSync(file(`${name}.key`), k.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
        await admin.createPrincipal({
          name,
          publicKey: new Uint8Array(k.publicKey.export({ type: 'spki', format: 'der' })),
          roles: ['admin'],
        });
      }
    } finally {
      admin.close();
    }
  }, TEST_TIMEOUT);
  afterAll(async () => {
    await svc?.stop();
  });

  it(
    'quorum set, request, sign (offline), submit; too few and replayed approvals are refused',
    async () => {
      const keyId = (await ok(['key', 'create']))['keyId'] as string;
      const set = await ok([
        'key',
        'quorum',
        'set',
        keyId,
        '--threshold',
        '2',
        '--approver',
        'dave',
        '--approver',
        'carol',
      ]);
      expect(set['quorum']).toEqual({ threshold: 2, approvers: ['carol', 'dave'], sequence: 1 });
      expect(set['approvedBy']).toBeNull();

      // Without approvals the protected operation is refused (exit 1).
      const plain = await fail(['key', 'disable', keyId]);
      expect([plain.exit, plain.code]).toEqual([1, 'QUORUM_REQUIRED']);

      const req = await ok(['approval', 'request', 'disableKey', '--key', keyId, '--out', file('req.json')]);
      expect(req).toMatchObject({ op: 'disableKey', keyId, sequence: 1, params: {} });
      expect(req['digest']).toMatch(/^[0-9a-f]{96}$/);

      // Offline: no profile, no service. The human output shows what is approved.
      const human = await runCli(
        [
          'approval',
          'sign',
          file('req.json'),
          '--key',
          file('carol.key'),
          '--name',
          'carol',
          '--out',
          file('carol.json'),
        ],
        { cwd: svc.dir },
      );
      expect(human.code, human.stderr).toBe(0);
      const text = human.stdout.toString();
      expect(text).toContain('carol approves');
      expect(text).toContain('operation:  disableKey');
      expect(text).toContain(`key id:     ${keyId}`);
      expect(text).toContain(String(req['digest']));
      const signed = await ok(
        [
          'approval',
          'sign',
          file('req.json'),
          '--key',
          file('dave.key'),
          '--name',
          'dave',
          '--expires-in',
          '30m',
          '--out',
          file('dave.json'),
        ],
        false,
      );
      expect(signed).toMatchObject({ approver: 'dave', op: 'disableKey', keyId, digest: req['digest'] });

      const few = await fail(['approval', 'submit', file('req.json'), '--approval', file('carol.json')]);
      expect([few.exit, few.code]).toEqual([1, 'QUORUM_REQUIRED']);
      expect(few.message).toMatch(/1 valid approval/);

      const done = await ok([
        'approval',
        'submit',
        file('req.json'),
        '--approval',
        file('carol.json'),
        '--approval',
        file('dave.json'),
      ]);
      expect(done).toMatchObject({ state: 'Disabled', approvedBy: ['carol', 'dave'] });
      expect((done['quorum'] as { sequence: number }).sequence).toBe(2);

      const replay = await fail([
        'approval',
        'submit',
        file('req.json'),
        '--approval',
        file('carol.json'),
        '--approval',
        file('dave.json'),
      ]);
      expect([replay.exit, replay.code]).toEqual([1, 'QUORUM_REQUIRED']);

      // The quorum protects itself.
      const remove = await fail(['key', 'quorum', 'remove', keyId]);
      expect(remove.code).toBe('QUORUM_REQUIRED');
    },
    TEST_TIMEOUT,
  );

  it(
    'refuses an edited request file, a too-long expiry, a non-protected operation, and a non-Ed25519 key',
    async () => {
      const keyId = (await ok(['key', 'create']))['keyId'] as string;
      await ok([
        'approval',
        'request',
        'scheduleKeyDeletion',
        '--key',
        keyId,
        '--days',
        '7',
        '--out',
        file('r2.json'),
      ]);
      const doc = JSON.parse(readFileSync(file('r2.json'), 'utf8')) as { params: Record<string, unknown> };
      doc.params['pendingWindowInDays'] = 30;
      writeFileSync(file('r2-edited.json'), JSON.stringify(doc));
      const sign = (req: string, ...extra: string[]) => [
        'approval',
        'sign',
        req,
        '--key',
        file('carol.key'),
        '--name',
        'carol',
        '--out',
        file('x.json'),
        ...extra,
      ];
      const edited = await fail(sign(file('r2-edited.json')), false);
      expect([edited.exit, edited.code]).toEqual([1, 'APPROVAL_INVALID']);
      const long = await fail(sign(file('r2.json'), '--expires-in', '25h'), false);
      expect([long.exit, long.code]).toEqual([2, 'USAGE_ERROR']);
      writeFileSync(
        file('rsa.key'),
        generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({
          type: 'pkcs8',
          format: 'pem',
        }) as string,
      );
      const rsa = await fail(
        [
          'approval',
          'sign',
          file('r2.json'),
          '--key',
          file('rsa.key'),
          '--name',
          'carol',
          '--out',
          file('x.json'),
        ],
        false,
      );
      expect([rsa.exit, rsa.code]).toEqual([2, 'USAGE_ERROR']);
      const notProtected = await fail([
        'approval',
        'request',
        'encrypt',
        '--key',
        keyId,
        '--out',
        file('r3.json'),
      ]);
      expect([notProtected.exit, notProtected.code]).toEqual([2, 'USAGE_ERROR']);
    },
    TEST_TIMEOUT,
  );
});

describe('what an approver reads is what is signed', () => {
  it('approval sign shows parameters as printable ASCII: bidi overrides, zero-width and look-alike characters are escaped', () => {
    const policy = 'allow \u202e"nimda" \u200b role:us\u0435r 😀';
    const shown = asciiJson({ policy });
    expect(shown).toMatch(/^[\x20-\x7e\n]*$/);
    expect(shown).toContain('\\u202e');
    expect(shown).toContain('\\u200b');
    expect(shown).toContain('us\\u0435r');
    expect(shown).toContain('\\ud83d\\ude00');
    // Still JSON, of the same value.
    expect(JSON.parse(shown)).toEqual({ policy });
  });
});
