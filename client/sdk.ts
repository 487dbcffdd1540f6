/**
 * The client SDK: `connect(endpoint)` → an `EkmsClient` that sends requests by id, matches responses, applies
 * timeouts and turns every failure into a typed `EkmsError`.
 *
 * Connections are lazy and self-healing: when a connection ends (e.g. the enclave restarted), requests in flight
 * fail with the retriable code the host gave (ENCLAVE_UNAVAILABLE), and the next request opens a new connection.
 */

import { createHash, type KeyObject, sign } from 'node:crypto';
import type { Transform } from 'node:stream';
import type { Claims } from '../attestation/claims.js';
import { scanCbor } from '../shared/cbor.js';
import { contextObject, type EncryptionContextInput } from '../shared/encryption-context.js';
import { ConfigError, EkmsError, fromWireError, ProtocolError, TransportError } from '../shared/errors.js';
import { LIMITS } from '../shared/limits.js';
import { decodeResponse, encodeRequest, type Params } from '../shared/messages.js';
import { clientAuthContent, type EvidenceBundle, workloadBinding } from '../shared/session.js';
import { SessionError } from '../shared/session-errors.js';
import {
  checkStreamLayoutOptions,
  createDecryptStream,
  createEncryptStream,
  type StreamFormatVersion,
} from './envelope-stream.js';
import {
  type AliasListPage,
  type CiphertextResult,
  type DataKey,
  type DecryptResult,
  type KeyListPage,
  type KeyMetadata,
  parseAliasList,
  parseCiphertext,
  parseDataKey,
  parseDecrypt,
  parseKeyList,
  parseKeyMetadata,
  parseReEncrypt,
  type ReEncryptResult,
} from './kms-types.js';
import { type ClientSession, type EnclaveTrust, startClientHandshake } from './session.js';
import { type ClientTransport, openTransport } from './transport.js';

export {
  type Approval,
  type ApprovalDocument,
  type ApprovalRequestDocument,
  approvalDocument,
  approvalFromDocument,
  approvalRequestDigest,
  approvalRequestDocument,
  type QuorumDefinition,
  signApproval,
} from './approval.js';
export { openRelease, type Release } from './release.js';
export type { EnclaveTrust } from './session.js';

import {
  type Approval,
  type ApprovalRequestDocument,
  approvalRequestDocument,
  type QuorumDefinition,
} from './approval.js';
import { parseRelease, type Release } from './release.js';

/** Approvals for an operation on a protected key (docs/key-policy.md §10). */
export interface ApprovalOptions {
  readonly approvals?: readonly Approval[];
}

/** The `approvals` wire parameter, when there are any. */
function approvalsParam(options: ApprovalOptions | undefined): Params {
  const list = options?.approvals;
  if (list === undefined || list.length === 0) return {};
  return {
    approvals: list.map((a) => ({
      approver: a.approver,
      digest: a.digest,
      expiresAt: a.expiresAt,
      signature: a.signature,
    })),
  };
}

/** Who a client authenticated as (the `authenticate` result). */
export interface AuthenticatedIdentity {
  readonly principal: string;
  readonly admin: boolean;
  readonly workload: { type: string; measurement: string; debug: boolean; simulated: boolean } | null;
}

export type * from './kms-types.js';

export interface CreateKeyInput {
  readonly description?: string;
  /** Suite name (default AES-256-GCM/KDF-CTR-HMAC-SHA-512/COMMIT-v2; ciphertexts of every suite open). */
  readonly suite?: string;
  /** Turns on automatic rotation with this period. */
  readonly rotationPeriodDays?: number;
  readonly aliasName?: string;
  /** Attestation policy (JSON text) that a workload's claims must satisfy for releases (docs/protocol.md §6). */
  readonly releasePolicy?: string;
  /** Protects the key from the start: M-of-N admin approvals for protected operations (docs/key-policy.md §10). */
  readonly quorum?: QuorumDefinition;
}

export interface DataKeyOptions {
  readonly encryptionContext?: EncryptionContextInput;
  /** AES_256 (default, 32 bytes) or AES_128 (16 bytes). */
  readonly keySpec?: 'AES_256' | 'AES_128';
  /** 1..1024 bytes instead of a key spec. */
  readonly numberOfBytes?: number;
}

