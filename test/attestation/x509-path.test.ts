/**
 * The generic X.509 module: parsing (strict DER, bounded, PEM), and path building/validation — one named
 * negative test per check (CA flag, key usage, path length, critical extensions, algorithm allow-list,
 * issuer key type, signatures, pinned roots, validity, bounds), plus RSA-PSS on the real AMD chain so
 * the SEV-SNP verifier can reuse the module. Certificates are built here with @peculiar/asn1-x509 and
 * signed with node:crypto, so each differs from a valid one in exactly one respect.
 */
import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  BasicConstraints,
  Certificate,
  Extension,
  Extensions,
  id_ce_basicConstraints,
  id_ce_keyUsage,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
} from '@peculiar/asn1-x509';
import { beforeAll, describe, expect, it } from 'vitest';
import { AttestationError } from '../../attestation/errors.js';
import { AWS_NITRO_ROOT_G1_PEM } from '../../attestation/nitro/index.js';
import {
  type BuildPathOptions,
  buildCertificatePath,
  decodeCertificatePem,
  ECDSA_P384_SHA384,
  parseCertificate,
  RSA_PSS_SHA384,
  type TrustAnchor,
  X509Cache,
} from '../../attestation/x509/index.js';
import { ConfigError } from '../../shared/errors.js';

const NOW = new Date('2026-04-01T00:00:00.000Z');
const DAY = 86_400_000;
const ECDSA_SHA384 = '1.2.840.10045.4.3.3';
const ECDSA_SHA256 = '1.2.840.10045.4.3.2';
const CA_USAGE = KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign;

interface KeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}
const p384 = (): KeyPair => generateKeyPairSync('ec', { namedCurve: 'P-384' });

function cn(commonName: string): Name {
  return new Name([
    new RelativeDistinguishedName([
      new AttributeTypeAndValue({ type: '2.5.4.3', value: new AttributeValue({ utf8String: commonName }) }),
    ]),
  ]);
}

interface CertSpec {
  readonly subject: string;
  readonly issuer: string;
  readonly key: KeyPair;
  readonly issuerKey: KeyPair;
  /** null: no basicConstraints extension. Default: CA when subject ≠ "Leaf…". */
  readonly ca?: boolean | null;
  readonly pathLength?: number;
  /** null: no keyUsage extension. */
  readonly keyUsage?: number | null;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  readonly extra?: readonly Extension[];
  readonly hash?: 'sha384' | 'sha256';
  readonly tbsAlgorithm?: string;
}

const ab = (b: Uint8Array): ArrayBuffer => Uint8Array.prototype.slice.call(b).buffer as ArrayBuffer;
const ext = (id: string, critical: boolean, value: unknown): Extension =>
  new Extension({ extnID: id, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });

/** A DER certificate; everything not given is the valid default. */
function makeCert(spec: CertSpec): Uint8Array {
  const isCa = spec.ca === undefined ? !spec.subject.startsWith('Leaf') : spec.ca;
  const extensions: Extension[] = [];
  if (isCa !== null) {
    extensions.push(
      ext(
        id_ce_basicConstraints,
        true,
        new BasicConstraints(
          spec.pathLength === undefined ? { cA: isCa } : { cA: isCa, pathLenConstraint: spec.pathLength },
        ),
      ),
    );
  }
  const usage =
    spec.keyUsage === undefined ? (isCa ? CA_USAGE : KeyUsageFlags.digitalSignature) : spec.keyUsage;
  if (usage !== null) extensions.push(ext(id_ce_keyUsage, true, new KeyUsage(usage)));
  extensions.push(...(spec.extra ?? []));
  const hash = spec.hash ?? 'sha384';
  const alg = hash === 'sha384' ? ECDSA_SHA384 : ECDSA_SHA256;
  const serial = Uint8Array.from(
    createHash('sha256').update(`${spec.subject}${Math.random()}`).digest().subarray(0, 8),
  );
  serial[0] = (serial[0]! & 0x7f) | 1;
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: ab(serial),
    signature: new AlgorithmIdentifier({ algorithm: spec.tbsAlgorithm ?? alg }),
    issuer: cn(spec.issuer),
    validity: new Validity({
      notBefore: spec.notBefore ?? new Date(NOW.getTime() - DAY),
      notAfter: spec.notAfter ?? new Date(NOW.getTime() + DAY),
    }),
    subject: cn(spec.subject),
    subjectPublicKeyInfo: AsnConvert.parse(
      spec.key.publicKey.export({ type: 'spki', format: 'der' }),
      SubjectPublicKeyInfo,
    ),
    extensions: new Extensions(extensions),
  });
  const tbsDer = new Uint8Array(AsnConvert.serialize(tbs));
  const signature = sign(hash, tbsDer, spec.issuerKey.privateKey);
  return new Uint8Array(
    AsnConvert.serialize(
      new Certificate({
        tbsCertificate: tbs,
        signatureAlgorithm: new AlgorithmIdentifier({ algorithm: alg }),
        signatureValue: ab(signature),
      }),
    ),
  );
}

