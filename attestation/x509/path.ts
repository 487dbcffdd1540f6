/**
 * Certification path building and validation (RFC 5280 §6.1, simplified to what attestation PKIs
 * use; RFC 4158 for the search). No revocation (AWS: "We do not use CRL"), no policies, no name
 * constraints: a certificate carrying any other critical extension is rejected.
 *
 * Building: from the leaf upwards, the issuer of each certificate is looked for among the trust
 * anchors and a caller-supplied bag of intermediates, by issuer DN = subject DN (byte-identical DER)
 * AND by the candidate's key verifying the child's signature. Real AWS Nitro leaves carry no key
 * identifiers, so names and signatures are all there is. The search backtracks over candidates with
 * the same name, never reuses a certificate, and is bounded in depth and in work.
 *
 * Trust: a path ends at a trust anchor, matched by the SHA-256 of its exact DER — a look-alike root
 * (same names, another key) is not the anchor, and fails with CERT_ROOT_UNTRUSTED. The anchor's own
 * signature is not checked (it is trusted by pin); its validity and constraints are.
 *
 * Validation of a built path: each signature algorithm is in the caller's allow-list and the issuer's
 * key is of the matching type; every issuer is a CA (basicConstraints cA = TRUE, and keyCertSign when
 * keyUsage is present); pathLenConstraint holds (RFC 5280 §6.1.4 (l)–(m): self-issued certificates
 * do not count); no unknown critical extension (§4.2); every certificate, the anchor included, is valid
 * at `now` (notBefore ≤ now ≤ notAfter, as AWS's validation process requires for the root too).
 *
 * When no path validates, the error is the most specific failure seen: a built path that failed
 * validation (CERT_INVALID / CERT_EXPIRED / CERT_NOT_YET_VALID), then an untrusted self-issued root
 * (CERT_ROOT_UNTRUSTED), then a disallowed algorithm (CERT_INVALID), then a signature that does not
 * verify or a missing issuer (CERT_CHAIN_INVALID).
 */
import { ConfigError } from '../../shared/errors.js';
import { AttestationError } from '../errors.js';
import { type CertificateSignatureAlgorithm, findSignatureAlgorithm, keySatisfies } from './algorithms.js';
import type { X509Cache } from './cache.js';
import { type CertificateInput, type ParsedCertificate, parseCertificate } from './certificate.js';
import { createLinkVerifier } from './link.js';
import { assertValidAt } from './validity.js';

/** A pinned root (or other trusted certificate). */
export interface TrustAnchor {
  /** The certificate, PEM or DER; matched by the SHA-256 of its DER. */
  readonly certificate: CertificateInput;
  /** True for a simulated root; it flows into the claims. */
  readonly simulated: boolean;
  /** A name for messages (e.g. "AWS Nitro root G1"). */
  readonly name?: string;
}

/** What `buildCertificatePath` needs. `now` and `trustAnchors` are never defaulted. */
export interface BuildPathOptions {
  readonly leaf: CertificateInput;
  /** Candidate intermediates, in any order; unused ones are ignored. */
  readonly intermediates: readonly CertificateInput[];
  readonly trustAnchors: readonly TrustAnchor[];
  readonly now: Date;
  /** Allowed certificate signature algorithms (e.g. `[ECDSA_P384_SHA384]`). */
  readonly algorithms: readonly CertificateSignatureAlgorithm[];
  readonly cache?: X509Cache;
  /** Labels for messages: the leaf, and each intermediate by index (default "leaf", "intermediate #i"). */
  readonly leafLabel?: string;
  readonly intermediateLabels?: readonly string[];
  /** Critical extensions understood besides basicConstraints and keyUsage (dotted OIDs). */
  readonly understoodCriticalExtensions?: readonly string[];
  /** Most intermediates accepted (default 8). */
  readonly maxIntermediates?: number;
  /** Most certificates in a path, leaf and anchor included (default 10). */
  readonly maxPathLength?: number;
}

/** A validated path. */
export interface CertificatePath {
  /** Leaf first, the anchor's certificate last. */
  readonly certificates: readonly ParsedCertificate[];
  readonly anchor: TrustAnchor;
  /** SHA-256 (hex) of the anchor's DER. */
  readonly rootFingerprint: string;
  readonly simulated: boolean;
}

const ID_CE_BASIC_CONSTRAINTS = '2.5.29.19';
const ID_CE_KEY_USAGE = '2.5.29.15';
const RANK = {
  missingIssuer: 1,
  badSignature: 2,
  badAlgorithm: 3,
  untrustedRoot: 4,
  pathRejected: 5,
} as const;

