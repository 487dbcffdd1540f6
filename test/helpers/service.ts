/** Starts a real host (which spawns the real enclave bundle) for end-to-end tests. */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import pino from 'pino';
import { type Host, type HostOptions, startHost } from '../../host/host.js';

export const REPO = resolve(import.meta.dirname, '../..');
export const ENCLAVE_BUNDLE = resolve(REPO, 'dist/enclave.mjs');
export const CLI = resolve(REPO, 'bin/ekms.mjs');

export async function startTestHost(overrides: Partial<HostOptions> = {}): Promise<Host> {
  if (!existsSync(ENCLAVE_BUNDLE)) throw new Error(`missing ${ENCLAVE_BUNDLE}: run npm run build`);
  return startHost({
    listen: 'ws://127.0.0.1:0',
    enclaveEntry: ENCLAVE_BUNDLE,
    attestor: 'sim-nitro',
    logger: pino({ level: process.env['EKMS_TEST_LOG'] ?? 'silent' }),
    enclaveLogLevel: process.env['EKMS_TEST_LOG'] ?? 'error',
    initialBackoffMs: 50,
    ...overrides,
  });
}
