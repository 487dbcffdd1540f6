/**
 * Parsing one X.509 certificate (RFC 5280 §4.1) into an immutable record, once.
 *
 * Three readers look at the same bytes, each for what it does best, and they must agree:
 * - `der.ts` slices the raw issuer/subject names and signature AlgorithmIdentifiers (byte comparison);
 * - OpenSSL (`node:crypto` X509Certificate) parses in full, gives the public key and verifies
 *   signatures (path.ts);
 * - `@peculiar/asn1-x509` decodes the extensions and validity. It must re-serialise the certificate
 *   byte for byte, so it cannot have read a lenient (BER) encoding differently from OpenSSL.
 * (`@peculiar/x509` would be simpler, but its v2 needs a global Reflect polyfill; the ASN.1 schema
 * packages it is built on do not.)
 *
 * Role checks (CA flag, key usage, path length, algorithms, validity at `now`) are in path.ts.
 */
import { createHash, type KeyObject, X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  BasicConstraints,
  Certificate,
  id_ce_basicConstraints,
  id_ce_keyUsage,
  KeyUsage,
  type KeyUsageType,
  type Name,
} from '@peculiar/asn1-x509';
import { LIMITS } from '../../shared/limits.js';
import { AttestationError } from '../errors.js';
import type { DecodedPem, X509Cache } from './cache.js';
import { certificateFields } from './der.js';

/** A certificate as PEM text (one CERTIFICATE block) or DER bytes. */
export type CertificateInput = string | Uint8Array;

/** Key usage bits by name (RFC 5280 §4.2.1.3). */
export type KeyUsageName = KeyUsageType;

/** One extension as it appears in the certificate. */
export interface CertificateExtension {
  /** Dotted OID. */
  readonly oid: string;
  readonly critical: boolean;
  /** The extnValue OCTET STRING's contents (DER of the extension value). */
  readonly value: Uint8Array;
}

/** A parsed, structurally checked certificate. Immutable; shared through the cache. */
export interface ParsedCertificate {
  /** A private copy of the DER. */
  readonly der: Uint8Array;
  /** SHA-256 of the DER, lowercase hex. */
  readonly fingerprint: string;
  /** X.509 version: 1, 2 or 3. */
  readonly version: number;
  /** OpenSSL's view (signature verification). */
  readonly x509: X509Certificate;
  readonly publicKey: KeyObject;
  /** Subject and issuer, one line (for messages only; matching uses the DER). */
  readonly subject: string;
  readonly issuer: string;
  /** Every commonName (2.5.4.3) value of the subject and of the issuer, in order. */
  readonly subjectCommonNames: readonly string[];
  readonly issuerCommonNames: readonly string[];
  /** Raw DER of the subject and issuer Names. */
  readonly subjectDer: Uint8Array;
  readonly issuerDer: Uint8Array;
  /** Subject and issuer names are byte-identical. */
  readonly selfIssued: boolean;
  /** Validity, milliseconds since the epoch, both inclusive. */
  readonly notBefore: number;
  readonly notAfter: number;
  /** DER of the signature AlgorithmIdentifier, lowercase hex. */
  readonly signatureAlgorithm: string;
  /** basicConstraints, or null when the extension is absent. */
  readonly basicConstraints: { readonly ca: boolean; readonly pathLength: number | null } | null;
  /** keyUsage bits that are set, or null when the extension is absent. */
  readonly keyUsage: ReadonlySet<KeyUsageName> | null;
  readonly extensions: readonly CertificateExtension[];
}

/** Most characters of PEM text accepted for one certificate (checked before decoding). */
export const MAX_CERTIFICATE_PEM_CHARS = 2 * LIMITS.maxCertificateBytes;
const OID_COMMON_NAME = '2.5.4.3';
const PEM_RE = /^-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]+?)\r?\n?-----END CERTIFICATE-----$/;

function invalid(label: string, why: string, cause?: unknown): AttestationError {
  return new AttestationError(
    'CERT_INVALID',
    `${label} certificate: ${why}`,
    cause === undefined ? {} : { cause },
  );
}

const toBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** SHA-256 of `der`, lowercase hex. */
export function certificateFingerprint(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex');
}

/**
 * Decodes one PEM CERTIFICATE block to DER.
 * @throws AttestationError CERT_INVALID when the text is too long, not exactly one block, or not canonical base64.
 */
export function decodeCertificatePem(text: string, label = 'PEM'): Uint8Array {
  /* Precondition: PEM text is bounded before it is decoded. */
  if (text.length > MAX_CERTIFICATE_PEM_CHARS) {
    throw invalid(
      label,
      `PEM text is ${text.length} characters, over the ${MAX_CERTIFICATE_PEM_CHARS}-character limit`,
    );
  }
  const match = PEM_RE.exec(text.trim());
  /* Precondition: the PEM text is exactly one CERTIFICATE block. */
  if (match === null) throw invalid(label, 'not a single PEM "CERTIFICATE" block');
  const body = match[1]!.replace(/[\r\n]/g, '');
  const der = Buffer.from(body, 'base64');
  /* Precondition: the base64 body is canonical (no stray padding or characters). */
  if (body.length % 4 !== 0 || der.toString('base64') !== body) {
    throw invalid(label, 'the PEM body is not canonical base64');
  }
  return new Uint8Array(der.buffer, der.byteOffset, der.byteLength);
}

function decodeInput(input: CertificateInput, label: string, cache: X509Cache | undefined): DecodedPem {
  if (typeof input === 'string') {
    const hit = cache?.getPem(input);
    if (hit !== undefined) return hit;
    const der = decodeCertificatePem(input, label);
    const decoded = { der, fingerprint: certificateFingerprint(der) };
    cache?.putPem(input, decoded);
    return decoded;
  }
  /* Precondition: a certificate is PEM text or DER bytes. */
  if (!(input instanceof Uint8Array)) throw invalid(label, 'expected PEM text or DER bytes');
  return { der: input, fingerprint: certificateFingerprint(input) };
}

function parseExtensions(
  cert: Certificate,
  label: string,
): Pick<ParsedCertificate, 'basicConstraints' | 'keyUsage' | 'extensions'> {
  const extensions: CertificateExtension[] = [];
  let basicConstraints: ParsedCertificate['basicConstraints'] = null;
  let keyUsage: Set<KeyUsageName> | null = null;
  const seen = new Set<string>();
  for (const ext of cert.tbsCertificate.extensions ?? []) {
    /* Precondition: no extension appears twice (RFC 5280 §4.2). */
    if (seen.has(ext.extnID)) throw invalid(label, `extension ${ext.extnID} appears more than once`);
    seen.add(ext.extnID);
    const value = new Uint8Array(ext.extnValue.buffer.slice(0));
    extensions.push({ oid: ext.extnID, critical: ext.critical, value });
    try {
      if (ext.extnID === id_ce_basicConstraints) {
        const bc = AsnConvert.parse(value, BasicConstraints);
        basicConstraints = { ca: bc.cA, pathLength: bc.pathLenConstraint ?? null };
      } else if (ext.extnID === id_ce_keyUsage) {
        keyUsage = new Set(AsnConvert.parse(value, KeyUsage).toJSON());
      }
    } catch (cause) {
      throw invalid(label, `extension ${ext.extnID} cannot be decoded`, cause);
    }
  }
  return { basicConstraints, keyUsage, extensions };
}

