/**
 * Simulated AMD SEV-SNP attestor (design §2, style §14): real-layout 1184-byte reports signed with ECDSA
 * P-384 by a simulated VCEK (or VLEK), under a generated chain with AMD's shape and names:
 * ARK (RSA-4096, self-signed) → ASK (RSA-4096) → VCEK (ECDSA P-384, AMD extensions), and optionally
 * ARK → ASVK → VLEK. Every certificate is signed with RSASSA-PSS SHA-384, MGF1-SHA-384, salt 48, as AMD's.
 * The same `verifySnpReport` checks simulated and real reports; it accepts a simulated report only when the
 * simulated ARK is a trust anchor (`simulatedSnpTrustAnchor(ca)`).
 *
 * Specs: SEV-SNP Firmware ABI (AMD pub. 56860) §7.3 for the report; AMD KDS spec (pub. 57230) for the
 * certificates and extensions; RFC 4055 for RSASSA-PSS parameters. Certificates are built with the
 * simulators' shared helpers (certificates.ts: `@peculiar/asn1-x509`) and signed with `node:crypto`.
 *
 * One deliberate difference from AMD: simulated VEKs carry an authority key identifier (AMD's do not), so
 * a simulated chain checked against the AMD roots fails as CERT_ROOT_UNTRUSTED rather than as a broken
 * signature of a real ASK.
 *
 * The CA is a JSON-serialisable object of PEM strings (certificates and PKCS#8 keys): the CLI saves
 * `ark.pem`, `ask.pem`, `vcek.pem` from it. This module does no I/O. The keys are test keys: a simulated
 * root is never trusted unless configured.
 */
import {
  constants,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
} from 'node:crypto';
import { promisify } from 'node:util';
import { id_mgf1, id_RSASSA_PSS, id_sha384, RsaSaPssParams } from '@peculiar/asn1-rsa';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier, type Extension, KeyUsageFlags, type Name } from '@peculiar/asn1-x509';
import * as asn1js from 'asn1js';
import { ConfigError } from '../../shared/errors.js';
import type { TcbVersion } from '../claims.js';
import { AttestationError } from '../errors.js';
import {
  AMD_OIDS,
  encodeSnpReport,
  encodeSnpTcb,
  SNP_PRODUCT_CPUID,
  SNP_PRODUCTS,
  SNP_REPORT_SIZE,
  SNP_SIGNED_LENGTH,
  type SnpProduct,
  type SnpReportVersion,
  type SnpSigningKey,
  type SnpTrustAnchor,
  snpChipIdLength,
} from '../sev-snp/index.js';
import {
  authorityKeyIdentifierExtension,
  basicConstraintsExtension,
  extension,
  issueCertificate,
  keyUsageExtension,
  name,
  privateKeyPem,
  subjectKeyIdentifierExtension,
  toPem,
} from './certificates.js';

/** A simulated SEV-SNP CA: certificates and PKCS#8 private keys as PEM, plus the VCEK's chip id and TCB. */
export interface SimulatedSnpCa {
  readonly format: 'ekms-simulated-sev-snp-ca';
  readonly version: 1;
  readonly product: SnpProduct;
  readonly ark: string;
  readonly arkKey: string;
  readonly ask: string;
  readonly askKey: string;
  readonly vcek: string;
  readonly vcekKey: string;
  /** ASVK and VLEK exist when the CA was created with `{ vlek: true }`. */
  readonly asvk: string | null;
  readonly asvkKey: string | null;
  readonly vlek: string | null;
  readonly vlekKey: string | null;
  /** The VCEK hwID as a 64-byte CHIP_ID, hex (on Turin: 8 bytes of id, then zeros). */
  readonly chipId: string;
  /** The TCB certified by the VCEK (and VLEK). */
  readonly tcb: TcbVersion;
}

