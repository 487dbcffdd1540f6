/**
 * A customer key (KEK) as the keystore holds it, and its sealed encoding (docs/key-service.md §3).
 *
 * One record per key, sealed as blob `key.<id>` (enclave/sealing.ts, purpose "keystore"). The record carries
 * every version's 32 bytes of key material (old versions keep decrypting after a rotation); a destroyed key keeps
 * its record as a tombstone without material, so its ciphertexts fail with KEY_DESTROYED rather than KEY_NOT_FOUND.
 *
 * Encoding: CBOR map, version field `v: 1`, times in milliseconds since the epoch. Decoding happens only after
 * the sealed blob authenticated, but it is still bounded and checked field by field (defence in depth: a record
 * written by a buggy build is refused with SEALED_BLOB_CORRUPT, never half-used).
 */
import { decodeCbor, encodeCbor } from '../../shared/cbor.js';
import { SealedStateError } from '../../shared/crypto-errors.js';
import { LIMITS } from '../../shared/limits.js';
import { isSuiteId, type SuiteId } from '../../shared/suites.js';

export const KeyState = {
  Enabled: 'Enabled',
  Disabled: 'Disabled',
  PendingDeletion: 'PendingDeletion',
  Destroyed: 'Destroyed',
} as const;
export type KeyState = (typeof KeyState)[keyof typeof KeyState];

const STATES: readonly string[] = Object.values(KeyState);
const RECORD_VERSION = 1;
/** Key ids: RFC 4122 UUIDs in lower case, as `crypto.randomUUID` makes them. */
export const KEY_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const KEY_MATERIAL_BYTES = 32;

export interface KeyVersion {
  readonly version: number;
  readonly createdAt: number;
  /** 32 bytes; null once destroyed. Owned by the keystore, zeroed on destruction. */
  readonly material: Uint8Array | null;
}

export interface DeletionSchedule {
  readonly scheduledAt: number;
  readonly deletionDate: number;
  readonly windowDays: number;
}

/** Uses attempted while the key was pending deletion (AWS KMS surfaces these through CloudTrail). */
export interface DeniedUses {
  readonly count: number;
  readonly lastAt: number;
  readonly lastOperation: string;
}

export interface KeyRecord {
  readonly id: string;
  readonly description: string;
  readonly createdAt: number;
  readonly suite: SuiteId;
  readonly state: KeyState;
  /** Ascending by version; the last one is the current version. Never empty. */
  readonly versions: readonly KeyVersion[];
  /** Automatic rotation period in days, or null when automatic rotation is off. */
  readonly rotationPeriodDays: number | null;
  /** When the next automatic rotation is due (ms), or null. */
  readonly nextRotationAt: number | null;
  readonly deletion: DeletionSchedule | null;
  readonly destroyedAt: number | null;
  readonly deniedUses: DeniedUses | null;
  /**
   * The attestation policy (JSON text, attestation/policy.ts) a workload's verified evidence must satisfy for this
   * key to be released or used for it (design §3). Absent/null: never released to a workload. Stored only when set,
   * so records written before it existed still decode.
   */
  readonly releasePolicy?: string | null;
  /** The key policy (JSON text, enclave/kms/key-policy.ts); absent: the default policy (docs/key-policy.md). */
  readonly keyPolicy?: string | null;
  /** Grants: narrow, expiring delegations of use operations to a principal (absent: none). */
  readonly grants?: readonly Grant[];
  /**
   * Dual control (docs/key-policy.md §10): M of these N admins must approve the protected operations. Absent: the
   * key is not protected (records written before quorums existed load that way).
   */
  readonly quorum?: KeyQuorum;
  /**
   * The approval sequence: approvals sign it (shared/approval.ts), and it advances with every approved operation and
   * every quorum change, so that an approval is used once. Absent: 0. Never goes back, even when the quorum is
   * removed.
   */
  readonly approvalSequence?: number;
}

/** A key's quorum: `threshold` of the distinct `approvers` (principal names), 1 ≤ threshold ≤ approvers ≤ 16. */
export interface KeyQuorum {
  readonly threshold: number;
  readonly approvers: readonly string[];
}

/** At most this many approvers in a key's quorum (shared/approval.ts APPROVAL_LIMITS.maxApprovers). */
export const MAX_QUORUM_APPROVERS = 16;

/** A grant (docs/key-policy.md §grants). Times in ms since the epoch. */
export interface Grant {
  readonly id: string;
  readonly grantee: string;
  readonly operations: readonly string[];
  /** The request's encryption context must contain these pairs (null: no constraint). */
  readonly contextSubset: Readonly<Record<string, string>> | null;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly createdBy: string;
}

/** At most this many grants per key. */
export const MAX_GRANTS_PER_KEY = 64;

