/**
 * The enclave's audit log writer (design §4 "Audit"; docs/audit.md; the format is shared/audit.ts).
 *
 * One `AuditLog` per enclave run. `open` reads the sealed chain head ("audit.head", sealed for purpose "audit"),
 * writes a boot record (this run's identity key and the evidence binding it, and the checkpoint line it resumes
 * from) and a checkpoint signing it. Then `record(event)` appends one event line; every `checkpointEvery` events
 * (default 64), on `checkpoint()` and on `close()` a checkpoint signed by the identity key follows.
 *
 * Lines leave the enclave through `sink` (the storage channel's `audit.append`; the host appends and fsyncs) in
 * seq order: each line's seq and prev are fixed when `record` is called, lines are handed to the sink in that
 * order without waiting for the previous one to be durable (so the host can batch its fsyncs), and `record`
 * resolves once its own line is durable.
 *
 * A checkpoint is made durable in this order: every earlier line is durable → the sealed head is stored (blob
 * version = the checkpoint's seq) → the checkpoint line is appended. If the enclave stops between the last two
 * steps, the next boot record carries that checkpoint line (`resumed`), and the verifier takes it from there.
 *
 * Fail closed: once an append or a head update fails, the log is broken (the host may or may not hold the line),
 * and every later `record` rejects with AUDIT_UNAVAILABLE; the caller must refuse the operation and the enclave
 * restart (its boot record then continues the chain from the sealed head).
 */

import {
  AUDIT_GENESIS_PREV,
  type AuditAttested,
  type AuditAuthentication,
  type AuditCheckpointReason,
  type AuditCheckpointRecord,
  type AuditCheckpointUnsigned,
  type AuditEventRecord,
  type AuditHead,
  type AuditOutcome,
  auditEvidence,
  auditLineHash,
  checkpointSigningInput,
  DEFAULT_CHECKPOINT_EVERY,
  encodeAuditRecord,
  parseAuditLine,
} from '../../shared/audit.js';
import { AuditError } from '../../shared/audit-errors.js';
import { CryptoError } from '../../shared/crypto-errors.js';
import { contextDigest, type EncryptionContextInput } from '../../shared/encryption-context.js';
import { EkmsError } from '../../shared/errors.js';
import type { EvidenceBundle } from '../../shared/session.js';
import { Sealer, type VersionTracker } from '../sealing.js';
import type { BlobStorage } from '../storage/blob-storage.js';

/** Name of the sealed chain head in the host's blob store. */
export const AUDIT_HEAD_BLOB = 'audit.head';
/** Sealing purpose of the audit head (its own key, derived from the root key). */
export const AUDIT_SEALING_PURPOSE = 'audit';

/** The enclave's per-boot identity, as the audit log needs it. */
export interface AuditIdentity {
  /** Raw Ed25519 public key (32 bytes); the evidence binds it. */
  readonly publicKey: Uint8Array;
  /** Ed25519 signature over `message` (the enclave's `EnclaveIdentity.signStatement`). */
  sign(message: Uint8Array): Uint8Array;
}

/** Hands one line (without "\n") to the host; resolves once the host has appended and synced it. */
export type AuditSink = (line: string) => Promise<void>;

export interface AuditLogOptions {
  readonly storage: BlobStorage;
  /** The enclave root key (32 bytes); the log keeps only the derived sealing key. */
  readonly rootKey: Uint8Array;
  readonly identity: AuditIdentity;
  /** Evidence binding `identity.publicKey` (EnclaveIdentity.evidence()). */
  readonly evidence: EvidenceBundle;
  /** Clock, in ms since the epoch. */
  readonly now: () => number;
  readonly sink: AuditSink;
  /** Events between two checkpoints (default 64, 1..1_000_000). */
  readonly checkpointEvery?: number;
  /** The run's sealed-version tracker, if shared with other sealers. */
  readonly versions?: VersionTracker;
}

/** One audited operation: what the enclave passes to `record`. */
export interface AuditEvent {
  /** The authenticated principal's name, or null (unauthenticated / attested workload only). */
  readonly principal: string | null;
  readonly authentication: AuditAuthentication;
  /** The caller's attested identity from its verified claims, if it presented evidence. */
  readonly attested?: AuditAttested | null;
  /** Operation name (e.g. "Encrypt"). */
  readonly operation: string;
  readonly keyId?: string | null;
  readonly keyVersion?: number | null;
  /** The request's encryption context: its canonical digest is recorded (null if absent or invalid). */
  readonly context?: EncryptionContextInput | null;
  /** Or the digest itself (hex SHA-256 of the canonical encoding), if the caller has it already. */
  readonly contextDigest?: string | null;
  readonly outcome: AuditOutcome;
  /** The error code of a denial or error (required then); null or absent when allowed. */
  readonly code?: string | null;
  readonly requestId?: string | null;
}

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const noop = (): void => {};

