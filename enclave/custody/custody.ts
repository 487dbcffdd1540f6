/**
 * M-of-N root-key custody inside the enclave (design §4; docs/custody.md). Two moments:
 *
 * - **Provisioning** (`provisionCustody`, first start of an empty store in custody mode): the enclave generates the
 *   32-byte root key, splits it into N Shamir shares (threshold M; enclave/custody/shamir.ts), encrypts each share
 *   with HPKE to its custodian's X-Wing key, commits to each share, signs the bundle with its identity key, attaches
 *   its evidence, and hands the host the bundle (blob `custody.bundle`). The plaintext root key and shares are never
 *   written anywhere; the shares are zeroed once encrypted.
 *
 * - **Recovery** (`CustodyLock`, any later start): the enclave has the bundle and no root key, so it is locked.
 *   Custodians submit their decrypted shares inside attested sessions. Each share is checked against its
 *   commitment in the signed bundle on arrival, so a bad share is refused alone (CUSTODY_SHARE_INVALID) and the
 *   good ones are kept. With M good shares the enclave combines them, checks the result against the bundle's key
 *   check value, then hands it to `onUnlock`, which checks it against the existing sealed state (the sealing key id
 *   of the `principals` blob) before anything is opened. Held shares are zeroed after combining, on failure, and
 *   when the first held share is older than the share TTL (custodians then submit again).
 *
 * Why these checks (docs/custody.md §6): the host stores the bundle and may swap, replay or forge it. The bundle's
 * signature and evidence prove it came from an enclave with this measurement (on hardware; in simulation whoever
 * holds the simulated CA can forge evidence); the launch-pinned custody set must match the bundle's; the key check
 * ties shares → root key; the sealed state's key id ties root key → the state this enclave is about to serve.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { verifyBundleEvidence } from '../../attestation/custody-evidence.js';
import { SealedStateError } from '../../shared/crypto-errors.js';
import {
  type BundleBody,
  type BundleShare,
  bundleSignedContent,
  CUSTODY_BUNDLE_BLOB,
  CUSTODY_LIMITS,
  type CustodyBundle,
  type CustodySet,
  custodySetDigest,
  decodeBundle,
  encodeBundle,
  encodeBundleBody,
  rootKeyCheck,
  shareCommitment,
  shareInfo,
} from '../../shared/custody.js';
import { CustodyError } from '../../shared/custody-errors.js';
import { ProtocolError } from '../../shared/errors.js';
import { HPKE_SUITE, hpkeSeal } from '../../shared/hpke.js';
import { KmsError } from '../../shared/kms-errors.js';
import type { Attestor } from '../attestor/attestor.js';
import { Sealer } from '../sealing.js';
import type { EnclaveIdentity } from '../session.js';
import type { BlobStorage } from '../storage/blob-storage.js';
import { combineShares, splitSecret } from './shamir.js';

const ROOT_KEY_BYTES = 32;
/** Partial shares are forgotten this long after the first one arrived (custodians then submit again). */
export const CUSTODY_SHARE_TTL_MS = 15 * 60 * 1000;

/** The sealed blob whose key id ties a recovered root key to the existing state (enclave/principals.ts). */
const STATE_CHECK_BLOB = 'principals';

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * First start in custody mode: makes the root key and the custody bundle and stores the bundle through the host.
 * Only for a store without any blob (a fresh root key over existing state would orphan it).
 * Returns the root key, which the caller zeroes once the sealers are built.
 * @throws KmsError ROOT_KEY_UNAVAILABLE (the store is not empty); CustodyError CUSTODY_INVALID; StoreError
 */
