/**
 * Key policies (enclave/kms/key-policy.ts; docs/key-policy.md is the specification these cases follow):
 * a decision matrix (principal × action × condition → allow/deny and the deciding statement), every parse error
 * with its code and JSON path, the lint codes, and property tests of the parser. Attestation claims are
 * hand-made NitroClaims, as in test/attestation/policy.test.ts: conditions run after the verifiers.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NitroClaims } from '../../attestation/claims.js';
import {
  DEFAULT_KEY_POLICY,
  DEFAULT_KEY_POLICY_DOCUMENT,
  DEFAULT_KEY_POLICY_TEXT,
  evaluateKeyPolicy,
  isParsedKeyPolicy,
  KEY_POLICY_ACTION_GROUPS,
  KEY_POLICY_ACTIONS,
  KEY_POLICY_ADMIN_ACTIONS,
  KEY_POLICY_LIMITS,
  KEY_POLICY_LINT_CODES,
  KEY_POLICY_USE_ACTIONS,
  type KeyPolicy,
  type KeyPolicyDecision,
  type KeyPolicyRequest,
  lintKeyPolicy,
  parseKeyPolicy,
  parseKeyPolicyText,
} from '../../enclave/kms/key-policy.js';
import { EkmsError } from '../../shared/errors.js';
import { KMS_ERROR_CODES } from '../../shared/kms-errors.js';
import { runs } from '../helpers/property-runs.js';

// ------------------------------------------------------------------------------------------------------------
// Fixtures
// ------------------------------------------------------------------------------------------------------------

const NOW = new Date('2025-06-01T12:00:00.000Z');
const PCR0 = 'a0'.repeat(48);
const OTHER48 = 'ee'.repeat(48);

function nitro(over: Partial<NitroClaims> = {}): NitroClaims {
  return {
    type: 'nitro',
    debug: false,
    timestamp: new Date(NOW.getTime() - 30_000).toISOString(),
    measurement: PCR0,
    rootFingerprint: '0f'.repeat(32),
    simulated: false,
    moduleId: 'i-0123456789abcdef0-enc0123456789abcdef',
    pcrs: { '0': PCR0 },
    userData: null,
    nonce: null,
    publicKey: null,
    ...over,
  };
}

type P = KeyPolicyRequest['principal'];
const ADMIN: P = { name: 'ada', roles: ['admin'], tags: {} };
const USER: P = { name: 'uma', roles: ['user'], tags: {} };
const BOTH: P = { name: 'root', roles: ['admin', 'user'], tags: {} };
const NOBODY: P = { name: 'nemo', roles: [], tags: {} };
const ALICE: P = { name: 'alice', roles: ['user'], tags: { tenant: 'A', team: 'pay*' } };
const BOB: P = { name: 'bob', roles: ['user'], tags: { tenant: 'B' } };
const UNTAGGED: P = { name: 'carol', roles: ['user'], tags: {} };
const WORKLOAD: P = { name: `workload:${PCR0.slice(0, 16)}`, roles: [], tags: {} };

function req(
  principal: P,
  action: string,
  extra: Partial<Omit<KeyPolicyRequest, 'principal' | 'action'>> = {},
): KeyPolicyRequest {
  return { principal, action, now: NOW, ...extra };
}

const ALLOW = (statement: string | number): KeyPolicyDecision => ({ allowed: true, statement });
const NO_ALLOW: KeyPolicyDecision = { allowed: false, reason: 'no-allow' };
const DENY = (statement: string | number): KeyPolicyDecision => ({
  allowed: false,
  reason: 'explicit-deny',
  statement,
});

/** Asserts KEY_POLICY_INVALID (code first, then path and message). */
function expectInvalid(fn: () => unknown, path: string, message?: RegExp | string): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, 'expected KEY_POLICY_INVALID').toBeInstanceOf(EkmsError);
  const e = caught as EkmsError;
  expect(e.code).toBe('KEY_POLICY_INVALID');
  expect(e.details?.['path']).toBe(path);
  expect(e.message).toContain(path);
  if (message !== undefined) expect(e.message).toMatch(message);
}

const doc = (...statements: unknown[]) => ({ version: 1, statements });

// ------------------------------------------------------------------------------------------------------------
// Vocabulary
// ------------------------------------------------------------------------------------------------------------

describe('actions and groups', () => {
  it('every key policy action is a KmsAction, and account-level actions are not key policy actions', async () => {
    const { KmsAction } = await import('../../enclave/kms/authorizer.js');
    const all = Object.values(KmsAction) as string[];
    for (const a of KEY_POLICY_ACTIONS) expect(all, a).toContain(a);
    const accountLevel = all.filter((a) => !(KEY_POLICY_ACTIONS as readonly string[]).includes(a)).sort();
    // ReleaseKey is decided by the release policy; the key policy is consulted for it in deny-only mode, where it
    // is an action the vocabulary does not list (matched by a Deny on * only: docs/key-policy.md §9).
    expect(accountLevel).toEqual([
      'CreateKey',
      'CreatePrincipal',
      'ListKeys',
      'ListPrincipals',
      'ReleaseKey',
    ]);
  });

  it('use:* and admin:* are the documented lists; DescribeKey is in both; * is their union', () => {
    expect(KEY_POLICY_USE_ACTIONS).toEqual([
      'Encrypt',
      'Decrypt',
      'ReEncryptFrom',
      'ReEncryptTo',
      'GenerateDataKey',
      'GenerateDataKeyWithoutPlaintext',
      'DescribeKey',
    ]);
    expect(KEY_POLICY_ADMIN_ACTIONS).toContain('PutKeyPolicy');
    expect(KEY_POLICY_ADMIN_ACTIONS).toContain('RevokeGrant');
    expect(KEY_POLICY_ADMIN_ACTIONS).toHaveLength(18);
    expect(new Set(KEY_POLICY_ACTIONS)).toEqual(
      new Set([...KEY_POLICY_USE_ACTIONS, ...KEY_POLICY_ADMIN_ACTIONS]),
    );
    expect(KEY_POLICY_ACTIONS).toHaveLength(24);
    expect(KEY_POLICY_ACTION_GROUPS['*']).toBe(KEY_POLICY_ACTIONS);
  });

  it('KEY_POLICY_INVALID is a registered, non-retriable key service code', () => {
    expect(KMS_ERROR_CODES.KEY_POLICY_INVALID.retriable).toBe(false);
  });
});

// ------------------------------------------------------------------------------------------------------------
// Default policy: separation of duties
// ------------------------------------------------------------------------------------------------------------

