/**
 * The SEV-SNP certificate chain, which has a fixed shape (AMD KDS spec, pub. 57230, "Certificate
 * Chain"): VCEK ← ASK ← ARK or VLEK ← ASVK ← ARK. The ARK is self-signed and pinned per product (by
 * the SHA-256 of its DER: only an ARK given as a trust anchor ends a chain); every link is RSASSA-PSS
 * SHA-384 (checked in certificate.ts and by OpenSSL); the VEK is ECDSA P-384.
 *
 * The generic parts are the shared X.509 module's: parsing (certificate.ts wraps `parseCertificate`), link
 * signatures through `createLinkVerifier` (the `X509Cache`, and the same work bound as path building),
 * `assertValidAt`, the key requirements of `ECDSA_P384_SHA384`. What stays here is AMD's: the fixed shape,
 * the names (SEV-VCEK, SEV-<product>, SEV-VLEK-<product>, ARK-<product>), RSA-4096, per-product anchors,
 * and this error classification (which the generic path search, ranking failures differently, would not give).
 *
 * Error classification, so that a failure says what went wrong:
 * - CERT_ROOT_UNTRUSTED: no trusted certificate is named as the issuer (by name and, when present, by
 *   authority key identifier) — e.g. a simulated chain or a look-alike ARK with the same names but
 *   another key, checked against the AMD roots;
 * - CERT_CHAIN_INVALID: a certificate names a trusted issuer but its signature does not verify under it;
 * - CERT_INVALID: a certificate has the wrong role, key type, names or extensions;
 * - CERT_EXPIRED / CERT_NOT_YET_VALID: a certificate of the built chain is not valid at `now`.
 */
import { AttestationError } from '../errors.js';
import {
  assertValidAt,
  createLinkVerifier,
  ECDSA_P384_SHA384,
  keySatisfies,
  type ParsedCertificate,
  type X509Cache,
} from '../x509/index.js';
import { type AmdCertificate, loadCertificate } from './certificate.js';
import type { CertificateInput, SnpProduct, SnpSigningKey, SnpTrustAnchor } from './types.js';

/** Most certificates a caller may pass as `intermediates` (the chain needs at most one). */
export const MAX_SNP_INTERMEDIATES = 8;

/** A verified chain. */
export interface SnpChain {
  readonly vek: AmdCertificate;
  /** The ASK (for a VCEK) or ASVK (for a VLEK). */
  readonly signer: AmdCertificate;
  readonly ark: AmdCertificate;
  readonly anchor: SnpTrustAnchor;
  readonly product: SnpProduct;
  readonly kind: SnpSigningKey;
}

/** What `buildSnpChain` needs. */
export interface SnpChainInput {
  readonly vek: CertificateInput;
  readonly intermediates: readonly CertificateInput[];
  readonly anchors: readonly SnpTrustAnchor[];
  /** When known (CPUID or the caller), only this product's anchors are tried. */
  readonly product: SnpProduct | null;
  readonly nowMs: number;
  readonly cache: X509Cache | undefined;
}

interface Candidate {
  readonly record: AmdCertificate;
  readonly anchor: SnpTrustAnchor | null;
}

const SIGNER_CN = /^SEV-(VLEK-)?(Milan|Genoa|Turin)$/;

function isP384(record: ParsedCertificate): boolean {
  return keySatisfies(record.publicKey, ECDSA_P384_SHA384.key);
}

function isRsa4096(record: ParsedCertificate): boolean {
  const key = record.publicKey;
  return key.asymmetricKeyType === 'rsa' && key.asymmetricKeyDetails?.modulusLength === 4096;
}

/** Validity at `now` of a certificate of the chain, named by its role and common name. */
function assertChainValidAt(record: AmdCertificate, role: string, nowMs: number): void {
  assertValidAt(record, nowMs, `${role} certificate (${record.subjectCn})`, { role });
}

function anchorLabel(anchor: SnpTrustAnchor, which: string): string {
  return `trust anchor ${anchor.product} ${which}`;
}

/**
 * Builds and verifies VEK → ASK/ASVK → ARK against the trust anchors, then checks validity at `now`.
 * @throws AttestationError CERT_INVALID, CERT_ROOT_UNTRUSTED, CERT_CHAIN_INVALID (also past
 *   `MAX_LINK_CHECKS` link checks), CERT_EXPIRED, CERT_NOT_YET_VALID
 */
