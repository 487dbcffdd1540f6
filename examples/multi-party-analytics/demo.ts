/**
 * The multi-party analytics demo (issue 7; README in this folder): three hospitals pool their admissions data for
 * a joint analysis that none of them may see in the clear, through enclave-kms.
 *
 * Cast, each its own identity:
 * - the KMS: `ekms start` (the real CLI: host + simulated enclave), recording every frame it relays (--capture);
 * - the consortium operator: the KMS's first admin; registers the hospitals and creates one key per hospital;
 * - three hospitals: principals with role `user` and a `party` tag; each encrypts its CSV with the SDK and leaves
 *   the ciphertext on untrusted storage;
 * - the analytics workload: its own process and measurement (workload.ts), attested, receives the data keys
 *   wrapped to its recipient key; a modified build of it is refused.
 *
 * `runDemo` drives the story and returns a report (the e2e test checks it); `main` prints the narrative.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { loadProfile, profileConnectOptions } from '../../client/profile.js';
import { connect, type EkmsClient, type PrincipalCredentials } from '../../client/sdk.js';
import { parseTrafficCapture } from '../../host/capture.js';
import { EkmsError } from '../../shared/errors.js';
import { generateDatasets, PARTIES, type Party } from './datasets.js';
import type { WorkloadJob, WorkloadOutput } from './workload.js';

export interface DemoOptions {
  /** Working directory (KMS data dir, untrusted storage, capture); created if needed. */
  readonly dir: string;
  /** `bin/ekms.mjs` of this checkout. */
  readonly cli: string;
  /** The genuine analytics workload bundle, and a modified build of it. */
  readonly workload: string;
  readonly modifiedWorkload: string;
  /** Admissions per hospital (default 4000). */
  readonly rows?: number;
  /** Narrative sink (default: stdout). */
  readonly print?: (line: string) => void;
}

export interface DemoReport {
  readonly measurement: {
    readonly kms: string;
    readonly workload: string;
    readonly modifiedWorkload: string;
  };
  readonly keys: Readonly<Record<Party, string>>;
  readonly ciphertextFiles: Readonly<Record<Party, string>>;
  readonly crossPartyRefusals: ReadonlyArray<{ what: string; code: string; message: string }>;
  readonly modifiedWorkload: WorkloadOutput;
  readonly workload: WorkloadOutput;
  readonly leakScan: {
    readonly files: number;
    readonly bytes: number;
    readonly captureFrames: number;
    readonly hits: string[];
  };
  readonly audit: Record<string, unknown>;
  /** The datasets (plaintext), for the test to recompute the results; never written to disk. */
  readonly datasets: Readonly<Record<Party, string>>;
}

const DATASET = 'admissions-2025';

function ed25519(): PrincipalCredentials {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return { publicKey: new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })), privateKey };
}

function sha384File(path: string): string {
  return createHash('sha384').update(readFileSync(path)).digest('hex');
}

/** The key policy of one hospital's key (docs/key-policy.md). */
export function hospitalKeyPolicy(party: Party): string {
  return JSON.stringify({
    version: 1,
    statements: [
      // The operator administers the key (rotation, policy) but cannot use it: no Decrypt for role:admin.
      { sid: 'ConsortiumAdministers', effect: 'Allow', principals: ['role:admin'], actions: ['admin:*'] },
      {
        // Only this hospital encrypts and reads its own data, and only under its own party context.
        sid: 'OwnerUses',
        effect: 'Allow',
        principals: [party],
        actions: ['Encrypt', 'Decrypt', 'GenerateDataKey', 'DescribeKey'],
        conditions: {
          // biome-ignore lint/suspicious/noTemplateCurlyInString: key policy principal-tag reference syntax.
          context: { equals: { party: '${principal.tag.party}', dataset: DATASET } },
        },
      },
    ],
  });
}

/** The release policy: data keys go only to the analytics workload's measurement (simulated hardware here). */
export function releasePolicy(workloadMeasurement: string): string {
  return JSON.stringify({ version: 1, allowSimulated: true, measurements: [workloadMeasurement] });
}

async function codeOf(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof EkmsError) return { code: err.code, message: err.message };
    throw err;
  }
  return { code: 'NO_ERROR', message: 'the request succeeded' };
}