describe('DEFAULT_KEY_POLICY (separation of duties)', () => {
  const useOnly = KEY_POLICY_USE_ACTIONS.filter((a) => a !== 'DescribeKey');
  const adminOnly = KEY_POLICY_ADMIN_ACTIONS.filter((a) => a !== 'DescribeKey');

  it('is a parsed, frozen policy', () => {
    expect(isParsedKeyPolicy(DEFAULT_KEY_POLICY)).toBe(true);
    expect(Object.isFrozen(DEFAULT_KEY_POLICY)).toBe(true);
    expect(Object.isFrozen(DEFAULT_KEY_POLICY.statements[0])).toBe(true);
    expect(lintKeyPolicy(DEFAULT_KEY_POLICY)).toEqual([]);
    expect(JSON.parse(DEFAULT_KEY_POLICY_TEXT)).toEqual(JSON.parse(JSON.stringify(DEFAULT_KEY_POLICY)));
    expect(JSON.parse(DEFAULT_KEY_POLICY_TEXT)).toEqual(DEFAULT_KEY_POLICY_DOCUMENT);
    expect(Object.isFrozen(DEFAULT_KEY_POLICY_DOCUMENT.statements[0].principals)).toBe(true);
  });

  for (const action of adminOnly) {
    it(`role:admin may ${action}; role:user may not`, () => {
      expect(evaluateKeyPolicy(DEFAULT_KEY_POLICY, req(ADMIN, action))).toEqual(ALLOW('AdminsAdminister'));
      expect(evaluateKeyPolicy(DEFAULT_KEY_POLICY, req(USER, action))).toEqual(NO_ALLOW);
    });
  }
  for (const action of useOnly) {
    it(`role:user may ${action}; role:admin may not (admins cannot use keys)`, () => {
      const ctx = { encryptionContext: { tenant: 'A' } };
      expect(evaluateKeyPolicy(DEFAULT_KEY_POLICY, req(USER, action, ctx))).toEqual(ALLOW('UsersUse'));
      expect(evaluateKeyPolicy(DEFAULT_KEY_POLICY, req(ADMIN, action, ctx))).toEqual(NO_ALLOW);
    });
  }
  it('DescribeKey is allowed to both roles, to neither without a role', () => {
    expect(evaluateKeyPolicy(DEFAULT_KEY_POLICY, req(ADMIN, 'DescribeKey'))).toEqual(
      ALLOW('AdminsAdminister'),
    );
    expect(evaluateKeyPolicy(DEFAULT_KEY_POLICY, req(USER, 'DescribeKey'))).toEqual(ALLOW('UsersUse'));
    expect(evaluateKeyPolicy(DEFAULT_KEY_POLICY, req(NOBODY, 'DescribeKey'))).toEqual(NO_ALLOW);
    expect(evaluateKeyPolicy(DEFAULT_KEY_POLICY, req(WORKLOAD, 'Decrypt'))).toEqual(NO_ALLOW);
  });
  it('a principal holding both roles may do both (the roles, not the names, are separated)', () => {
    expect(evaluateKeyPolicy(DEFAULT_KEY_POLICY, req(BOTH, 'Decrypt')).allowed).toBe(true);
    expect(evaluateKeyPolicy(DEFAULT_KEY_POLICY, req(BOTH, 'ScheduleKeyDeletion')).allowed).toBe(true);
  });
  it('an action no key policy knows is denied even to roles', () => {
    expect(evaluateKeyPolicy(DEFAULT_KEY_POLICY, req(BOTH, 'CreateKey'))).toEqual(NO_ALLOW);
    expect(evaluateKeyPolicy(DEFAULT_KEY_POLICY, req(BOTH, 'ReleaseKeyV2'))).toEqual(NO_ALLOW);
  });
});

// ------------------------------------------------------------------------------------------------------------
// Decision matrix
// ------------------------------------------------------------------------------------------------------------

const MATRIX_POLICY = parseKeyPolicy(
  doc(
    { sid: 'Admins', effect: 'Allow', principals: ['role:admin'], actions: ['admin:*'] },
    {
      sid: 'TenantUse',
      effect: 'Allow',
      principals: ['role:user'],
      actions: ['use:*'],
      // biome-ignore lint/suspicious/noTemplateCurlyInString: key policy reference syntax.
      conditions: { context: { equals: { tenant: '${principal.tag.tenant}' }, requiredKeys: ['purpose'] } },
    },
    {
      sid: 'NoSecretDecrypt',
      effect: 'Deny',
      principals: ['*'],
      actions: ['Decrypt'],
      conditions: { context: { like: { classification: 'secret*' } } },
    },
    {
      sid: 'NoDeletionByBob',
      effect: 'Deny',
      principals: ['bob', 'mallory'],
      actions: ['ScheduleKeyDeletion'],
    },
    {
      sid: 'Workloads',
      effect: 'Allow',
      principals: ['workload:*'],
      actions: ['Decrypt', 'GenerateDataKey'],
      conditions: { attestation: { version: 1, measurements: [PCR0] } },
    },
  ),
);

const BOB_ADMIN: P = { name: 'bob', roles: ['admin'], tags: { tenant: 'B' } };
const CTX_A = { tenant: 'A', purpose: 'billing' };
const CTX_B = { tenant: 'B', purpose: 'billing' };

interface Case {
  readonly name: string;
  readonly request: KeyPolicyRequest;
  readonly expected: KeyPolicyDecision | { allowed: false; reason: 'no-allow'; unmetMatches: RegExp };
}

const MATRIX: readonly Case[] = [
  { name: 'admin rotates', request: req(ADMIN, 'RotateKey'), expected: ALLOW('Admins') },
  {
    name: 'admin decrypts',
    request: req(ADMIN, 'Decrypt', { encryptionContext: CTX_A }),
    expected: NO_ALLOW,
  },
  {
    name: 'tenant A user, context tenant A',
    request: req(ALICE, 'Decrypt', { encryptionContext: CTX_A }),
    expected: ALLOW('TenantUse'),
  },
  {
    name: 'tenant A user, context tenant B (tag substitution refuses)',
    request: req(ALICE, 'Decrypt', { encryptionContext: CTX_B }),
    expected: {
      allowed: false,
      reason: 'no-allow',
      unmetMatches: /conditions\.context\.equals\.tenant: context value differs/,
    },
  },
  {
    name: 'tenant B user, context tenant B',
    request: req(BOB, 'Encrypt', { encryptionContext: CTX_B }),
    expected: ALLOW('TenantUse'),
  },
  {
    name: 'user without the tenant tag never matches',
    request: req(UNTAGGED, 'Encrypt', { encryptionContext: CTX_A }),
    expected: { allowed: false, reason: 'no-allow', unmetMatches: /lacks a referenced tag/ },
  },
  {
    name: 'user, context without a required key',
    request: req(ALICE, 'Encrypt', { encryptionContext: { tenant: 'A' } }),
    expected: {
      allowed: false,
      reason: 'no-allow',
      unmetMatches: /conditions\.context\.requiredKeys: context lacks "purpose"/,
    },
  },
  {
    name: 'user, no encryption context at all',
    request: req(ALICE, 'Encrypt'),
    expected: { allowed: false, reason: 'no-allow', unmetMatches: /carries no encryption context/ },
  },
  {
    name: 'explicit deny wins over the tenant Allow (secret context)',
    request: req(ALICE, 'Decrypt', { encryptionContext: { ...CTX_A, classification: 'secret-hr' } }),
    expected: DENY('NoSecretDecrypt'),
  },
  {
    name: 'deny glob is anchored (top-secret is not secret*)',
    request: req(ALICE, 'Decrypt', { encryptionContext: { ...CTX_A, classification: 'top-secret' } }),
    expected: ALLOW('TenantUse'),
  },
  {
    name: 'deny with a context condition applies when the request has no context (fail closed)',
    request: req(ALICE, 'Decrypt'),
    expected: DENY('NoSecretDecrypt'),
  },
  {
    name: 'deny does not touch other actions',
    request: req(ALICE, 'Encrypt', { encryptionContext: { ...CTX_A, classification: 'secret' } }),
    expected: ALLOW('TenantUse'),
  },
  {
    name: 'deny by name wins over the role Allow',
    request: req(BOB_ADMIN, 'ScheduleKeyDeletion'),
    expected: DENY('NoDeletionByBob'),
  },
  {
    name: 'deny by name: other admin unaffected',
    request: req(ADMIN, 'ScheduleKeyDeletion'),
    expected: ALLOW('Admins'),
  },
  {
    name: 'workload with matching claims',
    request: req(WORKLOAD, 'Decrypt', { claims: nitro(), encryptionContext: {} }),
    expected: ALLOW('Workloads'),
  },
  {
    name: 'workload with another measurement',
    request: req(WORKLOAD, 'Decrypt', {
      claims: nitro({ measurement: OTHER48, pcrs: { '0': OTHER48 } }),
      encryptionContext: {},
    }),
    expected: {
      allowed: false,
      reason: 'no-allow',
      unmetMatches: /conditions\.attestation: MEASUREMENT_NOT_ALLOWED/,
    },
  },
  {
    name: 'workload with simulated claims (attestation policy denies simulated by default)',
    request: req(WORKLOAD, 'GenerateDataKey', { claims: nitro({ simulated: true }) }),
    expected: { allowed: false, reason: 'no-allow', unmetMatches: /SIMULATED_NOT_ALLOWED/ },
  },
  {
    name: 'workload without claims',
    request: req(WORKLOAD, 'Decrypt', { encryptionContext: {} }),
    expected: { allowed: false, reason: 'no-allow', unmetMatches: /presented no attestation claims/ },
  },
  {
    name: 'workload action outside its statement',
    request: req(WORKLOAD, 'Encrypt', { claims: nitro() }),
    expected: NO_ALLOW,
  },
  {
    name: 'named user is not a workload',
    request: req({ name: 'workloadish', roles: [], tags: {} }, 'Decrypt', {
      claims: nitro(),
      encryptionContext: {},
    }),
    expected: NO_ALLOW,
  },
];

