/**
 * Typed errors with stable string codes (style §1).
 *
 * One base class, `EkmsError`, carries a `code` that is never renamed, a `retriable` flag that tells a
 * client whether the same request may succeed later, and an optional `cause`. Each failure family has its
 * own code table (`as const`), so a union type narrows on `code`. Every code is listed in `docs/errors.md`;
 * `test/errors.test.ts` checks that the tables and the document agree both ways.
 *
 * The wire form `{ ok: false, code, message, retriable }` is built in exactly one place: `toWireError`.
 */

/** What a code table says about each code. */
export interface ErrorSpec {
  /** May the same request succeed if retried later (after a reconnect or a restart)? */
  readonly retriable: boolean;
  /** One line for docs/errors.md and for generic messages. */
  readonly summary: string;
}

/** Codes of the wire layer: frames, CBOR, envelopes, transports and the processes. */
export const SHARED_ERROR_CODES = {
  FRAME_TOO_LARGE: { retriable: false, summary: 'A frame exceeds the maximum frame size.' },
  FRAME_TRUNCATED: { retriable: false, summary: 'A frame or CBOR item ends before its declared length.' },
  FRAME_MALFORMED: { retriable: false, summary: 'Bytes are not well-formed CBOR of a supported subset.' },
  FRAME_TOO_DEEP: { retriable: false, summary: 'CBOR nesting exceeds the maximum depth.' },
  FRAME_TRAILING_BYTES: { retriable: false, summary: 'Bytes follow the single CBOR item a frame may hold.' },
  FRAME_LIMIT_EXCEEDED: {
    retriable: false,
    summary: 'A CBOR string, byte string, array or map exceeds its length limit.',
  },
  MESSAGE_INVALID: {
    retriable: false,
    summary: 'A decoded message does not have the required shape or types.',
  },
  PROTOCOL_VERSION_UNSUPPORTED: {
    retriable: false,
    summary: 'The message names a protocol version we do not speak.',
  },
  OPERATION_UNKNOWN: {
    retriable: false,
    summary: 'The request names an operation the enclave does not offer.',
  },
  REQUEST_INVALID: {
    retriable: false,
    summary: 'The request parameters are missing, ill-typed or out of range.',
  },
  REQUEST_DUPLICATE_ID: {
    retriable: false,
    summary: 'A request id is already in flight on this connection.',
  },
  REQUEST_TIMEOUT: { retriable: true, summary: 'No response arrived within the request timeout.' },
  CONNECTION_FAILED: { retriable: true, summary: 'Could not connect to the service endpoint.' },
  CONNECTION_CLOSED: { retriable: true, summary: 'The connection closed before the response arrived.' },
  ENCLAVE_UNAVAILABLE: {
    retriable: true,
    summary: 'The enclave process is not running (starting, crashed or restarting); retry shortly.',
  },
  HOST_OVERLOADED: { retriable: true, summary: 'The host refused the connection: too many connections.' },
  HOST_SHUTTING_DOWN: { retriable: true, summary: 'The host is shutting down.' },
  TOO_MANY_IN_FLIGHT: { retriable: true, summary: 'Too many requests are in flight on this connection.' },
  ENCLAVE_MEASUREMENT_MISMATCH: {
    retriable: false,
    summary: "The enclave's measurement differs from the one the client profile trusts.",
  },
  INTERNAL_ERROR: {
    retriable: false,
    summary: 'An unexpected internal error; details are in the process log.',
  },
  USAGE_ERROR: { retriable: false, summary: 'The command line is invalid (CLI exit code 2).' },
  CONFIG_INVALID: { retriable: false, summary: 'A configuration file or option is invalid.' },
  PROFILE_NOT_FOUND: {
    retriable: false,
    summary: 'No client profile was found (run `ekms start` or pass --profile).',
  },
  PROFILE_INVALID: { retriable: false, summary: 'The client profile is not a valid profile document.' },
  IO_ERROR: { retriable: false, summary: 'A file could not be read or written.' },
  NOT_IMPLEMENTED: {
    retriable: false,
    summary: 'The command exists but is not implemented in this version yet (its message names the issue).',
  },
} as const satisfies Record<string, ErrorSpec>;

export type SharedErrorCode = keyof typeof SHARED_ERROR_CODES;