let rootKey: KeyPair;
let intKey: KeyPair;
let leafKey: KeyPair;
let root: Uint8Array;
let int: Uint8Array;
let leaf: Uint8Array;
let anchor: TrustAnchor;

beforeAll(() => {
  rootKey = p384();
  intKey = p384();
  leafKey = p384();
  root = makeCert({ subject: 'Root', issuer: 'Root', key: rootKey, issuerKey: rootKey });
  int = makeCert({ subject: 'Int', issuer: 'Root', key: intKey, issuerKey: rootKey, pathLength: 0 });
  leaf = makeCert({ subject: 'Leaf', issuer: 'Int', key: leafKey, issuerKey: intKey });
  anchor = { certificate: root, simulated: false, name: 'test root' };
});

function options(overrides: Partial<BuildPathOptions> = {}): BuildPathOptions {
  return {
    leaf,
    intermediates: [int],
    trustAnchors: [anchor],
    now: NOW,
    algorithms: [ECDSA_P384_SHA384],
    ...overrides,
  };
}

function caught(fn: () => unknown): AttestationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AttestationError);
    return err as AttestationError;
  }
  throw new Error('expected an AttestationError, nothing was thrown');
}
const pathError = (o: Partial<BuildPathOptions>) => caught(() => buildCertificatePath(options(o)));