/** Longest release policy text stored in a key record. */
export const MAX_RELEASE_POLICY_BYTES = 16 * 1024;

/** The current (newest) version of a key. */
export function currentVersion(record: KeyRecord): KeyVersion {
  const v = record.versions[record.versions.length - 1];
  if (v === undefined) throw new Error('key record without versions'); // excluded by decodeKeyRecord
  return v;
}

export function encodeKeyRecord(r: KeyRecord): Uint8Array {
  return encodeCbor({
    v: RECORD_VERSION,
    id: r.id,
    description: r.description,
    createdAt: r.createdAt,
    suite: r.suite,
    state: r.state,
    versions: r.versions.map((x) => [x.version, x.createdAt, x.material ?? null]),
    rotationPeriodDays: r.rotationPeriodDays,
    nextRotationAt: r.nextRotationAt,
    deletion:
      r.deletion === null ? null : [r.deletion.scheduledAt, r.deletion.deletionDate, r.deletion.windowDays],
    destroyedAt: r.destroyedAt,
    deniedUses:
      r.deniedUses === null ? null : [r.deniedUses.count, r.deniedUses.lastAt, r.deniedUses.lastOperation],
    ...(r.releasePolicy == null ? {} : { releasePolicy: r.releasePolicy }),
    ...(r.keyPolicy == null ? {} : { keyPolicy: r.keyPolicy }),
    ...(r.grants === undefined || r.grants.length === 0
      ? {}
      : {
          grants: r.grants.map((g) => [
            g.id,
            g.grantee,
            [...g.operations],
            g.contextSubset,
            g.createdAt,
            g.expiresAt,
            g.createdBy,
          ]),
        }),
    ...(r.quorum === undefined ? {} : { quorum: [r.quorum.threshold, [...r.quorum.approvers]] }),
    ...(r.approvalSequence === undefined || r.approvalSequence === 0
      ? {}
      : { approvalSequence: r.approvalSequence }),
  });
}

function corrupt(name: string, why: string): SealedStateError {
  return new SealedStateError('SEALED_BLOB_CORRUPT', `key record '${name}' is invalid: ${why}`, {
    details: { name },
  });
}

const isTime = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 1;

/**
 * Decodes and checks a key record (already authenticated by the sealer).
 * @throws SealedStateError SEALED_BLOB_CORRUPT (any field missing, of the wrong type or inconsistent),
 *   SEALED_VERSION_UNSUPPORTED (another record version)
 */
