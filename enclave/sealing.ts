/**
 * Sealed state (design §1; docs/sealed-state.md): the enclave has no disk, so everything it persists goes through
 * the untrusted host as blobs sealed under a key derived from the root key. The host stores them (host/blob-store.ts)
 * and may lose, replay, swap or alter them; every such change is refused here with a code, within a run. Across
 * enclave restarts a replayed older blob cannot be detected without a trusted monotonic counter
 * (docs/sealed-state.md §5 states exactly what is and is not covered).
 *
 * Blob layout (format version 1; integers big-endian):
 *
 *   off      len   field
 *   0        4     magic "EKSS" (45 4B 53 53)
 *   4        1     format version (1)
 *   5        2     suite id (u16, shared/suites.ts)
 *   7        16    sealing key id (identifies root key + purpose + suite; not secret)
 *   23       1     name length L (1..128)
 *   24       L     name ([a-z0-9][a-z0-9._-]*, the host store's name rule)
 *   24+L     8     version (u64, at most 2^53-1)
 *   32+L     N     nonce (random; N = the suite's nonce length, 12 or 24)
 *   32+L+N   C+16  ciphertext ‖ tag (the suite's AEAD; AAD = bytes 0 .. 32+L+N, the whole header)
 *
 * Key schedule (HKDF-SHA-384, RFC 5869, node:crypto `hkdfSync`, for every suite: the sealed state's own schedule, not
 * the suite's per-message one), per suite and purpose, once at construction:
 *   sealingKey (32) ‖ keyId (16) = HKDF(IKM = root key, salt = empty,
 *                                       info = "EKMS-SEALED-STATE-V1" ‖ 0x00 ‖ suite name ‖ 0x00 ‖ purpose, 48)
 * The root key is uniformly random, so the empty salt is fine (RFC 5869 §3.1). The key id lets `open` tell a blob
 * sealed under another root key or purpose (SEALED_KEY_MISMATCH) from a corrupted one (SEALED_BLOB_CORRUPT).
 *
 * Order of checks in `open`: bounds and structure, then authentication, then name and version. So a code means
 * what it says: NAME_MISMATCH and ROLLBACK are only reported for authentic blobs (the host served the wrong blob);
 * an edited name or version field breaks authentication and is CORRUPT.
 *
 * Random nonces under one key per purpose: at most 2^32 seals per root key and purpose keep the AES-GCM nonce
 * collision probability below 2^-32 (NIST SP 800-38D §8.3); sealed writes happen once per state change.
 */
