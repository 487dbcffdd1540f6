/**
 * The AMD side of the SEV-SNP certificates (ARK → ASK/ASVK → VCEK/VLEK): what the shared X.509 module
 * (attestation/x509: parsing, DER checks, caching) does not know.
 *
 * Spec: AMD "Versioned Chip Endorsement Key (VCEK) Certificate and KDS Interface Specification"
 * (pub. 57230): every certificate of the chain is X.509 v3 signed with RSASSA-PSS (SHA-384, MGF1 with
 * SHA-384, salt 48, trailer 1) — RFC 4055 §3.1 for the parameters, pinned as `RSA_PSS_SHA384`; the VEK
 * carries one extension per TCB component (1.3.6.1.4.1.3704.1.3.1 blSPL, .2 teeSPL, .3 snpSPL, .8 ucodeSPL,
 * .9 fmcSPL on Turin; DER INTEGERs), productName 1.3.6.1.4.1.3704.1.2 (IA5String) and, on a VCEK, hwID
 * 1.3.6.1.4.1.3704.1.4 (the raw chip id: 64 bytes, 8 on Turin).
 *
 * `loadCertificate` = `parseCertificate` (x509) + the AMD profile (v3, RSASSA-PSS, no unknown critical
 * extension, one common name in subject and issuer) + the decoded AMD extensions. With a cache, that AMD
 * view is derived once per cached certificate. Role checks (CA flag, key type, names) are in chain.ts.
 */
import * as asn1js from 'asn1js';
import type { TcbVersion } from '../claims.js';
import { AttestationError } from '../errors.js';
import {
  type CertificateExtension,
  describeSignatureAlgorithm,
  findSignatureAlgorithm,
  MAX_CERTIFICATE_PEM_CHARS,
  type ParsedCertificate,
  parseCertificate,
  RSA_PSS_SHA384,
  type X509Cache,
} from '../x509/index.js';
import type { CertificateInput, SnpVekExtensions } from './types.js';

/** OIDs of AMD's VEK extensions (KDS spec). */
export const AMD_OIDS = {
  structVersion: '1.3.6.1.4.1.3704.1.1',
  productName: '1.3.6.1.4.1.3704.1.2',
  blSpl: '1.3.6.1.4.1.3704.1.3.1',
  teeSpl: '1.3.6.1.4.1.3704.1.3.2',
  snpSpl: '1.3.6.1.4.1.3704.1.3.3',
  ucodeSpl: '1.3.6.1.4.1.3704.1.3.8',
  fmcSpl: '1.3.6.1.4.1.3704.1.3.9',
  hwId: '1.3.6.1.4.1.3704.1.4',
  cspId: '1.3.6.1.4.1.3704.1.5',
} as const;

/** Which TCB component each SPL extension carries. */
export const TCB_EXTENSION_OIDS: ReadonlyArray<readonly [keyof TcbVersion, string]> = [
  ['bootloader', AMD_OIDS.blSpl],
  ['tee', AMD_OIDS.teeSpl],
  ['snp', AMD_OIDS.snpSpl],
  ['microcode', AMD_OIDS.ucodeSpl],
  ['fmc', AMD_OIDS.fmcSpl],
];

/** basicConstraints and keyUsage: the only critical extensions AMD certificates may carry. */
const CRITICAL_EXTENSIONS_UNDERSTOOD = new Set<string>(['2.5.29.19', '2.5.29.15']);
const PEM_PREFIX = Buffer.from('-----BEGIN');
/** Cache key of the AMD view derived from a cached certificate. */
const AMD_VIEW = Symbol('sev-snp AMD certificate view');

/** A certificate of the AMD chain: the shared X.509 record and what the SEV-SNP checks read. Immutable. */
export interface AmdCertificate extends ParsedCertificate {
  /** The one common name of the subject and of the issuer. */
  readonly subjectCn: string;
  readonly issuerCn: string;
  /** The AMD extensions (empty for the ARK, ASK and ASVK). */
  readonly amd: SnpVekExtensions;
}

