/**
 * The keystore (design §4; docs/key-service.md): customer keys with versions, their states and aliases, kept in
 * memory inside the enclave and persisted only as sealed blobs through the host (enclave/sealing.ts).
 *
 * Durability rule: a change is applied in memory only after its sealed blobs were stored — first the key's record
 * (`key.<id>`), then the manifest (`keystore.manifest`, see manifest.ts). If either write fails, the operation
 * fails with the store's code and memory is unchanged, so nothing is acknowledged that is not stored. Changes are
 * serialised (one at a time); reads never wait for them.
 *
 * Time-driven transitions happen when a key is touched and on `sweep()` (the enclave calls it every minute):
 * a key whose deletion date passed is destroyed (its material zeroed and removed from the record, which stays as a
 * tombstone), and an enabled key whose rotation is due gets a new version. The clock is injected.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { CryptoError, SealedStateError } from '../../shared/crypto-errors.js';
import { type EkmsError, ProtocolError, TransportError } from '../../shared/errors.js';
import { KmsError } from '../../shared/kms-errors.js';
import { LIMITS } from '../../shared/limits.js';
import type { SuiteId } from '../../shared/suites.js';
import { Sealer } from '../sealing.js';
import type { BlobStorage } from '../storage/blob-storage.js';
import {
  currentVersion,
  decodeKeyRecord,
  encodeKeyRecord,
  type Grant,
  KEY_MATERIAL_BYTES,
  type KeyQuorum,
  type KeyRecord,
  KeyState,
  type KeyVersion,
  MAX_GRANTS_PER_KEY,
} from './key-record.js';
import { ALIAS_NAME, decodeManifest, encodeManifest, MANIFEST_BLOB, type Manifest } from './manifest.js';

export const SEALING_PURPOSE = 'keystore';
const DAY_MS = 86_400_000;
const KEY_BLOB_PREFIX = 'key.';

/** Minimal logger interface (pino's), so that tests can pass nothing. */
export interface KeystoreLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface KeystoreOptions {
  readonly storage: BlobStorage;
  /** 32 bytes; the keystore derives its sealing key from it and does not keep it. */
  readonly rootKey: Uint8Array;
  /** Milliseconds since the epoch. */
  readonly now: () => number;
  readonly logger?: KeystoreLogger;
}

export interface CreateKeyInput {
  readonly description: string;
  readonly suite: SuiteId;
  readonly rotationPeriodDays: number | null;
  /** Attestation policy (JSON text) for releases to workloads; checked by the caller (kms/release.ts). */
  readonly releasePolicy?: string | null;
  /** Dual control: the key is protected from the start (checked by the caller, kms/quorum.ts). */
  readonly quorum?: KeyQuorum | null;
}

/** A key as `list` reports it. */
export interface KeyListEntry {
  readonly id: string;
  readonly state: KeyState | 'Unavailable';
}

const noLog: KeystoreLogger = { info() {}, warn() {} };

function keyBlob(id: string): string {
  return `${KEY_BLOB_PREFIX}${id}`;
}

function newMaterial(): Uint8Array {
  return new Uint8Array(randomBytes(KEY_MATERIAL_BYTES));
}

export class Keystore {
  readonly #storage: BlobStorage;
  readonly #sealer: Sealer;
  readonly #now: () => number;
  readonly #log: KeystoreLogger;
  readonly #records = new Map<string, KeyRecord>();
  /** Keys the manifest lists whose record could not be loaded, with the reason. */
  readonly #unavailable = new Map<string, EkmsError>();
  /** The manifest as last stored. */
  #manifest: Manifest = { keys: new Map(), aliases: new Map() };
  /** Tail of the queue of changes. */
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(opts: KeystoreOptions) {
    this.#storage = opts.storage;
    this.#sealer = new Sealer(opts.rootKey, { purpose: SEALING_PURPOSE });
    this.#now = opts.now;
    this.#log = opts.logger ?? noLog;
  }

