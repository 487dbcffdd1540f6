/**
 * M-of-N root-key custody with the real processes (design §4; docs/custody.md):
 * - first start in custody mode provisions the root key and leaves only the encrypted custody bundle on the host;
 * - a restart is locked (health `locked`, key operations ROOT_KEY_LOCKED) until M custodians submit their shares;
 *   M−1 do not unlock; a garbage share is refused alone; keys from before the restart decrypt afterwards;
 * - a custodian refuses an enclave with the wrong measurement before sending anything;
 * - a bundle swapped in from another deployment (same custodians, same simulated CA) is refused at unlock by the
 *   sealed-state key check and the enclave stays locked;
 * - the recorded host traffic and the host's storage never contain the root key or a plaintext share.
 */
import { execFile } from 'node:child_process';
import {
  copyFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import {
  type CustodianKey,
  custodyStatus,
  custodyUnlock,
  generateCustodianKey,
  loadCustodianKey,
} from '../../client/custody.js';
import { connect, type EkmsClient } from '../../client/sdk.js';
import { combineShares } from '../../enclave/custody/shamir.js';
import { AUDIT_LOG_FILE } from '../../host/audit-sink.js';
import type { Host } from '../../host/host.js';
import { parseAuditLine } from '../../shared/audit.js';
import { CUSTODY_BUNDLE_BLOB, decodeBundle, encodeCustodySet, shareInfo } from '../../shared/custody.js';
import { EkmsError } from '../../shared/errors.js';
import { hpkeOpen } from '../../shared/hpke.js';
import { codeOf } from '../helpers/outcome.js';
import { adminPrincipal, CLI, startTestHost } from '../helpers/service.js';

const run = promisify(execFile);

let dir: string;
let keys: CustodianKey[];
let custodySet: Uint8Array;
let host: Host | undefined;
const stateA = (): string => join(dir, 'a-state');
const caFile = (): string => join(dir, 'sim-ca.json');

async function start(stateDir: string): Promise<Host> {
  return startTestHost({ stateDir, simulatedCaFile: caFile(), custodySet });
}

function trustOf(h: Host) {
  return {
    measurement: h.trust.measurement,
    roots: [...h.trust.roots],
    allowSimulated: h.trust.allowSimulated,
  };
}

async function adminClient(h: Host, endpoint = h.endpoint): Promise<EkmsClient> {
  return connect(endpoint, { trust: trustOf(h), principal: adminPrincipal(), timeoutMs: 10_000 });
}

async function custodianClient(h: Host, endpoint = h.endpoint): Promise<EkmsClient> {
  return connect(endpoint, { trust: trustOf(h), timeoutMs: 10_000 });
}

/** A WebSocket relay that records every frame both ways (what the untrusted host sees of client traffic). */
async function recordingRelay(upstreamUrl: string) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  const captured: Buffer[] = [];
  wss.on('connection', (client) => {
    const upstream = new WebSocket(upstreamUrl);
    const queue: Buffer[] = [];
    upstream.on('open', () => {
      for (const f of queue) upstream.send(f);
      queue.length = 0;
    });
    client.on('message', (d: Buffer) => {
      captured.push(Buffer.from(d));
      if (upstream.readyState === WebSocket.OPEN) upstream.send(d);
      else queue.push(Buffer.from(d));
    });
    upstream.on('message', (d: Buffer) => {
      captured.push(Buffer.from(d));
      client.send(d);
    });
    client.on('close', () => upstream.close());
    upstream.on('close', () => client.close());
    upstream.on('error', () => client.terminate());
  });
  const port = (wss.address() as { port: number }).port;
  return {
    endpoint: `ws://127.0.0.1:${port}`,
    captured,
    close: () => new Promise<void>((r) => wss.close(() => r())),
  };
}

function occurs(haystack: Buffer, secret: Uint8Array): boolean {
  const s = Buffer.from(secret);
  return (
    haystack.includes(s) ||
    haystack.includes(Buffer.from(s.toString('hex'))) ||
    haystack.includes(Buffer.from(s.toString('base64').replace(/=+$/, '')))
  );
}

/** Every regular file under `d`, concatenated. */
function allFiles(d: string): Buffer {
  const parts: Buffer[] = [];
  for (const name of readdirSync(d)) {
    const p = join(d, name);
    const st = statSync(p);
    if (st.isDirectory()) parts.push(allFiles(p));
    else if (st.isFile()) parts.push(readFileSync(p));
  }
  return Buffer.concat(parts);
}

