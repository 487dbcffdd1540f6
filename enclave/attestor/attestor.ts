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
import { ConfigError } from '../../shared/errors.js';

export const ATTESTOR_KINDS = ['sim-nitro', 'sim-sev-snp', 'nitro', 'sev-snp'] as const;
export type AttestorKind = (typeof ATTESTOR_KINDS)[number];

export interface Attestor {
  readonly kind: AttestorKind;
  /** Launch measurement, lowercase hex (SHA-384: 96 hex digits). */
  readonly measurement: string;
  /** True for the simulated attestors (never trusted unless configured). */
  readonly simulated: boolean;
}

export function isAttestorKind(x: string): x is AttestorKind {
  return (ATTESTOR_KINDS as readonly string[]).includes(x);
}

/**
 * Creates the attestor named by `kind`.
 * @throws ConfigError CONFIG_INVALID for an unknown kind, or a real attestor on a machine without the device.
 */
export function createAttestor(kind: string, bundlePath: string): Attestor {
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
  return { kind, measurement, simulated: true };
}
