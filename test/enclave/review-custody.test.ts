/**
 * Adversarial review of root-key custody in process (docs/custody.md; enclave/custody/custody.ts):
 * - the first admin is bound into the signed bundle, and an unlock over a store without sealed principals refuses a
 *   launch admin key other than that one (the host's fork-and-splice admin takeover, see test/e2e/review-custody);
 * - partial shares are zeroed when their TTL runs out, not only when someone next calls the enclave;
 * - malformed submissions and malformed bundles are typed errors and change nothing;
 * - a crash right after the bundle was stored (nothing sealed yet) is recoverable by the custodians;
 * - while locked, every operation but liveness, public facts, randomness and the custody operations themselves
 *   answers ROOT_KEY_LOCKED (the list is closed: a new operation is locked unless allowed explicitly).
 */
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import pino from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { createSimulatedNitroCa, type SimulatedNitroCa } from '../../attestation/simulated/index.js';
import { simulatedAttestor } from '../../enclave/attestor/attestor.js';
import { CustodyLock, checkRootKeyAgainstState, provisionCustody } from '../../enclave/custody/custody.js';
import { ANONYMOUS, adminOnly } from '../../enclave/kms/authorizer.js';
import { OPERATIONS, type OperationContext } from '../../enclave/operations.js';
import { PrincipalRegistry } from '../../enclave/principals.js';
import { EnclaveIdentity } from '../../enclave/session.js';
import { encodeCbor } from '../../shared/cbor.js';
import {
  type BundleBody,
  bundleSignedContent,
  CUSTODY_BUNDLE_BLOB,
  type CustodySet,
  decodeBundle,
  decodeCustodySet,
  encodeBundle,
  encodeBundleBody,
  shareInfo,
} from '../../shared/custody.js';
import { CustodyError } from '../../shared/custody-errors.js';
import { EkmsError } from '../../shared/errors.js';
import { hpkeOpen } from '../../shared/hpke.js';
import { xwingKeygen } from '../../shared/xwing.js';
import { MemoryStorage } from '../helpers/memory-storage.js';

const MEASUREMENT = createHash('sha384').update('custody review enclave').digest('hex');
const silent = pino({ level: 'silent' });
let ca: SimulatedNitroCa;
const custodians = ['a', 'b', 'c'].map((name) => ({ name, ...xwingKeygen() }));
const set: CustodySet = {
  threshold: 2,
  custodians: custodians.map((c) => ({ name: c.name, publicKey: c.publicKey })),
};

function spki(): Uint8Array {
  const { publicKey } = generateKeyPairSync('ed25519');
  return new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
}
const operatorAdmin = spki();
const hostAdmin = spki();

beforeAll(async () => {
  ca = await createSimulatedNitroCa({ now: new Date() });
});

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    if (err instanceof EkmsError) return err.code;
    throw err;
  }
  return 'no error';
}

function attestor() {
  return simulatedAttestor('sim-nitro', MEASUREMENT, ca);
}

/** `null`: provisioned without an admin key. */
async function provisioned(admin: Uint8Array | null = operatorAdmin) {
  const storage = new MemoryStorage();
  const identity = new EnclaveIdentity(attestor(), Date.now);
  const { rootKey, bundle } = await provisionCustody({
    storage,
    set,
    identity,
    now: Date.now,
    admin: admin ?? undefined,
  });
  const body = decodeBundle(bundle).body;
  const shares = custodians.map((c, i) => {
    const e = body.shares[i]!;
    return hpkeOpen(c.secretKey, e.enc, shareInfo(body, i + 1), new Uint8Array(0), e.ciphertext);
  });
  return { storage, rootKey, bundle, body, shares };
}

/** A store holding only a copy of `bundle` (a fork, or the state after a crash right after provisioning). */
function onlyBundle(bundle: Uint8Array): MemoryStorage {
  const s = new MemoryStorage();
  s.set(CUSTODY_BUNDLE_BLOB, bundle);
  return s;
}

