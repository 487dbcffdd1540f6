/**
 * The simulated Nitro attestor: its CA is JSON/file serialisable, its documents have AWS's exact layout
 * (compared field by field with a real document when ../shared/vectors is present), they verify through
 * the same code path as real ones when — and only when — the simulated root is trusted, and every input
 * option comes back in the claims.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  AWS_NITRO_TRUST_ANCHORS,
  type NitroEvidence,
  parseNitroDocument,
  verifyNitroDocument,
} from '../../attestation/nitro/index.js';
import {
  createSimulatedNitroCa,
  SIMULATED_NITRO_CA_FORMAT,
  type SimulatedNitroCa,
  simulatedNitroCaFiles,
  simulatedNitroCaFromFiles,
  simulatedNitroTrustAnchor,
  simulateNitroDocument,
} from '../../attestation/simulated/nitro.js';
import {
  decodeCertificatePem,
  type ParsedCertificate,
  parseCertificate,
} from '../../attestation/x509/index.js';
import { decodeCbor } from '../../shared/cbor.js';
import { ConfigError } from '../../shared/errors.js';

const NOW = new Date('2026-06-01T08:30:15.123Z');
const VECTORS = path.resolve(import.meta.dirname, '../../../shared/vectors/nitro');
const vectorsPresent = fs.existsSync(path.join(VECTORS, 'aws-samples-1.cbor'));
const AWS_KEY_ORDER = [
  'module_id',
  'digest',
  'timestamp',
  'pcrs',
  'certificate',
  'cabundle',
  'public_key',
  'user_data',
  'nonce',
];

let ca: SimulatedNitroCa;
beforeAll(async () => {
  ca = await createSimulatedNitroCa({ now: NOW });
});

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const anchorsWithSim = () => [...AWS_NITRO_TRUST_ANCHORS, simulatedNitroTrustAnchor(ca)];

/** Byte-level layout facts of a document: the things AWS's encoder fixes. */
function layout(bytes: Uint8Array) {
  const outer = decodeCbor(bytes, { maps: true, textKeysOnly: false, maxBytes: 65_536 }) as [
    Uint8Array,
    Map<unknown, unknown>,
    Uint8Array,
    Uint8Array,
  ];
  const payload = outer[2];
  const map = decodeCbor(payload, {
    maps: true,
    textKeysOnly: false,
    allowIndefinite: true,
    maxBytes: 65_536,
  }) as Map<string, unknown>;
  const tsKey = Buffer.from([0x69, ...Buffer.from('timestamp')]);
  const tsAt = Buffer.from(payload).indexOf(tsKey) + tsKey.length;
  return {
    first: bytes[0],
    protectedHex: Buffer.from(outer[0]).toString('hex'),
    unprotectedSize: outer[1].size,
    payloadHead: payload[0],
    keys: [...map.keys()],
    timestampHead: payload[tsAt],
    pcrIndexes: [...(map.get('pcrs') as Map<number, Uint8Array>).keys()],
    cabundleLength: (map.get('cabundle') as unknown[]).length,
    signatureLength: outer[3].length,
  };
}

/** CRL distribution points: AWS's intermediates carry one; the simulator publishes no CRL (nor does the verifier read one). */
const CRL_DISTRIBUTION_POINTS = '2.5.29.31';

function shape(cert: ParsedCertificate) {
  return {
    extensions: cert.extensions
      .filter((e) => e.oid !== CRL_DISTRIBUTION_POINTS)
      .map((e) => [e.oid, e.critical]),
    basicConstraints: cert.basicConstraints,
    keyUsage: cert.keyUsage === null ? null : [...cert.keyUsage].sort(),
    curve: cert.publicKey.asymmetricKeyDetails?.namedCurve,
    signatureAlgorithm: cert.signatureAlgorithm,
  };
}