function hexOf(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function digestOf(event: AuditEvent): string | null {
  if (event.context !== undefined && event.context !== null) {
    if (event.contextDigest !== undefined && event.contextDigest !== null) {
      throw new AuditError('AUDIT_RECORD_MALFORMED', 'pass context or contextDigest, not both');
    }
    try {
      return hexOf(contextDigest(event.context));
    } catch (err) {
      // A request refused for its invalid context is still recorded, without a digest.
      if (err instanceof CryptoError && err.code === 'CONTEXT_INVALID') return null;
      throw err;
    }
  }
  return event.contextDigest ?? null;
}

/** The chain position after a line. */
interface Position {
  seq: number;
  hash: string;
  /** Events in the chain so far. */
  events: number;
}

export class AuditLog {
  readonly #storage: BlobStorage;
  readonly #sealer: Sealer;
  readonly #identity: AuditIdentity;
  readonly #now: () => number;
  readonly #sink: AuditSink;
  readonly #every: number;
  /** The last line handed out (its seq and hash) and the events so far. */
  readonly #pos: Position;
  #sinceCheckpoint = 0;
  /** The checkpoint most recently sealed as the head. */
  #sealedHead: AuditHead | null;
  /**
   * While lines wait behind a step (a checkpoint sealing the head): resolves once the last of them was handed to the
   * sink. Undefined when nothing waits, and then a new line is handed over at once (lines go out in seq order).
   */
  #tail: Promise<void> | undefined;
  /** Lines handed to the sink and not yet durable or failed. */
  #outstanding = 0;
  /** Callers of #allDurable waiting for #outstanding to reach 0. */
  #durableWaiters: Array<() => void> = [];
  #failure: AuditError | undefined;
  #closing: Promise<void> | undefined;
  /** True when this run continues a chain from a sealed head; false when it started a new chain (seq 0). */
  readonly resumed: boolean;

  private constructor(o: AuditLogOptions, sealer: Sealer, pos: Position, sealedHead: AuditHead | null) {
    this.#storage = o.storage;
    this.#sealer = sealer;
    this.#identity = o.identity;
    this.#now = o.now;
    this.#sink = o.sink;
    this.#every = o.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
    this.#pos = pos;
    this.#sealedHead = sealedHead;
    this.resumed = sealedHead !== null;
  }

  /**
   * Opens the log for this run: reads the sealed head, writes the boot record and its checkpoint, and resolves
   * once both are durable. Without a sealed head it starts a new chain at seq 0 (first start — or a host that
   * dropped "audit.head": the verifier reports a new chain after existing records as AUDIT_HEAD_ROLLBACK).
   * @throws SealedStateError (the sealed head is corrupt, rolled back within this run, or sealed under another
   *   root key: the chain cannot be continued, so the enclave must not start); CryptoError KEY_INVALID;
   *   AuditError AUDIT_RECORD_MALFORMED (bad evidence or identity), AUDIT_UNAVAILABLE (the sink or the store
   *   failed); StoreError from the storage
   */
  static async open(options: AuditLogOptions): Promise<AuditLog> {
    const every = options.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
    /* Precondition: the checkpoint interval is an integer in 1..1_000_000. */
    if (!Number.isInteger(every) || every < 1 || every > 1_000_000) {
      throw new AuditError('AUDIT_RECORD_MALFORMED', 'checkpointEvery must be an integer in 1..1000000');
    }
    const sealer = new Sealer(options.rootKey, {
      purpose: AUDIT_SEALING_PURPOSE,
      ...(options.versions ? { versions: options.versions } : {}),
    });
    try {
      const blob = await options.storage.get(AUDIT_HEAD_BLOB);
      let pos: Position = { seq: -1, hash: AUDIT_GENESIS_PREV, events: 0 };
      let resumed: string | null = null;
      if (blob !== undefined) {
        const plain = sealer.open(AUDIT_HEAD_BLOB, { minVersion: 0 }, blob);
        let line: string;
        try {
          line = strictUtf8.decode(plain);
        } catch (cause) {
          throw new AuditError('AUDIT_RECORD_MALFORMED', 'the sealed audit head is not UTF-8', { cause });
        }
        const head = parseAuditLine(line);
        /* Precondition: the sealed head is a checkpoint, sealed as the version of its own seq. */
        if (head.kind !== 'checkpoint' || sealer.versions.highest(AUDIT_HEAD_BLOB) !== head.seq) {
          throw new AuditError(
            'AUDIT_RECORD_MALFORMED',
            'the sealed audit head is not a checkpoint of its version',
          );
        }
        pos = { seq: head.seq, hash: auditLineHash(line), events: head.count };
        resumed = line;
      }
      const log = new AuditLog(
        options,
        sealer,
        pos,
        resumed === null ? null : { seq: pos.seq, hash: pos.hash },
      );
      const boot = encodeAuditRecord({
        v: 1,
        seq: pos.seq + 1,
        time: log.#time(),
        kind: 'boot',
        prev: pos.hash,
        identity: hexOf(options.identity.publicKey),
        evidence: auditEvidence(options.evidence),
        resumed,
      });
      const booted = log.#emit(boot, false);
      const checkpointed = log.#checkpoint('boot');
      await Promise.all([booted, checkpointed]);
      return log;
    } catch (err) {
      sealer.close();
      throw err;
    }
  }

  /** The last record handed out: its seq and line hash. */
  get head(): AuditHead {
    return { seq: this.#pos.seq, hash: this.#pos.hash };
  }

  /** The checkpoint sealed as the chain head most recently (null before the first one of a new chain). */
  get sealedHead(): AuditHead | null {
    return this.#sealedHead;
  }

  /** Events recorded since the last checkpoint. */
  get eventsSinceCheckpoint(): number {
    return this.#sinceCheckpoint;
  }

  /**
   * The service's timer (enclave/main.ts): a checkpoint (`interval`) if events followed the last one and the log
   * works, else nothing — an idle log writes no line (a checkpoint is itself a line: "the head moved" would
   * checkpoint every tick forever, each a sealed-blob write). Resolves when it is sealed and durable.
   * @throws AuditError AUDIT_UNAVAILABLE
   */
  checkpointIfDue(): Promise<void> {
    if (this.#sinceCheckpoint === 0 || this.#failure !== undefined || this.#closing !== undefined) {
      return Promise.resolve();
    }
    return this.#checkpoint('interval');
  }

  /** Why the log is broken, if it is (then every `record` rejects with it). */
  get failure(): AuditError | undefined {
    return this.#failure;
  }

  /**
   * Appends one event; resolves when its line is durable at the host. Records are ordered by call order.
   * A checkpoint follows every `checkpointEvery` events (its failure breaks the log: see `failure`).
   * @throws AuditError AUDIT_RECORD_MALFORMED (a field out of its rules; nothing is written),
   *   AUDIT_UNAVAILABLE (the log is broken or closed: refuse the operation)
   */
  record(event: AuditEvent): Promise<void> {
    try {
      this.#usable();
      const line = encodeAuditRecord({
        v: 1,
        seq: this.#pos.seq + 1,
        time: this.#time(),
        kind: 'event',
        prev: this.#pos.hash,
        principal: event.principal,
        authentication: event.authentication,
        attested: event.attested ?? null,
        operation: event.operation,
        keyId: event.keyId ?? null,
        keyVersion: event.keyVersion ?? null,
        contextDigest: digestOf(event),
        outcome: event.outcome,
        code: event.code ?? null,
        requestId: event.requestId ?? null,
      } satisfies AuditEventRecord);
      const done = this.#emit(line, true);
      this.#sinceCheckpoint += 1;
      if (this.#sinceCheckpoint >= this.#every) this.#checkpoint('interval').catch(noop);
      return done;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Writes a checkpoint now (e.g. before a planned pause); resolves when it is sealed and durable.
   * @throws AuditError AUDIT_UNAVAILABLE
   */
  checkpoint(): Promise<void> {
    try {
      this.#usable();
      return this.#checkpoint('requested');
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Clean shutdown: writes the final checkpoint (reason "shutdown"), waits until it is sealed and durable, and zeroes
   * the sealing key. Later `record` calls reject with AUDIT_UNAVAILABLE. Idempotent.
   * @throws AuditError AUDIT_UNAVAILABLE (the final checkpoint could not be written; the key is zeroed anyway)
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      try {
        if (this.#failure !== undefined) throw this.#failure;
        await this.#checkpoint('shutdown');
        await this.#allDurable();
        if (this.#failure !== undefined) throw this.#failure;
      } finally {
        this.#sealer.close();
      }
    })();
    return this.#closing;
  }

  #usable(): void {
    if (this.#failure !== undefined) throw this.#failure;
    /* Precondition: nothing is recorded after close() began (the shutdown checkpoint is the run's last record). */
    if (this.#closing !== undefined) throw new AuditError('AUDIT_UNAVAILABLE', 'the audit log is closed');
  }

  /** The last instant formatted (records of one millisecond share the string). */
  #lastTime: { ms: number; text: string } = { ms: Number.NaN, text: '' };

  #time(): string {
    const ms = this.#now();
    if (ms !== this.#lastTime.ms) this.#lastTime = { ms, text: new Date(ms).toISOString() };
    return this.#lastTime.text;
  }

  /** Builds, signs and emits a checkpoint after the last line; its head is sealed before it is appended. */
  #checkpoint(reason: AuditCheckpointReason): Promise<void> {
    const unsigned: AuditCheckpointUnsigned = {
      v: 1,
      seq: this.#pos.seq + 1,
      time: this.#time(),
      kind: 'checkpoint',
      prev: this.#pos.hash,
      reason,
      head: this.#pos.hash,
      count: this.#pos.events,
    };
    const signature = hexOf(this.#identity.sign(checkpointSigningInput(unsigned)));
    const line = encodeAuditRecord({ ...unsigned, signature } satisfies AuditCheckpointRecord);
    const seq = unsigned.seq;
    this.#sinceCheckpoint = 0;
    return this.#emit(line, false, async () => {
      // Everything before the checkpoint is durable before the head moves past it.
      await this.#allDurable();
      if (this.#failure !== undefined) throw this.#failure;
      const sealed = this.#sealer.seal(AUDIT_HEAD_BLOB, seq, utf8.encode(line));
      await this.#storage.put(AUDIT_HEAD_BLOB, sealed);
      this.#sealedHead = { seq, hash: auditLineHash(line) };
    });
  }

  /**
   * Advances the chain past `line` and hands it to the sink after every earlier line (and after `before`).
   * Resolves when the line is durable; a failure breaks the log.
   *
   * When no line waits behind a step and there is no `before`, the line is handed over synchronously (the common
   * case: one promise per line instead of a chain of them, docs/performance.md); otherwise it is chained behind
   * the last waiting line.
   */
  #emit(line: string, isEvent: boolean, before?: () => Promise<void>): Promise<void> {
    this.#pos.seq += 1;
    this.#pos.hash = auditLineHash(line);
    if (isEvent) this.#pos.events += 1;
    if (before === undefined && this.#tail === undefined) return this.#handOver(line);
    const handed = (this.#tail ?? Promise.resolve()).then(async () => {
      if (this.#failure !== undefined) throw this.#failure;
      if (before !== undefined) await before();
      // Not awaited here: the next line may be handed over before this one is durable.
      return { done: this.#handOver(line) };
    });
    const tail = handed.then(noop, noop);
    this.#tail = tail;
    void tail.then(() => {
      if (this.#tail === tail) this.#tail = undefined;
    });
    return handed.then(
      ({ done }) => done,
      (err: unknown) => Promise.reject(this.#fail(err)),
    );
  }

  /** Hands one line to the sink now; resolves when it is durable, rejects (breaking the log) when it fails. */
  #handOver(line: string): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    let done: Promise<void>;
    try {
      done = this.#sink(line);
    } catch (err) {
      return Promise.reject(this.#fail(err));
    }
    this.#outstanding += 1;
    return done.then(
      () => this.#settled(),
      (err: unknown) => {
        this.#settled();
        throw this.#fail(err);
      },
    );
  }

  #settled(): void {
    this.#outstanding -= 1;
    if (this.#outstanding === 0 && this.#durableWaiters.length > 0) {
      const waiters = this.#durableWaiters;
      this.#durableWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Resolves when every line handed over so far is durable or failed (never rejects: failures are in #failure). */
  #allDurable(): Promise<void> {
    if (this.#outstanding === 0) return Promise.resolve();
    return new Promise((resolve) => this.#durableWaiters.push(resolve));
  }

  /** Marks the log broken (once) and returns the error every later call gets. */
  #fail(cause: unknown): AuditError {
    if (this.#failure === undefined) {
      const code = cause instanceof EkmsError ? `${cause.code}: ` : '';
      this.#failure =
        cause instanceof AuditError && cause.code === 'AUDIT_UNAVAILABLE'
          ? cause
          : new AuditError(
              'AUDIT_UNAVAILABLE',
              `the audit log could not be written (${code}${(cause as Error)?.message ?? String(cause)}); restart the enclave`,
              { cause },
            );
    }
    return this.#failure;
  }
}
