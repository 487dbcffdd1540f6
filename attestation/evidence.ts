/**
 * One entry point over both TEE verifiers for evidence that travels as a bundle (the document plus the chain
 * certificates it does not carry): the session's enclave evidence and a workload's evidence (design §2, §3).
 * It dispatches to `verifyNitroDocument` / `verifySnpReport`, the same code paths as `ekms attest verify`.
 *
 * Trust anchors are given as PEM roots: the embedded vendor roots are always included; the extra roots a caller
 * passes (e.g. a simulated CA's) are marked `simulated: true`, so that claims anchored there say so and a policy
 * must allow them explicitly (style §4). No I/O; `now` is required (style §3, §13).
 */
import { X509Certificate } from 'node:crypto';
import { ConfigError } from '../shared/errors.js';
import type { EvidenceBundle } from '../shared/session.js';
import type { Claims } from './claims.js';
import { AttestationError } from './errors.js';
import { AWS_NITRO_TRUST_ANCHORS, parseNitroDocument, verifyNitroDocument } from './nitro/index.js';
import {
  AMD_SNP_TRUST_ANCHORS,
  parseSnpReport,
  type SnpTrustAnchor,
  verifySnpReport,
} from './sev-snp/index.js';
import type { TrustAnchor } from './x509/index.js';
import { X509Cache } from './x509/index.js';

export interface VerifyBundleOptions {
  /** The instant certificates must be valid at. */
  readonly now: Date;
  /** Extra roots (PEM) beyond the embedded vendor roots; they count as simulated. */
  readonly extraRoots?: readonly string[];
  readonly cache?: X509Cache;
}

/**
 * The SEV-SNP product an ARK certificate is for, from its subject (CN=ARK-Milan|Genoa|Turin).
 * @throws ConfigError CONFIG_INVALID when the certificate is not an ARK
 */
export function snpProductOfArk(pem: string): SnpTrustAnchor['product'] {
  const cn = /CN=ARK-(Milan|Genoa|Turin)\b/.exec(new X509Certificate(pem).subject.replace(/\n/g, ','));
  if (!cn)
    throw new ConfigError('CONFIG_INVALID', 'an SEV-SNP root must be an ARK (CN=ARK-Milan|Genoa|Turin)');
  return cn[1] as SnpTrustAnchor['product'];
}

/** Whether a configured root is an AMD ARK; memoised (roots repeat on every handshake; bounded to 64 entries). */
const arkMemo = new Map<string, boolean>();
function isArk(pem: string): boolean {
  const known = arkMemo.get(pem);
  if (known !== undefined) return known;
  let ark: boolean;
  try {
    snpProductOfArk(pem);
    ark = true;
  } catch {
    ark = false;
  }
  if (arkMemo.size >= 64) arkMemo.clear();
  arkMemo.set(pem, ark);
  return ark;
}

/**
 * Parses and verifies an evidence bundle (signatures, chain to a trusted root, validity at `now`); returns the
 * normalised claims. Policy is the caller's next step (`evaluate`).
 * @throws AttestationError (every parse/verify code of the two verifiers)
 */
export function verifyEvidenceBundle(bundle: EvidenceBundle, options: VerifyBundleOptions): Claims {
  const extra = options.extraRoots ?? [];
  const cache = options.cache ?? new X509Cache();
  if (bundle.type === 'nitro') {
    const anchors: TrustAnchor[] = [
      ...AWS_NITRO_TRUST_ANCHORS,
      ...extra
        .filter((p) => !isArk(p))
        .map((certificate) => ({ certificate, simulated: true, name: 'configured root' })),
    ];
    return verifyNitroDocument(parseNitroDocument(bundle.document), {
      trustAnchors: anchors,
      now: options.now,
      cache,
    });
  }
  const anchors: SnpTrustAnchor[] = [
    ...AMD_SNP_TRUST_ANCHORS,
    ...extra.filter(isArk).map((ark) => ({ product: snpProductOfArk(ark), ark, simulated: true })),
  ];
  const certs = bundle.certificates.map((pem) => {
    try {
      return { pem, ca: new X509Certificate(pem).ca };
    } catch (cause) {
      /* Precondition: every certificate in the bundle parses (untrusted input: typed error, never a crash). */
      throw new AttestationError('CERT_INVALID', 'a certificate in the evidence bundle does not parse', {
        cause,
      });
    }
  });
  return verifySnpReport(parseSnpReport(bundle.document), {
    trustAnchors: anchors,
    now: options.now,
    vek: certs.find((c) => !c.ca)?.pem,
    intermediates: certs.filter((c) => c.ca).map((c) => c.pem),
    cache,
  });
}
