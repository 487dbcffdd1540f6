/**
 * Registered principals (design §3, §4): names with an Ed25519 signing key. A client proves it holds the key by
 * signing the session binder (shared/session.ts `clientAuthContent`), so a signature cannot be replayed into
 * another session and the host, which never learns the binder, cannot make one.
 *
 * The first admin is pinned at the keystore's first start: the host passes the profile's admin key
 * (`--admin-key`), and the enclave seals it as `principals` under its root key. From then on the sealed list wins:
 * a host that later passes another key is ignored (logged), so a compromised host cannot make itself admin of an
 * existing keystore. The one window left is the very first start, where the operator who runs `ekms start`
 * provides the key (docs/protocol.md §5.4). More principals and roles come with access control (issue 6).
 */
import { createPublicKey, type KeyObject, verify } from 'node:crypto';
import type { Logger } from 'pino';
import { decodeCbor, encodeCbor } from '../shared/cbor.js';
import { SealedStateError } from '../shared/crypto-errors.js';
import { clientAuthContent } from '../shared/session.js';
import { SessionError } from '../shared/session-errors.js';
import { Sealer } from './sealing.js';
import type { BlobStorage } from './storage/blob-storage.js';

const BLOB = 'principals';
/** Key record blobs (enclave/keystore/keystore.ts): their presence means this is not the keystore's first start. */
const KEY_BLOB_PREFIX = 'key.';

export interface RegisteredPrincipal {
  readonly name: string;
  readonly admin: boolean;
  /** SPKI DER of the Ed25519 public key. */
  readonly publicKey: Uint8Array;
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

export class PrincipalRegistry {
  readonly #principals: RegisteredPrincipal[];

  constructor(principals: readonly RegisteredPrincipal[]) {
    for (const p of principals) spkiKey(p.publicKey);
    this.#principals = [...principals];
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
    try {
      const bytes = await options.storage.get(BLOB);
      if (bytes !== undefined) {
        const list = decodeCbor(sealer.open(BLOB, { minVersion: 1 }, bytes)) as Array<{
          name: string;
          admin: boolean;
          publicKey: Uint8Array;
        }>;
        const registry = new PrincipalRegistry(
          list.map((p) => ({ name: p.name, admin: p.admin, publicKey: new Uint8Array(p.publicKey) })),
        );
        if (
          options.admin !== undefined &&
          !registry.#principals.some((p) => Buffer.from(p.publicKey).equals(Buffer.from(options.admin!)))
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
      if (options.admin === undefined) return new PrincipalRegistry([]);
      const list = [{ name: 'admin', admin: true, publicKey: options.admin }];
      const registry = new PrincipalRegistry(list);
      await options.storage.put(BLOB, sealer.seal(BLOB, 1, encodeCbor(list)));
      options.logger.info('first admin pinned in sealed state');
      return registry;
    } finally {
      sealer.close();
    }
  }

  get size(): number {
    return this.#principals.length;
  }

  /**
   * Authenticates a principal: `publicKey` must be registered and `signature` must verify over the session binder.
   * @throws SessionError AUTHENTICATION_FAILED
   */
  authenticate(publicKey: Uint8Array, signature: Uint8Array, binder: Uint8Array): RegisteredPrincipal {
    const p = this.#principals.find((x) => Buffer.from(x.publicKey).equals(Buffer.from(publicKey)));
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