export function decodeKeyRecord(bytes: Uint8Array, name: string): KeyRecord {
  let raw: unknown;
  try {
    raw = decodeCbor(bytes, {
      maxBytes: LIMITS.maxSealedBlobBytes,
      maxArrayLength: Math.max(LIMITS.maxKeyVersions, MAX_GRANTS_PER_KEY),
      maxItems: LIMITS.maxKeyVersions * 4 + MAX_GRANTS_PER_KEY * 40 + 256,
      maxStringBytes: Math.max(LIMITS.maxKeyDescriptionBytes, MAX_RELEASE_POLICY_BYTES),
    });
  } catch (cause) {
    throw corrupt(name, `not CBOR (${(cause as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw corrupt(name, 'not a map');
  const m = raw as Record<string, unknown>;
  if (m['v'] !== RECORD_VERSION) {
    throw new SealedStateError(
      'SEALED_VERSION_UNSUPPORTED',
      `key record '${name}' has version ${String(m['v'])}`,
    );
  }
  const { id, description, createdAt, suite, state, versions } = m;
  if (typeof id !== 'string' || !KEY_ID.test(id) || `key.${id}` !== name) throw corrupt(name, 'id');
  if (typeof description !== 'string') throw corrupt(name, 'description');
  if (!isTime(createdAt)) throw corrupt(name, 'createdAt');
  if (!isSuiteId(suite)) throw corrupt(name, 'suite');
  if (typeof state !== 'string' || !STATES.includes(state)) throw corrupt(name, 'state');
  if (!Array.isArray(versions) || versions.length === 0) throw corrupt(name, 'versions');
  const parsedVersions: KeyVersion[] = [];
  for (const [i, x] of versions.entries()) {
    if (!Array.isArray(x) || x.length !== 3) throw corrupt(name, `version ${i}`);
    const [version, at, material] = x as unknown[];
    if (version !== i + 1 || !isTime(at)) throw corrupt(name, `version ${i} number or time`);
    const destroyed = state === KeyState.Destroyed;
    if (
      destroyed
        ? material !== null
        : !(material instanceof Uint8Array && material.length === KEY_MATERIAL_BYTES)
    ) {
      throw corrupt(name, `version ${i} material`);
    }
    parsedVersions.push({ version, createdAt: at, material: material as Uint8Array | null });
  }
  const rotationPeriodDays = m['rotationPeriodDays'];
  const nextRotationAt = m['nextRotationAt'];
  if (rotationPeriodDays !== null && !isCount(rotationPeriodDays)) throw corrupt(name, 'rotationPeriodDays');
  if (
    (rotationPeriodDays === null) !== (nextRotationAt === null) ||
    (nextRotationAt !== null && !isTime(nextRotationAt))
  ) {
    throw corrupt(name, 'nextRotationAt');
  }
  const d = m['deletion'];
  let deletion: DeletionSchedule | null = null;
  if (d !== null) {
    if (!Array.isArray(d) || d.length !== 3 || !isTime(d[0]) || !isTime(d[1]) || !isCount(d[2])) {
      throw corrupt(name, 'deletion');
    }
    deletion = { scheduledAt: d[0], deletionDate: d[1], windowDays: d[2] };
  }
  if ((state === KeyState.PendingDeletion) !== (deletion !== null)) throw corrupt(name, 'deletion vs state');
  const destroyedAt = m['destroyedAt'];
  if (destroyedAt !== null && !isTime(destroyedAt)) throw corrupt(name, 'destroyedAt');
  if ((state === KeyState.Destroyed) !== (destroyedAt !== null)) throw corrupt(name, 'destroyedAt vs state');
  const u = m['deniedUses'];
  let deniedUses: DeniedUses | null = null;
  if (u !== null) {
    if (!Array.isArray(u) || u.length !== 3 || !isCount(u[0]) || !isTime(u[1]) || typeof u[2] !== 'string') {
      throw corrupt(name, 'deniedUses');
    }
    deniedUses = { count: u[0], lastAt: u[1], lastOperation: u[2] };
  }
  const releasePolicy = m['releasePolicy'];
  if (releasePolicy !== undefined && (typeof releasePolicy !== 'string' || releasePolicy.length === 0)) {
    throw corrupt(name, 'releasePolicy');
  }
  const keyPolicy = m['keyPolicy'];
  if (keyPolicy !== undefined && (typeof keyPolicy !== 'string' || keyPolicy.length === 0)) {
    throw corrupt(name, 'keyPolicy');
  }
  const rawGrants = m['grants'];
  let grants: Grant[] | undefined;
  if (rawGrants !== undefined) {
    if (!Array.isArray(rawGrants) || rawGrants.length > MAX_GRANTS_PER_KEY) throw corrupt(name, 'grants');
    grants = rawGrants.map((g, i) => {
      if (!Array.isArray(g) || g.length !== 7) throw corrupt(name, `grant ${i}`);
      const [id, grantee, operations, subset, createdAt, expiresAt, createdBy] = g as unknown[];
      if (
        typeof id !== 'string' ||
        typeof grantee !== 'string' ||
        !Array.isArray(operations) ||
        !operations.every((o) => typeof o === 'string') ||
        !(subset === null || (typeof subset === 'object' && !Array.isArray(subset))) ||
        !isTime(createdAt) ||
        !isTime(expiresAt) ||
        typeof createdBy !== 'string'
      ) {
        throw corrupt(name, `grant ${i}`);
      }
      return {
        id,
        grantee,
        operations: operations as string[],
        contextSubset: subset as Record<string, string> | null,
        createdAt,
        expiresAt,
        createdBy,
      };
    });
  }
  const rawQuorum = m['quorum'];
  let quorum: KeyQuorum | undefined;
  if (rawQuorum !== undefined) {
    const [threshold, approvers] = Array.isArray(rawQuorum) && rawQuorum.length === 2 ? rawQuorum : [];
    if (
      !isCount(threshold) ||
      !Array.isArray(approvers) ||
      approvers.length > MAX_QUORUM_APPROVERS ||
      threshold > approvers.length ||
      !approvers.every((a) => typeof a === 'string' && a.length > 0) ||
      new Set(approvers).size !== approvers.length
    ) {
      throw corrupt(name, 'quorum');
    }
    quorum = { threshold, approvers: approvers as string[] };
  }
  const approvalSequence = m['approvalSequence'];
  if (approvalSequence !== undefined && !isCount(approvalSequence)) throw corrupt(name, 'approvalSequence');
  return {
    id,
    description,
    createdAt,
    suite,
    state: state as KeyState,
    versions: parsedVersions,
    rotationPeriodDays: rotationPeriodDays as number | null,
    nextRotationAt: nextRotationAt as number | null,
    deletion,
    destroyedAt: destroyedAt as number | null,
    deniedUses,
    ...(releasePolicy === undefined ? {} : { releasePolicy }),
    ...(keyPolicy === undefined ? {} : { keyPolicy }),
    ...(grants === undefined ? {} : { grants }),
    ...(quorum === undefined ? {} : { quorum }),
    ...(approvalSequence === undefined ? {} : { approvalSequence }),
  };
}