describe('decision matrix', () => {
  for (const c of MATRIX) {
    it(c.name, () => {
      const d = evaluateKeyPolicy(MATRIX_POLICY, c.request);
      if ('unmetMatches' in c.expected) {
        expect(d.allowed).toBe(false);
        if (d.allowed) return;
        expect(d.reason).toBe('no-allow');
        expect(d.statement).toBeUndefined();
        expect(d.unmet?.join('\n')).toMatch(c.expected.unmetMatches);
      } else {
        expect(d).toEqual(c.expected);
      }
    });
  }
});

describe('explicit deny', () => {
  it('wins wherever it appears, and the first matching Deny (in document order) is named', () => {
    const p = parseKeyPolicy(
      doc(
        { effect: 'Allow', principals: ['*'], actions: ['*'] },
        { effect: 'Deny', principals: ['role:user'], actions: ['use:*'] },
        { sid: 'Second', effect: 'Deny', principals: ['alice'], actions: ['Decrypt'] },
      ),
    );
    expect(evaluateKeyPolicy(p, req(ALICE, 'Decrypt'))).toEqual(DENY(1));
    expect(evaluateKeyPolicy(p, req(ADMIN, 'Decrypt'))).toEqual(ALLOW(0));
  });

  it('Deny * covers an action this version does not know; Allow * does not', () => {
    const allowAll = parseKeyPolicy(doc({ effect: 'Allow', principals: ['*'], actions: ['*'] }));
    expect(evaluateKeyPolicy(allowAll, req(ALICE, 'FutureAction'))).toEqual(NO_ALLOW);
    expect(evaluateKeyPolicy(allowAll, req(ALICE, 'Decrypt'))).toEqual(ALLOW(0));
    const denyAll = parseKeyPolicy(
      doc(
        { effect: 'Allow', principals: ['*'], actions: ['*'] },
        { sid: 'Lock', effect: 'Deny', principals: ['*'], actions: ['*'] },
      ),
    );
    expect(evaluateKeyPolicy(denyAll, req(ALICE, 'FutureAction'))).toEqual(DENY('Lock'));
    expect(evaluateKeyPolicy(denyAll, req(ADMIN, 'RotateKey'))).toEqual(DENY('Lock'));
  });

  it('a Deny whose attestation condition cannot be evaluated (no claims) applies', () => {
    const p = parseKeyPolicy(
      doc(
        { effect: 'Allow', principals: ['*'], actions: ['Decrypt'] },
        {
          sid: 'OldBuild',
          effect: 'Deny',
          principals: ['*'],
          actions: ['Decrypt'],
          conditions: { attestation: { version: 1, measurements: [OTHER48] } },
        },
      ),
    );
    expect(evaluateKeyPolicy(p, req(ALICE, 'Decrypt'))).toEqual(DENY('OldBuild'));
    // Claims of the old build satisfy the Deny's condition: denied.
    const old = nitro({ measurement: OTHER48, pcrs: { '0': OTHER48 } });
    expect(evaluateKeyPolicy(p, req(WORKLOAD, 'Decrypt', { claims: old }))).toEqual(DENY('OldBuild'));
    // Claims of the current build do not: the Deny does not apply.
    expect(evaluateKeyPolicy(p, req(WORKLOAD, 'Decrypt', { claims: nitro() }))).toEqual(ALLOW(0));
  });

  it('a Deny whose tag reference cannot be resolved applies', () => {
    const p = parseKeyPolicy(
      doc(
        { effect: 'Allow', principals: ['*'], actions: ['Encrypt'] },
        {
          sid: 'Self',
          effect: 'Deny',
          principals: ['*'],
          actions: ['Encrypt'],
          // biome-ignore lint/suspicious/noTemplateCurlyInString: key policy reference syntax.
          conditions: { context: { equals: { owner: '${principal.tag.tenant}' } } },
        },
      ),
    );
    expect(evaluateKeyPolicy(p, req(UNTAGGED, 'Encrypt', { encryptionContext: { owner: 'x' } }))).toEqual(
      DENY('Self'),
    );
    expect(evaluateKeyPolicy(p, req(ALICE, 'Encrypt', { encryptionContext: { owner: 'A' } }))).toEqual(
      DENY('Self'),
    );
    expect(evaluateKeyPolicy(p, req(ALICE, 'Encrypt', { encryptionContext: { owner: 'B' } }))).toEqual(
      ALLOW(0),
    );
  });

  it('a Deny whose condition is evaluated and false does not apply', () => {
    const p = parseKeyPolicy(
      doc(
        { effect: 'Allow', principals: ['*'], actions: ['Encrypt'] },
        {
          effect: 'Deny',
          principals: ['*'],
          actions: ['Encrypt'],
          conditions: { context: { requiredKeys: ['legacy'] } },
        },
      ),
    );
    expect(evaluateKeyPolicy(p, req(ALICE, 'Encrypt', { encryptionContext: {} }))).toEqual(ALLOW(0));
    expect(evaluateKeyPolicy(p, req(ALICE, 'Encrypt', { encryptionContext: { legacy: '' } }))).toEqual(
      DENY(1),
    );
  });
});

