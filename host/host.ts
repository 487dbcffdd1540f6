/**
 * The untrusted host process (design §1): supervises the enclave, accepts client connections over WebSocket
 * (and Unix sockets), and gives each its own stream to the enclave. It sees frame sizes and timing only.
 */
import { lstatSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import { ConfigError, type EkmsError, TransportError } from '../shared/errors.js';
import { LIMITS } from '../shared/limits.js';
import { applyRuntimeTuning } from '../shared/runtime-tuning.js';
import { BlobStore } from './blob-store.js';
import type { TrafficCapture } from './capture.js';
import { type ClientChannel, connectUnix, type RelayCounters, relayToEnclave } from './relay.js';
import { ensureSimulatedCa } from './simulated-ca.js';
import { type StorageServer, startStorageServer } from './storage-server.js';
import { type EnclaveReadyInfo, EnclaveSupervisor } from './supervisor.js';
import { streamChannel } from './transports/stream.js';
import { wsChannel } from './transports/ws.js';

export interface HostOptions {
  /** Client endpoint: `ws://HOST:PORT` (port 0 picks a free port) or `unix:PATH`. */
  readonly listen: string;
  /** Path of the enclave bundle. */
  readonly enclaveEntry: string;
  readonly attestor: string;
  readonly logger: Logger;
  /**
   * Directory of the enclave's sealed state (the host blob store). Default: a temporary directory removed on
   * close — keys then live only as long as the host (tests).
   */
  readonly stateDir?: string;
  readonly maxConnections?: number;
  /** How long a new client waits for a restarting enclave before it is refused. */
  readonly enclaveWaitMs?: number;
  readonly enclaveLogLevel?: string;
  readonly initialBackoffMs?: number;
  /**
   * The simulated attestor's CA file (JSON; sim-nitro / sim-sev-snp). Default: a fresh CA in the run directory,
   * which lives as long as the host (tests). `ekms start` keeps one in its data dir.
   */
  readonly simulatedCaFile?: string;
  /** The first admin's Ed25519 public key (SPKI DER), pinned by the enclave on its first start. */
  readonly adminPublicKey?: Uint8Array;
  /**
   * Root-key custody (docs/custody.md): the custody set as canonical CBOR (shared/custody.ts `encodeCustodySet`).
   * The enclave then runs with `--root-key custody`: it provisions the root key on its first start and is locked
   * on every later start until M custodians submit their shares. Absent: the insecure simulation root key.
   */
  readonly custodySet?: Uint8Array;
  /** Records every relayed frame, both directions (host/capture.ts; `ekms start --capture FILE`). */
  readonly capture?: TrafficCapture;
}

/** What a client needs to trust this host's enclave (the profile's `trust`). */
export interface EnclaveTrust {
  /** Expected measurement (SHA-384 hex). */
  readonly measurement: string;
  /** Extra roots (PEM): the simulated CA's root when simulated. */
  readonly roots: readonly string[];
  readonly allowSimulated: boolean;
}

export interface HostStats extends RelayCounters {
  connections: number;
  connectionsTotal: number;
  refused: number;
  enclaveLaunches: number;
}

export interface Host {
  /** The client endpoint actually listened on (port resolved). */
  readonly endpoint: string;
  readonly enclave: EnclaveReadyInfo;
  readonly supervisor: EnclaveSupervisor;
  /** The trust a client needs for this enclave (measurement as launched, simulated root when simulated). */
  readonly trust: EnclaveTrust;
  stats(): HostStats;
  close(): Promise<void>;
}

function parseListen(
  listen: string,
): { kind: 'ws'; host: string; port: number } | { kind: 'unix'; path: string } {
  if (listen.startsWith('unix:')) return { kind: 'unix', path: listen.slice(5) };
  let url: URL;
  try {
    url = new URL(listen);
  } catch {
    throw new ConfigError('CONFIG_INVALID', `--listen "${listen}" is not ws://HOST:PORT or unix:PATH`);
  }
  if (url.protocol !== 'ws:' || url.pathname !== '/' || url.search !== '') {
    throw new ConfigError(
      'CONFIG_INVALID',
      `--listen "${listen}" must be ws://HOST:PORT (TLS is terminated elsewhere)`,
    );
  }
  return {
    kind: 'ws',
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port === '' ? 80 : Number(url.port),
  };
}

/** Listens, or rejects with the server's error (EADDRINUSE, EACCES…) as CONFIG_INVALID. */
function listenOn(server: net.Server, listen: string, start: (done: () => void) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void =>
      reject(new ConfigError('CONFIG_INVALID', `cannot listen on ${listen}: ${err.message}`, { cause: err }));
    server.once('error', onError);
    start(() => {
      server.off('error', onError);
      resolve();
    });
  });
}