/** Options of `createSimulatedSnpCa`. */
export interface CreateSimulatedSnpCaOptions {
  /** Validity starts a day before `now`: ARK/ASK 25 years, VCEK 7 years, VLEK 1 year. */
  readonly now: Date;
  /** Default Milan. Turin uses the Turin TCB layout and an 8-byte chip id. */
  readonly product?: SnpProduct;
  /** Also create an ASVK and a VLEK (one more RSA-4096 key). */
  readonly vlek?: boolean;
  /** The VCEK's chip id (default random): 64 bytes, or 8 on Turin. Hex or bytes. */
  readonly chipId?: string | Uint8Array;
  /** The TCB the VCEK certifies (default a plausible one per product). */
  readonly tcb?: TcbVersion;
}

const DAY_MS = 86_400_000;
const YEAR_MS = 365 * DAY_MS;
const generateKeyPairAsync = promisify(generateKeyPair);

const DEFAULT_TCB: Readonly<Record<SnpProduct, TcbVersion>> = {
  Milan: { bootloader: 4, tee: 0, snp: 24, microcode: 219 },
  Genoa: { bootloader: 10, tee: 0, snp: 23, microcode: 84 },
  Turin: { fmc: 1, bootloader: 3, tee: 2, snp: 5, microcode: 97 },
};

const FIRMWARE_VERSION: Readonly<Record<SnpProduct, { major: number; minor: number; build: number }>> = {
  Milan: { major: 1, minor: 55, build: 24 },
  Genoa: { major: 1, minor: 55, build: 40 },
  Turin: { major: 1, minor: 58, build: 3 },
};

function invalidOption(message: string): ConfigError {
  return new ConfigError('CONFIG_INVALID', `simulated SEV-SNP: ${message}`);
}

/** Hex or bytes → exactly `length` bytes (shorter input is zero-padded on the right when `pad`). */
function bytesOption(value: string | Uint8Array, length: number, name: string, pad: boolean): Uint8Array {
  let bytes: Uint8Array;
  if (typeof value === 'string') {
    if (!/^([0-9a-fA-F]{2})*$/.test(value)) throw invalidOption(`${name} must be hex`);
    bytes = Buffer.from(value, 'hex');
  } else {
    bytes = value;
  }
  if (bytes.length > length || (!pad && bytes.length !== length)) {
    throw invalidOption(`${name} must be ${pad ? 'at most ' : ''}${length} bytes, got ${bytes.length}`);
  }
  const out = new Uint8Array(length);
  out.set(bytes);
  return out;
}

/** A hwID as given: 1..64 bytes (not forced to the product's length, so negative tests can use others). */
function hwIdOption(value: string | Uint8Array): Uint8Array {
  const bytes = bytesOption(value, 64, 'hwId', true).subarray(
    0,
    typeof value === 'string' ? value.length / 2 : value.length,
  );
  if (bytes.length === 0) throw invalidOption('hwId must not be empty');
  return bytes;
}

/** AMD's name layout: OU, C, L, ST, O, CN. */
function amdName(commonName: string): Name {
  return name([
    ['OU', 'Engineering'],
    ['C', 'US'],
    ['L', 'Santa Clara'],
    ['ST', 'CA'],
    ['O', 'Advanced Micro Devices'],
    ['CN', commonName],
  ]);
}

function rsaPssSha384(saltLength: number): AlgorithmIdentifier {
  const sha384 = new AlgorithmIdentifier({ algorithm: id_sha384, parameters: null });
  const params = new RsaSaPssParams({
    hashAlgorithm: sha384,
    maskGenAlgorithm: new AlgorithmIdentifier({
      algorithm: id_mgf1,
      parameters: AsnConvert.serialize(sha384),
    }),
    saltLength,
  });
  return new AlgorithmIdentifier({ algorithm: id_RSASSA_PSS, parameters: AsnConvert.serialize(params) });
}

interface CertParams {
  readonly issuer: string;
  readonly subject: string;
  readonly publicKey: KeyObject;
  readonly signingKey: KeyObject;
  /** The issuer's public key, for the authority key identifier (null: no AKI). */
  readonly issuerPublicKey: KeyObject | null;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly extensions: readonly Extension[];
  readonly saltLength?: number;
}