import { createHash, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { CryptoError, SealedStateError } from '../shared/crypto-errors.js';
import { LIMITS } from '../shared/limits.js';
import { getSuite, SUITES, type Suite, SuiteId } from '../shared/suites.js';
import { getAead } from './crypto/aead.js';

/** "EKSS": ekms sealed state. */
export const SEALED_MAGIC = Uint8Array.of(0x45, 0x4b, 0x53, 0x53);
/** The only format version this build writes and reads. */
export const SEALED_FORMAT_V1 = 1;

/**
 * Size limits of sealed blobs. A blob travels enclave ⇄ host as one CBOR byte string, so the largest blob is the
 * CBOR byte-string limit. (Candidates for shared/limits.ts, together with the host store's.)
 */
export const SEALED_LIMITS = {
  /** Longest blob name, in ASCII bytes (same as the host store's). */
  maxNameBytes: LIMITS.maxBlobNameBytes,
  /** Largest sealed blob, in bytes. */
  maxBlobBytes: LIMITS.maxSealedBlobBytes,
  /** Largest plaintext: the blob limit minus 1 KiB, which covers the largest header and tag (224 bytes). */
  maxPlaintextBytes: LIMITS.maxSealedBlobBytes - 1024,
  /** Largest version (u64 on the wire, kept to a JS-safe integer). */
  maxVersion: Number.MAX_SAFE_INTEGER,
} as const;

/** Blob names: the host store's rule (lower case, so that case-insensitive filesystems cannot merge two names). */
const NAME = /^[a-z0-9][a-z0-9._-]{0,127}$/;
/** Purposes: short lower-case labels (e.g. "keystore", "audit"). */
const PURPOSE = /^[a-z0-9][a-z0-9.-]{0,63}$/;
const INFO_LABEL = 'EKMS-SEALED-STATE-V1';
const KEY_ID_BYTES = 16;
/** Offsets of the fixed part of the header. */
const OFF_FORMAT = 4;
const OFF_SUITE = 5;
const OFF_KEY_ID = 7;
const OFF_NAME_LENGTH = 23;
const OFF_NAME = 24;

/** What `open` requires of a blob's version: exactly this version, or at least `minVersion`. */
export type ExpectedVersion = number | { readonly minVersion: number };

/** What the tracker remembers of a name: the highest version sealed or opened, and that blob's digest. */
interface Acknowledged {
  version: number;
  digest: Buffer;
  deleted: boolean;
}

/**
 * Highest version sealed or opened per blob name, in memory, for one run of the enclave. It refuses an older
 * version than one already acknowledged (SEALED_BLOB_ROLLBACK), and a different blob at the acknowledged version
 * (SEALED_BLOB_VERSION_MISMATCH: two blobs of one name and version can only come from two forks of the state).
 * It is empty after a restart: that is the limit of rollback protection without a trusted counter.
 */
export class VersionTracker {
  readonly #entries = new Map<string, Acknowledged>();

  /** The highest version of `name` sealed or opened in this run, or undefined. */
  highest(name: string): number | undefined {
    return this.#entries.get(name)?.version;
  }

  /**
   * Call when the store has no blob `name`.
   * @throws SealedStateError SEALED_BLOB_ROLLBACK if a version of `name` was acknowledged in this run and not
   *   deleted on purpose (`markDeleted`): the host dropped it, a rollback to "never written".
   */
  checkMissing(name: string): void {
    const entry = this.#entries.get(name);
    /* Precondition: a blob acknowledged in this run does not disappear unless we deleted it. */
    if (entry !== undefined && !entry.deleted) {
      throw new SealedStateError(
        'SEALED_BLOB_ROLLBACK',
        `sealed blob '${name}' is missing but version ${entry.version} was acknowledged in this run`,
        { details: { name, acknowledged: entry.version } },
      );
    }
  }

  /**
   * Records that the enclave deleted `name` on purpose. The highest version is kept, so a replayed old blob is
   * still refused and a re-created blob must use a higher version.
   */
  markDeleted(name: string): void {
    const entry = this.#entries.get(name);
    if (entry !== undefined) entry.deleted = true;
  }

  /**
   * Checks a version about to be sealed: versions of a name only increase, and each is sealed once.
   * @throws SealedStateError SEALED_BLOB_ROLLBACK if `version` is not above the acknowledged one.
   */
  checkSeal(name: string, version: number): void {
    const entry = this.#entries.get(name);
    /* Precondition: a sealed version is above every version of the name acknowledged in this run. */
    if (entry !== undefined && version <= entry.version) {
      throw new SealedStateError(
        'SEALED_BLOB_ROLLBACK',
        `refusing to seal version ${version} of '${name}': version ${entry.version} is already acknowledged (versions only increase; resend the same bytes to retry a write)`,
        { details: { name, version, acknowledged: entry.version } },
      );
    }
  }

  /**
   * Checks an authentic blob that was opened.
   * @throws SealedStateError SEALED_BLOB_ROLLBACK (older than acknowledged), SEALED_BLOB_VERSION_MISMATCH (same
   *   version, different blob).
   */
  checkOpen(name: string, version: number, digest: Buffer): void {
    const entry = this.#entries.get(name);
    if (entry === undefined) return;
    /* Precondition: an opened blob is not older than the version acknowledged in this run, and a blob deleted
       on purpose does not come back at or below its last version. */
    if (version < entry.version || (entry.deleted && version === entry.version)) {
      throw new SealedStateError(
        'SEALED_BLOB_ROLLBACK',
        `sealed blob '${name}' has version ${version}, not newer than version ${entry.version} acknowledged${entry.deleted ? ' and deleted' : ''} in this run`,
        { details: { name, version, acknowledged: entry.version, deleted: entry.deleted } },
      );
    }
    /* Precondition: at the acknowledged version, the blob is the one acknowledged (no forked state). */
    if (version === entry.version && !timingSafeEqual(digest, entry.digest)) {
      throw new SealedStateError(
        'SEALED_BLOB_VERSION_MISMATCH',
        `sealed blob '${name}' version ${version} differs from the blob acknowledged at that version (forked state)`,
        { details: { name, version } },
      );
    }
  }

  /** Records a sealed or opened blob (after the checks passed). */
  record(name: string, version: number, digest: Buffer): void {
    const entry = this.#entries.get(name);
    if (entry === undefined || version > entry.version || entry.deleted) {
      this.#entries.set(name, { version, digest, deleted: false });
    }
  }
}

/**
 * The suite of new sealed blobs. It does not follow DEFAULT_SUITE_ID (the blobs' and streams' per-message key
 * schedule, a hot path): sealing keys are derived once per run, so the sealed state stays as it is on disk.
 */
export const SEALED_STATE_SUITE_ID: SuiteId = SuiteId.Aes256GcmHkdfSha384CommitV1;

/** Options of a Sealer. */
export interface SealerOptions {
  /** What the sealed state is for ("keystore", "audit"…): each purpose has its own key. `[a-z0-9][a-z0-9.-]{0,63}`. */
  readonly purpose: string;
  /**
   * Suite for new blobs (default: SEALED_STATE_SUITE_ID, AES-256-GCM/HKDF-SHA-384). Blobs of every registered suite
   * open.
   */
  readonly suite?: SuiteId;
  /** The run's version tracker; by default the sealer has its own. */
  readonly versions?: VersionTracker;
}

interface SuiteKey {
  readonly key: Uint8Array;
  readonly keyId: Uint8Array;
}

function checkName(name: unknown): asserts name is string {
  /* Precondition: the blob name follows the store's rule (1..128 of [a-z0-9._-], first [a-z0-9]). */
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new CryptoError(
      'CRYPTO_PARAMETER_INVALID',
      'sealed blob name must be 1..128 characters of [a-z0-9._-], starting with [a-z0-9]',
    );
  }
}

