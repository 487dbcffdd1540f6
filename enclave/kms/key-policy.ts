/**
 * Key policies (design §4 "Access control"; docs/key-policy.md is the specification).
 *
 * A key policy is a versioned JSON document of Allow/Deny statements over principals, actions and conditions
 * (encryption context, attestation claims, a time window). `parseKeyPolicy(json)` / `parseKeyPolicyText(text)`
 * turn it into a frozen `KeyPolicy`, refusing anything they do not understand (unknown versions, unknown keys at
 * any level, unknown actions, principals or roles, malformed references, out-of-bound sizes) with
 * KEY_POLICY_INVALID and the JSON path of the problem in `details.path`. `evaluateKeyPolicy(policy, request)`
 * decides one request: default deny; a matching Deny wins over every Allow; a condition that cannot be evaluated
 * (no encryption context, no attestation claims, a principal tag that is not set) makes an Allow not match and a
 * Deny match (fail closed, style §4). `lintKeyPolicy` lists risky but valid constructs.
 *
 * Attestation conditions are attestation policies (attestation/policy.ts, docs/attestation-policy.md), parsed
 * with `parsePolicy` and applied with `evaluate` — one policy language for claims, here and in release policies.
 *
 * Left out: grants (enclave/kms/policy-authorizer.ts applies them after the key policy), account-level actions
 * (CreateKey, ListKeys, principals: decided by role, never by a key policy), negated conditions (NotEquals…).
 * No I/O (style §13): the caller supplies `now`, the principal and the verified claims.
 */
import type { Claims } from '../../attestation/claims.js';
import { type AttestationPolicy, evaluate, parsePolicy } from '../../attestation/policy.js';
import { ConfigError, EkmsError } from '../../shared/errors.js';
import { KmsError } from '../../shared/kms-errors.js';

// ---------------------------------------------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------------------------------------------

/** The only key policy document version this library reads. */
export const KEY_POLICY_VERSION = 1;

/** Bounds of a key policy document (style §6); checked before anything else is read. */
export const KEY_POLICY_LIMITS = Object.freeze({
  /** Largest document text, in UTF-8 bytes (`parseKeyPolicyText`). */
  maxDocumentBytes: 16 * 1024,
  /** Most statements in one document. */
  maxStatements: 64,
  /** Most entries in one list or map (principals, actions, equals, like, requiredKeys). */
  maxListEntries: 64,
  /** Longest string anywhere in the document (sid, principal, action, context key or value, time), UTF-8 bytes. */
  maxStringBytes: 256,
} as const);

/** Actions of `use:*`: cryptographic use of the key (plus DescribeKey, which both groups need). */
export const KEY_POLICY_USE_ACTIONS = Object.freeze([
  'Encrypt',
  'Decrypt',
  'ReEncryptFrom',
  'ReEncryptTo',
  'GenerateDataKey',
  'GenerateDataKeyWithoutPlaintext',
  'DescribeKey',
] as const);

/** Actions of `admin:*`: managing the key, its aliases, policies and grants (plus DescribeKey). */
export const KEY_POLICY_ADMIN_ACTIONS = Object.freeze([
  'DescribeKey',
  'EnableKey',
  'DisableKey',
  'RotateKey',
  'EnableKeyRotation',
  'DisableKeyRotation',
  'ScheduleKeyDeletion',
  'CancelKeyDeletion',
  'CreateAlias',
  'UpdateAlias',
  'DeleteAlias',
  'ListAliases',
  'PutKeyPolicy',
  'GetKeyPolicy',
  'PutKeyReleasePolicy',
  'CreateGrant',
  'ListGrants',
  'RevokeGrant',
] as const);

/**
 * Every action a key policy may name: the KmsAction names that act on one key (the union of the two groups).
 * Account-level actions (CreateKey, ListKeys, CreatePrincipal, ListPrincipals) are refused in a key policy.
 */
export const KEY_POLICY_ACTIONS = Object.freeze([
  ...KEY_POLICY_USE_ACTIONS,
  ...KEY_POLICY_ADMIN_ACTIONS.filter((a) => !(KEY_POLICY_USE_ACTIONS as readonly string[]).includes(a)),
] as const);

export type KeyPolicyUseAction = (typeof KEY_POLICY_USE_ACTIONS)[number];
export type KeyPolicyAdminAction = (typeof KEY_POLICY_ADMIN_ACTIONS)[number];
export type KeyPolicyAction = KeyPolicyUseAction | KeyPolicyAdminAction;

/** Action entries that stand for several actions. `*` is every action of KEY_POLICY_ACTIONS. */
export const KEY_POLICY_ACTION_GROUPS: Readonly<
  Record<'*' | 'use:*' | 'admin:*', readonly KeyPolicyAction[]>
> = Object.freeze({
  '*': KEY_POLICY_ACTIONS,
  'use:*': KEY_POLICY_USE_ACTIONS,
  'admin:*': KEY_POLICY_ADMIN_ACTIONS,
});

/** Roles a principal entry `role:NAME` may name (enclave/principals.ts PRINCIPAL_ROLES). */
export const KEY_POLICY_ROLES = Object.freeze(['admin', 'user'] as const);

/** Prefix of the names of principals established by attestation alone (enclave/authenticate.ts). */
export const WORKLOAD_PRINCIPAL_PREFIX = 'workload:';

// ---------------------------------------------------------------------------------------------------------------
// Document types
// ---------------------------------------------------------------------------------------------------------------

/** Conditions on the encryption context of the request. */
export interface KeyPolicyContextCondition {
  /** key → value the context must hold exactly (values may reference `${principal.tag.NAME}`). */
  readonly equals?: Readonly<Record<string, string>>;
  /** key → glob (`*` any run, `?` one character; anchored) the context value must match. */
  readonly like?: Readonly<Record<string, string>>;
  /** Keys the context must hold (any value). */
  readonly requiredKeys?: readonly string[];
}

/** An inclusive time window, as written (ISO-8601 UTC). */
export interface KeyPolicyTimeCondition {
  readonly notBefore?: string;
  readonly notAfter?: string;
}

