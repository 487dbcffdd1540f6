/**
 * The byte layout of an SEV-SNP attestation report and of TCB_VERSION.
 *
 * Spec: SEV-SNP Firmware ABI (AMD pub. 56860) §7.3, table "ATTESTATION_REPORT Structure":
 * - version 2: the original layout (fields up to LAUNCH_TCB at 0x1F0, then reserved to 0x2A0);
 * - version 3 adds CPUID_FAM_ID / CPUID_MOD_ID / CPUID_STEP at 0x188..0x18A;
 * - version 5 adds LAUNCH_MIT_VECTOR (0x1F8) and CURRENT_MIT_VECTOR (0x200).
 * The signature (0x2A0..0x49F) covers bytes 0x000..0x29F; for ECDSA P-384 it holds R (72 bytes) and
 * S (72 bytes), both little-endian, and the remaining 368 bytes are reserved (zero).
 *
 * TCB_VERSION (table "TCB_VERSION Structure"), one byte per component:
 * - Milan and Genoa: [0] BOOT_LOADER, [1] TEE, [2..5] reserved, [6] SNP, [7] MICROCODE;
 * - Turin: [0] FMC, [1] BOOT_LOADER, [2] TEE, [3] SNP, [4..6] reserved, [7] MICROCODE.
 * Turin's CHIP_ID is 8 bytes; the other 56 bytes of the field are zero.
 *
 * Product from CPUID: family 19h models 00h–0Fh are Milan, 10h–1Fh Genoa and A0h–AFh (Bergamo, Siena)
 * are endorsed by the Genoa keys; family 1Ah models 00h–1Fh are Turin (and Turin dense).
 */
import type { TcbVersion } from '../claims.js';
import { AttestationError } from '../errors.js';
import type { SnpCpuid, SnpProduct, SnpReportVersion } from './types.js';

/** Size of every report, in bytes (0x4A0). */
export const SNP_REPORT_SIZE = 0x4a0;
/** The signature covers bytes [0, SNP_SIGNED_LENGTH). */
export const SNP_SIGNED_LENGTH = 0x2a0;
/** SIGNATURE_ALGO value for ECDSA P-384 with SHA-384, the only one defined. */
export const SNP_SIG_ALGO_ECDSA_P384_SHA384 = 1;
/** Report versions this library accepts. */
export const SNP_SUPPORTED_VERSIONS: readonly SnpReportVersion[] = [2, 3, 5];
/** Length of each ECDSA component in the report (zero-extended little-endian). */
export const SNP_ECDSA_COMPONENT_BYTES = 72;
/** Guest policy bit 19: DEBUG. */
export const SNP_POLICY_DEBUG_BIT = 19n;

/** Field offsets (bytes) in the report. */
export const SNP_OFFSETS = {
  version: 0x000,
  guestSvn: 0x004,
  policy: 0x008,
  familyId: 0x010,
  imageId: 0x020,
  vmpl: 0x030,
  signatureAlgo: 0x034,
  currentTcb: 0x038,
  platformInfo: 0x040,
  signerInfo: 0x048,
  reportData: 0x050,
  measurement: 0x090,
  hostData: 0x0c0,
  idKeyDigest: 0x0e0,
  authorKeyDigest: 0x110,
  reportId: 0x140,
  reportIdMa: 0x160,
  reportedTcb: 0x180,
  cpuidFamily: 0x188,
  cpuidModel: 0x189,
  cpuidStepping: 0x18a,
  chipId: 0x1a0,
  committedTcb: 0x1e0,
  currentBuild: 0x1e8,
  currentMinor: 0x1e9,
  currentMajor: 0x1ea,
  committedBuild: 0x1ec,
  committedMinor: 0x1ed,
  committedMajor: 0x1ee,
  launchTcb: 0x1f0,
  launchMitVector: 0x1f8,
  currentMitVector: 0x200,
  signatureR: 0x2a0,
  signatureS: 0x2e8,
} as const;

/** Field sizes (bytes) of the byte-string fields. */
export const SNP_SIZES = {
  familyId: 16,
  imageId: 16,
  reportData: 64,
  measurement: 48,
  hostData: 32,
  idKeyDigest: 48,
  authorKeyDigest: 48,
  reportId: 32,
  reportIdMa: 32,
  chipId: 64,
} as const;

/** A must-be-zero byte range [start, end) with a name for messages. */
export interface SnpReservedRange {
  readonly start: number;
  readonly end: number;
  readonly name: string;
}

/** SIGNER_INFO bits 31:5 are reserved. */
export const SNP_SIGNER_INFO_RESERVED_MASK = 0xffff_ffe0;

/**
 * The reserved byte ranges of a report version, independent of the product.
 * Includes the unsigned bytes after the ECDSA R and S components (0x330..0x49F).
 */
export function snpReservedRanges(version: SnpReportVersion): readonly SnpReservedRange[] {
  const ranges: SnpReservedRange[] = [{ start: 0x04c, end: 0x050, name: 'reserved after SIGNER_INFO' }];
  ranges.push(
    version >= 3
      ? { start: 0x18b, end: 0x1a0, name: 'reserved after CPUID_STEP' }
      : { start: 0x188, end: 0x1a0, name: 'reserved after REPORTED_TCB' },
  );
  ranges.push({ start: 0x1eb, end: 0x1ec, name: 'reserved after CURRENT_MAJOR' });
  ranges.push({ start: 0x1ef, end: 0x1f0, name: 'reserved after COMMITTED_MAJOR' });
  ranges.push(
    version >= 5
      ? { start: 0x208, end: SNP_SIGNED_LENGTH, name: 'reserved after CURRENT_MIT_VECTOR' }
      : { start: 0x1f8, end: SNP_SIGNED_LENGTH, name: 'reserved after LAUNCH_TCB' },
  );
  ranges.push({
    start: SNP_OFFSETS.signatureR + 2 * SNP_ECDSA_COMPONENT_BYTES,
    end: SNP_REPORT_SIZE,
    name: 'reserved after the signature R and S',
  });
  return ranges;
}

