/**
 * The enclave root key (design §4; docs/key-service.md §2): 32 random bytes from which every sealing key is
 * derived (enclave/sealing.ts). It never leaves the enclave in plaintext — except in simulation.
 *
 * SIMULATION ONLY: a simulated enclave has no hardware sealing key and no custodians yet, so its root key is kept
 * through the host as blob `root-key.insecure-simulation`, in plaintext, with the marker
 * "insecure: simulation" inside. Whoever can read the data dir can read every key. The enclave logs a warning at
 * start-up and `describe` reports `rootKey: "insecure-simulation"`. Real attestors (nitro, sev-snp) never use this
 * path: their root key comes from M-of-N custodian shares released to the attested enclave (docs/custody.md).
 *
 * Refusing to lose keys: if the root key blob is missing or unreadable while sealed key state exists, start-up fails
 * with ROOT_KEY_UNAVAILABLE instead of creating a fresh root key (which would orphan, then overwrite, every key).
 */
import { randomBytes } from 'node:crypto';
import { decodeCbor, encodeCbor } from '../../shared/cbor.js';
import { KmsError } from '../../shared/kms-errors.js';
import type { BlobStorage } from '../storage/blob-storage.js';

export const SIMULATION_ROOT_KEY_BLOB = 'root-key.insecure-simulation';
export const SIMULATION_MARKER = 'insecure: simulation';
const ROOT_KEY_BYTES = 32;

export interface RootKey {
  /** 32 bytes. The caller zeroes it when the enclave stops. */
  readonly key: Uint8Array;
  readonly source: 'insecure-simulation';
  /** True if this start created it (first start of a data dir). */
  readonly created: boolean;
}

/**
 * Loads the simulation root key through the host, or creates it when the store holds no state at all.
 * @throws KmsError ROOT_KEY_UNAVAILABLE; StoreError (storage failures)
 */
export async function loadSimulationRootKey(storage: BlobStorage, now: () => number): Promise<RootKey> {
  const bytes = await storage.get(SIMULATION_ROOT_KEY_BLOB);
  if (bytes === undefined) {
    const existing = await storage.list();
    /* Precondition: a fresh root key is only made for an empty store; otherwise the state would be orphaned. */
    if (existing.length > 0) {
      throw new KmsError(
        'ROOT_KEY_UNAVAILABLE',
        `the root key blob is missing but the store holds ${existing.length} sealed blob(s); refusing to create a new root key`,
      );
    }
    const key = new Uint8Array(randomBytes(ROOT_KEY_BYTES));
    await storage.put(
      SIMULATION_ROOT_KEY_BLOB,
      encodeCbor({ v: 1, marker: SIMULATION_MARKER, createdAt: new Date(now()).toISOString(), key }),
    );
    return { key, source: 'insecure-simulation', created: true };
  }
  let raw: unknown;
  try {
    raw = decodeCbor(bytes);
  } catch (cause) {
    throw new KmsError('ROOT_KEY_UNAVAILABLE', 'the root key blob is not readable', { cause });
  }
  const m = raw as Record<string, unknown> | null;
  const key = m?.['key'];
  if (
    typeof m !== 'object' ||
    m === null ||
    m['v'] !== 1 ||
    m['marker'] !== SIMULATION_MARKER ||
    !(key instanceof Uint8Array) ||
    key.length !== ROOT_KEY_BYTES
  ) {
    throw new KmsError('ROOT_KEY_UNAVAILABLE', 'the root key blob is malformed');
  }
  bytes.fill(0);
  return { key, source: 'insecure-simulation', created: false };
}