/** Runs `ekms custody unlock` as a custodian would, with a profile that holds only the endpoint and trust. */
async function cliUnlock(
  key: CustodianKey,
  endpoint: string,
  trust: ReturnType<typeof trustOf>,
): Promise<{ code: number; out: Record<string, unknown> }> {
  const profile = join(dir, `profile-${key.name}-${Date.now()}.json`);
  writeFileSync(
    profile,
    JSON.stringify({
      version: 1,
      endpoint,
      attestor: 'sim-nitro',
      trust,
      admin: { name: 'admin', publicKey: '00', keyFile: 'no-such-file.key' },
    }),
  );
  try {
    const r = await run(
      process.execPath,
      [CLI, 'custody', 'unlock', '--key', key.dir, '--profile', profile, '--json'],
      {
        timeout: 30_000,
      },
    );
    return { code: 0, out: JSON.parse(r.stdout) as Record<string, unknown> };
  } catch (err) {
    const e = err as { code?: number; stdout?: string };
    return { code: e.code ?? -1, out: JSON.parse(e.stdout ?? '{}') as Record<string, unknown> };
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ekms-custody-'));
  keys = ['alice', 'bob', 'carol'].map((name) => {
    generateCustodianKey(join(dir, name), name);
    return loadCustodianKey(join(dir, name));
  });
  custodySet = encodeCustodySet({
    threshold: 2,
    custodians: keys.map((k) => ({ name: k.name, publicKey: k.publicKey })),
  });
});

