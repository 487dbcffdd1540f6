/**
 * Loading the certificates of the AMD chain (ARK → ASK/ASVK → VCEK/VLEK) and decoding the VEK's AMD
 * extensions.
 *
 * Spec: AMD "Versioned Chip Endorsement Key (VCEK) Certificate and KDS Interface Specification"
 * (pub. 57230): every certificate of the chain is X.509 v3 signed with RSASSA-PSS (SHA-384, MGF1 with
 * SHA-384, salt 48, trailer 1) — RFC 4055 §3.1 for the parameters; the VEK carries one extension per TCB
 * component (1.3.6.1.4.1.3704.1.3.1 blSPL, .2 teeSPL, .3 snpSPL, .8 ucodeSPL, .9 fmcSPL on Turin; DER
 * INTEGERs), productName 1.3.6.1.4.1.3704.1.2 (IA5String) and, on a VCEK, hwID 1.3.6.1.4.1.3704.1.4
 * (the raw chip id: 64 bytes, 8 on Turin).
 *
 * Parsing is done twice on purpose: OpenSSL (`node:crypto` X509Certificate) verifies signatures and
 * issuer links, `@peculiar/asn1-x509` reads fields OpenSSL does not expose (PSS parameters, arbitrary
 * extensions). The DER must re-serialise byte for byte, so both parsers see the same certificate.
 * Role checks (CA flag, key type, names) are in chain.ts.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { id_mgf1, id_RSASSA_PSS, id_sha384, RsaSaPssParams } from '@peculiar/asn1-rsa';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  Certificate,
  id_ce_basicConstraints,
  id_ce_keyUsage,
  Version,
} from '@peculiar/asn1-x509';
import * as asn1js from 'asn1js';
import { LIMITS } from '../../shared/limits.js';
import type { TcbVersion } from '../claims.js';
import { AttestationError } from '../errors.js';
import type { DecodedPem, SnpVerifierCache } from './cache.js';
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

const OID_COMMON_NAME = '2.5.4.3';
const CRITICAL_EXTENSIONS_UNDERSTOOD = new Set<string>([id_ce_basicConstraints, id_ce_keyUsage]);
const MAX_PEM_CHARS = 2 * LIMITS.maxCertificateBytes;
const PEM_RE = /^-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]+?)\r?\n?-----END CERTIFICATE-----$/;

/** A parsed, structurally checked certificate. Immutable; safe to share through the cache. */
export interface CertRecord {
  readonly der: Uint8Array;
  /** SHA-256 of the DER, lowercase hex. */
  readonly fingerprint: string;
  readonly x509: X509Certificate;
  readonly subjectCn: string;
  readonly issuerCn: string;
  /** Validity in milliseconds since the epoch (inclusive). */
  readonly notBefore: number;
  readonly notAfter: number;
  /** Subject and issuer names are byte-identical. */
  readonly selfIssued: boolean;
  /** The AMD extensions (empty for the ARK, ASK and ASVK). */
  readonly amd: SnpVekExtensions;
}

