/**
 * verifySnpReport: one named negative test per check, on correctly signed simulated reports that carry
 * exactly the defect under test; the verification cache; the chain's use of the shared x509 parts.
 */
import { constants, createHash, createPrivateKey, generateKeyPairSync, sign } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  BasicConstraints,
  Certificate,
  Extension,
  id_ce_basicConstraints,
  RelativeDistinguishedName,
  SubjectPublicKeyInfo,
  Version,
} from '@peculiar/asn1-x509';
import * as asn1js from 'asn1js';
import { beforeAll, describe, expect, it } from 'vitest';
import { AttestationError } from '../../attestation/errors.js';
import { loadCertificate } from '../../attestation/sev-snp/certificate.js';
import {
  AMD_SNP_TRUST_ANCHORS,
  MAX_SNP_INTERMEDIATES,
  parseSnpReport,
  SNP_OFFSETS,
  type SnpTrustAnchor,
  SnpVerifierCache,
  type VerifySnpOptions,
  verifySnpReport,
} from '../../attestation/sev-snp/index.js';
import {
  createSimulatedSnpCa,
  issueSimulatedVek,
  type SimulatedSnpCa,
  signSimulatedSnpReport,
  simulatedSnpTrustAnchor,
  simulateSnpReport,
} from '../../attestation/simulated/sev-snp.js';
import { MAX_LINK_CHECKS, X509Cache } from '../../attestation/x509/index.js';
import { ConfigError, EkmsError } from '../../shared/errors.js';

const NOW = new Date('2026-11-28T12:00:00Z');
const YEAR_MS = 365 * 86_400_000;
const P384_N = Buffer.from(
  'ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973',
  'hex',
);

function catchError(fn: () => unknown): EkmsError {
  try {
    fn();
  } catch (err) {
    if (err instanceof EkmsError) return err;
    throw err;
  }
  throw new Error('expected an EkmsError, but the call succeeded');
}

function expectCode(fn: () => unknown, code: string, message?: RegExp): EkmsError {
  const err = catchError(fn);
  expect(err.code).toBe(code);
  if (message !== undefined) expect(err.message).toMatch(message);
  return err;
}

const pemDer = (pem: string): Buffer =>
  Buffer.from(pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, ''), 'base64');

let ca: SimulatedSnpCa;
let other: SimulatedSnpCa;
let anchor: SnpTrustAnchor;

beforeAll(async () => {
  [ca, other] = await Promise.all([
    createSimulatedSnpCa({ now: NOW, product: 'Milan', vlek: true }),
    createSimulatedSnpCa({ now: NOW, product: 'Milan' }),
  ]);
  anchor = simulatedSnpTrustAnchor(ca);
});

function verify(report: Uint8Array, options: Partial<VerifySnpOptions> = {}) {
  return verifySnpReport(parseSnpReport(report), {
    trustAnchors: [anchor],
    now: NOW,
    vek: ca.vcek,
    ...options,
  });
}

describe('verifySnpReport accepts a simulated report only under a trusted simulated root', () => {
  it('verifies and returns the claims', () => {
    const report = simulateSnpReport(ca, {
      measurement: '11'.repeat(48),
      reportData: '22'.repeat(64),
      hostData: '33'.repeat(32),
      vmpl: 2,
      debug: true,
    });
    const c = verify(report);
    expect(c).toMatchObject({
      type: 'sev-snp',
      product: 'Milan',
      version: 3,
      measurement: '11'.repeat(48),
      reportData: '22'.repeat(64),
      hostData: '33'.repeat(32),
      vmpl: 2,
      debug: true,
      policy: '0xb0000',
      chipId: ca.chipId,
      signingKey: 'vcek',
      reportedTcb: ca.tcb,
      simulated: true,
      timestamp: null,
    });
    expect(c.rootFingerprint).toBe(createHash('sha256').update(pemDer(ca.ark)).digest('hex'));
  });

  it('debug is policy bit 19 only', () => {
    expect(verify(simulateSnpReport(ca, { policy: 0x30000n })).debug).toBe(false);
    expect(verify(simulateSnpReport(ca, { policy: 0x30000n | (1n << 19n) })).debug).toBe(true);
    expect(verify(simulateSnpReport(ca, { policy: 0x30000n | (1n << 18n) | (1n << 20n) })).debug).toBe(false);
  });

  it('rejects it with only the AMD roots (CERT_ROOT_UNTRUSTED), whatever chain certificates are supplied', () => {
    const report = simulateSnpReport(ca);
    const amd = { trustAnchors: AMD_SNP_TRUST_ANCHORS };
    expectCode(
      () => verify(report, amd),
      'CERT_ROOT_UNTRUSTED',
      /issuer "SEV-Milan" is not a trusted AMD signing key/,
    );
    expectCode(
      () => verify(report, { ...amd, intermediates: [ca.ask] }),
      'CERT_ROOT_UNTRUSTED',
      /not issued by a trusted Milan ARK/,
    );
    expectCode(() => verify(report, { ...amd, intermediates: [ca.ask, ca.ark] }), 'CERT_ROOT_UNTRUSTED');
  });

  it('rejects it when no trust anchor is configured (CERT_ROOT_UNTRUSTED)', () => {
    expectCode(
      () => verify(simulateSnpReport(ca), { trustAnchors: [] }),
      'CERT_ROOT_UNTRUSTED',
      /no SEV-SNP trust anchor/,
    );
  });
});