describe('the first admin is bound to the custody bundle', () => {
  it('the bundle names the admin the provisioning enclave pinned (or none)', async () => {
    expect(Buffer.from((await provisioned()).body.admin ?? [])).toEqual(Buffer.from(operatorAdmin));
    expect((await provisioned(null)).body.admin).toBeNull();
  });

  it('over a store without sealed principals, a launch admin other than the bundle’s is refused', async () => {
    const { bundle, body, rootKey } = await provisioned();
    const fork = onlyBundle(bundle);
    for (const admin of [hostAdmin, undefined]) {
      const err = await checkRootKeyAgainstState(fork, rootKey, { bundle: body, admin }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(CustodyError);
      expect((err as CustodyError).code).toBe('CUSTODY_INVALID');
      expect((err as CustodyError).details).toMatchObject({ reason: 'admin-mismatch' });
    }
    expect(
      await codeOf(checkRootKeyAgainstState(fork, rootKey, { bundle: body, admin: operatorAdmin })),
    ).toBe('no error');
    // A bundle provisioned without an admin accepts no launch admin over an empty store either.
    const none = await provisioned(null);
    expect(
      await codeOf(
        checkRootKeyAgainstState(onlyBundle(none.bundle), none.rootKey, {
          bundle: none.body,
          admin: hostAdmin,
        }),
      ),
    ).toBe('CUSTODY_INVALID');
  });

  it('once principals are sealed, the launch admin is irrelevant (the sealed admin stays)', async () => {
    const { storage, body, rootKey } = await provisioned();
    (await PrincipalRegistry.load({ storage, rootKey, admin: operatorAdmin, logger: silent })).close();
    expect(await codeOf(checkRootKeyAgainstState(storage, rootKey, { bundle: body, admin: hostAdmin }))).toBe(
      'no error',
    );
  });

  it('the fork unlock is refused end to end and seals nothing under the real root key', async () => {
    const { bundle, shares } = await provisioned();
    const fork = onlyBundle(bundle);
    const l = new CustodyLock({
      bundle,
      set,
      attestor: attestor(),
      now: Date.now,
      logger: silent,
      onUnlock: async (rootKey, verified) => {
        await checkRootKeyAgainstState(fork, rootKey, { bundle: verified.body, admin: hostAdmin });
        (await PrincipalRegistry.load({ storage: fork, rootKey, admin: hostAdmin, logger: silent })).close();
      },
    });
    await l.submit(1, shares[0]);
    expect(await codeOf(l.submit(2, shares[1]))).toBe('CUSTODY_INVALID');
    expect(l.locked).toBe(true);
    expect(fork.names()).toEqual([CUSTODY_BUNDLE_BLOB]);
  });

  it('the decoder refuses an admin field that is not null or a short byte string', async () => {
    const { body } = await provisioned();
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const identity = new Uint8Array(Buffer.from(publicKey.export({ format: 'jwk' }).x ?? '', 'base64url'));
    const resign = (b: BundleBody): Uint8Array => {
      const bodyBytes = encodeBundleBody(b);
      return encodeBundle({
        bodyBytes,
        identity,
        evidence: { type: 'nitro', document: new Uint8Array(1), certificates: [] },
        signature: new Uint8Array(sign(null, bundleSignedContent(bodyBytes), privateKey)),
      });
    };
    // The re-signed body itself decodes (so the refusals below are about the admin field alone).
    expect(await codeOf(() => decodeBundle(resign(body)))).toBe('no error');
    for (const admin of ['admin', 7, new Uint8Array(0), new Uint8Array(2048), [1, 2]]) {
      const bad = { ...body, admin } as unknown as BundleBody;
      expect(await codeOf(() => decodeBundle(resign(bad))), String(admin)).toBe('CUSTODY_INVALID');
    }
  });
});

describe('partial shares', () => {
  it('are zeroed when the TTL runs out, without waiting for another call', async () => {
    const { bundle, shares } = await provisioned();
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(s) });
    const l = new CustodyLock({
      bundle,
      set,
      attestor: attestor(),
      now: Date.now,
      logger,
      shareTtlMs: 40,
      onUnlock: async () => {},
    });
    await l.submit(1, shares[0]);
    await new Promise((r) => setTimeout(r, 200));
    // No call reached the lock in between: the expiry ran on its own.
    expect(lines.some((s) => s.includes('custody shares expired'))).toBe(true);
    expect(l.status().held).toEqual([]);
  });

  it('stay while the TTL has not run out (the timer does not fire early)', async () => {
    const { bundle, shares } = await provisioned();
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(s) });
    const l = new CustodyLock({
      bundle,
      set,
      attestor: attestor(),
      now: Date.now,
      logger,
      shareTtlMs: 60_000,
      onUnlock: async () => {},
    });
    await l.submit(1, shares[0]);
    await new Promise((r) => setTimeout(r, 100));
    expect(lines.some((s) => s.includes('custody shares expired'))).toBe(false);
    expect(l.status().held).toEqual([1]);
  });
});

