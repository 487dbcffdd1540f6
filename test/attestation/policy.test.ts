/**
 * Attestation policy: parsePolicy (fail closed, JSON paths), evaluate (every violation, stable codes and fields),
 * enforce. Claims are hand-made NitroClaims / SnpClaims objects: this stage runs after the verifiers, so no
 * evidence is needed. docs/attestation-policy.md is the specification these cases follow.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NitroClaims, SnpClaims } from '../../attestation/claims.js';
import { POLICY_VIOLATION_CODES, type PolicyViolationCode } from '../../attestation/errors.js';
import {
  type AttestationPolicy,
  DEFAULT_CLOCK_SKEW_SECONDS,
  type Decision,
  type EvaluateOptions,
  type ExpectedBindings,
  enforce,
  evaluate,
  isParsedPolicy,
  MAX_POLICY_LIST_ENTRIES,
  parsePolicy,
} from '../../attestation/policy.js';
import { EkmsError, registeredErrorCodes } from '../../shared/errors.js';
import { runs } from '../helpers/property-runs.js';

// ------------------------------------------------------------------------------------------------------------
// Fixtures
// ------------------------------------------------------------------------------------------------------------

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const NOW = new Date('2025-06-01T12:00:00.000Z');
const at = (secondsFromNow: number): string => new Date(NOW.getTime() + secondsFromNow * 1000).toISOString();
/** `n` bytes of `byte` (two hex digits) as hex. */
const hx = (byte: string, n: number): string => byte.repeat(n);

const PCR0 = hx('a0', 48);
const PCR1 = hx('a1', 48);
const PCR2 = hx('a2', 48);
const PCR8 = hx('a8', 48);
const OTHER48 = hx('ee', 48);
const ROOT = hx('0f', 32);
const NONCE = hx('11', 32);
const USER_DATA = hx('22', 48);
const PUBLIC_KEY = hx('33', 91);
const SNP_MEASUREMENT = hx('5a', 48);
const REPORT_DATA = hx('44', 64);
const HOST_DATA = hx('55', 32);

function nitro(over: Partial<Mutable<NitroClaims>> = {}): NitroClaims {
  return {
    type: 'nitro',
    debug: false,
    timestamp: at(-30),
    measurement: PCR0,
    rootFingerprint: ROOT,
    simulated: false,
    moduleId: 'i-0123456789abcdef0-enc0123456789abcdef',
    pcrs: { '0': PCR0, '1': PCR1, '2': PCR2, '3': hx('00', 48), '4': hx('04', 48), '8': PCR8 },
    userData: USER_DATA,
    nonce: NONCE,
    publicKey: PUBLIC_KEY,
    ...over,
  };
}

const TCB = { bootloader: 4, tee: 0, snp: 22, microcode: 213 } as const;

function snp(over: Partial<Mutable<SnpClaims>> = {}): SnpClaims {
  return {
    type: 'sev-snp',
    debug: false,
    timestamp: null,
    measurement: SNP_MEASUREMENT,
    rootFingerprint: ROOT,
    simulated: false,
    version: 3,
    product: 'Milan',
    reportData: REPORT_DATA,
    hostData: HOST_DATA,
    vmpl: 0,
    policy: '0x30000',
    chipId: hx('c1', 64),
    signingKey: 'vcek',
    reportedTcb: TCB,
    currentTcb: TCB,
    committedTcb: TCB,
    launchTcb: TCB,
    guestSvn: 7,
    familyId: hx('00', 16),
    imageId: hx('00', 16),
    idKeyDigest: hx('00', 48),
    authorKeyDigest: hx('00', 48),
    reportId: hx('7e', 32),
    ...over,
  };
}

const turin = (over: Partial<Mutable<SnpClaims>> = {}): SnpClaims =>
  snp({ product: 'Turin', reportedTcb: { fmc: 1, bootloader: 4, tee: 0, snp: 22, microcode: 80 }, ...over });

function run(claims: NitroClaims | SnpClaims, doc: object, expectBindings?: ExpectedBindings): Decision {
  const options: EvaluateOptions =
    expectBindings === undefined ? { now: NOW } : { now: NOW, expect: expectBindings };
  return evaluate(claims, parsePolicy({ version: 1, ...doc }), options);
}

const summary = (d: Decision) => d.violations.map((v) => [v.code, v.field]);

function codeOf(fn: () => unknown): { code: string; message: string; details: unknown } {
  try {
    fn();
  } catch (err) {
    if (err instanceof EkmsError) return { code: err.code, message: err.message, details: err.details };
    throw err;
  }
  throw new Error('expected an EkmsError, nothing was thrown');
}

// ------------------------------------------------------------------------------------------------------------
// The matrix: for each condition, a passing case and a failing case with its exact code and field
// ------------------------------------------------------------------------------------------------------------

interface Case {
  readonly name: string;
  readonly claims: NitroClaims | SnpClaims;
  readonly policy: object;
  readonly expect?: ExpectedBindings;
  /** null: allowed; otherwise the exact list of [code, field]. */
  readonly violations: null | readonly (readonly [PolicyViolationCode, string])[];
}

