/**
 * Entry point of the enclave process (trusted). Started by the host as a separate OS process:
 *
 *   node dist/enclave.mjs --listen unix:/path/enclave.sock --attestor sim-nitro
 *
 * Prints exactly one JSON line `{"event":"ready",…}` on stdout once it serves requests, or
 * `{"event":"error","code",…}` if it cannot start; logs go to stderr as pino JSON (codes and sizes only).
 * With `--exit-with-parent` (the host's supervisor passes it) the process exits when its stdin reaches EOF: the
 * host holds the other end, so the enclave never outlives it. On a real Nitro instance the listen address is
 * `vsock:CID:PORT` served through a socat bridge to a Unix socket inside the enclave (docs/transports.md).
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { parseEndpointAddress, vsockBridgeArgs } from '../shared/address.js';
import { CUSTODY_BUNDLE_BLOB, decodeCustodySet } from '../shared/custody.js';
import { EkmsError } from '../shared/errors.js';
import { applyRuntimeTuning } from '../shared/runtime-tuning.js';
import { VERSION } from '../shared/version.js';
import { createAttestor } from './attestor/attestor.js';
import { AuditLog } from './audit/audit-log.js';
import { CustodyLock, checkRootKeyAgainstState, provisionCustody } from './custody/custody.js';
import { Keystore } from './keystore/keystore.js';
import { loadSimulationRootKey } from './keystore/root-key.js';
import { adminOnly } from './kms/authorizer.js';
import { policyAuthorizer } from './kms/policy-authorizer.js';
import type { OperationContext } from './operations.js';
import { canonicalSpki, PrincipalRegistry } from './principals.js';
import { startEnclaveServer } from './server.js';
import { EnclaveIdentity } from './session.js';
import { StorageClient } from './storage/storage-client.js';

/** Audit checkpoints (docs/audit.md): every this many events, and this long after the last event at the latest. */
const AUDIT_CHECKPOINT_EVERY = 1024;
const AUDIT_CHECKPOINT_MS = 5_000;

/** How often due deletions and rotations are applied (they are also applied whenever a key is touched). */
const SWEEP_INTERVAL_MS = 60_000;

/** Fields that must never reach the log (style §15): payloads, parameters, results, key material. */
const LOG_REDACT_PATHS = [
  'frame',
  'body',
  'payload',
  'params',
  'result',
  'plaintext',
  'key',
  'secret',
  '*.frame',
  '*.body',
  '*.payload',
  '*.params',
  '*.result',
  '*.plaintext',
  '*.key',
  '*.secret',
];