/** Options accepted by every error constructor. */
export interface EkmsErrorOptions {
  readonly cause?: unknown;
  /** Overrides the table's retriable flag (e.g. a code received from the wire with its own flag). */
  readonly retriable?: boolean;
  /** Structured, non-secret details (field names, sizes, limits). Never key material or plaintext. */
  readonly details?: Readonly<Record<string, unknown>>;
}

/**
 * The base of every error this project throws on purpose.
 * `code` is stable across releases; `message` is for humans and may change.
 */
export class EkmsError<C extends string = string> extends Error {
  readonly code: C;
  readonly retriable: boolean;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: C, message: string, options: EkmsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retriable = options.retriable ?? lookupRetriable(code);
    this.details = options.details;
  }
}

/** Framing, CBOR decoding and message-shape errors. */
export class FrameError extends EkmsError<
  | 'FRAME_TOO_LARGE'
  | 'FRAME_TRUNCATED'
  | 'FRAME_MALFORMED'
  | 'FRAME_TOO_DEEP'
  | 'FRAME_TRAILING_BYTES'
  | 'FRAME_LIMIT_EXCEEDED'
> {}

/** Envelope and request errors. */
export class ProtocolError extends EkmsError<
  | 'MESSAGE_INVALID'
  | 'PROTOCOL_VERSION_UNSUPPORTED'
  | 'OPERATION_UNKNOWN'
  | 'REQUEST_INVALID'
  | 'REQUEST_DUPLICATE_ID'
> {}

/** Connection, process and availability errors; most are retriable. */
export class TransportError extends EkmsError<
  | 'REQUEST_TIMEOUT'
  | 'CONNECTION_FAILED'
  | 'CONNECTION_CLOSED'
  | 'ENCLAVE_UNAVAILABLE'
  | 'HOST_OVERLOADED'
  | 'HOST_SHUTTING_DOWN'
  | 'TOO_MANY_IN_FLIGHT'
  | 'ENCLAVE_MEASUREMENT_MISMATCH'
> {}

/** Local configuration, profile, file and command-line errors. */
export class ConfigError extends EkmsError<
  'USAGE_ERROR' | 'CONFIG_INVALID' | 'PROFILE_NOT_FOUND' | 'PROFILE_INVALID' | 'IO_ERROR' | 'NOT_IMPLEMENTED'
> {}

/** Other families register their tables here so that `retriable` defaults and the docs test see them. */
const registry = new Map<string, ErrorSpec>(Object.entries(SHARED_ERROR_CODES));

/**
 * Adds a family's code table to the registry. Called once at module load by each family
 * (attestation, keys, session…). Throws if a code is registered twice with a different spec.
 */
export function registerErrorCodes(table: Readonly<Record<string, ErrorSpec>>): void {
  for (const [code, spec] of Object.entries(table)) {
    const existing = registry.get(code);
    if (existing !== undefined && existing !== spec) {
      throw new Error(`error code ${code} registered twice`);
    }
    registry.set(code, spec);
  }
}

/** Every registered code with its spec (used by the docs test and by `ekms` help). */
export function registeredErrorCodes(): ReadonlyMap<string, ErrorSpec> {
  return registry;
}

function lookupRetriable(code: string): boolean {
  return registry.get(code)?.retriable ?? false;
}

/** The error half of a response envelope, as it travels on the wire and is printed by `--json`. */
export interface WireError {
  readonly code: string;
  readonly message: string;
  readonly retriable: boolean;
}

/**
 * The one place where an error becomes its wire form. Errors that are not `EkmsError` become
 * INTERNAL_ERROR with a generic message: their text may carry internals, so it stays in the log.
 */
export function toWireError(err: unknown): WireError {
  if (err instanceof EkmsError) {
    return { code: err.code, message: err.message, retriable: err.retriable };
  }
  return { code: 'INTERNAL_ERROR', message: SHARED_ERROR_CODES.INTERNAL_ERROR.summary, retriable: false };
}

/** Rebuilds an error received on the wire. Unknown codes are kept verbatim (a newer server may send them). */
export function fromWireError(wire: WireError): EkmsError {
  return new EkmsError(wire.code, wire.message, { retriable: wire.retriable });
}

/** Narrowing helper: is `err` an EkmsError with this code? */
export function isEkmsError<C extends string>(err: unknown, code?: C): err is EkmsError<C> {
  return err instanceof EkmsError && (code === undefined || err.code === code);
}
