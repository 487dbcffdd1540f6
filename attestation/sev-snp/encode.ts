/**
 * `encodeSnpReport`: the inverse of `parseSnpReport`, writing the ABI layout (AMD pub. 56860 §7.3,
 * table "ATTESTATION_REPORT Structure"; see layout.ts). Reserved bytes are written as zero.
 *
 * Used by the simulated attestor (which then signs bytes 0x000..0x29F) and by property tests
 * (parse(encode(x)) = x). It does not sign: R and S are copied from the fields.
 */
import { AttestationError } from '../errors.js';
import { SNP_OFFSETS, SNP_REPORT_SIZE, SNP_SIZES } from './layout.js';
import type { SnpEvidence } from './types.js';

/** Everything `encodeSnpReport` writes: the evidence minus what parsing derives. */
export type SnpReportFields = Omit<SnpEvidence, 'type' | 'bytes' | 'product'>;

function u8(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xff) {
    throw new AttestationError('EVIDENCE_FIELD_INVALID', `${name} ${value} does not fit in a byte`);
  }
  return value;
}

function u32(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    throw new AttestationError('EVIDENCE_FIELD_INVALID', `${name} ${value} does not fit in 32 bits`);
  }
  return value;
}

function u64(value: bigint, name: string): bigint {
  if (value < 0n || value > 0xffff_ffff_ffff_ffffn) {
    throw new AttestationError('EVIDENCE_FIELD_INVALID', `${name} ${value} does not fit in 64 bits`);
  }
  return value;
}

/**
 * Serialises report fields into the 1184-byte ABI layout.
 * @throws AttestationError EVIDENCE_FIELD_INVALID when a field has the wrong length or range, or the
 *   fields contradict the version (CPUID fields before version 3, mitigation vectors before version 5).
 */
export function encodeSnpReport(fields: SnpReportFields): Uint8Array {
  const out = new Uint8Array(SNP_REPORT_SIZE);
  const view = new DataView(out.buffer);
  const bytes = (offset: number, value: Uint8Array, length: number, name: string): void => {
    if (value.length !== length) {
      throw new AttestationError(
        'EVIDENCE_FIELD_INVALID',
        `${name} must be ${length} bytes, got ${value.length}`,
      );
    }
    out.set(value, offset);
  };
  const v = fields.version;
  view.setUint32(SNP_OFFSETS.version, u32(v, 'version'), true);
  view.setUint32(SNP_OFFSETS.guestSvn, u32(fields.guestSvn, 'guestSvn'), true);
  view.setBigUint64(SNP_OFFSETS.policy, u64(fields.policy, 'policy'), true);
  bytes(SNP_OFFSETS.familyId, fields.familyId, SNP_SIZES.familyId, 'familyId');
  bytes(SNP_OFFSETS.imageId, fields.imageId, SNP_SIZES.imageId, 'imageId');
  view.setUint32(SNP_OFFSETS.vmpl, u32(fields.vmpl, 'vmpl'), true);
  view.setUint32(SNP_OFFSETS.signatureAlgo, u32(fields.signatureAlgo, 'signatureAlgo'), true);
  view.setBigUint64(SNP_OFFSETS.currentTcb, u64(fields.currentTcb, 'currentTcb'), true);
  view.setBigUint64(SNP_OFFSETS.platformInfo, u64(fields.platformInfo, 'platformInfo'), true);
  const s = fields.signerInfo;
  const signerInfo =
    (s.signingKey === 'vlek' ? 1 << 2 : 0) | (s.maskChipKey ? 0b10 : 0) | (s.authorKeyEn ? 1 : 0);
  view.setUint32(SNP_OFFSETS.signerInfo, signerInfo, true);
  bytes(SNP_OFFSETS.reportData, fields.reportData, SNP_SIZES.reportData, 'reportData');
  bytes(SNP_OFFSETS.measurement, fields.measurement, SNP_SIZES.measurement, 'measurement');
  bytes(SNP_OFFSETS.hostData, fields.hostData, SNP_SIZES.hostData, 'hostData');
  bytes(SNP_OFFSETS.idKeyDigest, fields.idKeyDigest, SNP_SIZES.idKeyDigest, 'idKeyDigest');
  bytes(SNP_OFFSETS.authorKeyDigest, fields.authorKeyDigest, SNP_SIZES.authorKeyDigest, 'authorKeyDigest');
  bytes(SNP_OFFSETS.reportId, fields.reportId, SNP_SIZES.reportId, 'reportId');
  bytes(SNP_OFFSETS.reportIdMa, fields.reportIdMa, SNP_SIZES.reportIdMa, 'reportIdMa');
  view.setBigUint64(SNP_OFFSETS.reportedTcb, u64(fields.reportedTcb, 'reportedTcb'), true);
  if ((fields.cpuid !== null) !== v >= 3) {
    throw new AttestationError(
      'EVIDENCE_FIELD_INVALID',
      'CPUID fields exist exactly in report versions 3 and later',
    );
  }
  if (fields.cpuid !== null) {
    out[SNP_OFFSETS.cpuidFamily] = u8(fields.cpuid.family, 'cpuid.family');
    out[SNP_OFFSETS.cpuidModel] = u8(fields.cpuid.model, 'cpuid.model');
    out[SNP_OFFSETS.cpuidStepping] = u8(fields.cpuid.stepping, 'cpuid.stepping');
  }
  bytes(SNP_OFFSETS.chipId, fields.chipId, SNP_SIZES.chipId, 'chipId');
  view.setBigUint64(SNP_OFFSETS.committedTcb, u64(fields.committedTcb, 'committedTcb'), true);
  out[SNP_OFFSETS.currentBuild] = u8(fields.currentVersion.build, 'currentVersion.build');
  out[SNP_OFFSETS.currentMinor] = u8(fields.currentVersion.minor, 'currentVersion.minor');
  out[SNP_OFFSETS.currentMajor] = u8(fields.currentVersion.major, 'currentVersion.major');
  out[SNP_OFFSETS.committedBuild] = u8(fields.committedVersion.build, 'committedVersion.build');
  out[SNP_OFFSETS.committedMinor] = u8(fields.committedVersion.minor, 'committedVersion.minor');
  out[SNP_OFFSETS.committedMajor] = u8(fields.committedVersion.major, 'committedVersion.major');
  view.setBigUint64(SNP_OFFSETS.launchTcb, u64(fields.launchTcb, 'launchTcb'), true);
  const hasMit = fields.launchMitVector !== null || fields.currentMitVector !== null;
  if (
    hasMit !== v >= 5 ||
    (v >= 5 && (fields.launchMitVector === null || fields.currentMitVector === null))
  ) {
    throw new AttestationError(
      'EVIDENCE_FIELD_INVALID',
      'mitigation vectors exist exactly in report version 5',
    );
  }
  if (fields.launchMitVector !== null && fields.currentMitVector !== null) {
    view.setBigUint64(SNP_OFFSETS.launchMitVector, u64(fields.launchMitVector, 'launchMitVector'), true);
    view.setBigUint64(SNP_OFFSETS.currentMitVector, u64(fields.currentMitVector, 'currentMitVector'), true);
  }
  bytes(SNP_OFFSETS.signatureR, fields.signatureR, 72, 'signatureR');
  bytes(SNP_OFFSETS.signatureS, fields.signatureS, 72, 'signatureS');
  return out;
}
