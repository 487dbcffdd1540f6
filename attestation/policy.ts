/**
 * Attestation policy (design §2 "Policy", §5 `ekms attest verify --policy`; style §2 evaluate stage, §4 fail closed).
 *
 * `parsePolicy(json)` turns a versioned JSON document into a frozen `AttestationPolicy`, rejecting anything it
 * does not understand (unknown versions, unknown keys at any level, wrong types, malformed or mis-sized hex)
 * with POLICY_INVALID and the JSON path of the problem. `evaluate(claims, policy, { now, expect })` applies it
 * to verified `Claims` and lists every violation (codes: POLICY_VIOLATION_CODES in ./errors.ts); `enforce`
 * returns the claims or throws POLICY_VIOLATION carrying all of them. The document format and the scoping rule
 * are specified in docs/attestation-policy.md.
 *
 * Sizes relied on:
 *  - AWS Nitro Enclaves attestation document (NSM API, "Attestation document" in the Nitro Enclaves user guide):
 *    PCRs are SHA-384 (48 bytes), PCR0 = enclave image, PCR1 = kernel and bootstrap, PCR2 = application,
 *    PCR3 = parent IAM role, PCR4 = parent instance id, PCR8 = image signing certificate; at most 32 PCRs;
 *    `user_data`, `nonce` and `public_key` hold at most 1024 bytes; `timestamp` is signed (ms since the epoch).
 *  - AMD SEV-SNP ABI specification (pub. 56860) §7.3, Table "ATTESTATION_REPORT Structure": MEASUREMENT 48
 *    bytes, REPORT_DATA 64, HOST_DATA 32, VMPL 0–3, GUEST_SVN 32-bit, each TCB_VERSION component one byte (FMC
 *    on Turin only). The report carries no timestamp, so freshness comes from a nonce in REPORT_DATA.
 *
 * Left out: signatures, chains and validity (the verifiers' job, before this stage); SNP guest-policy bits other
 * than debug, family/image ids and ID keys (candidates for a version 2 document).
 * No I/O (style §13): the caller supplies `now` and the per-request binding values.
 */
import { timingSafeEqual } from 'node:crypto';
import { ConfigError } from '../shared/errors.js';
import { LIMITS } from '../shared/limits.js';
import type { Claims, NitroClaims, SnpClaims, TcbVersion, TeeType } from './claims.js';
import { AttestationError, type PolicyViolationCode } from './errors.js';

// ---------------------------------------------------------------------------------------------------------------
// Document types
// ---------------------------------------------------------------------------------------------------------------

/** The only policy document version this library reads. */
export const POLICY_VERSION = 1;
/** Clock skew tolerated for evidence timestamped after `now`, when the policy does not say. */
export const DEFAULT_CLOCK_SKEW_SECONDS = 60;
/** Largest `clockSkewSeconds` a policy may set. */
export const MAX_CLOCK_SKEW_SECONDS = 3600;
/** Most entries in one allow-list of a policy (guards evaluation cost; real lists hold a handful). */
export const MAX_POLICY_LIST_ENTRIES = 256;

/** TEE types, in the order `types` defaults to. */
export const POLICY_TEE_TYPES = Object.freeze(['nitro', 'sev-snp'] as const satisfies readonly TeeType[]);
/** SEV-SNP products a policy may name. */
export const POLICY_SNP_PRODUCTS = Object.freeze([
  'Milan',
  'Genoa',
  'Turin',
] as const satisfies readonly SnpClaims['product'][]);
/** SEV-SNP signing key kinds a policy may name. */
export const POLICY_SNP_SIGNERS = Object.freeze([
  'vcek',
  'vlek',
] as const satisfies readonly SnpClaims['signingKey'][]);

/** Minimum SEV-SNP TCB, component by component; `fmc` only constrains Turin reports. */
export interface MinTcb {
  readonly bootloader: number;
  readonly tee: number;
  readonly snp: number;
  readonly microcode: number;
  readonly fmc?: number;
}

/** Conditions on Nitro claims. Hex is lowercase. */
export interface NitroConditions {
  /** Allowed PCR0 values (48-byte hex). */
  readonly measurements?: readonly string[];
  /** Largest age of the signed `timestamp` at `now`, in seconds. */
  readonly maxAgeSeconds?: number;
  /** PCR index (decimal string) → allowed values (48-byte hex); every listed PCR must match one value. */
  readonly pcrs?: Readonly<Record<string, readonly string[]>>;
  /** Required `nonce` (1–1024 bytes, hex). */
  readonly nonce?: string;
  /** Required `user_data` (1–1024 bytes, hex). */
  readonly userData?: string;
  /** Required `public_key` (1–1024 bytes, hex). */
  readonly publicKey?: string;
}

/** Conditions on SEV-SNP claims. Hex is lowercase. */
export interface SnpConditions {
  /** Allowed MEASUREMENT values (48-byte hex). */
  readonly measurements?: readonly string[];
  /** Minimum REPORTED_TCB. */
  readonly minTcb?: MinTcb;
  /** Allowed VMPLs (0–3). */
  readonly vmpl?: readonly number[];
  /** Allowed signing key kinds. */
  readonly signers?: readonly SnpClaims['signingKey'][];
  /** Allowed products. */
  readonly products?: readonly SnpClaims['product'][];
  /** Minimum GUEST_SVN. */
  readonly minGuestSvn?: number;
  /** Required HOST_DATA (32-byte hex). */
  readonly hostData?: string;
  /** Required REPORT_DATA (64-byte hex). */
  readonly reportData?: string;
}