  /**
   * Loads the keystore through the host. A key whose record is missing, corrupt or older than the manifest says is
   * kept out of use (KEY_UNAVAILABLE with the reason) while every other key works.
   * @throws SealedStateError (the manifest is corrupt, rolled back, sealed under another root key, or missing while
   *   key records exist); StoreError (storage)
   */
  static async open(opts: KeystoreOptions): Promise<Keystore> {
    const ks = new Keystore(opts);
    await ks.#load();
    return ks;
  }

  async #load(): Promise<void> {
    const bytes = await this.#storage.get(MANIFEST_BLOB);
    if (bytes === undefined) {
      const orphans = (await this.#storage.list()).filter((n) => n.startsWith(KEY_BLOB_PREFIX));
      /* Precondition: without a manifest there are no keys; key records without one mean the host lost it. */
      if (orphans.length > 0) {
        throw new SealedStateError(
          'SEALED_BLOB_ROLLBACK',
          `the keystore manifest is missing but ${orphans.length} key record(s) exist; refusing to start with an empty keystore`,
          { details: { name: MANIFEST_BLOB } },
        );
      }
      // First start: store an empty manifest before any key record, so that from now on a missing manifest always
      // means the host lost it (a crash between a first key record and its manifest cannot look like that).
      await this.#commit(undefined, new Map());
      return;
    }
    const manifest = decodeManifest(this.#sealer.open(MANIFEST_BLOB, { minVersion: 1 }, bytes));
    const ids = [...manifest.keys.keys()];
    for (let i = 0; i < ids.length; i += 32) {
      await Promise.all(ids.slice(i, i + 32).map((id) => this.#loadKey(id, manifest.keys.get(id) ?? 1)));
    }
    this.#manifest = manifest;
    if (this.#unavailable.size > 0) {
      this.#log.warn({ unavailable: this.#unavailable.size }, 'some keys could not be loaded');
    }
  }

  async #loadKey(id: string, minVersion: number): Promise<void> {
    const name = keyBlob(id);
    try {
      const bytes = await this.#storage.get(name);
      if (bytes === undefined) {
        throw new SealedStateError(
          'SEALED_BLOB_ROLLBACK',
          `key record '${name}' is missing but the manifest lists it`,
          { details: { name } },
        );
      }
      const plain = this.#sealer.open(name, { minVersion }, bytes);
      try {
        this.#records.set(id, decodeKeyRecord(plain, name));
      } finally {
        plain.fill(0);
      }
    } catch (err) {
      // Storage failures (STORE_*) stop the start-up; anything wrong with the blob itself quarantines the key.
      if (!(err instanceof SealedStateError) && !(err instanceof CryptoError)) throw err;
      this.#log.warn({ key: id, code: err.code }, 'key record refused');
      this.#unavailable.set(id, err);
    }
  }

  /** Number of keys (including tombstones and unavailable ones). */
  get size(): number {
    return this.#manifest.keys.size;
  }

  /**
   * The key id a request names: a key id, or an alias name (`alias/…`).
   * @throws KmsError KEY_NOT_FOUND
   */
  resolve(keyIdOrAlias: string): string {
    if (keyIdOrAlias.startsWith('alias/')) {
      const id = this.#manifest.aliases.get(keyIdOrAlias);
      if (id === undefined) throw new KmsError('KEY_NOT_FOUND', `no alias ${JSON.stringify(keyIdOrAlias)}`);
      return id;
    }
    if (!this.#manifest.keys.has(keyIdOrAlias)) {
      throw new KmsError('KEY_NOT_FOUND', `no key ${JSON.stringify(keyIdOrAlias.slice(0, 80))}`);
    }
    return keyIdOrAlias;
  }

  /**
   * The record of a key, after any due deletion or rotation was applied.
   * @throws KmsError KEY_NOT_FOUND, KEY_UNAVAILABLE; StoreError / SealedStateError if a due transition cannot be stored
   */
  async get(keyIdOrAlias: string): Promise<KeyRecord> {
    const id = this.resolve(keyIdOrAlias);
    await this.#settle(id);
    return this.#record(id);
  }

  #record(id: string): KeyRecord {
    /* Precondition: the keystore is open (after close() the key material is zeroed and must not be used). */
    if (this.#closed) throw new TransportError('ENCLAVE_UNAVAILABLE', 'the enclave is shutting down');
    const unavailable = this.#unavailable.get(id);
    if (unavailable !== undefined) {
      throw new KmsError('KEY_UNAVAILABLE', `key ${id} is unavailable: ${unavailable.message}`, {
        cause: unavailable,
        details: { keyId: id, reason: unavailable.code },
      });
    }
    const r = this.#records.get(id);
    if (r === undefined) throw new KmsError('KEY_NOT_FOUND', `no key ${id}`);
    return r;
  }

  /**
   * A key ready for a cryptographic operation: it must be Enabled. A use while the key is pending deletion is
   * recorded in the key (count, time, operation) before the error is returned.
   * @throws KmsError KEY_NOT_FOUND, KEY_UNAVAILABLE, KEY_DISABLED, KEY_PENDING_DELETION, KEY_DESTROYED
   */
  async use(keyIdOrAlias: string, operation: string): Promise<KeyRecord> {
    const r = await this.get(keyIdOrAlias);
    switch (r.state) {
      case KeyState.Enabled:
        return r;
      case KeyState.Disabled:
        throw new KmsError('KEY_DISABLED', `key ${r.id} is disabled`, { details: { keyId: r.id } });
      case KeyState.PendingDeletion: {
        await this.#recordDeniedUse(r.id, operation);
        throw new KmsError(
          'KEY_PENDING_DELETION',
          `key ${r.id} is pending deletion (on ${new Date(r.deletion?.deletionDate ?? 0).toISOString()}); the attempt was recorded`,
          { details: { keyId: r.id } },
        );
      }
      case KeyState.Destroyed:
        throw new KmsError('KEY_DESTROYED', `key ${r.id} was destroyed`, { details: { keyId: r.id } });
    }
  }

  /** Every key id in ascending order, with its state. */
  list(): KeyListEntry[] {
    return [...this.#manifest.keys.keys()].sort().map((id) => ({
      id,
      state: this.#unavailable.has(id) ? 'Unavailable' : (this.#records.get(id)?.state ?? 'Unavailable'),
    }));
  }

