/**
 * A simulated AWS Nitro attestor that speaks the real format (design §2, style §14): the same
 * `verifyNitroDocument` code path checks its documents and real ones; only the root differs.
 *
 * - `createSimulatedNitroCa({ now })`: a P-384 root and three intermediates (ECDSA P-384 / SHA-384),
 *   shaped like AWS's PKI (docs/attestation_process.md §2.1): root CN=sim.nitro-enclaves (CA, no path
 *   length), a regional intermediate (pathLen 2), a zonal one (pathLen 1) and an instance one (pathLen 0,
 *   keyCertSign only, no key identifiers). Names use AWS's attribute order and string types, with
 *   O/OU marking them as simulated. The result is a JSON-serialisable object of PEM strings (certificates
 *   and PKCS#8 keys); `simulatedNitroCaFiles` names them for a directory (`root.pem`, …). No I/O here.
 * - `simulateNitroDocument(ca, { now, … })`: a fresh leaf (P-384, valid 3 hours from `now`, CA:FALSE,
 *   keyUsage digitalSignature + nonRepudiation, no key identifiers — as AWS's) and an untagged COSE_Sign1
 *   laid out exactly like AWS's: protected header a1 01 38 22, empty unprotected map, a definite-length
 *   payload map in AWS's key order (encode.ts), cabundle [root, int1, int2, int3], 96-byte r ‖ s signature.
 *
 * The simulator writes what it is given (any PCR length, any field size, any digest text) so that tests
 * can build invalid documents; the verifier enforces the bounds. A simulated root is trusted only when a
 * caller passes `simulatedNitroTrustAnchor(ca)` among the trust anchors.
 *
 * Certificates are built with the simulators' shared helpers (certificates.ts: `@peculiar/asn1-x509`
 * structures) and signed with `node:crypto`.
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  Certificate,
  type Extension,
  KeyUsageFlags,
  type Name,
} from '@peculiar/asn1-x509';
import { ConfigError } from '../../shared/errors.js';
import { ES384_PROTECTED_HEADER, encodeCoseSign1, sigStructure1 } from '../nitro/cose.js';
import { encodeNitroPayload } from '../nitro/encode.js';
import type { NitroDigest } from '../nitro/types.js';
import { decodeCertificatePem, type KeyUsageName, type TrustAnchor } from '../x509/index.js';
import {
  authorityKeyIdentifierExtension,
  basicConstraintsExtension,
  issueCertificate,
  keyUsageExtension,
  name,
  privateKeyPem,
  subjectKeyIdentifierExtension,
  toPem,
} from './certificates.js';

/** Format tag of a serialised simulated CA. */
export const SIMULATED_NITRO_CA_FORMAT = 'ekms-sim-nitro-ca/1';

/** A simulated Nitro CA: JSON-serialisable, PEM throughout. Keep the private keys secret. */
export interface SimulatedNitroCa {
  readonly format: typeof SIMULATED_NITRO_CA_FORMAT;
  /** Certificates in cabundle order: [root, intermediate 1, intermediate 2, intermediate 3]. */
  readonly certificates: readonly [string, string, string, string];
  /** PKCS#8 private keys, same order. */
  readonly privateKeys: readonly [string, string, string, string];
  /** The simulated parent-instance id (`i-` + 17 hex digits) that module ids are made from. */
  readonly instanceId: string;
}

/** Options of `createSimulatedNitroCa`. */
export interface SimulatedNitroCaOptions {
  /** Creation time: certificates start one hour before it (clock skew). */
  readonly now: Date;
  /** Root subject attributes (defaults mark it as simulated). For look-alike tests only. */
  readonly root?: {
    readonly commonName?: string;
    readonly organization?: string;
    readonly organizationalUnit?: string;
  };
}

/** A leaf certificate with its private key (ephemeral; never serialised). */
export interface SimulatedNitroLeaf {
  readonly certificate: Uint8Array;
  readonly privateKey: KeyObject;
  readonly moduleId: string;
}

/** Options of `issueSimulatedNitroLeaf`. The non-default knobs exist for negative tests. */
export interface SimulatedNitroLeafOptions {
  readonly now: Date;
  readonly moduleId?: string;
  /** Leaf key curve (default P-384; AWS leaves are P-384). */
  readonly namedCurve?: 'P-384' | 'P-256';
  /** keyUsage bits (default digitalSignature, nonRepudiation, as AWS's). */
  readonly keyUsage?: readonly KeyUsageName[];
  /** Mark the leaf as a CA (default false). */
  readonly ca?: boolean;
  /** Validity from `now`, ms (default 3 hours). */
  readonly validityMs?: number;
}