export interface KeyPolicyConditions {
  readonly context?: KeyPolicyContextCondition;
  /** A parsed attestation policy (attestation/policy.ts) the caller's verified claims must satisfy. */
  readonly attestation?: AttestationPolicy;
  readonly time?: KeyPolicyTimeCondition;
}

export type KeyPolicyEffect = 'Allow' | 'Deny';

export interface KeyPolicyStatement {
  readonly sid?: string;
  readonly effect: KeyPolicyEffect;
  /** Names, `workload:*`, `role:admin`, `role:user` or `*`, as written (duplicates removed). */
  readonly principals: readonly string[];
  /** Action names, `*`, `use:*` or `admin:*`, as written (duplicates removed). */
  readonly actions: readonly string[];
  readonly conditions?: KeyPolicyConditions;
}

/** A parsed, validated, frozen key policy. Only the parse functions make these; `evaluateKeyPolicy` refuses others. */
export interface KeyPolicy {
  readonly version: typeof KEY_POLICY_VERSION;
  readonly statements: readonly KeyPolicyStatement[];
}

/** How a statement is named in decisions and findings: its sid, or its index in `statements`. */
export type StatementRef = string | number;

/** The request a key policy decides. */
export interface KeyPolicyRequest {
  readonly principal: {
    readonly name: string;
    readonly roles: readonly string[];
    readonly tags: Readonly<Record<string, string>>;
  };
  readonly action: string;
  readonly encryptionContext?: Readonly<Record<string, string>>;
  readonly claims?: Claims | undefined;
  readonly now: Date;
}

export type KeyPolicyDecision =
  | { readonly allowed: true; readonly statement: StatementRef }
  | {
      readonly allowed: false;
      readonly reason: 'explicit-deny' | 'no-allow';
      /** The Deny that decided (explicit-deny only). */
      readonly statement?: StatementRef;
      /**
       * no-allow only: for each Allow whose principals and actions matched, the JSON path of each condition that
       * did not hold (`$.statements[1].conditions.context.equals.tenant`), with a reason after `: `.
       */
      readonly unmet?: readonly string[];
    };

/** Stable codes of lint findings (docs/key-policy.md §6). */
export const KEY_POLICY_LINT_CODES = Object.freeze([
  'WILDCARD_PRINCIPAL_USE',
  'ADMIN_CAN_USE',
  'USER_CAN_ADMINISTER',
  'RELEASE_WITHOUT_ATTESTATION',
  'ATTESTATION_SIMULATED_ALLOWED',
  'ATTESTATION_DEBUG_ALLOWED',
  'RELEASE_POLICY_INVALID',
  'PROTECTED_BY_ROLE',
  'PROTECTED_UNREGISTERED_PRINCIPAL',
] as const);
export type KeyPolicyLintCode = (typeof KEY_POLICY_LINT_CODES)[number];

export interface KeyPolicyFinding {
  readonly code: KeyPolicyLintCode;
  readonly message: string;
  /** The statement concerned; absent for findings about the release policy. */
  readonly statement?: StatementRef;
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing helpers
// ---------------------------------------------------------------------------------------------------------------

type JsonObject = Readonly<Record<string, unknown>>;

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const LONE_SURROGATE = /\p{Cs}/u;
/** Registered principal names (enclave/principals.ts); tag names follow the same rule. */
const PRINCIPAL_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
/** Workload principal names: `workload:` and lowercase hex of the measurement (enclave/authenticate.ts). */
const WORKLOAD_NAME = /^workload:[0-9a-f]{1,96}$/;
const SID = /^[A-Za-z0-9][A-Za-z0-9 ._:/-]*$/;
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;
const REFERENCE = /\$\{([^}]*)\}/g;
const TAG_REFERENCE = /^principal\.tag\.([A-Za-z0-9][A-Za-z0-9._@-]{0,63})$/;

const TOP_KEYS = new Set(['version', 'statements']);
const STATEMENT_KEYS = new Set(['sid', 'effect', 'principals', 'actions', 'conditions']);
const CONDITION_KEYS = new Set(['context', 'attestation', 'time']);
const CONTEXT_KEYS = new Set(['equals', 'like', 'requiredKeys']);
const TIME_KEYS = new Set(['notBefore', 'notAfter']);

const encoder = new TextEncoder();

function childPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  const shown = key.length > 64 ? `${key.slice(0, 64)}…` : key;
  return IDENTIFIER.test(shown) ? `${path}.${shown}` : `${path}[${JSON.stringify(shown)}]`;
}