/** An AMD-style certificate (RSASSA-PSS SHA-384, 8-byte serial) as PEM. */
function issueAmdCertificate(p: CertParams): string {
  const saltLength = p.saltLength ?? 48;
  const extensions = [...p.extensions];
  if (p.issuerPublicKey !== null) extensions.push(authorityKeyIdentifierExtension(p.issuerPublicKey));
  const der = issueCertificate({
    subject: amdName(p.subject),
    issuer: amdName(p.issuer),
    subjectPublicKey: p.publicKey,
    notBefore: p.notBefore,
    notAfter: p.notAfter,
    extensions,
    serialLength: 8,
    algorithm: rsaPssSha384(saltLength),
    sign: (tbs) =>
      sign('sha384', tbs, { key: p.signingKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }),
  });
  return toPem(der);
}

function caExtensions(publicKey: KeyObject, root: boolean): Extension[] {
  const usage = root ? KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign : KeyUsageFlags.keyCertSign;
  return [
    subjectKeyIdentifierExtension(publicKey),
    basicConstraintsExtension(true, root ? undefined : 0),
    keyUsageExtension(usage, true),
  ];
}

const derInteger = (value: number): ArrayBuffer => new asn1js.Integer({ value }).toBER();

/** Options of `issueSimulatedVek`. */
export interface IssueSimulatedVekOptions {
  /** Validity starts a day before `now` (unless `notBefore` is given). */
  readonly now: Date;
  /** Default 'vcek'. A VLEK needs a CA created with `{ vlek: true }`. */
  readonly kind?: SnpSigningKey;
  /** The certified TCB (default the CA's). Components left out get no extension (for negative tests). */
  readonly tcb?: Partial<TcbVersion>;
  /** hwID (VCEK only; default the CA's chip id, 64 bytes or 8 on Turin; null omits it; 1..64 bytes). */
  readonly hwId?: string | Uint8Array | null;
  /** productName (default the CA's product; null omits it). */
  readonly productName?: string | null;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** Reuse this PKCS#8 PEM private key (ECDSA P-384) instead of generating one. */
  readonly key?: string;
  /** RSASSA-PSS salt length of the certificate signature (default 48; other values are for negative tests). */
  readonly saltLength?: number;
}

/**
 * Issues a VCEK or VLEK certificate under the simulated ASK or ASVK, with AMD's extensions.
 * @throws ConfigError CONFIG_INVALID for inconsistent options
 */