/**
 * A parsed, validated, frozen attestation policy (version 1). Only `parsePolicy` makes these; `evaluate`
 * refuses any other object. Top-level conditions are unscoped (they apply to every claims type and fail closed
 * with CONDITION_NOT_APPLICABLE where they cannot); the `nitro` and `sev-snp` sections apply to their type only.
 */
export interface AttestationPolicy extends NitroConditions, SnpConditions {
  readonly version: typeof POLICY_VERSION;
  /** Allowed TEE types (default: all). */
  readonly types: readonly TeeType[];
  /** Debug enclaves/guests are denied unless true (default false). */
  readonly allowDebug: boolean;
  /** Claims anchored at a simulated root are denied unless true (default false). */
  readonly allowSimulated: boolean;
  /** Tolerated skew for timestamps after `now` (default 60). */
  readonly clockSkewSeconds: number;
  /** Allowed anchoring roots: SHA-256 of the root certificate's DER (32-byte hex). */
  readonly rootFingerprints?: readonly string[];
  readonly nitro?: NitroConditions;
  readonly 'sev-snp'?: SnpConditions;
}

// ---------------------------------------------------------------------------------------------------------------
// Evaluation types
// ---------------------------------------------------------------------------------------------------------------

/** Binding values known only per request (a fresh nonce, a digest of the caller's key): hex or bytes. */
export interface ExpectedBindings {
  /** Nitro `nonce` (1–1024 bytes). */
  readonly nonce?: string | Uint8Array;
  /** Nitro `user_data` (1–1024 bytes). */
  readonly userData?: string | Uint8Array;
  /** Nitro `public_key` (1–1024 bytes). */
  readonly publicKey?: string | Uint8Array;
  /** SEV-SNP REPORT_DATA (exactly 64 bytes). */
  readonly reportData?: string | Uint8Array;
}

/** Options of `evaluate` and `enforce`. `now` is required: the library never reads the clock. */
export interface EvaluateOptions {
  /** The instant freshness is judged at (live evidence: the clock; archived evidence: its time). */
  readonly now: Date;
  /** Per-request binding values; each one given must match (in addition to the policy's own). */
  readonly expect?: ExpectedBindings;
}

/** One reason the claims do not satisfy the policy. */
export interface PolicyViolation {
  /** Stable code from POLICY_VIOLATION_CODES. */
  readonly code: PolicyViolationCode;
  /** The claims field concerned (`measurement`, `pcrs.8`, `reportedTcb.snp`, `timestamp`…). */
  readonly field: string;
  /** Where the condition comes from: its JSON path in the policy (`$.pcrs["8"]`) or `expect.nonce`. */
  readonly condition: string;
  /** Expected versus actual, for humans. Binding values (nonce, data, keys) are described by size only. */
  readonly message: string;
}

/** The outcome of `evaluate`: allowed with no violations, or denied with every violation found. */
export type Decision =
  | { readonly allowed: true; readonly violations: readonly [] }
  | { readonly allowed: false; readonly violations: readonly [PolicyViolation, ...PolicyViolation[]] };

// ---------------------------------------------------------------------------------------------------------------
// parsePolicy
// ---------------------------------------------------------------------------------------------------------------

const SHA384_BYTES = 48;
const SHA256_BYTES = 32;
const SNP_REPORT_DATA_BYTES = 64;
const SNP_HOST_DATA_BYTES = 32;
const SNP_MAX_VMPL = 3;
const UINT32_MAX = 0xffff_ffff;
const TCB_COMPONENT_MAX = 0xff;
const TCB_COMPONENTS = ['bootloader', 'tee', 'snp', 'microcode'] as const;
const BINDING_MAX_BYTES = LIMITS.maxNitroOptionalFieldBytes;

const NITRO_KEYS = ['measurements', 'maxAgeSeconds', 'pcrs', 'nonce', 'userData', 'publicKey'] as const;
const SNP_KEYS = [
  'measurements',
  'minTcb',
  'vmpl',
  'signers',
  'products',
  'minGuestSvn',
  'hostData',
  'reportData',
] as const;
const COMMON_KEYS = [
  'version',
  'types',
  'allowDebug',
  'allowSimulated',
  'clockSkewSeconds',
  'rootFingerprints',
];
const TOP_KEYS = new Set<string>([...COMMON_KEYS, ...NITRO_KEYS, ...SNP_KEYS, 'nitro', 'sev-snp']);
const MIN_TCB_KEYS = new Set<string>([...TCB_COMPONENTS, 'fmc']);

/** Policies made by parsePolicy; evaluate accepts no other object (their invariants hold only for these). */
const PARSED = new WeakSet<object>();

type JsonObject = Readonly<Record<string, unknown>>;

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const HEX = /^[0-9a-fA-F]*$/;
const BASE64ISH = /^[A-Za-z0-9+/_-]+={0,2}$/;

/** `$.a.b[0]["sev-snp"]`; long keys are shortened so that a path stays printable. */
function childPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  const shown = key.length > 64 ? `${key.slice(0, 64)}…` : key;
  return IDENTIFIER.test(shown) ? `${path}.${shown}` : `${path}[${JSON.stringify(shown)}]`;
}

function invalid(path: string, message: string): never {
  throw new AttestationError('POLICY_INVALID', `attestation policy ${path}: ${message}`, {
    details: { path },
  });
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return `a ${typeof value}`;
}

function isPlainObject(value: unknown): value is JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function object(value: unknown, path: string): JsonObject {
  /* Precondition: every level of the policy is a plain JSON object where an object is expected. */
  if (!isPlainObject(value)) {
    const hint = typeof value === 'string' ? ' (parse the JSON text first)' : '';
    invalid(path, `must be an object, got ${typeName(value)}${hint}`);
  }
  return value;
}