describe('context conditions', () => {
  const like = (pattern: string) =>
    parseKeyPolicy(
      doc({
        effect: 'Allow',
        principals: ['*'],
        actions: ['Encrypt'],
        conditions: { context: { like: { k: pattern } } },
      }),
    );
  const cases: readonly [string, string, boolean][] = [
    ['abc', 'abc', true],
    ['abc', 'abcd', false],
    ['a*', 'a', true],
    ['a*', 'abc', true],
    ['a*', 'ba', false],
    ['*c', 'abc', true],
    ['*c', 'abcd', false],
    ['a?c', 'abc', true],
    ['a?c', 'ac', false],
    ['a?c', 'aéc', true],
    ['a?c', 'a😀c', true],
    ['*', '', true],
    ['?', '', false],
    ['a*b*c', 'axxbyyc', true],
    ['a*b*c', 'axxbyy', false],
    ['*a*a*a*a*a*b', 'a'.repeat(1000), false],
  ];
  for (const [pattern, value, matches] of cases) {
    it(`like ${JSON.stringify(pattern)} ${matches ? 'matches' : 'does not match'} ${JSON.stringify(value.slice(0, 12))}`, () => {
      const d = evaluateKeyPolicy(like(pattern), req(ALICE, 'Encrypt', { encryptionContext: { k: value } }));
      expect(d.allowed).toBe(matches);
    });
  }

  it('like with a tag reference treats the tag value literally (a tag holding * does not widen the pattern)', () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: key policy reference syntax.
    const p = like('team-${principal.tag.team}-?');
    // ALICE's team tag is the literal string "pay*".
    expect(
      evaluateKeyPolicy(p, req(ALICE, 'Encrypt', { encryptionContext: { k: 'team-pay*-1' } })).allowed,
    ).toBe(true);
    expect(
      evaluateKeyPolicy(p, req(ALICE, 'Encrypt', { encryptionContext: { k: 'team-payroll-1' } })).allowed,
    ).toBe(false);
    expect(
      evaluateKeyPolicy(p, req(BOB, 'Encrypt', { encryptionContext: { k: 'team-pay*-1' } })).allowed,
    ).toBe(false);
  });

  it('equals compares exactly (case, whitespace, prefix) and a missing key fails', () => {
    const p = parseKeyPolicy(
      doc({
        effect: 'Allow',
        principals: ['*'],
        actions: ['Encrypt'],
        conditions: { context: { equals: { k: 'V' } } },
      }),
    );
    for (const [ctx, ok] of [
      [{ k: 'V' }, true],
      [{ k: 'v' }, false],
      [{ k: 'V ' }, false],
      [{ k: 'VV' }, false],
      [{ K: 'V' }, false],
      [{}, false],
    ] as const) {
      expect(
        evaluateKeyPolicy(p, req(ALICE, 'Encrypt', { encryptionContext: ctx })).allowed,
        JSON.stringify(ctx),
      ).toBe(ok);
    }
  });

  it('context lookups use own properties only (a polluted prototype supplies nothing)', () => {
    const p = parseKeyPolicy(
      doc({
        effect: 'Allow',
        principals: ['*'],
        actions: ['Encrypt'],
        conditions: { context: { requiredKeys: ['toString'] } },
      }),
    );
    expect(evaluateKeyPolicy(p, req(ALICE, 'Encrypt', { encryptionContext: {} })).allowed).toBe(false);
    const tagged = parseKeyPolicy(
      doc({
        effect: 'Allow',
        principals: ['*'],
        actions: ['Encrypt'],
        // biome-ignore lint/suspicious/noTemplateCurlyInString: key policy reference syntax.
        conditions: { context: { equals: { k: '${principal.tag.constructor}' } } },
      }),
    );
    expect(
      evaluateKeyPolicy(tagged, req(ALICE, 'Encrypt', { encryptionContext: { k: String(Object) } })).allowed,
    ).toBe(false);
  });
});

describe('time window', () => {
  const p = parseKeyPolicy(
    doc({
      sid: 'Window',
      effect: 'Allow',
      principals: ['*'],
      actions: ['Encrypt'],
      conditions: { time: { notBefore: '2025-06-01T00:00:00Z', notAfter: '2025-06-30T23:59:59.999Z' } },
    }),
  );
  const at = (iso: string) => evaluateKeyPolicy(p, { ...req(ALICE, 'Encrypt'), now: new Date(iso) });
  it('is inclusive at both ends', () => {
    expect(at('2025-06-01T00:00:00.000Z')).toEqual(ALLOW('Window'));
    expect(at('2025-06-30T23:59:59.999Z')).toEqual(ALLOW('Window'));
  });
  it('denies before notBefore and after notAfter', () => {
    const before = at('2025-05-31T23:59:59.999Z');
    expect(before.allowed).toBe(false);
    if (!before.allowed)
      expect(before.unmet).toEqual(['$.statements[0].conditions.time.notBefore: not yet valid']);
    const after = at('2025-07-01T00:00:00.000Z');
    if (!after.allowed) expect(after.unmet).toEqual(['$.statements[0].conditions.time.notAfter: expired']);
    expect(after.allowed).toBe(false);
  });
  it('a one-sided window', () => {
    const open = parseKeyPolicy(
      doc({
        effect: 'Allow',
        principals: ['*'],
        actions: ['Encrypt'],
        conditions: { time: { notAfter: '2025-01-01T00:00:00Z' } },
      }),
    );
    expect(evaluateKeyPolicy(open, req(ALICE, 'Encrypt')).allowed).toBe(false);
  });
});

describe('evaluateKeyPolicy preconditions', () => {
  it('refuses a policy that parseKeyPolicy did not make', () => {
    const forged = {
      version: 1,
      statements: [{ effect: 'Allow', principals: ['*'], actions: ['*'] }],
    } as unknown as KeyPolicy;
    expectInvalid(() => evaluateKeyPolicy(forged, req(ALICE, 'Decrypt')), '$', /not a parsed key policy/);
    expectInvalid(() => lintKeyPolicy(forged), '$', /not a parsed key policy/);
    expect(isParsedKeyPolicy(forged)).toBe(false);
  });
  it('refuses a request without a valid now (CONFIG_INVALID)', () => {
    for (const now of [new Date(Number.NaN), '2025-01-01', undefined]) {
      try {
        evaluateKeyPolicy(DEFAULT_KEY_POLICY, { ...req(USER, 'Encrypt'), now: now as unknown as Date });
        expect.unreachable();
      } catch (err) {
        expect((err as EkmsError).code).toBe('CONFIG_INVALID');
        expect((err as Error).message).toMatch(/now/);
      }
    }
  });
  it('refuses a malformed principal (CONFIG_INVALID)', () => {
    const bad = { name: 'x', roles: 'admin', tags: {} } as unknown as P;
    expect(() => evaluateKeyPolicy(DEFAULT_KEY_POLICY, req(bad, 'Encrypt'))).toThrow(/principal must be/);
  });
});

// ------------------------------------------------------------------------------------------------------------
// Parsing: every error path
// ------------------------------------------------------------------------------------------------------------