const MATRIX: readonly Case[] = [
  // types
  {
    name: 'types: nitro claims, nitro allowed',
    claims: nitro(),
    policy: { types: ['nitro'] },
    violations: null,
  },
  {
    name: 'types: denies a TEE type the policy does not allow',
    claims: snp(),
    policy: { types: ['nitro'] },
    violations: [['TYPE_NOT_ALLOWED', 'type']],
  },
  // simulated
  {
    name: 'simulated: allowed when allowSimulated is true',
    claims: nitro({ simulated: true }),
    policy: { allowSimulated: true },
    violations: null,
  },
  {
    name: 'simulated: denies evidence anchored at a simulated root by default',
    claims: nitro({ simulated: true }),
    policy: {},
    violations: [['SIMULATED_NOT_ALLOWED', 'simulated']],
  },
  {
    name: 'simulated: allowSimulated false denies SEV-SNP simulated evidence',
    claims: snp({ simulated: true }),
    policy: { allowSimulated: false },
    violations: [['SIMULATED_NOT_ALLOWED', 'simulated']],
  },
  // rootFingerprints
  {
    name: 'rootFingerprints: root in the list',
    claims: snp(),
    policy: { rootFingerprints: [OTHER48.slice(0, 64), ROOT] },
    violations: null,
  },
  {
    name: 'rootFingerprints: denies a root not in the list',
    claims: nitro({ rootFingerprint: hx('f0', 32) }),
    policy: { rootFingerprints: [ROOT] },
    violations: [['ROOT_NOT_ALLOWED', 'rootFingerprint']],
  },
  // debug
  {
    name: 'allowDebug: debug evidence accepted when allowed',
    claims: nitro({ debug: true }),
    policy: { allowDebug: true },
    violations: null,
  },
  {
    name: 'allowDebug: denies a debug Nitro enclave by default',
    claims: nitro({ debug: true }),
    policy: {},
    violations: [['DEBUG_NOT_ALLOWED', 'debug']],
  },
  {
    name: 'allowDebug: denies a debug SEV-SNP guest when allowDebug is false',
    claims: snp({ debug: true }),
    policy: { allowDebug: false },
    violations: [['DEBUG_NOT_ALLOWED', 'debug']],
  },
  // measurements
  {
    name: 'measurements: Nitro PCR0 first in the list',
    claims: nitro(),
    policy: { measurements: [PCR0, OTHER48] },
    violations: null,
  },
  {
    name: 'measurements: SNP MEASUREMENT in the list (uppercase policy hex is normalised)',
    claims: snp(),
    policy: { measurements: [SNP_MEASUREMENT.toUpperCase()] },
    violations: null,
  },
  {
    name: 'measurements: denies a measurement not in the list',
    claims: nitro(),
    policy: { measurements: [OTHER48] },
    violations: [['MEASUREMENT_NOT_ALLOWED', 'measurement']],
  },
  {
    name: 'measurements: denies a claims measurement that is not hex',
    claims: snp({ measurement: 'zz'.repeat(48) }),
    policy: { measurements: [SNP_MEASUREMENT] },
    violations: [['MEASUREMENT_NOT_ALLOWED', 'measurement']],
  },
  // pcrs
  {
    name: 'pcrs: every listed PCR matches one value',
    claims: nitro(),
    policy: { pcrs: { '0': [PCR0], '8': [OTHER48, PCR8] } },
    violations: null,
  },
  {
    name: 'pcrs: denies a PCR value not in its list',
    claims: nitro(),
    policy: { pcrs: { '0': [PCR0], '8': [OTHER48] } },
    violations: [['PCR_NOT_ALLOWED', 'pcrs.8']],
  },
  {
    name: 'pcrs: denies claims missing a PCR the policy lists',
    claims: nitro(),
    policy: { pcrs: { '16': [OTHER48] } },
    violations: [['PCR_MISSING', 'pcrs.16']],
  },
  // minTcb
  {
    name: 'minTcb: reported TCB equal to the minimum',
    claims: snp(),
    policy: { minTcb: TCB },
    violations: null,
  },
  {
    name: 'minTcb: Turin fmc at the minimum',
    claims: turin(),
    policy: { minTcb: { fmc: 1, bootloader: 4, tee: 0, snp: 22, microcode: 80 } },
    violations: null,
  },
  ...(['bootloader', 'tee', 'snp', 'microcode'] as const).map(
    (component): Case => ({
      name: `minTcb: denies reported TCB ${component} below the minimum`,
      claims: snp(),
      policy: { minTcb: { ...TCB, [component]: TCB[component] + 1 } },
      violations: [['TCB_TOO_LOW', `reportedTcb.${component}`]],
    }),
  ),
  {
    name: 'minTcb: denies Turin fmc below the minimum',
    claims: turin(),
    policy: { minTcb: { fmc: 2, bootloader: 0, tee: 0, snp: 0, microcode: 0 } },
    violations: [['TCB_TOO_LOW', 'reportedTcb.fmc']],
  },
  {
    name: 'minTcb: denies a report without fmc when the policy requires fmc',
    claims: snp(),
    policy: { minTcb: { ...TCB, fmc: 0 } },
    violations: [['TCB_TOO_LOW', 'reportedTcb.fmc']],
  },
  // vmpl
  { name: 'vmpl: VMPL in the list', claims: snp({ vmpl: 2 }), policy: { vmpl: [0, 2] }, violations: null },
  {
    name: 'vmpl: denies a VMPL not in the list',
    claims: snp({ vmpl: 1 }),
    policy: { vmpl: [0] },
    violations: [['VMPL_NOT_ALLOWED', 'vmpl']],
  },
  // signers
  {
    name: 'signers: VLEK allowed',
    claims: snp({ signingKey: 'vlek' }),
    policy: { signers: ['vlek'] },
    violations: null,
  },
  {
    name: 'signers: denies a signing key kind not in the list',
    claims: snp({ signingKey: 'vlek' }),
    policy: { signers: ['vcek'] },
    violations: [['SIGNER_NOT_ALLOWED', 'signingKey']],
  },
  // products
  {
    name: 'products: Genoa allowed',
    claims: snp({ product: 'Genoa' }),
    policy: { products: ['Milan', 'Genoa'] },
    violations: null,
  },
  {
    name: 'products: denies a product not in the list',
    claims: snp({ product: 'Genoa' }),
    policy: { products: ['Milan'] },
    violations: [['PRODUCT_NOT_ALLOWED', 'product']],
  },
  // minGuestSvn
  { name: 'minGuestSvn: SVN at the minimum', claims: snp(), policy: { minGuestSvn: 7 }, violations: null },
  {
    name: 'minGuestSvn: denies a guest SVN below the minimum',
    claims: snp(),
    policy: { minGuestSvn: 8 },
    violations: [['GUEST_SVN_TOO_LOW', 'guestSvn']],
  },
  // hostData
  {
    name: 'hostData: equal (policy hex in uppercase)',
    claims: snp(),
    policy: { hostData: HOST_DATA.toUpperCase() },
    violations: null,
  },
  {
    name: 'hostData: denies a different HOST_DATA',
    claims: snp(),
    policy: { hostData: hx('56', 32) },
    violations: [['HOST_DATA_MISMATCH', 'hostData']],
  },
  // reportData (policy)
  { name: 'reportData: equal', claims: snp(), policy: { reportData: REPORT_DATA }, violations: null },
  {
    name: 'reportData: denies a different REPORT_DATA',
    claims: snp(),
    policy: { reportData: `${hx('44', 63)}45` },
    violations: [['REPORT_DATA_MISMATCH', 'reportData']],
  },
  // Nitro bindings (policy)
  { name: 'nonce: equal', claims: nitro(), policy: { nonce: NONCE }, violations: null },
  {
    name: 'nonce: denies a different nonce',
    claims: nitro(),
    policy: { nonce: hx('12', 32) },
    violations: [['NONCE_MISMATCH', 'nonce']],
  },
  {
    name: 'nonce: denies claims without a nonce when the policy requires one',
    claims: nitro({ nonce: null }),
    policy: { nonce: NONCE },
    violations: [['NONCE_MISMATCH', 'nonce']],
  },
  {
    name: 'nonce: denies a nonce of another length (prefix of the required value)',
    claims: nitro({ nonce: hx('11', 16) }),
    policy: { nonce: NONCE },
    violations: [['NONCE_MISMATCH', 'nonce']],
  },
  { name: 'userData: equal', claims: nitro(), policy: { userData: USER_DATA }, violations: null },
  {
    name: 'userData: denies different user data',
    claims: nitro(),
    policy: { userData: hx('23', 48) },
    violations: [['USER_DATA_MISMATCH', 'userData']],
  },
  { name: 'publicKey: equal', claims: nitro(), policy: { publicKey: PUBLIC_KEY }, violations: null },
  {
    name: 'publicKey: denies a different public key',
    claims: nitro({ publicKey: null }),
    policy: { publicKey: PUBLIC_KEY },
    violations: [['PUBLIC_KEY_MISMATCH', 'publicKey']],
  },
  // per-request bindings (expect)
  {
    name: 'expect.nonce: equal (bytes)',
    claims: nitro(),
    policy: {},
    expect: { nonce: Buffer.from(NONCE, 'hex') },
    violations: null,
  },
  {
    name: 'expect.nonce: denies a nonce other than the request nonce',
    claims: nitro(),
    policy: {},
    expect: { nonce: hx('99', 32) },
    violations: [['NONCE_MISMATCH', 'nonce']],
  },
  {
    name: 'expect.userData: equal (hex)',
    claims: nitro(),
    policy: {},
    expect: { userData: USER_DATA },
    violations: null,
  },
  {
    name: 'expect.userData: denies other user data',
    claims: nitro(),
    policy: {},
    expect: { userData: hx('22', 47) },
    violations: [['USER_DATA_MISMATCH', 'userData']],
  },
  {
    name: 'expect.publicKey: equal',
    claims: nitro(),
    policy: {},
    expect: { publicKey: PUBLIC_KEY },
    violations: null,
  },
  {
    name: 'expect.publicKey: denies another public key',
    claims: nitro(),
    policy: {},
    expect: { publicKey: hx('34', 91) },
    violations: [['PUBLIC_KEY_MISMATCH', 'publicKey']],
  },
  {
    name: 'expect.reportData: equal (uppercase hex)',
    claims: snp(),
    policy: {},
    expect: { reportData: REPORT_DATA.toUpperCase() },
    violations: null,
  },
  {
    name: 'expect.reportData: denies other report data',
    claims: snp(),
    policy: {},
    expect: { reportData: hx('00', 64) },
    violations: [['REPORT_DATA_MISMATCH', 'reportData']],
  },
  // freshness
  {
    name: 'maxAgeSeconds: 30 s old, limit 60',
    claims: nitro(),
    policy: { maxAgeSeconds: 60 },
    violations: null,
  },
  {
    name: 'maxAgeSeconds: denies evidence older than maxAgeSeconds',
    claims: nitro({ timestamp: at(-61) }),
    policy: { maxAgeSeconds: 60 },
    violations: [['EVIDENCE_TOO_OLD', 'timestamp']],
  },
  {
    name: 'maxAgeSeconds: the strictest of top level and nitro section applies',
    claims: nitro({ timestamp: at(-30) }),
    policy: { maxAgeSeconds: 300, nitro: { maxAgeSeconds: 10 } },
    violations: [['EVIDENCE_TOO_OLD', 'timestamp']],
  },
  {
    name: 'clockSkewSeconds: 59 s in the future is within the default skew',
    claims: nitro({ timestamp: at(DEFAULT_CLOCK_SKEW_SECONDS - 1) }),
    policy: { maxAgeSeconds: 60 },
    violations: null,
  },
  {
    name: 'clockSkewSeconds: denies evidence from the future beyond the skew',
    claims: nitro({ timestamp: at(DEFAULT_CLOCK_SKEW_SECONDS + 1) }),
    policy: { maxAgeSeconds: 60 },
    violations: [['EVIDENCE_FROM_FUTURE', 'timestamp']],
  },
  {
    name: 'clockSkewSeconds: denies future evidence even without maxAgeSeconds',
    claims: nitro({ timestamp: at(2) }),
    policy: { clockSkewSeconds: 1 },
    violations: [['EVIDENCE_FROM_FUTURE', 'timestamp']],
  },
  {
    name: 'maxAgeSeconds: denies SEV-SNP claims (no timestamp) under an unscoped maxAgeSeconds',
    claims: snp(),
    policy: { maxAgeSeconds: 300 },
    violations: [['EVIDENCE_AGE_UNKNOWN', 'timestamp']],
  },
  {
    name: 'maxAgeSeconds: denies Nitro claims with an unparseable timestamp',
    claims: nitro({ timestamp: 'yesterday' }),
    policy: { maxAgeSeconds: 300 },
    violations: [['EVIDENCE_AGE_UNKNOWN', 'timestamp']],
  },
  {
    name: 'maxAgeSeconds: scoped to nitro, it does not apply to SEV-SNP claims',
    claims: snp(),
    policy: { nitro: { maxAgeSeconds: 300 } },
    violations: null,
  },
  // scoping
  {
    name: 'scope: an unscoped Nitro-only condition (pcrs) is a violation for SEV-SNP claims',
    claims: snp(),
    policy: { pcrs: { '0': [PCR0] } },
    violations: [['CONDITION_NOT_APPLICABLE', 'pcrs']],
  },
  {
    name: 'scope: an unscoped SEV-SNP-only condition (minTcb) is a violation for Nitro claims',
    claims: nitro(),
    policy: { minTcb: TCB, vmpl: [0] },
    violations: [
      ['CONDITION_NOT_APPLICABLE', 'reportedTcb'],
      ['CONDITION_NOT_APPLICABLE', 'vmpl'],
    ],
  },
  {
    name: 'scope: an expected binding of the other TEE type is a violation',
    claims: nitro(),
    policy: {},
    expect: { reportData: REPORT_DATA },
    violations: [['CONDITION_NOT_APPLICABLE', 'reportData']],
  },
  {
    name: 'scope: sections apply to their own type only (mixed-TEE policy, Nitro claims)',
    claims: nitro(),
    policy: {
      nitro: { measurements: [PCR0], pcrs: { '8': [PCR8] } },
      'sev-snp': { measurements: [SNP_MEASUREMENT], minTcb: TCB, vmpl: [0] },
    },
    violations: null,
  },
  {
    name: 'scope: sections apply to their own type only (mixed-TEE policy, SNP claims)',
    claims: snp(),
    policy: {
      nitro: { measurements: [PCR0], pcrs: { '8': [PCR8] } },
      'sev-snp': { measurements: [SNP_MEASUREMENT], minTcb: TCB, vmpl: [0] },
    },
    violations: null,
  },
  {
    name: 'scope: a section condition is enforced on its type',
    claims: snp(),
    policy: { nitro: { measurements: [PCR0] }, 'sev-snp': { measurements: [OTHER48] } },
    violations: [['MEASUREMENT_NOT_ALLOWED', 'measurement']],
  },
  {
    name: 'scope: top-level and section conditions both apply',
    claims: nitro(),
    policy: { measurements: [PCR0], nitro: { measurements: [OTHER48] } },
    violations: [['MEASUREMENT_NOT_ALLOWED', 'measurement']],
  },
];

