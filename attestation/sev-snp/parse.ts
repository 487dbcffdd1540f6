/**
 * `parseSnpReport`: structure-only parsing of an SEV-SNP attestation report (style §2, stage 1).
 *
 * Spec: SEV-SNP Firmware ABI (AMD pub. 56860) §7.3, table "ATTESTATION_REPORT Structure", versions 2, 3
 * and 5 (see layout.ts). Checks: exact size (1184 bytes), supported version, SIGNATURE_ALGO = 1 (ECDSA
 * P-384 / SHA-384), every reserved range zero (including the unsigned bytes after R and S, and SIGNER_INFO
 * bits 31:5), SIGNING_KEY 0 (VCEK) or 1 (VLEK). When the CPUID fields name a product, that product's
 * reserved bytes (inside TCB_VERSION; Turin's CHIP_ID tail) are checked as well; for version 2 reports
 * `verifySnpReport` checks them once the certificate chain has named the product.
 *
 * Nothing is authenticated here. Not checked: PLATFORM_INFO and POLICY bits (new bits keep being
 * defined, and both are covered by the signature); the VMPL range is checked by `verifySnpReport`.
 */
import { LIMITS } from '../../shared/limits.js';
import { AttestationError } from '../errors.js';
import {
  firstNonZero,
  SNP_OFFSETS,
  SNP_REPORT_SIZE,
  SNP_SIG_ALGO_ECDSA_P384_SHA384,
  SNP_SIGNER_INFO_RESERVED_MASK,
  SNP_SIZES,
  SNP_SUPPORTED_VERSIONS,
  snpProductFromCpuid,
  snpProductReservedRanges,
  snpReservedRanges,
} from './layout.js';
import type { SnpEvidence, SnpProduct, SnpReportVersion, SnpSigningKey } from './types.js';

const hex = (n: number): string => `0x${n.toString(16).padStart(3, '0')}`;

/** A hint for the common mistake of passing text instead of the raw report. */
function encodingHint(bytes: Uint8Array): string {
  const sample = bytes.subarray(0, Math.min(bytes.length, 256));
  const isAscii = (re: RegExp): boolean => sample.every((b) => re.test(String.fromCharCode(b)));
  if (sample.length > 0 && isAscii(/[0-9a-fA-F\s]/)) return ' (this looks hex-encoded: pass the raw bytes)';
  if (sample.length > 0 && isAscii(/[A-Za-z0-9+/=\s_-]/))
    return ' (this looks base64-encoded: pass the raw bytes)';
  return '';
}

/**
 * Throws EVIDENCE_RESERVED_NONZERO naming the first non-zero byte of any range.
 * @internal shared with verify.ts for the product-dependent ranges.
 */
export function assertReservedZero(
  bytes: Uint8Array,
  ranges: readonly { start: number; end: number; name: string }[],
): void {
  for (const range of ranges) {
    const at = firstNonZero(bytes, range.start, range.end);
    /* Precondition: every reserved byte of the report is zero. */
    if (at !== -1) {
      throw new AttestationError(
        'EVIDENCE_RESERVED_NONZERO',
        `SEV-SNP report: reserved byte at offset ${hex(at)} is 0x${bytes[at]!.toString(16).padStart(2, '0')} ` +
          `(${range.name}, ${hex(range.start)}..${hex(range.end - 1)} must be zero)`,
        { details: { offset: at, rangeStart: range.start, rangeEnd: range.end } },
      );
    }
  }
}

/**
 * Parses the 1184-byte SEV-SNP attestation report. Structure only: no signature or certificate check.
 *
 * @param bytes the raw report (not hex or base64)
 * @returns the decoded fields, over a private copy of the bytes
 * @throws AttestationError with code
 *   EVIDENCE_MALFORMED (not a byte array), EVIDENCE_TOO_LARGE (over LIMITS.maxEvidenceBytes),
 *   EVIDENCE_TRUNCATED (under 1184 bytes), EVIDENCE_TRAILING_BYTES (over 1184 bytes),
 *   EVIDENCE_VERSION_UNSUPPORTED (version not 2, 3 or 5), EVIDENCE_ALGORITHM_UNSUPPORTED (SIGNATURE_ALGO
 *   not 1), EVIDENCE_RESERVED_NONZERO (a reserved byte or SIGNER_INFO bit set; the message names the
 *   offset), EVIDENCE_FIELD_INVALID (SIGNING_KEY not 0/VCEK or 1/VLEK).
 */