describe('simulated Nitro CA', () => {
  it('is a JSON-serialisable object of PEM strings that still works after a JSON round trip', async () => {
    const copy = JSON.parse(JSON.stringify(ca)) as SimulatedNitroCa;
    expect(copy).toEqual(ca);
    expect(copy.format).toBe(SIMULATED_NITRO_CA_FORMAT);
    expect(copy.certificates.every((p) => p.startsWith('-----BEGIN CERTIFICATE-----'))).toBe(true);
    expect(copy.privateKeys.every((p) => p.startsWith('-----BEGIN PRIVATE KEY-----'))).toBe(true);
    const bytes = await simulateNitroDocument(copy, { now: NOW });
    expect(
      verifyNitroDocument(parseNitroDocument(bytes), { trustAnchors: anchorsWithSim(), now: NOW }).simulated,
    ).toBe(true);
  });

  it('round-trips through its directory files (root.pem is the trust anchor)', () => {
    const files = simulatedNitroCaFiles(ca);
    expect(files['root.pem']).toBe(ca.certificates[0]);
    expect(Object.keys(files)).toContain('intermediate-3.key.pem');
    expect(simulatedNitroCaFromFiles(files)).toEqual(ca);
    const { 'root.key.pem': _, ...missing } = files;
    expect(() => simulatedNitroCaFromFiles(missing)).toThrow(ConfigError);
  });

  it('is shaped like AWS: root (CA) → pathLen 2 → pathLen 1 → pathLen 0, ECDSA P-384 / SHA-384', () => {
    const certs = ca.certificates.map((p, i) => parseCertificate(p, `ca ${i}`));
    expect(certs.map((c) => c.basicConstraints)).toEqual([
      { ca: true, pathLength: null },
      { ca: true, pathLength: 2 },
      { ca: true, pathLength: 1 },
      { ca: true, pathLength: 0 },
    ]);
    expect(certs.every((c) => c.publicKey.asymmetricKeyDetails?.namedCurve === 'secp384r1')).toBe(true);
    expect(certs[0]!.selfIssued).toBe(true);
    expect(certs[0]!.subject).toBe('C=US, O=enclave-kms simulated, OU=SIM, CN=sim.nitro-enclaves');
    for (let i = 1; i < 4; i++) {
      expect(Buffer.from(certs[i]!.issuerDer).equals(Buffer.from(certs[i - 1]!.subjectDer))).toBe(true);
      expect(certs[i]!.x509.verify(certs[i - 1]!.publicKey)).toBe(true);
    }
  });

  it('requires `now` and rejects objects it did not make (ConfigError CONFIG_INVALID)', async () => {
    await expect(createSimulatedNitroCa({} as never)).rejects.toThrow(ConfigError);
    await expect(simulateNitroDocument({ format: 'x' } as never, { now: NOW })).rejects.toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
    await expect(simulateNitroDocument(ca, { now: new Date(Number.NaN) })).rejects.toThrow(ConfigError);
  });
});