function invalid(path: string, message: string, cause?: unknown): never {
  throw new KmsError('KEY_POLICY_INVALID', `key policy ${path}: ${message}`, {
    details: { path },
    ...(cause === undefined ? {} : { cause }),
  });
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

function isPlainObject(value: unknown): value is JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function object(value: unknown, path: string, allowed: ReadonlySet<string>): JsonObject {
  /* Precondition: every level of the document is a plain JSON object where an object is expected. */
  if (!isPlainObject(value)) {
    const hint = typeof value === 'string' && path === '$' ? ' (use parseKeyPolicyText for JSON text)' : '';
    invalid(path, `must be an object, got ${typeName(value)}${hint}`);
  }
  for (const key of Object.keys(value)) {
    /* Precondition: no keys this version does not define, at any level (fail closed on typos and new features). */
    if (!allowed.has(key)) invalid(childPath(path, key), `unknown key (known: ${[...allowed].join(', ')})`);
  }
  return value;
}

/** Own property only: a polluted Object.prototype must not supply policy values. */
function own(obj: JsonObject, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

function nonEmpty(obj: JsonObject, path: string, what: string): void {
  /* Precondition: condition objects are not empty (omit the key instead; an empty object reads as a forgotten condition). */
  if (Object.keys(obj).length === 0)
    invalid(path, `must not be empty (omit ${what} to leave it unconstrained)`);
}

function boundedString(value: unknown, path: string, what = 'a string'): string {
  /* Precondition: strings are strings of at most maxStringBytes UTF-8 bytes, well-formed Unicode. */
  if (typeof value !== 'string') invalid(path, `must be ${what}, got ${typeName(value)}`);
  if (
    value.length > KEY_POLICY_LIMITS.maxStringBytes ||
    encoder.encode(value).length > KEY_POLICY_LIMITS.maxStringBytes
  ) {
    invalid(path, `must be at most ${KEY_POLICY_LIMITS.maxStringBytes} UTF-8 bytes`);
  }
  if (LONE_SURROGATE.test(value)) invalid(path, 'contains a lone surrogate (not UTF-8)');
  return value;
}

function boundedList(value: unknown, path: string): readonly unknown[] {
  /* Precondition: lists are non-empty arrays of at most maxListEntries entries (an empty list would match nothing). */
  if (!Array.isArray(value)) invalid(path, `must be an array, got ${typeName(value)}`);
  if (value.length === 0) invalid(path, 'must not be empty');
  if (value.length > KEY_POLICY_LIMITS.maxListEntries) {
    invalid(path, `must have at most ${KEY_POLICY_LIMITS.maxListEntries} entries, got ${value.length}`);
  }
  return value;
}

function stringList(value: unknown, path: string, item: (s: string, p: string) => void): readonly string[] {
  const out: string[] = [];
  boundedList(value, path).forEach((v, i) => {
    const p = childPath(path, i);
    const s = boundedString(v, p);
    item(s, p);
    if (!out.includes(s)) out.push(s);
  });
  return Object.freeze(out);
}

function contextKey(key: string, path: string): void {
  /* Precondition: context keys are non-empty (the encryption context has no empty keys). */
  if (key.length === 0) invalid(path, 'a context key must not be empty');
}

/** A value with `${principal.tag.NAME}` references, split into literal text and tag names. */
type Template = readonly (string | { readonly tag: string })[];

function template(value: string, path: string): Template {
  const parts: (string | { tag: string })[] = [];
  let last = 0;
  for (const m of value.matchAll(REFERENCE)) {
    const tag = TAG_REFERENCE.exec(m[1] ?? '');
    /* Precondition: every `${…}` is a well-formed principal tag reference (a typo must not become literal text). */
    if (tag === null) {
      invalid(
        path,
        `unknown reference ${JSON.stringify(m[0].slice(0, 80))} (only \${principal.tag.NAME} is defined)`,
      );
    }
    if (m.index > last) parts.push(value.slice(last, m.index));
    parts.push({ tag: tag[1]! });
    last = m.index + m[0].length;
  }
  const rest = value.slice(last);
  /* Precondition: no unterminated `${` (it would otherwise be compared as literal text). */
  if (rest.includes('${')) {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the message quotes the reference syntax.
    invalid(path, 'unterminated ${ reference (only ${principal.tag.NAME} is defined)');
  }
  if (rest.length > 0) parts.push(rest);
  return parts;
}

function contextMap(value: unknown, path: string): Readonly<Record<string, string>> {
  if (!isPlainObject(value)) invalid(path, `must be an object of strings, got ${typeName(value)}`);
  const keys = Object.keys(value);
  if (keys.length === 0) invalid(path, 'must not be empty');
  if (keys.length > KEY_POLICY_LIMITS.maxListEntries) {
    invalid(path, `must have at most ${KEY_POLICY_LIMITS.maxListEntries} entries, got ${keys.length}`);
  }
  const out: Record<string, string> = Object.create(null);
  for (const key of keys) {
    const p = childPath(path, key);
    boundedString(key, p, 'a string');
    contextKey(key, p);
    const v = boundedString(value[key], p);
    template(v, p);
    out[key] = v;
  }
  return Object.freeze(out);
}

function isoTime(value: unknown, path: string): { text: string; ms: number } {
  const s = boundedString(value, path, 'an ISO-8601 UTC time string');
  const ms = ISO_UTC.test(s) ? Date.parse(s) : Number.NaN;
  /* Precondition: times are real ISO-8601 UTC instants (YYYY-MM-DDTHH:MM:SS[.sss]Z); no local times, no Feb 30. */
  if (!Number.isFinite(ms) || new Date(ms).toISOString().slice(0, 19) !== s.slice(0, 19)) {
    invalid(
      path,
      `must be an ISO-8601 UTC time like 2025-01-31T00:00:00Z, got ${JSON.stringify(s.slice(0, 64))}`,
    );
  }
  return { text: s, ms };
}

// ---------------------------------------------------------------------------------------------------------------
// Compiled form (kept beside the frozen document; evaluation reads only this)
// ---------------------------------------------------------------------------------------------------------------

type GlobToken =
  | { readonly kind: 'star' }
  | { readonly kind: 'one' }
  | { readonly kind: 'lit'; readonly cp: string };

interface CompiledStatement {
  readonly ref: StatementRef;
  readonly path: string;
  readonly effect: KeyPolicyEffect;
  readonly principals: readonly string[];
  /** Expanded action names; `anyAction` records a literal `*` (for Deny: any action, known or not). */
  readonly actions: ReadonlySet<string>;
  readonly anyAction: boolean;
  readonly equals: readonly (readonly [string, Template])[];
  readonly like: readonly (readonly [string, Template])[];
  readonly requiredKeys: readonly string[];
  readonly hasContext: boolean;
  readonly attestation: AttestationPolicy | undefined;
  readonly notBefore: number | undefined;
  readonly notAfter: number | undefined;
}

/** Parsed policies and their compiled statements; evaluateKeyPolicy accepts no other object. */
const COMPILED = new WeakMap<KeyPolicy, readonly CompiledStatement[]>();

function principalEntry(s: string, path: string): void {
  if (s === '*' || s === `${WORKLOAD_PRINCIPAL_PREFIX}*`) return;
  if (s.startsWith('role:')) {
    /* Precondition: role entries name a known role. */
    if (!(KEY_POLICY_ROLES as readonly string[]).includes(s.slice(5))) {
      invalid(path, `unknown role ${JSON.stringify(s.slice(5, 69))} (known: ${KEY_POLICY_ROLES.join(', ')})`);
    }
    return;
  }
  /* Precondition: other entries are exact principal names (no other wildcards; a glob here is refused, not literal). */
  if (!PRINCIPAL_NAME.test(s) && !WORKLOAD_NAME.test(s)) {
    invalid(
      path,
      `must be a principal name (1..64 of [A-Za-z0-9._@-]), workload:<hex>, workload:*, role:admin, role:user or *, got ${JSON.stringify(s.slice(0, 64))}`,
    );
  }
}

function actionEntry(s: string, path: string): void {
  /* Precondition: actions are known key actions or groups (an account-level or misspelt action is refused). */
  if (s in KEY_POLICY_ACTION_GROUPS || (KEY_POLICY_ACTIONS as readonly string[]).includes(s)) return;
  invalid(
    path,
    `unknown action ${JSON.stringify(s.slice(0, 64))} (give a key action such as Decrypt, or *, use:*, admin:*; account-level actions are not decided by key policies)`,
  );
}

function globTokens(t: Template, tags: Readonly<Record<string, string>>): GlobToken[] | undefined {
  const out: GlobToken[] = [];
  for (const part of t) {
    if (typeof part === 'string') {
      for (const cp of part)
        out.push(cp === '*' ? { kind: 'star' } : cp === '?' ? { kind: 'one' } : { kind: 'lit', cp });
    } else {
      // A tag value is literal text: a tag holding `*` must not widen the pattern.
      if (!Object.hasOwn(tags, part.tag) || typeof tags[part.tag] !== 'string') return undefined;
      for (const cp of tags[part.tag]!) out.push({ kind: 'lit', cp });
    }
  }
  return out;
}

function resolve(t: Template, tags: Readonly<Record<string, string>>): string | undefined {
  let out = '';
  for (const part of t) {
    if (typeof part === 'string') out += part;
    else if (Object.hasOwn(tags, part.tag) && typeof tags[part.tag] === 'string') out += tags[part.tag];
    else return undefined;
  }
  return out;
}

/** Anchored glob match over code points; linear backtracking to the last `*` (no regex, no blow-up). */
function globMatch(tokens: readonly GlobToken[], value: string): boolean {
  const s = Array.from(value);
  let ti = 0;
  let si = 0;
  let starTi = -1;
  let starSi = 0;
  while (si < s.length) {
    const t = tokens[ti];
    if (t !== undefined && t.kind !== 'star' && (t.kind === 'one' || t.cp === s[si])) {
      ti++;
      si++;
    } else if (t !== undefined && t.kind === 'star') {
      starTi = ti++;
      starSi = si;
    } else if (starTi >= 0) {
      ti = starTi + 1;
      si = ++starSi;
    } else {
      return false;
    }
  }
  while (tokens[ti]?.kind === 'star') ti++;
  return ti === tokens.length;
}

// ---------------------------------------------------------------------------------------------------------------
// parseKeyPolicy / parseKeyPolicyText
// ---------------------------------------------------------------------------------------------------------------

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function parseConditions(
  value: unknown,
  path: string,
  into: Mutable<Omit<CompiledStatement, 'ref' | 'path' | 'effect' | 'principals' | 'actions' | 'anyAction'>>,
): KeyPolicyConditions {
  const obj = object(value, path, CONDITION_KEYS);
  nonEmpty(obj, path, 'conditions');
  const out: Mutable<KeyPolicyConditions> = {};
  if (Object.hasOwn(obj, 'context')) {
    const p = childPath(path, 'context');
    const c = object(own(obj, 'context'), p, CONTEXT_KEYS);
    nonEmpty(c, p, 'context');
    const ctx: Mutable<KeyPolicyContextCondition> = {};
    if (Object.hasOwn(c, 'equals')) {
      const q = childPath(p, 'equals');
      ctx.equals = contextMap(own(c, 'equals'), q);
      into.equals = Object.entries(ctx.equals).map(([k, v]) => [k, template(v, childPath(q, k))] as const);
    }
    if (Object.hasOwn(c, 'like')) {
      const q = childPath(p, 'like');
      ctx.like = contextMap(own(c, 'like'), q);
      into.like = Object.entries(ctx.like).map(([k, v]) => [k, template(v, childPath(q, k))] as const);
    }
    if (Object.hasOwn(c, 'requiredKeys')) {
      ctx.requiredKeys = stringList(own(c, 'requiredKeys'), childPath(p, 'requiredKeys'), contextKey);
      into.requiredKeys = ctx.requiredKeys;
    }
    out.context = Object.freeze(ctx);
    into.hasContext = true;
  }
  if (Object.hasOwn(obj, 'attestation')) {
    const p = childPath(path, 'attestation');
    try {
      out.attestation = parsePolicy(own(obj, 'attestation'));
    } catch (err) {
      /* Precondition: an attestation condition is a valid attestation policy (version 1, attestation/policy.ts). */
      if (err instanceof EkmsError && err.code === 'POLICY_INVALID') {
        const inner = typeof err.details?.['path'] === 'string' ? err.details['path'] : '$';
        const innerMessage = err.message.replace(/^attestation policy \S+: /, '');
        invalid(`${p}${inner.slice(1)}`, `attestation condition: ${innerMessage}`, err);
      }
      throw err;
    }
    into.attestation = out.attestation;
  }
  if (Object.hasOwn(obj, 'time')) {
    const p = childPath(path, 'time');
    const t = object(own(obj, 'time'), p, TIME_KEYS);
    nonEmpty(t, p, 'time');
    const time: Mutable<KeyPolicyTimeCondition> = {};
    if (Object.hasOwn(t, 'notBefore')) {
      const nb = isoTime(own(t, 'notBefore'), childPath(p, 'notBefore'));
      time.notBefore = nb.text;
      into.notBefore = nb.ms;
    }
    if (Object.hasOwn(t, 'notAfter')) {
      const na = isoTime(own(t, 'notAfter'), childPath(p, 'notAfter'));
      time.notAfter = na.text;
      into.notAfter = na.ms;
    }
    /* Precondition: the window is not empty (notBefore ≤ notAfter). */
    if (into.notBefore !== undefined && into.notAfter !== undefined && into.notBefore > into.notAfter) {
      invalid(childPath(p, 'notAfter'), 'must not be before notBefore');
    }
    out.time = Object.freeze(time);
  }
  return Object.freeze(out);
}

function parseStatement(
  value: unknown,
  path: string,
  index: number,
  sids: Set<string>,
): [KeyPolicyStatement, CompiledStatement] {
  const obj = object(value, path, STATEMENT_KEYS);
  const out: Mutable<KeyPolicyStatement> = { effect: 'Allow', principals: [], actions: [] };
  let ref: StatementRef = index;
  if (Object.hasOwn(obj, 'sid')) {
    const p = childPath(path, 'sid');
    const sid = boundedString(own(obj, 'sid'), p);
    /* Precondition: a sid is printable ([A-Za-z0-9 ._:/-], starting alphanumeric): it appears in errors and audit. */
    if (!SID.test(sid)) invalid(p, 'must start with a letter or digit and hold only [A-Za-z0-9 ._:/-]');
    /* Precondition: sids are unique (a decision names its statement by sid). */
    if (sids.has(sid)) invalid(p, `duplicate sid ${JSON.stringify(sid)}`);
    sids.add(sid);
    out.sid = sid;
    ref = sid;
  }
  /* Precondition: every statement states its effect, Allow or Deny (no default effect). */
  const effect = own(obj, 'effect');
  if (effect !== 'Allow' && effect !== 'Deny') {
    invalid(
      childPath(path, 'effect'),
      effect === undefined
        ? 'is required ("Allow" or "Deny")'
        : `must be "Allow" or "Deny", got ${typeName(effect)}`,
    );
  }
  out.effect = effect;
  /* Precondition: every statement names its principals and actions. */
  if (!Object.hasOwn(obj, 'principals')) invalid(childPath(path, 'principals'), 'is required');
  out.principals = stringList(own(obj, 'principals'), childPath(path, 'principals'), principalEntry);
  if (!Object.hasOwn(obj, 'actions')) invalid(childPath(path, 'actions'), 'is required');
  out.actions = stringList(own(obj, 'actions'), childPath(path, 'actions'), actionEntry);

  const actions = new Set<string>();
  for (const a of out.actions) {
    const group = Object.hasOwn(KEY_POLICY_ACTION_GROUPS, a)
      ? KEY_POLICY_ACTION_GROUPS[a as keyof typeof KEY_POLICY_ACTION_GROUPS]
      : [a];
    for (const x of group) actions.add(x);
  }
  const compiled: Mutable<CompiledStatement> = {
    ref,
    path,
    effect,
    principals: out.principals,
    actions,
    anyAction: out.actions.includes('*'),
    equals: [],
    like: [],
    requiredKeys: [],
    hasContext: false,
    attestation: undefined,
    notBefore: undefined,
    notAfter: undefined,
  };
  if (Object.hasOwn(obj, 'conditions')) {
    out.conditions = parseConditions(own(obj, 'conditions'), childPath(path, 'conditions'), compiled);
  }
  return [Object.freeze(out), Object.freeze(compiled)];
}

/**
 * Validates a key policy document (a parsed JSON value) and returns it frozen.
 *
 * @throws KmsError KEY_POLICY_INVALID — not an object, missing or unsupported version, unknown key anywhere,
 *   wrong type, empty or oversized list, string over 256 bytes, unknown action/role/principal form, malformed
 *   `${…}` reference, bad time or empty window, duplicate sid, or an attestation condition that attestation
 *   `parsePolicy` refuses. `details.path` is the JSON path of the problem (`$.statements[0].actions[1]`).
 */
export function parseKeyPolicy(json: unknown): KeyPolicy {
  if (!isPlainObject(json)) object(json, '$', TOP_KEYS);
  const root = json as JsonObject;
  /* Precondition: the document names its version, and it is the one this library reads. */
  if (!Object.hasOwn(root, 'version'))
    invalid('$.version', `is required (this library reads version ${KEY_POLICY_VERSION})`);
  const version = root['version'];
  if (version !== KEY_POLICY_VERSION) {
    const got = typeof version === 'number' ? String(version) : typeName(version);
    invalid(
      '$.version',
      `unsupported key policy version ${got} (this library reads version ${KEY_POLICY_VERSION})`,
    );
  }
  object(root, '$', TOP_KEYS);
  if (!Object.hasOwn(root, 'statements')) invalid('$.statements', 'is required');
  const raw = own(root, 'statements');
  /* Precondition: at most maxStatements statements, and at least one (an empty policy would lock the key). */
  if (!Array.isArray(raw)) invalid('$.statements', `must be an array, got ${typeName(raw)}`);
  if (raw.length === 0)
    invalid(
      '$.statements',
      'must not be empty (a key policy without statements denies everything, even its admins)',
    );
  if (raw.length > KEY_POLICY_LIMITS.maxStatements) {
    invalid(
      '$.statements',
      `must have at most ${KEY_POLICY_LIMITS.maxStatements} statements, got ${raw.length}`,
    );
  }
  const sids = new Set<string>();
  const statements: KeyPolicyStatement[] = [];
  const compiled: CompiledStatement[] = [];
  raw.forEach((s, i) => {
    const [statement, c] = parseStatement(s, childPath('$.statements', i), i, sids);
    statements.push(statement);
    compiled.push(c);
  });
  const policy: KeyPolicy = Object.freeze({
    version: KEY_POLICY_VERSION,
    statements: Object.freeze(statements),
  });
  COMPILED.set(policy, Object.freeze(compiled));
  return policy;
}

/**
 * Checks the size of a key policy's JSON text, parses it and validates it (`parseKeyPolicy`). Object keys must be
 * unique at every level (JSON.parse would keep the last one silently).
 *
 * @throws KmsError KEY_POLICY_INVALID — not a string, over 16 KiB of UTF-8, not JSON, a duplicate key, or any
 *   error of `parseKeyPolicy`; `details.path` locates it (`$` for text-level problems).
 */
export function parseKeyPolicyText(text: string): KeyPolicy {
  /* Precondition: the text is a string of at most maxDocumentBytes UTF-8 bytes, checked before it is decoded. */
  if (typeof text !== 'string') invalid('$', `the document must be JSON text, got ${typeName(text)}`);
  const max = KEY_POLICY_LIMITS.maxDocumentBytes;
  if (text.length > max || encoder.encode(text).length > max) {
    invalid('$', `the document exceeds ${max} bytes`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    /* Precondition: the text is JSON. */
    const hint =
      /^[A-Za-z0-9+/=\s]+$/.test(text) && text.trim().length > 0 ? ' (this looks base64-encoded?)' : '';
    invalid('$', `the document is not JSON${hint}`, err);
  }
  rejectDuplicateKeys(text);
  return parseKeyPolicy(json);
}

/** Scans JSON text already accepted by JSON.parse and refuses any object that repeats a key. */
function rejectDuplicateKeys(text: string): void {
  type Frame = { path: string; keys: Set<string> | null; index: number; key: string | null };
  const stack: Frame[] = [];
  const here = (): string => {
    const top = stack[stack.length - 1];
    if (top === undefined) return '$';
    return top.keys === null ? childPath(top.path, top.index) : childPath(top.path, top.key ?? '');
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const str = JSON.parse(text.slice(i, j + 1)) as string;
      let k = j + 1;
      while (k < text.length && /\s/.test(text[k]!)) k++;
      const top = stack[stack.length - 1];
      if (text[k] === ':' && top !== undefined && top.keys !== null) {
        /* Precondition: no object repeats a key (the last one must never silently win). */
        if (top.keys.has(str)) invalid(childPath(top.path, str), 'duplicate key');
        top.keys.add(str);
        top.key = str;
      }
      i = j;
    } else if (ch === '{' || ch === '[') {
      stack.push({ path: here(), keys: ch === '{' ? new Set() : null, index: 0, key: null });
    } else if (ch === '}' || ch === ']') {
      stack.pop();
    } else if (ch === ',') {
      const top = stack[stack.length - 1];
      if (top !== undefined && top.keys === null) top.index++;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// evaluateKeyPolicy
// ---------------------------------------------------------------------------------------------------------------

function configInvalid(message: string): never {
  throw new ConfigError('CONFIG_INVALID', `key policy evaluation: ${message}`);
}

function checkRequest(req: KeyPolicyRequest): void {
  /* Precondition: the request is well-formed; `now` is a valid Date supplied by the caller (never defaulted). */
  if (!isPlainObject(req)) configInvalid('the request must be an object');
  const p: unknown = req.principal;
  if (
    !isPlainObject(p) ||
    typeof p['name'] !== 'string' ||
    !Array.isArray(p['roles']) ||
    !isPlainObject(p['tags'])
  ) {
    configInvalid('principal must be { name: string, roles: string[], tags: Record<string, string> }');
  }
  if (typeof req.action !== 'string') configInvalid('action must be a string');
  if (!(req.now instanceof Date) || !Number.isFinite(req.now.getTime()))
    configInvalid('`now` must be a valid Date');
  if (
    req.encryptionContext !== undefined &&
    (typeof req.encryptionContext !== 'object' || req.encryptionContext === null)
  ) {
    configInvalid('encryptionContext must be an object when given');
  }
}

function principalMatches(entries: readonly string[], p: KeyPolicyRequest['principal']): boolean {
  return entries.some((e) => {
    if (e === '*') return true;
    if (e === `${WORKLOAD_PRINCIPAL_PREFIX}*`) return p.name.startsWith(WORKLOAD_PRINCIPAL_PREFIX);
    if (e.startsWith('role:')) return p.roles.includes(e.slice(5));
    return e === p.name;
  });
}

function actionMatches(s: CompiledStatement, action: string): boolean {
  // A literal `*` in a Deny covers actions this version does not know; in an Allow only the known ones.
  if (s.effect === 'Deny' && s.anyAction) return true;
  return s.actions.has(action);
}

/** Result of a statement's conditions: all hold, some could not be evaluated, or some are false. */
interface ConditionResult {
  readonly unevaluable: string[];
  readonly unmet: string[];
}

function checkConditions(s: CompiledStatement, req: KeyPolicyRequest): ConditionResult {
  const r: ConditionResult = { unevaluable: [], unmet: [] };
  const cond = `${s.path}.conditions`;
  const tags = req.principal.tags;
  const ctx = req.encryptionContext;
  if (s.hasContext) {
    const cp = `${cond}.context`;
    if (ctx === undefined) {
      /* Precondition: a context condition needs an encryption context in the request (absent: cannot be evaluated). */
      r.unevaluable.push(`${cp}: the request carries no encryption context`);
    } else {
      const get = (k: string): string | undefined =>
        Object.hasOwn(ctx, k) && typeof ctx[k] === 'string' ? ctx[k] : undefined;
      for (const [k, t] of s.equals) {
        const p = childPath(`${cp}.equals`, k);
        const want = resolve(t, tags);
        /* Precondition: a referenced principal tag is set (a missing tag never matches). */
        if (want === undefined) r.unevaluable.push(`${p}: the principal lacks a referenced tag`);
        /* Precondition: context.equals — the context holds exactly this value. */ else if (get(k) !== want)
          r.unmet.push(`${p}: context value differs`);
      }
      for (const [k, t] of s.like) {
        const p = childPath(`${cp}.like`, k);
        const tokens = globTokens(t, tags);
        const have = get(k);
        if (tokens === undefined) r.unevaluable.push(`${p}: the principal lacks a referenced tag`);
        /* Precondition: context.like — the context value matches the anchored glob. */ else if (
          have === undefined ||
          !globMatch(tokens, have)
        )
          r.unmet.push(`${p}: context value does not match`);
      }
      for (const k of s.requiredKeys) {
        /* Precondition: context.requiredKeys — the context holds the key. */
        if (get(k) === undefined) r.unmet.push(`${cp}.requiredKeys: context lacks ${JSON.stringify(k)}`);
      }
    }
  }
  if (s.attestation !== undefined) {
    const ap = `${cond}.attestation`;
    if (req.claims === undefined) {
      /* Precondition: an attestation condition needs verified claims (absent: cannot be evaluated). */
      r.unevaluable.push(`${ap}: the caller presented no attestation claims`);
    } else {
      try {
        const d = evaluate(req.claims, s.attestation, { now: req.now });
        /* Precondition: the caller's claims satisfy the statement's attestation policy. */
        if (!d.allowed) r.unmet.push(`${ap}: ${d.violations.map((v) => v.code).join(', ')}`);
      } catch (err) {
        const code = err instanceof EkmsError ? err.code : 'INTERNAL_ERROR';
        r.unevaluable.push(`${ap}: the claims could not be evaluated (${code})`);
      }
    }
  }
  const now = req.now.getTime();
  /* Precondition: time — now lies in the inclusive window [notBefore, notAfter]. */
  if (s.notBefore !== undefined && now < s.notBefore) r.unmet.push(`${cond}.time.notBefore: not yet valid`);
  if (s.notAfter !== undefined && now > s.notAfter) r.unmet.push(`${cond}.time.notAfter: expired`);
  return r;
}

/**
 * Decides one request against a parsed key policy. Deny statements are considered first (in document order):
 * the first whose principals, actions and conditions match denies (`explicit-deny`). Then the first Allow that
 * matches allows. Otherwise `no-allow` (default deny), listing the conditions that failed in Allow statements
 * whose principals and actions matched. A condition that cannot be evaluated makes a Deny match and an Allow fail.
 *
 * @throws KmsError KEY_POLICY_INVALID — `policy` was not produced by parseKeyPolicy / parseKeyPolicyText.
 * @throws ConfigError CONFIG_INVALID — the request is malformed or `now` is not a valid Date.
 */
export function evaluateKeyPolicy(policy: KeyPolicy, req: KeyPolicyRequest): KeyPolicyDecision {
  /* Precondition: the policy went through parseKeyPolicy (its invariants hold only for parsed policies). */
  const compiled = typeof policy === 'object' && policy !== null ? COMPILED.get(policy) : undefined;
  if (compiled === undefined)
    invalid('$', 'is not a parsed key policy; pass the document through parseKeyPolicy first');
  checkRequest(req);
  const applicable = compiled.filter(
    (s) => principalMatches(s.principals, req.principal) && actionMatches(s, req.action),
  );
  for (const s of applicable) {
    if (s.effect !== 'Deny') continue;
    const r = checkConditions(s, req);
    /* Precondition: an explicit Deny that matches (or cannot be evaluated) wins over every Allow. */
    if (r.unmet.length === 0) return { allowed: false, reason: 'explicit-deny', statement: s.ref };
  }
  const unmet: string[] = [];
  for (const s of applicable) {
    if (s.effect !== 'Allow') continue;
    const r = checkConditions(s, req);
    if (r.unmet.length === 0 && r.unevaluable.length === 0) return { allowed: true, statement: s.ref };
    unmet.push(...r.unevaluable, ...r.unmet);
  }
  /* Precondition: default deny — without a matching Allow, nothing is allowed. */
  return unmet.length === 0
    ? { allowed: false, reason: 'no-allow' }
    : { allowed: false, reason: 'no-allow', unmet };
}

/** Whether `value` was produced by parseKeyPolicy (and is accepted by evaluateKeyPolicy). */
export function isParsedKeyPolicy(value: unknown): value is KeyPolicy {
  return typeof value === 'object' && value !== null && COMPILED.has(value as KeyPolicy);
}

// ---------------------------------------------------------------------------------------------------------------
// Default policy
// ---------------------------------------------------------------------------------------------------------------

/**
 * The policy of a key that has none (deeply frozen document): separation of duties — role:admin administers
 * (admin:*), role:user uses (use:*).
 */
export const DEFAULT_KEY_POLICY_DOCUMENT = Object.freeze({
  version: KEY_POLICY_VERSION,
  statements: Object.freeze([
    Object.freeze({
      sid: 'AdminsAdminister',
      effect: 'Allow',
      principals: Object.freeze(['role:admin'] as const),
      actions: Object.freeze(['admin:*'] as const),
    } as const),
    Object.freeze({
      sid: 'UsersUse',
      effect: 'Allow',
      principals: Object.freeze(['role:user'] as const),
      actions: Object.freeze(['use:*'] as const),
    } as const),
  ] as const),
} as const);

/** DEFAULT_KEY_POLICY_DOCUMENT as JSON text (what GetKeyPolicy can show for a key without a policy). */
export const DEFAULT_KEY_POLICY_TEXT = JSON.stringify(DEFAULT_KEY_POLICY_DOCUMENT);

/**
 * DEFAULT_KEY_POLICY_TEXT, parsed. A principal with only role:admin cannot use the key; one with only role:user
 * cannot administer it (a principal holding both roles can do both).
 */
export const DEFAULT_KEY_POLICY: KeyPolicy = parseKeyPolicyText(DEFAULT_KEY_POLICY_TEXT);

// ---------------------------------------------------------------------------------------------------------------
// lintKeyPolicy
// ---------------------------------------------------------------------------------------------------------------

/** Use actions that reveal plaintext or key material under this key (DescribeKey and Encrypt do not). */
const PLAINTEXT_ACTIONS = ['Decrypt', 'GenerateDataKey', 'ReEncryptFrom'] as const;
const SHARED_ACTIONS = new Set<string>(['DescribeKey']);
const USE_ONLY = KEY_POLICY_USE_ACTIONS.filter((a) => !SHARED_ACTIONS.has(a));
const ADMIN_ONLY = KEY_POLICY_ADMIN_ACTIONS.filter((a) => !SHARED_ACTIONS.has(a));

function isWorkloadEntry(e: string): boolean {
  return e.startsWith(WORKLOAD_PRINCIPAL_PREFIX);
}

/**
 * Lists risky constructs of a valid policy (advisory; never throws for a parsed policy). `releasePolicy` is the
 * key's release policy text (an attestation policy document) or null. Deny statements are not credited with
 * cancelling an Allow, and conditions other than attestation are ignored: findings are conservative.
 *
 * @throws KmsError KEY_POLICY_INVALID — `policy` was not produced by parseKeyPolicy.
 */
export function lintKeyPolicy(
  policy: KeyPolicy,
  options: {
    readonly releasePolicy?: string | null;
    readonly protectedKey?: boolean;
    /** Whether a principal name is registered now (for PROTECTED_UNREGISTERED_PRINCIPAL). */
    readonly isRegistered?: (name: string) => boolean;
  } = {},
): KeyPolicyFinding[] {
  const compiled = typeof policy === 'object' && policy !== null ? COMPILED.get(policy) : undefined;
  if (compiled === undefined)
    invalid('$', 'is not a parsed key policy; pass the document through parseKeyPolicy first');
  const findings: KeyPolicyFinding[] = [];
  const add = (code: KeyPolicyLintCode, message: string, s?: CompiledStatement): void => {
    findings.push(s === undefined ? { code, message } : { code, message, statement: s.ref });
  };
  const name = (s: CompiledStatement): string =>
    typeof s.ref === 'string' ? `statement ${s.ref}` : `statement #${s.ref}`;
  const allows = compiled.filter((s) => s.effect === 'Allow');
  const adminHolders = new Set<string>();
  for (const s of allows)
    if (ADMIN_ONLY.some((a) => s.actions.has(a))) for (const p of s.principals) adminHolders.add(p);

  let releasePolicy: AttestationPolicy | undefined;
  const text = options.releasePolicy;
  if (text != null) {
    try {
      releasePolicy = parsePolicy(JSON.parse(text));
    } catch (err) {
      const code = err instanceof EkmsError ? err.code : 'not JSON';
      add('RELEASE_POLICY_INVALID', `the release policy does not parse (${code}); the key is never released`);
    }
  }
  if (releasePolicy?.allowSimulated) {
    add(
      'ATTESTATION_SIMULATED_ALLOWED',
      'the release policy accepts simulated attestation (never in production)',
    );
  }
  if (releasePolicy?.allowDebug) {
    add(
      'ATTESTATION_DEBUG_ALLOWED',
      'the release policy accepts debug enclaves, whose memory the host can read',
    );
  }

  for (const s of compiled) {
    if (s.attestation?.allowSimulated) {
      add(
        'ATTESTATION_SIMULATED_ALLOWED',
        `${name(s)}: its attestation condition accepts simulated attestation`,
        s,
      );
    }
    if (s.attestation?.allowDebug) {
      add('ATTESTATION_DEBUG_ALLOWED', `${name(s)}: its attestation condition accepts debug enclaves`, s);
    }
  }
  for (const s of allows) {
    const plaintext = PLAINTEXT_ACTIONS.filter((a) => s.actions.has(a));
    const usesKey = USE_ONLY.some((a) => s.actions.has(a));
    if (s.principals.includes('*') && plaintext.length > 0) {
      add(
        'WILDCARD_PRINCIPAL_USE',
        `${name(s)} allows every principal to ${plaintext.join(', ')}` +
          (s.attestation === undefined ? ' with no attestation condition' : ''),
        s,
      );
    }
    if (
      usesKey &&
      releasePolicy === undefined &&
      s.attestation === undefined &&
      s.principals.some(isWorkloadEntry)
    ) {
      add(
        'RELEASE_WITHOUT_ATTESTATION',
        `${name(s)} lets workload principals use the key without an attestation condition, and the key has no ` +
          'release policy: any workload whose evidence verifies (any measurement) qualifies',
        s,
      );
    }
    if (usesKey) {
      const overlap = s.principals.filter(
        (p) =>
          p === 'role:admin' ||
          adminHolders.has(p) ||
          (p === '*' && adminHolders.size > 0) ||
          adminHolders.has('*'),
      );
      if (overlap.length > 0) {
        add(
          'ADMIN_CAN_USE',
          `${name(s)} gives use actions to ${overlap.join(', ')}, who may also administer the key`,
          s,
        );
      }
    }
    if (s.principals.includes('role:user') && ADMIN_ONLY.some((a) => s.actions.has(a))) {
      add('USER_CAN_ADMINISTER', `${name(s)} gives administrative actions to role:user`, s);
    }
    // Dual control guards the key's policy, not principal registration (single-admin): on a protected key, an
    // Allow by role or to everyone lets one admin register a principal that qualifies (docs/key-policy.md §10).
    const broad = s.principals.filter((p) => p === '*' || p.startsWith('role:'));
    // Likewise a name nobody holds yet: the first admin to register it gets the statement.
    const isRegistered = options.isRegistered;
    const unregistered =
      isRegistered === undefined
        ? []
        : s.principals.filter(
            (p) => p !== '*' && !p.startsWith('role:') && !isWorkloadEntry(p) && !isRegistered(p),
          );
    if (options.protectedKey === true && unregistered.length > 0) {
      add(
        'PROTECTED_UNREGISTERED_PRINCIPAL',
        `${name(s)} names ${unregistered.join(', ')}, not registered: on a protected key, the first admin to ` +
          'register that name gets what the statement allows',
        s,
      );
    }
    if (options.protectedKey === true && plaintext.length > 0 && broad.length > 0) {
      add(
        'PROTECTED_BY_ROLE',
        `${name(s)} lets ${broad.join(', ')} ${plaintext.join(', ')} on a protected key: one admin can register a ` +
          'principal that qualifies, around the quorum; name the principals instead',
        s,
      );
    }
  }
  return findings;
}