/** Options of `simulateNitroDocument`. Byte fields left undefined are null in the document. */
export interface SimulateNitroOptions {
  readonly now: Date;
  /** PCR values by index; PCR0–PCR15 default to 48 zero bytes (which reads as a debug enclave). */
  readonly pcrs?: ReadonlyMap<number, Uint8Array> | Readonly<Record<number, Uint8Array>>;
  readonly moduleId?: string;
  readonly userData?: Uint8Array | null;
  readonly nonce?: Uint8Array | null;
  readonly publicKey?: Uint8Array | null;
  /** Default "SHA384"; anything else makes an invalid document (tests). */
  readonly digest?: NitroDigest | string;
  /** Sign with this leaf instead of issuing a fresh one (tests). */
  readonly leaf?: SimulatedNitroLeaf;
  /** Prefix CBOR tag 18 (AWS's documents are untagged). Default false. */
  readonly tagged?: boolean;
}

const HOUR_MS = 3_600_000;
const YEAR_MS = 365 * 24 * HOUR_MS;
const ALG_ECDSA_SHA384 = '1.2.840.10045.4.3.3';
const REGION = 'sim-region-1';
const DEFAULT_O = 'enclave-kms simulated';
const DEFAULT_OU = 'SIM';
const KEY_USAGE_FLAGS: Readonly<Record<KeyUsageName, number>> = {
  digitalSignature: KeyUsageFlags.digitalSignature,
  nonRepudiation: KeyUsageFlags.nonRepudiation,
  keyEncipherment: KeyUsageFlags.keyEncipherment,
  dataEncipherment: KeyUsageFlags.dataEncipherment,
  keyAgreement: KeyUsageFlags.keyAgreement,
  keyCertSign: KeyUsageFlags.keyCertSign,
  crlSign: KeyUsageFlags.cRLSign,
  encipherOnly: KeyUsageFlags.encipherOnly,
  decipherOnly: KeyUsageFlags.decipherOnly,
};

const hexId = (bytes: number): string => randomBytes(bytes).toString('hex');
const seconds = (ms: number): Date => new Date(Math.floor(ms / 1000) * 1000);

interface IssueParams {
  readonly subject: Name;
  readonly issuer: Name;
  readonly subjectSpki: Uint8Array;
  readonly issuerKey: KeyObject;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly extensions: readonly Extension[];
}

/** An AWS-style certificate: ECDSA P-384 / SHA-384 (parameters absent), 16-byte serial. */
function issue(params: IssueParams): Uint8Array {
  return issueCertificate({
    subject: params.subject,
    issuer: params.issuer,
    subjectPublicKey: params.subjectSpki,
    notBefore: params.notBefore,
    notAfter: params.notAfter,
    extensions: params.extensions,
    serialLength: 16,
    algorithm: new AlgorithmIdentifier({ algorithm: ALG_ECDSA_SHA384 }),
    sign: (tbs) => sign('sha384', tbs, { key: params.issuerKey, dsaEncoding: 'der' }),
  });
}

function p384(): { privateKey: KeyObject; spki: Uint8Array; pkcs8Pem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  return {
    privateKey,
    spki: new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })),
    pkcs8Pem: privateKeyPem(privateKey),
  };
}

function checkNow(now: unknown, fn: string): number {
  const ms = now instanceof Date ? now.getTime() : Number.NaN;
  /* Precondition: the caller supplies the time (never defaulted inside the library). */
  if (!Number.isFinite(ms)) throw new ConfigError('CONFIG_INVALID', `${fn}: \`now\` must be a valid Date`);
  return ms;
}

