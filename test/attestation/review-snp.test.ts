/**
 * Adversarial review of attestation/sev-snp.
 *
 * Finding: the "private copies" were `bytes.slice()`, which for a Node Buffer is a view of the caller's
 * memory. A report parsed from a Buffer (what sockets and fs hand out) kept aliasing it: evidence.bytes
 * and every decoded field changed when the caller reused the buffer, and `verifySnpReport(evidence)`
 * then verified whatever the buffer held by then. The same held for a VEK given as a DER Buffer (the
 * cached certificate record aliased it) and for `signSimulatedSnpReport`, which wrote its signature
 * into the caller's Buffer.
 *
 * Finding: VMPL was not range-checked anywhere. ABI 1.58 Table 23: 0..3 for a guest request, 0xFFFFFFFF
 * for a report the host requested (SNP_HV_REPORT_REQ, REPORT_DATA zero-filled), nothing else. Such
 * reports verified and, under a policy without `vmpl`, were accepted as the guest's evidence.
 * `verifySnpReport` now rejects every VMPL above 3.
 *
 * Finding: AMD_SNP_TRUST_ANCHORS and AMD_SNP_ROOTS were mutable at run time (AWS_NITRO_TRUST_ANCHORS is
 * frozen): any module could push a simulated anchor into the process-wide default list. Now frozen.
 *
 * Pins: TCB_VERSION byte layouts (Turin: FMC, BL, TEE, SNP at bytes 0–3, microcode at 7 — as AMD KDS
 * and go-sev-guest decompose it), MASK_CHIP_KEY never bypasses the VCEK hwID binding, the signature
 * covers only 0x000–0x29F and nothing after R ‖ S may be set, an ASK without keyCertSign cannot issue.
 */
import { constants, createPrivateKey, sign } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { Certificate, id_ce_keyUsage, KeyUsage, KeyUsageFlags } from '@peculiar/asn1-x509';
import { beforeAll, describe, expect, it } from 'vitest';
import { AttestationError } from '../../attestation/errors.js';
import { loadCertificate } from '../../attestation/sev-snp/certificate.js';
import {
  AMD_SNP_ROOTS,
  AMD_SNP_TRUST_ANCHORS,
  decodeSnpTcb,
  encodeSnpReport,
  parseSnpReport,
  SNP_OFFSETS,
  SNP_REPORT_SIZE,
  SNP_SIGNED_LENGTH,
  type SnpTrustAnchor,
  SnpVerifierCache,
  verifySnpReport,
} from '../../attestation/sev-snp/index.js';
import {
  createSimulatedSnpCa,
  type SimulatedSnpCa,
  signSimulatedSnpReport,
  simulatedSnpTrustAnchor,
  simulateSnpReport,
} from '../../attestation/simulated/sev-snp.js';
import { decodeCertificatePem } from '../../attestation/x509/index.js';

const NOW = new Date('2026-06-01T00:00:00Z');

let ca: SimulatedSnpCa;
let anchor: SnpTrustAnchor;

beforeAll(async () => {
  ca = await createSimulatedSnpCa({ now: NOW, product: 'Milan' });
  anchor = simulatedSnpTrustAnchor(ca);
});

function caught(fn: () => unknown): AttestationError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AttestationError) return err;
    throw err;
  }
  throw new Error('expected an AttestationError, nothing was thrown');
}

const verify = (
  report: Uint8Array,
  extra: { intermediates?: readonly string[]; trustAnchors?: SnpTrustAnchor[] } = {},
) =>
  verifySnpReport(parseSnpReport(report), {
    trustAnchors: extra.trustAnchors ?? [anchor],
    now: NOW,
    vek: ca.vcek,
    ...(extra.intermediates === undefined ? {} : { intermediates: extra.intermediates }),
  });