/**
 * Starts the enclave, waits until it is ready, then listens for clients. Switches the calling process to the host's
 * V8 settings first (shared/runtime-tuning.ts: process-wide, also for anything else running in the process).
 * @throws ConfigError CONFIG_INVALID (bad or unusable --listen); TransportError ENCLAVE_UNAVAILABLE if the enclave
 *   never becomes ready. On failure nothing is left running: the enclave is stopped and its run directory removed.
 */
export async function startHost(opts: HostOptions): Promise<Host> {
  applyRuntimeTuning();
  const log = opts.logger.child({ component: 'host' });
  const listen = parseListen(opts.listen);
  const runDir = mkdtempSync(join(tmpdir(), 'ekms-'));
  const enclaveSocket = join(runDir, 'enclave.sock');
  const storageSocket = join(runDir, 'storage.sock');
  let storage: StorageServer;
  try {
    const store = await BlobStore.open(opts.stateDir ?? join(runDir, 'state'));
    storage = await startStorageServer(storageSocket, store, log);
  } catch (err) {
    rmSync(runDir, { recursive: true, force: true });
    throw err;
  }
  let simulatedRoot: string | null = null;
  const extraArgs: string[] = [];
  if (opts.attestor === 'sim-nitro' || opts.attestor === 'sim-sev-snp') {
    try {
      const ca = await ensureSimulatedCa(opts.attestor, opts.simulatedCaFile ?? join(runDir, 'sim-ca.json'));
      simulatedRoot = ca.root;
      extraArgs.push('--sim-ca', ca.file);
    } catch (err) {
      await storage.close();
      rmSync(runDir, { recursive: true, force: true });
      throw err;
    }
  }
  if (opts.adminPublicKey !== undefined)
    extraArgs.push('--admin-key', Buffer.from(opts.adminPublicKey).toString('hex'));
  if (opts.custodySet !== undefined)
    extraArgs.push('--root-key', 'custody', '--custody', Buffer.from(opts.custodySet).toString('base64'));
  const supervisor = new EnclaveSupervisor({
    extraArgs,
    entry: opts.enclaveEntry,
    listen: `unix:${enclaveSocket}`,
    storage: `unix:${storageSocket}`,
    attestor: opts.attestor,
    logger: opts.logger,
    ...(opts.enclaveLogLevel ? { logLevel: opts.enclaveLogLevel } : {}),
    ...(opts.initialBackoffMs ? { initialBackoffMs: opts.initialBackoffMs } : {}),
  });
  let enclave: EnclaveReadyInfo;
  try {
    enclave = await supervisor.start();
  } catch (err) {
    await supervisor.stop();
    await storage.close();
    rmSync(runDir, { recursive: true, force: true });
    throw err;
  }

  const maxConnections = opts.maxConnections ?? LIMITS.maxConnections;
  const counters: RelayCounters = { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0 };
  let connections = 0;
  let connectionsTotal = 0;
  let refused = 0;
  let closing = false;
  let closePromise: Promise<void> | undefined;
  const open = new Set<ClientChannel>();
  let nextConn = 1;

  /**
   * A stream to a ready enclave. The supervisor may still believe a just-killed enclave is ready, so a refused
   * connection is retried until a restarted enclave answers or `enclaveWaitMs` runs out — or the client has left.
   */
  const connectEnclave = async (abandoned: () => boolean): Promise<net.Socket> => {
    const deadline = Date.now() + (opts.enclaveWaitMs ?? 10_000);
    for (;;) {
      await supervisor.waitReady(Math.max(1, deadline - Date.now()));
      try {
        return await connectUnix(enclaveSocket);
      } catch (err) {
        if (Date.now() >= deadline || closing || abandoned()) throw err;
        await new Promise((r) => setTimeout(r, 25));
      }
    }
  };

  const accept = (channel: ClientChannel): void => {
    const conn = nextConn++;
    const clog = log.child({ conn });
    if (closing) {
      channel.close('HOST_SHUTTING_DOWN', 'the host is shutting down');
      return;
    }
    if (connections >= maxConnections) {
      refused += 1;
      clog.warn({ connections }, 'connection refused: limit reached');
      channel.close('HOST_OVERLOADED', `more than ${maxConnections} connections`);
      return;
    }
    connections += 1;
    connectionsTotal += 1;
    const connectionId = connectionsTotal;
    open.add(channel);
    let gone = false;
    channel.onClose(() => {
      gone = true;
      connections -= 1;
      open.delete(channel);
    });
    // Hold frames that arrive while we wait for a (re)starting enclave; relayToEnclave takes over the handler.
    channel.pause();
    connectEnclave(() => gone)
      .then((upstream) => {
        if (gone) {
          upstream.destroy();
          return;
        }
        const capture = opts.capture;
        relayToEnclave(
          channel,
          upstream,
          clog,
          counters,
          capture === undefined
            ? undefined
            : (direction, frame) => capture.record(connectionId, direction, frame),
        );
        channel.resume();
      })
      .catch((err: EkmsError) => {
        if (gone) return;
        clog.warn({ code: err.code }, 'no enclave for the connection');
        channel.close(err.code ?? 'ENCLAVE_UNAVAILABLE', err.message);
      });
  };

  let endpoint: string;
  let httpServer: HttpServer | undefined;
  let wss: WebSocketServer | undefined;
  let unixServer: net.Server | undefined;
  // Without these listeners a server error (e.g. EADDRINUSE, which ws re-emits on the WebSocketServer) would be an
  // uncaught exception: the host would die with its enclave orphaned.
  const onServerError = (err: Error): void => log.error({ err: err.message }, 'listener error');
  try {
    if (listen.kind === 'ws') {
      httpServer = createHttpServer((_req, res) => {
        res.writeHead(426, { 'content-type': 'text/plain' }).end('WebSocket endpoint\n');
      });
      // Slow clients must not hold sockets open during the HTTP upgrade.
      httpServer.headersTimeout = 10_000;
      httpServer.requestTimeout = 10_000;
      wss = new WebSocketServer({
        server: httpServer,
        maxPayload: LIMITS.maxFrameBytes,
        perMessageDeflate: false,
      });
      wss.on('error', () => {}); // ws forwards the HTTP server's errors; onServerError below logs them once
      wss.on('connection', (ws) => accept(wsChannel(ws)));
      await listenOn(httpServer, opts.listen, (done) => httpServer!.listen(listen.port, listen.host, done));
      httpServer.on('error', onServerError);
      const addr = httpServer.address() as net.AddressInfo;
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      endpoint = `ws://${host}:${addr.port}`;
    } else {
      // Replace a stale socket left by a previous run, but never delete anything else a typo might name.
      if (lstatSync(listen.path, { throwIfNoEntry: false })?.isSocket()) rmSync(listen.path);
      unixServer = net.createServer((socket) => accept(streamChannel(socket)));
      await listenOn(unixServer, opts.listen, (done) => unixServer!.listen(listen.path, done));
      unixServer.on('error', onServerError);
      endpoint = `unix:${listen.path}`;
    }
  } catch (err) {
    closing = true;
    httpServer?.close();
    unixServer?.close();
    await supervisor.stop();
    await storage.close();
    rmSync(runDir, { recursive: true, force: true });
    throw err;
  }
  log.info({ endpoint, measurement: enclave.measurement }, 'host listening');

  const shutdown = async (): Promise<void> => {
    closing = true;
    log.info('host shutting down');
    for (const c of open) c.close('HOST_SHUTTING_DOWN', 'the host is shutting down');
    const closed = Promise.all([
      wss ? new Promise<void>((r) => wss!.close(() => r())) : undefined,
      httpServer ? new Promise<void>((r) => httpServer!.close(() => r())) : undefined,
      unixServer ? new Promise<void>((r) => unixServer!.close(() => r())) : undefined,
    ]);
    // Connections still in the HTTP phase (e.g. a slow upgrade request) would hold close() until their request
    // timeout; upgraded ones are not touched here and finish their closing handshake (bounded by relay.ts CLOSE_GRACE_MS).
    httpServer?.closeAllConnections();
    // Stop the enclave now rather than after the clients are gone: it must not restart meanwhile, and clients
    // waiting for a restarting enclave are released at once (HOST_SHUTTING_DOWN).
    await Promise.all([closed, supervisor.stop()]);
    // After the enclave: it may still be writing its state while it stops.
    await storage.close();
    rmSync(runDir, { recursive: true, force: true });
    log.info('host stopped');
  };

  const trust: EnclaveTrust = {
    measurement: enclave.measurement,
    roots: simulatedRoot === null ? [] : [simulatedRoot],
    allowSimulated: simulatedRoot !== null,
  };
  return {
    endpoint,
    enclave,
    supervisor,
    trust,
    stats: () => ({
      ...counters,
      connections,
      connectionsTotal,
      refused,
      enclaveLaunches: supervisor.launches,
    }),
    close() {
      // Every caller (a signal handler, a test's teardown…) gets the same promise: it settles once everything is
      // stopped, not merely once another caller has started stopping.
      closePromise ??= shutdown();
      return closePromise;
    },
  };
}

export { TransportError };
