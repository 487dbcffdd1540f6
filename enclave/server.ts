/**
 * The enclave's request server: one stream per client connection (relayed by the host), length-prefixed
 * CBOR frames, requests answered as they complete.
 *
 * A malformed frame is answered with an error and the connection stays usable (the length prefix kept us in
 * sync); a frame whose header announces more than the limit cannot be skipped safely, so it is answered and
 * the connection ends. Reading pauses while the socket's write buffer is full (backpressure).
 */
import net from 'node:net';
import type { Logger } from 'pino';
import { decodeCbor } from '../shared/cbor.js';
import { EkmsError, ProtocolError, TransportError } from '../shared/errors.js';
import { encodeStreamFrame, StreamFrameDecoder } from '../shared/frame.js';
import { LIMITS } from '../shared/limits.js';
import { encodeError, encodeOk, parseRequest, peekRequestId } from '../shared/messages.js';
import { DEFAULT_ADMIN } from './kms/authorizer.js';
import { type Caller, OPERATIONS, type OperationContext } from './operations.js';

export interface EnclaveServerOptions {
  readonly socketPath: string;
  readonly context: OperationContext;
  readonly logger: Logger;
}

export interface EnclaveServer {
  readonly server: net.Server;
  close(): Promise<void>;
}

let nextConnectionId = 1;

/** Fields of a result that carry secrets (data keys, decrypted plaintext): zeroed once the response is encoded. */
const SECRET_FIELDS = ['plaintext'] as const;

function wipeSecrets(result: Readonly<Record<string, unknown>>): void {
  for (const field of SECRET_FIELDS) {
    const v = result[field];
    if (v instanceof Uint8Array) v.fill(0);
  }
}

function serveConnection(socket: net.Socket, opts: EnclaveServerOptions): void {
  const log = opts.logger.child({ conn: nextConnectionId++ });
  const decoder = new StreamFrameDecoder();
  const inFlight = new Set<number>();
  let closed = false;
  // Until the attested session authenticates callers (issue 5), every connection acts as the admin.
  const caller: Caller = { principal: DEFAULT_ADMIN };

  const send = (body: Uint8Array): void => {
    if (closed) return;
    if (!socket.write(encodeStreamFrame(body))) socket.pause();
  };
  socket.on('drain', () => socket.resume());

  const handle = async (frame: Uint8Array): Promise<void> => {
    let decoded: unknown;
    try {
      decoded = decodeCbor(frame);
    } catch (err) {
      log.warn({ code: (err as EkmsError).code, bytes: frame.length }, 'undecodable frame');
      send(encodeError(null, err));
      return;
    }
    let id: number | null = peekRequestId(decoded);
    try {
      const req = parseRequest(decoded);
      id = req.id;
      if (inFlight.has(req.id)) {
        id = null; // the id belongs to the earlier request; answering with it would confuse the client
        throw new ProtocolError('REQUEST_DUPLICATE_ID', `request id ${req.id} is already in flight`);
      }
      if (inFlight.size >= LIMITS.maxInFlightPerConnection) {
        throw new TransportError(
          'TOO_MANY_IN_FLIGHT',
          `more than ${LIMITS.maxInFlightPerConnection} requests in flight`,
        );
      }
      const op = Object.hasOwn(OPERATIONS, req.op) ? OPERATIONS[req.op] : undefined;
      if (op === undefined) throw new ProtocolError('OPERATION_UNKNOWN', `unknown operation "${req.op}"`);
      inFlight.add(req.id);
      try {
        const result = await op(req.params, opts.context, caller);
        send(encodeOk(req.id, result));
        wipeSecrets(result);
        log.debug({ op: req.op, id: req.id }, 'ok');
      } finally {
        inFlight.delete(req.id);
      }
    } catch (err) {
      if (err instanceof EkmsError) log.info({ code: err.code, id }, 'request failed');
      else log.error({ err }, 'internal error');
      send(encodeError(id, err));
    }
  };

  socket.on('data', (chunk: Buffer) => {
    let frames: Uint8Array[];
    try {
      frames = decoder.push(chunk);
    } catch (err) {
      log.warn({ code: (err as EkmsError).code }, 'frame stream broken; closing');
      send(encodeError(null, err));
      closed = true;
      socket.end();
      return;
    }
    for (const f of frames) void handle(f);
  });
  socket.on('end', () => {
    try {
      decoder.end();
    } catch (err) {
      log.info({ code: (err as EkmsError).code }, 'peer truncated a frame');
    }
    closed = true;
    socket.end();
  });
  socket.on('error', (err) => log.info({ err: err.message }, 'connection error'));
  socket.on('close', () => {
    closed = true;
  });
}

/** Listens on a Unix socket; resolves once listening. */
export async function startEnclaveServer(opts: EnclaveServerOptions): Promise<EnclaveServer> {
  const server = net.createServer({ allowHalfOpen: true }, (socket) => serveConnection(socket, opts));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // An error on the listening socket after start-up (e.g. EMFILE on accept) must not crash the enclave.
  server.on('error', (err) => opts.logger.error({ err: err.message }, 'listener error'));
  return {
    server,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