async function main(): Promise<void> {
  applyRuntimeTuning();
  const { values } = parseArgs({
    options: {
      listen: { type: 'string' },
      storage: { type: 'string' },
      attestor: { type: 'string', default: 'sim-nitro' },
      'log-level': { type: 'string', default: 'info' },
      'exit-with-parent': { type: 'boolean', default: false },
      'sim-ca': { type: 'string' },
      'admin-key': { type: 'string' },
      // Where the root key comes from: `insecure-simulation` (plaintext host blob, simulation only; the default) or
      // `custody` (M-of-N custodian shares, docs/custody.md) with `--custody` = the custody set, base64 CBOR.
      'root-key': { type: 'string', default: 'insecure-simulation' },
      custody: { type: 'string' },
    },
    strict: true,
  });
  const logger = pino(
    {
      level: values['log-level'] ?? 'info',
      base: { component: 'enclave', pid: process.pid },
      // Log calls record codes and sizes; these paths catch a field that could carry payloads if one slipped in.
      redact: { paths: LOG_REDACT_PATHS, censor: '[redacted]' },
    },
    pino.destination(2),
  );
  if (values.listen === undefined)
    throw new EkmsError('USAGE_ERROR', '--listen unix:PATH or vsock:CID:PORT is required');
  const address = parseEndpointAddress(values.listen);
  const bundlePath = fileURLToPath(import.meta.url);
  const attestor = createAttestor(values.attestor ?? 'sim-nitro', bundlePath, values['sim-ca']);
  const adminKeyHex = values['admin-key'];
  if (adminKeyHex !== undefined && !/^([0-9a-f]{2})+$/.test(adminKeyHex)) {
    throw new EkmsError('USAGE_ERROR', '--admin-key takes the admin public key as SPKI DER in lowercase hex');
  }
  let adminKey: Uint8Array | undefined;
  if (adminKeyHex !== undefined) {
    /* Precondition: the launch admin key is an Ed25519 SPKI public key (stored canonical: decision 36). */
    try {
      adminKey = canonicalSpki(new Uint8Array(Buffer.from(adminKeyHex, 'hex')));
    } catch {
      throw new EkmsError(
        'USAGE_ERROR',
        '--admin-key is not an Ed25519 public key (SPKI DER in lowercase hex)',
      );
    }
  }
  const rootKeyMode = values['root-key'] ?? 'insecure-simulation';
  if (rootKeyMode !== 'insecure-simulation' && rootKeyMode !== 'custody') {
    throw new EkmsError('USAGE_ERROR', '--root-key takes insecure-simulation or custody');
  }
  if ((rootKeyMode === 'custody') !== (values.custody !== undefined)) {
    throw new EkmsError('USAGE_ERROR', '--root-key custody and --custody SET go together');
  }
  // The custody set is pinned at launch, like the admin key: a bundle for another set is refused.
  const custodySet =
    values.custody === undefined
      ? undefined
      : decodeCustodySet(new Uint8Array(Buffer.from(values.custody, 'base64')));

  let socketPath: string;
  if (address.kind === 'unix') {
    socketPath = address.path;
  } else {
    // vsock: serve on a private Unix socket and let socat accept the vsock connections.
    socketPath = `/tmp/ekms-enclave-${process.pid}.sock`;
    const bridge = spawn('socat', vsockBridgeArgs('listen', address, socketPath), { stdio: 'inherit' });
    bridge.on('exit', (code) => {
      logger.fatal({ code }, 'vsock bridge exited');
      process.exit(1);
    });
    // e.g. socat is not installed (ENOENT): 'exit' may not follow, and an 'error' without a listener would crash.
    bridge.on('error', (err) => {
      logger.fatal({ err: err.message }, 'cannot start the vsock bridge');
      process.exit(1);
    });
  }
  const now = (): number => Date.now();
  let keystore: Keystore | undefined;
  let storage: StorageClient | undefined;
  let principals = new PrincipalRegistry([]);
  let audit: AuditLog | undefined;
  // The per-boot identity: generated here, never stored; the first evidence is made now so a broken attestor
  // fails the start-up rather than the first handshake.
  const identity = new EnclaveIdentity(attestor, now);
  const evidence = await identity.evidence();
  // What every operation sees; the keystore, principals and audit log are filled in once the root key is known
  // (at start-up, or when custodians unlock a custody enclave).
  const context: { -readonly [K in keyof OperationContext]: OperationContext[K] } = {
    attestor,
    now,
    startedAt: Date.now(),
    keystore: undefined,
    authorizer: adminOnly,
    identity,
    principals,
    audit: undefined,
    rootKeySource: null,
    custody: undefined,
  };
  if (values.storage !== undefined) {
    const storageAddress = parseEndpointAddress(values.storage);
    if (storageAddress.kind !== 'unix') {
      // On Nitro the channel is vsock to the parent (CID 3), bridged to a Unix socket by socat (docs/transports.md).
      throw new EkmsError('USAGE_ERROR', '--storage takes unix:PATH (bridge vsock with socat)');
    }
    storage = await StorageClient.connect(storageAddress.path, {
      onLost: (reason) => {
        // Without storage nothing can be acknowledged safely: exit, the supervisor restarts and reloads us.
        logger.fatal({ code: reason.code }, 'storage channel lost; exiting');
        process.exit(1);
      },
    });
    const channel = storage;
    /**
     * The custody ceremony in the audit trail (docs/custody.md): right after the boot record, one event for the
     * provisioning (no principal: the enclave made the key), or one per custodian whose share combined to the root
     * key at an unlock — named as the signed bundle names them; a share proves its custodian by matching its
     * commitment in the bundle, not by a principal's signature, hence `authentication: none`. A failed record breaks
     * the log, which then refuses every audited request (fail closed); the unlock itself stands.
     */
    const recordCustody = async (
      operation: 'custody.provision' | 'custody.unlock',
      custodians: readonly (string | null)[],
      generation: number,
    ): Promise<void> => {
      try {
        await Promise.all(
          custodians.map((principal) =>
            (audit as AuditLog).record({
              principal,
              authentication: 'none',
              operation,
              outcome: 'allowed',
              requestId: `custody.${generation}`,
            }),
          ),
        );
      } catch (err) {
        logger.error({ code: (err as EkmsError).code, operation }, 'custody audit record failed');
      }
    };
    /** Opens everything sealed under the root key and puts it in the operation context. Zeroes nothing itself. */
    const openServices = async (rootKey: Uint8Array): Promise<void> => {
      const ks = await Keystore.open({ storage: channel, rootKey, now, logger });
      let registry: PrincipalRegistry | undefined;
      let log: AuditLog;
      try {
        registry = await PrincipalRegistry.load({ storage: channel, rootKey, admin: adminKey, logger });
        // The tamper-evident audit log (docs/audit.md): chained from the sealed head, boot record with this evidence.
        log = await AuditLog.open({
          storage: channel,
          rootKey,
          identity: { publicKey: identity.publicKey, sign: (m) => identity.signStatement(m) },
          evidence,
          now,
          sink: (line) => channel.appendAudit(line),
          // A checkpoint seals the chain head (a sealed-blob write with fsyncs on the host): every 1024 events, and
          // at most AUDIT_CHECKPOINT_MS after the last event (below), so the unsigned tail stays short in time too.
          checkpointEvery: AUDIT_CHECKPOINT_EVERY,
        });
      } catch (err) {
        // A failed open (e.g. a rolled-back blob at an unlock) leaves no opened key material behind; a custody
        // unlock can be retried without piling up copies.
        ks.close();
        registry?.close();
        throw err;
      }
      keystore = ks;
      principals = registry;
      audit = log;
      Object.assign(context, {
        keystore: ks,
        principals: registry,
        audit: log,
        authorizer: policyAuthorizer(ks, now),
        rootKeySource: rootKeyMode,
      });
      // Only when events followed the last checkpoint: an idle service writes nothing.
      setInterval(() => {
        log
          .checkpointIfDue()
          .catch((err: unknown) =>
            logger.error({ code: (err as EkmsError).code }, 'audit checkpoint failed'),
          );
      }, AUDIT_CHECKPOINT_MS).unref();
      logger.info({ keys: ks.size }, 'keystore loaded');
      setInterval(() => void ks.sweep(), SWEEP_INTERVAL_MS).unref();
    };
    if (custodySet === undefined) {
      /* Precondition: a real TEE never keeps its root key in plaintext on the host (docs/custody.md). */
      if (!attestor.simulated) {
        throw new EkmsError(
          'CONFIG_INVALID',
          'a real attestor needs a custodian-held root key: start with --root-key custody --custodians FILE',
        );
      }
      const root = await loadSimulationRootKey(storage, now);
      logger.warn(
        { rootKey: root.source, created: root.created },
        'INSECURE SIMULATION: the root key is stored in plaintext by the host (root-key.insecure-simulation)',
      );
      try {
        await openServices(root.key);
      } finally {
        root.key.fill(0);
      }
    } else {
      const bundle = await storage.get(CUSTODY_BUNDLE_BLOB);
      if (bundle === undefined) {
        // First start: make the root key, hand its shares (encrypted to the custodians) to the host, and serve.
        const { rootKey } = await provisionCustody({
          storage,
          set: custodySet,
          identity,
          now,
          admin: adminKey,
        });
        try {
          await openServices(rootKey);
        } finally {
          rootKey.fill(0);
        }
        await recordCustody('custody.provision', [null], 1);
        logger.info(
          { custodians: custodySet.custodians.length, threshold: custodySet.threshold },
          'root key provisioned and split among the custodians',
        );
      } else {
        // Later start: locked until M custodians submit their shares through attested sessions.
        context.custody = new CustodyLock({
          bundle,
          set: custodySet,
          attestor,
          now,
          logger,
          onUnlock: async (rootKey, verified, custodians) => {
            await checkRootKeyAgainstState(channel, rootKey, { bundle: verified.body, admin: adminKey });
            await openServices(rootKey);
            await recordCustody('custody.unlock', custodians, verified.body.generation);
          },
        });
        logger.warn(
          { threshold: custodySet.threshold, custodians: custodySet.custodians.length },
          'LOCKED: waiting for custodian shares (ekms custody unlock)',
        );
      }
    }
  }
  rmSync(socketPath, { force: true });
  const server = await startEnclaveServer({ socketPath, logger, context });
  const shutdown = (): void => {
    logger.info('shutting down');
    keystore?.close();
    principals.close();
    // The shutdown checkpoint signs the tail, then the channel closes.
    const auditClosed = (audit?.close() ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => storage?.close());
    void Promise.all([auditClosed, server.close()]).then(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  if (values['exit-with-parent'] === true) {
    process.stdin.on('error', () => {});
    process.stdin.on('close', () => {
      logger.warn('the parent process is gone; exiting');
      shutdown();
    });
    process.stdin.resume();
  }
  process.stdout.write(
    `${JSON.stringify({ event: 'ready', version: VERSION, listen: values.listen, attestor: attestor.kind, measurement: attestor.measurement, locked: context.custody?.locked === true })}\n`,
  );
  logger.info({ attestor: attestor.kind, listen: values.listen }, 'enclave ready');
}

main().catch((err: unknown) => {
  const code = err instanceof EkmsError ? err.code : 'INTERNAL_ERROR';
  process.stderr.write(
    `${JSON.stringify({ level: 60, component: 'enclave', code, msg: String((err as Error).message) })}\n`,
  );
  // The supervisor reads stdout: tell it why, so that it fails start-up with this code instead of retrying.
  if (err instanceof EkmsError) {
    process.stdout.write(`${JSON.stringify({ event: 'error', code, message: err.message })}\n`);
  }
  process.exit(err instanceof EkmsError && err.code === 'USAGE_ERROR' ? 2 : 1);
});