afterAll(async () => {
  await host?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('root-key custody, 2 of 3', () => {
  let keyId: string;
  let ciphertext: Uint8Array;

  it('first start provisions the root key: serving, and the host holds only the custody bundle', async () => {
    host = await start(stateA());
    expect(host.enclave.locked).toBe(false);
    const admin = await adminClient(host);
    try {
      const d = (await admin.request('describe')) as Record<string, unknown>;
      expect(d['rootKey']).toBe('custody');
      expect(d['locked']).toBe(false);
      keyId = (await admin.createKey({ description: 'before restart' })).keyId;
      ciphertext = (await admin.encrypt(keyId, new TextEncoder().encode('custodied'))).ciphertextBlob;
    } finally {
      admin.close();
    }
    const names = readdirSync(join(stateA()));
    expect(names).toContain(CUSTODY_BUNDLE_BLOB);
    expect(names.some((n) => n.startsWith('root-key'))).toBe(false);
    const bundle = decodeBundle(readFileSync(join(stateA(), CUSTODY_BUNDLE_BLOB)));
    expect(bundle.body.set.threshold).toBe(2);
    expect(bundle.body.shares.map((s) => s.custodian)).toEqual(['alice', 'bob', 'carol']);
  }, 60_000);

  it('after a restart the enclave is locked: health says locked, key operations ROOT_KEY_LOCKED', async () => {
    await host?.close();
    host = await start(stateA());
    expect(host.enclave.locked).toBe(true);
    const c = await custodianClient(host);
    try {
      expect((await c.health()).status).toBe('locked');
      expect(((await c.request('describe')) as Record<string, unknown>)['locked']).toBe(true);
      const s = await custodyStatus(c);
      expect(s).toMatchObject({
        locked: true,
        threshold: 2,
        custodians: ['alice', 'bob', 'carol'],
        held: [],
      });
      expect(await codeOf(c.request('listKeys'))).toBe('ROOT_KEY_LOCKED');
    } finally {
      c.close();
    }
    // The admin cannot even authenticate: the principals are sealed under the locked root key.
    expect(await codeOf(adminClient(host).then((a) => a.createKey({})))).toBe('ROOT_KEY_LOCKED');
  }, 60_000);

  it('a custodian refuses an enclave with the wrong measurement before sending anything', async () => {
    const h = host!;
    const bad = { ...trustOf(h), measurement: 'ab'.repeat(48) };
    expect(await codeOf(connect(h.endpoint, { trust: bad, timeoutMs: 10_000 }))).toBe('ENCLAVE_NOT_TRUSTED');
    const r = await cliUnlock(keys[0]!, h.endpoint, bad);
    expect(r.code).toBe(1);
    expect(r.out).toMatchObject({ ok: false, code: 'ENCLAVE_NOT_TRUSTED' });
    const c = await custodianClient(h);
    try {
      expect((await custodyStatus(c)).held).toEqual([]);
    } finally {
      c.close();
    }
  }, 60_000);

  it('a garbage share is refused alone (CUSTODY_SHARE_INVALID); M−1 custodians do not unlock', async () => {
    const h = host!;
    const relay = await recordingRelay(h.endpoint);
    try {
      const c = await custodianClient(h, relay.endpoint);
      try {
        expect(
          await codeOf(c.request('custodySubmitShare', { index: 1, share: new Uint8Array(33).fill(7) })),
        ).toBe('CUSTODY_SHARE_INVALID');
        expect(await codeOf(c.request('custodySubmitShare', { index: 9, share: new Uint8Array(33) }))).toBe(
          'CUSTODY_SHARE_INVALID',
        );
      } finally {
        c.close();
      }
      // Custodian 1 through the CLI.
      const r = await cliUnlock(keys[0]!, relay.endpoint, trustOf(h));
      expect(r).toMatchObject({
        code: 0,
        out: { ok: true, submitted: true, index: 1, held: 1, unlocked: false },
      });
      // A garbage share after a good one does not discard it.
      const c2 = await custodianClient(h, relay.endpoint);
      try {
        expect(
          await codeOf(c2.request('custodySubmitShare', { index: 2, share: new Uint8Array(33).fill(1) })),
        ).toBe('CUSTODY_SHARE_INVALID');
        const s = await custodyStatus(c2);
        expect(s).toMatchObject({ locked: true, held: [1] });
        expect(await codeOf(c2.request('listKeys'))).toBe('ROOT_KEY_LOCKED');
      } finally {
        c2.close();
      }
      // Custodian 2 through the SDK: the threshold is met, the enclave unlocks.
      const c3 = await custodianClient(h, relay.endpoint);
      try {
        const u = await custodyUnlock(c3, keys[1]!, trustOf(h));
        expect(u).toMatchObject({ submitted: true, index: 2, unlocked: true });
        expect((await c3.health()).status).toBe('ok');
      } finally {
        c3.close();
      }
      // Keys made before the restart decrypt again.
      const admin = await adminClient(h, relay.endpoint);
      try {
        const d = await admin.decrypt(ciphertext);
        expect(new TextDecoder().decode(d.plaintext)).toBe('custodied');
        expect(d.keyId).toBe(keyId);
      } finally {
        admin.close();
      }
      // A third custodian finds nothing to do.
      const late = await cliUnlock(keys[2]!, relay.endpoint, trustOf(h));
      expect(late.out).toMatchObject({ ok: true, submitted: false, unlocked: true });

      // The ceremony is in the audit trail: the provisioning once (first start), then, right after this run's boot,
      // one unlock event per custodian whose share counted (alice and bob; carol came late, the garbage share
      // never counted).
      const trail = readFileSync(join(dir, AUDIT_LOG_FILE), 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => parseAuditLine(l));
      const custody = trail.flatMap((r) =>
        r.kind === 'event' && r.operation.startsWith('custody.') ? [[r.operation, r.principal]] : [],
      );
      expect(custody).toEqual([
        ['custody.provision', null],
        ['custody.unlock', 'alice'],
        ['custody.unlock', 'bob'],
      ]);
      const lastBoot = trail.findLastIndex((r) => r.kind === 'boot');
      expect(trail.slice(lastBoot + 2, lastBoot + 4).map((r) => r.kind === 'event' && r.operation)).toEqual([
        'custody.unlock',
        'custody.unlock',
      ]);

      // Neither the relayed traffic nor the host's storage holds the root key or a plaintext share.
      const bundle = decodeBundle(readFileSync(join(stateA(), CUSTODY_BUNDLE_BLOB)));
      const shares = keys.map((k, i) => {
        const e = bundle.body.shares[i]!;
        return hpkeOpen(k.secretKey, e.enc, shareInfo(bundle.body, i + 1), new Uint8Array(0), e.ciphertext);
      });
      const rootKey = await combineShares(shares, 2);
      const traffic = Buffer.concat(relay.captured);
      const storage = allFiles(stateA());
      expect(traffic.length).toBeGreaterThan(1000);
      for (const [what, secret] of [
        ['root key', rootKey],
        ...shares.map((s, i) => [`share ${i + 1}`, s] as const),
        ...shares.map((s, i) => [`share ${i + 1} y-bytes`, s.subarray(0, 32)] as const),
      ] as const) {
        expect(occurs(traffic, secret), `${what} in traffic`).toBe(false);
        expect(occurs(storage, secret), `${what} in storage`).toBe(false);
      }
    } finally {
      await relay.close();
    }
  }, 90_000);

  it('a bundle swapped in from another deployment is refused at unlock; the enclave stays locked', async () => {
    await host?.close();
    host = undefined;
    // Deployment B: same custodians, same simulated CA, its own root key.
    const stateB = join(dir, 'b-state');
    const b = await start(stateB);
    await b.close();
    copyFileSync(join(stateB, CUSTODY_BUNDLE_BLOB), join(stateA(), CUSTODY_BUNDLE_BLOB));
    host = await start(stateA());
    expect(host.enclave.locked).toBe(true);
    const c = await custodianClient(host);
    try {
      expect(await custodyUnlock(c, keys[0]!, trustOf(host))).toMatchObject({ held: 1, unlocked: false });
      const err = await custodyUnlock(c, keys[2]!, trustOf(host)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EkmsError);
      expect((err as EkmsError).code).toBe('CUSTODY_INVALID');
      expect((err as EkmsError).message).toMatch(/did not seal the existing state/);
      expect(await custodyStatus(c)).toMatchObject({ locked: true, held: [] });
      expect(await codeOf(c.request('listKeys'))).toBe('ROOT_KEY_LOCKED');
    } finally {
      c.close();
    }
  }, 90_000);
});