export async function provisionCustody(options: {
  storage: BlobStorage;
  set: CustodySet;
  identity: EnclaveIdentity;
  now: () => number;
  /** The first admin this enclave pins (`--admin-key`, SPKI DER), recorded in the bundle; undefined: none. */
  admin?: Uint8Array | undefined;
}): Promise<{ rootKey: Uint8Array; bundle: Uint8Array }> {
  const { storage, set, identity } = options;
  const existing = await storage.list();
  /* Precondition: a root key is only generated for an empty store (decisions 15: never over existing state). */
  if (existing.length > 0) {
    throw new KmsError(
      'ROOT_KEY_UNAVAILABLE',
      `custody mode found no custody bundle but the store holds ${existing.length} blob(s); refusing to create a new root key over existing state`,
    );
  }
  const rootKey = new Uint8Array(randomBytes(ROOT_KEY_BYTES));
  let shares: Uint8Array[] = [];
  try {
    shares = await splitSecret(rootKey, set.custodians.length, set.threshold);
    const salt = new Uint8Array(randomBytes(CUSTODY_LIMITS.saltBytes));
    const head = {
      setDigest: custodySetDigest(set),
      keyCheck: rootKeyCheck(rootKey),
      generation: 1,
    };
    const entries: BundleShare[] = set.custodians.map((c, i) => {
      const index = i + 1;
      const share = shares[i]!;
      const { enc, ciphertext } = hpkeSeal(c.publicKey, shareInfo(head, index), new Uint8Array(0), share);
      return { index, custodian: c.name, commitment: shareCommitment(salt, index, share), enc, ciphertext };
    });
    const body: BundleBody = {
      v: 1,
      suite: HPKE_SUITE.id,
      set,
      ...head,
      createdAt: new Date(options.now()).toISOString(),
      admin: options.admin === undefined ? null : Uint8Array.from(options.admin),
      salt,
      shares: entries,
    };
    const bodyBytes = encodeBundleBody(body);
    const bundle = encodeBundle({
      bodyBytes,
      identity: identity.publicKey,
      evidence: await identity.evidence(),
      signature: identity.signStatement(bundleSignedContent(bodyBytes)),
    });
    /* Precondition: the bundle is stored before anything is sealed under the root key (else it is unrecoverable). */
    await storage.put(CUSTODY_BUNDLE_BLOB, bundle);
    return { rootKey, bundle };
  } catch (err) {
    rootKey.fill(0);
    throw err;
  } finally {
    for (const s of shares) s.fill(0);
  }
}

/**
 * Refuses a recovered root key that did not seal the existing state: the `principals` blob (written on every
 * keystore's first start) must open under it.
 *
 * A store without that blob (a crash right after provisioning, or a host that copied the bundle into an empty data
 * dir) gets its first admin pinned at this unlock, sealed under the *real* root key: that admin must be the one the
 * provisioning enclave recorded in the signed bundle. Otherwise the host unlocks such a fork with its own
 * `--admin-key` and splices the resulting `principals` blob into the real state (admin over every key).
 * @throws CustodyError CUSTODY_INVALID (details.reason `state-key-mismatch`, `admin-mismatch`); StoreError
 */
export async function checkRootKeyAgainstState(
  storage: BlobStorage,
  rootKey: Uint8Array,
  launch: { readonly bundle: BundleBody; readonly admin: Uint8Array | undefined },
): Promise<void> {
  const blob = await storage.get(STATE_CHECK_BLOB);
  if (blob === undefined) {
    const expected = launch.bundle.admin;
    const given = launch.admin;
    /* Precondition: without sealed principals, the admin pinned now is the bundle's first admin (or none). */
    if (
      expected === null
        ? given !== undefined
        : !(given instanceof Uint8Array) || !same(Uint8Array.from(given), expected)
    ) {
      throw new CustodyError(
        'CUSTODY_INVALID',
        'the store holds no sealed principals and the launch admin key is not the first admin named in the custody bundle; refusing to pin it under the recovered root key',
        { details: { reason: 'admin-mismatch' } },
      );
    }
    return;
  }
  const sealer = new Sealer(rootKey, { purpose: 'principals' });
  try {
    sealer.open(STATE_CHECK_BLOB, { minVersion: 0 }, blob).fill(0);
  } catch (err) {
    /* Precondition: the recovered root key is the one that sealed this store's state (no adopted foreign key). */
    if (err instanceof SealedStateError && err.code === 'SEALED_KEY_MISMATCH') {
      throw new CustodyError(
        'CUSTODY_INVALID',
        'the recovered root key did not seal the existing state: the custody bundle belongs to another deployment',
        { details: { reason: 'state-key-mismatch' }, cause: err },
      );
    }
    throw err;
  } finally {
    sealer.close();
  }
}

/** What `custodyStatus` answers (public: the host knows all of it from the bundle). */
export interface CustodyStatus {
  readonly locked: boolean;
  readonly threshold: number;
  readonly custodians: readonly string[];
  /** Share indexes held now (1-based). */
  readonly held: readonly number[];
  readonly keyCheck: string;
  readonly setDigest: string;
  readonly generation: number;
}

