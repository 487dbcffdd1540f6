/**
 * Adversarial review of attestation/x509 (path building) and of its use by the Nitro verifier.
 *
 * Finding: path building bounded the signature checks it made, but a link found in the X509Cache was
 * not counted. A hostile bag of same-named intermediates that all carry (and are all signed by) one
 * key forms a complete graph; once its links are cached (they are, during the first call), every
 * call enumerated every simple path through it: ~1.1·10^5 extensions, about a second per document.
 * The bound now counts every link check, cached or not.
 *
 * Pins: a cached link never carries trust to an anchor set that no longer contains its root, nor past
 * `now`; pathLenConstraint counts only non-self-issued intermediates.
 */
import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
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
import {
  ES384_PROTECTED_HEADER,
  encodeCoseSign1,
  encodeNitroPayload,
  parseNitroDocument,
  verifyNitroDocument,
} from '../../attestation/nitro/index.js';
import {
  buildCertificatePath,
  ECDSA_P384_SHA384,
  type TrustAnchor,
  X509Cache,
} from '../../attestation/x509/index.js';

const NOW = new Date('2026-04-01T00:00:00.000Z');
const DAY = 86_400_000;
const ECDSA_SHA384 = '1.2.840.10045.4.3.3';

interface KeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}
const p384 = (): KeyPair => generateKeyPairSync('ec', { namedCurve: 'P-384' });
const ab = (b: Uint8Array): ArrayBuffer => Uint8Array.prototype.slice.call(b).buffer as ArrayBuffer;

function cn(commonName: string): Name {
  return new Name([
    new RelativeDistinguishedName([
      new AttributeTypeAndValue({ type: '2.5.4.3', value: new AttributeValue({ utf8String: commonName }) }),
    ]),
  ]);
}

const ext = (id: string, value: unknown): Extension =>
  new Extension({ extnID: id, critical: true, extnValue: new OctetString(AsnConvert.serialize(value)) });

let serialCounter = 0;

/** A DER certificate, ECDSA P-384 / SHA-384, valid NOW ± 1 day. */
function makeCert(
  subject: string,
  issuer: string,
  key: KeyPair,
  issuerKey: KeyPair,
  ca: boolean,
  pathLength?: number,
): Uint8Array {
  serialCounter += 1;
  const serial = Uint8Array.from(createHash('sha256').update(`${serialCounter}`).digest().subarray(0, 8));
  serial[0] = (serial[0]! & 0x7f) | 1;
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: ab(serial),
    signature: new AlgorithmIdentifier({ algorithm: ECDSA_SHA384 }),
    issuer: cn(issuer),
    validity: new Validity({
      notBefore: new Date(NOW.getTime() - DAY),
      notAfter: new Date(NOW.getTime() + DAY),
    }),
    subject: cn(subject),
    subjectPublicKeyInfo: AsnConvert.parse(
      key.publicKey.export({ type: 'spki', format: 'der' }),
      SubjectPublicKeyInfo,
    ),
    extensions: new Extensions([
      ext(
        id_ce_basicConstraints,
        new BasicConstraints(
          pathLength === undefined ? { cA: ca } : { cA: ca, pathLenConstraint: pathLength },
        ),
      ),
      ext(id_ce_keyUsage, new KeyUsage(ca ? KeyUsageFlags.keyCertSign : KeyUsageFlags.digitalSignature)),
    ]),
  });
  const tbsDer = new Uint8Array(AsnConvert.serialize(tbs));
  return new Uint8Array(
    AsnConvert.serialize(
      new Certificate({
        tbsCertificate: tbs,
        signatureAlgorithm: new AlgorithmIdentifier({ algorithm: ECDSA_SHA384 }),
        signatureValue: ab(sign('sha384', tbsDer, issuerKey.privateKey)),
      }),
    ),
  );
}

function caught(fn: () => unknown): AttestationError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AttestationError) return err;
    throw err;
  }
  throw new Error('expected an AttestationError, nothing was thrown');
}

// A root that is trusted, and a hostile bag: eight CA certificates all named "Loop" (subject = issuer),
// all carrying key K and signed by K, and a leaf issued by "Loop" with key K. Every certificate verifies
// under every other one; none leads to the trusted root.
let trusted: TrustAnchor;
let loop: Uint8Array[];
let loopLeaf: Uint8Array;

beforeAll(() => {
  const rootKey = p384();
  const k = p384();
  trusted = { certificate: makeCert('Root', 'Root', rootKey, rootKey, true), simulated: false };
  loop = Array.from({ length: 8 }, () => makeCert('Loop', 'Loop', k, k, true));
  loopLeaf = makeCert('Leaf', 'Loop', k, k, false);
});

