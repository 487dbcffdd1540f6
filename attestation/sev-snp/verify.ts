/**
 * `verifySnpReport`: authenticity of an SEV-SNP attestation report (style §2, stage 2).
 *
 * Spec: SEV-SNP Firmware ABI (AMD pub. 56860) §7.3 — the report is signed with ECDSA P-384 / SHA-384 over
 * bytes 0x000..0x29F, R and S stored as 72-byte little-endian integers (Appendix "ECDSA Signature
 * Format"); AMD KDS spec (pub. 57230) — the VEK chain and its extensions.
 *
 * Order of checks: structure (re-parsed from `evidence.bytes`; nothing else of the evidence object is
 * trusted) → certificate chain and validity at `now` → bindings between the report and the VEK
 * (SIGNING_KEY vs certificate kind, productName, TCB extensions vs REPORTED_TCB component by component,
 * VCEK hwID vs CHIP_ID) → the report signature. Bindings come before the signature so that a VEK of
 * another chip or TCB is reported as such rather than as a bad signature; every check must pass.
 *
 * Policy (allowed measurements, debug, minimum TCB, VMPL, report_data binding) is not applied here.
 */
import { timingSafeEqual, verify as verifySignature } from 'node:crypto';
import { ConfigError } from '../../shared/errors.js';
import type { SnpClaims, TcbVersion } from '../claims.js';
import { AttestationError } from '../errors.js';
import type { X509Cache } from '../x509/index.js';
import { buildSnpChain, type SnpChain } from './chain.js';
import {
  decodeSnpTcb,
  SNP_ECDSA_COMPONENT_BYTES,
  SNP_POLICY_DEBUG_BIT,
  SNP_SIGNED_LENGTH,
  snpChipIdLength,
  snpProductReservedRanges,
} from './layout.js';
import { assertReservedZero, parseSnpReport } from './parse.js';
import {
  type CertificateInput,
  SNP_PRODUCTS,
  type SnpEvidence,
  type SnpProduct,
  type SnpTrustAnchor,
} from './types.js';

/** Options of `verifySnpReport`. `trustAnchors` and `now` are required: the library never defaults them. */
export interface VerifySnpOptions {
  /** The pinned roots (e.g. `AMD_SNP_TRUST_ANCHORS`, plus a simulated anchor only when configured). */
  readonly trustAnchors: readonly SnpTrustAnchor[];
  /** The instant at which certificates must be valid (archived evidence: its time; live: the clock). */
  readonly now: Date;
  /** The VCEK or VLEK certificate (PEM or DER). Required; undefined fails with CERT_MISSING. */
  readonly vek: CertificateInput | undefined;
  /** Extra chain certificates (an ASK or ASVK not in the anchors). */
  readonly intermediates?: readonly CertificateInput[];
  /** The product, when known out of band; must agree with the report's CPUID fields when present. */
  readonly product?: SnpProduct;
  /** Reuse parsed certificates and verified links across calls (an `X509Cache`, alias `SnpVerifierCache`). */
  readonly cache?: X509Cache;
}

/** The highest VMPL a guest can request a report at (ABI §7.3, MSG_REPORT_REQ). */
const SNP_MAX_VMPL = 3;

/** Order of the P-384 group (SEC 2, secp384r1 n). */
const P384_N =
  0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n;

const toHex = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');

/** 72-byte little-endian component → 48-byte big-endian, or null when it is not in 1..n-1. */
function scalarBigEndian(le: Uint8Array): Buffer | null {
  for (let i = 48; i < SNP_ECDSA_COMPONENT_BYTES; i++) {
    if (le[i] !== 0) return null;
  }
  const be = Buffer.from(le.subarray(0, 48)).reverse();
  const value = BigInt(`0x${be.toString('hex')}`);
  return value === 0n || value >= P384_N ? null : be;
}

function checkOptions(options: VerifySnpOptions): number {
  const nowMs = options?.now instanceof Date ? options.now.getTime() : Number.NaN;
  /* Precondition: the caller supplies the verification time (never defaulted inside the library). */
  if (!Number.isFinite(nowMs)) {
    throw new ConfigError('CONFIG_INVALID', 'verifySnpReport: `now` must be a valid Date');
  }
  /* Precondition: the caller supplies the trust anchors (never defaulted inside the library). */
  if (!Array.isArray(options.trustAnchors)) {
    throw new ConfigError('CONFIG_INVALID', 'verifySnpReport: `trustAnchors` must be an array');
  }
  if (options.product !== undefined && !SNP_PRODUCTS.includes(options.product)) {
    throw new ConfigError('CONFIG_INVALID', `verifySnpReport: unknown product ${String(options.product)}`);
  }
  return nowMs;
}

