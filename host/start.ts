/**
 * `ekms start`: prepares the data dir, starts the host (which starts the enclave), writes the client profile
 * and prints one JSON line containing `"ready"` on stdout. Stops cleanly on SIGINT/SIGTERM.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeCustodySet, parseCustodySetJson } from '../shared/custody.js';
import { ConfigError, TransportError } from '../shared/errors.js';
import { VERSION } from '../shared/version.js';
import { openTrafficCapture } from './capture.js';
import { type Host, startHost } from './host.js';
import { createLogger } from './logger.js';

export interface StartOptions {
  readonly dataDir: string;
  readonly listen: string;
  readonly attestor: string;
  readonly logLevel?: string;
  /**
   * Where the enclave's root key comes from (docs/custody.md): `insecure-simulation` (default; a plaintext host
   * blob, simulation only) or `custody` (M-of-N custodian shares; the only mode real attestors accept).
   */
  readonly rootKey?: string;
  /** The custodians file (custody mode); default: the copy kept in the data dir since the first start. */
  readonly custodians?: string;
  /** Record every relayed frame into this file (host/capture.ts): what an untrusted host sees. */
  readonly capture?: string;
}

const ATTESTORS = ['sim-nitro', 'sim-sev-snp', 'nitro', 'sev-snp'];
const CUSTODIANS_FILE = 'custodians.json';

/**
 * The custody set for `--root-key custody`: the given custodians file (copied into the data dir on first use, so
 * that later starts need not repeat it), or that copy. The enclave pins it at launch and refuses a bundle for
 * another set.
 * @throws ConfigError USAGE_ERROR, IO_ERROR; CustodyError CUSTODY_INVALID
 */
function loadCustodySet(dataDir: string, file: string | undefined): Uint8Array {
  const kept = join(dataDir, CUSTODIANS_FILE);
  const path = file === undefined ? kept : resolve(file);
  if (file === undefined && !existsSync(kept)) {
    throw new ConfigError('USAGE_ERROR', '--root-key custody needs --custodians FILE on the first start');
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ConfigError('IO_ERROR', `cannot read the custodians file ${path}`, { cause });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (cause) {
    throw new ConfigError('CONFIG_INVALID', `${path} is not JSON`, { cause });
  }
  const set = encodeCustodySet(parseCustodySetJson(doc, path));
  if (path !== kept) writeAtomic(kept, text, 0o600);
  return set;
}

/** The enclave bundle: next to the running bundle (dist/), or dist/ beside the sources. */
export function enclaveBundlePath(): string {
  const fromEnv = process.env['EKMS_ENCLAVE_BUNDLE'];
  if (fromEnv) return resolve(fromEnv);
  const here = dirname(fileURLToPath(import.meta.url));
  for (const candidate of [join(here, 'enclave.mjs'), join(here, '..', 'dist', 'enclave.mjs')]) {
    if (existsSync(candidate)) return candidate;
  }
  throw new ConfigError(
    'CONFIG_INVALID',
    'the enclave bundle dist/enclave.mjs is missing: run `npm run build`',
  );
}

/** Writes a file atomically (temp file, then rename) with the given mode. */
function writeAtomic(path: string, data: string, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

/** Loads the admin signing key from the data dir, or creates it (Ed25519, PKCS#8 PEM, mode 0600). */
function ensureAdminKey(dataDir: string): { publicKey: string; keyFile: string } {
  const keyFile = 'admin.key';
  const path = join(dataDir, keyFile);
  let pem: string;
  if (existsSync(path)) {
    pem = readFileSync(path, 'utf8');
  } else {
    const { privateKey } = generateKeyPairSync('ed25519');
    pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    writeAtomic(path, pem, 0o600);
  }
  const pub = createPublicKey(createPrivateKey(pem)).export({ type: 'spki', format: 'der' });
  return { publicKey: Buffer.from(pub).toString('hex'), keyFile };
}

/**
 * Runs `ekms start` until a signal arrives.
 * @throws ConfigError CONFIG_INVALID; TransportError ENCLAVE_UNAVAILABLE, ENCLAVE_MEASUREMENT_MISMATCH
 */
export async function runStart(opts: StartOptions): Promise<Host> {
  if (!ATTESTORS.includes(opts.attestor)) {
    throw new ConfigError('USAGE_ERROR', `--attestor must be one of ${ATTESTORS.join(', ')}`);
  }
  const dataDir = resolve(opts.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const logger = createLogger(opts.logLevel);
  const entry = enclaveBundlePath();
  // The operator's own view of the measurement: the bundle it is about to launch (on Nitro: nitro-cli's PCR0).
  const expected = createHash('sha384').update(readFileSync(entry)).digest('hex');
  const admin = ensureAdminKey(dataDir);
  const rootKey = opts.rootKey ?? 'insecure-simulation';
  if (rootKey !== 'insecure-simulation' && rootKey !== 'custody') {
    throw new ConfigError('USAGE_ERROR', '--root-key must be insecure-simulation or custody');
  }
  if (rootKey !== 'custody' && opts.custodians !== undefined) {
    throw new ConfigError('USAGE_ERROR', '--custodians needs --root-key custody');
  }
  const custodySet = rootKey === 'custody' ? loadCustodySet(dataDir, opts.custodians) : undefined;
  const capture = opts.capture === undefined ? undefined : openTrafficCapture(resolve(opts.capture));
  const host = await startHost({
    listen: opts.listen,
    enclaveEntry: entry,
    attestor: opts.attestor,
    logger,
    stateDir: join(dataDir, 'state'),
    simulatedCaFile: join(dataDir, 'sim-ca.json'),
    adminPublicKey: new Uint8Array(Buffer.from(admin.publicKey, 'hex')),
    ...(custodySet === undefined ? {} : { custodySet }),
    ...(opts.logLevel ? { enclaveLogLevel: opts.logLevel } : {}),
    ...(capture === undefined ? {} : { capture }),
  });
  if (host.enclave.measurement !== expected) {
    await host.close();
    throw new TransportError(
      'ENCLAVE_MEASUREMENT_MISMATCH',
      `the enclave reports measurement ${host.enclave.measurement}, the bundle measures ${expected}`,
    );
  }
  const profile = {
    version: 1,
    endpoint: host.endpoint,
    attestor: opts.attestor,
    // Clients trust the enclave through its evidence: the measurement the operator launched, and (simulation
    // only) the simulated CA's root, marked as allowed explicitly.
    trust: { measurement: expected, roots: [...host.trust.roots], allowSimulated: host.trust.allowSimulated },
    admin: { name: 'admin', publicKey: admin.publicKey, keyFile: admin.keyFile },
  };
  const profilePath = join(dataDir, 'profile.json');
  writeAtomic(profilePath, `${JSON.stringify(profile, null, 2)}\n`, 0o600);

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    // close() is bounded (client grace period, then SIGKILL of the enclave); this is the backstop.
    setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, 15_000).unref();
    host
      .close()
      .then(() => capture?.close())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.stdout.write(
    `${JSON.stringify({
      ok: true,
      event: 'ready',
      version: VERSION,
      endpoint: host.endpoint,
      attestor: opts.attestor,
      measurement: expected,
      rootKey,
      locked: host.enclave.locked,
      profile: profilePath,
      dataDir,
    })}\n`,
  );
  return host;
}
