/**
 * Review of the attested session (docs/protocol.md §5.4, first admin) with the real processes: a host that drops
 * the sealed principals and restarts the enclave with its own admin key must not become admin of existing keys.
 */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectTo } from '../helpers/connect.js';
import { startTestHost } from '../helpers/service.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ekms-review-session-e2e-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('first admin', () => {
  it('a host that deletes the sealed principals cannot pin its own admin key over existing keys (SEALED_BLOB_ROLLBACK)', async () => {
    const stateDir = join(dir, 'state');
    const host = await startTestHost({ stateDir, simulatedCaFile: join(dir, 'sim-ca.json') });
    const c = await connectTo(host);
    await c.createKey({ description: 'owned by the real admin' });
    c.close();
    await host.close();
    const principals = join(stateDir, 'principals');
    expect(existsSync(principals)).toBe(true);
    rmSync(principals);
    const attacker = generateKeyPairSync('ed25519');
    const attackerSpki = new Uint8Array(attacker.publicKey.export({ type: 'spki', format: 'der' }));
    await expect(
      startTestHost({ stateDir, simulatedCaFile: join(dir, 'sim-ca.json'), adminPublicKey: attackerSpki }),
    ).rejects.toMatchObject({ code: 'SEALED_BLOB_ROLLBACK' });
    expect(existsSync(principals)).toBe(false);
  }, 60_000);
});