describe('evaluate: condition matrix', () => {
  for (const c of MATRIX) {
    it(c.name, () => {
      const decision = run(c.claims, c.policy, c.expect);
      if (c.violations === null) {
        expect(decision).toEqual({ allowed: true, violations: [] });
      } else {
        expect(decision.allowed).toBe(false);
        expect(summary(decision)).toEqual(c.violations);
        for (const v of decision.violations) expect(v.message.length).toBeGreaterThan(10);
      }
    });
  }

  it('covers every violation code with at least one failing case', () => {
    const seen = new Set(MATRIX.flatMap((c) => (c.violations ?? []).map(([code]) => code)));
    expect([...seen].sort()).toEqual(Object.keys(POLICY_VIOLATION_CODES).sort());
  });
});

describe('evaluate: violations', () => {
  it('lists every violation, in the documented order, not only the first', () => {
    const claims = snp({
      debug: true,
      simulated: true,
      measurement: OTHER48,
      vmpl: 3,
      reportedTcb: { ...TCB, snp: 1, microcode: 1 },
    });
    const decision = run(
      claims,
      {
        types: ['nitro', 'sev-snp'],
        maxAgeSeconds: 60,
        measurements: [SNP_MEASUREMENT],
        pcrs: { '0': [PCR0] },
        'sev-snp': { minTcb: TCB, vmpl: [0], hostData: hx('00', 32) },
      },
      { reportData: hx('00', 64) },
    );
    expect(summary(decision)).toEqual([
      ['SIMULATED_NOT_ALLOWED', 'simulated'],
      ['DEBUG_NOT_ALLOWED', 'debug'],
      ['EVIDENCE_AGE_UNKNOWN', 'timestamp'],
      ['MEASUREMENT_NOT_ALLOWED', 'measurement'],
      ['CONDITION_NOT_APPLICABLE', 'pcrs'],
      ['TCB_TOO_LOW', 'reportedTcb.snp'],
      ['TCB_TOO_LOW', 'reportedTcb.microcode'],
      ['VMPL_NOT_ALLOWED', 'vmpl'],
      ['HOST_DATA_MISMATCH', 'hostData'],
      ['REPORT_DATA_MISMATCH', 'reportData'],
    ]);
    expect(decision.violations.map((v) => v.condition)).toEqual([
      '$.allowSimulated',
      '$.allowDebug',
      '$.maxAgeSeconds',
      '$.measurements',
      '$.pcrs',
      '$["sev-snp"].minTcb.snp',
      '$["sev-snp"].minTcb.microcode',
      '$["sev-snp"].vmpl',
      '$["sev-snp"].hostData',
      'expect.reportData',
    ]);
  });

  it('messages give expected and actual values for public fields', () => {
    const [m, t] = run(snp({ measurement: OTHER48, reportedTcb: { ...TCB, snp: 3 } }), {
      measurements: [SNP_MEASUREMENT],
      minTcb: TCB,
    }).violations;
    expect(m?.message).toContain(OTHER48);
    expect(m?.message).toContain(SNP_MEASUREMENT.slice(0, 16));
    expect(t?.message).toBe('reported TCB snp is 3, policy minimum is 22');
  });

  it('binding mismatch messages give sizes only, never the values', () => {
    const secretish = hx('ab', 32);
    const decision = run(nitro({ nonce: hx('cd', 32) }), { nonce: secretish }, { userData: hx('ef', 48) });
    expect(summary(decision)).toEqual([
      ['NONCE_MISMATCH', 'nonce'],
      ['USER_DATA_MISMATCH', 'userData'],
    ]);
    for (const v of decision.violations) {
      expect(v.message).not.toMatch(/abab|cdcd|efef|2222/);
      expect(v.message).toMatch(/bytes/);
    }
  });

  it('a Nitro PCR map without the PCR, or claims without the field, fail closed', () => {
    const claims = { ...nitro(), pcrs: undefined } as unknown as NitroClaims;
    expect(summary(run(claims, { pcrs: { '0': [PCR0] } }))).toEqual([['PCR_MISSING', 'pcrs.0']]);
  });

  it('claims of an unknown TEE type are denied, with every type-specific condition not applicable', () => {
    const claims = { ...nitro(), type: 'tdx' } as unknown as NitroClaims;
    expect(summary(run(claims, { pcrs: { '0': [PCR0] }, vmpl: [0] }))).toEqual([
      ['TYPE_NOT_ALLOWED', 'type'],
      ['CONDITION_NOT_APPLICABLE', 'pcrs'],
      ['CONDITION_NOT_APPLICABLE', 'vmpl'],
    ]);
  });

  it('a non-boolean debug or simulated flag counts as true (fail closed)', () => {
    const claims = { ...nitro(), debug: 'no', simulated: undefined } as unknown as NitroClaims;
    expect(summary(run(claims, {}))).toEqual([
      ['SIMULATED_NOT_ALLOWED', 'simulated'],
      ['DEBUG_NOT_ALLOWED', 'debug'],
    ]);
  });

  it('a single-type policy with top-level conditions, against the other type (docs example)', () => {
    const doc = {
      types: ['nitro'],
      pcrs: { '0': [PCR0], '1': [PCR1], '2': [PCR2] },
      userData: USER_DATA,
      maxAgeSeconds: 60,
      clockSkewSeconds: 5,
    };
    expect(run(nitro(), doc).allowed).toBe(true);
    expect(summary(run(snp(), doc))).toEqual([
      ['TYPE_NOT_ALLOWED', 'type'],
      ['EVIDENCE_AGE_UNKNOWN', 'timestamp'],
      ['CONDITION_NOT_APPLICABLE', 'pcrs'],
      ['CONDITION_NOT_APPLICABLE', 'userData'],
    ]);
  });

  it('an empty policy (version only) accepts authentic production claims of either type', () => {
    expect(run(nitro(), {}).allowed).toBe(true);
    expect(run(snp(), {}).allowed).toBe(true);
  });
});