/** Starts `ekms start` and waits for its ready line. */
async function startKms(opts: DemoOptions, dataDir: string, capture: string) {
  const child = spawn(
    process.execPath,
    [
      opts.cli,
      'start',
      '--data',
      dataDir,
      '--listen',
      'ws://127.0.0.1:0',
      '--capture',
      capture,
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const ready = await new Promise<{ endpoint: string; measurement: string; profile: string }>(
    (resolvePromise, reject) => {
      let out = '';
      const timer = setTimeout(
        () => reject(new Error(`ekms start did not become ready in 60 s: ${stderr}`)),
        60_000,
      );
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        for (const line of out.split('\n')) {
          if (!line.includes('"ready"')) continue;
          clearTimeout(timer);
          resolvePromise(JSON.parse(line) as { endpoint: string; measurement: string; profile: string });
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`ekms start exited with ${code}: ${stderr}`));
      });
    },
  );
  return { child, ready };
}

function stopKms(child: ChildProcess): Promise<void> {
  return new Promise((resolvePromise) => {
    if (child.exitCode !== null) {
      resolvePromise();
      return;
    }
    child.once('exit', () => resolvePromise());
    child.kill('SIGTERM');
  });
}

/** Runs one build of the analytics workload as its own process. */
function runWorkload(bundle: string, jobFile: string): Promise<WorkloadOutput> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [bundle, jobFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-4000);
    });
    child.once('exit', () => {
      const line = out.trim().split('\n').pop() ?? '';
      try {
        resolvePromise(JSON.parse(line) as WorkloadOutput);
      } catch {
        reject(new Error(`the workload printed no result: ${out}${err}`));
      }
    });
  });
}

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return filesUnder(p);
    return e.isFile() ? [p] : [];
  });
}

/**
 * Searches every byte the untrusted side holds — the host's capture of all relayed frames and every file in the
 * KMS data dir and the untrusted storage — for the datasets' rows, raw, hex and base64.
 */
export function scanForPlaintext(dir: string, capture: string, datasets: Readonly<Record<Party, string>>) {
  const needles: Array<{ label: string; bytes: Buffer }> = [];
  for (const party of PARTIES) {
    const lines = datasets[party].split('\n').filter((l) => l !== '');
    // The header is shared by all parties and public; every row is a secret. Sample rows across the file.
    for (let i = 1; i < lines.length; i += Math.max(1, Math.floor(lines.length / 60))) {
      const row = Buffer.from(lines[i] as string);
      needles.push({ label: `${party} row ${i} (raw)`, bytes: row });
      needles.push({ label: `${party} row ${i} (hex)`, bytes: Buffer.from(row.toString('hex')) });
      needles.push({
        label: `${party} row ${i} (base64)`,
        bytes: Buffer.from(row.toString('base64').slice(0, 24)),
      });
    }
  }
  const files = filesUnder(dir);
  const hits: string[] = [];
  let bytes = 0;
  for (const f of files) {
    const content = readFileSync(f);
    bytes += content.length;
    for (const n of needles) if (content.includes(n.bytes)) hits.push(`${n.label} in ${f}`);
  }
  const frames = parseTrafficCapture(readFileSync(capture));
  return { files: files.length, bytes, captureFrames: frames.length, hits };
}