/** Own property only: a polluted Object.prototype must not supply policy values. */
function own(obj: JsonObject, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

function has(obj: JsonObject, key: string): boolean {
  return Object.hasOwn(obj, key);
}

function rejectUnknownKeys(obj: JsonObject, allowed: ReadonlySet<string>, path: string, where: string): void {
  for (const key of Object.keys(obj)) {
    /* Precondition: a policy has no keys this version does not define (fail closed on typos and new features). */
    if (!allowed.has(key)) invalid(childPath(path, key), `unknown key${where}`);
  }
}

function boolean(value: unknown, path: string): boolean {
  /* Precondition: flags are JSON booleans (no "true" strings, no 0/1). */
  if (typeof value !== 'boolean') invalid(path, `must be a boolean, got ${typeName(value)}`);
  return value;
}

function integer(value: unknown, path: string, min: number, max: number): number {
  /* Precondition: numeric conditions are integers within their field's range. */
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    invalid(path, `must be an integer, got ${typeName(value)}`);
  }
  if (value < min || value > max) invalid(path, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

interface HexSize {
  readonly exact?: number;
  readonly min?: number;
  readonly max?: number;
  readonly what: string;
}

/** Checks hex syntax and size; returns the normalised form or a reason. Shared by the policy and `expect`. */
function checkHex(value: string, size: HexSize): { hex: string } | { problem: string } {
  if (/^0x/i.test(value)) return { problem: 'must be plain hex without a 0x prefix' };
  if (!HEX.test(value)) {
    const hint = BASE64ISH.test(value) ? ' (this looks base64-encoded; give hex)' : '';
    return { problem: `must be hex (0-9, a-f)${hint}` };
  }
  if (value.length % 2 !== 0)
    return { problem: `must have an even number of hex digits, got ${value.length}` };
  const bytes = value.length / 2;
  if (size.exact !== undefined && bytes !== size.exact) {
    return {
      problem: `must be ${size.exact} bytes (${size.exact * 2} hex digits) for ${size.what}, got ${bytes}`,
    };
  }
  if (size.min !== undefined && bytes < size.min) {
    return { problem: `must be at least ${size.min} byte(s) for ${size.what}, got ${bytes}` };
  }
  if (size.max !== undefined && bytes > size.max) {
    return { problem: `must be at most ${size.max} bytes for ${size.what}, got ${bytes}` };
  }
  return { hex: value.toLowerCase() };
}

function hex(value: unknown, path: string, size: HexSize): string {
  /* Precondition: byte values are hex strings of the field's size (normalised to lowercase). */
  if (typeof value !== 'string') invalid(path, `must be a hex string, got ${typeName(value)}`);
  const checked = checkHex(value, size);
  if ('problem' in checked) invalid(path, checked.problem);
  return checked.hex;
}

function list<T>(value: unknown, path: string, item: (v: unknown, p: string) => T): readonly T[] {
  /* Precondition: allow-lists are non-empty arrays of bounded length (an empty list would deny everything). */
  if (!Array.isArray(value)) invalid(path, `must be an array, got ${typeName(value)}`);
  if (value.length === 0) invalid(path, 'must not be empty (omit the key to leave this unconstrained)');
  if (value.length > MAX_POLICY_LIST_ENTRIES) {
    invalid(path, `must have at most ${MAX_POLICY_LIST_ENTRIES} entries, got ${value.length}`);
  }
  const out: T[] = [];
  for (let i = 0; i < value.length; i++) {
    const v = item(value[i], childPath(path, i));
    if (!out.includes(v)) out.push(v);
  }
  return Object.freeze(out);
}

function oneOf<T extends string>(choices: readonly T[]): (v: unknown, p: string) => T {
  return (v, p) => {
    /* Precondition: enumerations name only known values. */
    if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) {
      const got = typeof v === 'string' ? JSON.stringify(v.slice(0, 64)) : typeName(v);
      invalid(p, `must be one of ${choices.map((c) => JSON.stringify(c)).join(', ')}, got ${got}`);
    }
    return v as T;
  };
}

const MEASUREMENT: HexSize = { exact: SHA384_BYTES, what: 'a SHA-384 measurement' };
const PCR: HexSize = { exact: SHA384_BYTES, what: 'a SHA-384 PCR' };
const ROOT_FINGERPRINT: HexSize = { exact: SHA256_BYTES, what: 'a SHA-256 root certificate fingerprint' };
const REPORT_DATA: HexSize = { exact: SNP_REPORT_DATA_BYTES, what: 'SEV-SNP REPORT_DATA' };
const HOST_DATA: HexSize = { exact: SNP_HOST_DATA_BYTES, what: 'SEV-SNP HOST_DATA' };
const NONCE: HexSize = { min: 1, max: BINDING_MAX_BYTES, what: 'a Nitro nonce' };
const USER_DATA: HexSize = { min: 1, max: BINDING_MAX_BYTES, what: 'Nitro user_data' };
const PUBLIC_KEY: HexSize = { min: 1, max: BINDING_MAX_BYTES, what: 'a Nitro public_key' };

const PCR_INDEX = /^(0|[1-9][0-9]?)$/;

function pcrs(value: unknown, path: string): Readonly<Record<string, readonly string[]>> {
  const obj = object(value, path);
  const keys = Object.keys(obj);
  if (keys.length === 0) invalid(path, 'must not be empty (omit the key to leave PCRs unconstrained)');
  const out: Record<string, readonly string[]> = {};
  for (const key of keys) {
    const p = childPath(path, key);
    /* Precondition: PCR indexes are canonical decimal strings below the Nitro PCR count. */
    if (!PCR_INDEX.test(key) || Number(key) >= LIMITS.maxNitroPcrs) {
      invalid(p, `PCR index must be a decimal number from 0 to ${LIMITS.maxNitroPcrs - 1}`);
    }
    out[key] = list(obj[key], p, (v, q) => hex(v, q, PCR));
  }
  return Object.freeze(out);
}

function minTcb(value: unknown, path: string): MinTcb {
  const obj = object(value, path);
  rejectUnknownKeys(obj, MIN_TCB_KEYS, path, ` (TCB components: ${[...MIN_TCB_KEYS].join(', ')})`);
  const out: { -readonly [K in keyof MinTcb]: number } = { bootloader: 0, tee: 0, snp: 0, microcode: 0 };
  for (const component of TCB_COMPONENTS) {
    const p = childPath(path, component);
    /* Precondition: minTcb names every component every product has (fmc alone is optional). */
    if (!has(obj, component)) invalid(p, 'is required (give 0 to leave a component unconstrained)');
    out[component] = integer(obj[component], p, 0, TCB_COMPONENT_MAX);
  }
  if (has(obj, 'fmc')) out.fmc = integer(obj.fmc, childPath(path, 'fmc'), 0, TCB_COMPONENT_MAX);
  return Object.freeze(out);
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Reads the keys of `keys` present in `obj` into `out` (used for the top level and the sections). */
function readConditions(
  obj: JsonObject,
  path: string,
  keys: readonly string[],
  out: Mutable<NitroConditions & SnpConditions>,
): void {
  const at = (key: string) => childPath(path, key);
  for (const key of keys) {
    if (!has(obj, key)) continue;
    const v = obj[key];
    switch (key) {
      case 'measurements':
        out.measurements = list(v, at(key), (x, p) => hex(x, p, MEASUREMENT));
        break;
      case 'maxAgeSeconds':
        out.maxAgeSeconds = integer(v, at(key), 1, Number.MAX_SAFE_INTEGER);
        break;
      case 'pcrs':
        out.pcrs = pcrs(v, at(key));
        break;
      case 'nonce':
        out.nonce = hex(v, at(key), NONCE);
        break;
      case 'userData':
        out.userData = hex(v, at(key), USER_DATA);
        break;
      case 'publicKey':
        out.publicKey = hex(v, at(key), PUBLIC_KEY);
        break;
      case 'minTcb':
        out.minTcb = minTcb(v, at(key));
        break;
      case 'vmpl':
        out.vmpl = list(v, at(key), (x, p) => integer(x, p, 0, SNP_MAX_VMPL));
        break;
      case 'signers':
        out.signers = list(v, at(key), oneOf(POLICY_SNP_SIGNERS));
        break;
      case 'products':
        out.products = list(v, at(key), oneOf(POLICY_SNP_PRODUCTS));
        break;
      case 'minGuestSvn':
        out.minGuestSvn = integer(v, at(key), 0, UINT32_MAX);
        break;
      case 'hostData':
        out.hostData = hex(v, at(key), HOST_DATA);
        break;
      case 'reportData':
        out.reportData = hex(v, at(key), REPORT_DATA);
        break;
    }
  }
}

function section(
  value: unknown,
  path: string,
  keys: readonly string[],
  type: TeeType,
): NitroConditions & SnpConditions {
  const obj = object(value, path);
  const allowed = new Set(keys);
  rejectUnknownKeys(obj, allowed, path, ` in the ${type} section (allowed: ${keys.join(', ')})`);
  /* Precondition: a section constrains something (an empty one is almost certainly a mistake). */
  if (Object.keys(obj).length === 0) invalid(path, 'must not be empty (omit the section instead)');
  const out: Mutable<NitroConditions & SnpConditions> = {};
  readConditions(obj, path, keys, out);
  return Object.freeze(out);
}

/**
 * Validates an attestation policy document (already JSON-decoded) and returns it normalised (defaults filled
 * in, hex lowercase, lists de-duplicated) and frozen. The format is in docs/attestation-policy.md.
 *
 * @throws AttestationError POLICY_INVALID — not an object, `version` missing or not 1, an unknown key at any
 *   level, a value of the wrong type or out of range, malformed or mis-sized hex, an empty list or section, a
 *   section for a type `types` excludes. `details.path` (and the message) give the JSON path, e.g. `$.pcrs["0"][1]`.
 */
export function parsePolicy(json: unknown): AttestationPolicy {
  const root = object(json, '$');
  /* Precondition: the policy names its version, and it is the one this library reads. */
  if (!has(root, 'version'))
    invalid('$.version', `is required (this library reads version ${POLICY_VERSION})`);
  const version = root.version;
  if (version !== POLICY_VERSION) {
    const got = typeof version === 'number' ? String(version) : typeName(version);
    invalid('$.version', `unsupported policy version ${got} (this library reads version ${POLICY_VERSION})`);
  }
  rejectUnknownKeys(root, TOP_KEYS, '$', '');

  const out: Mutable<AttestationPolicy> = {
    version: POLICY_VERSION,
    types: has(root, 'types') ? list(root.types, '$.types', oneOf(POLICY_TEE_TYPES)) : POLICY_TEE_TYPES,
    allowDebug: has(root, 'allowDebug') ? boolean(root.allowDebug, '$.allowDebug') : false,
    allowSimulated: has(root, 'allowSimulated') ? boolean(root.allowSimulated, '$.allowSimulated') : false,
    clockSkewSeconds: has(root, 'clockSkewSeconds')
      ? integer(root.clockSkewSeconds, '$.clockSkewSeconds', 0, MAX_CLOCK_SKEW_SECONDS)
      : DEFAULT_CLOCK_SKEW_SECONDS,
  };
  if (has(root, 'rootFingerprints')) {
    out.rootFingerprints = list(root.rootFingerprints, '$.rootFingerprints', (v, p) =>
      hex(v, p, ROOT_FINGERPRINT),
    );
  }
  readConditions(root, '$', [...NITRO_KEYS, ...SNP_KEYS], out);
  for (const [key, keys, type] of [
    ['nitro', NITRO_KEYS, 'nitro'],
    ['sev-snp', SNP_KEYS, 'sev-snp'],
  ] as const) {
    if (!has(root, key)) continue;
    const p = childPath('$', key);
    /* Precondition: a section's type is allowed by `types` (otherwise its conditions could never apply). */
    if (!out.types.includes(type)) invalid(p, `section for "${type}", which $.types does not allow`);
    const conditions = section(own(root, key), p, keys, type);
    if (key === 'nitro') out.nitro = conditions;
    else out['sev-snp'] = conditions;
  }
  const policy = Object.freeze(out);
  PARSED.add(policy);
  return policy;
}

// ---------------------------------------------------------------------------------------------------------------
// evaluate / enforce
// ---------------------------------------------------------------------------------------------------------------

/** Bytes of a claims hex value, or null when it is not well-formed hex (then it matches nothing). */
function claimBytes(value: unknown): Buffer | null {
  if (typeof value !== 'string' || value.length % 2 !== 0 || !HEX.test(value)) return null;
  return Buffer.from(value, 'hex');
}

/** Constant-time equality of byte strings; a length mismatch is simply unequal. */
function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Constant-time membership: compares against every entry, without stopping at the first match. */
function inHexList(actual: Buffer | null, allowed: readonly string[]): boolean {
  let found = false;
  for (const entry of allowed) {
    const match = actual !== null && bytesEqual(actual, Buffer.from(entry, 'hex'));
    found = match || found;
  }
  return found;
}

const short = (h: string): string => (h.length > 16 ? `${h.slice(0, 16)}…` : h);

function describeHexList(values: readonly string[]): string {
  const shown = values.slice(0, 3).map(short).join(', ');
  return values.length > 3 ? `${shown} and ${values.length - 3} more` : shown;
}

function describeClaimHex(value: unknown): string {
  if (typeof value !== 'string') return `no value (${value === null ? 'null' : typeof value})`;
  return claimBytes(value) === null ? 'a value that is not valid hex' : value;
}

/** Collects violations in the order the checks run. */
class Violations {
  readonly list: PolicyViolation[] = [];
  add(code: PolicyViolationCode, field: string, condition: string, message: string): void {
    this.list.push({ code, field, condition, message });
  }
}

const NITRO_ONLY = new Set<string>(['pcrs', 'nonce', 'userData', 'publicKey']);
const SNP_ONLY = new Set<string>([
  'minTcb',
  'vmpl',
  'signers',
  'products',
  'minGuestSvn',
  'hostData',
  'reportData',
]);

/** The claims field an SNP/Nitro-only condition reads (for CONDITION_NOT_APPLICABLE). */
const CONDITION_FIELD: Readonly<Record<string, string>> = {
  pcrs: 'pcrs',
  nonce: 'nonce',
  userData: 'userData',
  publicKey: 'publicKey',
  minTcb: 'reportedTcb',
  vmpl: 'vmpl',
  signers: 'signingKey',
  products: 'product',
  minGuestSvn: 'guestSvn',
  hostData: 'hostData',
  reportData: 'reportData',
};

type BindingName = 'nonce' | 'userData' | 'publicKey' | 'reportData';
const BINDING_CODE: Readonly<Record<BindingName, PolicyViolationCode>> = {
  nonce: 'NONCE_MISMATCH',
  userData: 'USER_DATA_MISMATCH',
  publicKey: 'PUBLIC_KEY_MISMATCH',
  reportData: 'REPORT_DATA_MISMATCH',
};

/** Compares a required binding in constant time; the message gives sizes only, never the values. */
function checkBinding(
  out: Violations,
  name: BindingName,
  actualValue: unknown,
  expected: Uint8Array,
  condition: string,
  source: string,
): void {
  const actual = claimBytes(actualValue);
  /* Precondition: a required binding (nonce, user data, public key, report data) equals the claims' value byte for byte. */
  if (actual !== null && bytesEqual(actual, expected)) return;
  const got =
    actualValue === null || actualValue === undefined
      ? 'the claims carry none'
      : actual === null
        ? 'the claims value is not valid hex'
        : `the claims carry a different value (${actual.length} bytes, expected ${expected.length})`;
  out.add(BINDING_CODE[name], name, condition, `${name} does not match the ${source}: ${got}`);
}

function checkMeasurements(
  out: Violations,
  claims: Claims,
  allowed: readonly string[],
  condition: string,
): void {
  /* Precondition: the launch measurement (Nitro PCR0, SNP MEASUREMENT) is one of the allowed values. */
  if (inHexList(claimBytes(claims.measurement), allowed)) return;
  out.add(
    'MEASUREMENT_NOT_ALLOWED',
    'measurement',
    condition,
    `measurement ${describeClaimHex(claims.measurement)} is not allowed (allowed: ${describeHexList(allowed)})`,
  );
}

function checkNitro(out: Violations, claims: NitroClaims, c: NitroConditions, path: string): void {
  if (c.pcrs !== undefined) {
    const claimed: Readonly<Record<string, unknown>> = isObject(claims.pcrs) ? claims.pcrs : {};
    const indexes = Object.keys(c.pcrs).sort((a, b) => Number(a) - Number(b));
    for (const index of indexes) {
      const allowed = c.pcrs[index] ?? [];
      const condition = childPath(childPath(path, 'pcrs'), index);
      const field = `pcrs.${index}`;
      const value = own(claimed, index);
      /* Precondition: every PCR the policy lists is present in the claims. */
      if (value === undefined || value === null) {
        out.add(
          'PCR_MISSING',
          field,
          condition,
          `PCR${index} is absent from the claims; the policy constrains it`,
        );
        continue;
      }
      /* Precondition: every PCR the policy lists equals one of its allowed values. */
      if (!inHexList(claimBytes(value), allowed)) {
        out.add(
          'PCR_NOT_ALLOWED',
          field,
          condition,
          `PCR${index} ${describeClaimHex(value)} is not allowed (allowed: ${describeHexList(allowed)})`,
        );
      }
    }
  }
  for (const name of ['nonce', 'userData', 'publicKey'] as const) {
    const required = c[name];
    if (required === undefined) continue;
    checkBinding(
      out,
      name,
      claims[name],
      Buffer.from(required, 'hex'),
      childPath(path, name),
      'policy value',
    );
  }
}

function checkSnp(out: Violations, claims: SnpClaims, c: SnpConditions, path: string): void {
  if (c.minTcb !== undefined) {
    const condition = childPath(path, 'minTcb');
    const reported: Partial<Record<keyof TcbVersion, unknown>> = isObject(claims.reportedTcb)
      ? claims.reportedTcb
      : {};
    const components: (keyof TcbVersion)[] = [...TCB_COMPONENTS];
    if (c.minTcb.fmc !== undefined) components.push('fmc');
    for (const component of components) {
      const min = c.minTcb[component] ?? 0;
      const actual = reported[component];
      /* Precondition: each REPORTED_TCB component is at least the policy's minimum (each one its own violation). */
      if (typeof actual === 'number' && actual >= min) continue;
      const got =
        typeof actual === 'number'
          ? `${actual}`
          : `missing${component === 'fmc' ? ` (${String(claims.product)} reports have no FMC component)` : ''}`;
      out.add(
        'TCB_TOO_LOW',
        `reportedTcb.${component}`,
        childPath(condition, component),
        `reported TCB ${component} is ${got}, policy minimum is ${min}`,
      );
    }
  }
  /* Precondition: the VMPL is one of the allowed levels. */
  if (c.vmpl !== undefined && !c.vmpl.includes(claims.vmpl)) {
    out.add(
      'VMPL_NOT_ALLOWED',
      'vmpl',
      childPath(path, 'vmpl'),
      `VMPL ${String(claims.vmpl)} is not allowed (allowed: ${c.vmpl.join(', ')})`,
    );
  }
  /* Precondition: the report was signed by an allowed kind of key (VCEK or VLEK). */
  if (c.signers !== undefined && !c.signers.includes(claims.signingKey)) {
    out.add(
      'SIGNER_NOT_ALLOWED',
      'signingKey',
      childPath(path, 'signers'),
      `signing key ${JSON.stringify(claims.signingKey)} is not allowed (allowed: ${c.signers.join(', ')})`,
    );
  }
  /* Precondition: the product is one of the allowed products. */
  if (c.products !== undefined && !c.products.includes(claims.product)) {
    out.add(
      'PRODUCT_NOT_ALLOWED',
      'product',
      childPath(path, 'products'),
      `product ${JSON.stringify(claims.product)} is not allowed (allowed: ${c.products.join(', ')})`,
    );
  }
  /* Precondition: GUEST_SVN is at least the policy's minimum. */
  if (
    c.minGuestSvn !== undefined &&
    !(typeof claims.guestSvn === 'number' && claims.guestSvn >= c.minGuestSvn)
  ) {
    out.add(
      'GUEST_SVN_TOO_LOW',
      'guestSvn',
      childPath(path, 'minGuestSvn'),
      `guest SVN is ${String(claims.guestSvn)}, policy minimum is ${c.minGuestSvn}`,
    );
  }
  if (c.hostData !== undefined) {
    /* Precondition: HOST_DATA equals the policy's value exactly. */
    if (!inHexList(claimBytes(claims.hostData), [c.hostData])) {
      out.add(
        'HOST_DATA_MISMATCH',
        'hostData',
        childPath(path, 'hostData'),
        `host data ${describeClaimHex(claims.hostData)} differs from the policy's ${c.hostData}`,
      );
    }
  }
  if (c.reportData !== undefined) {
    checkBinding(
      out,
      'reportData',
      claims.reportData,
      Buffer.from(c.reportData, 'hex'),
      childPath(path, 'reportData'),
      'policy value',
    );
  }
}

/** Applies one group of conditions: the unscoped top level (`scoped` false) or the claims type's section. */
function checkConditions(
  out: Violations,
  claims: Claims,
  c: NitroConditions & SnpConditions,
  path: string,
  scoped: boolean,
): void {
  if (c.measurements !== undefined)
    checkMeasurements(out, claims, c.measurements, childPath(path, 'measurements'));
  if (claims.type === 'nitro') checkNitro(out, claims, c, path);
  if (claims.type === 'sev-snp') checkSnp(out, claims, c, path);
  if (scoped) return;
  const foreign = claims.type === 'nitro' ? SNP_ONLY : claims.type === 'sev-snp' ? NITRO_ONLY : null;
  for (const key of Object.keys(c)) {
    const applicable = foreign === null ? !(NITRO_ONLY.has(key) || SNP_ONLY.has(key)) : !foreign.has(key);
    /* Precondition: an unscoped type-specific condition meeting claims of another type is a violation (fail closed). */
    if (applicable) continue;
    out.add(
      'CONDITION_NOT_APPLICABLE',
      CONDITION_FIELD[key] ?? key,
      childPath(path, key),
      `the top-level condition ${key} does not apply to ${JSON.stringify(claims.type)} claims; ` +
        'move it into the section of the type it is meant for',
    );
  }
}

function checkTime(out: Violations, claims: Claims, policy: AttestationPolicy, nowMs: number): void {
  const limits: [number, string][] = [];
  if (policy.maxAgeSeconds !== undefined) limits.push([policy.maxAgeSeconds, '$.maxAgeSeconds']);
  if (claims.type === 'nitro' && policy.nitro?.maxAgeSeconds !== undefined) {
    limits.push([policy.nitro.maxAgeSeconds, '$.nitro.maxAgeSeconds']);
  }
  limits.sort((a, b) => a[0] - b[0]);
  const strictest = limits[0];
  const timestamp: unknown = claims.timestamp;
  const ms = typeof timestamp === 'string' ? Date.parse(timestamp) : Number.NaN;
  if (!Number.isFinite(ms)) {
    /* Precondition: a policy limiting the age of evidence denies evidence without a usable signed timestamp (SNP). */
    if (strictest !== undefined) {
      out.add(
        'EVIDENCE_AGE_UNKNOWN',
        'timestamp',
        strictest[1],
        timestamp === null || timestamp === undefined
          ? `${String(claims.type)} claims carry no signed timestamp, so maxAgeSeconds ${strictest[0]} cannot be ` +
              'checked (bind a fresh nonce in reportData instead, and scope maxAgeSeconds to nitro)'
          : 'the claims timestamp is not a valid ISO-8601 time',
      );
    } else if (timestamp !== null && timestamp !== undefined) {
      out.add('EVIDENCE_AGE_UNKNOWN', 'timestamp', '$', 'the claims timestamp is not a valid ISO-8601 time');
    }
    return;
  }
  const skewMs = policy.clockSkewSeconds * 1000;
  /* Precondition: evidence is not timestamped after `now` plus the tolerated clock skew. */
  if (ms > nowMs + skewMs) {
    out.add(
      'EVIDENCE_FROM_FUTURE',
      'timestamp',
      '$.clockSkewSeconds',
      `evidence timestamp ${String(timestamp)} is ${Math.ceil((ms - nowMs) / 1000)} s after now ` +
        `(${new Date(nowMs).toISOString()}); tolerated skew is ${policy.clockSkewSeconds} s`,
    );
    return;
  }
  /* Precondition: evidence is no older than maxAgeSeconds at `now`. */
  if (strictest !== undefined && nowMs - ms > strictest[0] * 1000) {
    out.add(
      'EVIDENCE_TOO_OLD',
      'timestamp',
      strictest[1],
      `evidence is ${Math.floor((nowMs - ms) / 1000)} s old at ${new Date(nowMs).toISOString()}; ` +
        `maxAgeSeconds is ${strictest[0]}`,
    );
  }
}

const BINDING_SIZES: Readonly<Record<BindingName, HexSize>> = {
  nonce: NONCE,
  userData: USER_DATA,
  publicKey: PUBLIC_KEY,
  reportData: REPORT_DATA,
};
const BINDING_TYPE: Readonly<Record<BindingName, TeeType>> = {
  nonce: 'nitro',
  userData: 'nitro',
  publicKey: 'nitro',
  reportData: 'sev-snp',
};
const EXPECT_KEYS = new Set<string>(Object.keys(BINDING_SIZES));
const OPTION_KEYS = new Set<string>(['now', 'expect']);

function configInvalid(message: string): never {
  throw new ConfigError('CONFIG_INVALID', `attestation policy evaluation: ${message}`);
}

/** Validates `options`; returns the time in ms and the decoded expected bindings. */
function checkOptions(options: EvaluateOptions): { nowMs: number; expect: [BindingName, Buffer][] } {
  if (!isPlainObject(options)) configInvalid('options must be an object { now, expect? }');
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) configInvalid(`unknown option ${JSON.stringify(key)}`);
  }
  const nowMs = options.now instanceof Date ? options.now.getTime() : Number.NaN;
  /* Precondition: the caller supplies the evaluation time (never defaulted inside the library). */
  if (!Number.isFinite(nowMs)) configInvalid('`now` must be a valid Date');
  const expect: [BindingName, Buffer][] = [];
  if (options.expect === undefined) return { nowMs, expect };
  if (!isPlainObject(options.expect)) configInvalid('`expect` must be an object');
  for (const key of Object.keys(options.expect)) {
    /* Precondition: expected bindings name only known fields (a typo must not silently skip a binding check). */
    if (!EXPECT_KEYS.has(key)) {
      configInvalid(`unknown expected binding expect.${key} (known: ${[...EXPECT_KEYS].join(', ')})`);
    }
    const name = key as BindingName;
    const value: unknown = options.expect[name];
    const size = BINDING_SIZES[name];
    let hexValue: string;
    if (value instanceof Uint8Array)
      hexValue = Buffer.from(value.buffer, value.byteOffset, value.length).toString('hex');
    else if (typeof value === 'string') hexValue = value;
    else configInvalid(`expect.${name} must be a hex string or a Uint8Array, got ${typeName(value)}`);
    const checked = checkHex(hexValue, size);
    /* Precondition: expected binding values have their field's size (a wrong-size value can never match). */
    if ('problem' in checked) configInvalid(`expect.${name} ${checked.problem}`);
    expect.push([name, Buffer.from(checked.hex, 'hex')]);
  }
  return { nowMs, expect };
}

