/**
 * The enclave's operations: name → handler. Each handler validates its own parameters and returns a
 * CBOR-encodable map; it throws `EkmsError`s, which become error responses.
 */
import { randomBytes } from 'node:crypto';
import { CustodyError } from '../shared/custody-errors.js';
import { ProtocolError } from '../shared/errors.js';
import { LIMITS } from '../shared/limits.js';
import type { Params } from '../shared/messages.js';
import { StoreError } from '../shared/store-errors.js';
import { VERSION } from '../shared/version.js';
import type { Attestor } from './attestor/attestor.js';
import type { AuditLog } from './audit/audit-log.js';
import { type AttestedWorkload, authenticate } from './authenticate.js';
import type { CustodyLock } from './custody/custody.js';
import { custodyGetBundle, custodyStatus, custodySubmitShare } from './custody/operations.js';
import type { Keystore } from './keystore/keystore.js';
import type { Authorizer, Principal } from './kms/authorizer.js';
import { KMS_OPERATIONS } from './kms/operations.js';
import { createPrincipal, listPrincipals } from './principal-operations.js';
import type { PrincipalRegistry } from './principals.js';
import type { EnclaveIdentity } from './session.js';

/** What the enclave process provides to every operation. */
export interface OperationContext {
  readonly attestor: Attestor;
  /** Milliseconds since the epoch; injectable for tests. */
  readonly now: () => number;
  readonly startedAt: number;
  /** The keystore, or undefined when the enclave runs without a storage channel (key operations then fail). */
  readonly keystore: Keystore | undefined;
  readonly authorizer: Authorizer;
  /** Where the root key came from (`insecure-simulation` until custodian shares exist), or null without one. */
  readonly rootKeySource: string | null;
  /** The per-boot identity (signs handshakes and release statements). */
  readonly identity: EnclaveIdentity;
  readonly principals: PrincipalRegistry;
  /** The audit log (undefined without a storage channel, and in in-process tests). */
  readonly audit?: AuditLog | undefined;
  /**
   * Root-key custody (docs/custody.md), when the enclave was started with `--root-key custody` and found a bundle.
   * While `custody.locked`, the keystore, principals and audit log are not open: key and principal operations
   * answer ROOT_KEY_LOCKED. The enclave process fills in keystore, principals, audit and authorizer on unlock.
   */
  readonly custody?: CustodyLock | undefined;
}

/**
 * Refuses operations that need the root key while the enclave waits for its custodians.
 * @throws CustodyError ROOT_KEY_LOCKED
 */
function checkUnlocked(ctx: OperationContext, op: string): void {
  /* Precondition: nothing under the root key is served while it is held by custodians. */
  if (ctx.custody?.locked === true) {
    throw new CustodyError(
      'ROOT_KEY_LOCKED',
      `${op}: the enclave is locked until its custodians submit their shares (ekms custody unlock)`,
    );
  }
}

/** Wraps an operation that needs the root key (principals, keys). */
function unlocked(name: string, op: Operation): Operation {
  return (params, ctx, caller, request) => {
    checkUnlocked(ctx, name);
    return op(params, ctx, caller, request);
  };
}

/**
 * The caller of one connection: anonymous until `authenticate` succeeds inside the attested session (a registered
 * principal's signature over the session binder, and/or a workload's evidence bound to the binder).
 */
export interface Caller {
  principal: Principal;
  /** The session binder (shared/session.ts); undefined only for the in-process tests that bypass sessions. */
  binder: Uint8Array | undefined;
  /** The attested workload of this session, once its evidence verified. */
  workload: AttestedWorkload | undefined;
}

/**
 * Per request: the SHA-256 digest of the exact request bytes (bound into released keys' HPKE info). Computed on first
 * read: most operations never need it.
 */
export interface RequestInfo {
  readonly digest: Uint8Array;
}