describe('parseCertificate', () => {
  it('parses names, validity, constraints and usage; the record is a private copy', () => {
    const input = Uint8Array.from(int);
    const c = parseCertificate(input, 'int');
    input.fill(0);
    expect(c.subject).toBe('CN=Int');
    expect(c.issuer).toBe('CN=Root');
    expect(c.selfIssued).toBe(false);
    expect(c.basicConstraints).toEqual({ ca: true, pathLength: 0 });
    expect([...c.keyUsage!].sort()).toEqual(['crlSign', 'keyCertSign']);
    expect(c.signatureAlgorithm).toBe(ECDSA_P384_SHA384.identifiers[0]);
    expect(c.notAfter - c.notBefore).toBe(2 * DAY);
    expect(Buffer.from(c.der).equals(Buffer.from(int))).toBe(true);
    expect(c.fingerprint).toBe(createHash('sha256').update(int).digest('hex'));
  });

  it('returns the cached record for the same DER', () => {
    const cache = new X509Cache();
    const a = parseCertificate(int, 'a', cache);
    const b = parseCertificate(Uint8Array.from(int), 'b', cache);
    expect(b).toBe(a);
    expect(cache.stats).toMatchObject({ certificateHits: 1, certificateMisses: 1 });
  });

  it('rejects empty and oversized DER (CERT_INVALID)', () => {
    for (const der of [new Uint8Array(0), new Uint8Array(4097)]) {
      const err = caught(() => parseCertificate(der, 'x'));
      expect(err.code).toBe('CERT_INVALID');
      expect(err.message).toMatch(/bytes, expected 1..4096/);
    }
  });

  it('rejects trailing bytes after the certificate (CERT_INVALID)', () => {
    const err = caught(() => parseCertificate(Uint8Array.from([...int, 0]), 'x'));
    expect(err.code).toBe('CERT_INVALID');
    expect(err.message).toMatch(/1 byte\(s\) after the certificate/);
  });

  it('rejects non-minimal and indefinite lengths (CERT_INVALID)', () => {
    // The outer SEQUENCE uses 0x82 xx xx; re-encode its length with a superfluous leading zero byte.
    expect(int[1]).toBe(0x82);
    const longer = Uint8Array.from([0x30, 0x83, 0x00, int[2]!, int[3]!, ...int.subarray(4)]);
    expect(caught(() => parseCertificate(longer, 'x')).message).toMatch(/non-minimal length/);
    const indefinite = Uint8Array.from([0x30, 0x80, ...int.subarray(4), 0, 0]);
    expect(caught(() => parseCertificate(indefinite, 'x')).message).toMatch(/unsupported length form 0x80/);
  });

  it('rejects truncated or garbage bytes (CERT_INVALID)', () => {
    for (const der of [
      int.subarray(0, int.length - 1),
      Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x01),
      Uint8Array.of(1, 2, 3),
    ]) {
      expect(caught(() => parseCertificate(der, 'x')).code).toBe('CERT_INVALID');
    }
  });

  it('rejects a certificate whose parsed value cannot be re-encoded (CERT_INVALID, not a plain Error)', () => {
    // Found by fuzzing (docs/reliability.md): the curve OID in the key's AlgorithmIdentifier (06 05 2b 81 04 00 22)
    // with its tag turned into UTCTime or GeneralizedTime. OpenSSL and the ASN.1 reader both read it; writing it back
    // threw a plain Error ("Wrong input string for conversion") that escaped the verifier untyped.
    const root = parseCertificate(AWS_NITRO_ROOT_G1_PEM, 'root').der;
    const curve = Buffer.from(root).indexOf(Buffer.from('06052b81040022', 'hex'));
    expect(curve).toBeGreaterThan(0);
    for (const [tag, why] of [
      [0x17, /cannot be re-encoded/],
      [0x18, /not an X\.509 certificate/],
    ] as const) {
      const der = Uint8Array.from(root);
      der[curve] = tag;
      const err = caught(() => parseCertificate(der, 'x'));
      expect(err.code).toBe('CERT_INVALID');
      expect(err.message).toMatch(why);
    }
  });

  it('rejects a TBSCertificate.signature that differs from signatureAlgorithm (CERT_INVALID)', () => {
    const der = makeCert({
      subject: 'Leaf',
      issuer: 'Int',
      key: leafKey,
      issuerKey: intKey,
      tbsAlgorithm: ECDSA_SHA256,
    });
    const err = caught(() => parseCertificate(der, 'x'));
    expect(err.code).toBe('CERT_INVALID');
    expect(err.message).toMatch(/TBSCertificate.signature differs from signatureAlgorithm/);
  });

  it('rejects a duplicated extension (CERT_INVALID)', () => {
    const der = makeCert({
      subject: 'Leaf',
      issuer: 'Int',
      key: leafKey,
      issuerKey: intKey,
      extra: [ext(id_ce_keyUsage, false, new KeyUsage(KeyUsageFlags.digitalSignature))],
    });
    const err = caught(() => parseCertificate(der, 'x'));
    expect(err.code).toBe('CERT_INVALID');
    expect(err.message).toMatch(/extension 2.5.29.15 appears more than once/);
  });

  it('rejects PEM that is not exactly one canonical CERTIFICATE block (CERT_INVALID)', () => {
    const pem = `-----BEGIN CERTIFICATE-----\n${Buffer.from(int).toString('base64')}\n-----END CERTIFICATE-----`;
    expect(parseCertificate(pem, 'pem').subject).toBe('CN=Int');
    for (const bad of [
      `${pem}\n${pem}`,
      pem.replace('CERTIFICATE-----\n', 'CERTIFICATE-----\n!'),
      pem.replace('-----BEGIN CERTIFICATE-----', '-----BEGIN PRIVATE KEY-----'),
      `-----BEGIN CERTIFICATE-----\n${Buffer.from(int).toString('base64')}==\n-----END CERTIFICATE-----`,
      'x'.repeat(9000),
    ]) {
      expect(caught(() => parseCertificate(bad, 'pem')).code).toBe('CERT_INVALID');
    }
    expect(caught(() => parseCertificate(42 as unknown as string, 'n')).message).toMatch(
      /expected PEM text or DER bytes/,
    );
  });
});

