/**
 * The enclave's request server: one stream per client connection (relayed by the host), length-prefixed
 * CBOR frames, requests answered as they complete.
 *
 * A malformed frame is answered with an error and the connection stays usable (the length prefix kept us in
 * sync); a frame whose header announces more than the limit cannot be skipped safely, so it is answered and
 * the connection ends. Reading pauses while the socket's write buffer is full (backpressure).
 */

import { createHash } from 'node:crypto';
import net from 'node:net';
import type { Logger } from 'pino';
import { AuditError } from '../shared/audit-errors.js';
import { decodeCbor } from '../shared/cbor.js';
import { EkmsError, ProtocolError, TransportError } from '../shared/errors.js';
import { encodeStreamFrame, StreamFrameDecoder } from '../shared/frame.js';
import { LIMITS } from '../shared/limits.js';
import {
  encodeError,
  encodeOk,
  type Params,
  parseRequest,
  peekRequestId,
  type Request,
} from '../shared/messages.js';
import { SessionError } from '../shared/session-errors.js';
import type { AuditEvent, AuditLog } from './audit/audit-log.js';
import { ANONYMOUS } from './kms/authorizer.js';
import { type Caller, OPERATIONS, type OperationContext, type RequestInfo } from './operations.js';
import { acceptSession, type ServerSession } from './session.js';

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
/** Audit lines sent to the host but not yet durable, across connections; above the bound, requests wait for them. */
let auditPending = 0;
const MAX_AUDIT_PENDING = 256;

/** Fields of a result that carry secrets (data keys, decrypted plaintext): zeroed once the response is encoded. */
const SECRET_FIELDS = ['plaintext'] as const;

function wipeSecrets(result: Readonly<Record<string, unknown>>): void {
  for (const field of SECRET_FIELDS) {
    const v = result[field];
    if (v instanceof Uint8Array) v.fill(0);
  }
}

/** Operations that touch no key and decide nothing: not audited (everything else is, allowed or refused). */
const UNAUDITED_OPERATIONS: ReadonlySet<string> = new Set(['health', 'describe', 'generateRandom']);
/** Codes that mean "refused by an access or key-state decision" (audit outcome `denied`, not `error`). */
const DENIAL_CODES: ReadonlySet<string> = new Set([
  'ACCESS_DENIED',
  'QUORUM_REQUIRED',
  'AUTHENTICATION_FAILED',
  'RECIPIENT_NOT_ATTESTED',
  'KEY_DISABLED',
  'KEY_PENDING_DELETION',
  'KEY_DESTROYED',
]);
const AUDIT_KEY_ID =
  /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|alias\/[A-Za-z0-9/_-]{1,250})$/;

/** The key a request acted on: the resolved id from the result, else the id or alias it named (if well-formed). */
function auditKeyId(params: Params, result: Params | undefined): string | null {
  const meta = result?.['keyMetadata'] as Record<string, unknown> | undefined;
  for (const v of [
    result?.['keyId'],
    meta?.['keyId'],
    params['keyId'],
    params['destinationKeyId'],
    params['targetKeyId'],
  ]) {
    if (typeof v === 'string' && AUDIT_KEY_ID.test(v)) return v;
  }
  return null;
}

/** The request's encryption context, when it is a plain map (an invalid one is recorded without a digest). */
function auditContext(params: Params): Record<string, string> | null {
  const c = params['encryptionContext'] ?? params['destinationEncryptionContext'];
  if (typeof c !== 'object' || c === null || Array.isArray(c) || c instanceof Uint8Array) return null;
  return c as Record<string, string>;
}

/**
 * Operations answered before a session exists (plaintext, readable by the host): liveness and the public facts
 * of `describe`. Everything else needs the attested session (SESSION_REQUIRED): key material, plaintext and even
 * random bytes (which callers use as keys) travel only inside it.
 */
const PRE_SESSION_OPERATIONS: ReadonlySet<string> = new Set(['health', 'describe']);

function isClientHello(decoded: unknown): boolean {
  return (
    typeof decoded === 'object' &&
    decoded !== null &&
    (decoded as Record<string, unknown>)['t'] === 'client-hello'
  );
}

