/**
 * The storage channel (design §1; docs/sealed-state.md §7): the enclave has no disk, so it keeps its sealed state
 * in the host's blob store through a second stream it opens to the host (on Nitro: vsock to the parent, CID 3;
 * here: a Unix socket in the host's run directory). The enclave is the client, the host serves.
 *
 * Same framing and envelopes as the client protocol (4-byte length prefix, CBOR `{v,id,op,params}` requests and
 * `{v,id,ok,result|error}` responses), with larger bounds: one frame carries one sealed blob (≤ 1 MiB).
 *
 *   op            params                               result
 *   store.get     { name }                             { bytes: bstr | null }
 *   store.put     { name, bytes }                      { }
 *   store.delete  { name }                             { deleted: bool }
 *   store.list    { after?: name, limit?: 1..1000 }    { names: [name…] (sorted), next: name | null }
 *   audit.append  { lines: [bstr…] } or { line: bstr }  { }      (after the host appended and fsynced them)
 *
 * `audit.append` carries 1..512 audit-log lines (the enclave batches the lines of one event-loop turn), each a
 * byte string (shared/audit.ts; UTF-8, no "\n", at most AUDIT_LIMITS.maxLineBytes; bytes because a boot record with
 * evidence can exceed the CBOR text-string limit). The host appends them to its audit file in arrival order
 * (host/audit-sink.ts), with one write and one fsync per batch; the records are public by design, and
 * tamper-evident.
 *
 * The host learns names, sizes and timing only: blobs are sealed (enclave/sealing.ts) before they leave the
 * enclave, and every answer of the host is checked there (authentication, name, version), never trusted.
 */
import { AUDIT_LIMITS } from './audit.js';
import { type CborDecodeOptions, decodeCbor } from './cbor.js';
import { ProtocolError } from './errors.js';
import { LIMITS } from './limits.js';
import { type Params, parseRequest, parseResponse, type Request, type Response } from './messages.js';

/** The storage operations. */
export const StorageOp = {
  Get: 'store.get',
  Put: 'store.put',
  Delete: 'store.delete',
  List: 'store.list',
  AuditAppend: 'audit.append',
} as const;
export type StorageOp = (typeof StorageOp)[keyof typeof StorageOp];

/**
 * Most audit lines in one `audit.append` (the enclave batches the lines of one event-loop turn). Their bytes are
 * bounded by the frame (LIMITS.maxStorageFrameBytes); the enclave starts a new batch before it would exceed
 * AUDIT_APPEND_MAX_BATCH_BYTES.
 */
export const AUDIT_APPEND_MAX_LINES = 512;
export const AUDIT_APPEND_MAX_BATCH_BYTES = 512 * 1024;

/** Bounds for decoding storage frames: one sealed blob per frame. */
export const STORAGE_CBOR_OPTIONS: CborDecodeOptions = {
  maxBytes: LIMITS.maxStorageFrameBytes,
  maxBytesLength: LIMITS.maxSealedBlobBytes,
  // A list page of names.
  maxArrayLength: LIMITS.maxStorageListPage,
  maxItems: LIMITS.maxStorageListPage + 64,
};

const BLOB_NAME = /^[a-z0-9][a-z0-9._-]{0,127}$/;

/** Decodes a storage request frame. @throws FrameError, ProtocolError */
export function decodeStorageRequest(body: Uint8Array): Request {
  return parseRequest(decodeCbor(body, STORAGE_CBOR_OPTIONS));
}

/** Decodes a storage response frame. @throws FrameError, ProtocolError */
export function decodeStorageResponse(body: Uint8Array): Response {
  return parseResponse(decodeCbor(body, STORAGE_CBOR_OPTIONS));
}

function only(params: Params, allowed: readonly string[]): void {
  for (const k of Object.keys(params)) {
    if (!allowed.includes(k)) throw new ProtocolError('REQUEST_INVALID', `unknown parameter "${k}"`);
  }
}

/**
 * A blob name parameter (the store's rule). The host's store checks it again with its own code.
 * @throws ProtocolError REQUEST_INVALID
 */
export function blobNameParam(params: Params, key: string): string {
  const v = params[key];
  if (typeof v !== 'string' || !BLOB_NAME.test(v)) {
    throw new ProtocolError(
      'REQUEST_INVALID',
      `${key} must be 1..${LIMITS.maxBlobNameBytes} characters of [a-z0-9._-]`,
    );
  }
  return v;
}

/** Parameters of `store.list`, validated. @throws ProtocolError REQUEST_INVALID */
export function listParams(params: Params): { after: string | undefined; limit: number } {
  only(params, ['after', 'limit']);
  const after = params['after'] === undefined ? undefined : blobNameParam(params, 'after');
  const limit = params['limit'] ?? LIMITS.maxStorageListPage;
  if (
    typeof limit !== 'number' ||
    !Number.isInteger(limit) ||
    limit < 1 ||
    limit > LIMITS.maxStorageListPage
  ) {
    throw new ProtocolError(
      'REQUEST_INVALID',
      `limit must be an integer from 1 to ${LIMITS.maxStorageListPage}`,
    );
  }
  return { after, limit };
}

/** Parameters of `store.get` / `store.delete`. @throws ProtocolError REQUEST_INVALID */
export function nameParams(params: Params): { name: string } {
  only(params, ['name']);
  return { name: blobNameParam(params, 'name') };
}

/** Parameters of `store.put`. @throws ProtocolError REQUEST_INVALID */
export function putParams(params: Params): { name: string; bytes: Uint8Array } {
  only(params, ['name', 'bytes']);
  const bytes = params['bytes'];
  if (!(bytes instanceof Uint8Array))
    throw new ProtocolError('REQUEST_INVALID', 'bytes must be a byte string');
  return { name: blobNameParam(params, 'name'), bytes };
}

/**
 * Parameters of `audit.append`: one line of at most AUDIT_LIMITS.maxLineBytes bytes without CR or LF (the host
 * adds the "\n"; a line break inside would split a record).
 * @throws ProtocolError REQUEST_INVALID
 */
export function auditAppendParams(params: Params): { lines: Uint8Array[] } {
  only(params, ['line', 'lines']);
  if ((params['line'] === undefined) === (params['lines'] === undefined)) {
    throw new ProtocolError('REQUEST_INVALID', 'give line or lines');
  }
  const lines = params['lines'] === undefined ? [params['line']] : params['lines'];
  if (!Array.isArray(lines) || lines.length === 0 || lines.length > AUDIT_APPEND_MAX_LINES) {
    throw new ProtocolError('REQUEST_INVALID', `lines must be a list of 1..${AUDIT_APPEND_MAX_LINES} lines`);
  }
  for (const line of lines) {
    if (!(line instanceof Uint8Array) || line.length === 0 || line.length > AUDIT_LIMITS.maxLineBytes) {
      throw new ProtocolError(
        'REQUEST_INVALID',
        `a line must be a byte string of 1..${AUDIT_LIMITS.maxLineBytes} bytes`,
      );
    }
    if (line.includes(0x0a) || line.includes(0x0d)) {
      throw new ProtocolError('REQUEST_INVALID', 'a line must not contain a line break');
    }
  }
  return { lines: lines as Uint8Array[] };
}