export interface StreamEncryptOptions {
  readonly encryptionContext?: EncryptionContextInput;
  /** Plaintext bytes per chunk (default: the envelope stream's). */
  readonly chunkSize?: number;
  /**
   * Envelope stream format version (default 2; docs/ciphertext-format.md §5). 1 only for readers built before
   * format 2; every reader of this SDK reads both.
   */
  readonly formatVersion?: StreamFormatVersion;
}

/** Drops undefined fields (CBOR would encode them as `undefined`, which the enclave refuses). */
function defined(input: object): Params {
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
}

/** An encryption context as a plain map for the wire (Map and pair lists are accepted too). */
function contextMap(context: EncryptionContextInput): Record<string, string> {
  // Validated here (duplicates in a pair list, reserved keys, limits → CONTEXT_INVALID) before it is flattened.
  return contextObject(context);
}

function dataKeyParams(keyId: string, options: DataKeyOptions): Params {
  return defined({
    keyId,
    keySpec: options.keySpec,
    numberOfBytes: options.numberOfBytes,
    encryptionContext: contextMap(options.encryptionContext ?? {}),
  });
}

export interface ConnectOptions {
  /**
   * What to trust about the enclave (required): every connection is an attested session, checked against this
   * before any request is sent (docs/protocol.md §5).
   */
  readonly trust?: EnclaveTrust;
  /** Authenticate as a registered principal: its Ed25519 key (SPKI DER public key and private key object). */
  readonly principal?: PrincipalCredentials;
  /** Authenticate as an attested workload: its evidence source and X-Wing recipient public key. */
  readonly workload?: WorkloadCredentials;
  /** Per-request timeout (default 10 s). */
  readonly timeoutMs?: number;
  /** Connection establishment timeout, handshake included (default 5 s). */
  readonly connectTimeoutMs?: number;
}

export interface PrincipalCredentials {
  /** SPKI DER of the Ed25519 public key. */
  readonly publicKey: Uint8Array;
  readonly privateKey: KeyObject;
}

export interface WorkloadCredentials {
  /** The X-Wing public key (1216 bytes) released keys are wrapped to; the workload keeps the secret key. */
  readonly recipientPublicKey: Uint8Array;
  /**
   * Produces evidence whose user_data (Nitro) / REPORT_DATA (SEV-SNP) is exactly `binding` (64 bytes:
   * SHA-256(recipient) ‖ SHA-256(session)); on real hardware: /dev/nsm or the configfs-tsm report interface.
   */
  evidence(binding: Uint8Array): Promise<EvidenceBundle>;
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
  /** The attested session, once established; before that, the handshake waits for the ServerHello. */
  session: ClientSession | undefined;
  onHandshakeFrame: ((frame: Uint8Array) => void) | undefined;
  onHandshakeClose: ((reason: EkmsError) => void) | undefined;

  /** Seals a request into the session. */
  send(frame: Uint8Array): void {
    if (this.session === undefined) throw new TransportError('CONNECTION_CLOSED', 'no session');
    this.transport!.send(this.session.send.seal(frame));
  }