describe('malformed input', () => {
  it('a malformed submission is a typed refusal and keeps the good share', async () => {
    const { bundle, shares } = await provisioned();
    const l = new CustodyLock({
      bundle,
      set,
      attestor: attestor(),
      now: Date.now,
      logger: silent,
      onUnlock: async () => {},
    });
    await l.submit(1, shares[0]);
    const good = shares[1]!;
    const cases: [unknown, unknown][] = [
      ['2', good],
      [2n, good],
      [2.5, good],
      [Number.NaN, good],
      [Number.POSITIVE_INFINITY, good],
      [-0, good],
      [4, good],
      [2 ** 53, good],
      [null, good],
      [{ index: 2 }, good],
      [2, Array.from(good)],
      [2, Buffer.from(good).toString('hex')],
      [2, new Uint8Array(1 << 16)],
      [2, new Uint8Array(0)],
      [2, null],
      [2, { 0: 1 }],
      // A well-formed but wrong share whose x-coordinate is 0 (would be the secret itself): its commitment fails.
      [2, Uint8Array.of(...good.subarray(0, 32), 0)],
      // Custodian 1's genuine share under index 2.
      [2, shares[0]],
    ];
    for (const [index, share] of cases) {
      expect(await codeOf(l.submit(index, share)), `${String(index)}`).toBe('CUSTODY_SHARE_INVALID');
    }
    expect(l.status().held).toEqual([1]);
    expect(await l.submit(2, good)).toMatchObject({ unlocked: true });
  });

  it('a mutated or truncated bundle is CUSTODY_INVALID, never another error', async () => {
    const { bundle } = await provisioned();
    const make = (b: Uint8Array) => () =>
      new CustodyLock({
        bundle: b,
        set,
        attestor: attestor(),
        now: Date.now,
        logger: silent,
        onUnlock: async () => {},
      });
    expect(await codeOf(make(bundle))).toBe('no error');
    let seed = 0x1234567;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    let refused = 0;
    for (let i = 0; i < 300; i++) {
      const m = Uint8Array.from(bundle);
      const at = rnd(m.length);
      m[at] = m[at]! ^ (1 + rnd(255));
      const code = await codeOf(make(m));
      // Only a byte whose change verification cannot see may pass (e.g. none, in practice); anything else is typed.
      expect(['CUSTODY_INVALID', 'no error']).toContain(code);
      if (code === 'CUSTODY_INVALID') refused++;
    }
    expect(refused).toBeGreaterThan(290);
    for (let len = 0; len < bundle.length; len += 997) {
      expect(await codeOf(make(bundle.subarray(0, len)))).toBe('CUSTODY_INVALID');
    }
    for (const v of [null, 1, 'x', [], [1, 2], { v: 1 }, { v: 1, body: 'x' }, new Uint8Array(300 * 1024)]) {
      expect(await codeOf(make(v instanceof Uint8Array ? v : encodeCbor(v)))).toBe('CUSTODY_INVALID');
    }
    expect(await codeOf(make('not bytes' as unknown as Uint8Array))).toBe('CUSTODY_INVALID');
  });

  it('a malformed launch custody set is CUSTODY_INVALID', async () => {
    for (const v of [
      null,
      { v: 1, threshold: 2, custodians: [] },
      { v: 1, threshold: 1, custodians: set.custodians },
      { v: 1, threshold: 4, custodians: set.custodians },
      { v: 1, threshold: 2.5, custodians: set.custodians },
      { v: 1, threshold: 2, custodians: [set.custodians[0], set.custodians[0]] },
      {
        v: 1,
        threshold: 2,
        custodians: set.custodians.map((c) => ({ ...c, publicKey: c.publicKey.subarray(1) })),
      },
      { v: 1, threshold: 2, custodians: Array.from({ length: 17 }, () => set.custodians[0]) },
    ]) {
      expect(await codeOf(() => decodeCustodySet(encodeCbor(v)))).toBe('CUSTODY_INVALID');
    }
    expect(await codeOf(() => decodeCustodySet(Uint8Array.of(0xff, 0x00)))).toBe('CUSTODY_INVALID');
  });
});