describe('review: SEV-SNP inputs given as Node Buffers are copied', () => {
  it('parseSnpReport(Buffer): reusing the caller buffer changes neither the evidence nor what verifies', () => {
    const report = simulateSnpReport(ca, { measurement: 'ab'.repeat(48), reportData: 'cd'.repeat(64) });
    const buffer = Buffer.from(report);
    const evidence = parseSnpReport(buffer);
    const claims = verifySnpReport(evidence, { trustAnchors: [anchor], now: NOW, vek: ca.vcek });
    // The caller reuses its buffer, e.g. for the next frame: here another validly signed report.
    buffer.set(simulateSnpReport(ca, { measurement: 'ee'.repeat(48), reportData: 'ff'.repeat(64) }));
    expect(Buffer.from(evidence.measurement).toString('hex')).toBe('ab'.repeat(48));
    expect(Buffer.from(evidence.reportData).toString('hex')).toBe('cd'.repeat(64));
    expect(Buffer.from(evidence.bytes).equals(Buffer.from(report))).toBe(true);
    expect(verifySnpReport(evidence, { trustAnchors: [anchor], now: NOW, vek: ca.vcek })).toEqual(claims);
  });

  it('a VEK given as a DER Buffer is copied into the (cached) certificate record', () => {
    const der = Buffer.from(decodeCertificatePem(ca.vcek, 'VCEK'));
    const record = loadCertificate(der, 'VEK', undefined);
    const original = Buffer.from(der);
    der.fill(0);
    expect(Buffer.from(record.der).equals(original)).toBe(true);
  });

  it('signSimulatedSnpReport returns a signed copy and leaves a Buffer input untouched', () => {
    const unsigned = Buffer.from(simulateSnpReport(ca));
    unsigned.fill(0, SNP_SIGNED_LENGTH);
    const before = Buffer.from(unsigned);
    const signed = signSimulatedSnpReport(ca, unsigned);
    expect(unsigned.equals(before)).toBe(true);
    expect(verify(signed).signingKey).toBe('vcek');
  });
});

describe('review: the default AMD trust anchors are immutable', () => {
  it('AMD_SNP_TRUST_ANCHORS, each anchor and AMD_SNP_ROOTS are frozen (a simulated anchor cannot be pushed in)', () => {
    expect(Object.isFrozen(AMD_SNP_TRUST_ANCHORS)).toBe(true);
    for (const a of AMD_SNP_TRUST_ANCHORS) expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(AMD_SNP_ROOTS)).toBe(true);
    for (const r of Object.values(AMD_SNP_ROOTS)) expect(Object.isFrozen(r)).toBe(true);
    expect(() => (AMD_SNP_TRUST_ANCHORS as SnpTrustAnchor[]).push(anchor)).toThrow(TypeError);
    expect(AMD_SNP_TRUST_ANCHORS.some((a) => a.simulated === true)).toBe(false);
  });
});

describe('review: VMPL is a guest VMPL (0..3)', () => {
  /** A correctly signed report (simulated VCEK) with VMPL set to `vmpl`. */
  const withVmpl = (vmpl: number): Uint8Array => {
    const { type: _t, bytes: _b, product: _p, ...fields } = parseSnpReport(simulateSnpReport(ca));
    return signSimulatedSnpReport(ca, encodeSnpReport({ ...fields, vmpl }));
  };

  it('control: VMPL 3 verifies', () => {
    expect(verify(withVmpl(3)).vmpl).toBe(3);
  });

  it('rejects a host-requested report, VMPL 0xffffffff (EVIDENCE_FIELD_INVALID)', () => {
    const err = caught(() => verify(withVmpl(0xffff_ffff)));
    expect(err.code).toBe('EVIDENCE_FIELD_INVALID');
    expect(err.message).toMatch(/host requested it \(SNP_HV_REPORT_REQ\)/);
    expect(err.details).toMatchObject({ field: 'VMPL', value: 0xffff_ffff });
  });

  it('rejects an undefined VMPL value such as 4 (EVIDENCE_FIELD_INVALID)', () => {
    const err = caught(() => verify(withVmpl(4)));
    expect(err.code).toBe('EVIDENCE_FIELD_INVALID');
    expect(err.message).toMatch(/VMPL 4 is not a VMPL \(0\.\.3\)/);
  });
});

describe('review: the verifier cache carries no trust', () => {
  it('links cached under the simulated ARK do not verify once only the AMD roots are trusted (CERT_ROOT_UNTRUSTED)', () => {
    const cache = new SnpVerifierCache();
    const report = simulateSnpReport(ca);
    const options = { now: NOW, vek: ca.vcek, intermediates: [ca.ask], cache };
    expect(verifySnpReport(parseSnpReport(report), { ...options, trustAnchors: [anchor] }).simulated).toBe(
      true,
    );
    expect(cache.size.links).toBeGreaterThanOrEqual(2);
    const err = caught(() =>
      verifySnpReport(parseSnpReport(report), { ...options, trustAnchors: AMD_SNP_TRUST_ANCHORS }),
    );
    expect(err.code).toBe('CERT_ROOT_UNTRUSTED');
  });
});