export interface CustodyLockOptions {
  /** The bundle bytes as the host returned them. */
  readonly bundle: Uint8Array;
  /** The custody set pinned at launch (`--custody`); the bundle must be for exactly this set. */
  readonly set: CustodySet;
  readonly attestor: Attestor;
  readonly now: () => number;
  readonly logger: Logger;
  /** Called once with the recovered root key (the lock zeroes it afterwards), the verified bundle and the names of
   *  the custodians whose shares combined to it (for the audit trail); throw to refuse it. */
  readonly onUnlock: (
    rootKey: Uint8Array,
    bundle: CustodyBundle,
    custodians: readonly string[],
  ) => Promise<void>;
  readonly shareTtlMs?: number;
}

/**
 * The locked state: the verified bundle, the shares submitted so far, and the unlock.
 */
export class CustodyLock {
  readonly bundle: CustodyBundle;
  readonly #bytes: Uint8Array;
  readonly #held = new Map<number, Uint8Array>();
  readonly #now: () => number;
  readonly #logger: Logger;
  readonly #onUnlock: (
    rootKey: Uint8Array,
    bundle: CustodyBundle,
    custodians: readonly string[],
  ) => Promise<void>;
  readonly #ttl: number;
  #firstAt = 0;
  /** Fires the expiry of partial shares even when nobody calls the lock (shares must not linger in memory). */
  #expiry: ReturnType<typeof setTimeout> | undefined;
  #locked = true;
  #busy: Promise<unknown> = Promise.resolve();

  /**
   * Decodes and verifies the bundle: structure, signature, the provisioning enclave's evidence (this enclave's
   * measurement, its trust roots), and the launch-pinned custody set.
   * @throws CustodyError CUSTODY_INVALID
   */
  constructor(options: CustodyLockOptions) {
    const bundle = decodeBundle(options.bundle);
    const a = options.attestor;
    verifyBundleEvidence(bundle, {
      measurement: a.measurement,
      extraRoots: a.simulatedRoot === null ? [] : [a.simulatedRoot],
      allowSimulated: a.simulated,
      now: new Date(options.now()),
    });
    /* Precondition: the bundle is for the custody set the enclave was launched with (an older set's bundle,
       e.g. replayed after a custodian was replaced, is refused). */
    if (!same(bundle.body.setDigest, custodySetDigest(options.set))) {
      throw new CustodyError(
        'CUSTODY_INVALID',
        'the custody bundle is for another custody set than the one this enclave was launched with',
        { details: { reason: 'set-mismatch' } },
      );
    }
    this.bundle = bundle;
    this.#bytes = Uint8Array.from(options.bundle);
    this.#now = options.now;
    this.#logger = options.logger;
    this.#onUnlock = options.onUnlock;
    this.#ttl = options.shareTtlMs ?? CUSTODY_SHARE_TTL_MS;
  }

  get locked(): boolean {
    return this.#locked;
  }

  /** The bundle bytes (custodians fetch them to find and verify their share). */
  bundleBytes(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }

  status(): CustodyStatus {
    this.#expire();
    const b = this.bundle.body;
    return {
      locked: this.#locked,
      threshold: b.set.threshold,
      custodians: b.set.custodians.map((c) => c.name),
      held: [...this.#held.keys()].sort((x, y) => x - y),
      keyCheck: Buffer.from(b.keyCheck).toString('hex'),
      setDigest: Buffer.from(b.setDigest).toString('hex'),
      generation: b.generation,
    };
  }

  #forget(): void {
    for (const s of this.#held.values()) s.fill(0);
    this.#held.clear();
    this.#firstAt = 0;
    if (this.#expiry !== undefined) clearTimeout(this.#expiry);
    this.#expiry = undefined;
  }

  /** Expire on time, not only at the next call; unref'd so that it never keeps the process alive. */
  #arm(delayMs: number): void {
    if (this.#expiry !== undefined) clearTimeout(this.#expiry);
    this.#expiry = setTimeout(() => {
      this.#expiry = undefined;
      this.#expire();
      // A timer may fire a little early (or the clock is injected): re-arm for what is left.
      if (this.#held.size > 0) this.#arm(Math.max(1, this.#firstAt + this.#ttl - this.#now() + 1));
    }, delayMs);
    this.#expiry.unref?.();
  }

  #expire(): void {
    /* Precondition: partial shares do not linger: older than the TTL, all are zeroed and forgotten. */
    if (this.#held.size > 0 && this.#now() - this.#firstAt > this.#ttl) {
      this.#logger.warn({ held: this.#held.size }, 'custody shares expired before the threshold; forgotten');
      this.#forget();
    }
  }

  /**
   * Takes one custodian's share. Refused alone if malformed or not matching its commitment; once M distinct
   * shares are held, combines them and unlocks (serialised: one unlock attempt at a time).
   * @throws ProtocolError REQUEST_INVALID (not locked); CustodyError CUSTODY_SHARE_INVALID, CUSTODY_INVALID
   *   (the shares combine to a root key that fails the key check or the state check: all shares are forgotten);
   *   whatever `onUnlock` throws
   */
  submit(index: unknown, share: unknown): Promise<{ held: number; threshold: number; unlocked: boolean }> {
    const run = this.#busy.then(() => this.#submit(index, share));
    this.#busy = run.catch(() => undefined);
    return run;
  }

  async #submit(
    index: unknown,
    share: unknown,
  ): Promise<{ held: number; threshold: number; unlocked: boolean }> {
    const body = this.bundle.body;
    /* Precondition: shares are taken only while locked. */
    if (!this.#locked) throw new ProtocolError('REQUEST_INVALID', 'the enclave is not locked');
    const n = body.set.custodians.length;
    /* Precondition: the index names a custodian of the set. */
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 1 || index > n) {
      throw new CustodyError('CUSTODY_SHARE_INVALID', `index must be 1..${n}`, {
        details: { reason: 'index' },
      });
    }
    /* Precondition: a share is 33 bytes (root key length + x-coordinate). */
    if (!(share instanceof Uint8Array) || share.length !== CUSTODY_LIMITS.shareBytes) {
      throw new CustodyError('CUSTODY_SHARE_INVALID', `a share is ${CUSTODY_LIMITS.shareBytes} bytes`, {
        details: { index, reason: 'length' },
      });
    }
    this.#expire();
    /* Precondition: the share matches its commitment in the signed bundle (a bad share is refused alone). */
    const entry = body.shares[index - 1]!;
    if (!same(shareCommitment(body.salt, index, share), entry.commitment)) {
      this.#logger.warn({ index }, 'custody share refused: commitment mismatch');
      throw new CustodyError(
        'CUSTODY_SHARE_INVALID',
        `the share for custodian ${entry.custodian} (index ${index}) does not match its commitment in the custody bundle`,
        { details: { index, reason: 'commitment' } },
      );
    }
    if (!this.#held.has(index)) {
      if (this.#held.size === 0) {
        this.#firstAt = this.#now();
        this.#arm(this.#ttl + 1);
      }
      this.#held.set(index, Uint8Array.from(share));
    }
    this.#logger.info(
      { index, held: this.#held.size, threshold: body.set.threshold },
      'custody share accepted',
    );
    if (this.#held.size < body.set.threshold) {
      return { held: this.#held.size, threshold: body.set.threshold, unlocked: false };
    }
    let rootKey: Uint8Array | undefined;
    try {
      rootKey = await combineShares([...this.#held.values()], body.set.threshold);
      /* Precondition: the shares combine to the root key the bundle names (key check value). */
      if (!same(rootKeyCheck(rootKey), body.keyCheck)) {
        throw new CustodyError(
          'CUSTODY_INVALID',
          'the custodian shares do not combine to the root key the bundle names (inconsistent bundle)',
          { details: { reason: 'key-check' } },
        );
      }
      const contributors = [...this.#held.keys()]
        .sort((a, b) => a - b)
        .map((i) => body.shares[i - 1]!.custodian);
      await this.#onUnlock(rootKey, this.bundle, contributors);
      this.#locked = false;
      this.#logger.info(
        { generation: body.generation },
        'root key recovered from custodian shares; unlocked',
      );
      return { held: body.set.threshold, threshold: body.set.threshold, unlocked: true };
    } finally {
      rootKey?.fill(0);
      // Combined or refused: the shares served their purpose either way; a retry starts from new submissions.
      this.#forget();
    }
  }
}
