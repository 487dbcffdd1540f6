/**
 * Dual control with the real processes (issue 6; docs/key-policy.md §10): a host and its enclave bundle, admins
 * registered as principals, approvals made with the SDK helpers (`prepareApproval`, `signApproval`) and sent over
 * attested sessions. The unit tests (test/enclave/quorum.test.ts) cover every rule; this checks that the wire, the
 * SDK and the enclave agree on the digest, that refusals reach the client with their code and reasons, and that
 * they reach the audit log as denials.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Approval,
  type ApprovalRequestDocument,
  type ConnectOptions,
  connect,
  type EkmsClient,
  type PrincipalCredentials,
  signApproval,
} from '../../client/sdk.js';
import type { Host } from '../../host/host.js';
import { failure } from '../helpers/outcome.js';
import { startTestHost } from '../helpers/service.js';

function identity(): PrincipalCredentials {
  const k = generateKeyPairSync('ed25519');
  return {
    publicKey: new Uint8Array(k.publicKey.export({ type: 'spki', format: 'der' })),
    privateKey: k.privateKey,
  };
}

const ids = { admin: identity(), carol: identity(), dave: identity(), erin: identity(), uma: identity() };
type Name = keyof typeof ids;
const QUORUM = { threshold: 2, approvers: ['carol', 'dave', 'erin'] };
const HOUR = 3_600_000;

let dir: string;
let host: Host;
const clients: EkmsClient[] = [];
let as: Record<Name, EkmsClient>;

function sign(who: Name, request: ApprovalRequestDocument, expiresAt = Date.now() + HOUR): Approval {
  return signApproval(Buffer.from(request.digest, 'hex'), ids[who], who, expiresAt);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ekms-quorum-'));
  host = await startTestHost({
    stateDir: join(dir, 'state'),
    simulatedCaFile: join(dir, 'sim-ca.json'),
    adminPublicKey: ids.admin.publicKey,
  });
  const open = async (principal: PrincipalCredentials) => {
    const options: ConnectOptions = { trust: host.trust, principal, timeoutMs: 10_000 };
    const c = await connect(host.endpoint, options);
    clients.push(c);
    return c;
  };
  const admin = await open(ids.admin);
  for (const n of ['carol', 'dave', 'erin'] as const) {
    await admin.createPrincipal({ name: n, publicKey: ids[n].publicKey, roles: ['admin'] });
  }
  await admin.createPrincipal({ name: 'uma', publicKey: ids.uma.publicKey, roles: ['user'] });
  as = {
    admin,
    carol: await open(ids.carol),
    dave: await open(ids.dave),
    erin: await open(ids.erin),
    uma: await open(ids.uma),
  };
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await host?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('dual control over the wire', () => {
  it('a protected key: DescribeKey shows the quorum; approvers must be registered admins', async () => {
    const m = await as.admin.createKey({ description: 'protected', quorum: QUORUM });
    expect(m.quorum).toEqual({ ...QUORUM, sequence: 0 });
    expect((await as.carol.describeKey(m.keyId)).quorum).toEqual({ ...QUORUM, sequence: 0 });
    const err = await failure(as.admin.createKey({ quorum: { threshold: 1, approvers: ['uma'] } }));
    expect(err.code).toBe('QUORUM_INVALID');
  });

  it('too few, duplicate, stale and mismatched approvals are refused with the reasons; M valid ones pass once', async () => {
    const { keyId } = await as.admin.createKey({ quorum: QUORUM, aliasName: 'alias/quorum-e2e' });
    // Prepared through the alias: the request names the key id.
    const req = await as.admin.prepareApproval('scheduleKeyDeletion', {
      keyId: 'alias/quorum-e2e',
      pendingWindowInDays: 7,
    });
    expect(req.keyId).toBe(keyId);
    expect(req.sequence).toBe(0);
    const other = await as.admin.prepareApproval('scheduleKeyDeletion', { keyId, pendingWindowInDays: 8 });

    const tooFew = await failure(as.admin.scheduleKeyDeletion(keyId, 7, { approvals: [sign('carol', req)] }));
    expect(tooFew.code).toBe('QUORUM_REQUIRED');
    expect(tooFew.message).toMatch(/needs 2 of \[carol, dave, erin\] to approve; 1 valid approval/);

    const mixed = await failure(
      as.admin.scheduleKeyDeletion(keyId, 7, {
        approvals: [
          sign('carol', req),
          sign('carol', req),
          sign('dave', req, Date.now() - 1),
          sign('erin', other),
          sign('uma', req),
        ],
      }),
    );
    expect(mixed.code).toBe('QUORUM_REQUIRED');
    expect(mixed.message).toMatch(/approval 1 \(carol\): duplicate/);
    expect(mixed.message).toMatch(/approval 2 \(dave\): expired/);
    expect(mixed.message).toMatch(/approval 3 \(erin\): other-request/);
    expect(mixed.message).toMatch(/approval 4 \(uma\): not-an-approver/);
    expect((await as.admin.describeKey(keyId)).state).toBe('Enabled');

    const tooLong = await failure(
      as.admin.scheduleKeyDeletion(keyId, 7, {
        approvals: [sign('carol', req), sign('dave', req, Date.now() + 25 * HOUR)],
      }),
    );
    expect(tooLong.code).toBe('APPROVAL_INVALID');

    const approvals = [sign('dave', req), sign('erin', req)];
    const done = await as.admin.submitApproved(req, approvals);
    expect(done['approvedBy']).toEqual(['dave', 'erin']);
    const m = await as.admin.describeKey(keyId);
    expect(m.state).toBe('PendingDeletion');
    expect(m.quorum?.sequence).toBe(1);

    // Replayed: the sequence moved, so these approvals are of another request now.
    await as.admin.cancelKeyDeletion(keyId); // not protected
    const replay = await failure(as.admin.scheduleKeyDeletion(keyId, 7, { approvals }));
    expect(replay.code).toBe('QUORUM_REQUIRED');
    expect(replay.message).toMatch(/other-request/);
  });

  it('the quorum cannot be removed without itself; with it, it can', async () => {
    const { keyId } = await as.admin.createKey({ quorum: QUORUM });
    expect((await failure(as.admin.putKeyQuorum(keyId, null))).code).toBe('QUORUM_REQUIRED');
    const weaker = { threshold: 1, approvers: ['carol'] };
    expect((await failure(as.carol.putKeyQuorum(keyId, weaker))).code).toBe('QUORUM_REQUIRED');
    const req = await as.carol.prepareApproval('putKeyQuorum', { keyId, quorum: null });
    const m = await as.carol.putKeyQuorum(keyId, null, {
      approvals: [sign('carol', req), sign('erin', req)],
    });
    expect(m.quorum).toBeNull();
    // Unprotected now: a single admin disables it without approvals.
    expect((await as.carol.disableKey(keyId)).state).toBe('Disabled');
  });

  it('unprotected keys are unaffected; a user is refused by the key policy before any quorum', async () => {
    const { keyId } = await as.admin.createKey({});
    expect((await as.carol.disableKey(keyId)).state).toBe('Disabled');
    expect((await as.carol.putKeyPolicy(keyId, null)).quorum).toBeNull();
    const p = await as.admin.createKey({ quorum: QUORUM });
    const req = await as.admin.prepareApproval('disableKey', { keyId: p.keyId });
    const err = await failure(
      as.uma.disableKey(p.keyId, { approvals: [sign('carol', req), sign('dave', req)] }),
    );
    expect(err.code).toBe('ACCESS_DENIED');
    expect(
      (await as.dave.disableKey(p.keyId, { approvals: [sign('carol', req), sign('dave', req)] })).state,
    ).toBe('Disabled');
  });

  it('refusals for want of a quorum reach the audit log as denials with their code', async () => {
    const file = join(dir, 'audit.jsonl');
    let lines: Array<Record<string, unknown>> = [];
    for (let i = 0; i < 50; i++) {
      lines = readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      if (lines.some((l) => l['code'] === 'QUORUM_REQUIRED')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const refused = lines.filter((l) => l['code'] === 'QUORUM_REQUIRED');
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((l) => l['outcome'] === 'denied')).toBe(true);
    const approvedAt = lines.findIndex(
      (l) =>
        l['operation'] === 'scheduleKeyDeletion' && l['outcome'] === 'allowed' && l['principal'] === 'admin',
    );
    expect(approvedAt).toBeGreaterThanOrEqual(0);
    // Each approval that counted follows as its own event in the approver's name, with the same request id.
    const op = lines[approvedAt] as Record<string, unknown>;
    const approvals = lines.filter(
      (l) => l['operation'] === 'scheduleKeyDeletion.approval' && l['requestId'] === op['requestId'],
    );
    expect(approvals.map((l) => l['principal'])).toEqual(['dave', 'erin']);
    for (const a of approvals) {
      expect(a).toMatchObject({ outcome: 'allowed', authentication: 'signature', keyId: op['keyId'] });
    }
    // Refused requests record no approvals.
    const refusedIds = new Set(refused.map((l) => l['requestId']));
    expect(
      lines.some((l) => String(l['operation']).endsWith('.approval') && refusedIds.has(l['requestId'])),
    ).toBe(false);
  });
});
