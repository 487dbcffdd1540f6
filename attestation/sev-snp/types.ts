/**
 * Types of the SEV-SNP verifier: the parsed report (`SnpEvidence`), trust anchors and options.
 *
 * Spec: AMD SEV Secure Nested Paging Firmware ABI Specification (pub. 56860), §7.3 "Attestation",
 * table "ATTESTATION_REPORT Structure" (report versions 2, 3 and 5) and table "TCB_VERSION Structure";
 * AMD Versioned Chip Endorsement Key (VCEK) Certificate and KDS Interface Specification (pub. 57230)
 * for the certificate chain and its X.509 extensions.
 */
import type { SnpClaims, TcbVersion } from '../claims.js';

/** The AMD EPYC generations whose roots this library knows. The TCB layout differs on Turin. */
export type SnpProduct = SnpClaims['product'];

/** Every product, in the order AMD released them. */
export const SNP_PRODUCTS: readonly SnpProduct[] = ['Milan', 'Genoa', 'Turin'];

/** Which endorsement key signed a report: SIGNER_INFO.SIGNING_KEY 0 (VCEK) or 1 (VLEK). */
export type SnpSigningKey = SnpClaims['signingKey'];

/** Report format versions this library parses. Version 4 and above 5 are rejected (fail closed). */
export type SnpReportVersion = 2 | 3 | 5;

/** SIGNER_INFO (offset 0x48), decoded. */
export interface SnpSignerInfo {
  readonly signingKey: SnpSigningKey;
  /** MASK_CHIP_KEY: the host asked the firmware to zero CHIP_ID. */
  readonly maskChipKey: boolean;
  /** AUTHOR_KEY_EN: the guest was launched with an ID block carrying an author key. */
  readonly authorKeyEn: boolean;
}

/** A firmware version triple (CURRENT_* / COMMITTED_*). */
export interface SnpFirmwareVersion {
  readonly major: number;
  readonly minor: number;
  readonly build: number;
}

/** CPUID_FAM_ID / CPUID_MOD_ID / CPUID_STEP (report version 3 and later). Family and model are combined values. */
export interface SnpCpuid {
  readonly family: number;
  readonly model: number;
  readonly stepping: number;
}

/**
 * A structurally valid SEV-SNP attestation report (output of `parseSnpReport`). Nothing here is
 * authenticated yet: `verifySnpReport` checks the signature over `bytes` and re-parses them.
 *
 * TCB values are kept raw (the 64-bit TCB_VERSION, little-endian in the report) because their byte
 * layout depends on the product; `decodeSnpTcb(raw, product)` splits them.
 */
export interface SnpEvidence {
  readonly type: 'sev-snp';
  /** A private copy of the 1184 report bytes. */
  readonly bytes: Uint8Array;
  readonly version: SnpReportVersion;
  readonly guestSvn: number;
  /** Guest policy (64 bits). Bit 19 is DEBUG. */
  readonly policy: bigint;
  readonly familyId: Uint8Array;
  readonly imageId: Uint8Array;
  readonly vmpl: number;
  /** Always 1 (ECDSA P-384 with SHA-384) after parsing. */
  readonly signatureAlgo: number;
  readonly currentTcb: bigint;
  readonly platformInfo: bigint;
  readonly signerInfo: SnpSignerInfo;
  readonly reportData: Uint8Array;
  readonly measurement: Uint8Array;
  readonly hostData: Uint8Array;
  readonly idKeyDigest: Uint8Array;
  readonly authorKeyDigest: Uint8Array;
  readonly reportId: Uint8Array;
  readonly reportIdMa: Uint8Array;
  readonly reportedTcb: bigint;
  /** Null for version 2 reports, which have no CPUID fields. */
  readonly cpuid: SnpCpuid | null;
  /** 64 bytes; on Turin only the first 8 are meaningful (the rest must be zero). */
  readonly chipId: Uint8Array;
  readonly committedTcb: bigint;
  readonly currentVersion: SnpFirmwareVersion;
  readonly committedVersion: SnpFirmwareVersion;
  readonly launchTcb: bigint;
  /** Version 5 only; null before. */
  readonly launchMitVector: bigint | null;
  readonly currentMitVector: bigint | null;
  /** ECDSA r and s as in the report: 72 bytes each, little-endian, zero-extended. */
  readonly signatureR: Uint8Array;
  readonly signatureS: Uint8Array;
  /** The product named by the CPUID fields (version 3+), or null (version 2, or an unknown CPU). */
  readonly product: SnpProduct | null;
}

/** A certificate as PEM text or DER bytes (a Uint8Array holding PEM text is accepted too). */
export type CertificateInput = string | Uint8Array;

/**
 * One trusted AMD root (ARK) for one product, with the intermediates it endorses.
 * The ARK is pinned by the SHA-256 of its DER: only an ARK listed here can end a chain.
 */
export interface SnpTrustAnchor {
  readonly product: SnpProduct;
  /** The self-signed AMD Root Key certificate. */
  readonly ark: CertificateInput;
  /** The AMD SEV Signing Key (issues VCEKs). May also be supplied per call in `intermediates`. */
  readonly ask?: CertificateInput;
  /** The AMD SEV VLEK Signing Key (issues VLEKs). May also be supplied per call in `intermediates`. */
  readonly asvk?: CertificateInput;
  /** True for a simulated root: the claims then say `simulated: true`. Never set for AMD roots. */
  readonly simulated?: boolean;
}

/** The VEK certificate's AMD extensions (KDS spec, "VCEK certificate extensions"). */
export interface SnpVekExtensions {
  /** productName (1.3.6.1.4.1.3704.1.2), e.g. "Milan-B0", "Genoa", "Turin". */
  readonly productName: string | null;
  /** TCB security patch levels: blSPL .3.1, teeSPL .3.2, snpSPL .3.3, ucodeSPL .3.8, fmcSPL .3.9 (Turin). */
  readonly tcb: Partial<Record<keyof TcbVersion, number>>;
  /** hwID (1.3.6.1.4.1.3704.1.4): 64 bytes (Milan, Genoa) or 8 bytes (Turin); VCEK only. */
  readonly hwId: Uint8Array | null;
}
