/**
 * Crash consistency (issue 9): the enclave is killed with SIGKILL twice while clients stream CreateKey, RotateKey
 * and Encrypt; afterwards every acknowledged key exists, every acknowledged rotation is there, and every
 * acknowledged ciphertext decrypts to its plaintext. Requests in flight at a kill fail with a retriable code and are
 * simply not counted as acknowledged.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EkmsClient } from '../../client/sdk.js';
import type { Host } from '../../host/host.js';
import { EkmsError } from '../../shared/errors.js';
import { connectTo } from '../helpers/connect.js';
import { startTestHost } from '../helpers/service.js';

let dir: string;
let host: Host;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ekms-crash-'));
  host = await startTestHost({ stateDir: join(dir, 'state'), initialBackoffMs: 50 });
}, 60_000);

afterAll(async () => {
  await host?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Acked {
  keyId: string;
  version: number;
  blob: Uint8Array;
  plaintext: string;
}

describe('kill -9 during a stream of CreateKey / RotateKey / Encrypt', () => {
  it('loses nothing acknowledged', async () => {
    const acked: Acked[] = [];
    const rotated = new Map<string, number>();
    const failures = new Map<string, number>();
    let stop = false;
    let n = 0;

    const worker = async (client: EkmsClient): Promise<void> => {
      while (!stop) {
        try {
          const { keyId } = await client.createKey({});
          for (let round = 0; round < 3 && !stop; round++) {
            const plaintext = `secret ${n++}`;
            const r = await client.encrypt(keyId, new TextEncoder().encode(plaintext), { k: keyId });
            acked.push({ keyId, version: r.keyVersion, blob: r.ciphertextBlob, plaintext });
            const m = await client.rotateKey(keyId);
            rotated.set(keyId, m.currentVersion);
          }
        } catch (err) {
          const code = err instanceof EkmsError ? err.code : 'NON_EKMS_ERROR';
          failures.set(code, (failures.get(code) ?? 0) + 1);
          /* A failure at a kill must be retriable: the client reconnects on its next request. */
          expect(err instanceof EkmsError && err.retriable, code).toBe(true);
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    };

    const clients = await Promise.all(
      Array.from({ length: 4 }, () => connectTo(host, { timeoutMs: 10_000 })),
    );
    const running = clients.map(worker);
    for (let kill = 0; kill < 2; kill++) {
      await new Promise((r) => setTimeout(r, 700));
      const pid = host.supervisor.pid;
      if (pid !== undefined) process.kill(pid, 'SIGKILL');
    }
    await new Promise((r) => setTimeout(r, 1_200));
    stop = true;
    await Promise.all(running);

    expect(host.stats().enclaveLaunches).toBeGreaterThanOrEqual(3);
    expect(acked.length).toBeGreaterThan(10);
    // Everything acknowledged survived both crashes.
    const check = await connectTo(host, { timeoutMs: 10_000 });
    for (const a of acked) {
      const d = await check.decrypt(a.blob, { k: a.keyId });
      expect(new TextDecoder().decode(d.plaintext)).toBe(a.plaintext);
      expect(d.keyVersion).toBe(a.version);
    }
    for (const [keyId, version] of rotated) {
      expect((await check.describeKey(keyId)).currentVersion).toBeGreaterThanOrEqual(version);
    }
    for (const c of [...clients, check]) c.close();
  }, 60_000);
});
