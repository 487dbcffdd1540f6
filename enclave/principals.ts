/**
 * Registered principals (design §3, §4): names with an Ed25519 signing key. A client proves it holds the key by
 * signing the session binder (shared/session.ts `clientAuthContent`), so a signature cannot be replayed into
 * another session and the host, which never learns the binder, cannot make one.
 *
 * The first admin is pinned at the keystore's first start: the host passes the profile's admin key
 * (`--admin-key`), and the enclave seals it as `principals` under its root key. From then on the sealed list wins:
 * a host that later passes another key is ignored (logged), so a compromised host cannot make itself admin of an
 * existing keystore. The one window left is the very first start, where the operator who runs `ekms start`
 * provides the key (docs/protocol.md §5.4).
 *
 * Principals carry roles (`admin`: administer keys; `user`: use keys; docs/key-policy.md) and tags (string pairs
 * that key policy conditions can reference, e.g. `tenant`). The first admin, the operator identity of
 * `ekms start`, holds both roles so that a fresh installation can be used from one profile; principals registered
 * afterwards (`createPrincipal`, admins only) get exactly the roles given, which is how duties are separated.
 * Every change is sealed under a higher version before it takes effect.
 */
import { createPublicKey, type KeyObject, verify } from 'node:crypto';
import type { Logger } from 'pino';
import { decodeCbor, encodeCbor } from '../shared/cbor.js';
import { SealedStateError } from '../shared/crypto-errors.js';
import { ConfigError } from '../shared/errors.js';
import { KmsError } from '../shared/kms-errors.js';
import { clientAuthContent } from '../shared/session.js';
import { SessionError } from '../shared/session-errors.js';
import { Sealer } from './sealing.js';
import type { BlobStorage } from './storage/blob-storage.js';

const BLOB = 'principals';
/** Key record blobs (enclave/keystore/keystore.ts): their presence means this is not the keystore's first start. */
const KEY_BLOB_PREFIX = 'key.';

export const PRINCIPAL_ROLES = ['admin', 'user'] as const;
export type PrincipalRole = (typeof PRINCIPAL_ROLES)[number];

export interface RegisteredPrincipal {
  readonly name: string;
  readonly admin: boolean;
  /** SPKI DER of the Ed25519 public key. */
  readonly publicKey: Uint8Array;
  readonly roles: readonly PrincipalRole[];
  readonly tags: Readonly<Record<string, string>>;
}

/** Limits of the registry (style §6). */
export const PRINCIPAL_LIMITS = Object.freeze({
  maxPrincipals: 1000,
  maxTags: 16,
  maxNameBytes: 64,
  maxTagBytes: 128,
});
const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

interface StoredPrincipal {
  name: string;
  admin: boolean;
  publicKey: Uint8Array;
  roles?: string[];
  tags?: Record<string, string>;
}

function fromStored(p: StoredPrincipal): RegisteredPrincipal {
  // Lists sealed before roles existed: an admin had both roles, anyone else none.
  const roles = (p.roles ?? (p.admin ? ['admin', 'user'] : [])).filter((r): r is PrincipalRole =>
    (PRINCIPAL_ROLES as readonly string[]).includes(r),
  );
  return {
    name: p.name,
    admin: roles.includes('admin'),
    publicKey: new Uint8Array(p.publicKey),
    roles,
    tags: { ...(p.tags ?? {}) },
  };
}

function toStored(p: RegisteredPrincipal): StoredPrincipal {
  return { name: p.name, admin: p.admin, publicKey: p.publicKey, roles: [...p.roles], tags: { ...p.tags } };
}

function spkiKey(spki: Uint8Array): KeyObject {
  try {
    const key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
    if (key.asymmetricKeyType !== 'ed25519') throw new Error('not Ed25519');
    return key;
  } catch (cause) {
    throw new SessionError('AUTHENTICATION_FAILED', 'the principal key is not an Ed25519 SPKI public key', {
      cause,
    });
  }
}

/**
 * The canonical SPKI DER of an Ed25519 key (re-exported): one key has one encoding, so the same key cannot be
 * registered twice under other names with trailing bytes or long-form lengths, which OpenSSL also accepts.
 * @throws SessionError AUTHENTICATION_FAILED (not an Ed25519 SPKI public key)
 */