export async function runDemo(opts: DemoOptions): Promise<DemoReport> {
  const print = opts.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const dir = resolve(opts.dir);
  const kmsDir = join(dir, 'kms');
  const storage = join(dir, 'untrusted-storage');
  const capture = join(dir, 'host-capture.ekcp');
  mkdirSync(storage, { recursive: true });

  const workloadMeasurement = sha384File(opts.workload);
  const modifiedMeasurement = sha384File(opts.modifiedWorkload);
  const short = (m: string) => `${m.slice(0, 16)}…`;

  print('== enclave-kms: multi-party analytics ==');
  print(
    'Three hospitals want joint statistics over their admissions without showing each other a single row.',
  );
  print('');
  print(
    '1. The KMS starts (`ekms start`): a host process relays to an enclave that holds every key. The host',
  );
  print('   records every byte it relays (--capture), to show later that it learnt nothing.');
  const { child: kms, ready } = await startKms(opts, kmsDir, capture);
  let stopped = false;
  try {
    const { profile, dir: profileDir } = loadProfile(ready.profile);
    print(`   endpoint ${ready.endpoint}, enclave measurement ${short(ready.measurement)} (simulated Nitro)`);

    const operator = await connect(ready.endpoint, {
      ...profileConnectOptions(profile, profileDir),
      timeoutMs: 30_000,
    });
    print('');
    print(
      "2. The consortium operator (the KMS admin) verified the enclave's evidence, registers the hospitals and",
    );
    print("   creates one key per hospital. Each key's policy lets only its hospital use it, under its own");
    print(
      `   context; its release policy gives data keys only to the analytics workload ${short(workloadMeasurement)}.`,
    );
    const credentials = {} as Record<Party, PrincipalCredentials>;
    const keys = {} as Record<Party, string>;
    for (const party of PARTIES) {
      credentials[party] = ed25519();
      await operator.createPrincipal({
        name: party,
        publicKey: credentials[party].publicKey,
        roles: ['user'],
        tags: { party },
      });
      const key = await operator.createKey({
        description: `${party} admissions`,
        aliasName: `alias/${party}`,
        releasePolicy: releasePolicy(workloadMeasurement),
      });
      await operator.putKeyPolicy(key.keyId, hospitalKeyPolicy(party));
      keys[party] = key.keyId;
      print(`   ${party}: principal (role user, tag party=${party}), key ${key.keyId}`);
    }

    print('');
    print(
      '3. Each hospital encrypts its dataset with the SDK (envelope encryption: one data key per file, made by',
    );
    print('   the enclave) and leaves only the ciphertext on the untrusted storage.');
    const datasets = generateDatasets({ ...(opts.rows === undefined ? {} : { rows: opts.rows }) });
    const ciphertextFiles = {} as Record<Party, string>;
    const clients = {} as Record<Party, EkmsClient>;
    for (const party of PARTIES) {
      const c = await connect(ready.endpoint, {
        trust: profile.trust,
        principal: credentials[party],
        timeoutMs: 30_000,
      });
      clients[party] = c;
      const file = join(storage, `${party}.csv.ekms`);
      const encrypt = await c.encryptStream(keys[party], { encryptionContext: { party, dataset: DATASET } });
      await pipeline(
        Readable.from([Buffer.from(datasets[party])]),
        encrypt,
        createWriteStream(file, { mode: 0o600 }),
      );
      ciphertextFiles[party] = file;
      const rows = datasets[party].split('\n').length - 2;
      print(
        `   ${party}: ${rows} admissions, ${datasets[party].length} bytes → ${statSync(file).size} bytes of ciphertext`,
      );
    }

    print('');
    print("4. Nobody else can read a hospital's data:");
    const crossPartyRefusals: Array<{ what: string; code: string; message: string }> = [];
    const refuse = async (what: string, p: Promise<unknown>) => {
      const r = await codeOf(p);
      crossPartyRefusals.push({ what, ...r });
      print(`   - ${what}: ${r.code} (${r.message.slice(0, 110)})`);
    };
    const readFile = (c: EkmsClient, party: Party, context: Record<string, string>) =>
      pipeline(
        createReadStream(ciphertextFiles[party]),
        c.decryptStream({ encryptionContext: context }),
        async (source: AsyncIterable<Uint8Array>) => {
          for await (const piece of source) piece.fill(0);
        },
      );
    await refuse(
      "hospital-a reads hospital-b's file",
      readFile(clients['hospital-a'], 'hospital-b', { party: 'hospital-b', dataset: DATASET }),
    );
    await refuse(
      'hospital-a asks its own key for a data key under party=hospital-b',
      clients['hospital-a'].generateDataKey(keys['hospital-a'], {
        encryptionContext: { party: 'hospital-b', dataset: DATASET },
      }),
    );
    await refuse(
      "the operator (admin) reads hospital-c's file",
      readFile(operator, 'hospital-c', { party: 'hospital-c', dataset: DATASET }),
    );

    const job: WorkloadJob = {
      endpoint: ready.endpoint,
      trust: profile.trust,
      simulatedCaFile: join(kmsDir, 'sim-ca.json'),
      inputs: PARTIES.map((party) => ({
        party,
        file: ciphertextFiles[party],
        context: { party, dataset: DATASET },
      })),
    };
    const jobFile = join(dir, 'workload-job.json');
    writeFileSync(jobFile, `${JSON.stringify(job, null, 2)}\n`);

    print('');
    print(
      `5. A modified analytics build (it would also print raw rows), measurement ${short(modifiedMeasurement)}, attests`,
    );
    print('   and asks for the three data keys:');
    const modified = await runWorkload(opts.modifiedWorkload, jobFile);
    if (!modified.ok && 'refusals' in modified) {
      for (const r of modified.refusals) print(`   - ${r.party}: ${r.code} (${r.message.slice(0, 110)})`);
    } else {
      print(`   UNEXPECTED: ${JSON.stringify(modified).slice(0, 200)}`);
    }

    print('');
    print(
      `6. The genuine analytics workload, measurement ${short(workloadMeasurement)}, attests (its evidence binds its`,
    );
    print(
      '   X-Wing recipient key), receives each data key HPKE-wrapped to that key, decrypts inside and emits',
    );
    print('   aggregates only:');
    const genuine = await runWorkload(opts.workload, jobFile);
    if (genuine.ok) printResults(print, genuine.results as ResultsView);
    else print(`   UNEXPECTED: ${JSON.stringify(genuine).slice(0, 300)}`);

    for (const party of PARTIES) clients[party].close();
    operator.close();
    // A clean stop signs the audit log's tail (shutdown checkpoint) and flushes the capture.
    await stopKms(kms);
    stopped = true;

    print('');
    print(
      "7. What the untrusted side holds: the host's capture of every relayed frame, the sealed state, the audit",
    );
    print("   log and the ciphertext files. Searched for the hospitals' rows (raw, hex, base64):");
    const leakScan = scanForPlaintext(dir, capture, datasets);
    print(
      `   ${leakScan.files} files, ${leakScan.bytes} bytes, ${leakScan.captureFrames} captured frames: ${leakScan.hits.length === 0 ? 'no row found' : `FOUND ${leakScan.hits.length}: ${leakScan.hits.slice(0, 3).join('; ')}`}`,
    );

    print('');
    print(`8. The audit trail (\`ekms audit verify ${join(kmsDir, 'audit.jsonl')}\`):`);
    const verify = spawnSync(
      process.execPath,
      [opts.cli, 'audit', 'verify', join(kmsDir, 'audit.jsonl'), '--profile', ready.profile, '--json'],
      { encoding: 'utf8' },
    );
    const audit = JSON.parse(verify.stdout) as Record<string, unknown>;
    printAudit(print, audit, keys);
    print('');
    print(`Everything is in ${dir}.`);
    return {
      measurement: {
        kms: ready.measurement,
        workload: workloadMeasurement,
        modifiedWorkload: modifiedMeasurement,
      },
      keys,
      ciphertextFiles,
      crossPartyRefusals,
      modifiedWorkload: modified,
      workload: genuine,
      leakScan,
      audit,
      datasets,
    };
  } finally {
    if (!stopped) await stopKms(kms);
  }
}