function serveConnection(socket: net.Socket, opts: EnclaveServerOptions): void {
  const connectionId = nextConnectionId++;
  const log = opts.logger.child({ conn: connectionId });
  const decoder = new StreamFrameDecoder();
  const inFlight = new Set<number>();
  let closed = false;
  /** The attested session, once the handshake completed; `handshake` while it runs (frames wait behind it). */
  let session: ServerSession | undefined;
  let handshake: Promise<void> | undefined;
  const caller: Caller = { principal: ANONYMOUS, binder: undefined, workload: undefined };

  const write = (body: Uint8Array): void => {
    if (closed) return;
    // Frames written in one tick leave in one syscall (under load many responses complete together).
    if (!socket.writableCorked) {
      socket.cork();
      process.nextTick(() => socket.uncork());
    }
    if (!socket.write(encodeStreamFrame(body))) socket.pause();
  };
  /** Sends a response: sealed inside the session (the plaintext body is zeroed after sealing), else as is. */
  const send = (body: Uint8Array): void => {
    if (closed) return;
    if (session === undefined) {
      write(body);
      return;
    }
    try {
      write(session.send.seal(body));
    } catch (err) {
      log.warn({ code: (err as EkmsError).code }, 'cannot seal a record; closing');
      end();
    } finally {
      body.fill(0);
    }
  };
  const end = (): void => {
    closed = true;
    socket.end();
    // Keep reading (and discarding, see 'data') so that the peer's end of the stream is seen and the socket closes.
    socket.resume();
    /* Precondition: an ended session's keys are zeroed now, not when the peer (the host) closes its half. */
    session?.destroy();
  };
  /** True while a handshake runs: reading stays paused (frames behind it would otherwise pile up in memory). */
  let handshaking = false;
  socket.on('drain', () => {
    if (!handshaking) socket.resume();
  });

  const handle = async (frame: Uint8Array, decodedAlready?: unknown): Promise<void> => {
    let decoded: unknown = decodedAlready;
    if (decoded === undefined) {
      try {
        decoded = decodeCbor(frame);
      } catch (err) {
        log.warn({ code: (err as EkmsError).code, bytes: frame.length }, 'undecodable frame');
        send(encodeError(null, err));
        return;
      }
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
      /* Precondition: outside a session only liveness and public facts are answered. */
      if (session === undefined && !PRE_SESSION_OPERATIONS.has(req.op)) {
        throw new SessionError(
          'SESSION_REQUIRED',
          `${req.op} needs an attested session (docs/protocol.md §5)`,
        );
      }
      inFlight.add(req.id);
      const audited = opts.context.audit !== undefined && !UNAUDITED_OPERATIONS.has(req.op);
      try {
        let digest: Uint8Array | undefined;
        const request: RequestInfo = {
          get digest(): Uint8Array {
            digest ??= new Uint8Array(createHash('sha256').update(frame).digest());
            return digest;
          },
        };
        let result: Params;
        try {
          /* Precondition: once the log is broken (a failed append), an audited request is refused before it acts (a
             retried CreateKey would otherwise create keys unaudited). A request already running when an append fails
             still acts and is then refused without a record: that window is inherent (docs/audit.md §2). */
          const broken = audited ? (opts.context.audit as AuditLog).failure : undefined;
          if (broken !== undefined) {
            throw new AuditError(
              'AUDIT_UNAVAILABLE',
              'the audit log cannot record this request; it was not run',
              {
                cause: broken,
              },
            );
          }
          result = await op(req.params, opts.context, caller, request);
        } catch (err) {
          if (audited) await auditOutcome(req, undefined, err);
          throw err;
        }
        try {
          /* Precondition: a request is answered only once its audit record is chained and handed to the host (its
             fsync is awaited only when too many are pending: see auditOutcome); a failure to record refuses it. */
          if (audited) await auditOutcome(req, result, undefined);
          send(encodeOk(req.id, result));
        } finally {
          wipeSecrets(result);
        }
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

  /**
   * Records one request's outcome in the audit log (docs/audit.md). A failure to record an allowed request fails
   * the request (AUDIT_UNAVAILABLE); a failure to record a refusal is logged and the refusal still goes out.
   */
  const auditOutcome = async (req: Request, result: Params | undefined, err: unknown): Promise<void> => {
    const audit = opts.context.audit as AuditLog;
    const code = err === undefined ? null : err instanceof EkmsError ? err.code : 'INTERNAL_ERROR';
    const event: AuditEvent = {
      principal: caller.principal.authentication === 'none' ? null : caller.principal.name,
      authentication:
        caller.principal.authentication === 'signature' && caller.workload !== undefined
          ? 'signature+attestation'
          : caller.principal.authentication === 'unauthenticated-admin'
            ? 'none'
            : caller.principal.authentication,
      attested:
        caller.workload === undefined
          ? null
          : { type: caller.workload.claims.type, measurement: caller.workload.claims.measurement },
      operation: req.op,
      keyId: auditKeyId(req.params, result),
      keyVersion: typeof result?.['keyVersion'] === 'number' ? result['keyVersion'] : null,
      context: auditContext(req.params),
      outcome: code === null ? 'allowed' : DENIAL_CODES.has(code) ? 'denied' : 'error',
      code,
      requestId: `${connectionId}.${req.id}`,
    };
    const refuse = (cause: unknown): never => {
      throw new AuditError(
        'AUDIT_UNAVAILABLE',
        'the audit log cannot record this request; it was not answered',
        {
          cause,
        },
      );
    };
    /* Precondition: an allowed request is answered only while the audit log works (a failed append breaks it). */
    if (err === undefined && audit.failure !== undefined) refuse(audit.failure);
    // The record is chained (its seq and hash fixed) and sent to the host now, before the answer goes out; its
    // durability on the host's disk is awaited only when too many are pending (docs/audit.md: the host can drop
    // lines anyway, which the chain and the checkpoints reveal; waiting for every fsync would cost a disk flush per
    // request).
    // Dual control in the trail: each approval that counted for a quorum-protected operation is its own event,
    // in the approver's name, right after the operation's (same request id; operation "<Op>.approval").
    const approvers = result?.['approvedBy'];
    const approvals: AuditEvent[] = Array.isArray(approvers)
      ? approvers
          .filter((a): a is string => typeof a === 'string')
          .map((approver) => ({
            ...event,
            principal: approver,
            authentication: 'signature' as const,
            attested: null,
            operation: `${req.op}.approval`,
          }))
      : [];
    const written = Promise.all([audit.record(event), ...approvals.map((a) => audit.record(a))]);
    auditPending += 1;
    const settled = written.then(
      () => {
        auditPending -= 1;
      },
      (auditErr: unknown) => {
        auditPending -= 1;
        log.error({ code: (auditErr as EkmsError).code, op: req.op }, 'audit record failed');
        if (err === undefined) refuse(auditErr);
      },
    );
    if (auditPending > MAX_AUDIT_PENDING) await settled;
    else settled.catch(() => undefined);
  };

  /** Runs the handshake for a ClientHello; on failure answers in plaintext and ends the connection. */
  const startSession = async (hello: Uint8Array): Promise<void> => {
    try {
      const { reply, session: s } = await acceptSession(opts.context.identity, hello);
      if (closed) return s.destroy();
      write(reply);
      session = s;
      caller.binder = s.binder;
      log.debug({ suite: s.suite }, 'session established');
    } catch (err) {
      log.info({ code: (err as EkmsError).code }, 'handshake refused');
      write(encodeError(null, err));
      end();
    }
  };

  const onFrame = (frame: Uint8Array): void => {
    if (session !== undefined) {
      let plaintext: Uint8Array;
      try {
        plaintext = session.receive.open(frame);
      } catch (err) {
        log.warn(
          { code: (err as EkmsError).code, seq: session.receive.sequence },
          'record refused; ending the session',
        );
        send(encodeError(null, err));
        end();
        return;
      }
      void handle(plaintext).finally(() => plaintext.fill(0));
      return;
    }
    let decoded: unknown;
    try {
      decoded = decodeCbor(frame);
    } catch (err) {
      log.warn({ code: (err as EkmsError).code, bytes: frame.length }, 'undecodable frame');
      write(encodeError(null, err));
      return;
    }
    if (isClientHello(decoded)) {
      /* Precondition: nothing more is read while the handshake runs (it may wait for the attestor); the frames of
         this chunk wait behind it, the next chunk only once it is done. */
      handshaking = true;
      socket.pause();
      handshake = startSession(frame).finally(() => {
        handshaking = false;
        if (!closed && !socket.writableNeedDrain) socket.resume();
      });
      return;
    }
    void handle(frame, decoded);
  };

  socket.on('data', (chunk: Buffer) => {
    /* Precondition: once the enclave ended a connection it reads nothing more from it (no new handshake, no request). */
    if (closed) return;
    let frames: Uint8Array[];
    try {
      frames = decoder.push(chunk);
    } catch (err) {
      log.warn({ code: (err as EkmsError).code }, 'frame stream broken; closing');
      send(encodeError(null, err));
      end();
      return;
    }
    for (const f of frames) {
      if (closed) break;
      // Frames behind a running handshake wait for it, in order (they are records under its keys).
      if (handshake !== undefined && session === undefined && !closed) {
        const prior = handshake;
        handshake = prior.then(() => {
          if (!closed) onFrame(f);
        });
      } else {
        onFrame(f);
      }
    }
  });
  socket.on('end', () => {
    try {
      decoder.end();
    } catch (err) {
      log.info({ code: (err as EkmsError).code }, 'peer truncated a frame');
    }
    end();
  });
  socket.on('error', (err) => log.info({ err: err.message }, 'connection error'));
  socket.on('close', () => {
    closed = true;
    session?.destroy();
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