export function issueSimulatedVek(
  ca: SimulatedSnpCa,
  options: IssueSimulatedVekOptions,
): { readonly cert: string; readonly key: string } {
  const kind = options.kind ?? 'vcek';
  const issuerCert = kind === 'vcek' ? ca.ask : ca.asvk;
  const issuerKey = kind === 'vcek' ? ca.askKey : ca.asvkKey;
  if (issuerCert === null || issuerKey === null)
    throw invalidOption('this CA has no ASVK: create it with { vlek: true }');
  const now = options.now.getTime();
  if (!Number.isFinite(now)) throw invalidOption('`now` must be a valid Date');
  const privateKey =
    options.key === undefined
      ? generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey
      : createPrivateKey(options.key);
  const tcb = options.tcb ?? ca.tcb;
  const product = ca.product;

  const exts: Extension[] = [extension(AMD_OIDS.structVersion, derInteger(1))];
  const productName = options.productName === undefined ? product : options.productName;
  if (productName !== null)
    exts.push(extension(AMD_OIDS.productName, new asn1js.IA5String({ value: productName }).toBER()));
  const spl: ReadonlyArray<readonly [keyof TcbVersion, string]> = [
    ['fmc', AMD_OIDS.fmcSpl],
    ['bootloader', AMD_OIDS.blSpl],
    ['tee', AMD_OIDS.teeSpl],
    ['snp', AMD_OIDS.snpSpl],
    ['microcode', AMD_OIDS.ucodeSpl],
  ];
  for (const [component, oid] of spl) {
    const value = tcb[component];
    if (value !== undefined) exts.push(extension(oid, derInteger(value)));
  }
  if (kind === 'vcek') {
    const chipLength = snpChipIdLength(product);
    const hwId =
      options.hwId === undefined
        ? Buffer.from(ca.chipId, 'hex').subarray(0, chipLength)
        : options.hwId === null
          ? null
          : hwIdOption(options.hwId);
    if (hwId !== null) exts.push(extension(AMD_OIDS.hwId, hwId));
  } else {
    exts.push(
      extension(AMD_OIDS.cspId, new asn1js.Utf8String({ value: 'CN=simulated.ekms.invalid' }).toBER()),
    );
  }

  const issuerPrivate = createPrivateKey(issuerKey);
  const cert = issueAmdCertificate({
    issuer: kind === 'vcek' ? `SEV-${product}` : `SEV-VLEK-${product}`,
    subject: kind === 'vcek' ? 'SEV-VCEK' : 'SEV-VLEK',
    publicKey: createPublicKey(privateKey),
    signingKey: issuerPrivate,
    issuerPublicKey: createPublicKey(issuerPrivate),
    notBefore: options.notBefore ?? new Date(now - DAY_MS),
    notAfter: options.notAfter ?? new Date(now + (kind === 'vcek' ? 7 : 1) * YEAR_MS),
    extensions: exts,
    ...(options.saltLength === undefined ? {} : { saltLength: options.saltLength }),
  });
  return { cert, key: privateKeyPem(privateKey) };
}

/**
 * Creates a simulated ARK → ASK → VCEK chain (and ARK → ASVK → VLEK with `{ vlek: true }`).
 * RSA-4096 key generation takes seconds: create the CA once and keep it (the CLI saves it).
 * @throws ConfigError CONFIG_INVALID for invalid options
 * @throws AttestationError EVIDENCE_FIELD_INVALID for a TCB component that is not a byte
 */
export async function createSimulatedSnpCa(options: CreateSimulatedSnpCaOptions): Promise<SimulatedSnpCa> {
  const now = options.now instanceof Date ? options.now.getTime() : Number.NaN;
  if (!Number.isFinite(now)) throw invalidOption('`now` must be a valid Date');
  const product = options.product ?? 'Milan';
  if (!SNP_PRODUCTS.includes(product)) throw invalidOption(`unknown product ${String(product)}`);
  const tcb = options.tcb ?? DEFAULT_TCB[product];
  encodeSnpTcb(tcb, product); // validates every component is a byte
  if (product === 'Turin' && tcb.fmc === undefined) throw invalidOption('a Turin TCB needs fmc');
  const chipLength = snpChipIdLength(product);
  const chipId = new Uint8Array(64);
  chipId.set(
    options.chipId === undefined
      ? randomBytes(chipLength)
      : bytesOption(options.chipId, chipLength, 'chipId', false),
  );

  const rsa = (): Promise<{ publicKey: KeyObject; privateKey: KeyObject }> =>
    generateKeyPairAsync('rsa', { modulusLength: 4096, publicExponent: 0x10001 });
  const [arkPair, askPair, asvkPair] = await Promise.all([
    rsa(),
    rsa(),
    options.vlek === true ? rsa() : null,
  ]);
  const notBefore = new Date(now - DAY_MS);
  const rootNotAfter = new Date(now + 25 * YEAR_MS);

  const ark = issueAmdCertificate({
    issuer: `ARK-${product}`,
    subject: `ARK-${product}`,
    publicKey: arkPair.publicKey,
    signingKey: arkPair.privateKey,
    issuerPublicKey: null,
    notBefore,
    notAfter: rootNotAfter,
    extensions: caExtensions(arkPair.publicKey, true),
  });
  const intermediate = (pair: { publicKey: KeyObject }, cn: string): string =>
    issueAmdCertificate({
      issuer: `ARK-${product}`,
      subject: cn,
      publicKey: pair.publicKey,
      signingKey: arkPair.privateKey,
      issuerPublicKey: arkPair.publicKey,
      notBefore,
      notAfter: rootNotAfter,
      extensions: caExtensions(pair.publicKey, false),
    });
  const base = {
    format: 'ekms-simulated-sev-snp-ca' as const,
    version: 1 as const,
    product,
    ark,
    arkKey: privateKeyPem(arkPair.privateKey),
    ask: intermediate(askPair, `SEV-${product}`),
    askKey: privateKeyPem(askPair.privateKey),
    vcek: '',
    vcekKey: '',
    asvk: asvkPair === null ? null : intermediate(asvkPair, `SEV-VLEK-${product}`),
    asvkKey: asvkPair === null ? null : privateKeyPem(asvkPair.privateKey),
    vlek: null,
    vlekKey: null,
    chipId: Buffer.from(chipId).toString('hex'),
    tcb,
  };
  const vcek = issueSimulatedVek(base, { now: options.now, kind: 'vcek' });
  const vlek = asvkPair === null ? null : issueSimulatedVek(base, { now: options.now, kind: 'vlek' });
  return {
    ...base,
    vcek: vcek.cert,
    vcekKey: vcek.key,
    vlek: vlek === null ? null : vlek.cert,
    vlekKey: vlek === null ? null : vlek.key,
  };
}

