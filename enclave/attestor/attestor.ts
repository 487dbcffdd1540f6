/**
 * The enclave's attestor: who vouches for this process's identity (design §2).
 *
 * `sim-nitro` / `sim-sev-snp` measure the enclave bundle themselves (SHA-384 of the file the process was
 * started from), playing the role the hypervisor plays on real hardware, so changing enclave code changes
 * the measurement clients see. `nitro` (/dev/nsm) and `sev-snp` (configfs-tsm or /dev/sev-guest) are the
 * real attestors; they come with the attested-session work (docs/attestation.md).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  type SimulatedNitroCa,
  type SimulatedSnpCa,
  simulateNitroDocument,
  simulateSnpReport,
} from '../../attestation/simulated/index.js';
import { ConfigError } from '../../shared/errors.js';
import type { EvidenceBundle } from '../../shared/session.js';

export const ATTESTOR_KINDS = ['sim-nitro', 'sim-sev-snp', 'nitro', 'sev-snp'] as const;
export type AttestorKind = (typeof ATTESTOR_KINDS)[number];

export interface Attestor {
  readonly kind: AttestorKind;
  /** Launch measurement, lowercase hex (SHA-384: 96 hex digits). */
  readonly measurement: string;
  /** True for the simulated attestors (never trusted unless configured). */
  readonly simulated: boolean;
  /** The root (PEM) of a simulated attestor's CA, so that workload evidence from this machine can be checked. */
  readonly simulatedRoot: string | null;
  /**
   * Fresh evidence binding `binding` (32 bytes: Nitro `user_data`, SEV-SNP REPORT_DATA[0:32]) and, on Nitro,
   * `publicKey` in the document's `public_key` field.
   */
  evidence(binding: Uint8Array, publicKey: Uint8Array, now: Date): Promise<EvidenceBundle>;
}

export function isAttestorKind(x: string): x is AttestorKind {
  return (ATTESTOR_KINDS as readonly string[]).includes(x);
}

/**
 * Creates the attestor named by `kind`.
 * @throws ConfigError CONFIG_INVALID for an unknown kind, or a real attestor on a machine without the device.
 */
export function createAttestor(kind: string, bundlePath: string, simulatedCaFile?: string): Attestor {
  if (!isAttestorKind(kind)) {
    throw new ConfigError(
      'CONFIG_INVALID',
      `unknown attestor "${kind}" (one of ${ATTESTOR_KINDS.join(', ')})`,
    );
  }
  if (kind === 'nitro' || kind === 'sev-snp') {
    throw new ConfigError(
      'CONFIG_INVALID',
      `attestor "${kind}" needs the hardware interface (${kind === 'nitro' ? '/dev/nsm' : '/sys/kernel/config/tsm/report'}); ` +
        'use sim-nitro or sim-sev-snp on this machine',
    );
  }
  const measurement = createHash('sha384').update(readFileSync(bundlePath)).digest('hex');
  return simulatedAttestor(kind, measurement, loadSimulatedCa(kind, simulatedCaFile));
}

/**
 * Reads the simulated CA (JSON) that plays the hardware vendor's role in simulation. It lives outside the enclave's
 * trust boundary by design: whoever holds it can forge evidence for any measurement, which is why clients trust a
 * simulated root only when their profile says so (design §2).
 * @throws ConfigError CONFIG_INVALID
 */
function loadSimulatedCa(
  kind: 'sim-nitro' | 'sim-sev-snp',
  file: string | undefined,
): SimulatedNitroCa | SimulatedSnpCa {
  if (file === undefined) {
    throw new ConfigError(
      'CONFIG_INVALID',
      `attestor ${kind} needs --sim-ca FILE (ekms start creates one in its data dir)`,
    );
  }
  let ca: { format?: unknown };
  try {
    ca = JSON.parse(readFileSync(file, 'utf8')) as { format?: unknown };
  } catch (cause) {
    throw new ConfigError('CONFIG_INVALID', `cannot read the simulated CA ${file}`, { cause });
  }
  const expected = kind === 'sim-nitro' ? 'ekms-sim-nitro-ca/1' : 'ekms-simulated-sev-snp-ca';
  if (ca.format !== expected)
    throw new ConfigError('CONFIG_INVALID', `${file} is not a ${kind} CA (${expected})`);
  return ca as SimulatedNitroCa | SimulatedSnpCa;
}

/** A simulated attestor: real-format evidence signed by the simulated CA, measurement = SHA-384 of the bundle. */
export function simulatedAttestor(
  kind: 'sim-nitro' | 'sim-sev-snp',
  measurement: string,
  ca: SimulatedNitroCa | SimulatedSnpCa,
  options: { readonly debug?: boolean } = {},
): Attestor {
  const measurementBytes = Buffer.from(measurement, 'hex');
  if (kind === 'sim-nitro') {
    const nitro = ca as SimulatedNitroCa;
    return {
      kind,
      measurement,
      simulated: true,
      simulatedRoot: nitro.certificates[0],
      async evidence(binding, publicKey, now) {
        const zero = new Uint8Array(48);
        const document = await simulateNitroDocument(nitro, {
          now,
          // PCR0 = the image, PCR1/PCR2 = kernel and application (here: derived from it); all zero = debug mode.
          pcrs: options.debug
            ? { 0: zero, 1: zero, 2: zero }
            : { 0: measurementBytes, 1: sha384(measurementBytes, 1), 2: sha384(measurementBytes, 2) },
          userData: binding,
          publicKey,
        });
        return { type: 'nitro', document, certificates: [] };
      },
    };
  }
  const snp = ca as SimulatedSnpCa;
  return {
    kind,
    measurement,
    simulated: true,
    simulatedRoot: snp.ark,
    async evidence(binding) {
      const document = simulateSnpReport(snp, {
        measurement: measurementBytes,
        reportData: binding,
        ...(options.debug ? { debug: true } : {}),
      });
      return { type: 'sev-snp', document, certificates: [snp.vcek, snp.ask] };
    },
  };
}

function sha384(data: Uint8Array, label: number): Uint8Array {
  return new Uint8Array(createHash('sha384').update(Uint8Array.of(label)).update(data).digest());
}
