/**
 * The key service with the real processes (issue 4): the host's blob store on disk, the enclave process, the SDK.
 * Keys survive enclave crashes and host restarts; corrupted, rolled-back or missing state on disk is refused with
 * its code and never used; envelope streams round-trip through GenerateDataKey/Decrypt.
 */
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { EkmsClient } from '../../client/sdk.js';
import type { Host } from '../../host/host.js';
import { connectTo } from '../helpers/connect.js';
import { codeOf } from '../helpers/outcome.js';
import { startTestHost } from '../helpers/service.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

async function collect(source: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  await pipeline(
    source,
    new Writable({
      write(chunk: Buffer, _e, cb) {
        parts.push(chunk);
        cb();
      },
    }),
  );
  return Buffer.concat(parts);
}

describe('key service with the real processes', () => {
  let stateDir: string;
  let host: Host | undefined;
  let client: EkmsClient | undefined;

  const start = async (): Promise<EkmsClient> => {
    // Key operations need an authenticated admin: every start passes the same admin key (test/helpers/service.ts),
    // the one the enclave sealed on the state directory's first start.
    host = await startTestHost({ stateDir });
    client = await connectTo(host, { timeoutMs: 10_000 });
    return client;
  };
  const stop = async (): Promise<void> => {
    client?.close();
    client = undefined;
    await host?.close();
    host = undefined;
  };

  beforeAll(() => {
    stateDir = mkdtempSync(join(tmpdir(), 'ekms-keys-'));
  });
  afterEach(stop);
  afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

  it('creates keys, encrypts with a context, and keeps them across an enclave crash and a host restart', async () => {
    let c = await start();
    const key = await c.createKey({ description: 'orders', aliasName: 'alias/orders' });
    expect(key.state).toBe('Enabled');
    expect(key.aliases).toEqual(['alias/orders']);
    const ct = await c.encrypt('alias/orders', enc.encode('card 4111'), { tenant: 'a' });
    expect(ct.keyId).toBe(key.keyId);
    const dk = await c.generateDataKey(key.keyId, { encryptionContext: { tenant: 'a' } });
    expect(dk.plaintext.length).toBe(32);

    // kill -9 the enclave: the supervisor restarts it and it reloads its sealed state through the host.
    const pid = host!.supervisor.pid!;
    process.kill(pid, 'SIGKILL');
    await expect.poll(() => host!.supervisor.pid !== pid && host!.supervisor.state === 'ready').toBe(true);
    expect(dec.decode((await c.decrypt(ct.ciphertextBlob, { tenant: 'a' })).plaintext)).toBe('card 4111');

    // Host restart: a new host and enclave over the same state directory.
    await stop();
    c = await start();
    expect((await c.describeKey('alias/orders')).keyId).toBe(key.keyId);
    expect(dec.decode((await c.decrypt(ct.ciphertextBlob, { tenant: 'a' })).plaintext)).toBe('card 4111');
    expect(Buffer.from((await c.decrypt(dk.ciphertextBlob, { tenant: 'a' })).plaintext)).toEqual(
      Buffer.from(dk.plaintext),
    );
    expect(await codeOf(c.decrypt(ct.ciphertextBlob, { tenant: 'b' }))).toBe('DECRYPT_FAILED');
    expect(await codeOf(c.decrypt(ct.ciphertextBlob))).toBe('DECRYPT_FAILED');
  });

  it('rotates: old ciphertexts still decrypt after a restart, new ones use the new version', async () => {
    let c = await start();
    const { keyId } = await c.createKey();
    const v1 = await c.encrypt(keyId, enc.encode('v1'));
    const rotated = await c.rotateKey(keyId);
    expect(rotated.currentVersion).toBe(2);
    const v2 = await c.encrypt(keyId, enc.encode('v2'));
    expect([v1.keyVersion, v2.keyVersion]).toEqual([1, 2]);
    await stop();
    c = await start();
    expect(dec.decode((await c.decrypt(v1.ciphertextBlob)).plaintext)).toBe('v1');
    expect((await c.decrypt(v2.ciphertextBlob)).keyVersion).toBe(2);
  });

  it('refuses a corrupted key record on disk (KEY_UNAVAILABLE) while other keys keep working', async () => {
    let c = await start();
    const damaged = await c.createKey();
    const healthy = await c.createKey();
    const ct = await c.encrypt(healthy.keyId, enc.encode('ok'));
    await stop();
    const file = join(stateDir, `key.${damaged.keyId}`);
    const bytes = readFileSync(file);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 5) ^ 0x01, bytes.length - 5);
    writeFileSync(file, bytes);
    c = await start();
    expect(await codeOf(c.describeKey(damaged.keyId))).toBe('KEY_UNAVAILABLE');
    expect(await codeOf(c.encrypt(damaged.keyId, enc.encode('x')))).toBe('KEY_UNAVAILABLE');
    expect(dec.decode((await c.decrypt(ct.ciphertextBlob)).plaintext)).toBe('ok');
    const listed = (await c.listKeys({ limit: 1000 })).keys.find((k) => k.keyId === damaged.keyId);
    expect(listed?.state).toBe('Unavailable');
  });

  it('refuses a key record rolled back to an older version across a restart (KEY_UNAVAILABLE)', async () => {
    let c = await start();
    const { keyId } = await c.createKey();
    await stop();
    const file = join(stateDir, `key.${keyId}`);
    const old = join(stateDir, '..', `old-${keyId}`);
    copyFileSync(file, old);
    c = await start();
    await c.disableKey(keyId); // version 2 of the record; the manifest now requires ≥ 2
    await stop();
    copyFileSync(old, file); // the host serves version 1 again: Enabled, as if never disabled
    rmSync(old);
    c = await start();
    expect(await codeOf(c.encrypt(keyId, enc.encode('x')))).toBe('KEY_UNAVAILABLE');
  });

  it('refuses to start without the root key when sealed state exists (ROOT_KEY_UNAVAILABLE), and loses nothing', async () => {
    const c = await start();
    await c.createKey();
    await stop();
    const root = join(stateDir, 'root-key.insecure-simulation');
    const saved = readFileSync(root);
    rmSync(root);
    await expect(startTestHost({ stateDir })).rejects.toMatchObject({ code: 'ROOT_KEY_UNAVAILABLE' });
    expect(existsSync(root)).toBe(false); // no new root key was made
    writeFileSync(root, saved);
    const again = await start();
    expect((await again.listKeys({ limit: 1000 })).keys.length).toBeGreaterThan(0);
  });

  it('refuses to start when the manifest is missing but key records exist (SEALED_BLOB_ROLLBACK)', async () => {
    const c = await start();
    await c.createKey();
    await stop();
    const manifest = join(stateDir, 'keystore.manifest');
    const saved = readFileSync(manifest);
    rmSync(manifest);
    await expect(startTestHost({ stateDir })).rejects.toMatchObject({ code: 'SEALED_BLOB_ROLLBACK' });
    writeFileSync(manifest, saved);
  });

  it('stores nothing readable: no plaintext or data key in the state directory', async () => {
    const c = await start();
    const { keyId } = await c.createKey({ description: 'marker-description' });
    const secret = enc.encode('very secret plaintext 0123456789');
    await c.encrypt(keyId, secret);
    const dk = await c.generateDataKey(keyId);
    await c.rotateKey(keyId);
    const needles = [Buffer.from(secret), Buffer.from(dk.plaintext), Buffer.from('marker-description')];
    for (const name of readdirSync(stateDir)) {
      const bytes = readFileSync(join(stateDir, name));
      for (const n of needles) expect(bytes.includes(n), `${name} contains a secret`).toBe(false);
    }
  });

  it('envelope streams: encryptStream/decryptStream round trip; truncation and a wrong context are refused', async () => {
    const c = await start();
    const { keyId } = await c.createKey();
    const data = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
    const encrypted = await collect(
      Readable.from([data]).pipe(await c.encryptStream(keyId, { encryptionContext: { file: 'x' } })),
    );
    expect(encrypted.length).toBeGreaterThan(data.length);
    expect(encrypted[4]).toBe(2); // format 2 by default
    const plain = await collect(Readable.from([encrypted]).pipe(c.decryptStream()));
    expect(plain.equals(data)).toBe(true);
    // Format 1 on request (for readers built before format 2); it reads back the same.
    const v1 = await collect(
      Readable.from([data]).pipe(
        await c.encryptStream(keyId, { encryptionContext: { file: 'x' }, formatVersion: 1 }),
      ),
    );
    expect(v1[4]).toBe(1);
    expect((await collect(Readable.from([v1]).pipe(c.decryptStream()))).equals(data)).toBe(true);
    // Bad layout options fail before the KMS is asked for a data key.
    const gdk = vi.spyOn(c, 'generateDataKey');
    for (const bad of [{ formatVersion: 3 as unknown as 1 }, { chunkSize: 0 }]) {
      await expect(c.encryptStream(keyId, bad)).rejects.toMatchObject({ code: 'CRYPTO_PARAMETER_INVALID' });
    }
    expect(gdk).not.toHaveBeenCalled();
    gdk.mockRestore();
    const truncated = encrypted.subarray(0, encrypted.length - 100);
    await expect(collect(Readable.from([truncated]).pipe(c.decryptStream()))).rejects.toMatchObject({
      code: 'STREAM_TRUNCATED',
    });
    await expect(
      collect(Readable.from([encrypted]).pipe(c.decryptStream({ encryptionContext: { file: 'y' } }))),
    ).rejects.toMatchObject({ code: 'CONTEXT_MISMATCH' });
  });
});
