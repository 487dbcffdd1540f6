/**
 * Certificate signature algorithms a caller may allow (style §8: algorithms are named constants).
 *
 * An algorithm is matched by the exact DER of its AlgorithmIdentifier (RFC 5280 §4.1.1.2), so
 * parameters are pinned too (RSASSA-PSS hash, mask generation function and salt length), and by the
 * kind of key that must verify it. Path building never verifies a signature whose algorithm is not in
 * the caller's allow-list, whatever OpenSSL would accept.
 *
 * - ECDSA with SHA-384 (RFC 5758 §3.2: parameters absent) under a P-384 key — the AWS Nitro PKI.
 * - RSASSA-PSS with SHA-384, MGF1-SHA-384, salt 48 (RFC 4055 §3.1) under an RSA key of at least
 *   3072 bits — the AMD SEV-SNP ARK/ASK. AMD encodes the default trailer field explicitly; both that
 *   form and the DER form without it are listed.
 */
import type { KeyObject } from 'node:crypto';
import { id_mgf1, id_RSASSA_PSS, RsaSaPssParams } from '@peculiar/asn1-rsa';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier } from '@peculiar/asn1-x509';

/** What the issuer's public key must be for an algorithm. */
export type SignatureKeyRequirement =
  | { readonly type: 'ec'; readonly namedCurve: string }
  | { readonly type: 'rsa'; readonly minModulusLength: number };

/** One allowed certificate signature algorithm. */
export interface CertificateSignatureAlgorithm {
  /** A readable name for messages. */
  readonly name: string;
  /** Accepted DER encodings of the AlgorithmIdentifier, lowercase hex. */
  readonly identifiers: readonly string[];
  /** The issuer key that must verify it. */
  readonly key: SignatureKeyRequirement;
}

/** ecdsa-with-SHA384 (1.2.840.10045.4.3.3), P-384 issuer key. */
export const ECDSA_P384_SHA384: CertificateSignatureAlgorithm = {
  name: 'ecdsa-with-SHA384 (P-384)',
  identifiers: ['300a06082a8648ce3d040303'],
  key: { type: 'ec', namedCurve: 'secp384r1' },
};

const PSS_SHA384_PARAMS =
  'a00f300d06096086480165030402020500' + // hashAlgorithm sha384 (NULL parameters)
  'a11c301a06092a864886f70d010108300d06096086480165030402020500' + // MGF1 with sha384
  'a203020130'; // saltLength 48

/** RSASSA-PSS (1.2.840.113549.1.1.10) with SHA-384, MGF1-SHA-384, salt 48; RSA issuer key ≥ 3072 bits. */
export const RSA_PSS_SHA384: CertificateSignatureAlgorithm = {
  name: 'RSASSA-PSS SHA-384 salt 48',
  identifiers: [
    `304106092a864886f70d01010a3034${PSS_SHA384_PARAMS}`,
    `304606092a864886f70d01010a3039${PSS_SHA384_PARAMS}a303020101`, // explicit trailerField 1 (AMD)
  ],
  key: { type: 'rsa', minModulusLength: 3072 },
};

/** Finds the allowed algorithm whose identifier is exactly `identifierHex`. */
export function findSignatureAlgorithm(
  allowed: readonly CertificateSignatureAlgorithm[],
  identifierHex: string,
): CertificateSignatureAlgorithm | undefined {
  return allowed.find((a) => a.identifiers.includes(identifierHex));
}

/** Does `key` satisfy the algorithm's key requirement? */
export function keySatisfies(key: KeyObject, requirement: SignatureKeyRequirement): boolean {
  const details = key.asymmetricKeyDetails;
  if (requirement.type === 'ec') {
    return key.asymmetricKeyType === 'ec' && details?.namedCurve === requirement.namedCurve;
  }
  return key.asymmetricKeyType === 'rsa' && (details?.modulusLength ?? 0) >= requirement.minModulusLength;
}

/**
 * A readable form of a DER AlgorithmIdentifier (lowercase hex), for error messages only: the OID, and for
 * RSASSA-PSS its parameters (hash, MGF1 hash, salt length, trailer field).
 */
export function describeSignatureAlgorithm(identifierHex: string): string {
  let identifier: AlgorithmIdentifier;
  try {
    identifier = AsnConvert.parse(Buffer.from(identifierHex, 'hex'), AlgorithmIdentifier);
  } catch {
    return `AlgorithmIdentifier ${identifierHex}`;
  }
  if (identifier.algorithm !== id_RSASSA_PSS) return identifier.algorithm;
  try {
    const params = AsnConvert.parse(identifier.parameters ?? new ArrayBuffer(0), RsaSaPssParams);
    const mgf = params.maskGenAlgorithm;
    const mgfHash =
      mgf.algorithm === id_mgf1 && mgf.parameters
        ? AsnConvert.parse(mgf.parameters, AlgorithmIdentifier).algorithm
        : `mask generation ${mgf.algorithm}`;
    return (
      `RSASSA-PSS (hash ${params.hashAlgorithm.algorithm}, MGF1 ${mgfHash}, ` +
      `salt ${params.saltLength}, trailer ${params.trailerField})`
    );
  } catch {
    return 'RSASSA-PSS with unreadable parameters';
  }
}