/** The trust anchor for a simulated CA (marked `simulated`). Trust it only when configured to. */
export function simulatedSnpTrustAnchor(ca: SimulatedSnpCa): SnpTrustAnchor {
  return {
    product: ca.product,
    ark: ca.ark,
    ask: ca.ask,
    ...(ca.asvk === null ? {} : { asvk: ca.asvk }),
    simulated: true,
  };
}

/** Options of `simulateSnpReport`. Byte fields are hex or bytes. */
export interface SimulateSnpReportOptions {
  /** MEASUREMENT, exactly 48 bytes (default all zero). */
  readonly measurement?: string | Uint8Array;
  /** REPORT_DATA, up to 64 bytes, zero-padded. */
  readonly reportData?: string | Uint8Array;
  /** HOST_DATA, up to 32 bytes, zero-padded. */
  readonly hostData?: string | Uint8Array;
  /** Sets policy bit 19 (DEBUG). */
  readonly debug?: boolean;
  /** VMPL 0..3 (default 0). */
  readonly vmpl?: number;
  /** Report version 2, 3 (default) or 5. */
  readonly version?: SnpReportVersion;
  /** CURRENT, REPORTED, COMMITTED and LAUNCH TCB (default the CA's certified TCB). */
  readonly tcb?: TcbVersion;
  /** CHIP_ID, up to 64 bytes, zero-padded (default the VCEK's; zeros for a VLEK-signed report). */
  readonly chipId?: string | Uint8Array;
  /** The whole 64-bit guest policy (default 0x30000: SMT allowed, reserved bit 17 set). */
  readonly policy?: bigint;
  /** Sign with the VCEK (default) or the VLEK; SIGNING_KEY is set to match. */
  readonly signingKey?: SnpSigningKey;
  readonly guestSvn?: number;
  readonly familyId?: string | Uint8Array;
  readonly imageId?: string | Uint8Array;
}

/**
 * Signs bytes 0x000..0x29F of a report with the simulated VCEK (or VLEK, or a given PKCS#8 key) and writes
 * R and S (72-byte little-endian); returns a signed copy. The bytes after R and S are left as they are.
 * @throws ConfigError CONFIG_INVALID when the report is not 1184 bytes or the CA has no VLEK
 */