function resolveProduct(report: SnpEvidence, requested: SnpProduct | undefined): SnpProduct | null {
  let fromCpuid: SnpProduct | null = null;
  if (report.cpuid !== null) {
    fromCpuid = report.product;
    /* Precondition: a version 3+ report's CPUID names a supported product. */
    if (fromCpuid === null) {
      throw new AttestationError(
        'EVIDENCE_FIELD_INVALID',
        `SEV-SNP report CPUID family 0x${report.cpuid.family.toString(16)} model 0x${report.cpuid.model.toString(16)} ` +
          'is not a supported SEV-SNP product (Milan, Genoa, Turin)',
        { details: { field: 'CPUID', ...report.cpuid } },
      );
    }
  }
  /* Precondition: a product given by the caller agrees with the report's CPUID. */
  if (requested !== undefined && fromCpuid !== null && requested !== fromCpuid) {
    throw new AttestationError(
      'EVIDENCE_FIELD_INVALID',
      `SEV-SNP report CPUID names ${fromCpuid}, but ${requested} was expected`,
      { details: { field: 'CPUID', expected: requested, actual: fromCpuid } },
    );
  }
  return requested ?? fromCpuid;
}

function checkBindings(report: SnpEvidence, chain: SnpChain): TcbVersion {
  const { vek, product, kind } = chain;
  const label = kind.toUpperCase();
  /* Precondition: the report's SIGNING_KEY names the kind of certificate that signed it. */
  if (report.signerInfo.signingKey !== kind) {
    throw new AttestationError(
      'SIGNING_KEY_MISMATCH',
      `SEV-SNP report says it was signed by the ${report.signerInfo.signingKey.toUpperCase()}, ` +
        `but the certificate is a ${label}`,
      { details: { report: report.signerInfo.signingKey, certificate: kind } },
    );
  }
  const productName = vek.amd.productName;
  /* Precondition: the VEK's productName names the product of its chain ("Milan-B0" names Milan). */
  if (productName === null || productName.split('-')[0] !== product) {
    throw new AttestationError(
      'CERT_INVALID',
      `${label} productName is ${productName === null ? 'missing' : `"${productName}"`}, expected ${product}`,
    );
  }

  const reported = decodeSnpTcb(report.reportedTcb, product);
  const components: (keyof TcbVersion)[] = ['bootloader', 'tee', 'snp', 'microcode'];
  if (product === 'Turin') components.unshift('fmc');
  /* Precondition: only a Turin VEK carries fmcSPL. */
  if (product !== 'Turin' && vek.amd.tcb.fmc !== undefined) {
    throw new AttestationError('CERT_INVALID', `${label} carries fmcSPL, which only Turin defines`);
  }
  for (const component of components) {
    const certified = vek.amd.tcb[component];
    /* Precondition: the VEK carries every TCB component of its product. */
    if (certified === undefined) {
      throw new AttestationError('CERT_INVALID', `${label} lacks the ${component} SPL extension`);
    }
    /* Precondition: each TCB component of the VEK equals REPORTED_TCB's. */
    if (certified !== reported[component]) {
      throw new AttestationError(
        'TCB_MISMATCH',
        `${label} ${component} SPL is ${certified} but REPORTED_TCB ${component} is ${reported[component]}`,
        { details: { component, certificate: certified, report: reported[component] } },
      );
    }
  }

  const hwId = vek.amd.hwId;
  if (kind === 'vlek') {
    /* Precondition: a VLEK is not bound to a chip and carries no hwID. */
    if (hwId !== null) throw new AttestationError('CERT_INVALID', 'VLEK carries a hwID extension');
    return reported;
  }
  const length = snpChipIdLength(product);
  /* Precondition: a VCEK carries a hwID of its product's length (64 bytes; 8 on Turin). */
  if (hwId === null || hwId.length !== length) {
    throw new AttestationError(
      'CERT_INVALID',
      `VCEK hwID is ${hwId === null ? 'missing' : `${hwId.length} bytes`}, expected ${length} bytes for ${product}`,
    );
  }
  /* Precondition: the VCEK's hwID equals the report's CHIP_ID. */
  if (!timingSafeEqual(hwId, report.chipId.subarray(0, length))) {
    throw new AttestationError(
      'CHIP_ID_MISMATCH',
      `VCEK hwID ${toHex(hwId)} differs from the report's CHIP_ID ${toHex(report.chipId.subarray(0, length))}` +
        (report.signerInfo.maskChipKey ? ' (MASK_CHIP_KEY is set: the host zeroed CHIP_ID)' : ''),
    );
  }
  return reported;
}