/**
 * Applies `policy` to verified `claims` at `options.now` and lists every violation (not only the first), in a
 * fixed order: type, simulated root, root fingerprint, debug, time, top-level conditions, the claims type's
 * section, then the per-request `expect` bindings. Never throws on claims that violate the policy.
 *
 * @throws AttestationError POLICY_INVALID — `policy` was not produced by `parsePolicy`.
 * @throws ConfigError CONFIG_INVALID — `claims` is not an object, `now` is not a valid Date, or `expect` has an
 *   unknown key or a value that is not hex/bytes of its field's size.
 */
export function evaluate(claims: Claims, policy: AttestationPolicy, options: EvaluateOptions): Decision {
  /* Precondition: the policy went through parsePolicy (its invariants — sizes, lowercase hex, defaults — hold). */
  if (typeof policy !== 'object' || policy === null || !PARSED.has(policy)) {
    invalid('$', 'is not a parsed policy; pass the document through parsePolicy first');
  }
  const { nowMs, expect } = checkOptions(options);
  /* Precondition: the claims are an object (claims from a verifier). */
  if (!isObject(claims)) configInvalid('claims must be an object');
  const out = new Violations();

  /* Precondition: the claims' TEE type is allowed. */
  if (!(policy.types as readonly unknown[]).includes(claims.type)) {
    out.add(
      'TYPE_NOT_ALLOWED',
      'type',
      '$.types',
      `TEE type ${JSON.stringify(claims.type)} is not allowed (allowed: ${policy.types.join(', ')})`,
    );
  }
  /* Precondition: evidence anchored at a simulated root is denied unless the policy allows it. */
  if (claims.simulated !== false && !policy.allowSimulated) {
    out.add(
      'SIMULATED_NOT_ALLOWED',
      'simulated',
      '$.allowSimulated',
      'the evidence chains to a simulated root; set allowSimulated to true to accept it (never in production)',
    );
  }
  /* Precondition: the anchoring root is one of the allowed root fingerprints. */
  if (
    policy.rootFingerprints !== undefined &&
    !inHexList(claimBytes(claims.rootFingerprint), policy.rootFingerprints)
  ) {
    out.add(
      'ROOT_NOT_ALLOWED',
      'rootFingerprint',
      '$.rootFingerprints',
      `root fingerprint ${describeClaimHex(claims.rootFingerprint)} is not allowed ` +
        `(allowed: ${describeHexList(policy.rootFingerprints)})`,
    );
  }
  /* Precondition: debug enclaves/guests are denied unless the policy allows them. */
  if (claims.debug !== false && !policy.allowDebug) {
    out.add(
      'DEBUG_NOT_ALLOWED',
      'debug',
      '$.allowDebug',
      `the evidence comes from a debug ${claims.type === 'nitro' ? 'enclave' : 'guest'} ` +
        '(its memory is open to the host); set allowDebug to true to accept it',
    );
  }
  checkTime(out, claims, policy, nowMs);
  checkConditions(out, claims, policy, '$', false);
  if (claims.type === 'nitro' && policy.nitro !== undefined)
    checkConditions(out, claims, policy.nitro, '$.nitro', true);
  if (claims.type === 'sev-snp' && policy['sev-snp'] !== undefined) {
    checkConditions(out, claims, policy['sev-snp'], '$["sev-snp"]', true);
  }
  for (const [name, expected] of expect) {
    const condition = `expect.${name}`;
    /* Precondition: a per-request binding for another TEE type is a violation (fail closed), not ignored. */
    if (claims.type !== BINDING_TYPE[name]) {
      out.add(
        'CONDITION_NOT_APPLICABLE',
        name,
        condition,
        `expected ${name} applies to ${BINDING_TYPE[name]} claims, not ${JSON.stringify(claims.type)}`,
      );
      continue;
    }
    const actual: unknown = (claims as unknown as Readonly<Record<string, unknown>>)[name];
    checkBinding(out, name, actual, expected, condition, 'expected value of this request');
  }

  const [first, ...rest] = out.list;
  if (first === undefined) return { allowed: true, violations: [] };
  return { allowed: false, violations: [first, ...rest] };
}

/**
 * Like `evaluate`, but returns the claims when they satisfy the policy and throws otherwise.
 *
 * @throws AttestationError POLICY_VIOLATION — at least one violation; the message lists every one and
 *   `details.violations` holds them (`PolicyViolation[]`).
 * @throws AttestationError POLICY_INVALID, ConfigError CONFIG_INVALID — as `evaluate`.
 */
export function enforce<C extends Claims>(claims: C, policy: AttestationPolicy, options: EvaluateOptions): C {
  const decision = evaluate(claims, policy, options);
  if (decision.allowed) return claims;
  const { violations } = decision;
  const listed = violations.map((v) => `${v.code} (${v.field}): ${v.message}`).join('; ');
  throw new AttestationError(
    'POLICY_VIOLATION',
    `attestation policy denied the evidence, ${violations.length} violation(s): ${listed}`,
    { details: { violations } },
  );
}

/** Whether `value` is a policy returned by `parsePolicy` (and so accepted by `evaluate`). */
export function isParsedPolicy(value: unknown): value is AttestationPolicy {
  return typeof value === 'object' && value !== null && PARSED.has(value);
}