export function signSimulatedSnpReport(
  ca: SimulatedSnpCa,
  report: Uint8Array,
  options: { readonly signingKey?: SnpSigningKey; readonly key?: string } = {},
): Uint8Array {
  if (report.length !== SNP_REPORT_SIZE) throw invalidOption(`a report is ${SNP_REPORT_SIZE} bytes`);
  const keyPemText = options.key ?? ((options.signingKey ?? 'vcek') === 'vcek' ? ca.vcekKey : ca.vlekKey);
  if (keyPemText === null) throw invalidOption('this CA has no VLEK: create it with { vlek: true }');
  const signature = sign('sha384', report.subarray(0, SNP_SIGNED_LENGTH), {
    key: createPrivateKey(keyPemText),
    dsaEncoding: 'ieee-p1363',
  });
  const out = new Uint8Array(report); // a copy even for a Buffer (whose slice() is a view)
  out.fill(0, SNP_SIGNED_LENGTH, SNP_SIGNED_LENGTH + 144);
  out.set(Uint8Array.from(signature.subarray(0, 48)).reverse(), SNP_SIGNED_LENGTH);
  out.set(Uint8Array.from(signature.subarray(48, 96)).reverse(), SNP_SIGNED_LENGTH + 72);
  return out;
}

/**
 * Produces a signed 1184-byte report in the real layout (reserved bytes zero) for the CA's product.
 * @throws ConfigError CONFIG_INVALID for invalid options
 * @throws AttestationError EVIDENCE_FIELD_INVALID for a TCB component that is not a byte
 */
export function simulateSnpReport(ca: SimulatedSnpCa, options: SimulateSnpReportOptions = {}): Uint8Array {
  const product = ca.product;
  const version = options.version ?? 3;
  if (version !== 2 && version !== 3 && version !== 5)
    throw invalidOption(`unsupported report version ${version}`);
  const vmpl = options.vmpl ?? 0;
  if (!Number.isInteger(vmpl) || vmpl < 0 || vmpl > 3) throw invalidOption('vmpl must be 0..3');
  const signingKey = options.signingKey ?? 'vcek';
  let policy = options.policy ?? 0x30000n;
  if (options.debug === true) policy |= 1n << 19n;
  const tcb = encodeSnpTcb(options.tcb ?? ca.tcb, product);
  const firmware = FIRMWARE_VERSION[product];
  const zeros = (n: number): Uint8Array => new Uint8Array(n);
  const chipId =
    options.chipId !== undefined
      ? bytesOption(options.chipId, 64, 'chipId', true)
      : signingKey === 'vcek'
        ? Buffer.from(ca.chipId, 'hex')
        : zeros(64);
  let body: Uint8Array;
  try {
    body = encodeSnpReport({
      version,
      guestSvn: options.guestSvn ?? 0,
      policy,
      familyId:
        options.familyId === undefined ? zeros(16) : bytesOption(options.familyId, 16, 'familyId', true),
      imageId: options.imageId === undefined ? zeros(16) : bytesOption(options.imageId, 16, 'imageId', true),
      vmpl,
      signatureAlgo: 1,
      currentTcb: tcb,
      platformInfo: 1n,
      signerInfo: { signingKey, maskChipKey: false, authorKeyEn: false },
      reportData:
        options.reportData === undefined
          ? zeros(64)
          : bytesOption(options.reportData, 64, 'reportData', true),
      measurement:
        options.measurement === undefined
          ? zeros(48)
          : bytesOption(options.measurement, 48, 'measurement', false),
      hostData:
        options.hostData === undefined ? zeros(32) : bytesOption(options.hostData, 32, 'hostData', true),
      idKeyDigest: zeros(48),
      authorKeyDigest: zeros(48),
      reportId: randomBytes(32),
      reportIdMa: new Uint8Array(32).fill(0xff),
      reportedTcb: tcb,
      cpuid: version >= 3 ? SNP_PRODUCT_CPUID[product] : null,
      chipId,
      committedTcb: tcb,
      currentVersion: firmware,
      committedVersion: firmware,
      launchTcb: tcb,
      launchMitVector: version >= 5 ? 0n : null,
      currentMitVector: version >= 5 ? 0n : null,
      signatureR: zeros(72),
      signatureS: zeros(72),
    });
  } catch (err) {
    if (err instanceof AttestationError) throw invalidOption(err.message);
    throw err;
  }
  return signSimulatedSnpReport(ca, body, { signingKey });
}