export type Operation = (
  params: Params,
  ctx: OperationContext,
  caller: Caller,
  request: RequestInfo,
) => Params | Promise<Params>;

function checkKeys(params: Params, allowed: readonly string[]): void {
  for (const k of Object.keys(params)) {
    if (!allowed.includes(k)) throw new ProtocolError('REQUEST_INVALID', `unknown parameter "${k}"`);
  }
}

/** `health`: liveness; no parameters. */
const health: Operation = (params, ctx) => {
  checkKeys(params, []);
  return { status: ctx.custody?.locked === true ? 'locked' : 'ok', uptimeMs: ctx.now() - ctx.startedAt };
};

/** `describe`: what this enclave is (version, attestor kind, measurement). */
const describe: Operation = (params, ctx) => {
  checkKeys(params, []);
  return {
    version: VERSION,
    attestor: ctx.attestor.kind,
    simulated: ctx.attestor.simulated,
    measurement: ctx.attestor.measurement,
    rootKey: ctx.rootKeySource,
    locked: ctx.custody?.locked === true,
    keys: ctx.keystore?.size ?? null,
  };
};

/**
 * `generateRandom`: `length` (1–1024) bytes from the OS CSPRNG.
 * @throws ProtocolError REQUEST_INVALID
 */
const generateRandom: Operation = (params) => {
  checkKeys(params, ['length']);
  const length = params['length'];
  if (
    typeof length !== 'number' ||
    !Number.isInteger(length) ||
    length < LIMITS.minRandomBytes ||
    length > LIMITS.maxRandomBytes
  ) {
    throw new ProtocolError(
      'REQUEST_INVALID',
      `length must be an integer from ${LIMITS.minRandomBytes} to ${LIMITS.maxRandomBytes}`,
    );
  }
  return { random: new Uint8Array(randomBytes(length)) };
};

function kms(name: string): Operation {
  const op = KMS_OPERATIONS[name];
  if (op === undefined) throw new Error(`no key service operation ${name}`);
  return (params, ctx, caller, request) => {
    checkUnlocked(ctx, name);
    /* Precondition: key operations need the keystore, which needs the storage channel. */
    if (ctx.keystore === undefined) {
      throw new StoreError(
        'STORAGE_UNAVAILABLE',
        'this enclave runs without a storage channel: no key operations',
      );
    }
    return op(params, {
      keystore: ctx.keystore,
      authorizer: ctx.authorizer,
      principal: caller.principal,
      workload: caller.workload,
      identity: ctx.identity,
      now: ctx.now,
      get requestDigest(): Uint8Array {
        return request.digest;
      },
      principals: ctx.principals,
    });
  };
}

/**
 * The operations answered while the root key is locked (docs/custody.md §3.4): liveness, public facts, randomness
 * and the custody operations. Fail closed: any other operation, including one added later, is ROOT_KEY_LOCKED.
 */
const ANSWERED_WHILE_LOCKED: ReadonlySet<string> = new Set([
  'health',
  'describe',
  'generateRandom',
  'custodyStatus',
  'custodyGetBundle',
  'custodySubmitShare',
]);

const ALL_OPERATIONS: Readonly<Record<string, Operation>> = {
  health,
  describe,
  generateRandom,
  authenticate: unlocked('authenticate', authenticate),
  createPrincipal: unlocked('createPrincipal', createPrincipal),
  listPrincipals: unlocked('listPrincipals', listPrincipals),
  custodyStatus,
  custodyGetBundle,
  custodySubmitShare,
  ...Object.fromEntries(Object.keys(KMS_OPERATIONS).map((name) => [name, kms(name)])),
};

export const OPERATIONS: Readonly<Record<string, Operation>> = Object.freeze(
  Object.fromEntries(
    Object.entries(ALL_OPERATIONS).map(([name, op]) => [
      name,
      ANSWERED_WHILE_LOCKED.has(name) ? op : unlocked(name, op),
    ]),
  ),
);