describe('review: path building work is bounded with a warm cache', () => {
  it('a complete graph of same-named intermediates gives up after 64 link checks, cached or not (CERT_CHAIN_INVALID)', () => {
    const cache = new X509Cache();
    const build = () =>
      buildCertificatePath({
        leaf: loopLeaf,
        intermediates: loop,
        trustAnchors: [trusted],
        now: NOW,
        algorithms: [ECDSA_P384_SHA384],
        cache,
      });
    for (let call = 0; call < 3; call++) {
      const hitsBefore = cache.stats.linkHits;
      const err = caught(build);
      expect(err.code).toBe('CERT_CHAIN_INVALID');
      expect(err.message).toMatch(/gave up after 64 issuer link checks/);
      // The search itself is bounded: before the fix one call made ~110 000 cache hits.
      expect(cache.stats.linkHits - hitsBefore).toBeLessThanOrEqual(64);
    }
  });

  it('without a cache the same bag fails the same way (CERT_CHAIN_INVALID)', () => {
    const err = caught(() =>
      buildCertificatePath({
        leaf: loopLeaf,
        intermediates: loop,
        trustAnchors: [trusted],
        now: NOW,
        algorithms: [ECDSA_P384_SHA384],
      }),
    );
    expect(err.code).toBe('CERT_CHAIN_INVALID');
    expect(err.message).toMatch(/gave up after 64 issuer link checks/);
  });

  it('a hostile Nitro document carrying that bag is rejected cheaply by verifyNitroDocument with a cache (CERT_CHAIN_INVALID)', () => {
    const payload = encodeNitroPayload({
      moduleId: 'i-00000000000000000-enc0000000000000000',
      digest: 'SHA384',
      timestamp: NOW.getTime(),
      pcrs: new Map([0, 1, 2].map((i) => [i, new Uint8Array(48)] as const)),
      certificate: loopLeaf,
      cabundle: loop,
      publicKey: null,
      userData: null,
      nonce: null,
    });
    const bytes = encodeCoseSign1({
      protectedHeader: ES384_PROTECTED_HEADER,
      payload,
      signature: new Uint8Array(96),
    });
    const evidence = parseNitroDocument(bytes);
    const cache = new X509Cache();
    for (let call = 0; call < 2; call++) {
      const hitsBefore = cache.stats.linkHits;
      const err = caught(() => verifyNitroDocument(evidence, { trustAnchors: [trusted], now: NOW, cache }));
      expect(err.code).toBe('CERT_CHAIN_INVALID');
      expect(err.message).toMatch(/gave up after 64 issuer link checks/);
      expect(cache.stats.linkHits - hitsBefore).toBeLessThanOrEqual(64);
    }
  });
});

describe('review: cached links carry no trust and no validity', () => {
  it('a link cached under an anchor is not trusted once that anchor is gone (CERT_ROOT_UNTRUSTED)', () => {
    const rootKey = p384();
    const intKey = p384();
    const leafKey = p384();
    const root = makeCert('R', 'R', rootKey, rootKey, true);
    const int = makeCert('I', 'R', intKey, rootKey, true);
    const leaf = makeCert('L', 'I', leafKey, intKey, false);
    const cache = new X509Cache();
    const base = { leaf, intermediates: [int, root], now: NOW, algorithms: [ECDSA_P384_SHA384], cache };
    const ok = buildCertificatePath({ ...base, trustAnchors: [{ certificate: root, simulated: true }] });
    expect(ok.simulated).toBe(true);
    expect(cache.size.links).toBe(2);
    const err = caught(() => buildCertificatePath({ ...base, trustAnchors: [trusted] }));
    expect(err.code).toBe('CERT_ROOT_UNTRUSTED');
    // And a later `now` past every notAfter is rejected although the links are cached.
    const late = caught(() =>
      buildCertificatePath({
        ...base,
        trustAnchors: [{ certificate: root, simulated: true }],
        now: new Date(NOW.getTime() + 2 * DAY),
      }),
    );
    expect(late.code).toBe('CERT_EXPIRED');
  });

  it('pathLenConstraint 0 on an intermediate forbids a CA below it even with a warm cache (CERT_INVALID)', () => {
    const rootKey = p384();
    const aKey = p384();
    const bKey = p384();
    const leafKey = p384();
    const root = makeCert('R0', 'R0', rootKey, rootKey, true);
    const a = makeCert('A', 'R0', aKey, rootKey, true, 0);
    const b = makeCert('B', 'A', bKey, aKey, true);
    const leaf = makeCert('L0', 'B', leafKey, bKey, false);
    const cache = new X509Cache();
    const options = {
      leaf,
      intermediates: [a, b],
      trustAnchors: [{ certificate: root, simulated: false }],
      now: NOW,
      algorithms: [ECDSA_P384_SHA384],
      cache,
    };
    for (let call = 0; call < 2; call++) {
      const err = caught(() => buildCertificatePath(options));
      expect(err.code).toBe('CERT_INVALID');
      expect(err.message).toMatch(/allows 0 intermediate CA certificate\(s\) below it, the path has 1/);
    }
  });
});
