/**
 * The analytics workload: its own process, with its own (simulated) attestor and measurement.
 *
 * It measures itself the way the simulated hardware would (SHA-384 of its bundle file), makes a fresh X-Wing
 * recipient key pair, opens an attested session with the KMS — verifying the KMS enclave's evidence against the
 * job's trust policy — and authenticates as a workload: its evidence binds its recipient key and the session.
 * For each party's ciphertext it asks the KMS to decrypt the data key *for the recipient*: the key comes back only
 * HPKE-wrapped to the recipient key, in a statement signed by the attested enclave, and only if that key's release
 * policy accepts this workload's measurement. The data is decrypted here, the joint aggregates computed, and only
 * the aggregates leave the process (stdout, one JSON line).
 *
 * Usage: node analytics-workload.mjs JOB.json   (the demo writes the job file; see demo.ts)
 *
 * Built twice by the demo (scripts/demo.mjs): the genuine workload, and a modified one (__WORKLOAD_VARIANT__ =
 * "modified") that would also print raw rows. Different bytes, different measurement: the KMS refuses it.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { SimulatedNitroCa } from '../../attestation/simulated/index.js';
import { simulateNitroDocument } from '../../attestation/simulated/index.js';
import { decryptEnvelope } from '../../client/envelope-stream.js';
import { connect, type EnclaveTrust, openRelease } from '../../client/sdk.js';
import { EkmsError } from '../../shared/errors.js';
import { xwingKeygen } from '../../shared/xwing.js';
import { type Admission, checkAggregatesOnly, computeJointResults, parseAdmissions } from './analytics.js';
import type { Party } from './datasets.js';

declare const __WORKLOAD_VARIANT__: string;
const VARIANT = typeof __WORKLOAD_VARIANT__ === 'string' ? __WORKLOAD_VARIANT__ : 'source';

export interface WorkloadJob {
  readonly endpoint: string;
  /** What the workload trusts about the KMS enclave (the consortium's profile trust). */
  readonly trust: EnclaveTrust;
  /** The simulated hardware CA of this machine (stands in for the Nitro/AMD hardware). */
  readonly simulatedCaFile: string;
  readonly inputs: ReadonlyArray<{ party: Party; file: string; context: Record<string, string> }>;
}

export type WorkloadOutput =
  | { ok: true; variant: string; measurement: string; results: unknown }
  | {
      ok: false;
      variant: string;
      measurement: string;
      refusals: Array<{ party: string; code: string; message: string }>;
    };

async function main(): Promise<void> {
  const job = JSON.parse(readFileSync(process.argv[2] as string, 'utf8')) as WorkloadJob;
  // The simulated hardware measures the image it launches: here, this bundle file.
  const measurement = createHash('sha384')
    .update(readFileSync(fileURLToPath(import.meta.url)))
    .digest('hex');
  const ca = JSON.parse(readFileSync(job.simulatedCaFile, 'utf8')) as SimulatedNitroCa;
  const recipient = xwingKeygen();
  const m = Buffer.from(measurement, 'hex');
  const client = await connect(job.endpoint, {
    trust: job.trust,
    timeoutMs: 30_000,
    workload: {
      recipientPublicKey: recipient.publicKey,
      async evidence(binding) {
        const document = await simulateNitroDocument(ca, {
          now: new Date(),
          pcrs: { 0: m, 1: m, 2: m },
          userData: binding,
        });
        return { type: 'nitro', document, certificates: [] };
      },
    },
  });
  const identity = client.enclaveIdentity;
  if (identity === undefined) throw new Error('the session has no enclave identity');
  const refusals: Array<{ party: string; code: string; message: string }> = [];
  const data = {} as Record<Party, Admission[]>;
  try {
    for (const input of job.inputs) {
      try {
        const pieces: Buffer[] = [];
        for await (const piece of decryptEnvelope(createReadStream(input.file), {
          context: input.context,
          resolveDataKey: async (header) => {
            const release = await client.decryptForRecipient(
              header.encryptedDataKey,
              header.context,
              header.keyId,
            );
            return openRelease(release, recipient, identity).material;
          },
        })) {
          pieces.push(Buffer.from(piece));
        }
        data[input.party] = parseAdmissions(Buffer.concat(pieces).toString('utf8'), input.party);
        if (VARIANT === 'modified') {
          // What the modified build would do: leak raw rows. It never gets here: its keys are refused.
          process.stderr.write(Buffer.concat(pieces));
        }
        for (const p of pieces) p.fill(0);
      } catch (err) {
        if (!(err instanceof EkmsError)) throw err;
        refusals.push({ party: input.party, code: err.code, message: err.message });
      }
    }
  } finally {
    client.close();
    recipient.secretKey.fill(0);
  }
  const out: WorkloadOutput =
    refusals.length > 0
      ? { ok: false, variant: VARIANT, measurement, refusals }
      : {
          ok: true,
          variant: VARIANT,
          measurement,
          results: JSON.parse(checkAggregatesOnly(computeJointResults(data))),
        };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((err: unknown) => {
  const e = err as { code?: string; message?: string };
  process.stdout.write(
    `${JSON.stringify({ ok: false, variant: VARIANT, error: { code: e.code ?? 'WORKLOAD_FAILED', message: e.message ?? String(err) } })}\n`,
  );
  process.exit(1);
});
