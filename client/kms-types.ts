/**
 * Types of the key service results as the SDK returns them, and the checks that turn a decoded result map into
 * them. The enclave is trusted, but a result is still checked for shape: an ill-typed result is MESSAGE_INVALID,
 * never a value of the wrong type handed to the caller.
 */
import { ProtocolError } from '../shared/errors.js';
import type { Params } from '../shared/messages.js';

export type KeyState = 'Enabled' | 'Disabled' | 'PendingDeletion' | 'Destroyed';

export interface KeyMetadata {
  readonly keyId: string;
  readonly description: string;
  readonly state: KeyState;
  readonly keyUsage: 'ENCRYPT_DECRYPT';
  /** Suite name, e.g. AES-256-GCM/KDF-CTR-HMAC-SHA-512/COMMIT-v2. */
  readonly suite: string;
  /** ISO 8601. */
  readonly createdAt: string;
  readonly currentVersion: number;
  readonly versions: ReadonlyArray<{ readonly version: number; readonly createdAt: string }>;
  readonly rotation: { readonly periodDays: number; readonly nextRotationAt: string } | null;
  readonly deletionDate: string | null;
  readonly pendingWindowDays: number | null;
  readonly destroyedAt: string | null;
  readonly deniedUses: {
    readonly count: number;
    readonly lastAt: string;
    readonly lastOperation: string;
  } | null;
  readonly aliases: readonly string[];
  /** The attestation policy (JSON text) gating releases to workloads, or null: never released. */
  readonly releasePolicy: string | null;
  /**
   * Dual control (docs/key-policy.md §10): `threshold` of `approvers` must approve protected operations; approvals
   * sign `sequence`, which advances with each approved operation. Null: the key is not protected.
   */
  readonly quorum: {
    readonly threshold: number;
    readonly approvers: readonly string[];
    readonly sequence: number;
  } | null;
}

/** A ciphertext blob and the key version that made it. */
export interface CiphertextResult {
  readonly ciphertextBlob: Uint8Array;
  readonly keyId: string;
  readonly keyVersion: number;
}

export interface DataKey extends CiphertextResult {
  /** The plaintext data key. The caller zeroes it once done (`plaintext.fill(0)`). */
  readonly plaintext: Uint8Array;
}

export interface DecryptResult {
  /** The caller zeroes it once done if it is secret. */
  readonly plaintext: Uint8Array;
  readonly keyId: string;
  readonly keyVersion: number;
}

export interface ReEncryptResult extends CiphertextResult {
  readonly sourceKeyId: string;
  readonly sourceKeyVersion: number;
}

export interface KeyListPage {
  readonly keys: ReadonlyArray<{ readonly keyId: string; readonly state: KeyState | 'Unavailable' }>;
  readonly truncated: boolean;
  readonly nextMarker: string | null;
}

export interface AliasListPage {
  readonly aliases: ReadonlyArray<{ readonly aliasName: string; readonly targetKeyId: string }>;
  readonly truncated: boolean;
  readonly nextMarker: string | null;
}

function bad(what: string): ProtocolError {
  return new ProtocolError('MESSAGE_INVALID', `the key service returned an ill-typed result (${what})`);
}

function str(m: Params, k: string): string {
  const v = m[k];
  if (typeof v !== 'string') throw bad(k);
  return v;
}

function int(m: Params, k: string): number {
  const v = m[k];
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw bad(k);
  return v;
}

function bytes(m: Params, k: string): Uint8Array {
  const v = m[k];
  if (!(v instanceof Uint8Array)) throw bad(k);
  return v;
}

function map(v: unknown, what: string): Params {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) throw bad(what);
  return v as Params;
}

function list(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw bad(what);
  return v;
}

const nullable = <T>(v: unknown, f: (x: unknown) => T): T | null =>
  v === null || v === undefined ? null : f(v);

