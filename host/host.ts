/**
 * The untrusted host process (design §1): supervises the enclave, accepts client connections over WebSocket
 * (and Unix sockets), and gives each its own stream to the enclave. It sees frame sizes and timing only.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import { ConfigError, type EkmsError, TransportError } from '../shared/errors.js';
import { LIMITS } from '../shared/limits.js';
import { type ClientChannel, connectUnix, type RelayCounters, relayToEnclave } from './relay.js';
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
  readonly maxConnections?: number;
  /** How long a new client waits for a restarting enclave before it is refused. */
  readonly enclaveWaitMs?: number;
  readonly enclaveLogLevel?: string;
  readonly initialBackoffMs?: number;
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

/**
 * Starts the enclave, waits until it is ready, then listens for clients.
 * @throws ConfigError CONFIG_INVALID; TransportError ENCLAVE_UNAVAILABLE if the enclave never becomes ready.
 */
export async function startHost(opts: HostOptions): Promise<Host> {
  const log = opts.logger.child({ component: 'host' });
  const listen = parseListen(opts.listen);
  const runDir = mkdtempSync(join(tmpdir(), 'ekms-'));
  const enclaveSocket = join(runDir, 'enclave.sock');
  const supervisor = new EnclaveSupervisor({
    entry: opts.enclaveEntry,
    listen: `unix:${enclaveSocket}`,
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
    rmSync(runDir, { recursive: true, force: true });
    throw err;
  }

  const maxConnections = opts.maxConnections ?? LIMITS.maxConnections;
  const counters: RelayCounters = { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0 };
  let connections = 0;
  let connectionsTotal = 0;
  let refused = 0;
  let closing = false;
  const open = new Set<ClientChannel>();
  let nextConn = 1;

  /**
   * A stream to a ready enclave. The supervisor may still believe a just-killed enclave is ready, so a refused
   * connection is retried until a restarted enclave answers or `enclaveWaitMs` runs out.
   */
  const connectEnclave = async (): Promise<net.Socket> => {
    const deadline = Date.now() + (opts.enclaveWaitMs ?? 10_000);
    for (;;) {
      await supervisor.waitReady(Math.max(1, deadline - Date.now()));
      try {
        return await connectUnix(enclaveSocket);
      } catch (err) {
        if (Date.now() >= deadline || closing) throw err;
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
    open.add(channel);
    let gone = false;
    channel.onClose(() => {
      gone = true;
      connections -= 1;
      open.delete(channel);
    });
    // Hold frames that arrive while we wait for a (re)starting enclave; relayToEnclave takes over the handler.
    channel.pause();
    connectEnclave()
      .then((upstream) => {
        if (gone) {
          upstream.destroy();
          return;
        }
        relayToEnclave(channel, upstream, clog, counters);
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
    wss.on('connection', (ws) => accept(wsChannel(ws)));
    await new Promise<void>((resolve, reject) => {
      httpServer!.once('error', reject);
      httpServer!.listen(listen.port, listen.host, () => resolve());
    });
    const addr = httpServer.address() as net.AddressInfo;
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    endpoint = `ws://${host}:${addr.port}`;
  } else {
    rmSync(listen.path, { force: true });
    unixServer = net.createServer((socket) => accept(streamChannel(socket)));
    await new Promise<void>((resolve, reject) => {
      unixServer!.once('error', reject);
      unixServer!.listen(listen.path, () => resolve());
    });
    endpoint = `unix:${listen.path}`;
  }
  log.info({ endpoint, measurement: enclave.measurement }, 'host listening');

  return {
    endpoint,
    enclave,
    supervisor,
    stats: () => ({
      ...counters,
      connections,
      connectionsTotal,
      refused,
      enclaveLaunches: supervisor.launches,
    }),
    async close() {
      if (closing) return;
      closing = true;
      log.info('host shutting down');
      for (const c of open) c.close('HOST_SHUTTING_DOWN', 'the host is shutting down');
      await Promise.all([
        wss ? new Promise<void>((r) => wss!.close(() => r())) : undefined,
        httpServer ? new Promise<void>((r) => httpServer!.close(() => r())) : undefined,
        unixServer ? new Promise<void>((r) => unixServer!.close(() => r())) : undefined,
      ]);
      httpServer?.closeAllConnections();
      await supervisor.stop();
      rmSync(runDir, { recursive: true, force: true });
      log.info('host stopped');
    },
  };
}

export { TransportError };