describe('verifySnpReport options', () => {
  it('requires the VEK certificate (CERT_MISSING)', () => {
    const report = simulateSnpReport(ca);
    expectCode(() => verify(report, { vek: undefined }), 'CERT_MISSING', /VCEK certificate is required/);
    expectCode(() => verify(report, { vek: '' }), 'CERT_MISSING');
    expectCode(() => verify(report, { vek: new Uint8Array(0) }), 'CERT_MISSING');
  });

  it('requires a valid `now` (CONFIG_INVALID)', () => {
    const err = expectCode(
      () => verify(simulateSnpReport(ca), { now: new Date(Number.NaN) }),
      'CONFIG_INVALID',
      /now/,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expectCode(() => verify(simulateSnpReport(ca), { now: undefined as unknown as Date }), 'CONFIG_INVALID');
  });

  it('requires trustAnchors to be an array (CONFIG_INVALID)', () => {
    expectCode(
      () => verify(simulateSnpReport(ca), { trustAnchors: undefined as unknown as SnpTrustAnchor[] }),
      'CONFIG_INVALID',
    );
  });

  it('trusts only evidence.bytes, not the decoded fields of the evidence object', () => {
    const evidence = parseSnpReport(simulateSnpReport(ca, { measurement: 'aa'.repeat(48) }));
    const forged = { ...evidence, measurement: new Uint8Array(48).fill(0xbb), policy: 1n << 19n };
    const c = verifySnpReport(forged, { trustAnchors: [anchor], now: NOW, vek: ca.vcek });
    expect(c.measurement).toBe('aa'.repeat(48));
    expect(c.debug).toBe(false);
  });
});

describe('verifySnpReport signature checks', () => {
  it('rejects a flipped signature bit (EVIDENCE_SIGNATURE_INVALID)', () => {
    for (const offset of [SNP_OFFSETS.signatureR, SNP_OFFSETS.signatureR + 47, SNP_OFFSETS.signatureS + 20]) {
      const report = simulateSnpReport(ca);
      report[offset]! ^= 0x04;
      expectCode(() => verify(report), 'EVIDENCE_SIGNATURE_INVALID', /does not verify/);
    }
  });

  it('rejects a flipped signed field (EVIDENCE_SIGNATURE_INVALID)', () => {
    const fields = [
      SNP_OFFSETS.guestSvn,
      SNP_OFFSETS.policy,
      SNP_OFFSETS.vmpl,
      SNP_OFFSETS.reportData + 63,
      SNP_OFFSETS.measurement,
      SNP_OFFSETS.hostData + 5,
      SNP_OFFSETS.idKeyDigest,
      SNP_OFFSETS.reportId,
      SNP_OFFSETS.currentTcb,
      SNP_OFFSETS.launchTcb + 7,
      SNP_OFFSETS.currentMajor,
    ];
    for (const offset of fields) {
      const report = simulateSnpReport(ca);
      report[offset]! ^= 0x01;
      expectCode(() => verify(report), 'EVIDENCE_SIGNATURE_INVALID');
    }
  });

  const nLittleEndian = Uint8Array.from(P384_N).reverse();
  it.each<[string, (r: Uint8Array) => void, RegExp]>([
    ['R = 0', (r) => r.fill(0, SNP_OFFSETS.signatureR, SNP_OFFSETS.signatureR + 72), /R is out of range/],
    ['S = 0', (r) => r.fill(0, SNP_OFFSETS.signatureS, SNP_OFFSETS.signatureS + 72), /S is out of range/],
    ['R = n', (r) => r.set(nLittleEndian, SNP_OFFSETS.signatureR), /R is out of range/],
    ['S = n', (r) => r.set(nLittleEndian, SNP_OFFSETS.signatureS), /S is out of range/],
    [
      'R with a non-zero byte 48',
      (r) => r.fill(1, SNP_OFFSETS.signatureR + 48, SNP_OFFSETS.signatureR + 49),
      /R is out of range/,
    ],
    [
      'S with a non-zero byte 71',
      (r) => r.fill(0x80, SNP_OFFSETS.signatureS + 71, SNP_OFFSETS.signatureS + 72),
      /S is out of range/,
    ],
  ])(
    'rejects a signature component out of range: %s (EVIDENCE_SIGNATURE_INVALID)',
    (_name, mutate, message) => {
      const report = simulateSnpReport(ca);
      mutate(report);
      expectCode(() => verify(report), 'EVIDENCE_SIGNATURE_INVALID', message);
    },
  );

  it('rejects a report checked with the wrong VEK (same chip and TCB, another key) (EVIDENCE_SIGNATURE_INVALID)', () => {
    const wrong = issueSimulatedVek(ca, { now: NOW });
    expectCode(() => verify(simulateSnpReport(ca), { vek: wrong.cert }), 'EVIDENCE_SIGNATURE_INVALID');
  });
});

describe('verifySnpReport bindings between the report and its VEK', () => {
  it('rejects a VEK from another chip (CHIP_ID_MISMATCH)', () => {
    const anotherChip = issueSimulatedVek(ca, { now: NOW, key: ca.vcekKey, hwId: 'ab'.repeat(64) });
    expectCode(
      () => verify(simulateSnpReport(ca), { vek: anotherChip.cert }),
      'CHIP_ID_MISMATCH',
      /hwID abab/,
    );
    expectCode(
      () => verify(simulateSnpReport(ca, { chipId: '01'.repeat(64) })),
      'CHIP_ID_MISMATCH',
      /CHIP_ID 0101/,
    );
  });

  for (const component of ['bootloader', 'tee', 'snp', 'microcode'] as const) {
    it(`rejects a VEK whose ${component} SPL differs from REPORTED_TCB (TCB_MISMATCH)`, () => {
      const tcb = { ...ca.tcb, [component]: (ca.tcb[component]! + 1) % 256 };
      const err = expectCode(
        () => verify(simulateSnpReport(ca, { tcb })),
        'TCB_MISMATCH',
        new RegExp(`VCEK ${component} SPL is`),
      );
      expect(err.details?.['component']).toBe(component);
      const vek = issueSimulatedVek(ca, { now: NOW, key: ca.vcekKey, tcb });
      expectCode(
        () => verify(simulateSnpReport(ca), { vek: vek.cert }),
        'TCB_MISMATCH',
        new RegExp(component),
      );
    });

    it(`rejects a VEK without the ${component} SPL extension (CERT_INVALID)`, () => {
      const { [component]: _dropped, ...tcb } = ca.tcb;
      const vek = issueSimulatedVek(ca, { now: NOW, key: ca.vcekKey, tcb });
      expectCode(
        () => verify(simulateSnpReport(ca), { vek: vek.cert }),
        'CERT_INVALID',
        new RegExp(`lacks the ${component}`),
      );
    });
  }

  it('rejects a VLEK-signed report verified with a VCEK chain (SIGNING_KEY_MISMATCH)', () => {
    const report = simulateSnpReport(ca, { signingKey: 'vlek' });
    expect(verify(report, { vek: ca.vlek! }).signingKey).toBe('vlek');
    expectCode(
      () => verify(report, { vek: ca.vcek }),
      'SIGNING_KEY_MISMATCH',
      /signed by the VLEK, but the certificate is a VCEK/,
    );
  });

  it('rejects a VCEK-signed report verified with a VLEK chain (SIGNING_KEY_MISMATCH)', () => {
    const report = simulateSnpReport(ca);
    expectCode(
      () => verify(report, { vek: ca.vlek! }),
      'SIGNING_KEY_MISMATCH',
      /signed by the VCEK, but the certificate is a VLEK/,
    );
  });

  it('rejects a VEK whose productName names another product, or none (CERT_INVALID)', () => {
    const genoa = issueSimulatedVek(ca, { now: NOW, key: ca.vcekKey, productName: 'Genoa' });
    expectCode(
      () => verify(simulateSnpReport(ca), { vek: genoa.cert }),
      'CERT_INVALID',
      /productName is "Genoa", expected Milan/,
    );
    const none = issueSimulatedVek(ca, { now: NOW, key: ca.vcekKey, productName: null });
    expectCode(
      () => verify(simulateSnpReport(ca), { vek: none.cert }),
      'CERT_INVALID',
      /productName is missing/,
    );
    const stepping = issueSimulatedVek(ca, { now: NOW, key: ca.vcekKey, productName: 'Milan-B0' });
    expect(verify(simulateSnpReport(ca), { vek: stepping.cert }).product).toBe('Milan');
  });

  it('rejects a VCEK without hwID, or with a hwID of the wrong length (CERT_INVALID)', () => {
    const none = issueSimulatedVek(ca, { now: NOW, key: ca.vcekKey, hwId: null });
    expectCode(() => verify(simulateSnpReport(ca), { vek: none.cert }), 'CERT_INVALID', /hwID is missing/);
  });

  it('rejects fmcSPL on a non-Turin VEK (CERT_INVALID)', () => {
    const vek = issueSimulatedVek(ca, { now: NOW, key: ca.vcekKey, tcb: { ...ca.tcb, fmc: 1 } });
    expectCode(() => verify(simulateSnpReport(ca), { vek: vek.cert }), 'CERT_INVALID', /fmcSPL/);
  });

  it('rejects a product option that contradicts CPUID (EVIDENCE_FIELD_INVALID)', () => {
    expectCode(
      () => verify(simulateSnpReport(ca), { product: 'Turin' }),
      'EVIDENCE_FIELD_INVALID',
      /CPUID names Milan/,
    );
  });

  it('rejects a version 3 report whose CPUID is no SEV-SNP product (EVIDENCE_FIELD_INVALID)', () => {
    const report = simulateSnpReport(ca);
    report[SNP_OFFSETS.cpuidFamily] = 0x17;
    expectCode(
      () => verify(signSimulatedSnpReport(ca, report)),
      'EVIDENCE_FIELD_INVALID',
      /CPUID family 0x17/,
    );
  });

  it('checks product reserved bytes of a version 2 report once the chain names the product', () => {
    const report = simulateSnpReport(ca, { version: 2 });
    report[SNP_OFFSETS.reportedTcb + 3] = 0x01; // reserved on Milan/Genoa, SNP byte on Turin
    const signed = signSimulatedSnpReport(ca, report);
    expect(parseSnpReport(signed).version).toBe(2); // structure alone cannot tell
    expectCode(() => verify(signed), 'EVIDENCE_RESERVED_NONZERO', /0x183/);
  });
});

describe('verifySnpReport certificate chain', () => {
  it('rejects an ASK whose signature is broken (CERT_CHAIN_INVALID)', () => {
    const ask = pemDer(ca.ask);
    ask[ask.length - 1]! ^= 0x01;
    const arkOnly: SnpTrustAnchor = { product: 'Milan', ark: ca.ark, simulated: true };
    expect(
      verify(simulateSnpReport(ca), { trustAnchors: [arkOnly], intermediates: [ca.ask] }).simulated,
    ).toBe(true);
    expectCode(
      () => verify(simulateSnpReport(ca), { trustAnchors: [arkOnly], intermediates: [ask] }),
      'CERT_CHAIN_INVALID',
      /SEV-Milan certificate's signature does not verify under the trusted Milan ARK/,
    );
  });

  it('rejects a VEK whose signature is broken (CERT_CHAIN_INVALID)', () => {
    const vek = pemDer(ca.vcek);
    vek[vek.length - 1]! ^= 0x01;
    expectCode(
      () => verify(simulateSnpReport(ca), { vek }),
      'CERT_CHAIN_INVALID',
      /VCEK certificate's signature does not verify/,
    );
  });

  it('rejects a look-alike ARK: same names, another key (CERT_ROOT_UNTRUSTED)', () => {
    // `other` has the same ARK, ASK and VCEK names as `ca`, but its own keys
    const report = simulateSnpReport(other);
    const arkOnly: SnpTrustAnchor = { product: 'Milan', ark: ca.ark, simulated: true };
    for (const intermediates of [[other.ask], [other.ask, other.ark], [other.ark, other.ask]]) {
      expectCode(
        () => verify(report, { trustAnchors: [arkOnly], vek: other.vcek, intermediates }),
        'CERT_ROOT_UNTRUSTED',
        /SEV-Milan is not issued by a trusted Milan ARK/,
      );
    }
    expectCode(() => verify(report, { vek: other.vcek }), 'CERT_ROOT_UNTRUSTED');
    // the look-alike ARK given as an intermediate is never a root: trusting it needs a trust anchor
    expect(
      verify(report, { trustAnchors: [simulatedSnpTrustAnchor(other)], vek: other.vcek }).simulated,
    ).toBe(true);
  });

  it('rejects an expired VEK (CERT_EXPIRED)', () => {
    expectCode(
      () => verify(simulateSnpReport(ca), { now: new Date(NOW.getTime() + 8 * YEAR_MS) }),
      'CERT_EXPIRED',
      /VCEK/,
    );
    const expired = issueSimulatedVek(ca, {
      now: NOW,
      key: ca.vcekKey,
      notBefore: new Date(NOW.getTime() - 2 * YEAR_MS),
      notAfter: new Date(NOW.getTime() - 1000),
    });
    expectCode(
      () => verify(simulateSnpReport(ca), { vek: expired.cert }),
      'CERT_EXPIRED',
      /VCEK certificate \(SEV-VCEK\) expired/,
    );
  });

  it('rejects an expired ASK while the VEK is valid (CERT_EXPIRED)', () => {
    const longLived = issueSimulatedVek(ca, {
      now: NOW,
      key: ca.vcekKey,
      notAfter: new Date(NOW.getTime() + 40 * YEAR_MS),
    });
    expectCode(
      () =>
        verify(simulateSnpReport(ca), { vek: longLived.cert, now: new Date(NOW.getTime() + 30 * YEAR_MS) }),
      'CERT_EXPIRED',
      /ASK certificate \(SEV-Milan\) expired/,
    );
  });

  it('rejects certificates that are not yet valid (CERT_NOT_YET_VALID)', () => {
    expectCode(
      () => verify(simulateSnpReport(ca), { now: new Date(NOW.getTime() - 2 * 86_400_000) }),
      'CERT_NOT_YET_VALID',
      /VCEK certificate .* is not valid before/,
    );
    const future = issueSimulatedVek(ca, {
      now: NOW,
      key: ca.vcekKey,
      notBefore: new Date(NOW.getTime() + 1000),
    });
    expectCode(() => verify(simulateSnpReport(ca), { vek: future.cert }), 'CERT_NOT_YET_VALID');
  });

  it('rejects a VEK signed with other RSA-PSS parameters (salt 32) (CERT_INVALID)', () => {
    const salt32 = issueSimulatedVek(ca, { now: NOW, key: ca.vcekKey, saltLength: 32 });
    expectCode(
      () => verify(simulateSnpReport(ca), { vek: salt32.cert }),
      'CERT_INVALID',
      /salt 48.*got .*salt 32/,
    );
  });

  it('rejects a non-VEK as VEK: the ASK itself (CERT_INVALID)', () => {
    expectCode(
      () => verify(simulateSnpReport(ca), { vek: ca.ask }),
      'CERT_INVALID',
      /subject CN is "SEV-Milan"/,
    );
  });

  it('rejects malformed certificate input (CERT_INVALID)', () => {
    const report = simulateSnpReport(ca);
    expectCode(() => verify(report, { vek: 'not a certificate' }), 'CERT_INVALID', /PEM/);
    expectCode(() => verify(report, { vek: ca.vcek + ca.ask }), 'CERT_INVALID', /single PEM/);
    expectCode(
      () => verify(report, { vek: Uint8Array.from([...pemDer(ca.vcek), 0]) }),
      'CERT_INVALID',
      /canonical DER/,
    );
    expectCode(() => verify(report, { vek: new Uint8Array(5000) }), 'CERT_INVALID', /DER is 5000 bytes/);
    expectCode(() => verify(report, { vek: 'x'.repeat(100_000) }), 'CERT_INVALID', /over the/);
    expectCode(
      () => verify(report, { vek: Uint8Array.from([0x30, 0x03, 0x02, 0x01, 0x00]) }),
      'CERT_INVALID',
    );
  });

  it('accepts the VEK as PEM text, PEM bytes or DER', () => {
    const report = simulateSnpReport(ca);
    expect(verify(report, { vek: Buffer.from(ca.vcek) }).signingKey).toBe('vcek');
    expect(verify(report, { vek: pemDer(ca.vcek) }).signingKey).toBe('vcek');
  });

  it(`rejects more than ${MAX_SNP_INTERMEDIATES} intermediates (CERT_INVALID)`, () => {
    const many = new Array<string>(MAX_SNP_INTERMEDIATES + 1).fill(ca.ask);
    expectCode(
      () => verify(simulateSnpReport(ca), { intermediates: many }),
      'CERT_INVALID',
      /intermediate certificates given/,
    );
  });
});

/**
 * Re-signs a certificate after editing it: `edit` changes the parsed certificate (usually its TBS), then the
 * TBS is signed with RSASSA-PSS SHA-384 salt 48 by `signerKey` (PKCS#8 PEM), like every AMD certificate.
 */
function craft(pem: string, signerKey: string, edit: (cert: Certificate) => void): Uint8Array {
  const cert = AsnConvert.parse(pemDer(pem), Certificate);
  edit(cert);
  const tbs = new Uint8Array(AsnConvert.serialize(cert.tbsCertificate));
  const signature = sign('sha384', tbs, {
    key: createPrivateKey(signerKey),
    padding: constants.RSA_PKCS1_PSS_PADDING,
    saltLength: 48,
  });
  cert.signatureValue = new Uint8Array(signature).buffer;
  return new Uint8Array(AsnConvert.serialize(cert));
}

const ext = (extnID: string, value: ArrayBuffer | Uint8Array, critical = false): Extension =>
  new Extension({ extnID, critical, extnValue: new OctetString(value) });

function setExtension(cert: Certificate, extnID: string, value: ArrayBuffer | Uint8Array): void {
  const list = cert.tbsCertificate.extensions!;
  const index = list.findIndex((e) => e.extnID === extnID);
  const replacement = ext(extnID, value);
  if (index === -1) list.push(replacement);
  else list[index] = replacement;
}

describe('verifySnpReport certificate structure', () => {
  const report = () => simulateSnpReport(ca);
  const vcek = (edit: (cert: Certificate) => void) => craft(ca.vcek, ca.askKey, edit);

  it('the crafting helper itself yields a valid VCEK when nothing is edited', () => {
    expect(verify(report(), { vek: vcek(() => {}) }).signingKey).toBe('vcek');
  });

  it('rejects a certificate that is not X.509 v3 (CERT_INVALID)', () => {
    const v1 = vcek((c) => {
      c.tbsCertificate.version = Version.v2;
    });
    expectCode(() => verify(report(), { vek: v1 }), 'CERT_INVALID', /X\.509 version 2, expected 3/);
  });

  it('rejects signed and outer signature algorithms that differ (CERT_INVALID)', () => {
    const mismatch = vcek((c) => {
      c.signatureAlgorithm = new AlgorithmIdentifier({
        algorithm: '1.2.840.113549.1.1.12',
        parameters: null,
      });
    });
    expectCode(
      () => verify(report(), { vek: mismatch }),
      'CERT_INVALID',
      /inside and outside the signed part differ/,
    );
  });

  it('rejects a non-PSS signature algorithm (sha384WithRSAEncryption) (CERT_INVALID)', () => {
    const pkcs1 = vcek((c) => {
      const alg = new AlgorithmIdentifier({ algorithm: '1.2.840.113549.1.1.12', parameters: null });
      c.signatureAlgorithm = alg;
      c.tbsCertificate.signature = alg;
    });
    expectCode(() => verify(report(), { vek: pkcs1 }), 'CERT_INVALID', /is not RSASSA-PSS/);
  });

  it('rejects a duplicated extension (CERT_INVALID)', () => {
    const dup = vcek((c) => {
      c.tbsCertificate.extensions!.push(
        ext('1.3.6.1.4.1.3704.1.3.3', new asn1js.Integer({ value: 24 }).toBER()),
      );
    });
    expectCode(
      () => verify(report(), { vek: dup }),
      'CERT_INVALID',
      /1\.3\.6\.1\.4\.1\.3704\.1\.3\.3 appears (twice|more than once)/,
    );
  });

  it('rejects an unknown critical extension (CERT_INVALID)', () => {
    const critical = vcek((c) => {
      c.tbsCertificate.extensions!.push(ext('1.2.3.4', new asn1js.Null().toBER(), true));
    });
    expectCode(
      () => verify(report(), { vek: critical }),
      'CERT_INVALID',
      /unknown critical extension 1\.2\.3\.4/,
    );
  });

  it('rejects a subject with two common names (CERT_INVALID)', () => {
    const twoCns = vcek((c) => {
      c.tbsCertificate.subject.push(
        new RelativeDistinguishedName([
          new AttributeTypeAndValue({
            type: '2.5.4.3',
            value: new AttributeValue({ utf8String: 'SEV-VCEK' }),
          }),
        ]),
      );
    });
    expectCode(() => verify(report(), { vek: twoCns }), 'CERT_INVALID', /subject has 2 common names/);
  });

  it.each<[string, () => ArrayBuffer]>([
    ['256', () => new asn1js.Integer({ value: 256 }).toBER()],
    ['-1', () => new asn1js.Integer({ value: -1 }).toBER()],
    ['an IA5String', () => new asn1js.IA5String({ value: '24' }).toBER()],
    ['a non-minimal INTEGER', () => Uint8Array.from([0x02, 0x02, 0x00, 0x18]).buffer],
    ['an INTEGER with trailing bytes', () => Uint8Array.from([0x02, 0x01, 0x18, 0x00]).buffer],
    // asn1js.fromBER throws a plain Error for a GeneralizedTime whose text is not a time (found by fuzzing).
    ['a malformed GeneralizedTime', () => Uint8Array.from([0x18, 0x03, 0x41, 0x42, 0x43]).buffer],
  ])('rejects an SPL extension holding %s (CERT_INVALID)', (_name, value) => {
    const bad = vcek((c) => setExtension(c, '1.3.6.1.4.1.3704.1.3.3', new Uint8Array(value())));
    expectCode(
      () => verify(report(), { vek: bad }),
      'CERT_INVALID',
      /snp .* is not a DER INTEGER in 0\.\.255/,
    );
  });

  it('rejects a productName holding a malformed GeneralizedTime (CERT_INVALID, not a plain Error)', () => {
    const time = vcek((c) =>
      setExtension(c, '1.3.6.1.4.1.3704.1.2', Uint8Array.of(0x18, 0x03, 0x41, 0x42, 0x43)),
    );
    expectCode(
      () => verify(report(), { vek: time }),
      'CERT_INVALID',
      /productName is not a printable DER IA5String/,
    );
  });

  it('rejects a productName that is not an IA5String (CERT_INVALID)', () => {
    const utf8 = vcek((c) =>
      setExtension(c, '1.3.6.1.4.1.3704.1.2', new asn1js.Utf8String({ value: 'Milan' }).toBER()),
    );
    expectCode(
      () => verify(report(), { vek: utf8 }),
      'CERT_INVALID',
      /productName is not a printable DER IA5String/,
    );
  });

  it('rejects a hwID longer than 64 bytes (CERT_INVALID)', () => {
    const long = vcek((c) => setExtension(c, '1.3.6.1.4.1.3704.1.4', new Uint8Array(65)));
    expectCode(() => verify(report(), { vek: long }), 'CERT_INVALID', /hwID is 65 bytes/);
  });

  it('rejects a VEK that is a CA or not an ECDSA P-384 key (CERT_INVALID)', () => {
    const asCa = vcek((c) => {
      c.tbsCertificate.extensions!.push(
        ext(id_ce_basicConstraints, AsnConvert.serialize(new BasicConstraints({ cA: true })), true),
      );
    });
    expectCode(() => verify(report(), { vek: asCa }), 'CERT_INVALID', /non-CA ECDSA P-384/);
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    const wrongCurve = vcek((c) => {
      c.tbsCertificate.subjectPublicKeyInfo = AsnConvert.parse(
        p256.export({ type: 'spki', format: 'der' }),
        SubjectPublicKeyInfo,
      );
    });
    expectCode(() => verify(report(), { vek: wrongCurve }), 'CERT_INVALID', /non-CA ECDSA P-384/);
  });

  it('rejects a VLEK that carries a hwID (CERT_INVALID)', () => {
    const vlek = craft(ca.vlek!, ca.asvkKey!, (c) =>
      setExtension(c, '1.3.6.1.4.1.3704.1.4', Buffer.from(ca.chipId, 'hex')),
    );
    expectCode(
      () => verify(simulateSnpReport(ca, { signingKey: 'vlek' }), { vek: vlek }),
      'CERT_INVALID',
      /VLEK carries a hwID/,
    );
  });

  it('rejects a VCEK issued by the ASVK (CERT_INVALID)', () => {
    const vcekByAsvk = craft(ca.vcek, ca.asvkKey!, (c) => {
      c.tbsCertificate.issuer = AsnConvert.parse(pemDer(ca.asvk!), Certificate).tbsCertificate.subject;
      c.tbsCertificate.extensions = c.tbsCertificate.extensions!.filter(
        (e) => e.extnID !== '2.5.29.35',
      ) as never;
    });
    // the anchor offers only its ASK for a VCEK; the ASVK must be handed in to be considered at all
    expectCode(() => verify(report(), { vek: vcekByAsvk }), 'CERT_ROOT_UNTRUSTED');
    expectCode(
      () => verify(report(), { vek: vcekByAsvk, intermediates: [ca.asvk!] }),
      'CERT_INVALID',
      /a VCEK must be issued by an ASK/,
    );
  });

  it('rejects an ASK that is not RSA-4096 (CERT_INVALID)', () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const smallKeyPem = small.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const ask = craft(ca.ask, ca.arkKey, (c) => {
      c.tbsCertificate.subjectPublicKeyInfo = AsnConvert.parse(
        small.publicKey.export({ type: 'spki', format: 'der' }),
        SubjectPublicKeyInfo,
      );
    });
    const vek = craft(ca.vcek, smallKeyPem, (c) => {
      c.tbsCertificate.extensions = c.tbsCertificate.extensions!.filter(
        (e) => e.extnID !== '2.5.29.35',
      ) as never;
    });
    const arkOnly: SnpTrustAnchor = { product: 'Milan', ark: ca.ark, simulated: true };
    expectCode(
      () => verify(report(), { trustAnchors: [arkOnly], intermediates: [ask], vek }),
      'CERT_INVALID',
      /SEV-Milan certificate must be an RSA-4096 CA certificate/,
    );
  });

  it('rejects a trust anchor ARK whose self-signature is broken (CERT_INVALID)', () => {
    const ark = pemDer(ca.ark);
    ark[ark.length - 1]! ^= 0x01;
    expectCode(
      () => verify(report(), { trustAnchors: [{ product: 'Milan', ark, ask: ca.ask, simulated: true }] }),
      'CERT_INVALID',
      /trust anchor ARK "ARK-Milan" must be a validly self-signed RSA-4096 CA/,
    );
  });

  it('rejects a PEM body that is not canonical base64 (CERT_INVALID)', () => {
    const lines = ca.vcek.trim().split('\n');
    lines[1] = `${lines[1]!.slice(0, -1)}*`;
    expectCode(
      () => verify(report(), { vek: lines.join('\n') }),
      'CERT_INVALID',
      /single PEM|canonical base64/,
    );
    const padded = ca.vcek.replace('-----END', '====\n-----END');
    expectCode(() => verify(report(), { vek: padded }), 'CERT_INVALID', /canonical base64/);
  });
});

