/**
 * The client SDK: `connect(endpoint)` → an `EkmsClient` that sends requests by id, matches responses, applies
 * timeouts and turns every failure into a typed `EkmsError`.
 *
 * Connections are lazy and self-healing: when a connection ends (e.g. the enclave restarted), requests in flight
 * fail with the retriable code the host gave (ENCLAVE_UNAVAILABLE), and the next request opens a new connection.
 */
import { scanCbor } from '../shared/cbor.js';
import { type EkmsError, fromWireError, ProtocolError, TransportError } from '../shared/errors.js';
import { LIMITS } from '../shared/limits.js';
import { decodeResponse, encodeRequest, type Params } from '../shared/messages.js';
import { type ClientTransport, openTransport } from './transport.js';

export interface ConnectOptions {
  /** Per-request timeout (default 10 s). */
  readonly timeoutMs?: number;
  /** Connection establishment timeout (default 5 s). */
  readonly connectTimeoutMs?: number;
}

export interface RequestOptions {
  readonly timeoutMs?: number;
}

interface Pending {
  resolve(result: Params): void;
  reject(err: EkmsError): void;
  timer: NodeJS.Timeout;
}

class Connection {
  readonly pending = new Map<number, Pending>();
  transport: ClientTransport | undefined;
  closed = false;
  /** A retriable error the host announced with `id: null` just before closing. */
  notice: EkmsError | undefined;

  onFrame(frame: Uint8Array): void {
    let res: ReturnType<typeof decodeResponse>;
    try {
      res = decodeResponse(frame);
    } catch {
      // A response we cannot read cannot be matched to a request; the requests time out.
      return;
    }
    if (res.id === null) {
      // A retriable error without an id is the host's closing notice: this connection is over. Fail what is in
      // flight now, so the next request opens a fresh connection instead of racing the close.
      if (!res.ok && res.error.retriable) {
        this.notice = fromWireError(res.error);
        this.onClose(this.notice);
        this.transport?.close();
      }
      return;
    }
    const p = this.pending.get(res.id);
    if (!p) return;
    this.pending.delete(res.id);
    clearTimeout(p.timer);
    if (res.ok) p.resolve(res.result);
    else p.reject(fromWireError(res.error));
  }

  onClose(reason: EkmsError): void {
    if (this.closed) return;
    this.closed = true;
    const err = this.notice ?? reason;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }
}

function userClosed(): TransportError {
  return new TransportError('CONNECTION_CLOSED', 'the client was closed');
}

export class EkmsClient {
  private conn: Connection | undefined;
  private connecting: Promise<Connection> | undefined;
  private nextId = 1;
  private closedByUser = false;

  constructor(
    readonly endpoint: string,
    private readonly opts: ConnectOptions = {},
  ) {}

  /** Opens the connection now (otherwise the first request does). @throws TransportError CONNECTION_FAILED */
  async open(): Promise<void> {
    await this.connection();
  }

  private async connection(): Promise<Connection> {
    if (this.closedByUser) throw userClosed();
    if (this.conn && !this.conn.closed) return this.conn;
    if (!this.connecting) {
      const conn = new Connection();
      this.connecting = openTransport(
        this.endpoint,
        { onFrame: (f) => conn.onFrame(f), onClose: (r) => conn.onClose(r) },
        this.opts.connectTimeoutMs ?? 5_000,
      )
        .then((t) => {
          conn.transport = t;
          if (this.closedByUser) {
            // close() was called while we were connecting: do not leave this connection open behind the caller.
            t.close();
            conn.onClose(userClosed());
            throw userClosed();
          }
          this.conn = conn;
          return conn;
        })
        .finally(() => {
          this.connecting = undefined;
        });
    }
    return this.connecting;
  }