  /** Aliases (sorted by name), optionally those of one key. */
  aliases(keyId?: string): Array<{ name: string; keyId: string }> {
    return [...this.#manifest.aliases]
      .filter(([, id]) => keyId === undefined || id === keyId)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, id]) => ({ name, keyId: id }));
  }

  // ------------------------------------------------------------------------------------------------ changes

  /** Runs `change` after every earlier change finished (successfully or not). */
  #serial<T>(change: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(change, change);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Stores a changed record (if any) and the manifest, then applies both in memory.
   * Must run inside #serial.
   */
  async #commit(record: KeyRecord | undefined, aliases: ReadonlyMap<string, string>): Promise<void> {
    const keys = new Map(this.#manifest.keys);
    if (record !== undefined) {
      const name = keyBlob(record.id);
      const version = (this.#sealer.versions.highest(name) ?? 0) + 1;
      const plain = encodeKeyRecord(record);
      let sealed: Uint8Array;
      try {
        sealed = this.#sealer.seal(name, version, plain);
      } finally {
        plain.fill(0);
      }
      await this.#storage.put(name, sealed);
      keys.set(record.id, version);
    }
    const manifest: Manifest = { keys, aliases };
    const version = (this.#sealer.versions.highest(MANIFEST_BLOB) ?? 0) + 1;
    await this.#storage.put(
      MANIFEST_BLOB,
      this.#sealer.seal(MANIFEST_BLOB, version, encodeManifest(manifest)),
    );
    this.#manifest = manifest;
    if (record !== undefined) this.#records.set(record.id, record);
  }

  /**
   * Creates a key with one fresh version.
   * @throws KmsError KEY_LIMIT_EXCEEDED; StoreError, SealedStateError
   */
  async create(input: CreateKeyInput, aliasName?: string): Promise<KeyRecord> {
    checkRange(
      'description bytes',
      Buffer.byteLength(input.description, 'utf8'),
      0,
      LIMITS.maxKeyDescriptionBytes,
    );
    if (input.rotationPeriodDays !== null) {
      checkRange(
        'rotation period',
        input.rotationPeriodDays,
        LIMITS.minRotationPeriodDays,
        LIMITS.maxRotationPeriodDays,
      );
    }
    if (aliasName !== undefined) checkAliasName(aliasName);
    return this.#serial(async () => {
      if (this.#closed) throw new TransportError('ENCLAVE_UNAVAILABLE', 'the enclave is shutting down');
      /* Precondition: the keystore holds fewer than LIMITS.maxKeys keys. */
      if (this.#manifest.keys.size >= LIMITS.maxKeys) {
        throw new KmsError('KEY_LIMIT_EXCEEDED', `the keystore holds the maximum of ${LIMITS.maxKeys} keys`);
      }
      if (aliasName !== undefined) this.#checkNewAlias(aliasName);
      const now = this.#now();
      const record: KeyRecord = {
        id: randomUUID(),
        description: input.description,
        createdAt: now,
        suite: input.suite,
        state: KeyState.Enabled,
        versions: [{ version: 1, createdAt: now, material: newMaterial() }],
        rotationPeriodDays: input.rotationPeriodDays,
        nextRotationAt: input.rotationPeriodDays === null ? null : now + input.rotationPeriodDays * DAY_MS,
        deletion: null,
        destroyedAt: null,
        deniedUses: null,
        ...(input.releasePolicy == null ? {} : { releasePolicy: input.releasePolicy }),
        ...(input.quorum == null
          ? {}
          : { quorum: { threshold: input.quorum.threshold, approvers: [...input.quorum.approvers] } }),
      };
      const aliases = new Map(this.#manifest.aliases);
      if (aliasName !== undefined) aliases.set(aliasName, record.id);
      try {
        // Key and alias in one manifest write: all or nothing.
        await this.#commit(record, aliases);
      } catch (err) {
        currentVersion(record).material?.fill(0);
        throw err;
      }
      this.#log.info({ key: record.id }, 'key created');
      return record;
    });
  }

  /**
   * Applies `change` to the current record of `id` (after due transitions) and stores the result.
   * `change` returns the new record, or the same object for "nothing to do".
   *
   * `expectedSequence` (protected operations, docs/key-policy.md §10): the key's approval sequence the caller's
   * quorum check saw. It must still be the record's (else QUORUM_REQUIRED: another approved change or a quorum
   * change came first, and the approvals no longer apply); on a protected key the change then advances it, in the
   * same sealed write, so the approvals are used up exactly when the change is stored.
   */
  #update(
    id: string,
    change: (r: KeyRecord, now: number) => KeyRecord,
    expectedSequence?: number,
  ): Promise<KeyRecord> {
    return this.#serial(async () => {
      const before = this.#record(id);
      const now = this.#now();
      const settled = this.#due(before, now);
      if (expectedSequence !== undefined) checkSequence(settled, expectedSequence);
      const changed = change(settled, now);
      const after =
        expectedSequence === undefined || settled.quorum === undefined
          ? changed
          : { ...changed, approvalSequence: expectedSequence + 1 };
      if (after !== before) {
        try {
          await this.#commit(after, this.#manifest.aliases);
        } catch (err) {
          // Versions made for this change (a rotation) were never stored: zero their material.
          const kept = new Set(before.versions);
          for (const v of after.versions) if (!kept.has(v)) v.material?.fill(0);
          throw err;
        }
      }
      if (settled !== before && settled.state === KeyState.Destroyed) zeroVersions(before.versions);
      return after;
    });
  }

  /** The record with any transition due at `now` applied (or the same object). */
  #due(r: KeyRecord, now: number): KeyRecord {
    if (r.state === KeyState.PendingDeletion && r.deletion !== null && now >= r.deletion.deletionDate) {
      return {
        ...r,
        state: KeyState.Destroyed,
        versions: r.versions.map((v) => ({ version: v.version, createdAt: v.createdAt, material: null })),
        deletion: null,
        destroyedAt: now,
        rotationPeriodDays: null,
        nextRotationAt: null,
      };
    }
    if (
      r.state === KeyState.Enabled &&
      r.nextRotationAt !== null &&
      r.rotationPeriodDays !== null &&
      now >= r.nextRotationAt &&
      r.versions.length < LIMITS.maxKeyVersions
    ) {
      return { ...addVersion(r, now), nextRotationAt: now + r.rotationPeriodDays * DAY_MS };
    }
    return r;
  }

  async #settle(id: string): Promise<void> {
    const r = this.#records.get(id);
    if (r === undefined || this.#due(r, this.#now()) === r) return;
    const before = r;
    await this.#update(id, (x) => x);
    const after = this.#records.get(id);
    if (after !== undefined && after !== before) {
      this.#log.info(
        { key: id, state: after.state, version: currentVersion(after).version },
        'key transition applied',
      );
    }
  }

  /**
   * Applies every due deletion and rotation. Errors are logged and the key retried at the next sweep.
   */
  async sweep(): Promise<number> {
    let applied = 0;
    for (const id of this.#records.keys()) {
      const r = this.#records.get(id);
      if (r === undefined || this.#due(r, this.#now()) === r) continue;
      try {
        await this.#settle(id);
        applied += 1;
      } catch (err) {
        this.#log.warn({ key: id, code: (err as EkmsError).code ?? 'INTERNAL_ERROR' }, 'transition failed');
      }
    }
    return applied;
  }

  /**
   * Enables or disables a key.
   * @throws KmsError KEY_NOT_FOUND, KEY_UNAVAILABLE, KEY_STATE_INVALID (pending deletion or destroyed)
   */
  setEnabled(id: string, enabled: boolean, expectedSequence?: number): Promise<KeyRecord> {
    return this.#update(
      id,
      (r) => {
        /* Precondition: only Enabled and Disabled keys change between the two (a key pending deletion must have its
         deletion cancelled first, as in AWS KMS). */
        if (r.state !== KeyState.Enabled && r.state !== KeyState.Disabled) {
          throw stateInvalid(r, enabled ? 'enable' : 'disable');
        }
        const state = enabled ? KeyState.Enabled : KeyState.Disabled;
        return r.state === state ? r : { ...r, state };
      },
      expectedSequence,
    );
  }

  /**
   * Adds a version now; it becomes the version new ciphertexts use. Old versions keep decrypting.
   * @throws KmsError KEY_DISABLED, KEY_PENDING_DELETION, KEY_DESTROYED, KEY_LIMIT_EXCEEDED
   */
  rotate(id: string): Promise<KeyRecord> {
    return this.#update(id, (r, now) => {
      requireEnabled(r);
      return {
        ...addVersion(r, now),
        nextRotationAt: r.rotationPeriodDays === null ? null : now + r.rotationPeriodDays * DAY_MS,
      };
    });
  }

  /**
   * Turns automatic rotation on (period in days; the first rotation is one period from now) or off (null).
   * @throws KmsError KEY_STATE_INVALID (pending deletion or destroyed)
   */
  async setRotation(id: string, periodDays: number | null): Promise<KeyRecord> {
    if (periodDays !== null) {
      checkRange('rotation period', periodDays, LIMITS.minRotationPeriodDays, LIMITS.maxRotationPeriodDays);
    }
    return this.#update(id, (r, now) => {
      if (r.state === KeyState.PendingDeletion || r.state === KeyState.Destroyed) {
        throw stateInvalid(r, 'change the rotation of');
      }
      return {
        ...r,
        rotationPeriodDays: periodDays,
        nextRotationAt: periodDays === null ? null : now + periodDays * DAY_MS,
      };
    });
  }

  /**
   * Sets (or, with null, removes: the default policy applies) the key policy (JSON text, checked by the caller).
   * @throws KmsError KEY_STATE_INVALID (destroyed)
   */
  setKeyPolicy(id: string, policy: string | null, expectedSequence?: number): Promise<KeyRecord> {
    return this.#update(
      id,
      (r) => {
        if (r.state === KeyState.Destroyed) throw stateInvalid(r, 'set the key policy of');
        if ((r.keyPolicy ?? null) === policy) return r;
        const { keyPolicy: _old, ...rest } = r;
        return policy === null ? rest : { ...rest, keyPolicy: policy };
      },
      expectedSequence,
    );
  }

  /**
   * Adds a grant (expired grants are dropped at the same time).
   * @throws KmsError KEY_STATE_INVALID (destroyed), KEY_LIMIT_EXCEEDED (MAX_GRANTS_PER_KEY live grants)
   */
  addGrant(id: string, grant: Grant, expectedSequence?: number): Promise<KeyRecord> {
    return this.#update(
      id,
      (r, now) => {
        if (r.state === KeyState.Destroyed) throw stateInvalid(r, 'grant');
        const live = (r.grants ?? []).filter((g) => g.expiresAt > now);
        if (live.length >= MAX_GRANTS_PER_KEY) {
          throw new KmsError(
            'KEY_LIMIT_EXCEEDED',
            `key ${r.id} has the maximum of ${MAX_GRANTS_PER_KEY} grants`,
          );
        }
        return { ...r, grants: [...live, grant] };
      },
      expectedSequence,
    );
  }

  /** @throws KmsError GRANT_NOT_FOUND */
  revokeGrant(id: string, grantId: string): Promise<KeyRecord> {
    return this.#update(id, (r) => {
      const grants = r.grants ?? [];
      if (!grants.some((g) => g.id === grantId)) {
        throw new KmsError('GRANT_NOT_FOUND', `key ${r.id} has no grant ${grantId}`);
      }
      return { ...r, grants: grants.filter((g) => g.id !== grantId) };
    });
  }

  /**
   * Sets (or, with null, removes) the key's release policy for attested workloads (JSON text, parsed by the caller).
   * @throws KmsError KEY_STATE_INVALID (destroyed)
   */
  setReleasePolicy(id: string, policy: string | null, expectedSequence?: number): Promise<KeyRecord> {
    return this.#update(
      id,
      (r) => {
        if (r.state === KeyState.Destroyed) throw stateInvalid(r, 'set the release policy of');
        if ((r.releasePolicy ?? null) === policy) return r;
        const { releasePolicy: _old, ...rest } = r;
        return policy === null ? rest : { ...rest, releasePolicy: policy };
      },
      expectedSequence,
    );
  }

  /**
   * Sets (or, with null, removes) the key's quorum (checked by the caller, kms/quorum.ts). Always advances the
   * approval sequence, so approvals collected under the previous quorum (or before protection) never apply.
   * @throws KmsError KEY_STATE_INVALID (destroyed), QUORUM_REQUIRED (the sequence moved since the caller's check)
   */
  setQuorum(id: string, quorum: KeyQuorum | null, expectedSequence: number): Promise<KeyRecord> {
    return this.#update(
      id,
      (r) => {
        // A destroyed key's quorum can still be removed (with its approvals): an alias that names the key stays on
        // it while it is protected, and would otherwise be stuck for good.
        if (r.state === KeyState.Destroyed && quorum !== null) throw stateInvalid(r, 'set the quorum of');
        const { quorum: _old, ...rest } = r;
        const approvalSequence = (r.approvalSequence ?? 0) + 1;
        return quorum === null
          ? { ...rest, approvalSequence }
          : {
              ...rest,
              quorum: { threshold: quorum.threshold, approvers: [...quorum.approvers] },
              approvalSequence,
            };
      },
      expectedSequence,
    );
  }

  /**
   * Uses up the approvals of an operation that changes nothing else in the record (a release of key material):
   * advances the approval sequence of a protected key, stored before the caller acts.
   * @throws KmsError QUORUM_REQUIRED (the sequence moved since the caller's check); StoreError, SealedStateError
   */
  consumeApproval(id: string, expectedSequence: number): Promise<KeyRecord> {
    return this.#update(id, (r) => r, expectedSequence);
  }

  /**
   * Schedules the destruction of a key `windowDays` from now. The key cannot be used meanwhile.
   * @throws KmsError KEY_STATE_INVALID (already pending deletion, or destroyed)
   */
  async scheduleDeletion(id: string, windowDays: number, expectedSequence?: number): Promise<KeyRecord> {
    checkRange('deletion window', windowDays, LIMITS.minDeletionWindowDays, LIMITS.maxDeletionWindowDays);
    return this.#update(
      id,
      (r, now) => {
        if (r.state === KeyState.PendingDeletion || r.state === KeyState.Destroyed) {
          throw stateInvalid(r, 'schedule the deletion of');
        }
        return {
          ...r,
          state: KeyState.PendingDeletion,
          deletion: { scheduledAt: now, deletionDate: now + windowDays * DAY_MS, windowDays },
        };
      },
      expectedSequence,
    );
  }

  /**
   * Cancels a scheduled deletion; the key becomes Disabled (as in AWS KMS), to be enabled on purpose.
   * @throws KmsError KEY_STATE_INVALID (not pending deletion; a destroyed key cannot come back)
   */
  cancelDeletion(id: string): Promise<KeyRecord> {
    return this.#update(id, (r) => {
      if (r.state !== KeyState.PendingDeletion) throw stateInvalid(r, 'cancel the deletion of');
      return { ...r, state: KeyState.Disabled, deletion: null };
    });
  }

  async #recordDeniedUse(id: string, operation: string): Promise<void> {
    try {
      await this.#update(id, (r, now) =>
        r.state !== KeyState.PendingDeletion
          ? r
          : {
              ...r,
              deniedUses: { count: (r.deniedUses?.count ?? 0) + 1, lastAt: now, lastOperation: operation },
            },
      );
    } catch (err) {
      // The use is refused either way; failing to record it must not turn the refusal into another error.
      this.#log.warn(
        { key: id, code: (err as EkmsError).code ?? 'INTERNAL_ERROR' },
        'could not record a denied use',
      );
    }
    this.#log.warn({ key: id, operation }, 'use of a key pending deletion refused');
  }

  /**
   * Creates (or, with `replace`, repoints) an alias.
   * @throws KmsError ALIAS_INVALID, ALIAS_EXISTS, ALIAS_NOT_FOUND (replace of a missing alias), KEY_NOT_FOUND,
   *   KEY_LIMIT_EXCEEDED, KEY_STATE_INVALID (target destroyed)
   */
  setAlias(
    name: string,
    keyIdOrAlias: string,
    replace: boolean,
    guard?: (current: KeyRecord | undefined, target: string) => void,
  ): Promise<void> {
    return this.#serial(async () => {
      checkAliasName(name);
      const id = this.resolve(keyIdOrAlias);
      const target = this.#record(id);
      // The caller's rule about the alias's current key, checked where no other alias change can interleave.
      const currentId = this.#manifest.aliases.get(name);
      guard?.(currentId === undefined ? undefined : this.#record(currentId), id);
      if (target.state === KeyState.Destroyed) throw stateInvalid(target, 'alias');
      const exists = this.#manifest.aliases.has(name);
      if (!replace && exists) throw new KmsError('ALIAS_EXISTS', `alias ${name} already exists`);
      if (replace && !exists) throw new KmsError('ALIAS_NOT_FOUND', `no alias ${name}`);
      if (!exists && this.#manifest.aliases.size >= LIMITS.maxAliases) {
        throw new KmsError(
          'KEY_LIMIT_EXCEEDED',
          `the keystore holds the maximum of ${LIMITS.maxAliases} aliases`,
        );
      }
      const aliases = new Map(this.#manifest.aliases);
      aliases.set(name, id);
      await this.#commit(undefined, aliases);
    });
  }

  /** A new alias name must be free and within the limit. @throws KmsError ALIAS_EXISTS, KEY_LIMIT_EXCEEDED */
  #checkNewAlias(name: string): void {
    if (this.#manifest.aliases.has(name)) throw new KmsError('ALIAS_EXISTS', `alias ${name} already exists`);
    if (this.#manifest.aliases.size >= LIMITS.maxAliases) {
      throw new KmsError(
        'KEY_LIMIT_EXCEEDED',
        `the keystore holds the maximum of ${LIMITS.maxAliases} aliases`,
      );
    }
  }

  /** @throws KmsError ALIAS_INVALID, ALIAS_NOT_FOUND */
  deleteAlias(name: string, guard?: (current: KeyRecord | undefined) => void): Promise<void> {
    return this.#serial(async () => {
      checkAliasName(name);
      const currentId = this.#manifest.aliases.get(name);
      if (currentId === undefined) throw new KmsError('ALIAS_NOT_FOUND', `no alias ${name}`);
      guard?.(this.#record(currentId));
      const aliases = new Map(this.#manifest.aliases);
      aliases.delete(name);
      await this.#commit(undefined, aliases);
    });
  }

  /** Zeroes all key material and the sealing keys. The keystore is unusable afterwards. */
  close(): void {
    this.#closed = true;
    for (const r of this.#records.values()) zeroVersions(r.versions);
    this.#sealer.close();
  }
}

