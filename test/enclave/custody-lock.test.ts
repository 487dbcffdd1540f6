/**
 * The enclave's custody state machine in process (enclave/custody/custody.ts; docs/custody.md §3–§6): provisioning
 * over an empty store only, bundle checks at load (launch-pinned set, measurement of the provisioning enclave),
 * share checks on arrival, the key check and state check at unlock, and the expiry of partial shares.
 */
import { createHash } from 'node:crypto';
import pino from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { createSimulatedNitroCa, type SimulatedNitroCa } from '../../attestation/simulated/index.js';
import { simulatedAttestor } from '../../enclave/attestor/attestor.js';
import { CustodyLock, provisionCustody } from '../../enclave/custody/custody.js';
import { EnclaveIdentity } from '../../enclave/session.js';
import {
  CUSTODY_BUNDLE_BLOB,
  type CustodySet,
  decodeBundle,
  rootKeyCheck,
  shareInfo,
} from '../../shared/custody.js';
import { EkmsError } from '../../shared/errors.js';
import { hpkeOpen } from '../../shared/hpke.js';
import { xwingKeygen } from '../../shared/xwing.js';
import { MemoryStorage } from '../helpers/memory-storage.js';

const MEASUREMENT = createHash('sha384').update('custody test enclave').digest('hex');
const logger = pino({ level: 'silent' });
let ca: SimulatedNitroCa;
const custodians = ['a', 'b', 'c'].map((name) => ({ name, ...xwingKeygen() }));
const set: CustodySet = {
  threshold: 2,
  custodians: custodians.map((c) => ({ name: c.name, publicKey: c.publicKey })),
};

beforeAll(async () => {
  ca = await createSimulatedNitroCa({ now: new Date() });
});

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof EkmsError) return err.code;
    throw err;
  }
  return 'no error';
}

async function asyncCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof EkmsError) return err.code;
    throw err;
  }
  return 'no error';
}

async function provisioned(measurement = MEASUREMENT) {
  const storage = new MemoryStorage();
  const identity = new EnclaveIdentity(simulatedAttestor('sim-nitro', measurement, ca), Date.now);
  const { rootKey, bundle } = await provisionCustody({ storage, set, identity, now: Date.now });
  const body = decodeBundle(bundle).body;
  const shares = custodians.map((c, i) => {
    const e = body.shares[i]!;
    return hpkeOpen(c.secretKey, e.enc, shareInfo(body, i + 1), new Uint8Array(0), e.ciphertext);
  });
  return { storage, rootKey, bundle, shares };
}

function lock(bundle: Uint8Array, opts: { now?: () => number; measurement?: string; set?: CustodySet } = {}) {
  const unlocked: Uint8Array[] = [];
  const l = new CustodyLock({
    bundle,
    set: opts.set ?? set,
    attestor: simulatedAttestor('sim-nitro', opts.measurement ?? MEASUREMENT, ca),
    now: opts.now ?? Date.now,
    logger,
    onUnlock: async (k) => {
      unlocked.push(Uint8Array.from(k));
    },
  });
  return { l, unlocked };
}

describe('provisioning', () => {
  it('stores a bundle whose key check names the root key, and refuses a non-empty store', async () => {
    const { storage, rootKey, bundle } = await provisioned();
    expect(Buffer.from((await storage.get(CUSTODY_BUNDLE_BLOB))!)).toEqual(Buffer.from(bundle));
    expect(Buffer.from(decodeBundle(bundle).body.keyCheck)).toEqual(Buffer.from(rootKeyCheck(rootKey)));
    const identity = new EnclaveIdentity(simulatedAttestor('sim-nitro', MEASUREMENT, ca), Date.now);
    expect(await asyncCode(provisionCustody({ storage, set, identity, now: Date.now }))).toBe(
      'ROOT_KEY_UNAVAILABLE',
    );
  });
});