const OK_STATEMENT = { effect: 'Allow', principals: ['alice'], actions: ['Encrypt'] };
const withStatement = (over: Record<string, unknown>) => doc({ ...OK_STATEMENT, ...over });
const withConditions = (conditions: unknown) => withStatement({ conditions });
const long = 'x'.repeat(KEY_POLICY_LIMITS.maxStringBytes + 1);

const PARSE_ERRORS: readonly [string, unknown, string, RegExp][] = [
  ['not an object', [], '$', /must be an object, got an array/],
  ['JSON text given to parseKeyPolicy', '{"version":1}', '$', /parseKeyPolicyText/],
  ['null', null, '$', /got null/],
  ['missing version', { statements: [] }, '$.version', /is required/],
  ['version 2', { version: 2, statements: [OK_STATEMENT] }, '$.version', /unsupported key policy version 2/],
  ['version "1"', { version: '1', statements: [OK_STATEMENT] }, '$.version', /unsupported .* a string/],
  ['unknown top-level key', { ...doc(OK_STATEMENT), Statement: [] }, '$.Statement', /unknown key/],
  ['__proto__ key', JSON.parse('{"version":1,"statements":[],"__proto__":{}}'), '$.__proto__', /unknown key/],
  ['missing statements', { version: 1 }, '$.statements', /is required/],
  ['statements not an array', { version: 1, statements: {} }, '$.statements', /must be an array/],
  ['empty statements', { version: 1, statements: [] }, '$.statements', /must not be empty/],
  [
    'too many statements',
    { version: 1, statements: Array.from({ length: 65 }, () => OK_STATEMENT) },
    '$.statements',
    /at most 64 statements/,
  ],
  ['statement not an object', doc('Allow'), '$.statements[0]', /must be an object/],
  ['unknown statement key', withStatement({ Effect: 'Allow' }), '$.statements[0].Effect', /unknown key/],
  [
    'missing effect',
    doc({ principals: ['a'], actions: ['Encrypt'] }),
    '$.statements[0].effect',
    /is required/,
  ],
  ['bad effect', withStatement({ effect: 'allow' }), '$.statements[0].effect', /"Allow" or "Deny"/],
  [
    'missing principals',
    doc({ effect: 'Allow', actions: ['Encrypt'] }),
    '$.statements[0].principals',
    /is required/,
  ],
  ['missing actions', doc({ effect: 'Allow', principals: ['a'] }), '$.statements[0].actions', /is required/],
  [
    'principals not an array',
    withStatement({ principals: 'alice' }),
    '$.statements[0].principals',
    /must be an array/,
  ],
  ['empty principals', withStatement({ principals: [] }), '$.statements[0].principals', /must not be empty/],
  [
    'too many principals',
    withStatement({ principals: Array.from({ length: 65 }, (_, i) => `p${i}`) }),
    '$.statements[0].principals',
    /at most 64 entries/,
  ],
  [
    'principal not a string',
    withStatement({ principals: [7] }),
    '$.statements[0].principals[0]',
    /got a number/,
  ],
  [
    'principal too long',
    withStatement({ principals: [long] }),
    '$.statements[0].principals[0]',
    /at most 256 UTF-8 bytes/,
  ],
  [
    'unknown role',
    withStatement({ principals: ['role:root'] }),
    '$.statements[0].principals[0]',
    /unknown role "root"/,
  ],
  [
    'principal glob',
    withStatement({ principals: ['ali*'] }),
    '$.statements[0].principals[0]',
    /must be a principal name/,
  ],
  [
    'principal with space',
    withStatement({ principals: ['a b'] }),
    '$.statements[0].principals[0]',
    /must be a principal name/,
  ],
  [
    'workload name not hex',
    withStatement({ principals: ['workload:XYZ'] }),
    '$.statements[0].principals[0]',
    /must be a principal name/,
  ],
  [
    'lone surrogate',
    withStatement({ principals: ['\ud800'] }),
    '$.statements[0].principals[0]',
    /lone surrogate/,
  ],
  [
    'unknown action',
    withStatement({ actions: ['Encrypt', 'Decrpyt'] }),
    '$.statements[0].actions[1]',
    /unknown action "Decrpyt"/,
  ],
  [
    'account-level action',
    withStatement({ actions: ['CreateKey'] }),
    '$.statements[0].actions[0]',
    /account-level/,
  ],
  ['unknown group', withStatement({ actions: ['kms:*'] }), '$.statements[0].actions[0]', /unknown action/],
  ['empty actions', withStatement({ actions: [] }), '$.statements[0].actions', /must not be empty/],
  ['sid not a string', withStatement({ sid: 1 }), '$.statements[0].sid', /must be a string/],
  ['sid empty', withStatement({ sid: '' }), '$.statements[0].sid', /must start with a letter or digit/],
  [
    'sid with newline',
    withStatement({ sid: 'a\nb' }),
    '$.statements[0].sid',
    /must start with a letter or digit/,
  ],
  ['sid too long', withStatement({ sid: long }), '$.statements[0].sid', /at most 256/],
  [
    'duplicate sid',
    doc({ ...OK_STATEMENT, sid: 'S' }, { ...OK_STATEMENT, sid: 'S' }),
    '$.statements[1].sid',
    /duplicate sid "S"/,
  ],
  ['conditions not an object', withConditions([]), '$.statements[0].conditions', /must be an object/],
  ['empty conditions', withConditions({}), '$.statements[0].conditions', /must not be empty/],
  ['unknown condition', withConditions({ ip: {} }), '$.statements[0].conditions.ip', /unknown key/],
  [
    'empty context',
    withConditions({ context: {} }),
    '$.statements[0].conditions.context',
    /must not be empty/,
  ],
  [
    'unknown context key',
    withConditions({ context: { notEquals: { a: 'b' } } }),
    '$.statements[0].conditions.context.notEquals',
    /unknown key/,
  ],
  [
    'equals not an object',
    withConditions({ context: { equals: ['a'] } }),
    '$.statements[0].conditions.context.equals',
    /must be an object of strings/,
  ],
  [
    'empty equals',
    withConditions({ context: { equals: {} } }),
    '$.statements[0].conditions.context.equals',
    /must not be empty/,
  ],
  [
    'equals value not a string',
    withConditions({ context: { equals: { tenant: 1 } } }),
    '$.statements[0].conditions.context.equals.tenant',
    /must be a string, got a number/,
  ],
  [
    'equals empty key',
    withConditions({ context: { equals: { '': 'x' } } }),
    '$.statements[0].conditions.context.equals[""]',
    /must not be empty/,
  ],
  [
    'equals value too long',
    withConditions({ context: { equals: { k: long } } }),
    '$.statements[0].conditions.context.equals.k',
    /at most 256/,
  ],
  [
    'equals key too long',
    withConditions({ context: { equals: { [long]: 'v' } } }),
    `$.statements[0].conditions.context.equals[${JSON.stringify(`${'x'.repeat(64)}…`)}]`,
    /at most 256/,
  ],
  [
    'too many equals entries',
    withConditions({
      context: { equals: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) },
    }),
    '$.statements[0].conditions.context.equals',
    /at most 64 entries/,
  ],
  [
    'unknown reference',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: key policy reference syntax.
    withConditions({ context: { equals: { tenant: '${principal.tags.tenant}' } } }),
    '$.statements[0].conditions.context.equals.tenant',
    /unknown reference/,
  ],
  [
    'reference to another namespace',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: key policy reference syntax.
    withConditions({ context: { like: { tenant: 'x-${request.time}' } } }),
    '$.statements[0].conditions.context.like.tenant',
    /unknown reference/,
  ],
  [
    'unterminated reference',
    withConditions({ context: { equals: { tenant: 'a${principal.tag.t' } } }),
    '$.statements[0].conditions.context.equals.tenant',
    /unterminated/,
  ],
  [
    'requiredKeys not an array',
    withConditions({ context: { requiredKeys: 'tenant' } }),
    '$.statements[0].conditions.context.requiredKeys',
    /must be an array/,
  ],
  [
    'requiredKeys empty key',
    withConditions({ context: { requiredKeys: [''] } }),
    '$.statements[0].conditions.context.requiredKeys[0]',
    /must not be empty/,
  ],
  [
    'attestation version missing',
    withConditions({ attestation: { measurements: [PCR0] } }),
    '$.statements[0].conditions.attestation.version',
    /attestation condition: is required/,
  ],
  [
    'attestation unknown key',
    withConditions({ attestation: { version: 1, measurement: PCR0 } }),
    '$.statements[0].conditions.attestation.measurement',
    /attestation condition: unknown key/,
  ],
  [
    'attestation bad hex',
    withConditions({ attestation: { version: 1, nitro: { pcrs: { '0': ['zz'] } } } }),
    '$.statements[0].conditions.attestation.nitro.pcrs["0"][0]',
    /attestation condition: must be hex/,
  ],
  ['time empty', withConditions({ time: {} }), '$.statements[0].conditions.time', /must not be empty/],
  [
    'time unknown key',
    withConditions({ time: { after: 'x' } }),
    '$.statements[0].conditions.time.after',
    /unknown key/,
  ],
  [
    'time not ISO',
    withConditions({ time: { notBefore: 'tomorrow' } }),
    '$.statements[0].conditions.time.notBefore',
    /ISO-8601 UTC/,
  ],
  [
    'time without Z',
    withConditions({ time: { notBefore: '2025-01-01T00:00:00' } }),
    '$.statements[0].conditions.time.notBefore',
    /ISO-8601 UTC/,
  ],
  [
    'time with offset',
    withConditions({ time: { notBefore: '2025-01-01T00:00:00+01:00' } }),
    '$.statements[0].conditions.time.notBefore',
    /ISO-8601 UTC/,
  ],
  [
    'time Feb 30',
    withConditions({ time: { notAfter: '2025-02-30T00:00:00Z' } }),
    '$.statements[0].conditions.time.notAfter',
    /ISO-8601 UTC/,
  ],
  [
    'time a number',
    withConditions({ time: { notAfter: 1_700_000_000 } }),
    '$.statements[0].conditions.time.notAfter',
    /got a number/,
  ],
  [
    'empty window',
    withConditions({ time: { notBefore: '2025-02-01T00:00:00Z', notAfter: '2025-01-01T00:00:00Z' } }),
    '$.statements[0].conditions.time.notAfter',
    /must not be before notBefore/,
  ],
];