function checkSignature(report: SnpEvidence, chain: SnpChain): void {
  const r = scalarBigEndian(report.signatureR);
  const s = scalarBigEndian(report.signatureS);
  /* Precondition: R and S are in 1..n-1 (and their 24 high bytes are zero). */
  if (r === null || s === null) {
    throw new AttestationError(
      'EVIDENCE_SIGNATURE_INVALID',
      `SEV-SNP report signature ${r === null ? 'R' : 'S'} is out of range for P-384`,
    );
  }
  const ok = verifySignature(
    'sha384',
    report.bytes.subarray(0, SNP_SIGNED_LENGTH),
    { key: chain.vek.publicKey, dsaEncoding: 'ieee-p1363' },
    Buffer.concat([r, s]),
  );
  /* Precondition: the report's ECDSA P-384 signature verifies under the VEK. */
  if (!ok) {
    throw new AttestationError(
      'EVIDENCE_SIGNATURE_INVALID',
      `SEV-SNP report signature does not verify under the ${chain.kind.toUpperCase()} supplied`,
    );
  }
}

/**
 * Verifies an SEV-SNP report: its VEK chain to a pinned ARK at `now`, the bindings between report and VEK,
 * and the report signature; returns the normalised claims.
 *
 * @throws ConfigError CONFIG_INVALID (bad `now`, `trustAnchors` or `product` option)
 * @throws AttestationError with code
 *   EVIDENCE_* (as `parseSnpReport`, on `evidence.bytes`), EVIDENCE_FIELD_INVALID (VMPL not 0..3, e.g. a
 *   host-requested report; CPUID names no supported product, or another product than `options.product`),
 *   EVIDENCE_RESERVED_NONZERO (product-specific reserved bytes), CERT_MISSING (no VEK), CERT_INVALID,
 *   CERT_ROOT_UNTRUSTED, CERT_CHAIN_INVALID, CERT_EXPIRED, CERT_NOT_YET_VALID, SIGNING_KEY_MISMATCH,
 *   TCB_MISMATCH (names the component), CHIP_ID_MISMATCH, EVIDENCE_SIGNATURE_INVALID.
 */
export function verifySnpReport(evidence: SnpEvidence, options: VerifySnpOptions): SnpClaims {
  const nowMs = checkOptions(options);
  const report = parseSnpReport(evidence?.bytes);
  /*
   * Precondition: VMPL is 0..3, the level of the guest that requested the report. ABI 1.58 Table 23 defines
   * one other value, 0xFFFFFFFF, for a report the host requested (SNP_HV_REPORT_REQ) with REPORT_DATA
   * zero-filled by the firmware: authentic, but not the guest's evidence and binding nothing (fail closed).
   */
  if (report.vmpl > SNP_MAX_VMPL) {
    throw new AttestationError(
      'EVIDENCE_FIELD_INVALID',
      report.vmpl === 0xffff_ffff
        ? 'SEV-SNP report VMPL is 0xffffffff: the host requested it (SNP_HV_REPORT_REQ), so it is not ' +
            "the guest's evidence and its REPORT_DATA binds nothing"
        : `SEV-SNP report VMPL ${report.vmpl} is not a VMPL (0..3)`,
      { details: { field: 'VMPL', value: report.vmpl } },
    );
  }
  /* Precondition: the VCEK/VLEK certificate is supplied (reports do not carry it). */
  if (options.vek === undefined || options.vek === null || options.vek.length === 0) {
    throw new AttestationError(
      'CERT_MISSING',
      `the ${report.signerInfo.signingKey.toUpperCase()} certificate is required to verify an SEV-SNP report`,
    );
  }
  const chain = buildSnpChain({
    vek: options.vek,
    intermediates: options.intermediates ?? [],
    anchors: options.trustAnchors,
    product: resolveProduct(report, options.product),
    nowMs,
    cache: options.cache,
  });
  const { product } = chain;
  assertReservedZero(report.bytes, snpProductReservedRanges(product));
  const reportedTcb = checkBindings(report, chain);
  checkSignature(report, chain);

  return {
    type: 'sev-snp',
    debug: ((report.policy >> SNP_POLICY_DEBUG_BIT) & 1n) === 1n,
    timestamp: null,
    measurement: toHex(report.measurement),
    rootFingerprint: chain.ark.fingerprint,
    simulated: chain.anchor.simulated === true,
    version: report.version,
    product,
    reportData: toHex(report.reportData),
    hostData: toHex(report.hostData),
    vmpl: report.vmpl,
    policy: `0x${report.policy.toString(16)}`,
    chipId: toHex(report.chipId),
    signingKey: chain.kind,
    reportedTcb,
    currentTcb: decodeSnpTcb(report.currentTcb, product),
    committedTcb: decodeSnpTcb(report.committedTcb, product),
    launchTcb: decodeSnpTcb(report.launchTcb, product),
    guestSvn: report.guestSvn,
    familyId: toHex(report.familyId),
    imageId: toHex(report.imageId),
    idKeyDigest: toHex(report.idKeyDigest),
    authorKeyDigest: toHex(report.authorKeyDigest),
    reportId: toHex(report.reportId),
  };
}