describe('enforce', () => {
  const policy = parsePolicy({ version: 1, measurements: [PCR0], nitro: { maxAgeSeconds: 60 } });

  it('returns the same claims object when allowed', () => {
    const claims = nitro();
    expect(enforce(claims, policy, { now: NOW })).toBe(claims);
  });

  it('throws POLICY_VIOLATION listing every violation in the message and in details', () => {
    const claims = nitro({ debug: true, measurement: OTHER48, timestamp: at(-600) });
    const decision = evaluate(claims, policy, { now: NOW });
    const err = codeOf(() => enforce(claims, policy, { now: NOW }));
    expect(err.code).toBe('POLICY_VIOLATION');
    expect(err.message).toMatch(/3 violation/);
    for (const code of ['DEBUG_NOT_ALLOWED', 'EVIDENCE_TOO_OLD', 'MEASUREMENT_NOT_ALLOWED']) {
      expect(err.message).toContain(code);
    }
    expect(err.details).toEqual({ violations: decision.violations });
  });
});

describe('evaluate: options and inputs', () => {
  const policy = parsePolicy({ version: 1 });

  it('requires `now` as a valid Date (the library never reads the clock)', () => {
    const missing = codeOf(() => evaluate(nitro(), policy, {} as EvaluateOptions));
    expect(missing.code).toBe('CONFIG_INVALID');
    expect(missing.message).toMatch(/now/);
    expect(codeOf(() => evaluate(nitro(), policy, { now: new Date('x') })).code).toBe('CONFIG_INVALID');
    expect(
      codeOf(() => evaluate(nitro(), policy, { now: Date.now() } as unknown as EvaluateOptions)).code,
    ).toBe('CONFIG_INVALID');
  });

  it('rejects an unknown expected binding (a typo must not skip a check)', () => {
    const err = codeOf(() =>
      evaluate(nitro(), policy, { now: NOW, expect: { nounce: NONCE } as ExpectedBindings }),
    );
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toMatch(/expect\.nounce/);
  });

  it('rejects an expected binding of the wrong size or encoding', () => {
    expect(
      codeOf(() => evaluate(snp(), policy, { now: NOW, expect: { reportData: hx('44', 32) } })).message,
    ).toMatch(/64 bytes/);
    expect(
      codeOf(() => evaluate(nitro(), policy, { now: NOW, expect: { nonce: 'AAAA+w==' } })).message,
    ).toMatch(/base64/);
    expect(codeOf(() => evaluate(nitro(), policy, { now: NOW, expect: { nonce: '' } })).code).toBe(
      'CONFIG_INVALID',
    );
    const notHex = { nonce: 42 } as unknown as ExpectedBindings;
    expect(codeOf(() => evaluate(nitro(), policy, { now: NOW, expect: notHex })).code).toBe('CONFIG_INVALID');
  });

  it('rejects a policy object that did not come from parsePolicy', () => {
    const forged = { ...policy, allowDebug: true } as AttestationPolicy;
    const err = codeOf(() => evaluate(nitro({ debug: true }), forged, { now: NOW }));
    expect(err.code).toBe('POLICY_INVALID');
    expect(err.message).toMatch(/parsePolicy/);
    expect(isParsedPolicy(forged)).toBe(false);
    expect(isParsedPolicy(policy)).toBe(true);
  });

  it('rejects claims that are not an object', () => {
    expect(codeOf(() => evaluate(null as unknown as NitroClaims, policy, { now: NOW })).code).toBe(
      'CONFIG_INVALID',
    );
  });
});