export function buildSnpChain(input: SnpChainInput): SnpChain {
  const { cache } = input;
  const linkVerifies = createLinkVerifier(input.nowMs, cache);
  const vek = loadCertificate(input.vek, 'VEK', cache);
  const kind: SnpSigningKey | null =
    vek.subjectCn === 'SEV-VCEK' ? 'vcek' : vek.subjectCn === 'SEV-VLEK' ? 'vlek' : null;
  /* Precondition: the VEK is a VCEK (CN SEV-VCEK) or a VLEK (CN SEV-VLEK). */
  if (kind === null) {
    throw new AttestationError(
      'CERT_INVALID',
      `VEK certificate subject CN is "${vek.subjectCn}", not SEV-VCEK or SEV-VLEK`,
    );
  }
  /* Precondition: the VEK is an end-entity ECDSA P-384 key. */
  if (!isP384(vek) || vek.x509.ca || vek.selfIssued) {
    throw new AttestationError('CERT_INVALID', 'VEK certificate must be a non-CA ECDSA P-384 certificate');
  }

  const anchors = input.anchors.filter((a) => input.product === null || a.product === input.product);
  /* Precondition: some trust anchor exists for the product. */
  if (anchors.length === 0) {
    throw new AttestationError(
      'CERT_ROOT_UNTRUSTED',
      `no SEV-SNP trust anchor${input.product === null ? '' : ` for ${input.product}`} is configured`,
    );
  }

  /* Precondition: the caller's extra certificates are bounded. */
  if (input.intermediates.length > MAX_SNP_INTERMEDIATES) {
    throw new AttestationError(
      'CERT_INVALID',
      `${input.intermediates.length} intermediate certificates given, at most ${MAX_SNP_INTERMEDIATES} accepted`,
    );
  }
  const candidates: Candidate[] = [];
  for (const anchor of anchors) {
    const signer = kind === 'vcek' ? anchor.ask : anchor.asvk;
    if (signer !== undefined) {
      candidates.push({
        record: loadCertificate(signer, anchorLabel(anchor, kind === 'vcek' ? 'ASK' : 'ASVK'), cache),
        anchor,
      });
    }
  }
  input.intermediates.forEach((cert, i) => {
    const record = loadCertificate(cert, `intermediate #${i + 1}`, cache);
    // A self-issued certificate can only be a root; roots come from the trust anchors alone.
    if (!record.selfIssued) candidates.push({ record, anchor: null });
  });

  const named = candidates.filter((c) => vek.x509.checkIssued(c.record.x509));
  /* Precondition: the VEK names a known ASK/ASVK as its issuer. */
  if (named.length === 0) {
    throw new AttestationError(
      'CERT_ROOT_UNTRUSTED',
      `the ${kind.toUpperCase()}'s issuer "${vek.issuerCn}" is not a trusted AMD signing key` +
        `${input.product === null ? '' : ` for ${input.product}`} (supply the ${kind === 'vcek' ? 'ASK' : 'ASVK'} ` +
        'or trust its ARK)',
    );
  }
  const signerHit = named.find((c) => linkVerifies(vek, c.record));
  /* Precondition: the VEK's signature verifies under its issuer's key. */
  if (signerHit === undefined) {
    throw new AttestationError(
      'CERT_CHAIN_INVALID',
      `the ${kind.toUpperCase()} certificate's signature does not verify under "${vek.issuerCn}"`,
    );
  }
  const signer = signerHit.record;
  const signerMatch = SIGNER_CN.exec(signer.subjectCn);
  const signerKind: SnpSigningKey | null =
    signerMatch === null ? null : signerMatch[1] === undefined ? 'vcek' : 'vlek';
  /* Precondition: a VCEK is issued by an ASK (SEV-<product>) and a VLEK by an ASVK (SEV-VLEK-<product>). */
  if (signerKind !== kind || signerMatch === null) {
    throw new AttestationError(
      'CERT_INVALID',
      `a ${kind.toUpperCase()} must be issued by ${kind === 'vcek' ? 'an ASK (SEV-<product>)' : 'an ASVK (SEV-VLEK-<product>)'}, ` +
        `not by "${signer.subjectCn}"`,
    );
  }
  const signerProduct = signerMatch[2] as SnpProduct;
  /* Precondition: the ASK/ASVK is an RSA-4096 CA certificate. */
  if (!signer.x509.ca || !isRsa4096(signer) || signer.selfIssued) {
    throw new AttestationError(
      'CERT_INVALID',
      `${signer.subjectCn} certificate must be an RSA-4096 CA certificate`,
    );
  }

  const roots = anchors
    .filter((a) => a.product === signerProduct)
    .map((anchor) => ({ anchor, record: loadCertificate(anchor.ark, anchorLabel(anchor, 'ARK'), cache) }));
  const namedRoots = roots.filter((r) => signer.x509.checkIssued(r.record.x509));
  /* Precondition: the ASK/ASVK names a pinned ARK (by name and key identifier) as its issuer. */
  if (namedRoots.length === 0) {
    throw new AttestationError(
      'CERT_ROOT_UNTRUSTED',
      `${signer.subjectCn} is not issued by a trusted ${signerProduct} ARK (issuer "${signer.issuerCn}" with another key ` +
        'or name)',
    );
  }
  const root = namedRoots.find((r) => linkVerifies(signer, r.record));
  /* Precondition: the ASK/ASVK signature verifies under the pinned ARK. */
  if (root === undefined) {
    throw new AttestationError(
      'CERT_CHAIN_INVALID',
      `the ${signer.subjectCn} certificate's signature does not verify under the trusted ${signerProduct} ARK`,
    );
  }
  const ark = root.record;
  /* Precondition: the pinned ARK is a self-signed RSA-4096 CA named ARK-<product>. */
  if (
    ark.subjectCn !== `ARK-${signerProduct}` ||
    !ark.selfIssued ||
    !ark.x509.ca ||
    !isRsa4096(ark) ||
    !linkVerifies(ark, ark)
  ) {
    throw new AttestationError(
      'CERT_INVALID',
      `trust anchor ARK "${ark.subjectCn}" must be a validly self-signed RSA-4096 CA named ARK-${signerProduct}`,
    );
  }

  /* Precondition: every certificate of the chain, the ARK included, is valid at `now`. */
  assertChainValidAt(vek, kind.toUpperCase(), input.nowMs);
  assertChainValidAt(signer, kind === 'vcek' ? 'ASK' : 'ASVK', input.nowMs);
  assertChainValidAt(ark, 'ARK', input.nowMs);
  return { vek, signer, ark, anchor: root.anchor, product: signerProduct, kind };
}
