/**
 * Adversarial review of attestation/policy.ts: places where a mismatch could slip through. No defect
 * found; these pin the correct behaviour at the edges an attacker would probe: prefix matches of
 * allow-lists and bindings, case normalisation, component-wise TCB comparison, per-request `expect`
 * bindings that must never be skipped, and conditions that cannot apply.
 */
import { describe, expect, it } from 'vitest';
import type { NitroClaims, SnpClaims } from '../../attestation/claims.js';
import { evaluate, parsePolicy } from '../../attestation/policy.js';
import { ConfigError } from '../../shared/errors.js';

const NOW = new Date('2026-02-01T00:00:00.000Z');
const hx = (byte: string, n: number): string => byte.repeat(n);
const TCB = { bootloader: 4, tee: 0, snp: 22, microcode: 213 } as const;

const nitro = (over: Partial<NitroClaims> = {}): NitroClaims => ({
  type: 'nitro',
  debug: false,
  timestamp: new Date(NOW.getTime() - 10_000).toISOString(),
  measurement: hx('a0', 48),
  rootFingerprint: hx('0f', 32),
  simulated: false,
  moduleId: 'i-0123456789abcdef0-enc0123456789abcdef',
  pcrs: { '0': hx('a0', 48), '1': hx('a1', 48), '2': hx('a2', 48) },
  userData: hx('22', 32),
  nonce: hx('11', 32),
  publicKey: null,
  ...over,
});

const snp = (over: Partial<SnpClaims> = {}): SnpClaims => ({
  type: 'sev-snp',
  debug: false,
  timestamp: null,
  measurement: hx('5a', 48),
  rootFingerprint: hx('0f', 32),
  simulated: false,
  version: 3,
  product: 'Milan',
  reportData: hx('44', 64),
  hostData: hx('55', 32),
  vmpl: 0,
  policy: '0x30000',
  chipId: hx('c1', 64),
  signingKey: 'vcek',
  reportedTcb: TCB,
  currentTcb: TCB,
  committedTcb: TCB,
  launchTcb: TCB,
  guestSvn: 1,
  familyId: hx('00', 16),
  imageId: hx('00', 16),
  idKeyDigest: hx('00', 48),
  authorKeyDigest: hx('00', 48),
  reportId: hx('7e', 32),
  ...over,
});

const codes = (claims: NitroClaims | SnpClaims, doc: object, expect?: Record<string, string>) =>
  evaluate(
    claims,
    parsePolicy({ version: 1, ...doc }),
    expect === undefined ? { now: NOW } : { now: NOW, expect },
  ).violations.map((v) => `${v.code} ${v.field}`);

describe('review: allow-lists and bindings compare whole values', () => {
  it('a 64-byte PCR0 whose first 48 bytes are the allowed measurement is not allowed (MEASUREMENT_NOT_ALLOWED)', () => {
    const allowed = hx('a0', 48);
    const longer = `${allowed}${hx('a0', 16)}`;
    expect(codes(nitro({ measurement: longer, pcrs: { '0': longer } }), { measurements: [allowed] })).toEqual(
      ['MEASUREMENT_NOT_ALLOWED measurement'],
    );
    expect(codes(nitro({ pcrs: { '0': longer } }), { pcrs: { '0': [allowed] } })).toEqual([
      'PCR_NOT_ALLOWED pcrs.0',
    ]);
  });

  it('a claims nonce that extends the expected one is a mismatch (NONCE_MISMATCH), per request or by policy', () => {
    const claims = nitro({ nonce: `${hx('11', 32)}00` });
    expect(codes(claims, {}, { nonce: hx('11', 32) })).toEqual(['NONCE_MISMATCH nonce']);
    expect(codes(claims, { nitro: { nonce: hx('11', 32) } })).toEqual(['NONCE_MISMATCH nonce']);
  });

  it('uppercase policy hex is normalised, so it matches exactly the same bytes and nothing else', () => {
    expect(codes(snp(), { measurements: [hx('5A', 48)] })).toEqual([]);
    expect(codes(snp({ measurement: hx('5b', 48) }), { measurements: [hx('5A', 48)] })).toEqual([
      'MEASUREMENT_NOT_ALLOWED measurement',
    ]);
  });

  it('minTcb compares each component: a higher microcode does not make up for a lower SNP (TCB_TOO_LOW)', () => {
    const claims = snp({ reportedTcb: { bootloader: 9, tee: 9, snp: 21, microcode: 255 } });
    expect(
      codes(claims, { 'sev-snp': { minTcb: { bootloader: 4, tee: 0, snp: 22, microcode: 213 } } }),
    ).toEqual(['TCB_TOO_LOW reportedTcb.snp']);
  });
});

describe('review: expect bindings and inapplicable conditions are never skipped', () => {
  it('an expected reportData against Nitro claims, and an expected nonce against SNP claims, deny (CONDITION_NOT_APPLICABLE)', () => {
    expect(codes(nitro(), {}, { reportData: hx('44', 64) })).toEqual(['CONDITION_NOT_APPLICABLE reportData']);
    expect(codes(snp(), {}, { nonce: hx('11', 32) })).toEqual(['CONDITION_NOT_APPLICABLE nonce']);
  });

  it('an expect key with an undefined value or a typo is a ConfigError (CONFIG_INVALID), not a skipped check', () => {
    const policy = parsePolicy({ version: 1 });
    for (const expectBindings of [{ nonce: undefined }, { reportdata: hx('44', 64) }]) {
      let err: unknown;
      try {
        evaluate(nitro(), policy, { now: NOW, expect: expectBindings as never });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).code).toBe('CONFIG_INVALID');
    }
  });

  it('maxAgeSeconds at the top level denies SNP claims, which carry no timestamp (EVIDENCE_AGE_UNKNOWN)', () => {
    expect(codes(snp(), { maxAgeSeconds: 300 })).toEqual(['EVIDENCE_AGE_UNKNOWN timestamp']);
  });
});