describe('SnpVerifierCache', () => {
  it('gives the same claims as an uncached verification, and fills bounded maps', () => {
    const cache = new SnpVerifierCache({ maxEntries: 8 });
    const report = simulateSnpReport(ca, { measurement: '44'.repeat(48) });
    const uncached = verify(report);
    const first = verify(report, { cache });
    const second = verify(report, { cache });
    expect(first).toEqual(uncached);
    expect(second).toEqual(uncached);
    expect(cache.size.links).toBe(3); // VEK→ASK, ASK→ARK, ARK→ARK
    expect(cache.size.certificates).toBe(3);
  });

  it('stays within maxEntries', () => {
    const cache = new SnpVerifierCache({ maxEntries: 2 });
    for (let i = 0; i < 3; i++) {
      verify(simulateSnpReport(ca), { cache });
      verify(simulateSnpReport(other), {
        cache,
        trustAnchors: [simulatedSnpTrustAnchor(other)],
        vek: other.vcek,
      });
    }
    expect(cache.size.certificates).toBeLessThanOrEqual(2);
    expect(cache.size.links).toBeLessThanOrEqual(2);
    expect(cache.size.pems).toBeLessThanOrEqual(2);
    cache.clear();
    expect(cache.size).toEqual({ certificates: 0, pems: 0, links: 0 });
  });

  it('respects expiry: a cached chain is rejected after its VEK expired (CERT_EXPIRED)', () => {
    const cache = new SnpVerifierCache();
    const report = simulateSnpReport(ca);
    verify(report, { cache });
    expectCode(() => verify(report, { cache, now: new Date(NOW.getTime() + 8 * YEAR_MS) }), 'CERT_EXPIRED');
    expectCode(
      () => verify(report, { cache, now: new Date(NOW.getTime() - 2 * 86_400_000) }),
      'CERT_NOT_YET_VALID',
    );
  });

  it('does not let a cached link vouch for another certificate (broken ASK after a good one)', () => {
    const cache = new SnpVerifierCache();
    const arkOnly: SnpTrustAnchor = { product: 'Milan', ark: ca.ark, simulated: true };
    verify(simulateSnpReport(ca), { cache, trustAnchors: [arkOnly], intermediates: [ca.ask] });
    const ask = pemDer(ca.ask);
    ask[ask.length - 1]! ^= 0x01;
    expectCode(
      () => verify(simulateSnpReport(ca), { cache, trustAnchors: [arkOnly], intermediates: [ask] }),
      'CERT_CHAIN_INVALID',
    );
  });

  it('does not cache failures', () => {
    const cache = new SnpVerifierCache();
    expectCode(
      () => verify(simulateSnpReport(ca), { cache, trustAnchors: AMD_SNP_TRUST_ANCHORS }),
      'CERT_ROOT_UNTRUSTED',
    );
    expect(cache.size.links).toBe(0);
  });

  it('rejects an invalid maxEntries (CONFIG_INVALID)', () => {
    for (const maxEntries of [0, -1, 1.5, 1e9]) {
      expectCode(() => new SnpVerifierCache({ maxEntries }), 'CONFIG_INVALID');
    }
  });
});

