/**
 * Request and response envelopes (docs/protocol.md §3).
 *
 *   request  = { v: 1, id: uint, op: text, params: map }
 *   response = { v: 1, id: uint, ok: true,  result: map }
 *            | { v: 1, id: uint / null, ok: false, error: { code: text, message: text, retriable: bool } }
 *
 * `id` is chosen by the client, unique among its in-flight requests on one connection, and echoed in the
 * response; a response to a frame whose id could not be read carries `id: null`. Every decoded message is
 * checked field by field here; nothing else in the code base reads an unchecked message.
 */
import { decodeCbor, encodeCbor } from './cbor.js';
import { ProtocolError, toWireError, type WireError } from './errors.js';
import { LIMITS } from './limits.js';

/** The protocol version this code speaks. */
export const PROTOCOL_VERSION = 1;

/** A CBOR map decoded as a plain object. */
export type Params = Readonly<Record<string, unknown>>;

export interface Request {
  readonly v: typeof PROTOCOL_VERSION;
  readonly id: number;
  readonly op: string;
  readonly params: Params;
}

export interface OkResponse {
  readonly v: typeof PROTOCOL_VERSION;
  readonly id: number;
  readonly ok: true;
  readonly result: Params;
}

export interface ErrorResponse {
  readonly v: typeof PROTOCOL_VERSION;
  readonly id: number | null;
  readonly ok: false;
  readonly error: WireError;
}

export type Response = OkResponse | ErrorResponse;

const OP_NAME = /^[a-zA-Z][a-zA-Z0-9.]*$/;

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return (
    typeof x === 'object' &&
    x !== null &&
    !Array.isArray(x) &&
    !(x instanceof Uint8Array) &&
    !(x instanceof Map)
  );
}

/**
 * Reads a request id: an unsigned integer below 2^53. cbor-x yields a bigint for any 8-byte integer, which is how
 * every conforming encoder writes ids from 2^32 up, so those are accepted when they fit. (An integral float is
 * read as its integer and -0 as 0: the response carries the id as an unsigned integer either way.)
 */
function toRequestId(x: unknown): number | undefined {
  if (typeof x === 'bigint') return x >= 0n && x <= BigInt(LIMITS.maxRequestId) ? Number(x) : undefined;
  if (typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= LIMITS.maxRequestId) return x + 0;
  return undefined;
}

/** The id as cbor-x must see it to write an unsigned integer: it writes numbers of 2^32 and above as floats. */
function wireId(id: number): number | bigint {
  return id > 0xffff_ffff ? BigInt(id) : id;
}

function checkVersion(msg: Record<string, unknown>): void {
  if (msg['v'] !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      'PROTOCOL_VERSION_UNSUPPORTED',
      `protocol version ${String(msg['v'])} is not supported`,
    );
  }
}

function checkKeys(msg: Record<string, unknown>, allowed: readonly string[], what: string): void {
  for (const k of Object.keys(msg)) {
    if (!allowed.includes(k))
      throw new ProtocolError('MESSAGE_INVALID', `${what} has an unknown field "${k}"`);
  }
}

/** Reads the id of a message whose other fields may be invalid, so an error response can echo it. */
export function peekRequestId(msg: unknown): number | null {
  return isPlainObject(msg) ? (toRequestId(msg['id']) ?? null) : null;
}

/**
 * Validates a decoded request.
 * @throws ProtocolError MESSAGE_INVALID, PROTOCOL_VERSION_UNSUPPORTED
 */
export function parseRequest(msg: unknown): Request {
  if (!isPlainObject(msg)) throw new ProtocolError('MESSAGE_INVALID', 'a request must be a CBOR map');
  checkVersion(msg);
  checkKeys(msg, ['v', 'id', 'op', 'params'], 'request');
  const { op, params } = msg;
  const id = toRequestId(msg['id']);
  if (id === undefined)
    throw new ProtocolError('MESSAGE_INVALID', 'request id must be an unsigned integer < 2^53');
  if (typeof op !== 'string' || op.length > LIMITS.maxOperationNameBytes || !OP_NAME.test(op)) {
    throw new ProtocolError('MESSAGE_INVALID', 'request op must be a short ASCII name');
  }
  if (params !== undefined && !isPlainObject(params)) {
    throw new ProtocolError('MESSAGE_INVALID', 'request params must be a map');
  }
  return { v: PROTOCOL_VERSION, id, op, params: params ?? {} };
}

/**
 * Validates a decoded response.
 * @throws ProtocolError MESSAGE_INVALID, PROTOCOL_VERSION_UNSUPPORTED
 */
export function parseResponse(msg: unknown): Response {
  if (!isPlainObject(msg)) throw new ProtocolError('MESSAGE_INVALID', 'a response must be a CBOR map');
  checkVersion(msg);
  const { ok } = msg;
  const id = toRequestId(msg['id']);
  if (ok === true) {
    checkKeys(msg, ['v', 'id', 'ok', 'result'], 'response');
    if (id === undefined)
      throw new ProtocolError('MESSAGE_INVALID', 'response id must be an unsigned integer');
    const result = msg['result'];
    if (!isPlainObject(result)) throw new ProtocolError('MESSAGE_INVALID', 'response result must be a map');
    return { v: PROTOCOL_VERSION, id, ok: true, result };
  }
  if (ok === false) {
    checkKeys(msg, ['v', 'id', 'ok', 'error'], 'response');
    if (msg['id'] !== null && id === undefined)
      throw new ProtocolError('MESSAGE_INVALID', 'response id must be an integer or null');
    const error = msg['error'];
    if (
      !isPlainObject(error) ||
      typeof error['code'] !== 'string' ||
      typeof error['message'] !== 'string' ||
      typeof error['retriable'] !== 'boolean'
    ) {
      throw new ProtocolError('MESSAGE_INVALID', 'response error must be { code, message, retriable }');
    }
    return {
      v: PROTOCOL_VERSION,
      id: id ?? null,
      ok: false,
      error: { code: error['code'], message: error['message'], retriable: error['retriable'] },
    };
  }
  throw new ProtocolError('MESSAGE_INVALID', 'response ok must be a boolean');
}

/** Decodes one frame body as a request (bounded CBOR, text keys only, no tags). */
export function decodeRequest(body: Uint8Array): Request {
  return parseRequest(decodeCbor(body));
}

/** Decodes one frame body as a response. */
export function decodeResponse(body: Uint8Array): Response {
  return parseResponse(decodeCbor(body));
}

export function encodeRequest(id: number, op: string, params: Params = {}): Uint8Array {
  return encodeCbor({ v: PROTOCOL_VERSION, id: wireId(id), op, params });
}

export function encodeOk(id: number, result: Params): Uint8Array {
  return encodeCbor({ v: PROTOCOL_VERSION, id: wireId(id), ok: true, result });
}

/** Builds the error response for any thrown value (through the one wire-error builder). */
export function encodeError(id: number | null, err: unknown): Uint8Array {
  return encodeCbor({
    v: PROTOCOL_VERSION,
    id: id === null ? null : wireId(id),
    ok: false,
    error: toWireError(err),
  });
}