// ------------------------------------------------------------------------------------------------------------
// parsePolicy
// ------------------------------------------------------------------------------------------------------------

describe('parsePolicy: accepted documents', () => {
  it('fills in defaults: all types, debug and simulated denied, 60 s skew', () => {
    expect(parsePolicy({ version: 1 })).toEqual({
      version: 1,
      types: ['nitro', 'sev-snp'],
      allowDebug: false,
      allowSimulated: false,
      clockSkewSeconds: 60,
    });
  });

  it('normalises hex to lowercase and removes duplicate list entries', () => {
    const p = parsePolicy({ version: 1, measurements: [PCR0.toUpperCase(), PCR0], vmpl: [0, 0, 1] });
    expect(p.measurements).toEqual([PCR0]);
    expect(p.vmpl).toEqual([0, 1]);
  });

  it('returns a deeply frozen policy', () => {
    const p = parsePolicy({
      version: 1,
      measurements: [PCR0],
      pcrs: { '0': [PCR0] },
      'sev-snp': { minTcb: TCB, vmpl: [0] },
    });
    expect(Object.isFrozen(p)).toBe(true);
    expect(Object.isFrozen(p.measurements)).toBe(true);
    expect(Object.isFrozen(p.pcrs)).toBe(true);
    expect(Object.isFrozen(p.pcrs?.['0'])).toBe(true);
    expect(Object.isFrozen(p['sev-snp'])).toBe(true);
    expect(Object.isFrozen(p['sev-snp']?.minTcb)).toBe(true);
    expect(Object.isFrozen(p.types)).toBe(true);
  });

  it('ignores inherited properties (a polluted Object.prototype cannot set allowDebug)', () => {
    const proto = Object.prototype as Record<string, unknown>;
    proto.allowDebug = true;
    try {
      const p = parsePolicy({ version: 1 });
      expect(Object.hasOwn(p, 'allowDebug') && p.allowDebug).toBe(false);
      expect(summary(evaluate(nitro({ debug: true }), p, { now: NOW }))).toEqual([
        ['DEBUG_NOT_ALLOWED', 'debug'],
      ]);
    } finally {
      delete proto.allowDebug;
    }
  });

  it('reads the examples of docs/attestation-policy.md', () => {
    const production = {
      version: 1,
      types: ['nitro', 'sev-snp'],
      nitro: {
        measurements: [PCR0],
        pcrs: { '1': [PCR1], '2': [PCR2], '8': [PCR8] },
        maxAgeSeconds: 300,
      },
      'sev-snp': {
        measurements: [SNP_MEASUREMENT],
        minTcb: { bootloader: 4, tee: 0, snp: 22, microcode: 213 },
        vmpl: [0],
        signers: ['vcek'],
        products: ['Milan', 'Genoa'],
        minGuestSvn: 1,
        hostData: HOST_DATA,
      },
    };
    const p = parsePolicy(production);
    expect(evaluate(nitro(), p, { now: NOW, expect: { nonce: NONCE } }).allowed).toBe(true);
    expect(evaluate(snp(), p, { now: NOW, expect: { reportData: REPORT_DATA } }).allowed).toBe(true);
  });
});