const TCB_FIELDS = [
  ['currentTcb', SNP_OFFSETS.currentTcb],
  ['reportedTcb', SNP_OFFSETS.reportedTcb],
  ['committedTcb', SNP_OFFSETS.committedTcb],
  ['launchTcb', SNP_OFFSETS.launchTcb],
] as const;

/** Byte positions of each TCB component inside TCB_VERSION, per product. */
interface TcbLayout {
  readonly fmc: number | null;
  readonly bootloader: number;
  readonly tee: number;
  readonly snp: number;
  readonly microcode: number;
  readonly reserved: readonly [number, number];
}

const MILAN_GENOA_TCB: TcbLayout = {
  fmc: null,
  bootloader: 0,
  tee: 1,
  snp: 6,
  microcode: 7,
  reserved: [2, 6],
};
const TURIN_TCB: TcbLayout = { fmc: 0, bootloader: 1, tee: 2, snp: 3, microcode: 7, reserved: [4, 7] };

function tcbLayout(product: SnpProduct): TcbLayout {
  return product === 'Turin' ? TURIN_TCB : MILAN_GENOA_TCB;
}

/** Length of the meaningful prefix of CHIP_ID (and of the VCEK hwID) for a product. */
export function snpChipIdLength(product: SnpProduct): number {
  return product === 'Turin' ? 8 : 64;
}

/**
 * Reserved ranges that depend on the product: the reserved bytes inside each of the four TCB_VERSION
 * fields, and on Turin the 56 bytes of CHIP_ID after its 8-byte id.
 */
export function snpProductReservedRanges(product: SnpProduct): readonly SnpReservedRange[] {
  const layout = tcbLayout(product);
  const ranges: SnpReservedRange[] = TCB_FIELDS.map(([name, offset]) => ({
    start: offset + layout.reserved[0],
    end: offset + layout.reserved[1],
    name: `reserved bytes of ${name} (${product} layout)`,
  }));
  if (product === 'Turin') {
    ranges.push({
      start: SNP_OFFSETS.chipId + 8,
      end: SNP_OFFSETS.chipId + 64,
      name: 'CHIP_ID after the 8-byte Turin id',
    });
  }
  return ranges.sort((a, b) => a.start - b.start);
}

/** Index of the first non-zero byte in [start, end), or -1. */
export function firstNonZero(bytes: Uint8Array, start: number, end: number): number {
  for (let i = start; i < end; i++) {
    if (bytes[i] !== 0) return i;
  }
  return -1;
}

function tcbByte(raw: bigint, index: number): number {
  return Number((raw >> BigInt(8 * index)) & 0xffn);
}

/** Splits a raw TCB_VERSION into components using the product's layout (Turin has `fmc`). */
export function decodeSnpTcb(raw: bigint, product: SnpProduct): TcbVersion {
  const l = tcbLayout(product);
  const base = {
    bootloader: tcbByte(raw, l.bootloader),
    tee: tcbByte(raw, l.tee),
    snp: tcbByte(raw, l.snp),
    microcode: tcbByte(raw, l.microcode),
  };
  return l.fmc === null ? base : { fmc: tcbByte(raw, l.fmc), ...base };
}

/**
 * Builds a raw TCB_VERSION from components (reserved bytes zero). Each component must be 0..255;
 * `fmc` is required on Turin and ignored elsewhere.
 * @throws AttestationError EVIDENCE_FIELD_INVALID for a component outside 0..255.
 */
export function encodeSnpTcb(tcb: TcbVersion, product: SnpProduct): bigint {
  const l = tcbLayout(product);
  const put = (value: number, index: number): bigint => {
    if (!Number.isInteger(value) || value < 0 || value > 255) {
      throw new AttestationError('EVIDENCE_FIELD_INVALID', `TCB component ${value} is not a byte (0..255)`);
    }
    return BigInt(value) << BigInt(8 * index);
  };
  let raw = put(tcb.bootloader, l.bootloader) | put(tcb.tee, l.tee) | put(tcb.snp, l.snp);
  raw |= put(tcb.microcode, l.microcode);
  if (l.fmc !== null) raw |= put(tcb.fmc ?? 0, l.fmc);
  return raw;
}

/** The product a CPUID family/model belongs to, or null when it is not a known SEV-SNP part. */
export function snpProductFromCpuid(cpuid: SnpCpuid): SnpProduct | null {
  const { family, model } = cpuid;
  if (family === 0x19) {
    if (model <= 0x0f) return 'Milan';
    if ((model >= 0x10 && model <= 0x1f) || (model >= 0xa0 && model <= 0xaf)) return 'Genoa';
    return null;
  }
  if (family === 0x1a && model <= 0x1f) return 'Turin';
  return null;
}

/** A representative CPUID for each product (used by the simulator). */
export const SNP_PRODUCT_CPUID: Readonly<Record<SnpProduct, SnpCpuid>> = {
  Milan: { family: 0x19, model: 0x01, stepping: 0x01 },
  Genoa: { family: 0x19, model: 0x11, stepping: 0x01 },
  Turin: { family: 0x1a, model: 0x02, stepping: 0x01 },
};