export function parseSnpReport(bytes: Uint8Array): SnpEvidence {
  /* Precondition: the input is a byte array. */
  if (!(bytes instanceof Uint8Array)) {
    throw new AttestationError('EVIDENCE_MALFORMED', 'SEV-SNP report must be a Uint8Array of raw bytes');
  }
  /* Precondition: the input is bounded before anything is decoded. */
  if (bytes.length > LIMITS.maxEvidenceBytes) {
    throw new AttestationError(
      'EVIDENCE_TOO_LARGE',
      `SEV-SNP report is ${bytes.length} bytes, over the ${LIMITS.maxEvidenceBytes}-byte evidence limit` +
        encodingHint(bytes),
      { details: { length: bytes.length, limit: LIMITS.maxEvidenceBytes } },
    );
  }
  /* Precondition: the report is exactly 1184 bytes (no shorter). */
  if (bytes.length < SNP_REPORT_SIZE) {
    throw new AttestationError(
      'EVIDENCE_TRUNCATED',
      `SEV-SNP report is ${bytes.length} bytes, expected exactly ${SNP_REPORT_SIZE}${encodingHint(bytes)}`,
      { details: { length: bytes.length, expected: SNP_REPORT_SIZE } },
    );
  }
  /* Precondition: the report is exactly 1184 bytes (no longer). */
  if (bytes.length > SNP_REPORT_SIZE) {
    throw new AttestationError(
      'EVIDENCE_TRAILING_BYTES',
      `SEV-SNP report is ${bytes.length} bytes: ${bytes.length - SNP_REPORT_SIZE} byte(s) follow the ` +
        `${SNP_REPORT_SIZE}-byte report${encodingHint(bytes)}`,
      { details: { length: bytes.length, expected: SNP_REPORT_SIZE } },
    );
  }

  // A plain Uint8Array copy: for a Buffer, `bytes.slice()` is a view of the caller's memory, not a copy.
  const b = new Uint8Array(bytes);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const u32 = (off: number): number => view.getUint32(off, true);
  const u64 = (off: number): bigint => view.getBigUint64(off, true);
  const field = (off: number, len: number): Uint8Array => b.slice(off, off + len);

  const rawVersion = u32(SNP_OFFSETS.version);
  /* Precondition: the report version is one this parser knows (2, 3 or 5). */
  if (!(SNP_SUPPORTED_VERSIONS as readonly number[]).includes(rawVersion)) {
    throw new AttestationError(
      'EVIDENCE_VERSION_UNSUPPORTED',
      `SEV-SNP report version ${rawVersion} is not supported (supported: ${SNP_SUPPORTED_VERSIONS.join(', ')})`,
      { details: { version: rawVersion } },
    );
  }
  const version = rawVersion as SnpReportVersion;

  const signatureAlgo = u32(SNP_OFFSETS.signatureAlgo);
  /* Precondition: SIGNATURE_ALGO is 1, ECDSA P-384 with SHA-384. */
  if (signatureAlgo !== SNP_SIG_ALGO_ECDSA_P384_SHA384) {
    throw new AttestationError(
      'EVIDENCE_ALGORITHM_UNSUPPORTED',
      `SEV-SNP report SIGNATURE_ALGO is ${signatureAlgo}; only 1 (ECDSA P-384 with SHA-384) is accepted`,
      { details: { signatureAlgo } },
    );
  }

  assertReservedZero(b, snpReservedRanges(version));

  const signerInfo = u32(SNP_OFFSETS.signerInfo);
  /* Precondition: SIGNER_INFO bits 31:5 are reserved and zero. */
  if ((signerInfo & SNP_SIGNER_INFO_RESERVED_MASK) >>> 0 !== 0) {
    throw new AttestationError(
      'EVIDENCE_RESERVED_NONZERO',
      `SEV-SNP report: reserved bits 31:5 of SIGNER_INFO at offset ${hex(SNP_OFFSETS.signerInfo)} are not zero ` +
        `(0x${signerInfo.toString(16)})`,
      { details: { offset: SNP_OFFSETS.signerInfo, signerInfo } },
    );
  }
  const signingKeyBits = (signerInfo >>> 2) & 0b111;
  /* Precondition: SIGNING_KEY is 0 (VCEK) or 1 (VLEK); 2..6 are reserved and 7 means "not signed". */
  if (signingKeyBits > 1) {
    throw new AttestationError(
      'EVIDENCE_FIELD_INVALID',
      `SEV-SNP report SIGNING_KEY is ${signingKeyBits}; only 0 (VCEK) and 1 (VLEK) are accepted` +
        (signingKeyBits === 7 ? ' (7: the report is not signed)' : ''),
      { details: { field: 'SIGNING_KEY', value: signingKeyBits } },
    );
  }
  const signingKey: SnpSigningKey = signingKeyBits === 0 ? 'vcek' : 'vlek';

  const cpuid =
    version >= 3
      ? {
          family: b[SNP_OFFSETS.cpuidFamily]!,
          model: b[SNP_OFFSETS.cpuidModel]!,
          stepping: b[SNP_OFFSETS.cpuidStepping]!,
        }
      : null;
  const product: SnpProduct | null = cpuid === null ? null : snpProductFromCpuid(cpuid);
  if (product !== null) assertReservedZero(b, snpProductReservedRanges(product));

  return {
    type: 'sev-snp',
    bytes: b,
    version,
    guestSvn: u32(SNP_OFFSETS.guestSvn),
    policy: u64(SNP_OFFSETS.policy),
    familyId: field(SNP_OFFSETS.familyId, SNP_SIZES.familyId),
    imageId: field(SNP_OFFSETS.imageId, SNP_SIZES.imageId),
    vmpl: u32(SNP_OFFSETS.vmpl),
    signatureAlgo,
    currentTcb: u64(SNP_OFFSETS.currentTcb),
    platformInfo: u64(SNP_OFFSETS.platformInfo),
    signerInfo: { signingKey, maskChipKey: (signerInfo & 0b10) !== 0, authorKeyEn: (signerInfo & 0b1) !== 0 },
    reportData: field(SNP_OFFSETS.reportData, SNP_SIZES.reportData),
    measurement: field(SNP_OFFSETS.measurement, SNP_SIZES.measurement),
    hostData: field(SNP_OFFSETS.hostData, SNP_SIZES.hostData),
    idKeyDigest: field(SNP_OFFSETS.idKeyDigest, SNP_SIZES.idKeyDigest),
    authorKeyDigest: field(SNP_OFFSETS.authorKeyDigest, SNP_SIZES.authorKeyDigest),
    reportId: field(SNP_OFFSETS.reportId, SNP_SIZES.reportId),
    reportIdMa: field(SNP_OFFSETS.reportIdMa, SNP_SIZES.reportIdMa),
    reportedTcb: u64(SNP_OFFSETS.reportedTcb),
    cpuid,
    chipId: field(SNP_OFFSETS.chipId, SNP_SIZES.chipId),
    committedTcb: u64(SNP_OFFSETS.committedTcb),
    currentVersion: {
      major: b[SNP_OFFSETS.currentMajor]!,
      minor: b[SNP_OFFSETS.currentMinor]!,
      build: b[SNP_OFFSETS.currentBuild]!,
    },
    committedVersion: {
      major: b[SNP_OFFSETS.committedMajor]!,
      minor: b[SNP_OFFSETS.committedMinor]!,
      build: b[SNP_OFFSETS.committedBuild]!,
    },
    launchTcb: u64(SNP_OFFSETS.launchTcb),
    launchMitVector: version >= 5 ? u64(SNP_OFFSETS.launchMitVector) : null,
    currentMitVector: version >= 5 ? u64(SNP_OFFSETS.currentMitVector) : null,
    signatureR: field(SNP_OFFSETS.signatureR, 72),
    signatureS: field(SNP_OFFSETS.signatureS, 72),
    product,
  };
}
