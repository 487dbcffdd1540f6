/**
 * Parameter checks of the key service operations: every field typed and bounded, unknown fields refused
 * (fail closed, style §4). Errors are REQUEST_INVALID naming the field, or the code of the rule broken
 * (CONTEXT_INVALID for an encryption context).
 */

import { CryptoError } from '../../shared/crypto-errors.js';
import { type EncryptionContext, normalizeContext } from '../../shared/encryption-context.js';
import { ProtocolError } from '../../shared/errors.js';
import type { Params } from '../../shared/messages.js';

export function checkKeys(params: Params, allowed: readonly string[]): void {
  for (const k of Object.keys(params)) {
    if (!allowed.includes(k))
      throw new ProtocolError('REQUEST_INVALID', `unknown parameter "${k.slice(0, 64)}"`);
  }
}

function invalid(field: string, what: string): ProtocolError {
  return new ProtocolError('REQUEST_INVALID', `${field} must be ${what}`, { details: { field } });
}

/** A key id or alias name: 1..256 printable ASCII characters. */
export function keyIdParam(params: Params, field = 'keyId'): string {
  const v = params[field];
  if (typeof v !== 'string' || !/^[\x21-\x7e]{1,256}$/.test(v)) {
    throw invalid(field, 'a key id or an alias name (alias/…)');
  }
  return v;
}

export function optionalKeyIdParam(params: Params, field: string): string | undefined {
  return params[field] === undefined ? undefined : keyIdParam(params, field);
}

export function stringParam(params: Params, field: string, maxBytes: number): string | undefined {
  const v = params[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || Buffer.byteLength(v, 'utf8') > maxBytes) {
    throw invalid(field, `a string of at most ${maxBytes} bytes`);
  }
  return v;
}

export function intParam(params: Params, field: string, min: number, max: number): number | undefined {
  const v = params[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalid(field, `an integer from ${min} to ${max}`);
  }
  return v;
}

export function boolParam(params: Params, field: string): boolean | undefined {
  const v = params[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw invalid(field, 'true or false');
  return v;
}

export function bytesParam(params: Params, field: string): Uint8Array {
  const v = params[field];
  if (!(v instanceof Uint8Array)) throw invalid(field, 'a byte string');
  return v;
}

/**
 * An encryption context (a map of strings), validated by the shared rules; absent means empty.
 * @throws CryptoError CONTEXT_INVALID
 */
export function contextParam(params: Params, field = 'encryptionContext'): EncryptionContext {
  const v = params[field];
  if (v === undefined) return normalizeContext({});
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) {
    throw new CryptoError('CONTEXT_INVALID', `${field} must be a map of strings`);
  }
  for (const value of Object.values(v)) {
    if (typeof value !== 'string')
      throw new CryptoError('CONTEXT_INVALID', `${field} values must be strings`);
  }
  return normalizeContext(v as Record<string, string>);
}