describe('the chain on the shared x509 parts', () => {
  it(`counts link checks against MAX_LINK_CHECKS (${MAX_LINK_CHECKS}), as path building does (CERT_CHAIN_INVALID)`, () => {
    // The ASK with another key but the same names and key identifier, re-signed by the ARK: the VCEK names it
    // as its issuer (name and authority key identifier match), but its key does not verify the VCEK.
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    const lookAlike = craft(ca.ask, ca.arkKey, (c) => {
      c.tbsCertificate.subjectPublicKeyInfo = AsnConvert.parse(
        other.export({ type: 'spki', format: 'der' }),
        SubjectPublicKeyInfo,
      );
    });
    const fake: SnpTrustAnchor = { ...anchor, ask: lookAlike };
    const withFakes = (n: number) => ({ trustAnchors: [...new Array<SnpTrustAnchor>(n).fill(fake), anchor] });
    // Control: a few look-alike ASKs are tried and fail, then the real one verifies.
    expect(verify(simulateSnpReport(ca), withFakes(3)).simulated).toBe(true);
    // More look-alikes than the bound: the search gives up before it reaches the real ASK.
    expectCode(
      () => verify(simulateSnpReport(ca), withFakes(MAX_LINK_CHECKS)),
      'CERT_CHAIN_INVALID',
      /gave up after 64 issuer link checks/,
    );
  });

  it('SnpVerifierCache is the shared X509Cache, and the AMD view is derived once per cached certificate', () => {
    expect(SnpVerifierCache).toBe(X509Cache);
    const cache = new SnpVerifierCache();
    const first = loadCertificate(ca.vcek, 'VEK', cache);
    expect(loadCertificate(ca.vcek, 'VEK', cache)).toBe(first);
    expect(first).toMatchObject({ subjectCn: 'SEV-VCEK', amd: { productName: 'Milan' } });
    const uncached = loadCertificate(ca.vcek, 'VEK', undefined);
    expect(uncached).not.toBe(first);
    expect(uncached.amd).toEqual(first.amd);
    // A throw while deriving is not remembered.
    const key = Symbol('test');
    expect(() =>
      cache.derive(first, key, () => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(cache.derive(first, key, () => 42)).toBe(42);
    expect(cache.derive(first, key, () => 43)).toBe(42);
  });
});

describe('errors are typed', () => {
  it('every failure above is an AttestationError or ConfigError with a stable code', () => {
    const err = catchError(() => verify(simulateSnpReport(ca), { trustAnchors: AMD_SNP_TRUST_ANCHORS }));
    expect(err).toBeInstanceOf(AttestationError);
    expect(err.retriable).toBe(false);
  });
});