function invalid(label: string, why: string, cause?: unknown): AttestationError {
  return new AttestationError(
    'CERT_INVALID',
    `${label} certificate: ${why}`,
    cause === undefined ? {} : { cause },
  );
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

function decodePemText(text: string, label: string): Uint8Array {
  /* Precondition: PEM text is bounded before it is decoded. */
  if (text.length > MAX_PEM_CHARS) {
    throw invalid(label, `PEM text is ${text.length} characters, over the ${MAX_PEM_CHARS}-character limit`);
  }
  const match = PEM_RE.exec(text.trim());
  /* Precondition: the PEM text is exactly one CERTIFICATE block. */
  if (match === null) {
    throw invalid(label, 'not a single PEM "CERTIFICATE" block');
  }
  const body = match[1]!.replace(/[\r\n]/g, '');
  const der = Buffer.from(body, 'base64');
  /* Precondition: the base64 body is canonical (no stray padding or characters). */
  if (body.length % 4 !== 0 || der.toString('base64') !== body) {
    throw invalid(label, 'the PEM body is not canonical base64');
  }
  return new Uint8Array(der.buffer, der.byteOffset, der.byteLength);
}

const PEM_PREFIX = Buffer.from('-----BEGIN');

/** PEM or DER input → DER and its fingerprint (memoised per PEM string in the cache). */
function decodeInput(
  input: CertificateInput,
  label: string,
  cache: SnpVerifierCache | undefined,
): DecodedPem {
  if (typeof input === 'string') {
    const hit = cache?.getPem(input);
    if (hit !== undefined) return hit;
    const der = decodePemText(input, label);
    const decoded = { der, fingerprint: sha256Hex(der) };
    cache?.putPem(input, decoded);
    return decoded;
  }
  /* Precondition: a certificate is PEM text or DER bytes. */
  if (!(input instanceof Uint8Array)) {
    throw invalid(label, 'expected PEM text or DER bytes');
  }
  let der: Uint8Array;
  if (input.length >= PEM_PREFIX.length && PEM_PREFIX.equals(input.subarray(0, PEM_PREFIX.length))) {
    if (input.length > MAX_PEM_CHARS) {
      throw invalid(label, `PEM text is ${input.length} bytes, over the ${MAX_PEM_CHARS}-byte limit`);
    }
    der = decodePemText(Buffer.from(input).toString('latin1'), label);
  } else {
    // A copy even for a Buffer (whose slice() is a view): the record is cached and must not alias the caller.
    der = new Uint8Array(input);
  }
  return { der, fingerprint: sha256Hex(der) };
}

function commonName(name: Certificate['tbsCertificate']['subject'], label: string, which: string): string {
  const values: string[] = [];
  for (const rdn of name) {
    for (const atv of rdn) {
      if (atv.type === OID_COMMON_NAME) values.push(atv.value.toString());
    }
  }
  /* Precondition: subject and issuer each have exactly one common name. */
  if (values.length !== 1) {
    throw invalid(label, `${which} has ${values.length} common names, expected 1`);
  }
  return values[0]!;
}

/**
 * Checks the signature algorithm is RSASSA-PSS with SHA-384, MGF1-SHA-384, salt 48, trailer 1, and that
 * the signed (TBS) and outer algorithm identifiers agree.
 */
function assertRsaPssSha384(cert: Certificate, label: string): void {
  const outer = cert.signatureAlgorithm;
  const inner = cert.tbsCertificate.signature;
  /* Precondition: the signed and the outer signature algorithm identifiers are identical. */
  if (!bytesEqual(new Uint8Array(AsnConvert.serialize(outer)), new Uint8Array(AsnConvert.serialize(inner)))) {
    throw invalid(label, 'the signature algorithm inside and outside the signed part differ');
  }
  /* Precondition: the signature algorithm is RSASSA-PSS with SHA-384, MGF1-SHA-384, salt 48. */
  if (outer.algorithm !== id_RSASSA_PSS || outer.parameters === null || outer.parameters === undefined) {
    throw invalid(label, `signature algorithm ${outer.algorithm} is not RSASSA-PSS with parameters`);
  }
  let params: RsaSaPssParams;
  try {
    params = AsnConvert.parse(outer.parameters, RsaSaPssParams);
  } catch (cause) {
    throw invalid(label, 'RSASSA-PSS parameters do not parse', cause);
  }
  const hashOk = params.hashAlgorithm.algorithm === id_sha384;
  let mgfOk = false;
  if (params.maskGenAlgorithm.algorithm === id_mgf1 && params.maskGenAlgorithm.parameters) {
    try {
      mgfOk =
        AsnConvert.parse(params.maskGenAlgorithm.parameters, AlgorithmIdentifier).algorithm === id_sha384;
    } catch {
      mgfOk = false;
    }
  }
  if (!hashOk || !mgfOk || params.saltLength !== 48 || params.trailerField !== 1) {
    throw invalid(
      label,
      `RSASSA-PSS parameters must be SHA-384, MGF1-SHA-384, salt 48, trailer 1 ` +
        `(got hash ${params.hashAlgorithm.algorithm}, salt ${params.saltLength}, trailer ${params.trailerField})`,
    );
  }
}

function decodeSpl(value: Uint8Array, label: string, what: string): number {
  const parsed = asn1js.fromBER(value);
  const n =
    parsed.offset === value.length && parsed.result instanceof asn1js.Integer
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
  const parsed = asn1js.fromBER(value);
  const name =
    parsed.offset === value.length && parsed.result instanceof asn1js.IA5String
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

function decodeAmdExtensions(extensions: ReadonlyMap<string, Uint8Array>, label: string): SnpVekExtensions {
  const tcb: Partial<Record<keyof TcbVersion, number>> = {};
  for (const [component, oid] of TCB_EXTENSION_OIDS) {
    const value = extensions.get(oid);
    if (value !== undefined) tcb[component] = decodeSpl(value, label, `${component} (${oid})`);
  }
  const product = extensions.get(AMD_OIDS.productName);
  const hwId = extensions.get(AMD_OIDS.hwId);
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

/**
 * Decodes (PEM or DER), bounds, parses and structurally checks one certificate of the AMD chain,
 * reusing the cache when the same DER was seen before.
 * @throws AttestationError CERT_INVALID
 */
export function loadCertificate(
  input: CertificateInput,
  label: string,
  cache: SnpVerifierCache | undefined,
): CertRecord {
  const { der, fingerprint } = decodeInput(input, label, cache);
  const hit = cache?.getCertificate(fingerprint);
  if (hit !== undefined) return hit;

  /* Precondition: a certificate is bounded before it is parsed. */
  if (der.length === 0 || der.length > LIMITS.maxCertificateBytes) {
    throw invalid(label, `DER is ${der.length} bytes, expected 1..${LIMITS.maxCertificateBytes}`);
  }
  let x509: X509Certificate;
  let cert: Certificate;
  try {
    x509 = new X509Certificate(der);
    cert = AsnConvert.parse(der, Certificate);
  } catch (cause) {
    throw invalid(label, 'does not parse as X.509', cause);
  }
  /* Precondition: the DER is canonical and complete, so OpenSSL and the ASN.1 reader see the same bytes. */
  if (!bytesEqual(x509.raw, der) || !bytesEqual(new Uint8Array(AsnConvert.serialize(cert)), der)) {
    throw invalid(label, 'is not canonical DER (trailing or re-encoded bytes)');
  }
  const tbs = cert.tbsCertificate;
  /* Precondition: the certificate is X.509 version 3. */
  if (tbs.version !== Version.v3) {
    throw invalid(label, `X.509 version ${tbs.version + 1}, expected 3`);
  }
  assertRsaPssSha384(cert, label);

  const extensions = new Map<string, Uint8Array>();
  for (const ext of tbs.extensions ?? []) {
    /* Precondition: no extension appears twice (RFC 5280 §4.2). */
    if (extensions.has(ext.extnID)) {
      throw invalid(label, `extension ${ext.extnID} appears twice`);
    }
    /* Precondition: every critical extension is understood (RFC 5280 §4.2). */
    if (ext.critical && !CRITICAL_EXTENSIONS_UNDERSTOOD.has(ext.extnID)) {
      throw invalid(label, `unknown critical extension ${ext.extnID}`);
    }
    extensions.set(ext.extnID, new Uint8Array(ext.extnValue.buffer));
  }

  const subjectDer = new Uint8Array(AsnConvert.serialize(tbs.subject));
  const issuerDer = new Uint8Array(AsnConvert.serialize(tbs.issuer));
  const record: CertRecord = {
    der,
    fingerprint,
    x509,
    subjectCn: commonName(tbs.subject, label, 'subject'),
    issuerCn: commonName(tbs.issuer, label, 'issuer'),
    notBefore: tbs.validity.notBefore.getTime().getTime(),
    notAfter: tbs.validity.notAfter.getTime().getTime(),
    selfIssued: bytesEqual(subjectDer, issuerDer),
    amd: decodeAmdExtensions(extensions, label),
  };
  cache?.putCertificate(record);
  return record;
}
