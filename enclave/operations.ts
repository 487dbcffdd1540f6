/**
 * The enclave's operations: name → handler. Each handler validates its own parameters and returns a
 * CBOR-encodable map; it throws `EkmsError`s, which become error responses.
 */
import { randomBytes } from 'node:crypto';
import { ProtocolError } from '../shared/errors.js';
import { LIMITS } from '../shared/limits.js';
import type { Params } from '../shared/messages.js';
import { VERSION } from '../shared/version.js';
import type { Attestor } from './attestor/attestor.js';

export interface OperationContext {
  readonly attestor: Attestor;
  /** Milliseconds since the epoch; injectable for tests. */
  readonly now: () => number;
  readonly startedAt: number;
}

export type Operation = (params: Params, ctx: OperationContext) => Params | Promise<Params>;

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

export const OPERATIONS: Readonly<Record<string, Operation>> = Object.freeze({
  health,
  describe,
  generateRandom,
});