function addVersion(r: KeyRecord, now: number): KeyRecord {
  /* Precondition: a key has at most LIMITS.maxKeyVersions versions. */
  if (r.versions.length >= LIMITS.maxKeyVersions) {
    throw new KmsError(
      'KEY_LIMIT_EXCEEDED',
      `key ${r.id} has the maximum of ${LIMITS.maxKeyVersions} versions`,
    );
  }
  const next: KeyVersion = { version: r.versions.length + 1, createdAt: now, material: newMaterial() };
  return { ...r, versions: [...r.versions, next] };
}

function requireEnabled(r: KeyRecord): void {
  if (r.state === KeyState.Disabled) throw new KmsError('KEY_DISABLED', `key ${r.id} is disabled`);
  if (r.state === KeyState.PendingDeletion) {
    throw new KmsError('KEY_PENDING_DELETION', `key ${r.id} is pending deletion`);
  }
  if (r.state === KeyState.Destroyed) throw new KmsError('KEY_DESTROYED', `key ${r.id} was destroyed`);
}

/**
 * The approval sequence a quorum check saw must still be the key's (docs/key-policy.md §10).
 * @throws KmsError QUORUM_REQUIRED
 */
function checkSequence(r: KeyRecord, expected: number): void {
  const current = r.approvalSequence ?? 0;
  /* Precondition: no approved change and no quorum change happened since the approvals were checked. */
  if (current !== expected) {
    throw new KmsError(
      'QUORUM_REQUIRED',
      `key ${r.id}: the approval sequence moved from ${expected} to ${current} while the request was in flight (another approved change or a quorum change came first); collect approvals for sequence ${current}`,
      { details: { keyId: r.id, sequence: current, expectedSequence: expected } },
    );
  }
}

function stateInvalid(r: KeyRecord, what: string): KmsError {
  return new KmsError('KEY_STATE_INVALID', `cannot ${what} key ${r.id} in state ${r.state}`, {
    details: { keyId: r.id, state: r.state },
  });
}

function checkRange(what: string, value: number, min: number, max: number): void {
  /* Precondition: numbers stored in a record are within the ranges the record decoder accepts. */
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new ProtocolError('REQUEST_INVALID', `${what} must be an integer from ${min} to ${max}`);
  }
}

export function checkAliasName(name: string): void {
  /* Precondition: alias names are alias/ + 1..250 of [A-Za-z0-9/_-], and alias/ekms/ is reserved. */
  if (typeof name !== 'string' || !ALIAS_NAME.test(name) || name.startsWith('alias/ekms/')) {
    throw new KmsError(
      'ALIAS_INVALID',
      'alias names are alias/ followed by 1..250 of [A-Za-z0-9/_-]; alias/ekms/ is reserved',
    );
  }
}

function zeroVersions(versions: readonly KeyVersion[]): void {
  for (const v of versions) v.material?.fill(0);
}