interface CaMaterial {
  readonly names: readonly [Name, Name, Name, Name];
  readonly keys: readonly [KeyObject, KeyObject, KeyObject, KeyObject];
  readonly ders: readonly [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
}

/**
 * Creates a simulated Nitro CA: root → three intermediates, ECDSA P-384 / SHA-384.
 * Root valid 30 years and intermediates 10 years (so a stored CA can be reused), from `now` − 1 hour.
 * @throws ConfigError CONFIG_INVALID when `now` is not a valid Date.
 */
export async function createSimulatedNitroCa(options: SimulatedNitroCaOptions): Promise<SimulatedNitroCa> {
  const nowMs = checkNow(options?.now, 'createSimulatedNitroCa');
  const notBefore = seconds(nowMs - HOUR_MS);
  const region = `${hexId(8)}.${REGION}`;
  const instanceId = `i-${hexId(9).slice(0, 17)}`;
  const o = DEFAULT_O;
  const ou = DEFAULT_OU;
  const rootName = name([
    ['C', 'US'],
    ['O', options.root?.organization ?? o],
    ['OU', options.root?.organizationalUnit ?? ou],
    ['CN', options.root?.commonName ?? 'sim.nitro-enclaves'],
  ]);
  const names = [
    rootName,
    name([
      ['C', 'US'],
      ['O', o],
      ['OU', ou],
      ['CN', `${region}.sim.nitro-enclaves`],
    ]),
    name([
      ['CN', `${hexId(8)}.zonal.${REGION}.sim.nitro-enclaves`],
      ['OU', ou],
      ['O', o],
      ['C', 'US'],
      ['ST', 'WA'],
      ['L', 'Seattle'],
    ]),
    name([
      ['C', 'US'],
      ['ST', 'Washington'],
      ['L', 'Seattle'],
      ['O', o],
      ['OU', ou],
      ['CN', `${instanceId}.${REGION}.sim.nitro-enclaves`],
    ]),
  ] as const;
  const keys = [p384(), p384(), p384(), p384()] as const;
  const caUsage = KeyUsageFlags.digitalSignature | KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign;
  const ders: Uint8Array[] = [];
  for (let i = 0; i < 4; i++) {
    const key = keys[i]!;
    const exts: Extension[] = [basicConstraintsExtension(true, i === 0 ? undefined : 3 - i)];
    if (i < 3) {
      if (i > 0) exts.push(authorityKeyIdentifierExtension(keys[i - 1]!.spki));
      exts.push(subjectKeyIdentifierExtension(key.spki));
      exts.push(keyUsageExtension(caUsage, true));
    } else {
      exts.push(keyUsageExtension(KeyUsageFlags.keyCertSign, true));
    }
    ders.push(
      issue({
        subject: names[i]!,
        issuer: names[i === 0 ? 0 : i - 1]!,
        subjectSpki: key.spki,
        issuerKey: keys[i === 0 ? 0 : i - 1]!.privateKey,
        notBefore,
        notAfter: seconds(nowMs + (i === 0 ? 30 : 10) * YEAR_MS),
        extensions: exts,
      }),
    );
  }
  return {
    format: SIMULATED_NITRO_CA_FORMAT,
    certificates: [toPem(ders[0]!), toPem(ders[1]!), toPem(ders[2]!), toPem(ders[3]!)],
    privateKeys: [keys[0].pkcs8Pem, keys[1].pkcs8Pem, keys[2].pkcs8Pem, keys[3].pkcs8Pem],
    instanceId,
  };
}

function loadCa(ca: SimulatedNitroCa): CaMaterial {
  /* Precondition: the CA object is one this module made (format tag, four PEM certificates and keys). */
  if (
    ca?.format !== SIMULATED_NITRO_CA_FORMAT ||
    !Array.isArray(ca.certificates) ||
    !Array.isArray(ca.privateKeys) ||
    ca.certificates.length !== 4 ||
    ca.privateKeys.length !== 4 ||
    typeof ca.instanceId !== 'string'
  ) {
    throw new ConfigError(
      'CONFIG_INVALID',
      `not a simulated Nitro CA (expected format "${SIMULATED_NITRO_CA_FORMAT}")`,
    );
  }
  try {
    const ders = ca.certificates.map((p, i) => decodeCertificatePem(p, `simulated CA certificate #${i}`));
    const certs = ders.map((der) => AsnConvert.parse(der, Certificate));
    const keys = ca.privateKeys.map((p) => createPrivateKey(p));
    return {
      ders: ders as unknown as CaMaterial['ders'],
      names: certs.map((c) => c.tbsCertificate.subject) as unknown as CaMaterial['names'],
      keys: keys as unknown as CaMaterial['keys'],
    };
  } catch (cause) {
    throw new ConfigError('CONFIG_INVALID', 'the simulated Nitro CA cannot be loaded', { cause });
  }
}

/**
 * Issues a leaf under the CA's last intermediate (default: AWS-shaped, P-384, 3 hours from `now`).
 * @throws ConfigError CONFIG_INVALID for a bad `now` or CA object.
 */
export async function issueSimulatedNitroLeaf(
  ca: SimulatedNitroCa,
  options: SimulatedNitroLeafOptions,
): Promise<SimulatedNitroLeaf> {
  const nowMs = checkNow(options?.now, 'issueSimulatedNitroLeaf');
  const material = loadCa(ca);
  const moduleId = options.moduleId ?? `${ca.instanceId}-enc${hexId(8)}`;
  const curve = options.namedCurve ?? 'P-384';
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
  const usage = options.keyUsage ?? ['digitalSignature', 'nonRepudiation'];
  const certificate = issue({
    subject: name([
      ['C', 'US'],
      ['ST', 'Washington'],
      ['L', 'Seattle'],
      ['O', DEFAULT_O],
      ['OU', DEFAULT_OU],
      ['CN', `${moduleId}.${REGION}.sim`],
    ]),
    issuer: material.names[3],
    subjectSpki: new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })),
    issuerKey: material.keys[3],
    notBefore: seconds(nowMs),
    notAfter: seconds(nowMs + (options.validityMs ?? 3 * HOUR_MS)),
    extensions: [
      basicConstraintsExtension(options.ca === true),
      keyUsageExtension(
        usage.reduce((f, u) => f | KEY_USAGE_FLAGS[u], 0),
        false,
      ),
    ],
  });
  return { certificate, privateKey, moduleId };
}

