/**
 * The simulated SEV-SNP attestor: round trips through parseSnpReport and verifySnpReport for Milan and
 * Genoa (TCB layout bootloader, tee, …, snp, microcode) and Turin (fmc first, 8-byte chip id), every report
 * version, a JSON-serialised CA, and rejection under the AMD roots.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { TcbVersion } from '../../attestation/claims.js';
import { AttestationError } from '../../attestation/errors.js';
import {
  AMD_SNP_TRUST_ANCHORS,
  decodeSnpTcb,
  encodeSnpTcb,
  parseSnpReport,
  SNP_OFFSETS,
  SNP_PRODUCT_CPUID,
  SNP_REPORT_SIZE,
  type SnpProduct,
  type SnpReportVersion,
  verifySnpReport,
} from '../../attestation/sev-snp/index.js';
import {
  createSimulatedSnpCa,
  issueSimulatedVek,
  type SimulatedSnpCa,
  simulatedSnpTrustAnchor,
  simulateSnpReport,
} from '../../attestation/simulated/sev-snp.js';
import { EkmsError } from '../../shared/errors.js';

const NOW = new Date('2026-11-28T12:00:00Z');

function expectCode(fn: () => unknown, code: string, message?: RegExp): EkmsError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(EkmsError);
  const err = caught as EkmsError;
  expect(err.code).toBe(code);
  if (message !== undefined) expect(err.message).toMatch(message);
  return err;
}

const cas = new Map<SnpProduct, SimulatedSnpCa>();
const PRODUCTS: readonly SnpProduct[] = ['Milan', 'Genoa', 'Turin'];

beforeAll(async () => {
  const made = await Promise.all(PRODUCTS.map((product) => createSimulatedSnpCa({ now: NOW, product })));
  for (const [i, ca] of made.entries()) cas.set(PRODUCTS[i]!, ca);
});

const caOf = (product: SnpProduct): SimulatedSnpCa => cas.get(product)!;

describe.each(PRODUCTS)('simulated %s', (product) => {
  it.each<SnpReportVersion>([2, 3, 5])(
    'report version %i round-trips through parse and verify',
    (version) => {
      const ca = caOf(product);
      const report = simulateSnpReport(ca, {
        version,
        measurement: 'a1'.repeat(48),
        reportData: 'b2'.repeat(32), // zero-padded to 64 bytes
        hostData: 'c3'.repeat(32),
        vmpl: 1,
        guestSvn: 7,
        debug: version === 5,
      });
      expect(report.length).toBe(SNP_REPORT_SIZE);
      const e = parseSnpReport(report);
      expect(e.version).toBe(version);
      expect(e.signatureAlgo).toBe(1);
      expect(e.cpuid).toEqual(version >= 3 ? SNP_PRODUCT_CPUID[product] : null);
      expect(e.product).toBe(version >= 3 ? product : null);
      expect(e.launchMitVector).toBe(version >= 5 ? 0n : null);
      expect(decodeSnpTcb(e.reportedTcb, product)).toEqual(ca.tcb);

      const c = verifySnpReport(e, { trustAnchors: [simulatedSnpTrustAnchor(ca)], now: NOW, vek: ca.vcek });
      expect(c).toMatchObject({
        type: 'sev-snp',
        product,
        version,
        measurement: 'a1'.repeat(48),
        reportData: 'b2'.repeat(32) + '00'.repeat(32),
        hostData: 'c3'.repeat(32),
        vmpl: 1,
        guestSvn: 7,
        debug: version === 5,
        chipId: ca.chipId,
        signingKey: 'vcek',
        simulated: true,
      });
      expect(c.reportedTcb).toEqual(ca.tcb);
      expect(c.currentTcb).toEqual(ca.tcb);
      expect(c.committedTcb).toEqual(ca.tcb);
      expect(c.launchTcb).toEqual(ca.tcb);
    },
  );

  it('is rejected with only the AMD roots (CERT_ROOT_UNTRUSTED)', () => {
    const ca = caOf(product);
    expectCode(
      () =>
        verifySnpReport(parseSnpReport(simulateSnpReport(ca)), {
          trustAnchors: AMD_SNP_TRUST_ANCHORS,
          now: NOW,
          vek: ca.vcek,
          intermediates: [ca.ask, ca.ark],
        }),
      'CERT_ROOT_UNTRUSTED',
    );
  });

  it('the CA survives JSON and keeps working', () => {
    const ca = JSON.parse(JSON.stringify(caOf(product))) as SimulatedSnpCa;
    expect(ca).toEqual(caOf(product));
    expect(ca.ark).toMatch(/^-----BEGIN CERTIFICATE-----\n/);
    expect(ca.vcekKey).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const c = verifySnpReport(parseSnpReport(simulateSnpReport(ca)), {
      trustAnchors: [simulatedSnpTrustAnchor(ca)],
      now: NOW,
      vek: ca.vcek,
    });
    expect(c.product).toBe(product);
  });
});

describe('Turin layout', () => {
  it('TCB_VERSION is fmc, bootloader, tee, snp, 3 reserved, microcode; CHIP_ID is 8 bytes then zeros', () => {
    const ca = caOf('Turin');
    const tcb: TcbVersion = { fmc: 1, bootloader: 2, tee: 3, snp: 4, microcode: 5 };
    const ca2 = { ...ca, tcb };
    const vek = issueSimulatedVek(ca2, { now: NOW, key: ca.vcekKey });
    const report = simulateSnpReport(ca2, { version: 5 });
    expect([...report.subarray(SNP_OFFSETS.reportedTcb, SNP_OFFSETS.reportedTcb + 8)]).toEqual([
      1, 2, 3, 4, 0, 0, 0, 5,
    ]);
    expect(encodeSnpTcb(tcb, 'Turin')).toBe(0x0500000004030201n);
    expect(encodeSnpTcb({ bootloader: 2, tee: 3, snp: 4, microcode: 5 }, 'Milan')).toBe(0x0504000000000302n);
    expect(report.subarray(SNP_OFFSETS.chipId + 8, SNP_OFFSETS.chipId + 64).every((b) => b === 0)).toBe(true);
    expect(Buffer.from(report.subarray(SNP_OFFSETS.chipId, SNP_OFFSETS.chipId + 8)).toString('hex')).toBe(
      ca.chipId.slice(0, 16),
    );
    const c = verifySnpReport(parseSnpReport(report), {
      trustAnchors: [simulatedSnpTrustAnchor(ca)],
      now: NOW,
      vek: vek.cert,
    });
    expect(c.reportedTcb).toEqual(tcb);
    expect(Object.keys(c.reportedTcb)).toEqual(['fmc', 'bootloader', 'tee', 'snp', 'microcode']);
  });

  for (const component of ['fmc', 'bootloader', 'tee', 'snp', 'microcode'] as const) {
    it(`rejects a Turin VEK whose ${component} SPL differs from REPORTED_TCB (TCB_MISMATCH)`, () => {
      const ca = caOf('Turin');
      const tcb = { ...ca.tcb, [component]: (ca.tcb[component]! + 1) % 256 };
      expectCode(
        () =>
          verifySnpReport(parseSnpReport(simulateSnpReport(ca, { tcb })), {
            trustAnchors: [simulatedSnpTrustAnchor(ca)],
            now: NOW,
            vek: ca.vcek,
          }),
        'TCB_MISMATCH',
        new RegExp(
          `VCEK ${component} SPL is ${ca.tcb[component]} but REPORTED_TCB ${component} is ${tcb[component]}`,
        ),
      );
    });
  }

  it('rejects a Turin VCEK with a 64-byte hwID (CERT_INVALID) and another 8-byte id (CHIP_ID_MISMATCH)', () => {
    const ca = caOf('Turin');
    const trustAnchors = [simulatedSnpTrustAnchor(ca)];
    const report = simulateSnpReport(ca);
    const turinOther = issueSimulatedVek(ca, { now: NOW, key: ca.vcekKey, hwId: '0102030405060708' });
    expectCode(
      () => verifySnpReport(parseSnpReport(report), { trustAnchors, now: NOW, vek: turinOther.cert }),
      'CHIP_ID_MISMATCH',
      /hwID 0102030405060708 differs/,
    );
    const long = issueSimulatedVek(ca, { now: NOW, key: ca.vcekKey, hwId: ca.chipId });
    expectCode(
      () => verifySnpReport(parseSnpReport(report), { trustAnchors, now: NOW, vek: long.cert }),
      'CERT_INVALID',
      /VCEK hwID is 64 bytes, expected 8 bytes for Turin/,
    );
    const milan = caOf('Milan');
    const short = issueSimulatedVek(milan, { now: NOW, key: milan.vcekKey, hwId: milan.chipId.slice(0, 16) });
    expectCode(
      () =>
        verifySnpReport(parseSnpReport(simulateSnpReport(milan)), {
          trustAnchors: [simulatedSnpTrustAnchor(milan)],
          now: NOW,
          vek: short.cert,
        }),
      'CERT_INVALID',
      /VCEK hwID is 8 bytes, expected 64 bytes for Milan/,
    );
  });

  it('needs fmc in a Turin TCB (CONFIG_INVALID)', async () => {
    await expect(
      createSimulatedSnpCa({
        now: NOW,
        product: 'Turin',
        tcb: { bootloader: 1, tee: 1, snp: 1, microcode: 1 },
      }),
    ).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });
});

describe('simulator options', () => {
  it('rejects invalid inputs with typed errors', () => {
    const ca = caOf('Milan');
    expectCode(
      () => simulateSnpReport(ca, { measurement: 'ab' }),
      'CONFIG_INVALID',
      /measurement must be 48 bytes/,
    );
    expectCode(() => simulateSnpReport(ca, { reportData: 'zz' }), 'CONFIG_INVALID', /hex/);
    expectCode(() => simulateSnpReport(ca, { vmpl: 4 }), 'CONFIG_INVALID');
    expectCode(() => simulateSnpReport(ca, { version: 4 as SnpReportVersion }), 'CONFIG_INVALID');
    expectCode(() => simulateSnpReport(ca, { signingKey: 'vlek' }), 'CONFIG_INVALID', /no VLEK/);
    const err = expectCode(
      () => simulateSnpReport(ca, { tcb: { ...ca.tcb, snp: 256 } }),
      'EVIDENCE_FIELD_INVALID',
    );
    expect(err).toBeInstanceOf(AttestationError);
  });

  it('makes a fresh REPORT_ID each time and the same fields otherwise', () => {
    const ca = caOf('Genoa');
    const a = parseSnpReport(simulateSnpReport(ca));
    const b = parseSnpReport(simulateSnpReport(ca));
    expect(Buffer.from(a.reportId).equals(Buffer.from(b.reportId))).toBe(false);
    expect(a.measurement).toEqual(b.measurement);
    expect(a.reportIdMa.every((x) => x === 0xff)).toBe(true);
  });
});