interface Negative {
  readonly name: string;
  readonly doc: unknown;
  readonly path: string;
  readonly message?: RegExp;
}

const big = (n: number) => Array.from({ length: n }, (_, i) => i.toString(16).padStart(96, '0'));

const NEGATIVE: readonly Negative[] = [
  { name: 'not an object (array)', doc: [], path: '$', message: /must be an object, got an array/ },
  {
    name: 'not an object (JSON text)',
    doc: '{"version":1}',
    path: '$',
    message: /parse the JSON text first/,
  },
  { name: 'not an object (null)', doc: null, path: '$' },
  { name: 'version missing', doc: {}, path: '$.version', message: /required/ },
  {
    name: 'unknown version',
    doc: { version: 2 },
    path: '$.version',
    message: /unsupported policy version 2/,
  },
  { name: 'version as a string', doc: { version: '1' }, path: '$.version', message: /unsupported/ },
  { name: 'unknown version wins over unknown keys', doc: { version: 2, newKey: true }, path: '$.version' },
  { name: 'unknown top-level key', doc: { version: 1, measurement: [PCR0] }, path: '$.measurement' },
  {
    name: 'unknown key: __proto__',
    doc: JSON.parse('{"version":1,"__proto__":{"allowDebug":true}}'),
    path: '$.__proto__',
  },
  {
    name: 'unknown key in minTcb',
    doc: { version: 1, minTcb: { ...TCB, microCode: 1 } },
    path: '$.minTcb.microCode',
  },
  {
    name: 'SNP key in the nitro section',
    doc: { version: 1, nitro: { minTcb: TCB } },
    path: '$.nitro.minTcb',
  },
  {
    name: 'maxAgeSeconds in the sev-snp section',
    doc: { version: 1, 'sev-snp': { maxAgeSeconds: 60 } },
    path: '$["sev-snp"].maxAgeSeconds',
  },
  { name: 'empty section', doc: { version: 1, nitro: {} }, path: '$.nitro', message: /empty/ },
  { name: 'section is not an object', doc: { version: 1, nitro: [] }, path: '$.nitro' },
  {
    name: 'section for a type not allowed',
    doc: { version: 1, types: ['nitro'], 'sev-snp': { vmpl: [0] } },
    path: '$["sev-snp"]',
  },
  {
    name: 'allowDebug as a string',
    doc: { version: 1, allowDebug: 'false' },
    path: '$.allowDebug',
    message: /boolean/,
  },
  { name: 'allowSimulated as a number', doc: { version: 1, allowSimulated: 0 }, path: '$.allowSimulated' },
  { name: 'types as a string', doc: { version: 1, types: 'nitro' }, path: '$.types', message: /array/ },
  {
    name: 'types: unknown TEE',
    doc: { version: 1, types: ['nitro', 'tdx'] },
    path: '$.types[1]',
    message: /tdx/,
  },
  { name: 'types: empty', doc: { version: 1, types: [] }, path: '$.types', message: /empty/ },
  {
    name: 'measurements: not hex',
    doc: { version: 1, measurements: ['zz'.repeat(48)] },
    path: '$.measurements[0]',
  },
  {
    name: 'measurements: odd length',
    doc: { version: 1, measurements: [`${PCR0}a`] },
    path: '$.measurements[0]',
    message: /even/,
  },
  {
    name: 'measurements: SHA-256 size',
    doc: { version: 1, measurements: [PCR0, hx('ab', 32)] },
    path: '$.measurements[1]',
    message: /48 bytes/,
  },
  {
    name: 'measurements: 0x prefix',
    doc: { version: 1, measurements: [`0x${PCR0}`] },
    path: '$.measurements[0]',
    message: /0x/,
  },
  {
    name: 'measurements: base64',
    doc: { version: 1, measurements: [Buffer.from(PCR0, 'hex').toString('base64')] },
    path: '$.measurements[0]',
    message: /base64/,
  },
  { name: 'measurements: a number', doc: { version: 1, measurements: [1] }, path: '$.measurements[0]' },
  {
    name: 'measurements: too many entries',
    doc: { version: 1, measurements: big(MAX_POLICY_LIST_ENTRIES + 1) },
    path: '$.measurements',
    message: /at most/,
  },
  { name: 'pcrs: index 32', doc: { version: 1, pcrs: { '32': [PCR0] } }, path: '$.pcrs["32"]' },
  {
    name: 'pcrs: index with a leading zero',
    doc: { version: 1, pcrs: { '08': [PCR8] } },
    path: '$.pcrs["08"]',
  },
  { name: 'pcrs: index not a number', doc: { version: 1, pcrs: { PCR0: [PCR0] } }, path: '$.pcrs.PCR0' },
  { name: 'pcrs: value not a list', doc: { version: 1, pcrs: { '0': PCR0 } }, path: '$.pcrs["0"]' },
  { name: 'pcrs: bad value', doc: { version: 1, pcrs: { '8': [PCR8, 'xyz'] } }, path: '$.pcrs["8"][1]' },
  { name: 'pcrs: empty', doc: { version: 1, pcrs: {} }, path: '$.pcrs' },
  {
    name: 'minTcb: missing component',
    doc: { version: 1, minTcb: { bootloader: 1, tee: 0, microcode: 1 } },
    path: '$.minTcb.snp',
  },
  {
    name: 'minTcb: component above 255',
    doc: { version: 1, minTcb: { ...TCB, microcode: 256 } },
    path: '$.minTcb.microcode',
  },
  { name: 'minTcb: fmc negative', doc: { version: 1, minTcb: { ...TCB, fmc: -1 } }, path: '$.minTcb.fmc' },
  {
    name: 'minTcb: component as a string',
    doc: { version: 1, minTcb: { ...TCB, tee: '0' } },
    path: '$.minTcb.tee',
  },
  { name: 'vmpl: 4', doc: { version: 1, vmpl: [0, 4] }, path: '$.vmpl[1]', message: /between 0 and 3/ },
  { name: 'vmpl: not an integer', doc: { version: 1, vmpl: [0.5] }, path: '$.vmpl[0]', message: /integer/ },
  { name: 'signers: uppercase', doc: { version: 1, signers: ['VCEK'] }, path: '$.signers[0]' },
  { name: 'products: lowercase', doc: { version: 1, products: ['milan'] }, path: '$.products[0]' },
  { name: 'minGuestSvn: negative', doc: { version: 1, minGuestSvn: -1 }, path: '$.minGuestSvn' },
  { name: 'minGuestSvn: above 2^32-1', doc: { version: 1, minGuestSvn: 2 ** 32 }, path: '$.minGuestSvn' },
  {
    name: 'hostData: 64 bytes',
    doc: { version: 1, hostData: hx('55', 64) },
    path: '$.hostData',
    message: /32 bytes/,
  },
  {
    name: 'reportData: 32 bytes',
    doc: { version: 1, 'sev-snp': { reportData: hx('44', 32) } },
    path: '$["sev-snp"].reportData',
    message: /64 bytes/,
  },
  { name: 'nonce: empty', doc: { version: 1, nonce: '' }, path: '$.nonce', message: /at least 1/ },
  { name: 'userData: above 1024 bytes', doc: { version: 1, userData: hx('22', 1025) }, path: '$.userData' },
  { name: 'publicKey: null', doc: { version: 1, nitro: { publicKey: null } }, path: '$.nitro.publicKey' },
  { name: 'maxAgeSeconds: 0', doc: { version: 1, maxAgeSeconds: 0 }, path: '$.maxAgeSeconds' },
  { name: 'maxAgeSeconds: fractional', doc: { version: 1, maxAgeSeconds: 1.5 }, path: '$.maxAgeSeconds' },
  {
    name: 'clockSkewSeconds: above the maximum',
    doc: { version: 1, clockSkewSeconds: 3601 },
    path: '$.clockSkewSeconds',
  },
  {
    name: 'rootFingerprints: SHA-384 size',
    doc: { version: 1, rootFingerprints: [PCR0] },
    path: '$.rootFingerprints[0]',
    message: /32 bytes/,
  },
  {
    name: 'a value of undefined (from JS)',
    doc: { version: 1, allowDebug: undefined },
    path: '$.allowDebug',
  },
  { name: 'a Map instead of an object', doc: new Map([['version', 1]]), path: '$' },
];