export function canonicalSpki(spki: Uint8Array): Uint8Array {
  return new Uint8Array(spkiKey(spki).export({ format: 'der', type: 'spki' }));
}

const sameKey = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

function canonicalOrUndefined(spki: Uint8Array): Uint8Array | undefined {
  try {
    return canonicalSpki(spki);
  } catch {
    return undefined;
  }
}

export class PrincipalRegistry {
  readonly #principals: RegisteredPrincipal[];
  /** Where changes are sealed (absent for an in-memory registry, e.g. without a storage channel). */
  readonly #store: { storage: BlobStorage; sealer: Sealer; version: number } | undefined;
  #serial: Promise<unknown> = Promise.resolve();

  constructor(
    principals: readonly RegisteredPrincipal[],
    store?: { storage: BlobStorage; sealer: Sealer; version: number },
  ) {
    this.#principals = principals.map((p) => ({ ...p, publicKey: canonicalSpki(p.publicKey) }));
    this.#store = store;
  }

  /**
   * Loads the sealed principals, or pins `admin` on the first start (a store without key records).
   * @throws SealedStateError (corrupt/rolled back; SEALED_BLOB_ROLLBACK when the principals are missing while key
   *   records exist), StoreError
   */
  static async load(options: {
    storage: BlobStorage;
    rootKey: Uint8Array;
    admin: Uint8Array | undefined;
    logger: Logger;
  }): Promise<PrincipalRegistry> {
    const sealer = new Sealer(options.rootKey, { purpose: 'principals' });
    let keep = false;
    try {
      const bytes = await options.storage.get(BLOB);
      if (bytes !== undefined) {
        const list = decodeCbor(sealer.open(BLOB, { minVersion: 1 }, bytes)) as StoredPrincipal[];
        const version = sealer.versions.highest(BLOB) ?? 1;
        const registry = new PrincipalRegistry(list.map(fromStored), {
          storage: options.storage,
          sealer,
          version,
        });
        keep = true;
        // Informational only (the sealed admin stays either way): a key that does not even parse is "different".
        const admin = options.admin === undefined ? undefined : canonicalOrUndefined(options.admin);
        if (
          options.admin !== undefined &&
          !registry.#principals.some((p) => admin !== undefined && sameKey(p.publicKey, admin))
        ) {
          options.logger.warn(
            'the host passed an admin key that differs from the sealed one; the sealed admin stays',
          );
        }
        return registry;
      }
      /* Precondition: the first admin is pinned only on a store without keys. Sealed principals missing beside key
         records mean the host dropped them (e.g. to pin its own --admin-key and become admin of existing keys). */
      const keyRecords = (await options.storage.list()).filter((n) => n.startsWith(KEY_BLOB_PREFIX));
      if (keyRecords.length > 0) {
        throw new SealedStateError(
          'SEALED_BLOB_ROLLBACK',
          `the sealed principals are missing but ${keyRecords.length} key record(s) exist; refusing to pin an admin key from the host`,
          { details: { name: BLOB } },
        );
      }
      if (options.admin === undefined) {
        keep = true;
        return new PrincipalRegistry([], { storage: options.storage, sealer, version: 0 });
      }
      const first: RegisteredPrincipal = {
        name: 'admin',
        admin: true,
        publicKey: canonicalSpki(options.admin),
        roles: ['admin', 'user'],
        tags: {},
      };
      await options.storage.put(BLOB, sealer.seal(BLOB, 1, encodeCbor([toStored(first)])));
      options.logger.info('first admin pinned in sealed state');
      keep = true;
      return new PrincipalRegistry([first], { storage: options.storage, sealer, version: 1 });
    } finally {
      if (!keep) sealer.close();
    }
  }