function buildRecord(der: Uint8Array, fingerprint: string, label: string): ParsedCertificate {
  const fields = certificateFields(der, label);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(der);
  } catch (cause) {
    throw invalid(label, 'OpenSSL cannot parse it', cause);
  }
  /* Precondition: OpenSSL read exactly these bytes (no trailing data ignored). */
  if (!x509.raw.equals(toBuffer(der))) throw invalid(label, 'OpenSSL read different bytes');
  let cert: Certificate;
  try {
    cert = AsnConvert.parse(der, Certificate);
  } catch (cause) {
    throw invalid(label, 'it is not an X.509 certificate', cause);
  }
  /* Precondition: the ASN.1 reader saw the same DER (it re-serialises byte for byte). A value it read but cannot
     write back (e.g. an EC parameters OID turned into a malformed UTCTime) throws a plain Error: not DER either. */
  let reencoded: Uint8Array;
  try {
    reencoded = new Uint8Array(AsnConvert.serialize(cert));
  } catch (cause) {
    throw invalid(label, 'it is not in DER (it cannot be re-encoded)', cause);
  }
  if (!toBuffer(reencoded).equals(toBuffer(der))) {
    throw invalid(label, 'it is not in DER (re-encoding differs)');
  }
  const signatureAlgorithm = toBuffer(fields.signatureAlgorithm).toString('hex');
  /* Precondition: the signed and the outer signature algorithms are identical (RFC 5280 §4.1.1.2). */
  if (toBuffer(fields.tbsSignatureAlgorithm).toString('hex') !== signatureAlgorithm) {
    throw invalid(
      label,
      'the signature algorithm inside and outside the signed part differ (TBSCertificate.signature differs ' +
        'from signatureAlgorithm)',
    );
  }
  let publicKey: KeyObject;
  try {
    publicKey = x509.publicKey;
  } catch (cause) {
    throw invalid(label, 'its public key is not supported', cause);
  }
  const notBefore = cert.tbsCertificate.validity.notBefore.getTime().getTime();
  const notAfter = cert.tbsCertificate.validity.notAfter.getTime().getTime();
  /* Precondition: the validity period is a real, non-empty interval. */
  if (!Number.isFinite(notBefore) || !Number.isFinite(notAfter) || notAfter < notBefore) {
    throw invalid(label, 'its validity period is invalid');
  }
  const oneLine = (name: string): string => name.split('\n').join(', ');
  const commonNames = (name: Name): readonly string[] => {
    const values: string[] = [];
    for (const rdn of name) {
      for (const atv of rdn) if (atv.type === OID_COMMON_NAME) values.push(atv.value.toString());
    }
    return Object.freeze(values);
  };
  return Object.freeze({
    der,
    fingerprint,
    version: cert.tbsCertificate.version + 1,
    x509,
    publicKey,
    subject: oneLine(x509.subject),
    issuer: oneLine(x509.issuer),
    subjectCommonNames: commonNames(cert.tbsCertificate.subject),
    issuerCommonNames: commonNames(cert.tbsCertificate.issuer),
    subjectDer: fields.subject,
    issuerDer: fields.issuer,
    selfIssued: toBuffer(fields.subject).equals(toBuffer(fields.issuer)),
    notBefore,
    notAfter,
    signatureAlgorithm,
    ...parseExtensions(cert, label),
  });
}

/**
 * Parses a certificate (PEM or DER), or returns the cached record with the same DER fingerprint.
 * `label` names the certificate in error messages ("leaf", "cabundle[1]", "trust anchor").
 * @throws AttestationError CERT_INVALID when the input is not one bounded, well-formed DER
 *   certificate that OpenSSL and the ASN.1 reader read identically.
 */
export function parseCertificate(
  input: CertificateInput,
  label: string,
  cache?: X509Cache,
): ParsedCertificate {
  const decoded = decodeInput(input, label, cache);
  /* Precondition: the DER is non-empty and bounded before it is parsed. */
  if (decoded.der.length === 0 || decoded.der.length > LIMITS.maxCertificateBytes) {
    throw invalid(label, `DER is ${decoded.der.length} bytes, expected 1..${LIMITS.maxCertificateBytes}`);
  }
  const hit = cache?.getCertificate(decoded.fingerprint);
  if (hit !== undefined) return hit;
  // A private copy: the caller may reuse or zero its buffer, and the record is shared.
  const record = buildRecord(Uint8Array.prototype.slice.call(decoded.der), decoded.fingerprint, label);
  cache?.putCertificate(record);
  return record;
}
