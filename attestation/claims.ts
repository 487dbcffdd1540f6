/**
 * Normalised claims (design §2, §5): what a verifier returns after signatures, chain and validity
 * checked out. Key policies state conditions once over these, whatever the TEE.
 *
 * All byte values are lowercase hex. Field names are the CLI contract's (camelCase) and never renamed.
 */

/** TEE types this library verifies. */
export type TeeType = 'nitro' | 'sev-snp';

/** An SEV-SNP TCB version, component by component. `fmc` exists on Turin only. */
export interface TcbVersion {
  readonly bootloader: number;
  readonly tee: number;
  readonly snp: number;
  readonly microcode: number;
  readonly fmc?: number;
}

/** Fields every TEE's claims carry. */
export interface CommonClaims {
  readonly type: TeeType;
  /** True for a debug enclave/guest (Nitro: PCR0–PCR2 all zero; SNP: policy bit 19). */
  readonly debug: boolean;
  /** Signed creation time (Nitro `timestamp`), ISO-8601; null when the evidence has none (SNP). */
  readonly timestamp: string | null;
  /** The launch measurement: Nitro PCR0, SNP MEASUREMENT. */
  readonly measurement: string;
  /** SHA-256 (hex) of the DER of the root certificate that anchored the chain. */
  readonly rootFingerprint: string;
  /** True when the anchoring root is a simulated root (never trusted unless configured). */
  readonly simulated: boolean;
}

/** Claims of an AWS Nitro attestation document. */
export interface NitroClaims extends CommonClaims {
  readonly type: 'nitro';
  readonly moduleId: string;
  /** PCR index (decimal string) → hex value. */
  readonly pcrs: Readonly<Record<string, string>>;
  readonly userData: string | null;
  readonly nonce: string | null;
  readonly publicKey: string | null;
}

/** Claims of an AMD SEV-SNP attestation report. */
export interface SnpClaims extends CommonClaims {
  readonly type: 'sev-snp';
  readonly timestamp: null;
  /** Report format version (2, 3 or 5). */
  readonly version: number;
  readonly product: 'Milan' | 'Genoa' | 'Turin';
  readonly reportData: string;
  readonly hostData: string;
  readonly vmpl: number;
  /** Guest policy as a 0x-prefixed hex string of the 64-bit value. */
  readonly policy: string;
  readonly chipId: string;
  readonly signingKey: 'vcek' | 'vlek';
  readonly reportedTcb: TcbVersion;
  readonly currentTcb: TcbVersion;
  readonly committedTcb: TcbVersion;
  readonly launchTcb: TcbVersion;
  readonly guestSvn: number;
  readonly familyId: string;
  readonly imageId: string;
  readonly idKeyDigest: string;
  readonly authorKeyDigest: string;
  readonly reportId: string;
}

/** Claims of any supported TEE; narrow on `type`. */
export type Claims = NitroClaims | SnpClaims;