  /** Every principal (public data only). */
  list(): readonly RegisteredPrincipal[] {
    return [...this.#principals];
  }

  /**
   * Registers a principal; sealed under a higher version before it counts.
   * @throws KmsError PRINCIPAL_INVALID (name, roles, tags, key), PRINCIPAL_EXISTS, KEY_LIMIT_EXCEEDED;
   *   StoreError; ConfigError CONFIG_INVALID without sealed storage
   */
  add(input: {
    name: string;
    publicKey: Uint8Array;
    roles: readonly string[];
    tags?: Record<string, string>;
  }): Promise<RegisteredPrincipal> {
    const run = this.#serial.then(async () => {
      const store = this.#store;
      if (store === undefined)
        throw new ConfigError('CONFIG_INVALID', 'principals cannot be stored without a storage channel');
      /* Precondition: a principal has a valid name, known roles, bounded tags and an Ed25519 key not yet registered. */
      if (typeof input.name !== 'string' || !NAME.test(input.name)) {
        throw new KmsError(
          'PRINCIPAL_INVALID',
          'a principal name is 1..64 of [A-Za-z0-9._@-], starting with a letter or digit',
        );
      }
      const roles = [...new Set(input.roles)];
      if (roles.length === 0 || !roles.every((r) => (PRINCIPAL_ROLES as readonly string[]).includes(r))) {
        throw new KmsError(
          'PRINCIPAL_INVALID',
          `roles must be a non-empty list of ${PRINCIPAL_ROLES.join(', ')}`,
        );
      }
      const tags = input.tags ?? {};
      const tagEntries = Object.entries(tags);
      if (
        tagEntries.length > PRINCIPAL_LIMITS.maxTags ||
        !tagEntries.every(
          ([k, v]) =>
            typeof v === 'string' && NAME.test(k) && Buffer.byteLength(v) <= PRINCIPAL_LIMITS.maxTagBytes,
        )
      ) {
        throw new KmsError(
          'PRINCIPAL_INVALID',
          `at most ${PRINCIPAL_LIMITS.maxTags} tags, names like principal names, values ≤ ${PRINCIPAL_LIMITS.maxTagBytes} bytes`,
        );
      }
      let publicKey: Uint8Array;
      try {
        publicKey = canonicalSpki(input.publicKey);
      } catch (cause) {
        throw new KmsError('PRINCIPAL_INVALID', 'publicKey must be an Ed25519 public key (SPKI DER)', {
          cause,
        });
      }
      if (this.#principals.some((p) => p.name === input.name || sameKey(p.publicKey, publicKey))) {
        throw new KmsError('PRINCIPAL_EXISTS', 'a principal with this name or key is already registered');
      }
      if (this.#principals.length >= PRINCIPAL_LIMITS.maxPrincipals) {
        throw new KmsError('KEY_LIMIT_EXCEEDED', `at most ${PRINCIPAL_LIMITS.maxPrincipals} principals`);
      }
      const p: RegisteredPrincipal = {
        name: input.name,
        admin: roles.includes('admin'),
        publicKey,
        roles: roles as PrincipalRole[],
        tags: { ...tags },
      };
      const next = [...this.#principals, p];
      const version = store.version + 1;
      await store.storage.put(BLOB, store.sealer.seal(BLOB, version, encodeCbor(next.map(toStored))));
      store.version = version;
      this.#principals.push(p);
      return p;
    });
    this.#serial = run.catch(() => undefined);
    return run;
  }

  close(): void {
    this.#store?.sealer.close();
  }

  get size(): number {
    return this.#principals.length;
  }

  /**
   * Authenticates a principal: `publicKey` must be registered and `signature` must verify over the session binder.
   * @throws SessionError AUTHENTICATION_FAILED
   */
  authenticate(publicKey: Uint8Array, signature: Uint8Array, binder: Uint8Array): RegisteredPrincipal {
    const canonical = canonicalSpki(publicKey);
    const p = this.#principals.find((x) => sameKey(x.publicKey, canonical));
    /* Precondition: the key is a registered principal's. */
    if (p === undefined)
      throw new SessionError('AUTHENTICATION_FAILED', 'this key is not a registered principal');
    /* Precondition: the principal signed this session's binder (not another session's). */
    if (!verify(null, clientAuthContent(binder), spkiKey(p.publicKey), signature)) {
      throw new SessionError(
        'AUTHENTICATION_FAILED',
        "the principal's signature over this session does not verify",
      );
    }
    return p;
  }
}
