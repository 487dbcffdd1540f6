/**
 * `verifyNitroDocument`: authenticity of an AWS Nitro attestation document (style §2, stage 2).
 *
 * Spec: aws/aws-nitro-enclaves-nsm-api docs/attestation_process.md §3.2.3 (certificates: validity of
 * every certificate including the root, basic constraints, key usage, chain
 * [certificate, cabundle[n-1], …, cabundle[0]] to the pinned root) and §3.2.1 (COSE signature);
 * RFC 9052 §4.4 (Sig_structure) and RFC 9053 §2.1 (ES384: ECDSA P-384 with SHA-384, r ‖ s).
 *
 * Order: structure (re-parsed from `evidence.bytes`; nothing else of the evidence object is trusted)
 * → certificate path at `now` → the leaf's role (P-384 end-entity key with digitalSignature) → the
 * COSE signature. ECDSA signatures with a high S are valid (node/OpenSSL accept them; real documents
 * carry them).
 *
 * Policy (allowed PCRs, debug, freshness of `timestamp`, nonce/user_data bindings) is not applied here.
 */
import { verify as verifySignature } from 'node:crypto';
import { ConfigError } from '../../shared/errors.js';
import { LIMITS } from '../../shared/limits.js';
import type { NitroClaims } from '../claims.js';
import { AttestationError } from '../errors.js';
import { buildCertificatePath, ECDSA_P384_SHA384 } from '../x509/index.js';
import { sigStructure1 } from './cose.js';
import { parseNitroDocument } from './parse.js';
import type { NitroEvidence, VerifyNitroOptions } from './types.js';

const toBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const hex = (b: Uint8Array): string => toBuffer(b).toString('hex');

function checkOptions(options: VerifyNitroOptions): void {
  /* Precondition: the caller supplies the verification time (never defaulted inside the library). */
  if (!(options?.now instanceof Date) || !Number.isFinite(options.now.getTime())) {
    throw new ConfigError('CONFIG_INVALID', 'verifyNitroDocument: `now` must be a valid Date');
  }
  /* Precondition: the caller supplies the trust anchors (never defaulted inside the library). */
  if (!Array.isArray(options.trustAnchors)) {
    throw new ConfigError('CONFIG_INVALID', 'verifyNitroDocument: `trustAnchors` must be an array');
  }
}

/**
 * Verifies a parsed Nitro document at `now` against `trustAnchors` and returns its claims.
 * @throws AttestationError every code of `parseNitroDocument`; CERT_INVALID, CERT_EXPIRED,
 *   CERT_NOT_YET_VALID, CERT_CHAIN_INVALID, CERT_ROOT_UNTRUSTED (chain; see x509/path.ts);
 *   CERT_INVALID (leaf key not P-384, leaf is a CA or lacks digitalSignature);
 *   EVIDENCE_SIGNATURE_INVALID (the COSE signature does not verify under the leaf's key)
 * @throws ConfigError CONFIG_INVALID when `now` or `trustAnchors` is missing.
 */
export function verifyNitroDocument(evidence: NitroEvidence, options: VerifyNitroOptions): NitroClaims {
  checkOptions(options);
  const doc = parseNitroDocument(evidence?.bytes);

  const n = doc.cabundle.length;
  const path = buildCertificatePath({
    leaf: doc.certificate,
    intermediates: doc.cabundle,
    trustAnchors: options.trustAnchors,
    now: options.now,
    algorithms: [ECDSA_P384_SHA384],
    ...(options.cache === undefined ? {} : { cache: options.cache }),
    leafLabel: 'certificate (leaf)',
    intermediateLabels: doc.cabundle.map((_, i) => `cabundle[${i}]`),
    maxIntermediates: LIMITS.maxNitroCabundle,
    maxPathLength: LIMITS.maxNitroCabundle + 1,
  });
  const certs = path.certificates;
  /* Precondition: the chain is exactly certificate → cabundle[n-1] → … → cabundle[0], and cabundle[0] is the pinned root. */
  const inOrder =
    certs.length === n + 1 &&
    doc.cabundle.every((der, i) => toBuffer(certs[n - i]!.der).equals(toBuffer(der)));
  if (!inOrder) {
    throw new AttestationError(
      'CERT_CHAIN_INVALID',
      `the chain must run certificate → cabundle[${n - 1}] → … → cabundle[0] with cabundle[0] the trusted root ` +
        `(AWS order); the path found has ${certs.length} certificate(s) and does not use cabundle in that order`,
    );
  }

  const leaf = certs[0]!;
  const key = leaf.publicKey;
  /* Precondition: the signing key is ECDSA P-384 (ES384). */
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'secp384r1') {
    throw new AttestationError('CERT_INVALID', 'the document certificate (leaf) key is not ECDSA P-384');
  }
  /* Precondition: the leaf is an end-entity certificate (AWS §3.2.3.3: no CA, no pathLenConstraint). */
  if (leaf.basicConstraints?.ca === true) {
    throw new AttestationError('CERT_INVALID', 'the document certificate (leaf) is a CA certificate');
  }
  /* Precondition: the leaf's keyUsage asserts digitalSignature (AWS §3.2.3.3). */
  if (leaf.keyUsage === null || !leaf.keyUsage.has('digitalSignature')) {
    throw new AttestationError(
      'CERT_INVALID',
      'the document certificate (leaf) keyUsage lacks digitalSignature',
    );
  }

  const signed = sigStructure1(doc.protectedHeader, doc.payload);
  let valid = false;
  try {
    valid = verifySignature('sha384', signed, { key, dsaEncoding: 'ieee-p1363' }, doc.signature);
  } catch {
    valid = false;
  }
  /* Precondition: the COSE_Sign1 signature verifies under the leaf's key. */
  if (!valid) {
    throw new AttestationError(
      'EVIDENCE_SIGNATURE_INVALID',
      'the COSE_Sign1 signature of the Nitro document does not verify under its certificate',
    );
  }

  const pcrs: Record<string, string> = {};
  for (const [index, value] of [...doc.pcrs].sort(([a], [b]) => a - b)) pcrs[String(index)] = hex(value);
  const isZero = (b: Uint8Array | undefined): boolean => b?.every((x) => x === 0) === true;
  return {
    type: 'nitro',
    debug: isZero(doc.pcrs.get(0)) && isZero(doc.pcrs.get(1)) && isZero(doc.pcrs.get(2)),
    timestamp: new Date(doc.timestamp).toISOString(),
    measurement: hex(doc.pcrs.get(0)!),
    rootFingerprint: path.rootFingerprint,
    simulated: path.simulated,
    moduleId: doc.moduleId,
    pcrs,
    userData: doc.userData === null ? null : hex(doc.userData),
    nonce: doc.nonce === null ? null : hex(doc.nonce),
    publicKey: doc.publicKey === null ? null : hex(doc.publicKey),
  };
}
