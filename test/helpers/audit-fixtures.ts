/**
 * Audit-log fixtures: a simulated enclave run (identity key + simulated Nitro evidence binding it), an AuditLog over
 * the in-memory host storage writing into an array "file", the boot check `ekms audit verify` does, and a rewriter
 * that plays a host re-chaining (and, with a key, re-signing) a log after tampering with it.
 */
import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { verifyEvidenceBundle } from '../../attestation/evidence.js';
import { createSimulatedNitroCa } from '../../attestation/simulated/index.js';
import { checkEnclaveClaims, type EnclaveTrust } from '../../client/session.js';
import type { Attestor } from '../../enclave/attestor/attestor.js';
import { simulatedAttestor } from '../../enclave/attestor/attestor.js';
import { AuditLog, type AuditLogOptions } from '../../enclave/audit/audit-log.js';
import {
  type AuditBootRecord,
  type AuditRecord,
  auditEvidenceBundle,
  auditLineHash,
  checkpointSigningInput,
  encodeAuditRecord,
  parseAuditLine,
} from '../../shared/audit.js';
import { ed25519Raw, identityBinding } from '../../shared/session.js';
import { MemoryStorage } from './memory-storage.js';

export const MEASUREMENT = createHash('sha384').update('audit test enclave').digest('hex');

/** One simulated attestor for the whole test file (creating a CA takes a few ms). */
export async function simulatedNitro(): Promise<{ attestor: Attestor; root: string; trust: EnclaveTrust }> {
  const ca = await createSimulatedNitroCa({ now: new Date() });
  const attestor = simulatedAttestor('sim-nitro', MEASUREMENT, ca);
  const root = attestor.simulatedRoot!;
  return { attestor, root, trust: { measurement: MEASUREMENT, roots: [root], allowSimulated: true } };
}

/** An enclave run's identity: a fresh Ed25519 key and evidence binding it. */
export interface Run {
  readonly key: KeyObject;
  readonly publicKey: Uint8Array;
  readonly identity: AuditLogOptions['identity'];
  readonly evidence: AuditLogOptions['evidence'];
}

export async function newRun(attestor: Attestor): Promise<Run> {
  const { privateKey } = generateKeyPairSync('ed25519');
  const publicKey = ed25519Raw(privateKey);
  const evidence = await attestor.evidence(identityBinding(publicKey), publicKey, new Date());
  return {
    key: privateKey,
    publicKey,
    identity: { publicKey, sign: (m) => new Uint8Array(sign(null, m, privateKey)) },
    evidence,
  };
}

/** The untrusted host: its blob store and its audit file (one string per line). */
export class FakeHost {
  readonly storage = new MemoryStorage();
  readonly lines: string[] = [];
  readonly rootKey = new Uint8Array(32).fill(7);

  sink = async (line: string): Promise<void> => {
    this.lines.push(line);
  };

  /** The file's text. */
  text(lines: readonly string[] = this.lines): string {
    return lines.map((l) => `${l}\n`).join('');
  }

  async open(run: Run, extra: Partial<AuditLogOptions> = {}): Promise<AuditLog> {
    return AuditLog.open({
      storage: this.storage,
      rootKey: this.rootKey,
      identity: run.identity,
      evidence: run.evidence,
      now: Date.now,
      sink: (line) => this.sink(line),
      ...extra,
    });
  }
}

/** A few events of different keys, principals and outcomes. */
export async function recordSample(log: AuditLog, n: number): Promise<void> {
  const outcomes = ['allowed', 'denied', 'error'] as const;
  await Promise.all(
    Array.from({ length: n }, (_, i) => {
      const outcome = outcomes[i % 3]!;
      return log.record({
        principal: i % 4 === 3 ? null : `p${i % 2}`,
        authentication: i % 4 === 3 ? 'attestation' : 'signature',
        attested: i % 4 === 3 ? { type: 'nitro', measurement: MEASUREMENT } : null,
        operation: i % 2 === 0 ? 'Encrypt' : 'Decrypt',
        keyId: `key-${i % 3}`,
        keyVersion: 1,
        context: { tenant: `t${i}` },
        outcome,
        code: outcome === 'allowed' ? null : outcome === 'denied' ? 'ACCESS_DENIED' : 'DECRYPT_FAILED',
        requestId: `r${i}`,
      });
    }),
  );
}

/** The boot check of `ekms audit verify --profile`: evidence verifies at boot time, is trusted, binds the key. */
export function checkBootWith(trust: EnclaveTrust): (boot: AuditBootRecord) => void {
  return (boot) => {
    const at = Date.parse(boot.time);
    const claims = verifyEvidenceBundle(auditEvidenceBundle(boot.evidence), {
      now: new Date(at),
      extraRoots: trust.roots,
    });
    checkEnclaveClaims(claims, new Uint8Array(Buffer.from(boot.identity, 'hex')), trust, at);
  };
}

/**
 * Rewrites a log as a host would after tampering: applies `edit` to each parsed record, then recomputes every prev
 * and head so that the chain is consistent again, and re-signs checkpoints with `key` (if given; otherwise the old
 * signatures stay).
 */
export function rechain(
  lines: readonly string[],
  edit: (r: AuditRecord, index: number) => AuditRecord,
  key?: KeyObject,
): string[] {
  const out: string[] = [];
  let prev: string | null = null;
  let resumedLine: string | null = null;
  lines.forEach((line, i) => {
    let r = edit(parseAuditLine(line), i);
    if (prev !== null) r = { ...r, prev };
    if (r.kind === 'boot' && r.resumed !== null && resumedLine !== null) r = { ...r, resumed: resumedLine };
    if (r.kind === 'checkpoint') {
      const { signature: _s, ...unsigned } = { ...r, head: r.prev };
      const signature =
        key === undefined
          ? r.signature
          : Buffer.from(sign(null, checkpointSigningInput(unsigned), key)).toString('hex');
      r = { ...unsigned, signature };
    }
    const encoded = encodeAuditRecord(r);
    if (r.kind === 'checkpoint') resumedLine = encoded;
    prev = auditLineHash(encoded);
    out.push(encoded);
  });
  return out;
}