function pcrMap(given: SimulateNitroOptions['pcrs']): Map<number, Uint8Array> {
  const pcrs = new Map<number, Uint8Array>();
  for (let i = 0; i < 16; i++) pcrs.set(i, new Uint8Array(48));
  const entries =
    given instanceof Map ? [...given] : Object.entries(given ?? {}).map(([k, v]) => [Number(k), v] as const);
  for (const [index, value] of entries) pcrs.set(index, value);
  return pcrs;
}

/**
 * Produces a Nitro attestation document (COSE_Sign1 bytes) signed by a fresh leaf of `ca`, timestamped `now`.
 * @throws ConfigError CONFIG_INVALID for a bad `now` or CA object.
 */
export async function simulateNitroDocument(
  ca: SimulatedNitroCa,
  options: SimulateNitroOptions,
): Promise<Uint8Array> {
  const nowMs = checkNow(options?.now, 'simulateNitroDocument');
  const material = loadCa(ca);
  const leaf =
    options.leaf ??
    (await issueSimulatedNitroLeaf(ca, {
      now: options.now,
      ...(options.moduleId === undefined ? {} : { moduleId: options.moduleId }),
    }));
  const payload = encodeNitroPayload({
    moduleId: options.moduleId ?? leaf.moduleId,
    digest: (options.digest ?? 'SHA384') as NitroDigest,
    timestamp: nowMs,
    pcrs: pcrMap(options.pcrs),
    certificate: leaf.certificate,
    cabundle: material.ders,
    publicKey: options.publicKey ?? null,
    userData: options.userData ?? null,
    nonce: options.nonce ?? null,
  });
  const signature = sign('sha384', sigStructure1(ES384_PROTECTED_HEADER, payload), {
    key: leaf.privateKey,
    dsaEncoding: 'ieee-p1363',
  });
  return encodeCoseSign1({
    protectedHeader: ES384_PROTECTED_HEADER,
    payload,
    signature: new Uint8Array(signature),
    tagged: options.tagged === true,
  });
}

/** The CA's root as a trust anchor, marked simulated (trust it only when configured to). */
export function simulatedNitroTrustAnchor(ca: SimulatedNitroCa): TrustAnchor {
  loadCa(ca);
  return { certificate: ca.certificates[0], simulated: true, name: 'simulated Nitro root' };
}

/** File names → contents for storing a CA in a directory: `root.pem` (the trust anchor) and the rest. */
export function simulatedNitroCaFiles(ca: SimulatedNitroCa): Readonly<Record<string, string>> {
  loadCa(ca);
  return {
    'root.pem': ca.certificates[0],
    'intermediate-1.pem': ca.certificates[1],
    'intermediate-2.pem': ca.certificates[2],
    'intermediate-3.pem': ca.certificates[3],
    'root.key.pem': ca.privateKeys[0],
    'intermediate-1.key.pem': ca.privateKeys[1],
    'intermediate-2.key.pem': ca.privateKeys[2],
    'intermediate-3.key.pem': ca.privateKeys[3],
    'instance-id.txt': `${ca.instanceId}\n`,
  };
}

/**
 * Rebuilds a CA from the files written by `simulatedNitroCaFiles`.
 * @throws ConfigError CONFIG_INVALID when a file is missing or does not load.
 */
export function simulatedNitroCaFromFiles(files: Readonly<Record<string, string>>): SimulatedNitroCa {
  const need = (n: string): string => {
    const v = files[n];
    if (typeof v !== 'string') throw new ConfigError('CONFIG_INVALID', `simulated Nitro CA: ${n} is missing`);
    return v;
  };
  const ca: SimulatedNitroCa = {
    format: SIMULATED_NITRO_CA_FORMAT,
    certificates: [
      need('root.pem'),
      need('intermediate-1.pem'),
      need('intermediate-2.pem'),
      need('intermediate-3.pem'),
    ],
    privateKeys: [
      need('root.key.pem'),
      need('intermediate-1.key.pem'),
      need('intermediate-2.key.pem'),
      need('intermediate-3.key.pem'),
    ],
    instanceId: need('instance-id.txt').trim(),
  };
  loadCa(ca);
  return ca;
}