  onFrame(frame: Uint8Array): void {
    if (this.session === undefined) {
      this.onHandshakeFrame?.(frame);
      return;
    }
    let plaintext: Uint8Array;
    try {
      plaintext = this.session.receive.open(frame);
    } catch (err) {
      // Not a record of this session: either the host's own closing notice (plaintext, id null, retriable — the
      // host may always end a connection), or tampering, which ends the session with SESSION_RECORD_INVALID.
      const notice = hostNotice(frame);
      if (notice !== undefined) {
        this.notice = notice;
        this.onClose(notice);
      } else {
        this.onClose(err as EkmsError);
      }
      this.transport?.close();
      return;
    }
    let res: ReturnType<typeof decodeResponse>;
    try {
      res = decodeResponse(plaintext);
    } catch {
      // A response we cannot read cannot be matched to a request; the requests time out.
      return;
    }
    if (res.id === null) {
      // Inside the session an id-null error comes from the enclave itself: SESSION_RECORD_INVALID means it saw a
      // tampered, dropped or replayed record and ends the session; a retriable one ends the connection too. Fail
      // what is in flight now, so the next request opens a fresh connection instead of racing the close.
      if (!res.ok && (res.error.retriable || res.error.code === 'SESSION_RECORD_INVALID')) {
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
    this.onHandshakeClose?.(reason);
    if (this.closed) return;
    this.closed = true;
    this.session?.destroy();
    const err = this.notice ?? reason;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }
}

/** The host's closing notice: a plaintext error response with id null and a retriable code. */
function hostNotice(frame: Uint8Array): EkmsError | undefined {
  try {
    const res = decodeResponse(frame);
    if (res.id === null && !res.ok && res.error.retriable) return fromWireError(res.error);
  } catch {
    // not a plaintext response
  }
  return undefined;
}

/**
 * Runs the handshake on a fresh connection: sends the ClientHello, waits for the ServerHello (or the enclave's
 * plaintext refusal), verifies it against `trust`, and installs the session.
 */
function handshake(conn: Connection, trust: EnclaveTrust, timeoutMs: number): Promise<void> {
  const hs = startClientHandshake(trust);
  return new Promise<void>((resolve, reject) => {
    const done = (err?: EkmsError): void => {
      clearTimeout(timer);
      conn.onHandshakeFrame = undefined;
      conn.onHandshakeClose = undefined;
      if (err === undefined) resolve();
      else {
        hs.abort();
        reject(err);
      }
    };
    const timer = setTimeout(
      () => done(new TransportError('CONNECTION_FAILED', `no handshake answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    conn.onHandshakeClose = (reason) => done(reason);
    conn.onHandshakeFrame = (frame) => {
      // A plaintext error answer (the enclave refused the ClientHello, or the host's notice).
      try {
        const res = decodeResponse(frame);
        if (!res.ok) return done(fromWireError(res.error));
      } catch {
        // not a response: a ServerHello
      }
      try {
        conn.session = hs.finish(frame);
        done();
      } catch (err) {
        done(err instanceof EkmsError ? err : new SessionError('SESSION_HANDSHAKE_INVALID', String(err)));
      }
    };
    conn.transport!.send(hs.clientHello);
  });
}

function userClosed(): TransportError {
  return new TransportError('CONNECTION_CLOSED', 'the client was closed');
}

export class EkmsClient {
  private conn: Connection | undefined;
  private connecting: Promise<Connection> | undefined;
  private nextId = 1;
  private closedByUser = false;
  /** The connection being opened (transport or handshake in progress), so that close() can abort it. */
  private opening: Connection | undefined;

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
      const trust = this.opts.trust;
      /* Precondition: a client never talks to an enclave it has not verified (no trust, no connection). */
      if (trust === undefined) {
        throw new ConfigError(
          'CONFIG_INVALID',
          "connect needs options.trust (the profile's trust): the enclave must be attested",
        );
      }
      const conn = new Connection();
      this.opening = conn;
      this.connecting = openTransport(
        this.endpoint,
        { onFrame: (f) => conn.onFrame(f), onClose: (r) => conn.onClose(r) },
        this.opts.connectTimeoutMs ?? 5_000,
      )
        .then(async (t) => {
          conn.transport = t;
          if (this.closedByUser) {
            // close() was called while we were connecting: do not leave this connection open behind the caller.
            t.close();
            conn.onClose(userClosed());
            throw userClosed();
          }
          try {
            await handshake(conn, trust, this.opts.connectTimeoutMs ?? 5_000);
            // Authenticated before anyone else may use the connection: no request goes out as anonymous.
            await this.authenticate(conn);
            /* Precondition: close() during the handshake wins; the connection is not used. */
            if (this.closedByUser || conn.closed) throw userClosed();
            this.conn = conn;
          } catch (err) {
            if (this.conn === conn) this.conn = undefined;
            t.close();
            conn.onClose(err as EkmsError);
            throw err;
          }
          return conn;
        })
        .finally(() => {
          this.connecting = undefined;
          if (this.opening === conn) this.opening = undefined;
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
    return this.requestOn(await this.connection(), op, params, options);
  }

  /** The session's proof of who we are (principal signature and/or workload evidence), sent once per session. */
  private async authenticate(conn: Connection): Promise<void> {
    const { principal, workload } = this.opts;
    if (principal === undefined && workload === undefined) return;
    const binder = conn.session!.binder;
    const params: Record<string, unknown> = {};
    if (principal !== undefined) {
      params['publicKey'] = principal.publicKey;
      params['signature'] = new Uint8Array(sign(null, clientAuthContent(binder), principal.privateKey));
    }
    if (workload !== undefined) {
      const digest = createHash('sha256').update(workload.recipientPublicKey).digest();
      const evidence = await workload.evidence(workloadBinding(digest, binder));
      params['evidence'] = {
        type: evidence.type,
        document: evidence.document,
        certificates: [...evidence.certificates],
      };
      params['recipient'] = workload.recipientPublicKey;
    }
    const r = await this.requestOn(conn, 'authenticate', params);
    this.identity = {
      principal: String(r['principal']),
      admin: r['admin'] === true,
      workload: (r['workload'] as AuthenticatedIdentity['workload']) ?? null,
    };
  }

  /** Who this client authenticated as in its current session (null before, or without credentials). */
  identity: AuthenticatedIdentity | null = null;

  /** The enclave's verified attestation claims of the current session. */
  get enclaveClaims(): Claims | undefined {
    return this.conn?.session?.claims;
  }

  /**
   * Lowercase hex SHA-256 of this client's workload recipient key (ConnectOptions.workload), as `releaseKey` of a
   * protected key names it (`recipientDigest`, signed by the approvers); undefined without workload credentials.
   */
  get recipientDigest(): string | undefined {
    const pk = this.opts.workload?.recipientPublicKey;
    return pk === undefined ? undefined : createHash('sha256').update(pk).digest('hex');
  }

  /** The attested enclave's identity key of the current session (what `openRelease` verifies statements with). */
  get enclaveIdentity(): Uint8Array | undefined {
    const identity = this.conn?.session?.identity;
    return identity === undefined ? undefined : Uint8Array.from(identity);
  }

  private requestOn(
    conn: Connection,
    op: string,
    params: Params,
    options: RequestOptions = {},
  ): Promise<Params> {
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
      try {
        conn.send(frame);
      } catch (err) {
        clearTimeout(timer);
        conn.pending.delete(id);
        reject(err as EkmsError);
      } finally {
        frame.fill(0);
      }
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

  // ------------------------------------------------------------------------------------ key service (AWS KMS-like)
  // Each method throws the service's codes (docs/errors.md): KEY_NOT_FOUND, KEY_DISABLED, KEY_PENDING_DELETION,
  // KEY_DESTROYED, DECRYPT_FAILED, CONTEXT_INVALID, ACCESS_DENIED, STORE_*…, and MESSAGE_INVALID for an ill-typed result.

  /** Creates a key (KEK). `suite` is a suite name; `aliasName` creates an alias with it. */
  async createKey(input: CreateKeyInput = {}): Promise<KeyMetadata> {
    const { quorum, ...rest } = input;
    const params = {
      ...defined(rest),
      ...(quorum === undefined
        ? {}
        : { quorum: { threshold: quorum.threshold, approvers: [...quorum.approvers] } }),
    };
    return parseKeyMetadata(await this.request('createKey', params));
  }

  async describeKey(keyId: string): Promise<KeyMetadata> {
    return parseKeyMetadata(await this.request('describeKey', { keyId }));
  }

  /** One page of keys, ordered by key id; pass the previous page's `nextMarker` as `marker`. */
  async listKeys(input: { limit?: number; marker?: string } = {}): Promise<KeyListPage> {
    return parseKeyList(await this.request('listKeys', defined(input)));
  }

  async enableKey(keyId: string): Promise<KeyMetadata> {
    return parseKeyMetadata(await this.request('enableKey', { keyId }));
  }

  async disableKey(keyId: string, options?: ApprovalOptions): Promise<KeyMetadata> {
    return parseKeyMetadata(await this.request('disableKey', { keyId, ...approvalsParam(options) }));
  }

  /** Encrypts at most 4096 bytes under the key's current version (larger data: `encryptStream`). */
  async encrypt(
    keyId: string,
    plaintext: Uint8Array,
    encryptionContext: EncryptionContextInput = {},
  ): Promise<CiphertextResult> {
    return parseCiphertext(
      await this.request('encrypt', { keyId, plaintext, encryptionContext: contextMap(encryptionContext) }),
    );
  }

  /** Decrypts a ciphertext blob; `keyId`, if given, must be the key that made it (KEY_ID_MISMATCH). */
  async decrypt(
    ciphertextBlob: Uint8Array,
    encryptionContext: EncryptionContextInput = {},
    keyId?: string,
  ): Promise<DecryptResult> {
    return parseDecrypt(
      await this.request('decrypt', {
        ciphertextBlob,
        encryptionContext: contextMap(encryptionContext),
        ...(keyId === undefined ? {} : { keyId }),
      }),
    );
  }

  /** Re-encrypts under another key (or context) without the plaintext leaving the enclave. */
  async reEncrypt(input: {
    ciphertextBlob: Uint8Array;
    destinationKeyId: string;
    sourceEncryptionContext?: EncryptionContextInput;
    destinationEncryptionContext?: EncryptionContextInput;
    sourceKeyId?: string;
  }): Promise<ReEncryptResult> {
    return parseReEncrypt(
      await this.request(
        'reEncrypt',
        defined({
          ciphertextBlob: input.ciphertextBlob,
          destinationKeyId: input.destinationKeyId,
          sourceKeyId: input.sourceKeyId,
          sourceEncryptionContext: contextMap(input.sourceEncryptionContext ?? {}),
          destinationEncryptionContext: contextMap(input.destinationEncryptionContext ?? {}),
        }),
      ),
    );
  }

  /** A fresh data key, in plaintext and sealed under the key. The caller zeroes `plaintext` once done. */
  async generateDataKey(keyId: string, options: DataKeyOptions = {}): Promise<DataKey> {
    return parseDataKey(await this.request('generateDataKey', dataKeyParams(keyId, options)));
  }

  /** A fresh data key, sealed only (for a process that will decrypt it later). */
  async generateDataKeyWithoutPlaintext(
    keyId: string,
    options: DataKeyOptions = {},
  ): Promise<CiphertextResult> {
    return parseCiphertext(
      await this.request('generateDataKeyWithoutPlaintext', dataKeyParams(keyId, options)),
    );
  }

  /** Adds a key version now; new ciphertexts use it, old ones keep decrypting. */
  async rotateKey(keyId: string): Promise<KeyMetadata> {
    return parseKeyMetadata(await this.request('rotateKey', { keyId }));
  }

  async enableKeyRotation(keyId: string, rotationPeriodDays?: number): Promise<KeyMetadata> {
    return parseKeyMetadata(await this.request('enableKeyRotation', defined({ keyId, rotationPeriodDays })));
  }

  async disableKeyRotation(keyId: string): Promise<KeyMetadata> {
    return parseKeyMetadata(await this.request('disableKeyRotation', { keyId }));
  }

  /** Schedules destruction in 7–30 days (default 30); the key is unusable meanwhile. */
  async scheduleKeyDeletion(
    keyId: string,
    pendingWindowInDays?: number,
    options?: ApprovalOptions,
  ): Promise<KeyMetadata> {
    return parseKeyMetadata(
      await this.request('scheduleKeyDeletion', {
        ...defined({ keyId, pendingWindowInDays }),
        ...approvalsParam(options),
      }),
    );
  }

  /** Cancels a scheduled deletion; the key becomes Disabled. */
  async cancelKeyDeletion(keyId: string): Promise<KeyMetadata> {
    return parseKeyMetadata(await this.request('cancelKeyDeletion', { keyId }));
  }

  async createAlias(aliasName: string, targetKeyId: string): Promise<void> {
    await this.request('createAlias', { aliasName, targetKeyId });
  }

  async updateAlias(aliasName: string, targetKeyId: string): Promise<void> {
    await this.request('updateAlias', { aliasName, targetKeyId });
  }

  async deleteAlias(aliasName: string): Promise<void> {
    await this.request('deleteAlias', { aliasName });
  }

  async listAliases(input: { keyId?: string; limit?: number; marker?: string } = {}): Promise<AliasListPage> {
    return parseAliasList(await this.request('listAliases', defined(input)));
  }

  /**
   * Envelope encryption of any amount of data: one GenerateDataKey per object, then chunked AEAD in this process
   * (client/envelope-stream.ts). Returns a Transform: pipe plaintext in, the envelope stream comes out.
   */
  async encryptStream(keyId: string, options: StreamEncryptOptions = {}): Promise<Transform> {
    const context = options.encryptionContext ?? {};
    // Bad layout options fail before the KMS is asked for a data key.
    checkStreamLayoutOptions(options);
    const dk = await this.generateDataKey(keyId, { encryptionContext: context });
    try {
      return createEncryptStream({
        dataKey: dk.plaintext,
        encryptedDataKey: dk.ciphertextBlob,
        keyId: dk.keyId,
        context,
        ...(options.chunkSize === undefined ? {} : { chunkSize: options.chunkSize }),
        ...(options.formatVersion === undefined ? {} : { formatVersion: options.formatVersion }),
      });
    } finally {
      dk.plaintext.fill(0);
    }
  }

  /**
   * Decrypts an envelope stream: reads its header, has the enclave decrypt the data key (with the context from the
   * header, which must equal `encryptionContext` when given: CONTEXT_MISMATCH), then verifies every chunk.
   */
  decryptStream(options: { encryptionContext?: EncryptionContextInput } = {}): Transform {
    return createDecryptStream({
      ...(options.encryptionContext === undefined ? {} : { context: options.encryptionContext }),
      resolveDataKey: async (header) =>
        (await this.decrypt(header.encryptedDataKey, header.context, header.keyId)).plaintext,
    });
  }

  // ------------------------------------------------------------------------------------ access control (issue 6)
  // docs/key-policy.md. Results are the enclave's maps (JSON-like); denials are ACCESS_DENIED with the reason.

  /** Registers a principal (admins): name, Ed25519 public key (SPKI DER), roles ('admin' | 'user'), tags. */
  async createPrincipal(input: {
    name: string;
    publicKey: Uint8Array;
    roles: readonly string[];
    tags?: Readonly<Record<string, string>>;
  }): Promise<Params> {
    return this.request('createPrincipal', defined({ ...input, roles: [...input.roles] }));
  }

  async listPrincipals(): Promise<Params> {
    return this.request('listPrincipals');
  }

  /** Sets a key policy (JSON text), or with null restores the default separation-of-duties policy. */
  async putKeyPolicy(keyId: string, policy: string | null, options?: ApprovalOptions): Promise<KeyMetadata> {
    return parseKeyMetadata(
      await this.request('putKeyPolicy', { keyId, policy, ...approvalsParam(options) }),
    );
  }

  /**
   * Protects a key with a quorum of admins, or (null) removes it; on a protected key this needs the current
   * quorum's approvals (docs/key-policy.md §10).
   */
  async putKeyQuorum(
    keyId: string,
    quorum: QuorumDefinition | null,
    options?: ApprovalOptions,
  ): Promise<KeyMetadata> {
    const q = quorum === null ? null : { threshold: quorum.threshold, approvers: [...quorum.approvers] };
    return parseKeyMetadata(
      await this.request('putKeyQuorum', { keyId, quorum: q, ...approvalsParam(options) }),
    );
  }

  /**
   * What approvers sign for `op` with `params` (keyId: an id or alias): resolves the key id and reads the key's
   * approval sequence with DescribeKey, then computes the request digest (shared/approval.ts).
   */
  async prepareApproval(op: string, params: Params & { keyId: string }): Promise<ApprovalRequestDocument> {
    const m = await this.describeKey(params.keyId);
    return approvalRequestDocument(op, m.keyId, m.quorum?.sequence ?? 0, params);
  }

  /** Sends a prepared request with its approvals; returns the operation's raw result. */
  async submitApproved(request: ApprovalRequestDocument, approvals: readonly Approval[]): Promise<Params> {
    return this.request(request.op, {
      ...request.params,
      keyId: request.keyId,
      ...approvalsParam({ approvals }),
    } as Params);
  }

  /** The key's effective policy: `{ policy: text, default: boolean }`. */
  async getKeyPolicy(keyId: string): Promise<{ policy: string; default: boolean }> {
    const r = await this.request('getKeyPolicy', { keyId });
    if (typeof r['policy'] !== 'string')
      throw new ProtocolError('MESSAGE_INVALID', 'getKeyPolicy: no policy');
    return { policy: r['policy'], default: r['default'] === true };
  }

  /** Findings about the key's policy and release policy. */
  async lintKeyPolicy(keyId: string): Promise<Array<{ code: string; message: string }>> {
    const r = await this.request('lintKeyPolicy', { keyId });
    return (r['findings'] as Array<{ code: string; message: string }>) ?? [];
  }

  /**
   * Delegates use operations on a key to a principal until it expires; returns the key id (resolved: never an
   * alias), the grant id and its expiry. On a protected key it needs the quorum's approvals (docs/key-policy.md
   * §10), and `approvedBy` names the approvers whose approvals counted.
   */
  async createGrant(
    keyId: string,
    grant: {
      grantee: string;
      operations: readonly string[];
      contextSubset?: Readonly<Record<string, string>>;
      expiresInSeconds?: number;
    },
    options?: ApprovalOptions,
  ): Promise<{ keyId: string; grantId: string; expiresAt: string; approvedBy?: string[] }> {
    const r = await this.request('createGrant', {
      ...defined({ keyId, ...grant, operations: [...grant.operations], contextSubset: grant.contextSubset }),
      ...approvalsParam(options),
    });
    const approvedBy = r['approvedBy'];
    return {
      keyId: String(r['keyId']),
      grantId: String(r['grantId']),
      expiresAt: String(r['expiresAt']),
      ...(Array.isArray(approvedBy) ? { approvedBy: approvedBy.map(String) } : {}),
    };
  }

  async listGrants(keyId: string): Promise<Params> {
    return this.request('listGrants', { keyId });
  }

  /** Revokes a grant at once; returns the key id (resolved: never an alias) and the grant id. */
  async revokeGrant(keyId: string, grantId: string): Promise<{ keyId: string; grantId: string }> {
    const r = await this.request('revokeGrant', { keyId, grantId });
    return { keyId: String(r['keyId']), grantId: String(r['grantId']) };
  }

  // ------------------------------------------------------------------------------------ attestation-gated release
  // These need a session authenticated with workload evidence (ConnectOptions.workload); results are opened with
  // `openRelease` (client/release.ts) using the workload's X-Wing secret key.

  /** Sets (or with null removes) a key's release policy (attestation policy JSON text). */
  async putKeyReleasePolicy(
    keyId: string,
    releasePolicy: string | null,
    options?: ApprovalOptions,
  ): Promise<KeyMetadata> {
    return parseKeyMetadata(
      await this.request('putKeyReleasePolicy', { keyId, releasePolicy, ...approvalsParam(options) }),
    );
  }

  /** A version (default current) of the key itself, wrapped to this session's attested recipient key. */
  async releaseKey(keyId: string, keyVersion?: number, options?: ApprovalOptions): Promise<Release> {
    // With approvals (a protected key) the request names its recipient: the approvers signed over it.
    const recipientDigest = options?.approvals === undefined ? undefined : this.recipientDigest;
    return parseRelease(
      await this.request('releaseKey', {
        ...defined({ keyId, keyVersion, recipientDigest }),
        ...approvalsParam(options),
      }),
    );
  }

  /** A new data key: the ciphertext blob, and the plaintext key only wrapped to the attested recipient key. */
  async generateDataKeyForRecipient(keyId: string, options: DataKeyOptions = {}): Promise<Release> {
    return parseRelease(
      await this.request('generateDataKey', { ...dataKeyParams(keyId, options), recipient: true }),
    );
  }

  /** Decrypts a ciphertext blob; the plaintext comes back only wrapped to the attested recipient key. */
  async decryptForRecipient(
    ciphertextBlob: Uint8Array,
    encryptionContext: EncryptionContextInput = {},
    keyId?: string,
  ): Promise<Release> {
    return parseRelease(
      await this.request(
        'decrypt',
        defined({ ciphertextBlob, encryptionContext: contextMap(encryptionContext), keyId, recipient: true }),
      ),
    );
  }

  /** Closes the connection; requests in flight fail at once with CONNECTION_CLOSED. */
  close(): void {
    this.closedByUser = true;
    // Fail what is in flight now rather than when the closing handshake completes: a host that is not reading
    // (e.g. holding the connection while the enclave restarts) would otherwise delay it until the timeouts.
    this.conn?.onClose(userClosed());
    this.conn?.transport?.close();
    // A connection still in its handshake: fail the handshake now (its waiters see CONNECTION_CLOSED).
    this.opening?.onClose(userClosed());
    this.opening?.transport?.close();
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