describe('parsePolicy: rejected documents (POLICY_INVALID with the JSON path)', () => {
  for (const n of NEGATIVE) {
    it(n.name, () => {
      const err = codeOf(() => parsePolicy(n.doc));
      expect(err.code).toBe('POLICY_INVALID');
      expect(err.details).toEqual({ path: n.path });
      expect(err.message).toContain(`attestation policy ${n.path}:`);
      if (n.message !== undefined) expect(err.message).toMatch(n.message);
    });
  }
});

// ------------------------------------------------------------------------------------------------------------
// Properties
// ------------------------------------------------------------------------------------------------------------

const hexOf = (bytes: number) =>
  fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((b) => Buffer.from(b).toString('hex'));
const list = <T>(arb: fc.Arbitrary<T>) => fc.array(arb, { minLength: 1, maxLength: 3 });
const tcbArb = fc.record(
  {
    bootloader: fc.integer({ min: 0, max: 255 }),
    tee: fc.integer({ min: 0, max: 255 }),
    snp: fc.integer({ min: 0, max: 255 }),
    microcode: fc.integer({ min: 0, max: 255 }),
    fmc: fc.integer({ min: 0, max: 255 }),
  },
  { requiredKeys: ['bootloader', 'tee', 'snp', 'microcode'] },
);
const nitroSection = {
  measurements: list(hexOf(48)),
  maxAgeSeconds: fc.integer({ min: 1, max: 10_000 }),
  pcrs: fc.dictionary(fc.integer({ min: 0, max: 31 }).map(String), list(hexOf(48)), {
    minKeys: 1,
    maxKeys: 3,
  }),
  nonce: hexOf(32),
  userData: hexOf(48),
  publicKey: hexOf(65),
};
const snpSection = {
  measurements: list(hexOf(48)),
  minTcb: tcbArb,
  vmpl: list(fc.integer({ min: 0, max: 3 })),
  signers: list(fc.constantFrom('vcek', 'vlek')),
  products: list(fc.constantFrom('Milan', 'Genoa', 'Turin')),
  minGuestSvn: fc.integer({ min: 0, max: 20 }),
  hostData: hexOf(32),
  reportData: hexOf(64),
};
/** Valid policy documents (both sections, so `types` keeps both TEEs). */
const validDoc = fc.record(
  {
    version: fc.constant(1),
    types: fc.constant(['nitro', 'sev-snp']),
    allowDebug: fc.boolean(),
    allowSimulated: fc.boolean(),
    clockSkewSeconds: fc.integer({ min: 0, max: 3600 }),
    rootFingerprints: list(hexOf(32)),
    measurements: list(hexOf(48)),
    maxAgeSeconds: fc.integer({ min: 1, max: 10_000 }),
    nitro: fc.record(nitroSection, { requiredKeys: ['measurements'] }),
    'sev-snp': fc.record(snpSection, { requiredKeys: ['vmpl'] }),
  },
  { requiredKeys: ['version'] },
);