describe('buildCertificatePath', () => {
  it('builds leaf → intermediate → pinned root and reports the anchor', () => {
    const built = buildCertificatePath(options());
    expect(built.certificates.map((c) => c.subject)).toEqual(['CN=Leaf', 'CN=Int', 'CN=Root']);
    expect(built.rootFingerprint).toBe(createHash('sha256').update(root).digest('hex'));
    expect(built.simulated).toBe(false);
    expect(built.anchor).toBe(anchor);
  });

  it('carries the simulated flag of the anchoring root', () => {
    expect(
      buildCertificatePath(options({ trustAnchors: [{ certificate: root, simulated: true }] })).simulated,
    ).toBe(true);
  });

  it('accepts the root in the bag, intermediates in any order, and ignores unused ones', () => {
    const stray = makeCert({ subject: 'Stray', issuer: 'Stray', key: p384(), issuerKey: p384() });
    const built = buildCertificatePath(options({ intermediates: [stray, root, int] }));
    expect(built.certificates).toHaveLength(3);
  });

  it('backtracks over issuers with the same name: the one whose key verifies is used', () => {
    const impostorKey = p384();
    const impostor = makeCert({
      subject: 'Int',
      issuer: 'Root',
      key: impostorKey,
      issuerKey: rootKey,
      pathLength: 0,
    });
    const built = buildCertificatePath(options({ intermediates: [impostor, int] }));
    expect(built.certificates[1]!.fingerprint).toBe(createHash('sha256').update(int).digest('hex'));
  });

  it('rejects an issuer that is not a CA (CERT_INVALID)', () => {
    const notCa = makeCert({
      subject: 'Int',
      issuer: 'Root',
      key: intKey,
      issuerKey: rootKey,
      ca: false,
      keyUsage: CA_USAGE,
    });
    const err = pathError({ intermediates: [notCa] });
    expect(err.code).toBe('CERT_INVALID');
    expect(err.message).toMatch(/intermediate #1 certificate issues certificates but is not a CA/);
  });

  it('rejects an issuer without basicConstraints (CERT_INVALID)', () => {
    const noBc = makeCert({
      subject: 'Int',
      issuer: 'Root',
      key: intKey,
      issuerKey: rootKey,
      ca: null,
      keyUsage: CA_USAGE,
    });
    expect(pathError({ intermediates: [noBc] }).message).toMatch(/not a CA \(basicConstraints\)/);
  });

  it('rejects an issuer whose keyUsage lacks keyCertSign (CERT_INVALID)', () => {
    const noSign = makeCert({
      subject: 'Int',
      issuer: 'Root',
      key: intKey,
      issuerKey: rootKey,
      keyUsage: KeyUsageFlags.digitalSignature | KeyUsageFlags.cRLSign,
    });
    const err = pathError({ intermediates: [noSign] });
    expect(err.code).toBe('CERT_INVALID');
    expect(err.message).toMatch(/keyUsage lacks keyCertSign/);
  });

  it('accepts an issuer without a keyUsage extension', () => {
    const noKu = makeCert({
      subject: 'Int',
      issuer: 'Root',
      key: intKey,
      issuerKey: rootKey,
      keyUsage: null,
    });
    expect(buildCertificatePath(options({ intermediates: [noKu] })).certificates).toHaveLength(3);
  });

  it('rejects a path longer than a pathLenConstraint allows (CERT_INVALID)', () => {
    const int2Key = p384();
    const int2 = makeCert({ subject: 'Int2', issuer: 'Int', key: int2Key, issuerKey: intKey });
    const leaf2 = makeCert({ subject: 'Leaf2', issuer: 'Int2', key: leafKey, issuerKey: int2Key });
    const err = pathError({ leaf: leaf2, intermediates: [int, int2] });
    expect(err.code).toBe('CERT_INVALID');
    expect(err.message).toMatch(
      /intermediate #1 certificate allows 0 intermediate CA certificate\(s\) below it, the path has 1/,
    );
  });

  it('does not count a self-issued intermediate against pathLenConstraint (RFC 5280 §6.1.4)', () => {
    const rolledKey = p384();
    const rolled = makeCert({ subject: 'Int', issuer: 'Int', key: rolledKey, issuerKey: intKey });
    const leaf2 = makeCert({ subject: 'Leaf2', issuer: 'Int', key: leafKey, issuerKey: rolledKey });
    const built = buildCertificatePath(options({ leaf: leaf2, intermediates: [int, rolled] }));
    expect(built.certificates).toHaveLength(4);
  });

  it('rejects an unrecognised critical extension unless the caller understands it (CERT_INVALID)', () => {
    const oid = '1.3.6.1.4.1.99999.1';
    const odd = makeCert({
      subject: 'Leaf',
      issuer: 'Int',
      key: leafKey,
      issuerKey: intKey,
      extra: [
        new Extension({ extnID: oid, critical: true, extnValue: new OctetString(Uint8Array.of(5, 0)) }),
      ],
    });
    const err = pathError({ leaf: odd });
    expect(err.code).toBe('CERT_INVALID');
    expect(err.message).toMatch(/unrecognised critical extension 1.3.6.1.4.1.99999.1/);
    expect(
      buildCertificatePath(options({ leaf: odd, understoodCriticalExtensions: [oid] })).certificates,
    ).toHaveLength(3);
  });

  it('rejects a signature algorithm outside the allow-list (CERT_INVALID)', () => {
    const sha256Leaf = makeCert({
      subject: 'Leaf',
      issuer: 'Int',
      key: leafKey,
      issuerKey: intKey,
      hash: 'sha256',
    });
    const err = pathError({ leaf: sha256Leaf });
    expect(err.code).toBe('CERT_INVALID');
    expect(err.message).toMatch(/signed with a disallowed algorithm .* allowed: ecdsa-with-SHA384 \(P-384\)/);
    expect(pathError({ algorithms: [RSA_PSS_SHA384] }).code).toBe('CERT_INVALID');
  });

  it('rejects an issuer key of the wrong type for the algorithm (CERT_CHAIN_INVALID)', () => {
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const int256 = makeCert({ subject: 'Int', issuer: 'Root', key: p256, issuerKey: rootKey, pathLength: 0 });
    const leaf256 = makeCert({ subject: 'Leaf', issuer: 'Int', key: leafKey, issuerKey: p256 });
    const err = pathError({ leaf: leaf256, intermediates: [int256] });
    expect(err.code).toBe('CERT_CHAIN_INVALID');
    expect(err.message).toMatch(/cannot verify ecdsa-with-SHA384/);
  });

  it('rejects a signature that does not verify under the named issuer (CERT_CHAIN_INVALID)', () => {
    const forged = makeCert({ subject: 'Leaf', issuer: 'Int', key: leafKey, issuerKey: p384() });
    const err = pathError({ leaf: forged });
    expect(err.code).toBe('CERT_CHAIN_INVALID');
    expect(err.message).toMatch(
      /signature of the leaf certificate does not verify under the key of intermediate #1/,
    );
  });

  it('rejects a chain with a missing issuer (CERT_CHAIN_INVALID)', () => {
    const err = pathError({ intermediates: [] });
    expect(err.code).toBe('CERT_CHAIN_INVALID');
    expect(err.message).toMatch(/no certificate among the intermediates and trust anchors is named "CN=Int"/);
  });

  it('rejects a chain that ends at an unpinned self-signed root (CERT_ROOT_UNTRUSTED)', () => {
    const otherRootKey = p384();
    const otherRoot = makeCert({
      subject: 'Other',
      issuer: 'Other',
      key: otherRootKey,
      issuerKey: otherRootKey,
    });
    const err = pathError({
      intermediates: [int, root],
      trustAnchors: [{ certificate: otherRoot, simulated: false }],
    });
    expect(err.code).toBe('CERT_ROOT_UNTRUSTED');
    expect(err.message).toMatch(/ends at the self-issued certificate "CN=Root"/);
  });

  it('rejects a look-alike root: same name as the anchor, another key (CERT_ROOT_UNTRUSTED)', () => {
    const fakeKey = p384();
    const fakeRoot = makeCert({ subject: 'Root', issuer: 'Root', key: fakeKey, issuerKey: fakeKey });
    const fakeInt = makeCert({
      subject: 'Int',
      issuer: 'Root',
      key: intKey,
      issuerKey: fakeKey,
      pathLength: 0,
    });
    const err = pathError({ intermediates: [fakeInt, fakeRoot] });
    expect(err.code).toBe('CERT_ROOT_UNTRUSTED');
    expect(err.message).toMatch(/"CN=Root" \(SHA-256 [0-9a-f]{64}\), which is not a trust anchor/);
  });

  it('rejects an expired anchor (CERT_EXPIRED) and a not-yet-valid intermediate (CERT_NOT_YET_VALID)', () => {
    const oldRoot = makeCert({
      subject: 'Root',
      issuer: 'Root',
      key: rootKey,
      issuerKey: rootKey,
      notAfter: new Date(NOW.getTime() - 1000),
    });
    const expired = pathError({ trustAnchors: [{ certificate: oldRoot, simulated: false, name: 'old' }] });
    expect(expired.code).toBe('CERT_EXPIRED');
    expect(expired.message).toMatch(/trust anchor "old" certificate expired/);
    const future = makeCert({
      subject: 'Int',
      issuer: 'Root',
      key: intKey,
      issuerKey: rootKey,
      notBefore: new Date(NOW.getTime() + 1000),
    });
    const early = pathError({ intermediates: [future] });
    expect(early.code).toBe('CERT_NOT_YET_VALID');
    expect(early.message).toMatch(/intermediate #1 certificate is not valid before/);
  });

  it('prefers a valid alternative path over an expired one', () => {
    const expiredInt = makeCert({
      subject: 'Int',
      issuer: 'Root',
      key: intKey,
      issuerKey: rootKey,
      notAfter: new Date(NOW.getTime() - 1000),
    });
    expect(buildCertificatePath(options({ intermediates: [expiredInt, int] })).certificates).toHaveLength(3);
  });

  it('rejects when no trust anchor is configured (CERT_ROOT_UNTRUSTED)', () => {
    const err = pathError({ trustAnchors: [] });
    expect(err.code).toBe('CERT_ROOT_UNTRUSTED');
    expect(err.message).toBe('no trust anchors are configured');
  });

  it('bounds the bag of intermediates and the path length (CERT_CHAIN_INVALID)', () => {
    expect(pathError({ intermediates: Array.from({ length: 9 }, () => int) }).message).toMatch(
      /at most 8 accepted/,
    );
    expect(pathError({ maxPathLength: 2 }).message).toMatch(/no path within 2 certificates/);
  });

  it('terminates on cross-signed loops and many same-name candidates', () => {
    const aKey = p384();
    const bKey = p384();
    const a = makeCert({ subject: 'A', issuer: 'B', key: aKey, issuerKey: bKey });
    const b = makeCert({ subject: 'B', issuer: 'A', key: bKey, issuerKey: aKey });
    const leafA = makeCert({ subject: 'LeafA', issuer: 'A', key: leafKey, issuerKey: aKey });
    expect(pathError({ leaf: leafA, intermediates: [a, b] }).code).toBe('CERT_CHAIN_INVALID');
    const decoys = Array.from({ length: 8 }, () =>
      makeCert({ subject: 'Int', issuer: 'Root', key: p384(), issuerKey: p384() }),
    );
    expect(pathError({ intermediates: decoys }).code).toBe('CERT_CHAIN_INVALID');
  });

  it('requires now, trust anchors, intermediates and a non-empty algorithm list (ConfigError CONFIG_INVALID)', () => {
    for (const bad of [
      { now: new Date(Number.NaN) },
      { now: undefined },
      { algorithms: [] },
      { trustAnchors: undefined },
      { intermediates: undefined },
    ]) {
      expect(() => buildCertificatePath(options(bad as never))).toThrow(ConfigError);
    }
  });
});

const SNP = path.resolve(import.meta.dirname, '../../../shared/vectors/sev-snp');
const snpPresent = fs.existsSync(path.join(SNP, 'milan-ark.pem'));

describe.skipIf(!snpPresent)(
  'buildCertificatePath with RSA-PSS (real AMD chain, ../shared/vectors/sev-snp)',
  () => {
    const read = (f: string) => fs.readFileSync(path.join(SNP, f), 'utf8');

    it.each(['milan', 'genoa'])(
      '%s: ASK and ASVK chain to the pinned ARK under RSA_PSS_SHA384',
      (product) => {
        const ark: TrustAnchor = { certificate: read(`${product}-ark.pem`), simulated: false };
        for (const signer of ['ask', 'asvk']) {
          const cert = parseCertificate(read(`${product}-${signer}.pem`), signer);
          const built = buildCertificatePath({
            leaf: read(`${product}-${signer}.pem`),
            intermediates: [],
            trustAnchors: [ark],
            now: new Date(cert.notBefore + DAY),
            algorithms: [RSA_PSS_SHA384],
          });
          expect(built.certificates).toHaveLength(2);
          expect(built.rootFingerprint).toBe(
            createHash('sha256')
              .update(decodeCertificatePem(read(`${product}-ark.pem`)))
              .digest('hex'),
          );
        }
      },
    );

    it('a VCEK (P-384 key) chains through the ASK to the ARK; an ECDSA-only allow-list rejects it', () => {
      const vcekPem = read('go-sev-guest-1-vcek.pem');
      const vcek = parseCertificate(vcekPem, 'vcek');
      const product = /Genoa/.test(vcek.issuer) ? 'genoa' : 'milan';
      const base = {
        leaf: vcekPem,
        intermediates: [read(`${product}-ask.pem`)],
        trustAnchors: [{ certificate: read(`${product}-ark.pem`), simulated: false }],
        now: new Date(vcek.notBefore + DAY),
      };
      expect(buildCertificatePath({ ...base, algorithms: [RSA_PSS_SHA384] }).certificates).toHaveLength(3);
      expect(caught(() => buildCertificatePath({ ...base, algorithms: [ECDSA_P384_SHA384] })).code).toBe(
        'CERT_INVALID',
      );
    });
  },
);