describe('review: report layout and bindings (pins)', () => {
  it('TCB_VERSION layouts: Milan/Genoa BL,TEE,-,-,-,-,SNP,UCODE; Turin FMC,BL,TEE,SNP,-,-,-,UCODE', () => {
    // Little-endian bytes 0..7 = 01 02 03 04 05 06 07 08.
    const raw = 0x0807060504030201n;
    expect(decodeSnpTcb(raw, 'Milan')).toEqual({ bootloader: 1, tee: 2, snp: 7, microcode: 8 });
    expect(decodeSnpTcb(raw, 'Genoa')).toEqual({ bootloader: 1, tee: 2, snp: 7, microcode: 8 });
    expect(decodeSnpTcb(raw, 'Turin')).toEqual({ fmc: 1, bootloader: 2, tee: 3, snp: 4, microcode: 8 });
  });

  it('MASK_CHIP_KEY with a zeroed CHIP_ID, correctly signed, fails the VCEK hwID binding (CHIP_ID_MISMATCH)', () => {
    const parsed = parseSnpReport(simulateSnpReport(ca));
    const { type: _t, bytes: _b, product: _p, ...fields } = parsed;
    const body = encodeSnpReport({
      ...fields,
      signerInfo: { ...fields.signerInfo, maskChipKey: true },
      chipId: new Uint8Array(64),
    });
    const err = caught(() => verify(signSimulatedSnpReport(ca, body)));
    expect(err.code).toBe('CHIP_ID_MISMATCH');
    expect(err.message).toMatch(/MASK_CHIP_KEY is set/);
  });

  it('a byte after R ‖ S (unsigned) is rejected even though the signature still verifies (EVIDENCE_RESERVED_NONZERO)', () => {
    const report = simulateSnpReport(ca);
    for (const offset of [SNP_OFFSETS.signatureS + 72, SNP_REPORT_SIZE - 1]) {
      const edited = Uint8Array.from(report);
      edited[offset] = 1;
      const err = caught(() => verify(edited));
      expect(err.code).toBe('EVIDENCE_RESERVED_NONZERO');
      expect(err.details).toMatchObject({ offset });
    }
  });

  it('an ASK whose keyUsage lacks keyCertSign cannot issue the VCEK, even signed by the trusted ARK (CERT_ROOT_UNTRUSTED)', () => {
    /** The simulated ASK re-issued by the simulated ARK (same key, names, RSA-PSS salt 48) with another keyUsage. */
    const reissueAsk = (usage: number): string => {
      const ask = AsnConvert.parse(decodeCertificatePem(ca.ask, 'ASK'), Certificate);
      const exts = ask.tbsCertificate.extensions ?? [];
      const ku = exts.findIndex((e) => e.extnID === id_ce_keyUsage);
      expect(ku).toBeGreaterThanOrEqual(0);
      exts[ku]!.extnValue = new OctetString(AsnConvert.serialize(new KeyUsage(usage)));
      const tbs = new Uint8Array(AsnConvert.serialize(ask.tbsCertificate));
      ask.signatureValue = new Uint8Array(
        sign('sha384', tbs, {
          key: createPrivateKey(ca.arkKey),
          padding: constants.RSA_PKCS1_PSS_PADDING,
          saltLength: 48,
        }),
      ).buffer;
      const der = Buffer.from(AsnConvert.serialize(ask));
      return `-----BEGIN CERTIFICATE-----\n${der.toString('base64')}\n-----END CERTIFICATE-----`;
    };
    const report = simulateSnpReport(ca);
    // Control: the same re-issuing with keyCertSign gives a chain that verifies.
    const good = reissueAsk(KeyUsageFlags.keyCertSign);
    expect(verify(report, { trustAnchors: [{ ...anchor, ask: good }] }).simulated).toBe(true);
    const bad = reissueAsk(KeyUsageFlags.digitalSignature);
    const err = caught(() => verify(report, { trustAnchors: [{ ...anchor, ask: bad }] }));
    expect(err.code).toBe('CERT_ROOT_UNTRUSTED');
    expect(err.message).toMatch(/is not a trusted AMD signing key/);
  });
});