describe('parseKeyPolicy errors (KEY_POLICY_INVALID with the JSON path)', () => {
  for (const [name, input, path, message] of PARSE_ERRORS) {
    it(name, () => expectInvalid(() => parseKeyPolicy(input), path, message));
  }

  it('carries the attestation parse error as cause', () => {
    try {
      parseKeyPolicy(withConditions({ attestation: { version: 2 } }));
      expect.unreachable();
    } catch (err) {
      expect((err as EkmsError).code).toBe('KEY_POLICY_INVALID');
      expect(((err as Error).cause as EkmsError).code).toBe('POLICY_INVALID');
    }
  });

  it('the second statement is located by index', () => {
    expectInvalid(
      () => parseKeyPolicy(doc(OK_STATEMENT, { ...OK_STATEMENT, principals: ['role:guest'] })),
      '$.statements[1].principals[0]',
    );
  });
});

describe('parseKeyPolicy accepts', () => {
  it('every principal and action form, removing duplicates, and freezes the result', () => {
    const p = parseKeyPolicy(
      doc({
        sid: 'All forms 1/2:x.y-z',
        effect: 'Deny',
        principals: [
          '*',
          'role:admin',
          'role:user',
          'alice',
          'a.b@c-d_e',
          'workload:*',
          `workload:${PCR0}`,
          'alice',
        ],
        actions: ['*', 'use:*', 'admin:*', 'Decrypt', 'Decrypt'],
        conditions: {
          context: {
            // biome-ignore lint/suspicious/noTemplateCurlyInString: key policy reference syntax.
            equals: { tenant: '${principal.tag.tenant}', 'ns/key with space': 'v' },
            // biome-ignore lint/suspicious/noTemplateCurlyInString: key policy reference syntax.
            like: { path: '/data/${principal.tag.team}/*' },
            requiredKeys: ['tenant'],
          },
          attestation: { version: 1, measurements: [PCR0] },
          time: { notBefore: '2025-01-01T00:00:00.5Z' },
        },
      }),
    );
    const s = p.statements[0]!;
    expect(s.principals).toHaveLength(7);
    expect(s.actions).toEqual(['*', 'use:*', 'admin:*', 'Decrypt']);
    expect(s.conditions?.attestation?.allowSimulated).toBe(false);
    expect(Object.isFrozen(s.principals)).toBe(true);
    expect(Object.isFrozen(s.conditions?.context?.equals)).toBe(true);
  });

  it('strings at exactly 256 bytes (multi-byte counted in UTF-8)', () => {
    const ok = 'é'.repeat(128); // 256 bytes
    expect(() => parseKeyPolicy(withConditions({ context: { equals: { k: ok } } }))).not.toThrow();
    expectInvalid(
      () => parseKeyPolicy(withConditions({ context: { equals: { k: `${ok}x` } } })),
      '$.statements[0].conditions.context.equals.k',
      /at most 256/,
    );
  });

  it('64 statements, 64 list entries', () => {
    const many = Array.from({ length: 64 }, (_, i) => `p${i}`);
    expect(() =>
      parseKeyPolicy({
        version: 1,
        statements: Array.from({ length: 64 }, () => ({ ...OK_STATEMENT, principals: many })),
      }),
    ).not.toThrow();
  });
});

