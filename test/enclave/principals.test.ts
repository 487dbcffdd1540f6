/**
 * The principal registry (enclave/principals.ts): one Ed25519 key has one registration. OpenSSL accepts the same
 * key in other DER encodings (trailing bytes, long-form lengths); each would otherwise register as "another" key
 * under another name, and count as another approver of a quorum (docs/key-policy.md §10).
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { canonicalSpki, PrincipalRegistry } from '../../enclave/principals.js';
import { clientAuthContent } from '../../shared/session.js';
import { MemoryStorage } from '../helpers/memory-storage.js';
import { codeOf } from '../helpers/outcome.js';

function ed25519() {
  const k = generateKeyPairSync('ed25519');
  return {
    der: new Uint8Array(k.publicKey.export({ type: 'spki', format: 'der' })),
    privateKey: k.privateKey,
  };
}

/** The same key, re-encoded: the outer SEQUENCE length in long form (30 81 2a …). */
function longForm(der: Uint8Array): Uint8Array {
  expect(der[0]).toBe(0x30);
  expect(der[1]).toBe(der.length - 2);
  return Uint8Array.from([0x30, 0x81, der.length - 2, ...der.subarray(2)]);
}

async function newRegistry(admin: Uint8Array, storage = new MemoryStorage()): Promise<PrincipalRegistry> {
  return PrincipalRegistry.load({
    storage,
    rootKey: new Uint8Array(32).fill(3),
    admin,
    logger: pino({ level: 'silent' }),
  });
}

describe('PrincipalRegistry: one key, one principal', () => {
  it('other DER encodings of a key OpenSSL accepts canonicalise to the same bytes', () => {
    const { der } = ed25519();
    expect(canonicalSpki(longForm(der))).toEqual(der);
    expect(canonicalSpki(Uint8Array.from([...der, 0]))).toEqual(der);
  });

  it('registering a registered key again, in any encoding and under any name, is PRINCIPAL_EXISTS', async () => {
    const admin = ed25519();
    const alice = ed25519();
    const registry = await newRegistry(admin.der);
    await registry.add({ name: 'alice', publicKey: alice.der, roles: ['admin'] });
    expect(await codeOf(registry.add({ name: 'alice2', publicKey: alice.der, roles: ['admin'] }))).toBe(
      'PRINCIPAL_EXISTS',
    );
    expect(
      await codeOf(registry.add({ name: 'alice3', publicKey: longForm(alice.der), roles: ['admin'] })),
    ).toBe('PRINCIPAL_EXISTS');
    expect(
      await codeOf(
        registry.add({ name: 'alice4', publicKey: Uint8Array.from([...alice.der, 0]), roles: ['admin'] }),
      ),
    ).toBe('PRINCIPAL_EXISTS');
    // The launch admin too, whatever encoding the host passed at the first start.
    expect(
      await codeOf(registry.add({ name: 'admin2', publicKey: longForm(admin.der), roles: ['admin'] })),
    ).toBe('PRINCIPAL_EXISTS');
    expect(registry.list().map((p) => p.name)).toEqual(['admin', 'alice']);
    expect(registry.list().every((p) => p.publicKey.length === 44)).toBe(true);
  });

  it('a principal authenticates with its key in any accepted encoding; a non-Ed25519 key is AUTHENTICATION_FAILED', async () => {
    const admin = ed25519();
    const registry = await newRegistry(longForm(admin.der));
    const binder = new Uint8Array(32).fill(9);
    const signature = new Uint8Array(sign(null, clientAuthContent(binder), admin.privateKey));
    expect(registry.authenticate(admin.der, signature, binder).name).toBe('admin');
    expect(registry.authenticate(longForm(admin.der), signature, binder).name).toBe('admin');
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(() =>
      registry.authenticate(
        new Uint8Array(ec.publicKey.export({ type: 'spki', format: 'der' })),
        signature,
        binder,
      ),
    ).toThrow(expect.objectContaining({ code: 'AUTHENTICATION_FAILED' }));
  });

  it('a later start with another (even unparsable) --admin-key loads the sealed registry: the sealed admin stays', async () => {
    const storage = new MemoryStorage();
    const admin = ed25519();
    await newRegistry(admin.der, storage);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    for (const other of [
      new Uint8Array(ec.publicKey.export({ type: 'spki', format: 'der' })),
      new Uint8Array([1, 2, 3]),
      ed25519().der,
    ]) {
      const again = await newRegistry(other, storage);
      expect(again.list().map((p) => [p.name, Buffer.from(p.publicKey).toString('hex')])).toEqual([
        ['admin', Buffer.from(admin.der).toString('hex')],
      ]);
    }
  });
});