function invalid(label: string, why: string): AttestationError {
  return new AttestationError('CERT_INVALID', `${label} certificate: ${why}`);
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

/** PEM text given as bytes (as read from a file) → the text, bounded first; anything else unchanged. */
function pemBytesAsText(input: CertificateInput, label: string): CertificateInput {
  if (
    !(input instanceof Uint8Array) ||
    input.length < PEM_PREFIX.length ||
    !PEM_PREFIX.equals(input.subarray(0, PEM_PREFIX.length))
  ) {
    return input;
  }
  /* Precondition: PEM text is bounded before it is decoded. */
  if (input.length > MAX_CERTIFICATE_PEM_CHARS) {
    throw invalid(
      label,
      `PEM text is ${input.length} bytes, over the ${MAX_CERTIFICATE_PEM_CHARS}-byte limit`,
    );
  }
  return Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('latin1');
}

function singleCommonName(values: readonly string[], label: string, which: string): string {
  /* Precondition: subject and issuer each have exactly one common name. */
  if (values.length !== 1) {
    throw invalid(label, `${which} has ${values.length} common names, expected 1`);
  }
  return values[0]!;
}

/**
 * `asn1js.fromBER`, with a value it cannot read as `undefined`: it throws a plain Error (rather than reporting it) for
 * some malformed values, e.g. a GeneralizedTime whose text is not a time.
 */
function readBer(value: Uint8Array): { offset: number; result: asn1js.AsnType } | undefined {
  try {
    return asn1js.fromBER(value);
  } catch {
    return undefined;
  }
}

function decodeSpl(value: Uint8Array, label: string, what: string): number {
  const parsed = readBer(value);
  const n =
    parsed !== undefined && parsed.offset === value.length && parsed.result instanceof asn1js.Integer
      ? parsed.result.valueBlock.valueDec
      : Number.NaN;
  /* Precondition: each SPL extension is a DER INTEGER in 0..255 (minimal encoding: re-encoding gives the same bytes). */
  if (
    !Number.isInteger(n) ||
    n < 0 ||
    n > 255 ||
    !bytesEqual(new Uint8Array(new asn1js.Integer({ value: n }).toBER()), value)
  ) {
    throw invalid(label, `extension ${what} is not a DER INTEGER in 0..255`);
  }
  return n;
}

function decodeProductName(value: Uint8Array, label: string): string {
  const parsed = readBer(value);
  const name =
    parsed !== undefined && parsed.offset === value.length && parsed.result instanceof asn1js.IA5String
      ? parsed.result.valueBlock.value
      : '';
  /* Precondition: productName is a DER IA5String of printable ASCII (re-encoding gives the same bytes). */
  if (
    !/^[\x20-\x7e]{1,64}$/.test(name) ||
    !bytesEqual(new Uint8Array(new asn1js.IA5String({ value: name }).toBER()), value)
  ) {
    throw invalid(label, 'extension productName is not a printable DER IA5String');
  }
  return name;
}

function decodeAmdExtensions(extensions: readonly CertificateExtension[], label: string): SnpVekExtensions {
  // The x509 parser has rejected duplicated extensions, so one value per OID.
  const byOid = new Map(extensions.map((e) => [e.oid, e.value] as const));
  const tcb: Partial<Record<keyof TcbVersion, number>> = {};
  for (const [component, oid] of TCB_EXTENSION_OIDS) {
    const value = byOid.get(oid);
    if (value !== undefined) tcb[component] = decodeSpl(value, label, `${component} (${oid})`);
  }
  const product = byOid.get(AMD_OIDS.productName);
  const hwId = byOid.get(AMD_OIDS.hwId);
  /* Precondition: hwID is 1..64 raw bytes. */
  if (hwId !== undefined && (hwId.length === 0 || hwId.length > 64)) {
    throw invalid(label, `extension hwID is ${hwId.length} bytes, expected at most 64`);
  }
  return {
    productName: product === undefined ? null : decodeProductName(product, label),
    tcb,
    hwId: hwId === undefined ? null : hwId.slice(),
  };
}

/** The AMD profile checks and the AMD view of a parsed certificate (a pure function of its DER). */
function amdView(cert: ParsedCertificate, label: string): AmdCertificate {
  /* Precondition: the certificate is X.509 version 3. */
  if (cert.version !== 3) throw invalid(label, `X.509 version ${cert.version}, expected 3`);
  /* Precondition: the signature algorithm is RSASSA-PSS with SHA-384, MGF1-SHA-384, salt 48, trailer 1. */
  if (findSignatureAlgorithm([RSA_PSS_SHA384], cert.signatureAlgorithm) === undefined) {
    throw invalid(
      label,
      'signature algorithm is not RSASSA-PSS with SHA-384, MGF1-SHA-384, salt 48, trailer 1 ' +
        `(got ${describeSignatureAlgorithm(cert.signatureAlgorithm)})`,
    );
  }
  const unknown = cert.extensions.find((e) => e.critical && !CRITICAL_EXTENSIONS_UNDERSTOOD.has(e.oid));
  /* Precondition: every critical extension is understood (RFC 5280 §4.2). */
  if (unknown !== undefined) throw invalid(label, `unknown critical extension ${unknown.oid}`);
  return Object.freeze({
    ...cert,
    subjectCn: singleCommonName(cert.subjectCommonNames, label, 'subject'),
    issuerCn: singleCommonName(cert.issuerCommonNames, label, 'issuer'),
    amd: decodeAmdExtensions(cert.extensions, label),
  });
}

/**
 * Decodes (PEM text, PEM bytes or DER), bounds, parses and checks one certificate of the AMD chain, reusing
 * the cache (the parsed certificate and its AMD view) when the same DER was seen before.
 * @throws AttestationError CERT_INVALID
 */
export function loadCertificate(
  input: CertificateInput,
  label: string,
  cache: X509Cache | undefined,
): AmdCertificate {
  const cert = parseCertificate(pemBytesAsText(input, label), label, cache);
  if (cache === undefined) return amdView(cert, label);
  return cache.derive(cert, AMD_VIEW, () => amdView(cert, label));
}
