/**
 * Adversarial review of root-key custody with the real processes (docs/custody.md §6).
 *
 * 1. Fork-and-splice admin takeover. The host keeps a copy of the custody bundle, starts a genuine enclave over a
 *    fresh data dir holding only that bundle and passes its *own* `--admin-key`. The custodians cannot tell this
 *    from a routine restart (same measurement, same bundle, same pins), so they unlock it. Without a binding
 *    between the bundle and the first admin, that enclave pins the host's admin in a `principals` blob sealed under
 *    the real root key; the host splices that blob into the real state, restarts, waits for the next routine unlock
 *    and is admin over every existing key (it decrypts the operator's ciphertext). The bundle now names the first
 *    admin the provisioning enclave pinned, and an unlock over a store without sealed principals refuses a launch
 *    admin key that differs from it (CUSTODY_INVALID, reason `admin-mismatch`).
 * 2. `ekms custody set` must show the fingerprints it computed, so that the operator can compare them with the ones
 *    the custodians read out over a second channel (docs/custody.md §3.2).
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CustodianKey,
  custodyStatus,
  custodyUnlock,
  generateCustodianKey,
  loadCustodianKey,
} from '../../client/custody.js';
import { connect, type EkmsClient, type PrincipalCredentials } from '../../client/sdk.js';
import type { Host } from '../../host/host.js';
import { CUSTODY_BUNDLE_BLOB, custodianFingerprint, encodeCustodySet } from '../../shared/custody.js';
import { codeOf } from '../helpers/outcome.js';
import { adminPrincipal, CLI, startTestHost } from '../helpers/service.js';

const run = promisify(execFile);

let dir: string;
let keys: CustodianKey[];
let custodySet: Uint8Array;
const hosts: Host[] = [];

async function start(stateDir: string, adminPublicKey?: Uint8Array): Promise<Host> {
  const h = await startTestHost({
    stateDir,
    simulatedCaFile: join(dir, 'sim-ca.json'),
    custodySet,
    ...(adminPublicKey === undefined ? {} : { adminPublicKey }),
  });
  hosts.push(h);
  return h;
}

async function stop(h: Host): Promise<void> {
  await h.close();
  hosts.splice(hosts.indexOf(h), 1);
}

function trustOf(h: Host) {
  return {
    measurement: h.trust.measurement,
    roots: [...h.trust.roots],
    allowSimulated: h.trust.allowSimulated,
  };
}

async function client(h: Host, principal?: PrincipalCredentials): Promise<EkmsClient> {
  return connect(h.endpoint, {
    trust: trustOf(h),
    timeoutMs: 10_000,
    ...(principal === undefined ? {} : { principal }),
  });
}

/** Two custodians (alice, bob) submit their shares, as after any restart. Returns the error code, if any. */
async function routineUnlock(h: Host): Promise<string> {
  const c = await client(h);
  try {
    for (const k of keys.slice(0, 2)) {
      const code = await codeOf(custodyUnlock(c, k, trustOf(h)));
      if (code !== 'OK') return code;
    }
    return (await custodyStatus(c)).locked ? 'still locked' : 'OK';
  } finally {
    c.close();
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ekms-review-custody-'));
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
  for (const h of hosts) await h.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('custody review (e2e)', () => {
  it('a host cannot fork the bundle to pin its own admin and splice it into the real state', async () => {
    const real = join(dir, 'real');
    const fork = join(dir, 'fork');
    // The real deployment: the operator's admin makes a key and encrypts a secret.
    let h = await start(real);
    const admin = await client(h, adminPrincipal());
    let keyId: string;
    let ciphertext: Uint8Array;
    try {
      keyId = (await admin.createKey({ description: 'operator key' })).keyId;
      ciphertext = (await admin.encrypt(keyId, new TextEncoder().encode('operator secret'))).ciphertextBlob;
    } finally {
      admin.close();
    }
    await stop(h);
    expect(readdirSync(real)).toContain('principals');

    // The host's own admin key, and a fork holding nothing but a copy of the custody bundle.
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const attacker: PrincipalCredentials = {
      publicKey: new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })),
      privateKey,
    };
    mkdirSync(fork);
    copyFileSync(join(real, CUSTODY_BUNDLE_BLOB), join(fork, CUSTODY_BUNDLE_BLOB));
    h = await start(fork, attacker.publicKey);
    expect(h.enclave.locked).toBe(true);
    // The custodians see a genuine, locked enclave with their bundle and unlock it as after any restart: refused.
    expect(await routineUnlock(h)).toBe('CUSTODY_INVALID');
    await stop(h);
    // Nothing was sealed in the fork under the real root key.
    expect(existsSync(join(fork, 'principals'))).toBe(false);

    // The splice: whatever `principals` the fork holds replaces the real one; restart with the host's admin key.
    if (existsSync(join(fork, 'principals')))
      copyFileSync(join(fork, 'principals'), join(real, 'principals'));
    h = await start(real, attacker.publicKey);
    expect(await routineUnlock(h)).toBe('OK');
    // The host's key is not an admin of the real deployment and decrypts nothing.
    const decrypted = await codeOf(
      client(h, attacker).then((c) => c.decrypt(ciphertext).finally(() => c.close())),
    );
    expect(decrypted).not.toBe('OK');
    // The operator's admin still is.
    const op = await client(h, adminPrincipal());
    try {
      const d = await op.decrypt(ciphertext);
      expect(new TextDecoder().decode(d.plaintext)).toBe('operator secret');
      expect(d.keyId).toBe(keyId);
    } finally {
      op.close();
    }
    await stop(h);
  }, 120_000);

  it('an unlock over an empty store with the provisioning admin succeeds (crash before anything was sealed)', async () => {
    const real = join(dir, 'crash');
    const h0 = await start(real);
    await stop(h0);
    // Only the bundle survives, as if the enclave had crashed right after storing it.
    for (const name of readdirSync(real)) {
      if (name !== CUSTODY_BUNDLE_BLOB) rmSync(join(real, name), { recursive: true, force: true });
    }
    const h = await start(real);
    expect(h.enclave.locked).toBe(true);
    expect(await routineUnlock(h)).toBe('OK');
    const op = await client(h, adminPrincipal());
    try {
      const { keyId } = await op.createKey({ description: 'after recovery' });
      expect(keyId).toMatch(/^[0-9a-f-]{36}$/);
    } finally {
      op.close();
    }
    await stop(h);
  }, 120_000);

  it('`ekms custody set` prints the fingerprint of every custodian key (text output)', async () => {
    const out = join(dir, 'custodians.json');
    const r = await run(process.execPath, [
      CLI,
      'custody',
      'set',
      '--custodian',
      join(dir, 'alice', 'custodian.pub.json'),
      '--custodian',
      join(dir, 'bob', 'custodian.pub.json'),
      '--threshold',
      '2',
      '--out',
      out,
    ]);
    for (const k of keys.slice(0, 2)) {
      expect(r.stdout).toContain(k.name);
      expect(r.stdout).toContain(custodianFingerprint(k.publicKey));
    }
    // Carol is not in this set: her fingerprint is not printed.
    expect(r.stdout).not.toContain(custodianFingerprint(keys[2]!.publicKey));
  }, 30_000);
});