describe('simulated Nitro documents', () => {
  it('have AWS layout: untagged, a1013822, empty unprotected map, definite 9-entry map in AWS key order', async () => {
    const bytes = await simulateNitroDocument(ca, { now: NOW });
    expect(layout(bytes)).toEqual({
      first: 0x84,
      protectedHex: 'a1013822',
      unprotectedSize: 0,
      payloadHead: 0xa9,
      keys: AWS_KEY_ORDER,
      timestampHead: 0x1b,
      pcrIndexes: Array.from({ length: 16 }, (_, i) => i),
      cabundleLength: 4,
      signatureLength: 96,
    });
    const ev = parseNitroDocument(bytes);
    expect(ev.cabundle.map(sha256)).toEqual(ca.certificates.map((p) => sha256(decodeCertificatePem(p))));
  });

  it.skipIf(!vectorsPresent)(
    'match a real AWS document (aws-samples-1) in layout and certificate shapes',
    async () => {
      const real = new Uint8Array(fs.readFileSync(path.join(VECTORS, 'aws-samples-1.cbor')));
      const sim = await simulateNitroDocument(ca, { now: NOW });
      expect(layout(sim)).toEqual(layout(real));
      const certsOf = (ev: NitroEvidence) =>
        [...ev.cabundle, ev.certificate].map((d, i) => parseCertificate(d, `#${i}`));
      const realCerts = certsOf(parseNitroDocument(real));
      const simCerts = certsOf(parseNitroDocument(sim));
      expect(simCerts.map(shape)).toEqual(realCerts.map(shape));
    },
  );

  it('round trip: every option comes back in the claims; the leaf lives 3 hours', async () => {
    const pcr0 = new Uint8Array(48).fill(0x5a);
    const pcrs = new Map<number, Uint8Array>([
      [0, pcr0],
      [8, new Uint8Array(48).fill(8)],
    ]);
    const bytes = await simulateNitroDocument(ca, {
      now: NOW,
      pcrs,
      moduleId: 'i-0123456789abcdef0-enc0123456789abcdef',
      userData: Uint8Array.of(1, 2, 3),
      nonce: new Uint8Array(0),
      publicKey: new Uint8Array(1024).fill(0xee),
    });
    const ev = parseNitroDocument(bytes);
    const claims = verifyNitroDocument(ev, { trustAnchors: anchorsWithSim(), now: NOW });
    expect(claims).toMatchObject({
      type: 'nitro',
      debug: false,
      timestamp: NOW.toISOString(),
      measurement: '5a'.repeat(48),
      moduleId: 'i-0123456789abcdef0-enc0123456789abcdef',
      userData: '010203',
      nonce: '',
      publicKey: 'ee'.repeat(1024),
      simulated: true,
      rootFingerprint: sha256(decodeCertificatePem(ca.certificates[0])),
    });
    expect(claims.pcrs['8']).toBe('08'.repeat(48));
    expect(claims.pcrs['1']).toBe('00'.repeat(48));
    const leaf = parseCertificate(ev.certificate, 'leaf');
    expect(leaf.notAfter - leaf.notBefore).toBe(3 * 3_600_000);
    expect(leaf.subject).toMatch(/CN=i-0123456789abcdef0-enc0123456789abcdef\.sim-region-1\.sim$/);
  });

  it('default PCRs are all zero, which reads as a debug enclave', async () => {
    const claims = verifyNitroDocument(parseNitroDocument(await simulateNitroDocument(ca, { now: NOW })), {
      trustAnchors: anchorsWithSim(),
      now: NOW,
    });
    expect(claims.debug).toBe(true);
    expect(Object.keys(claims.pcrs)).toHaveLength(16);
  });

  it('verify only when the simulated root is a trust anchor', async () => {
    const bytes = await simulateNitroDocument(ca, { now: NOW });
    expect(() =>
      verifyNitroDocument(parseNitroDocument(bytes), { trustAnchors: AWS_NITRO_TRUST_ANCHORS, now: NOW }),
    ).toThrow(expect.objectContaining({ code: 'CERT_ROOT_UNTRUSTED' }));
    expect(
      verifyNitroDocument(parseNitroDocument(bytes), {
        trustAnchors: [simulatedNitroTrustAnchor(ca)],
        now: NOW,
      }).simulated,
    ).toBe(true);
  });

  it('documents of two CAs do not cross-verify', async () => {
    const other = await createSimulatedNitroCa({ now: NOW });
    const bytes = await simulateNitroDocument(other, { now: NOW });
    expect(() =>
      verifyNitroDocument(parseNitroDocument(bytes), { trustAnchors: anchorsWithSim(), now: NOW }),
    ).toThrow(expect.objectContaining({ code: 'CERT_ROOT_UNTRUSTED' }));
  });

  it('a tagged document verifies too', async () => {
    const bytes = await simulateNitroDocument(ca, { now: NOW, tagged: true });
    expect(bytes[0]).toBe(0xd2);
    expect(
      verifyNitroDocument(parseNitroDocument(bytes), { trustAnchors: anchorsWithSim(), now: NOW }).type,
    ).toBe('nitro');
  });
});
