/**
 * Locating the raw fields of an X.509 certificate in its DER bytes (RFC 5280 §4.1; X.690 §8.1, §10.1).
 *
 * Why: path building compares names byte for byte (issuer DN of the child = subject DN of the parent)
 * and checks that the two signature AlgorithmIdentifiers of a certificate are identical (RFC 5280
 * §4.1.1.2). Neither OpenSSL (`node:crypto`) nor `@peculiar/x509` hands out the original bytes of these
 * fields, and re-serialising a parsed name could normalise it. So this module walks the tag-length
 * headers of the outer structure — no values are decoded, nothing is allocated but views.
 *
 * Only DER is accepted: single-byte tags, definite lengths in their shortest form. Anything else is a
 * CERT_INVALID. OpenSSL parses the same bytes in full (certificate.ts), so the two always agree.
 */
import { AttestationError } from '../errors.js';

/** One DER element: where its header starts, where its value starts and ends. */
interface Tlv {
  readonly tag: number;
  /** Offset of the tag byte. */
  readonly start: number;
  /** Offset of the first value byte. */
  readonly valueStart: number;
  /** Offset just past the value. */
  readonly end: number;
}

const SEQUENCE = 0x30;
const CONTEXT_0 = 0xa0;
const INTEGER = 0x02;
const BIT_STRING = 0x03;

/** Raw slices of a certificate (views into the input). */
export interface CertificateFields {
  /** TBSCertificate, header included (what the signature covers). */
  readonly tbs: Uint8Array;
  /** TBSCertificate.signature (AlgorithmIdentifier), header included. */
  readonly tbsSignatureAlgorithm: Uint8Array;
  /** Certificate.signatureAlgorithm (AlgorithmIdentifier), header included. */
  readonly signatureAlgorithm: Uint8Array;
  /** Issuer Name, header included. */
  readonly issuer: Uint8Array;
  /** Subject Name, header included. */
  readonly subject: Uint8Array;
  /** SubjectPublicKeyInfo, header included. */
  readonly subjectPublicKeyInfo: Uint8Array;
}

function malformed(label: string, why: string): AttestationError {
  return new AttestationError('CERT_INVALID', `${label} certificate: not canonical DER (${why})`);
}

function readTlv(bytes: Uint8Array, pos: number, limit: number, label: string): Tlv {
  if (pos + 2 > limit) throw malformed(label, `element header truncated at offset ${pos}`);
  const tag = bytes[pos]!;
  /* Precondition: tags are single-byte (X.509 never uses the high-tag-number form). */
  if ((tag & 0x1f) === 0x1f) throw malformed(label, `multi-byte tag at offset ${pos}`);
  const first = bytes[pos + 1]!;
  let length: number;
  let valueStart: number;
  if (first < 0x80) {
    length = first;
    valueStart = pos + 2;
  } else {
    const count = first & 0x7f;
    /* Precondition: definite length, at most 4 length bytes (X.690 §10.1: DER forbids indefinite). */
    if (count === 0 || count > 4)
      throw malformed(label, `unsupported length form 0x${first.toString(16)} at ${pos}`);
    if (pos + 2 + count > limit) throw malformed(label, `length truncated at offset ${pos}`);
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + bytes[pos + 2 + i]!;
    /* Precondition: the length is in its shortest form (X.690 §10.1). */
    if (length < 0x80 || (count > 1 && bytes[pos + 2] === 0)) {
      throw malformed(label, `non-minimal length encoding at offset ${pos}`);
    }
    valueStart = pos + 2 + count;
  }
  const end = valueStart + length;
  if (end > limit) throw malformed(label, `element at offset ${pos} runs past its container`);
  return { tag, start: pos, valueStart, end };
}

function expectTag(tlv: Tlv, tag: number, what: string, label: string): Tlv {
  if (tlv.tag !== tag) {
    throw malformed(
      label,
      `expected ${what} (tag 0x${tag.toString(16)}), found tag 0x${tlv.tag.toString(16)}`,
    );
  }
  return tlv;
}

/**
 * Splits a DER certificate into the raw fields path building needs.
 * @throws AttestationError CERT_INVALID when the bytes are not one DER Certificate structure.
 */
export function certificateFields(der: Uint8Array, label: string): CertificateFields {
  const cert = expectTag(readTlv(der, 0, der.length, label), SEQUENCE, 'Certificate SEQUENCE', label);
  /* Precondition: the certificate is exactly one element, with no bytes after it. */
  if (cert.end !== der.length)
    throw malformed(label, `${der.length - cert.end} byte(s) after the certificate`);
  const tbs = expectTag(readTlv(der, cert.valueStart, cert.end, label), SEQUENCE, 'TBSCertificate', label);
  const outerAlg = expectTag(readTlv(der, tbs.end, cert.end, label), SEQUENCE, 'signatureAlgorithm', label);
  const sigValue = expectTag(
    readTlv(der, outerAlg.end, cert.end, label),
    BIT_STRING,
    'signatureValue',
    label,
  );
  if (sigValue.end !== cert.end) throw malformed(label, 'extra elements in Certificate');

  let pos = tbs.valueStart;
  let next = readTlv(der, pos, tbs.end, label);
  if (next.tag === CONTEXT_0) {
    pos = next.end; // version [0] EXPLICIT
    next = readTlv(der, pos, tbs.end, label);
  }
  const serial = expectTag(next, INTEGER, 'serialNumber', label);
  const tbsAlg = expectTag(readTlv(der, serial.end, tbs.end, label), SEQUENCE, 'signature', label);
  const issuer = expectTag(readTlv(der, tbsAlg.end, tbs.end, label), SEQUENCE, 'issuer Name', label);
  const validity = expectTag(readTlv(der, issuer.end, tbs.end, label), SEQUENCE, 'validity', label);
  const subject = expectTag(readTlv(der, validity.end, tbs.end, label), SEQUENCE, 'subject Name', label);
  const spki = expectTag(readTlv(der, subject.end, tbs.end, label), SEQUENCE, 'subjectPublicKeyInfo', label);

  const slice = (t: Tlv): Uint8Array => der.subarray(t.start, t.end);
  return {
    tbs: slice(tbs),
    tbsSignatureAlgorithm: slice(tbsAlg),
    signatureAlgorithm: slice(outerAlg),
    issuer: slice(issuer),
    subject: slice(subject),
    subjectPublicKeyInfo: slice(spki),
  };
}