describe('a crash right after the bundle was stored', () => {
  it('is recovered by the custodians, with the provisioning admin', async () => {
    const { bundle, shares } = await provisioned();
    const store = onlyBundle(bundle);
    let admins: string[] = [];
    const l = new CustodyLock({
      bundle,
      set,
      attestor: attestor(),
      now: Date.now,
      logger: silent,
      onUnlock: async (rootKey, verified) => {
        await checkRootKeyAgainstState(store, rootKey, { bundle: verified.body, admin: operatorAdmin });
        const reg = await PrincipalRegistry.load({
          storage: store,
          rootKey,
          admin: operatorAdmin,
          logger: silent,
        });
        admins = reg
          .list()
          .filter((p) => p.admin)
          .map((p) => Buffer.from(p.publicKey).toString('hex'));
        reg.close();
      },
    });
    await l.submit(3, shares[2]);
    expect(await l.submit(1, shares[0])).toMatchObject({ unlocked: true });
    expect(admins).toEqual([Buffer.from(operatorAdmin).toString('hex')]);
  });
});

describe('the locked state', () => {
  it('answers only liveness, public facts, randomness and custody operations; everything else ROOT_KEY_LOCKED', async () => {
    const { bundle } = await provisioned();
    const a = attestor();
    const custody = new CustodyLock({
      bundle,
      set,
      attestor: a,
      now: Date.now,
      logger: silent,
      onUnlock: async () => {},
    });
    const ctx: OperationContext = {
      attestor: a,
      now: Date.now,
      startedAt: Date.now(),
      keystore: undefined,
      authorizer: adminOnly,
      rootKeySource: null,
      identity: new EnclaveIdentity(a, Date.now),
      principals: new PrincipalRegistry([]),
      audit: undefined,
      custody,
    };
    const allowed = [
      'health',
      'describe',
      'generateRandom',
      'custodyStatus',
      'custodyGetBundle',
      'custodySubmitShare',
    ];
    const names = Object.keys(OPERATIONS);
    expect(names.length).toBeGreaterThan(30);
    for (const name of names) {
      const code = await codeOf(async () =>
        OPERATIONS[name]!(
          {},
          ctx,
          { principal: ANONYMOUS, binder: undefined, workload: undefined },
          {
            digest: new Uint8Array(32),
          },
        ),
      );
      if (allowed.includes(name)) expect(code, name).not.toBe('ROOT_KEY_LOCKED');
      else expect(code, name).toBe('ROOT_KEY_LOCKED');
    }
  });
});