describe('parseKeyPolicyText', () => {
  const text = JSON.stringify(doc(OK_STATEMENT));
  it('parses a JSON document', () => {
    const p = parseKeyPolicyText(text);
    expect(evaluateKeyPolicy(p, req(ALICE, 'Encrypt'))).toEqual(ALLOW(0));
  });
  it('refuses a document over 16 KiB before parsing it', () => {
    const big = `${text.slice(0, -1)}${' '.repeat(KEY_POLICY_LIMITS.maxDocumentBytes)}}`;
    expectInvalid(() => parseKeyPolicyText(big), '$', /exceeds 16384 bytes/);
    const multiByte = `"${'é'.repeat(KEY_POLICY_LIMITS.maxDocumentBytes / 2)}"`;
    expectInvalid(() => parseKeyPolicyText(multiByte), '$', /exceeds 16384 bytes/);
  });
  it('refuses text that is not JSON, with a hint for base64', () => {
    expectInvalid(() => parseKeyPolicyText('{version: 1}'), '$', /not JSON/);
    expectInvalid(() => parseKeyPolicyText(''), '$', /not JSON/);
    expectInvalid(() => parseKeyPolicyText(Buffer.from(text).toString('base64')), '$', /base64/);
  });
  it('refuses a value that is not a string', () => {
    expectInvalid(() => parseKeyPolicyText({} as unknown as string), '$', /must be JSON text/);
  });
  it('refuses duplicate keys at any level, with their path', () => {
    expectInvalid(
      () => parseKeyPolicyText('{"version":1,"version":1,"statements":[]}'),
      '$.version',
      /duplicate key/,
    );
    expectInvalid(
      () =>
        parseKeyPolicyText(
          '{"version":1,"statements":[{"effect":"Allow","principals":["a"],"actions":["Encrypt"]},' +
            '{"effect":"Deny","principals":["a","b"],"actions":["Encrypt"],"effect":"Allow"}]}',
        ),
      '$.statements[1].effect',
      /duplicate key/,
    );
    expectInvalid(
      () =>
        parseKeyPolicyText(
          '{"version":1,"statements":[{"effect":"Allow","principals":["a"],"actions":["Encrypt"],' +
            '"conditions":{"context":{"equals":{"t\\u0041":"x","tA":"y"}}}}]}',
        ),
      '$.statements[0].conditions.context.equals.tA',
      /duplicate key/,
    );
  });
  it('the same key in sibling objects is not a duplicate', () => {
    expect(() =>
      parseKeyPolicyText(JSON.stringify(doc(OK_STATEMENT, { ...OK_STATEMENT, sid: 'x' }, OK_STATEMENT))),
    ).not.toThrow();
  });
});

// ------------------------------------------------------------------------------------------------------------
// Lint
// ------------------------------------------------------------------------------------------------------------

describe('lintKeyPolicy', () => {
  const codes = (p: KeyPolicy, releasePolicy?: string | null) =>
    lintKeyPolicy(p, releasePolicy === undefined ? {} : { releasePolicy }).map((f) => [f.code, f.statement]);

  it('WILDCARD_PRINCIPAL_USE: use:* or Decrypt/GenerateDataKey to *', () => {
    for (const actions of [['use:*'], ['Decrypt'], ['GenerateDataKey'], ['*']]) {
      const p = parseKeyPolicy(doc({ sid: 'W', effect: 'Allow', principals: ['*'], actions }));
      expect(codes(p), actions.join()).toContainEqual(['WILDCARD_PRINCIPAL_USE', 'W']);
    }
    const encryptOnly = parseKeyPolicy(
      doc({ effect: 'Allow', principals: ['*'], actions: ['Encrypt', 'DescribeKey'] }),
    );
    expect(codes(encryptOnly)).toEqual([]);
    const denyAll = parseKeyPolicy(doc({ effect: 'Deny', principals: ['*'], actions: ['*'] }));
    expect(codes(denyAll)).toEqual([]);
  });

  it('ADMIN_CAN_USE: role:admin, or a principal also allowed admin actions, gets use actions', () => {
    const role = parseKeyPolicy(
      doc({ sid: 'A', effect: 'Allow', principals: ['role:admin'], actions: ['Decrypt'] }),
    );
    expect(codes(role)).toEqual([['ADMIN_CAN_USE', 'A']]);
    const named = parseKeyPolicy(
      doc(
        { effect: 'Allow', principals: ['ops'], actions: ['RotateKey'] },
        { effect: 'Allow', principals: ['ops', 'app'], actions: ['Encrypt'] },
      ),
    );
    expect(codes(named)).toEqual([['ADMIN_CAN_USE', 1]]);
    const describeOnly = parseKeyPolicy(
      doc(
        { effect: 'Allow', principals: ['ops'], actions: ['admin:*'] },
        { effect: 'Allow', principals: ['ops'], actions: ['DescribeKey'] },
      ),
    );
    expect(codes(describeOnly)).toEqual([]);
  });

  it('USER_CAN_ADMINISTER: role:user gets admin actions', () => {
    const p = parseKeyPolicy(
      doc({ sid: 'U', effect: 'Allow', principals: ['role:user'], actions: ['PutKeyPolicy'] }),
    );
    expect(codes(p)).toEqual([['USER_CAN_ADMINISTER', 'U']]);
  });

  it('RELEASE_WITHOUT_ATTESTATION: workload principals allowed use without an attestation condition or release policy', () => {
    const p = parseKeyPolicy(
      doc({ sid: 'R', effect: 'Allow', principals: ['workload:*'], actions: ['Decrypt'] }),
    );
    expect(codes(p, null)).toEqual([['RELEASE_WITHOUT_ATTESTATION', 'R']]);
    expect(codes(p)).toEqual([['RELEASE_WITHOUT_ATTESTATION', 'R']]);
    const named = parseKeyPolicy(
      doc({ effect: 'Allow', principals: [`workload:${PCR0.slice(0, 16)}`], actions: ['use:*'] }),
    );
    expect(codes(named)).toEqual([['RELEASE_WITHOUT_ATTESTATION', 0]]);
    // With a release policy, or an attestation condition, it is not flagged.
    expect(codes(p, JSON.stringify({ version: 1, measurements: [PCR0] }))).toEqual([]);
    const gated = parseKeyPolicy(
      doc({
        effect: 'Allow',
        principals: ['workload:*'],
        actions: ['Decrypt'],
        conditions: { attestation: { version: 1, measurements: [PCR0] } },
      }),
    );
    expect(codes(gated)).toEqual([]);
  });

  it('ATTESTATION_SIMULATED_ALLOWED and ATTESTATION_DEBUG_ALLOWED: in a condition or the release policy', () => {
    const p = parseKeyPolicy(
      doc({
        sid: 'S',
        effect: 'Allow',
        principals: ['workload:*'],
        actions: ['Decrypt'],
        conditions: { attestation: { version: 1, allowSimulated: true, allowDebug: true } },
      }),
    );
    expect(codes(p)).toEqual([
      ['ATTESTATION_SIMULATED_ALLOWED', 'S'],
      ['ATTESTATION_DEBUG_ALLOWED', 'S'],
    ]);
    expect(codes(DEFAULT_KEY_POLICY, JSON.stringify({ version: 1, allowSimulated: true }))).toEqual([
      ['ATTESTATION_SIMULATED_ALLOWED', undefined],
    ]);
  });

  it('RELEASE_POLICY_INVALID: a release policy that does not parse', () => {
    expect(codes(DEFAULT_KEY_POLICY, '{')).toEqual([['RELEASE_POLICY_INVALID', undefined]]);
    expect(codes(DEFAULT_KEY_POLICY, '{"version":9}')).toEqual([['RELEASE_POLICY_INVALID', undefined]]);
  });

  it('every finding has a known code and a message', () => {
    const p = parseKeyPolicy(
      doc({ effect: 'Allow', principals: ['*', 'role:admin', 'role:user', 'workload:*'], actions: ['*'] }),
    );
    const findings = lintKeyPolicy(p, { releasePolicy: null });
    expect(new Set(findings.map((f) => f.code))).toEqual(
      new Set([
        'WILDCARD_PRINCIPAL_USE',
        'ADMIN_CAN_USE',
        'USER_CAN_ADMINISTER',
        'RELEASE_WITHOUT_ATTESTATION',
      ]),
    );
    for (const f of findings) {
      expect(KEY_POLICY_LINT_CODES).toContain(f.code);
      expect(f.message.length).toBeGreaterThan(10);
    }
  });
});