function checkVersion(version: unknown, what: string): asserts version is number {
  /* Precondition: versions are integers in 0..2^53-1. */
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0) {
    throw new CryptoError('CRYPTO_PARAMETER_INVALID', `${what} must be an integer in 0..2^53-1`);
  }
}

function corrupt(name: string, reason: string, cause?: unknown): SealedStateError {
  return new SealedStateError('SEALED_BLOB_CORRUPT', `sealed blob for '${name}' is corrupt: ${reason}`, {
    details: { name, reason },
    ...(cause === undefined ? {} : { cause }),
  });
}

function digestOf(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

/**
 * Seals and opens the enclave's persistent state for one purpose. Built from the root key, from which it derives
 * one sealing key per registered suite at construction; it keeps no reference to the root key (the caller owns
 * it and may zero it right after). `close()` zeroes the derived keys.
 */
export class Sealer {
  readonly purpose: string;
  /** Suite of new blobs. */
  readonly suite: Suite;
  /** Versions acknowledged in this run. */
  readonly versions: VersionTracker;
  readonly #keys = new Map<SuiteId, SuiteKey>();
  #closed = false;

  /**
   * @throws CryptoError KEY_INVALID (root key not 32 bytes), CRYPTO_PARAMETER_INVALID (purpose), SUITE_UNKNOWN.
   */
  constructor(rootKey: Uint8Array, options: SealerOptions) {
    /* Precondition: the root key is 32 bytes. */
    if (!(rootKey instanceof Uint8Array) || rootKey.length !== 32) {
      throw new CryptoError('KEY_INVALID', 'the root key must be 32 bytes');
    }
    /* Precondition: the purpose is a short lower-case label (it is part of the HKDF info). */
    if (typeof options?.purpose !== 'string' || !PURPOSE.test(options.purpose)) {
      throw new CryptoError(
        'CRYPTO_PARAMETER_INVALID',
        'sealing purpose must be 1..64 characters of [a-z0-9.-], starting with [a-z0-9]',
      );
    }
    this.purpose = options.purpose;
    this.suite = getSuite(options.suite ?? SEALED_STATE_SUITE_ID);
    this.versions = options.versions ?? new VersionTracker();
    for (const suite of Object.values(SUITES)) {
      const info = Buffer.from(`${INFO_LABEL}\0${suite.name}\0${this.purpose}`, 'utf8');
      const okm = hkdfSync('sha384', rootKey, new Uint8Array(0), info, suite.keyBytes + KEY_ID_BYTES);
      this.#keys.set(suite.id, {
        key: new Uint8Array(okm, 0, suite.keyBytes),
        keyId: new Uint8Array(okm, suite.keyBytes, KEY_ID_BYTES),
      });
    }
  }

  /** True once `close()` ran. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Zeroes the derived keys; later calls to `seal` and `open` throw SEALED_SEALER_CLOSED. Idempotent. */
  close(): void {
    for (const { key, keyId } of this.#keys.values()) {
      key.fill(0);
      keyId.fill(0);
    }
    this.#keys.clear();
    this.#closed = true;
  }

  #keyFor(suite: Suite): SuiteKey {
    const k = this.#keys.get(suite.id);
    /* Precondition: the sealer is open (its keys have not been zeroed). */
    if (this.#closed || k === undefined) {
      throw new SealedStateError('SEALED_SEALER_CLOSED', 'the sealer is closed');
    }
    return k;
  }

  /**
   * Seals `plaintext` as version `version` of blob `name`. Records the version in the tracker: versions of a name
   * only increase within a run, and each version is sealed once (to retry a failed write, resend the same bytes).
   * @throws SealedStateError SEALED_SEALER_CLOSED, SEALED_PLAINTEXT_TOO_LARGE, SEALED_BLOB_ROLLBACK (version not
   *   above the acknowledged one); CryptoError CRYPTO_PARAMETER_INVALID (name, version, plaintext type).
   */
  seal(name: string, version: number, plaintext: Uint8Array): Uint8Array {
    const { key, keyId } = this.#keyFor(this.suite);
    checkName(name);
    checkVersion(version, 'sealed blob version');
    if (!(plaintext instanceof Uint8Array)) {
      throw new CryptoError('CRYPTO_PARAMETER_INVALID', 'plaintext must be a byte array');
    }
    /* Precondition: the plaintext fits a sealed blob. */
    if (plaintext.length > SEALED_LIMITS.maxPlaintextBytes) {
      throw new SealedStateError(
        'SEALED_PLAINTEXT_TOO_LARGE',
        `plaintext of ${plaintext.length} bytes exceeds ${SEALED_LIMITS.maxPlaintextBytes} for a sealed blob; split the state`,
        { details: { name, bytes: plaintext.length, limit: SEALED_LIMITS.maxPlaintextBytes } },
      );
    }
    this.versions.checkSeal(name, version);

    const suite = this.suite;
    const L = name.length;
    const headerLength = OFF_NAME + L + 8 + suite.nonceBytes;
    const header = new Uint8Array(headerLength);
    const view = new DataView(header.buffer);
    header.set(SEALED_MAGIC, 0);
    header[OFF_FORMAT] = SEALED_FORMAT_V1;
    view.setUint16(OFF_SUITE, suite.id);
    header.set(keyId, OFF_KEY_ID);
    header[OFF_NAME_LENGTH] = L;
    for (let i = 0; i < L; i++) header[OFF_NAME + i] = name.charCodeAt(i);
    view.setBigUint64(OFF_NAME + L, BigInt(version));
    const nonce = randomBytes(suite.nonceBytes);
    header.set(nonce, OFF_NAME + L + 8);

    const sealed = getAead(suite.id).seal(key, nonce, plaintext, header);
    const out = new Uint8Array(headerLength + sealed.length);
    out.set(header, 0);
    out.set(sealed, headerLength);
    this.versions.record(name, version, digestOf(out));
    return out;
  }

  /**
   * Opens blob `bytes`, which the host returned for `name`. Checks, in order: bounds and structure, the sealing
   * key id, authentication (AEAD over the whole header), the name, the expected version, and the run's tracker.
   * Returns a new array that the caller owns; on any failure after decryption the plaintext is zeroed.
   * Afterwards `versions.highest(name)` is the blob's version.
   * @throws SealedStateError SEALED_SEALER_CLOSED, SEALED_BLOB_CORRUPT, SEALED_VERSION_UNSUPPORTED,
   *   SEALED_KEY_MISMATCH, SEALED_BLOB_NAME_MISMATCH, SEALED_BLOB_ROLLBACK, SEALED_BLOB_VERSION_MISMATCH;
   *   CryptoError SUITE_UNKNOWN, CRYPTO_PARAMETER_INVALID (name, expected version, bytes type).
   */
  open(name: string, expected: ExpectedVersion, bytes: Uint8Array): Uint8Array {
    if (this.#closed) throw new SealedStateError('SEALED_SEALER_CLOSED', 'the sealer is closed');
    checkName(name);
    if (typeof expected === 'number') checkVersion(expected, 'expected version');
    else checkVersion(expected?.minVersion, 'minVersion');
    if (!(bytes instanceof Uint8Array)) {
      throw new CryptoError('CRYPTO_PARAMETER_INVALID', 'a sealed blob must be a byte array');
    }

    /* Precondition: the blob is no larger than the largest sealed blob (bounded before it is read). */
    if (bytes.length > SEALED_LIMITS.maxBlobBytes) {
      throw corrupt(name, `${bytes.length} bytes exceed the ${SEALED_LIMITS.maxBlobBytes}-byte limit`);
    }
    const need = (end: number, what: string): void => {
      /* Precondition: every field lies within the blob. */
      if (bytes.length < end) throw corrupt(name, `truncated inside the ${what} (${bytes.length} bytes)`);
    };
    need(OFF_FORMAT, 'magic');
    /* Precondition: the blob starts with the sealed-state magic. */
    for (let i = 0; i < SEALED_MAGIC.length; i++) {
      if (bytes[i] !== SEALED_MAGIC[i]) throw corrupt(name, 'not a sealed blob (bad magic)');
    }
    need(OFF_FORMAT + 1, 'format version');
    const format = bytes[OFF_FORMAT]!;
    /* Precondition: the format version is one this build reads. */
    if (format !== SEALED_FORMAT_V1) {
      throw new SealedStateError(
        'SEALED_VERSION_UNSUPPORTED',
        `sealed blob for '${name}' has format version ${format}; this build reads version ${SEALED_FORMAT_V1}`,
        { details: { name, format } },
      );
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    need(OFF_KEY_ID, 'suite id');
    /* Precondition: the suite id is registered (SUITE_UNKNOWN otherwise). */
    const suite = getSuite(view.getUint16(OFF_SUITE));
    const { key, keyId } = this.#keyFor(suite);
    need(OFF_NAME_LENGTH, 'sealing key id');
    /* Precondition: the blob was sealed under this root key and purpose (key id, compared in constant time). */
    if (!timingSafeEqual(bytes.subarray(OFF_KEY_ID, OFF_NAME_LENGTH), keyId)) {
      throw new SealedStateError(
        'SEALED_KEY_MISMATCH',
        `sealed blob for '${name}' was sealed under another root key or for another purpose than '${this.purpose}'`,
        { details: { name, purpose: this.purpose } },
      );
    }
    need(OFF_NAME, 'name length');
    const L = bytes[OFF_NAME_LENGTH]!;
    /* Precondition: the stored name length is 1..128. */
    if (L === 0 || L > SEALED_LIMITS.maxNameBytes) throw corrupt(name, `name length ${L} out of range`);
    need(OFF_NAME + L, 'name');
    const storedName = String.fromCharCode(...bytes.subarray(OFF_NAME, OFF_NAME + L));
    /* Precondition: the stored name follows the name rule. */
    if (!NAME.test(storedName)) throw corrupt(name, 'stored name has invalid characters');
    need(OFF_NAME + L + 8, 'version');
    const wireVersion = view.getBigUint64(OFF_NAME + L);
    /* Precondition: the stored version is a JS-safe integer. */
    if (wireVersion > BigInt(SEALED_LIMITS.maxVersion)) throw corrupt(name, 'version out of range');
    const version = Number(wireVersion);
    const headerLength = OFF_NAME + L + 8 + suite.nonceBytes;
    need(headerLength + suite.tagBytes, 'nonce or tag');

    let plaintext: Uint8Array;
    try {
      /* Precondition: the AEAD tag verifies over the whole header (name and version included). */
      plaintext = getAead(suite.id).open(
        key,
        bytes.subarray(headerLength - suite.nonceBytes, headerLength),
        bytes.subarray(headerLength),
        bytes.subarray(0, headerLength),
      );
    } catch (cause) {
      throw corrupt(name, 'authentication failed (altered, or truncated in the ciphertext)', cause);
    }

    try {
      /* Precondition: the authentic blob is the one requested (the host did not swap blobs). */
      if (storedName !== name) {
        throw new SealedStateError(
          'SEALED_BLOB_NAME_MISMATCH',
          `the host returned sealed blob '${storedName}' when '${name}' was requested`,
          { details: { name, found: storedName } },
        );
      }
      if (typeof expected === 'number') {
        /* Precondition: the version is the exact one expected: older is a rollback, newer a fork. */
        if (version < expected) {
          throw new SealedStateError(
            'SEALED_BLOB_ROLLBACK',
            `sealed blob '${name}' has version ${version}; version ${expected} was expected`,
            { details: { name, version, expected } },
          );
        }
        if (version > expected) {
          throw new SealedStateError(
            'SEALED_BLOB_VERSION_MISMATCH',
            `sealed blob '${name}' has version ${version}, newer than the expected version ${expected} (another writer, or an earlier rollback)`,
            { details: { name, version, expected } },
          );
        }
      } else if (version < expected.minVersion) {
        /* Precondition: the version is at least minVersion. */
        throw new SealedStateError(
          'SEALED_BLOB_ROLLBACK',
          `sealed blob '${name}' has version ${version}; at least version ${expected.minVersion} is required`,
          { details: { name, version, minVersion: expected.minVersion } },
        );
      }
      const digest = digestOf(bytes);
      this.versions.checkOpen(name, version, digest);
      this.versions.record(name, version, digest);
      return plaintext;
    } catch (err) {
      plaintext.fill(0);
      throw err;
    }
  }
}
