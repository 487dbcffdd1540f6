/**
 * The simulated attestor's CA, kept by the host (docs/attestation.md): in simulation it plays the hardware vendor
 * (AWS's Nitro PKI, AMD's ARK/ASK/VCEK), which is outside the enclave's trust boundary. Whoever holds this file can
 * forge evidence for any measurement; that is why clients trust a simulated root only when their profile says so.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import {
  createSimulatedNitroCa,
  createSimulatedSnpCa,
  type SimulatedNitroCa,
  type SimulatedSnpCa,
} from '../attestation/simulated/index.js';
import { ConfigError } from '../shared/errors.js';

/**
 * Loads the CA in `file`, or creates it (mode 0600). Returns the file and the root (PEM) clients must trust.
 * @throws ConfigError CONFIG_INVALID (unreadable, or a CA of the other kind)
 */
export async function ensureSimulatedCa(
  kind: 'sim-nitro' | 'sim-sev-snp',
  file: string,
): Promise<{ file: string; root: string }> {
  const rootOf = (ca: SimulatedNitroCa | SimulatedSnpCa): string =>
    kind === 'sim-nitro' ? (ca as SimulatedNitroCa).certificates[0] : (ca as SimulatedSnpCa).ark;
  if (existsSync(file)) {
    let ca: SimulatedNitroCa | SimulatedSnpCa;
    try {
      ca = JSON.parse(readFileSync(file, 'utf8')) as SimulatedNitroCa | SimulatedSnpCa;
    } catch (cause) {
      throw new ConfigError('CONFIG_INVALID', `cannot read the simulated CA ${file}`, { cause });
    }
    const expected = kind === 'sim-nitro' ? 'ekms-sim-nitro-ca/1' : 'ekms-simulated-sev-snp-ca';
    if (ca.format !== expected) throw new ConfigError('CONFIG_INVALID', `${file} is not a ${kind} CA`);
    return { file, root: rootOf(ca) };
  }
  const now = new Date();
  const ca =
    kind === 'sim-nitro' ? await createSimulatedNitroCa({ now }) : await createSimulatedSnpCa({ now });
  writeFileSync(file, `${JSON.stringify(ca)}\n`, { mode: 0o600 });
  return { file, root: rootOf(ca) };
}
