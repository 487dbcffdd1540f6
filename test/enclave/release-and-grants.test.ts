/**
 * Negative tests (style §5) for checks that had only a positive path covered: every check of `openRelease`
 * (client/release.ts) and every condition of a grant match (enclave/kms/policy-authorizer.ts `grantAllows`).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createSimulatedNitroCa, type SimulatedNitroCa } from '../../attestation/simulated/index.js';
import { openRelease, type Release } from '../../client/release.js';
import { simulatedAttestor } from '../../enclave/attestor/attestor.js';
import type { Grant } from '../../enclave/keystore/key-record.js';
import { grantAllows } from '../../enclave/kms/policy-authorizer.js';
import { wrapForRecipient } from '../../enclave/kms/release.js';
import { EnclaveIdentity } from '../../enclave/session.js';
import { decodeCbor, encodeCbor } from '../../shared/cbor.js';
import { EkmsError } from '../../shared/errors.js';
import { xwingKeygen } from '../../shared/xwing.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof EkmsError) return err.code;
    throw err;
  }
  return 'OK';
}

describe('openRelease refuses what it must', () => {
  let ca: SimulatedNitroCa;
  let identity: EnclaveIdentity;
  const recipient = xwingKeygen();
  let release: Release;
  const material = new Uint8Array(32).fill(7);

  beforeAll(async () => {
    ca = await createSimulatedNitroCa({ now: new Date() });
    identity = new EnclaveIdentity(simulatedAttestor('sim-nitro', 'ab'.repeat(48), ca), Date.now);
    const workload = { claims: {} as never, recipientPublicKey: recipient.publicKey };
    const ctx = { workload, identity, now: Date.now, requestDigest: new Uint8Array(32).fill(3) };
    const wrapped = wrapForRecipient(
      ctx,
      workload,
      { op: 'ReleaseKey', keyId: 'k1', keyVersion: 2 },
      material,
    );
    release = {
      keyId: 'k1',
      keyVersion: 2,
      release: wrapped['release'] as Uint8Array,
      signature: wrapped['signature'] as Uint8Array,
    };
  }, 30_000);

  it('the genuine release opens (control)', () => {
    expect(openRelease(release, recipient, identity.publicKey).material).toEqual(material);
  });

  it('a signature by another identity is refused (DECRYPT_FAILED)', () => {
    const other = new EnclaveIdentity(simulatedAttestor('sim-nitro', 'ab'.repeat(48), ca), Date.now);
    expect(codeOf(() => openRelease(release, recipient, other.publicKey))).toBe('DECRYPT_FAILED');
  });

  it('a flipped signature or statement byte is refused (DECRYPT_FAILED)', () => {
    const sig = Uint8Array.from(release.signature);
    sig[5] = sig[5]! ^ 1;
    expect(codeOf(() => openRelease({ ...release, signature: sig }, recipient, identity.publicKey))).toBe(
      'DECRYPT_FAILED',
    );
    const st = Uint8Array.from(release.release);
    st[st.length - 3] = st[st.length - 3]! ^ 1;
    expect(codeOf(() => openRelease({ ...release, release: st }, recipient, identity.publicKey))).toBe(
      'DECRYPT_FAILED',
    );
  });

  it('a release for another recipient key is refused (MESSAGE_INVALID)', () => {
    const other = xwingKeygen();
    expect(codeOf(() => openRelease(release, other, identity.publicKey))).toBe('MESSAGE_INVALID');
  });

  it('a relabelled key id or version beside the statement is refused (MESSAGE_INVALID)', () => {
    expect(codeOf(() => openRelease({ ...release, keyId: 'k2' }, recipient, identity.publicKey))).toBe(
      'MESSAGE_INVALID',
    );
    expect(codeOf(() => openRelease({ ...release, keyVersion: 1 }, recipient, identity.publicKey))).toBe(
      'MESSAGE_INVALID',
    );
  });

  it('a statement signed over another suite is refused (MESSAGE_INVALID)', () => {
    const s = decodeCbor(release.release) as Record<string, unknown>;
    const forged = encodeCbor({ ...s, suite: 'HPKE-v0/Other' });
    const signature = identity.signStatement(Buffer.concat([Buffer.from('ekms-release-v1 '), forged]));
    expect(
      codeOf(() => openRelease({ ...release, release: forged, signature }, recipient, identity.publicKey)),
    ).toBe('MESSAGE_INVALID');
  });

  it('the wrong secret key fails the HPKE open (DECRYPT_FAILED)', () => {
    const other = xwingKeygen();
    expect(
      codeOf(() =>
        openRelease(
          release,
          { secretKey: other.secretKey, publicKey: recipient.publicKey },
          identity.publicKey,
        ),
      ),
    ).toBe('DECRYPT_FAILED');
  });
});

describe('grantAllows: every condition must hold', () => {
  const now = 1_800_000_000_000;
  const grant: Grant = {
    id: 'g1',
    grantee: 'carol',
    operations: ['Encrypt'],
    contextSubset: { tenant: 'A' },
    createdAt: now - 1000,
    expiresAt: now + 60_000,
    createdBy: 'admin',
  };
  it.each([
    ['the matching request (control)', 'carol', 'Encrypt', { tenant: 'A', extra: 'x' }, now, true],
    ['another grantee', 'dave', 'Encrypt', { tenant: 'A' }, now, false],
    ['another operation', 'carol', 'Decrypt', { tenant: 'A' }, now, false],
    ['another context value', 'carol', 'Encrypt', { tenant: 'B' }, now, false],
    ['no context', 'carol', 'Encrypt', undefined, now, false],
    ['at expiry', 'carol', 'Encrypt', { tenant: 'A' }, now + 60_000, false],
    ['after expiry', 'carol', 'Encrypt', { tenant: 'A' }, now + 120_000, false],
  ] as const)('%s', (_label, principal, action, context, at, allowed) => {
    expect(grantAllows([grant], principal, action, context, at) !== undefined).toBe(allowed);
  });

  it('no grants at all allow nothing', () => {
    expect(grantAllows(undefined, 'carol', 'Encrypt', { tenant: 'A' }, now)).toBeUndefined();
  });
});