function onlyPolicyInvalid(doc: unknown): void {
  try {
    const p = parsePolicy(doc);
    expect(isParsedPolicy(p)).toBe(true);
  } catch (err) {
    if (!(err instanceof EkmsError) || err.code !== 'POLICY_INVALID') throw err;
    expect(String((err.details as { path?: unknown }).path)).toMatch(/^\$/);
  }
}

describe('parsePolicy: properties', () => {
  it('never throws anything but POLICY_INVALID on random JSON values', () => {
    fc.assert(fc.property(fc.jsonValue(), onlyPolicyInvalid), { numRuns: runs(2000) });
  });

  it('never throws anything but POLICY_INVALID on random JavaScript values', () => {
    fc.assert(
      fc.property(fc.anything({ withMap: true, withSet: true, withNullPrototype: true }), onlyPolicyInvalid),
      {
        numRuns: runs(1000),
      },
    );
  });

  it('never throws anything but POLICY_INVALID when one key of a valid document gets a random value', () => {
    const keys = [
      'version',
      ...Object.keys(nitroSection),
      ...Object.keys(snpSection),
      'types',
      'allowDebug',
      'nitro',
    ];
    fc.assert(
      fc.property(
        validDoc,
        fc.constantFrom(...keys, 'extra'),
        fc.jsonValue(),
        fc.boolean(),
        (doc, key, value, inSection) => {
          const mutated: Record<string, unknown> = inSection
            ? { ...doc, nitro: { ...(doc.nitro ?? {}), [key]: value } }
            : { ...doc, [key]: value };
          onlyPolicyInvalid(mutated);
        },
      ),
      { numRuns: runs(1000) },
    );
  });

  it('accepts every valid document and is idempotent through JSON', () => {
    fc.assert(
      fc.property(validDoc, (doc) => {
        const p = parsePolicy(doc);
        expect(parsePolicy(JSON.parse(JSON.stringify(p)))).toEqual(p);
      }),
      { numRuns: runs(300) },
    );
  });

  it('evaluate never throws on parsed policies, and allowed ⇔ no violations', () => {
    fc.assert(
      fc.property(validDoc, fc.boolean(), (doc, useNitro) => {
        const decision = evaluate(useNitro ? nitro() : snp(), parsePolicy(doc), { now: NOW });
        expect(decision.allowed).toBe(decision.violations.length === 0);
        for (const v of decision.violations) expect(Object.keys(POLICY_VIOLATION_CODES)).toContain(v.code);
      }),
      { numRuns: runs(300) },
    );
  });
});

describe('violation codes', () => {
  it('are registered error codes with a one-line summary', () => {
    const registry = registeredErrorCodes();
    for (const code of Object.keys(POLICY_VIOLATION_CODES)) {
      expect(registry.get(code)?.summary).toMatch(/^[^\n]+\.$/);
    }
  });
});