interface ResolvedAnchor {
  readonly anchor: TrustAnchor;
  readonly record: ParsedCertificate;
  readonly label: string;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

function checkOptions(options: BuildPathOptions): number {
  const nowMs = options?.now instanceof Date ? options.now.getTime() : Number.NaN;
  /* Precondition: the caller supplies the verification time (never defaulted inside the library). */
  if (!Number.isFinite(nowMs))
    throw new ConfigError('CONFIG_INVALID', 'buildCertificatePath: `now` must be a valid Date');
  /* Precondition: the caller supplies the trust anchors and an algorithm allow-list. */
  if (!Array.isArray(options.trustAnchors)) {
    throw new ConfigError('CONFIG_INVALID', 'buildCertificatePath: `trustAnchors` must be an array');
  }
  if (!Array.isArray(options.algorithms) || options.algorithms.length === 0) {
    throw new ConfigError('CONFIG_INVALID', 'buildCertificatePath: `algorithms` must be a non-empty array');
  }
  if (!Array.isArray(options.intermediates)) {
    throw new ConfigError('CONFIG_INVALID', 'buildCertificatePath: `intermediates` must be an array');
  }
  return nowMs;
}

/**
 * Builds a path from `leaf` through `intermediates` to one of `trustAnchors` and validates it at `now`.
 * @throws AttestationError CERT_INVALID (unparseable certificate, disallowed algorithm, not a CA, key
 *   usage, path length, unknown critical extension), CERT_EXPIRED, CERT_NOT_YET_VALID,
 *   CERT_CHAIN_INVALID (no issuer found, signature does not verify, too many certificates),
 *   CERT_ROOT_UNTRUSTED (no trust anchors, or the chain ends at a root that is not pinned)
 * @throws ConfigError CONFIG_INVALID when `now`, `trustAnchors`, `algorithms` or `intermediates` are missing.
 */
export function buildCertificatePath(options: BuildPathOptions): CertificatePath {
  const nowMs = checkOptions(options);
  const { cache, algorithms } = options;
  const maxIntermediates = options.maxIntermediates ?? 8;
  const maxPathLength = options.maxPathLength ?? 10;
  const understood = new Set([
    ID_CE_BASIC_CONSTRAINTS,
    ID_CE_KEY_USAGE,
    ...(options.understoodCriticalExtensions ?? []),
  ]);

  /* Precondition: at least one trust anchor is configured. */
  if (options.trustAnchors.length === 0) {
    throw new AttestationError('CERT_ROOT_UNTRUSTED', 'no trust anchors are configured');
  }
  /* Precondition: the bag of intermediates is bounded. */
  if (options.intermediates.length > maxIntermediates) {
    throw new AttestationError(
      'CERT_CHAIN_INVALID',
      `${options.intermediates.length} intermediate certificates given, at most ${maxIntermediates} accepted`,
    );
  }

  const labels = new Map<string, string>();
  const anchors: ResolvedAnchor[] = options.trustAnchors.map((anchor, i) => {
    const label = `trust anchor ${anchor.name === undefined ? `#${i + 1}` : `"${anchor.name}"`}`;
    return { anchor, record: parseCertificate(anchor.certificate, label, cache), label };
  });
  const anchorsByFingerprint = new Map<string, ResolvedAnchor>();
  for (const a of anchors) {
    if (!anchorsByFingerprint.has(a.record.fingerprint)) anchorsByFingerprint.set(a.record.fingerprint, a);
    labels.set(a.record.fingerprint, a.label);
  }
  const leafLabel = options.leafLabel ?? 'leaf';
  const leaf = parseCertificate(options.leaf, leafLabel, cache);
  const bag = options.intermediates.map((input, i) => {
    const label = options.intermediateLabels?.[i] ?? `intermediate #${i + 1}`;
    const record = parseCertificate(input, label, cache);
    if (!labels.has(record.fingerprint)) labels.set(record.fingerprint, label);
    return record;
  });
  labels.set(leaf.fingerprint, leafLabel);
  const labelOf = (c: ParsedCertificate): string => labels.get(c.fingerprint) ?? c.subject;

  // Anchors first, then the bag; one candidate per fingerprint.
  const candidatesAll: ParsedCertificate[] = [];
  const seen = new Set<string>();
  for (const c of [...anchors.map((a) => a.record), ...bag]) {
    if (!seen.has(c.fingerprint)) {
      seen.add(c.fingerprint);
      candidatesAll.push(c);
    }
  }

  let best: { rank: number; error: AttestationError } | null = null;
  const fail = (rank: number, error: AttestationError): void => {
    if (best === null || rank > best.rank) best = { rank, error };
  };
  const linkVerifies = createLinkVerifier(nowMs, cache);

  const validate = (path: readonly ParsedCertificate[], anchor: ResolvedAnchor): CertificatePath | null => {
    try {
      validatePath(path, nowMs, understood, labelOf);
    } catch (err) {
      if (err instanceof AttestationError) {
        fail(RANK.pathRejected, err);
        return null;
      }
      throw err;
    }
    return {
      certificates: [...path],
      anchor: anchor.anchor,
      rootFingerprint: anchor.record.fingerprint,
      // Fail closed: only an explicit `false` marks a root as a vendor root.
      simulated: anchor.anchor.simulated !== false,
    };
  };

  const extend = (path: ParsedCertificate[], used: Set<string>): CertificatePath | null => {
    const current = path[path.length - 1]!;
    const anchor = anchorsByFingerprint.get(current.fingerprint);
    if (anchor !== undefined) return validate(path, anchor);
    /* Precondition: paths are bounded in length. */
    if (path.length >= maxPathLength) {
      fail(
        RANK.missingIssuer,
        new AttestationError('CERT_CHAIN_INVALID', `no path within ${maxPathLength} certificates`),
      );
      return null;
    }
    const algorithm = findSignatureAlgorithm(algorithms, current.signatureAlgorithm);
    /* Precondition: the certificate is signed with an allowed algorithm. */
    if (algorithm === undefined) {
      fail(
        RANK.badAlgorithm,
        new AttestationError(
          'CERT_INVALID',
          `${labelOf(current)} certificate is signed with a disallowed algorithm (AlgorithmIdentifier ` +
            `${current.signatureAlgorithm}); allowed: ${algorithms.map((a) => a.name).join(', ')}`,
        ),
      );
      return null;
    }
    const untrusted = (): void =>
      fail(
        RANK.untrustedRoot,
        new AttestationError(
          'CERT_ROOT_UNTRUSTED',
          `the chain ends at the self-issued certificate "${current.subject}" (SHA-256 ${current.fingerprint}), ` +
            'which is not a trust anchor',
        ),
      );
    const candidates = candidatesAll.filter(
      (c) => !used.has(c.fingerprint) && bytesEqual(c.subjectDer, current.issuerDer),
    );
    for (const parent of candidates) {
      /* Precondition: the issuer's key is of the kind the algorithm requires. */
      if (!keySatisfies(parent.publicKey, algorithm.key)) {
        fail(
          RANK.badSignature,
          new AttestationError(
            'CERT_CHAIN_INVALID',
            `the key of ${labelOf(parent)} cannot verify ${algorithm.name} (${labelOf(current)} certificate)`,
          ),
        );
        continue;
      }
      /* Precondition: the issuer's key verifies the certificate's signature. */
      if (!linkVerifies(current, parent)) {
        fail(
          RANK.badSignature,
          new AttestationError(
            'CERT_CHAIN_INVALID',
            `the signature of the ${labelOf(current)} certificate does not verify under the key of ${labelOf(parent)} ` +
              `("${parent.subject}")`,
          ),
        );
        continue;
      }
      used.add(parent.fingerprint);
      path.push(parent);
      const found = extend(path, used);
      if (found !== null) return found;
      path.pop();
      used.delete(parent.fingerprint);
    }
    /* Precondition: the chain ends at a pinned trust anchor. */
    if (current.selfIssued) {
      untrusted();
    } else if (candidates.length === 0) {
      fail(
        RANK.missingIssuer,
        new AttestationError(
          'CERT_CHAIN_INVALID',
          `no certificate among the intermediates and trust anchors is named "${current.issuer}", the issuer of the ` +
            `${labelOf(current)} certificate`,
        ),
      );
    }
    return null;
  };

  const found = extend([leaf], new Set([leaf.fingerprint]));
  if (found !== null) return found;
  throw (
    (best as { error: AttestationError } | null)?.error ??
    new AttestationError('CERT_CHAIN_INVALID', 'no certification path could be built')
  );
}

function validatePath(
  path: readonly ParsedCertificate[],
  nowMs: number,
  understood: ReadonlySet<string>,
  labelOf: (c: ParsedCertificate) => string,
): void {
  path.forEach((cert, i) => {
    const label = labelOf(cert);
    const unknown = cert.extensions.find((e) => e.critical && !understood.has(e.oid));
    /* Precondition: no certificate carries a critical extension we do not process (RFC 5280 §4.2). */
    if (unknown !== undefined) {
      throw new AttestationError(
        'CERT_INVALID',
        `${label} certificate has an unrecognised critical extension ${unknown.oid}`,
      );
    }
    if (i === 0) return;
    /* Precondition: every issuer is a CA (basicConstraints cA = TRUE). */
    if (cert.basicConstraints?.ca !== true) {
      throw new AttestationError(
        'CERT_INVALID',
        `${label} certificate issues certificates but is not a CA (basicConstraints)`,
      );
    }
    /* Precondition: an issuer with a keyUsage extension asserts keyCertSign. */
    if (cert.keyUsage !== null && !cert.keyUsage.has('keyCertSign')) {
      throw new AttestationError('CERT_INVALID', `${label} certificate's keyUsage lacks keyCertSign`);
    }
    const pathLength = cert.basicConstraints.pathLength;
    if (pathLength !== null) {
      // CA certificates between this one and the leaf, self-issued ones excepted (RFC 5280 §6.1.4 (l)).
      const below = path.slice(1, i).filter((c) => !c.selfIssued).length;
      /* Precondition: pathLenConstraint is respected. */
      if (below > pathLength) {
        throw new AttestationError(
          'CERT_INVALID',
          `${label} certificate allows ${pathLength} intermediate CA certificate(s) below it, the path has ${below}`,
        );
      }
    }
  });
  /* Precondition: every certificate of the path, the anchor included, is valid at `now`. */
  for (const cert of path) assertValidAt(cert, nowMs, `${labelOf(cert)} certificate`);
}
