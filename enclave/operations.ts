/**
 * The enclave's operations: name → handler. Each handler validates its own parameters and returns a
 * CBOR-encodable map; it throws `EkmsError`s, which become error responses.
 */
import { randomBytes } from 'node:crypto';
import { ProtocolError } from '../shared/errors.js';
import { LIMITS } from '../shared/limits.js';
import type { Params } from '../shared/messages.js';
import { StoreError } from '../shared/store-errors.js';
import { VERSION } from '../shared/version.js';
import type { Attestor } from './attestor/attestor.js';
import type { AuditLog } from './audit/audit-log.js';
import { type AttestedWorkload, authenticate } from './authenticate.js';
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

/** Per request: the digest of the exact request bytes (bound into released keys' HPKE info). */
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
  return { status: 'ok', uptimeMs: ctx.now() - ctx.startedAt };
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
      requestDigest: request.digest,
    });
  };
}

export const OPERATIONS: Readonly<Record<string, Operation>> = Object.freeze({
  health,
  describe,
  generateRandom,
  authenticate,
  createPrincipal,
  listPrincipals,
  ...Object.fromEntries(Object.keys(KMS_OPERATIONS).map((name) => [name, kms(name)])),
});