describe('CustodyLock', () => {
  it('unlocks with any 2 of 3 shares and hands over the provisioned root key', async () => {
    const { bundle, rootKey, shares } = await provisioned();
    for (const [i, j] of [
      [1, 2],
      [1, 3],
      [3, 2],
    ] as const) {
      const { l, unlocked } = lock(bundle);
      expect(await l.submit(i, shares[i - 1])).toMatchObject({ held: 1, unlocked: false });
      expect(l.locked).toBe(true);
      expect(await l.submit(j, shares[j - 1])).toMatchObject({ unlocked: true });
      expect(l.locked).toBe(false);
      expect(Buffer.from(unlocked[0]!)).toEqual(Buffer.from(rootKey));
      expect(await asyncCode(l.submit(i, shares[i - 1]))).toBe('REQUEST_INVALID');
    }
  });

  it('refuses a share that does not match its commitment, keeping the good ones', async () => {
    const { bundle, shares } = await provisioned();
    const { l } = lock(bundle);
    await l.submit(1, shares[0]);
    // Another custodian's genuine share under the wrong index, and a flipped bit.
    expect(await asyncCode(l.submit(2, shares[2]))).toBe('CUSTODY_SHARE_INVALID');
    const flipped = Uint8Array.from(shares[1]!);
    flipped[5] = flipped[5]! ^ 0x10;
    expect(await asyncCode(l.submit(2, flipped))).toBe('CUSTODY_SHARE_INVALID');
    expect(await asyncCode(l.submit(0, shares[0]))).toBe('CUSTODY_SHARE_INVALID');
    expect(await asyncCode(l.submit(1, shares[0]!.subarray(1)))).toBe('CUSTODY_SHARE_INVALID');
    expect(l.status().held).toEqual([1]);
    // A repeated share is idempotent, not a second share.
    expect(await l.submit(1, shares[0])).toMatchObject({ held: 1, unlocked: false });
    expect(await l.submit(2, shares[1])).toMatchObject({ unlocked: true });
  });

  it('forgets partial shares after the TTL', async () => {
    const { bundle, shares } = await provisioned();
    let t = Date.now();
    const { l } = lock(bundle, { now: () => t });
    await l.submit(1, shares[0]);
    t += 16 * 60 * 1000;
    expect(l.status().held).toEqual([]);
    expect(await l.submit(2, shares[1])).toMatchObject({ held: 1, unlocked: false });
  });

  it('refuses a bundle for another custody set than the launch-pinned one (CUSTODY_INVALID)', async () => {
    const { bundle } = await provisioned();
    const other: CustodySet = { ...set, threshold: 3 };
    expect(codeOf(() => lock(bundle, { set: other }))).toBe('CUSTODY_INVALID');
  });

  it('refuses a bundle provisioned by an enclave with another measurement (CUSTODY_INVALID)', async () => {
    const { bundle } = await provisioned('ab'.repeat(48));
    expect(codeOf(() => lock(bundle))).toBe('CUSTODY_INVALID');
  });

  it('refuses a bundle whose body was edited (signature)', async () => {
    const { bundle } = await provisioned();
    const edited = Uint8Array.from(bundle);
    // Flip one byte inside a share ciphertext near the end of the body.
    edited[Math.floor(edited.length / 2)] = edited[Math.floor(edited.length / 2)]! ^ 1;
    expect(codeOf(() => lock(edited))).toBe('CUSTODY_INVALID');
  });

  it('refuses the root key when onUnlock refuses it, and forgets the shares', async () => {
    const { bundle, shares } = await provisioned();
    const l = new CustodyLock({
      bundle,
      set,
      attestor: simulatedAttestor('sim-nitro', MEASUREMENT, ca),
      now: Date.now,
      logger,
      onUnlock: async () => {
        throw new EkmsError('CUSTODY_INVALID', 'state mismatch');
      },
    });
    await l.submit(1, shares[0]);
    expect(await asyncCode(l.submit(2, shares[1]))).toBe('CUSTODY_INVALID');
    expect(l.locked).toBe(true);
    expect(l.status().held).toEqual([]);
  });
});