/** @throws ProtocolError MESSAGE_INVALID */
export function parseKeyMetadata(result: Params): KeyMetadata {
  const m = map(result['keyMetadata'], 'keyMetadata');
  return {
    keyId: str(m, 'keyId'),
    description: str(m, 'description'),
    state: str(m, 'state') as KeyState,
    keyUsage: 'ENCRYPT_DECRYPT',
    suite: str(m, 'suite'),
    createdAt: str(m, 'createdAt'),
    currentVersion: int(m, 'currentVersion'),
    versions: list(m['versions'], 'versions').map((x) => {
      const v = map(x, 'version');
      return { version: int(v, 'version'), createdAt: str(v, 'createdAt') };
    }),
    rotation: nullable(m['rotation'], (x) => {
      const r = map(x, 'rotation');
      return { periodDays: int(r, 'periodDays'), nextRotationAt: str(r, 'nextRotationAt') };
    }),
    deletionDate: nullable(m['deletionDate'], () => str(m, 'deletionDate')),
    pendingWindowDays: nullable(m['pendingWindowDays'], () => int(m, 'pendingWindowDays')),
    destroyedAt: nullable(m['destroyedAt'], () => str(m, 'destroyedAt')),
    deniedUses: nullable(m['deniedUses'], (x) => {
      const u = map(x, 'deniedUses');
      return { count: int(u, 'count'), lastAt: str(u, 'lastAt'), lastOperation: str(u, 'lastOperation') };
    }),
    aliases: list(m['aliases'], 'aliases').map((a) => {
      if (typeof a !== 'string') throw bad('aliases');
      return a;
    }),
    releasePolicy: nullable(m['releasePolicy'] ?? null, () => str(m, 'releasePolicy')),
    quorum: nullable(m['quorum'] ?? null, (x) => {
      const q = map(x, 'quorum');
      return {
        threshold: int(q, 'threshold'),
        approvers: list(q['approvers'], 'quorum.approvers').map((a) => {
          if (typeof a !== 'string') throw bad('quorum.approvers');
          return a;
        }),
        sequence: int(q, 'sequence'),
      };
    }),
  };
}

/** @throws ProtocolError MESSAGE_INVALID */
export function parseCiphertext(r: Params): CiphertextResult {
  return {
    ciphertextBlob: bytes(r, 'ciphertextBlob'),
    keyId: str(r, 'keyId'),
    keyVersion: int(r, 'keyVersion'),
  };
}

/** @throws ProtocolError MESSAGE_INVALID */
export function parseDataKey(r: Params): DataKey {
  return { ...parseCiphertext(r), plaintext: bytes(r, 'plaintext') };
}

/** @throws ProtocolError MESSAGE_INVALID */
export function parseDecrypt(r: Params): DecryptResult {
  return { plaintext: bytes(r, 'plaintext'), keyId: str(r, 'keyId'), keyVersion: int(r, 'keyVersion') };
}

/** @throws ProtocolError MESSAGE_INVALID */
export function parseReEncrypt(r: Params): ReEncryptResult {
  return {
    ...parseCiphertext(r),
    sourceKeyId: str(r, 'sourceKeyId'),
    sourceKeyVersion: int(r, 'sourceKeyVersion'),
  };
}

/** @throws ProtocolError MESSAGE_INVALID */
export function parseKeyList(r: Params): KeyListPage {
  return {
    keys: list(r['keys'], 'keys').map((x) => {
      const k = map(x, 'key');
      return { keyId: str(k, 'keyId'), state: str(k, 'state') as KeyState | 'Unavailable' };
    }),
    truncated: r['truncated'] === true,
    nextMarker: nullable(r['nextMarker'], () => str(r, 'nextMarker')),
  };
}

/** @throws ProtocolError MESSAGE_INVALID */
export function parseAliasList(r: Params): AliasListPage {
  return {
    aliases: list(r['aliases'], 'aliases').map((x) => {
      const a = map(x, 'alias');
      return { aliasName: str(a, 'aliasName'), targetKeyId: str(a, 'targetKeyId') };
    }),
    truncated: r['truncated'] === true,
    nextMarker: nullable(r['nextMarker'], () => str(r, 'nextMarker')),
  };
}
