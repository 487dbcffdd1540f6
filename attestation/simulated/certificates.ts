/**
 * Certificate building shared by the simulated attestors (nitro.ts: ECDSA P-384 chain; sev-snp.ts: RSA-PSS
 * chain): names, extensions, key identifiers, serial numbers, issuing a certificate and PEM. The ASN.1 is
 * `@peculiar/asn1-x509`'s (RFC 5280 §4.1); the signature is made by the caller with `node:crypto`, since the
 * algorithm differs. Internal to attestation/simulated (not exported from its index.ts); no I/O.
 */
import { createHash, type KeyObject, randomBytes } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  type AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  Extension,
  Extensions,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_keyUsage,
  id_ce_subjectKeyIdentifier,
  KeyIdentifier,
  KeyUsage,
  Name,
  RelativeDistinguishedName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
} from '@peculiar/asn1-x509';

/** Name attribute types used by the simulated PKIs (X.520). */
export const NAME_OIDS = {
  C: '2.5.4.6',
  ST: '2.5.4.8',
  L: '2.5.4.7',
  O: '2.5.4.10',
  OU: '2.5.4.11',
  CN: '2.5.4.3',
} as const;

/** One attribute of a Name: its type and value. */
export type NameAttribute = readonly [keyof typeof NAME_OIDS, string];

/**
 * A Name with one attribute per RDN, in the order given, encoded as AWS and AMD encode theirs: countryName
 * as PrintableString, everything else as UTF8String.
 */
export function name(attributes: readonly NameAttribute[]): Name {
  return new Name(
    attributes.map(
      ([type, value]) =>
        new RelativeDistinguishedName([
          new AttributeTypeAndValue({
            type: NAME_OIDS[type],
            value: new AttributeValue(type === 'C' ? { printableString: value } : { utf8String: value }),
          }),
        ]),
    ),
  );
}

/** An extension whose extnValue holds `value`: DER bytes, or an ASN.1 object that is serialised. */
export function extension(
  extnID: string,
  value: ArrayBuffer | Uint8Array | object,
  critical = false,
): Extension {
  const der =
    value instanceof ArrayBuffer || value instanceof Uint8Array ? value : AsnConvert.serialize(value);
  return new Extension({ extnID, critical, extnValue: new OctetString(der) });
}

/** subjectKeyIdentifier (RFC 5280 §4.2.1.2) of `publicKey`, not critical. */
export function subjectKeyIdentifierExtension(publicKey: KeyObject | Uint8Array): Extension {
  return extension(id_ce_subjectKeyIdentifier, new SubjectKeyIdentifier(keyIdentifier(publicKey)));
}

/** authorityKeyIdentifier (RFC 5280 §4.2.1.1) naming the issuer's key by its identifier, not critical. */
export function authorityKeyIdentifierExtension(issuerPublicKey: KeyObject | Uint8Array): Extension {
  const aki = new AuthorityKeyIdentifier({
    keyIdentifier: new KeyIdentifier(keyIdentifier(issuerPublicKey)),
  });
  return extension(id_ce_authorityKeyIdentifier, aki);
}

/** basicConstraints (RFC 5280 §4.2.1.9), critical; pathLenConstraint only when `pathLength` is given. */
export function basicConstraintsExtension(ca: boolean, pathLength?: number): Extension {
  const value = pathLength === undefined ? { cA: ca } : { cA: ca, pathLenConstraint: pathLength };
  return extension(id_ce_basicConstraints, new BasicConstraints(value), true);
}

/** keyUsage (RFC 5280 §4.2.1.3) with `flags` (KeyUsageFlags bits). */
export function keyUsageExtension(flags: number, critical: boolean): Extension {
  return extension(id_ce_keyUsage, new KeyUsage(flags), critical);
}

const spkiDer = (key: KeyObject | Uint8Array): Uint8Array =>
  key instanceof Uint8Array ? key : new Uint8Array(key.export({ type: 'spki', format: 'der' }));

/** RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING value; an identifier, not a MAC. */
export function keyIdentifier(publicKey: KeyObject | Uint8Array): Uint8Array {
  const spki = AsnConvert.parse(spkiDer(publicKey), SubjectPublicKeyInfo);
  return new Uint8Array(createHash('sha1').update(new Uint8Array(spki.subjectPublicKey)).digest());
}

/** A random serial number of `length` bytes: positive, without a leading zero byte. */
export function randomSerial(length: number): ArrayBuffer {
  const serial = new Uint8Array(randomBytes(length));
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  return serial.buffer;
}

/** PEM text of one DER object (64-character lines, final newline). */
export function toPem(der: ArrayBuffer | Uint8Array, label = 'CERTIFICATE'): string {
  const b64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.match(/.{1,64}/g)!.join('\n')}\n-----END ${label}-----\n`;
}

/** A private key as PKCS#8 PEM. */
export function privateKeyPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** What `issueCertificate` needs. */
export interface IssueCertificateParams {
  readonly subject: Name;
  readonly issuer: Name;
  /** The certified key, or its SubjectPublicKeyInfo DER. */
  readonly subjectPublicKey: KeyObject | Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly extensions: readonly Extension[];
  /** Bytes of the random serial number. */
  readonly serialLength: number;
  /** The signature AlgorithmIdentifier, written inside and outside the signed part. */
  readonly algorithm: AlgorithmIdentifier;
  /** Signs the DER TBSCertificate with the issuer's key, as `algorithm` says. */
  readonly sign: (tbs: Uint8Array) => Uint8Array;
}

/** Builds, signs and encodes an X.509 v3 certificate; returns its DER. */
export function issueCertificate(p: IssueCertificateParams): Uint8Array {
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: randomSerial(p.serialLength),
    signature: p.algorithm,
    issuer: p.issuer,
    validity: new Validity({ notBefore: p.notBefore, notAfter: p.notAfter }),
    subject: p.subject,
    subjectPublicKeyInfo: AsnConvert.parse(spkiDer(p.subjectPublicKey), SubjectPublicKeyInfo),
    extensions: new Extensions([...p.extensions]),
  });
  const signature = p.sign(new Uint8Array(AsnConvert.serialize(tbs)));
  const cert = new Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm: p.algorithm,
    signatureValue: Uint8Array.prototype.slice.call(signature).buffer as ArrayBuffer,
  });
  return new Uint8Array(AsnConvert.serialize(cert));
}