  /**
   * Sends one request and resolves with its result map.
   * @throws EkmsError with the server's code, or TransportError REQUEST_TIMEOUT / CONNECTION_* / ENCLAVE_UNAVAILABLE,
   *   TransportError TOO_MANY_IN_FLIGHT when the local in-flight limit is reached, ProtocolError REQUEST_INVALID
   *   when the request cannot be encoded within the protocol's bounds (too large, tags, non-text keys…).
   */
  async request(op: string, params: Params = {}, options: RequestOptions = {}): Promise<Params> {
    const conn = await this.connection();
    if (conn.pending.size >= LIMITS.maxInFlightPerConnection) {
      throw new TransportError(
        'TOO_MANY_IN_FLIGHT',
        `more than ${LIMITS.maxInFlightPerConnection} requests in flight`,
      );
    }
    const id = this.nextId++;
    let frame: Uint8Array;
    try {
      frame = encodeRequest(id, op, params);
      // The enclave scans with the same bounds. What it would refuse (oversized, too deep, a Date or Set that
      // cbor-x writes as a tag, non-text map keys…) it answers with id null, which we could not match: the request
      // would only time out. Refuse it here instead.
      scanCbor(frame);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new ProtocolError('REQUEST_INVALID', `the request cannot be sent: ${why}`, { cause: err });
    }
    const timeoutMs = options.timeoutMs ?? this.opts.timeoutMs ?? 10_000;
    return new Promise<Params>((resolve, reject) => {
      if (conn.closed) {
        // The connection ended between connection() and now; its requests have already been failed.
        reject(conn.notice ?? new TransportError('CONNECTION_CLOSED', 'the connection closed'));
        return;
      }
      const timer = setTimeout(() => {
        conn.pending.delete(id);
        reject(new TransportError('REQUEST_TIMEOUT', `${op} got no response within ${timeoutMs} ms`));
      }, timeoutMs);
      conn.pending.set(id, { resolve, reject, timer });
      conn.transport!.send(frame);
    });
  }

  /** Liveness of the enclave. */
  async health(): Promise<{ status: string; uptimeMs: number }> {
    const r = await this.request('health');
    return { status: String(r['status']), uptimeMs: Number(r['uptimeMs']) };
  }

  /** Version, attestor kind and measurement the enclave reports (not yet attested: see docs/protocol.md). */
  async describe(): Promise<{ version: string; attestor: string; simulated: boolean; measurement: string }> {
    const r = await this.request('describe');
    if (
      typeof r['measurement'] !== 'string' ||
      typeof r['version'] !== 'string' ||
      typeof r['attestor'] !== 'string'
    ) {
      throw new ProtocolError('MESSAGE_INVALID', 'describe returned an ill-typed result');
    }
    return {
      version: r['version'],
      attestor: r['attestor'],
      simulated: r['simulated'] === true,
      measurement: r['measurement'],
    };
  }

  /** `length` (1–1024) random bytes from the enclave's CSPRNG. */
  async generateRandom(length: number): Promise<Uint8Array> {
    const r = await this.request('generateRandom', { length });
    const random = r['random'];
    if (!(random instanceof Uint8Array) || random.length !== length) {
      throw new ProtocolError('MESSAGE_INVALID', 'generateRandom returned the wrong number of bytes');
    }
    return random;
  }

  /** Closes the connection; requests in flight fail at once with CONNECTION_CLOSED. */
  close(): void {
    this.closedByUser = true;
    // Fail what is in flight now rather than when the closing handshake completes: a host that is not reading
    // (e.g. holding the connection while the enclave restarts) would otherwise delay it until the timeouts.
    this.conn?.onClose(userClosed());
    this.conn?.transport?.close();
  }
}

/**
 * Connects to an ekms endpoint (`ws://HOST:PORT` or `unix:PATH`).
 * @throws TransportError CONNECTION_FAILED
 */
export async function connect(endpoint: string, options: ConnectOptions = {}): Promise<EkmsClient> {
  const client = new EkmsClient(endpoint, options);
  await client.open();
  return client;
}