// ------------------------------------------------------------------------------------------------------------
// Properties
// ------------------------------------------------------------------------------------------------------------

/** Runs `fn`; returns 'ok', or the error code (any non-KEY_POLICY_INVALID error fails the property). */
function outcome(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (err instanceof EkmsError && err.code === 'KEY_POLICY_INVALID') {
      expect(typeof err.details?.['path']).toBe('string');
      expect(String(err.details?.['path'])).toMatch(/^\$/);
      return err.code;
    }
    throw err;
  }
}

/** Near-valid documents: mostly valid parts, sometimes junk, so the parser is exercised beyond the top level. */
const mostly = <T>(valid: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: valid, weight: 30 }, { arbitrary: fc.jsonValue({ maxDepth: 2 }), weight: 1 });
const principalArb = fc.oneof(
  {
    arbitrary: fc.constantFrom('*', 'role:admin', 'role:user', 'workload:*', 'alice', 'workload:ab'),
    weight: 200,
  },
  { arbitrary: fc.constantFrom('role:x', 'a*', ''), weight: 1 },
  { arbitrary: fc.string(), weight: 1 },
);
const actionArb = fc.oneof(
  { arbitrary: fc.constantFrom(...KEY_POLICY_ACTIONS, '*', 'use:*', 'admin:*'), weight: 200 },
  { arbitrary: fc.constantFrom('CreateKey', 'decrypt'), weight: 1 },
  { arbitrary: fc.string(), weight: 1 },
);
const contextKeyArb = fc.oneof(
  fc.constantFrom('tenant', 'purpose', 'k'),
  fc.string({ minLength: 1, maxLength: 4 }),
);
const templateArb = fc.oneof(
  { arbitrary: fc.string({ maxLength: 8 }), weight: 10 },
  // biome-ignore lint/suspicious/noTemplateCurlyInString: key policy reference syntax.
  { arbitrary: fc.constantFrom('${principal.tag.tenant}', 't-${principal.tag.team}*', '*?*'), weight: 10 },
  // biome-ignore lint/suspicious/noTemplateCurlyInString: key policy reference syntax.
  { arbitrary: fc.constantFrom('${x}', 'a${'), weight: 1 },
);
const dateArb = fc.date({ min: new Date('2000-01-01Z'), max: new Date('2100-01-01Z'), noInvalidDate: true });
const conditionsArb = fc.record(
  {
    context: mostly(
      fc.record(
        {
          equals: mostly(fc.dictionary(contextKeyArb, templateArb, { minKeys: 1, maxKeys: 3 })),
          like: mostly(fc.dictionary(contextKeyArb, templateArb, { minKeys: 1, maxKeys: 3 })),
          requiredKeys: mostly(fc.array(contextKeyArb, { minLength: 1, maxLength: 3 })),
        },
        { requiredKeys: [] },
      ),
    ),
    attestation: mostly(
      fc.constantFrom(
        { version: 1 },
        { version: 1, allowSimulated: true },
        { version: 1, measurements: [PCR0] },
        { version: 1, measurements: [PCR0] },
        { version: 1, allowDebug: true },
        { version: 1, allowSimulated: 'yes' },
      ),
    ),
    time: mostly(
      fc.tuple(dateArb, dateArb, fc.nat(2)).map(([a, b, which]) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        const notBefore = lo.toISOString();
        const notAfter = hi.toISOString();
        return which === 0 ? { notBefore } : which === 1 ? { notAfter } : { notBefore, notAfter };
      }),
    ),
  },
  { requiredKeys: [] },
);
const statementArb = fc.record(
  {
    sid: mostly(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9 ._:/-]{0,10}$/)),
    effect: mostly(fc.constantFrom('Allow', 'Deny')),
    principals: mostly(fc.array(principalArb, { minLength: 1, maxLength: 4 })),
    actions: mostly(fc.array(actionArb, { minLength: 1, maxLength: 4 })),
    conditions: mostly(conditionsArb),
  },
  { requiredKeys: ['effect', 'principals', 'actions'] },
);
const documentArb = fc.record({
  version: mostly(fc.constant(1)),
  statements: mostly(fc.array(statementArb, { minLength: 1, maxLength: 3 })),
});

describe('properties', () => {
  it('any JSON text is parsed or refused with KEY_POLICY_INVALID, never another exception', () => {
    fc.assert(
      fc.property(fc.json(), (text) => void outcome(() => parseKeyPolicyText(text))),
      { numRuns: runs(500) },
    );
    fc.assert(
      fc.property(fc.string(), (text) => void outcome(() => parseKeyPolicyText(text))),
      { numRuns: runs(300) },
    );
  });

  it('any JSON value and any near-valid document: parsed or KEY_POLICY_INVALID; text and value agree', () => {
    let parsed = 0;
    fc.assert(
      fc.property(fc.oneof({ arbitrary: documentArb, weight: 3 }, fc.jsonValue()), (value) => {
        const direct = outcome(() => parseKeyPolicy(value));
        if (direct === 'ok') parsed++;
        const viaText = outcome(() => parseKeyPolicyText(JSON.stringify(value) ?? 'null'));
        expect(viaText).toBe(direct);
      }),
      { numRuns: runs(1000) },
    );
    // The generator reaches valid documents too (the parser is exercised past its first checks).
    expect(parsed).toBeGreaterThan(100);
  });

  it('a parsed policy evaluates without throwing, and a Deny * for a principal always denies it', () => {
    fc.assert(
      fc.property(documentArb, fc.constantFrom(...KEY_POLICY_ACTIONS, 'Unknown'), (value, action) => {
        let p: KeyPolicy;
        try {
          p = parseKeyPolicy(value);
        } catch {
          return;
        }
        const r = req(ALICE, action, { encryptionContext: CTX_A, claims: nitro() });
        const d = evaluateKeyPolicy(p, r);
        expect(typeof d.allowed).toBe('boolean');
        const locked = parseKeyPolicy({
          version: 1,
          statements: [
            ...p.statements.map(toJson),
            { effect: 'Deny', principals: ['alice'], actions: ['*'] },
          ],
        });
        expect(evaluateKeyPolicy(locked, r)).toMatchObject({ allowed: false, reason: 'explicit-deny' });
        expect(lintKeyPolicy(p).every((f) => KEY_POLICY_LINT_CODES.includes(f.code))).toBe(true);
      }),
      { numRuns: runs(500) },
    );
  });
});

/** A parsed statement back to its document form (the attestation policy re-serialises to an equivalent document). */
function toJson(s: KeyPolicy['statements'][number]): unknown {
  return JSON.parse(JSON.stringify(s));
}
