/** Starts a real host (which spawns the real enclave bundle) for end-to-end tests. */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import pino from 'pino';
import type { PrincipalCredentials } from '../../client/sdk.js';
import { type Host, type HostOptions, startHost } from '../../host/host.js';

export const REPO = resolve(import.meta.dirname, '../..');
export const ENCLAVE_BUNDLE = resolve(REPO, 'dist/enclave.mjs');
export const CLI = resolve(REPO, 'bin/ekms.mjs');

let admin: PrincipalCredentials | undefined;

/**
 * The first admin of every test host (one Ed25519 key per test process): the same key on every start, so a host
 * restarted over the same state directory still recognises the admin it sealed on its first start.
 */
export function adminPrincipal(): PrincipalCredentials {
  if (admin === undefined) {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    admin = { publicKey: new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })), privateKey };
  }
  return admin;
}

/** A host whose first admin is `adminPrincipal()` unless `overrides.adminPublicKey` says otherwise. */
export async function startTestHost(overrides: Partial<HostOptions> = {}): Promise<Host> {
  if (!existsSync(ENCLAVE_BUNDLE)) throw new Error(`missing ${ENCLAVE_BUNDLE}: run npm run build`);
  return startHost({
    listen: 'ws://127.0.0.1:0',
    enclaveEntry: ENCLAVE_BUNDLE,
    attestor: 'sim-nitro',
    logger: pino({ level: process.env['EKMS_TEST_LOG'] ?? 'silent' }),
    enclaveLogLevel: process.env['EKMS_TEST_LOG'] ?? 'error',
    initialBackoffMs: 50,
    adminPublicKey: adminPrincipal().publicKey,
    ...overrides,
  });
}