interface ResultsView {
  admissions: number;
  distinctPatients: number;
  patientsAtAllHospitals: number;
  patientsAtExactlyTwo: number;
  byDiagnosis: Array<{
    code: string;
    name: string;
    admissions: number;
    patients: number;
    meanLengthOfStayDays: number | null;
    readmissionRate30d: number | null;
    meanCostEur: number | null;
  }>;
  readmissionRate: { patientsAtSeveralHospitals: number | null; patientsAtOneHospital: number | null };
  minGroupPatients: number;
}

function printResults(print: (line: string) => void, r: ResultsView): void {
  const pct = (x: number | null) => (x === null ? 'suppressed' : `${(x * 100).toFixed(1)} %`);
  print(`   ${r.admissions} admissions of ${r.distinctPatients} distinct patients`);
  print(
    `   patients treated at all three hospitals: ${r.patientsAtAllHospitals}; at exactly two: ${r.patientsAtExactlyTwo}`,
  );
  print(
    `   30-day readmission: ${pct(r.readmissionRate.patientsAtSeveralHospitals)} for patients seen at several hospitals, ${pct(r.readmissionRate.patientsAtOneHospital)} for the others`,
  );
  print('   diagnosis                         admissions  patients  mean stay  readmitted  mean cost');
  for (const d of r.byDiagnosis) {
    print(
      `   ${`${d.code} ${d.name}`.padEnd(34)}${String(d.admissions).padStart(10)}${String(d.patients).padStart(10)}${(d.meanLengthOfStayDays === null ? '—' : `${d.meanLengthOfStayDays.toFixed(1)} d`).padStart(11)}${pct(d.readmissionRate30d).padStart(12)}${(d.meanCostEur === null ? '—' : `€${d.meanCostEur}`).padStart(11)}`,
    );
  }
  print(`   (groups of fewer than ${r.minGroupPatients} patients would be suppressed)`);
}

function printAudit(
  print: (line: string) => void,
  audit: Record<string, unknown>,
  keys: Record<Party, string>,
): void {
  if (audit['ok'] !== true) {
    print(`   VERIFICATION FAILED: ${String(audit['code'])} ${String(audit['message'])}`);
    return;
  }
  print(
    `   verified: ${String(audit['events'])} events, ${String(audit['checkpoints'])} signed checkpoints, chain intact`,
  );
  const counts = (c: unknown) => {
    const x = c as { allowed?: number; denied?: number; error?: number };
    return `${x.allowed ?? 0} allowed, ${x.denied ?? 0} denied${x.error ? `, ${x.error} errors` : ''}`;
  };
  const byKey = (audit['keys'] ?? {}) as Record<string, unknown>;
  for (const party of PARTIES) print(`   key ${party}: ${counts(byKey[keys[party]])}`);
  const byPrincipal = (audit['principals'] ?? {}) as Record<string, unknown>;
  for (const [p, c] of Object.entries(byPrincipal)) print(`   ${p}: ${counts(c)}`);
}
