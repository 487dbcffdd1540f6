/**
 * Faults against the real stack (issue 9; docs/reliability.md "Faults"): the real host and the real enclave bundle,
 * real filesystems, real processes. No injected filesystem, no mocks.
 *
 * - Disk full: the state directory and the audit log sit on a small tmpfs; keys are created and used until the
 *   filesystem is full (STORE_FULL), then used until the audit log cannot grow (AUDIT_UNAVAILABLE, fail closed for
 *   the run); after growing the filesystem and restarting the host everything acknowledged decrypts, and
 *   `ekms audit verify` reports first the torn tail, then one chain across both runs.
 * - Permission denied: the blob directory is made immutable (`chattr +i`, EPERM even for root) mid-run: writes fail
 *   with STORE_WRITE_FAILED, reads keep working, and writes work again once it is mutable.
 * - Host restart: graceful (in-process host, twice over one state directory), and a SIGKILLed `ekms start` process
 *   whose enclave must not outlive it.
 *
 * The tmpfs and chattr parts need root (CAP_SYS_ADMIN, CAP_LINUX_IMMUTABLE) and an ext4-like tmpdir; the SIGKILL
 * part reads /proc. Each is skipped, with the reason printed, where that is not available.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EkmsClient } from '../../client/sdk.js';
import { AUDIT_LOG_FILE } from '../../host/audit-sink.js';
import type { Host } from '../../host/host.js';
import { EkmsError } from '../../shared/errors.js';
import { jsonOf, runCli } from '../helpers/cli-service.js';
import { connectProfile, connectTo } from '../helpers/connect.js';
import { failure } from '../helpers/outcome.js';
import { CLI, startTestHost } from '../helpers/service.js';

const ENC = new TextEncoder();
const DEC = new TextDecoder();

/**
 * Size of the tmpfs of the disk-full test: 44 keys with two ciphertexts each fit (measured: 24 KiB after start,
 * then a 4 KiB page per key record plus ~1.2 KiB of audit lines per key).
 */
const TMPFS_SIZE = '256k';
const TMPFS_GROWN = '4m';

// ------------------------------------------------------------------------------------------ environment probes

function errorText(err: unknown): string {
  const e = err as { stderr?: Buffer | string; message?: string } | null;
  const stderr = String(e?.stderr ?? '').trim();
  return stderr !== '' ? stderr : String(e?.message ?? err);
}

/** Why a tmpfs cannot be mounted here (null: it can). */
function probeTmpfs(): string | null {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  const dir = mkdtempSync(join(tmpdir(), 'ekms-tmpfs-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    return `mount -t tmpfs failed (needs root / CAP_SYS_ADMIN; uid ${process.getuid?.()}): ${errorText(err)}`;
  }
  execFileSync('umount', [dir], { stdio: 'pipe' });
  rmSync(dir, { recursive: true, force: true });
  return null;
}

/** Why `chattr +i` cannot make a directory under tmpdir() unwritable for this process (null: it can). */
function probeChattr(): string | null {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  const dir = mkdtempSync(join(tmpdir(), 'ekms-chattr-probe-'));
  try {
    execFileSync('chattr', ['+i', dir], { stdio: 'pipe' });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    return `chattr +i ${tmpdir()} failed (needs CAP_LINUX_IMMUTABLE and a filesystem with inode flags, e.g. ext4): ${errorText(err)}`;
  }
  try {
    writeFileSync(join(dir, 'x'), '');
    return 'chattr +i did not stop this process from creating a file in the directory';
  } catch {
    return null;
  } finally {
    execFileSync('chattr', ['-i', dir], { stdio: 'pipe' });
    rmSync(dir, { recursive: true, force: true });
  }
}

const tmpfsSkip = probeTmpfs();
const chattrSkip = probeChattr();
const procSkip = readdirSafe('/proc').includes('self') ? null : 'no /proc to find the enclave process';
for (const [what, reason] of [
  ['disk full (tmpfs)', tmpfsSkip],
  ['permission denied (chattr +i)', chattrSkip],
  ['host SIGKILL (/proc)', procSkip],
] as const) {
  if (reason !== null) console.warn(`faults.test.ts: skipping "${what}": ${reason}`);
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

// ------------------------------------------------------------------------------------------------- helpers

interface Acked {
  readonly keyId: string;
  readonly version: number;
  readonly blob: Uint8Array;
  readonly plaintext: string;
}

async function encryptAcked(client: EkmsClient, keyId: string, plaintext: string): Promise<Acked> {
  const r = await client.encrypt(keyId, ENC.encode(plaintext), { k: keyId });
  return { keyId, version: r.keyVersion, blob: r.ciphertextBlob, plaintext };
}

/** Every acknowledged ciphertext decrypts to its plaintext under the version that made it. */
async function expectAllDecrypt(client: EkmsClient, acked: readonly Acked[]): Promise<void> {
  for (const a of acked) {
    const d = await client.decrypt(a.blob, { k: a.keyId });
    expect(DEC.decode(d.plaintext)).toBe(a.plaintext);
    expect(d.keyVersion).toBe(a.version);
  }
}

/** The error an operation fails with (the test fails if it succeeds or throws something untyped). */

/** Every key id the service lists, sorted (all pages). */
async function listedKeyIds(client: EkmsClient): Promise<string[]> {
  const ids: string[] = [];
  let marker: string | null = null;
  do {
    const page = await client.listKeys(marker === null ? {} : { marker });
    ids.push(...page.keys.map((k) => k.keyId));
    marker = page.nextMarker;
  } while (marker !== null);
  return ids.sort();
}

/** Files the blob store left from an interrupted put (`.<name>.<16 hex>.tmp`, host/blob-store.ts). */
function tempFiles(stateDir: string): string[] {
  return readdirSync(stateDir).filter((f) => f.startsWith('.'));
}

/** A client profile carrying an in-process host's trust, for `ekms audit verify --profile`. */
function writeProfile(dir: string, host: Host): string {
  const path = join(dir, 'profile.json');
  const profile = {
    version: 1,
    endpoint: host.endpoint,
    attestor: 'sim-nitro',
    trust: host.trust,
    admin: { name: 'admin', publicKey: '00', keyFile: 'admin.key' },
  };
  writeFileSync(path, JSON.stringify(profile));
  return path;
}

/** What `ekms audit verify --json` prints (docs/audit.md §4), the fields these tests look at. */
interface AuditVerifyDoc {
  readonly ok: boolean;
  readonly code?: string;
  readonly message?: string;
  readonly lines?: number;
  readonly events?: number;
  readonly boots?: readonly unknown[];
  readonly unsealed?: number;
  readonly abandoned?: number;
  readonly recovered?: number;
  readonly keys?: Readonly<Record<string, { allowed: number; denied: number; error: number }>>;
}

/** `ekms audit verify FILE --profile PROFILE --json` through the built CLI. */
async function auditVerify(
  file: string,
  profile: string,
): Promise<{ exit: number | null; doc: AuditVerifyDoc }> {
  const r = await runCli(['audit', 'verify', file, '--profile', profile, '--json'], { timeoutMs: 60_000 });
  return { exit: r.code, doc: jsonOf(r) as unknown as AuditVerifyDoc };
}

/**
 * The audit file is one chain across two boots: the second continued from the sealed head, the first run's records
 * after its last checkpoint in the file (`afterCheckpoint`) are reported as abandoned — or, had the first run sealed
 * a head whose line never reached the file, that checkpoint is recovered from the boot record and nothing is
 * abandoned — and nothing is left unsigned.
 */
async function expectOneChainOfTwoBoots(
  file: string,
  profile: string,
  afterCheckpoint: number,
): Promise<void> {
  const verified = await auditVerify(file, profile);
  expect(verified.exit).toBe(0);
  expect(verified.doc.ok).toBe(true);
  expect(verified.doc.boots).toHaveLength(2);
  expect(verified.doc.unsealed).toBe(0);
  expect([
    { abandoned: afterCheckpoint, recovered: 0 },
    { abandoned: 0, recovered: 1 },
  ]).toContainEqual({ abandoned: verified.doc.abandoned, recovered: verified.doc.recovered });
}

/** The audit file as it is: its bytes, whether it ends inside a line, how many whole lines follow the last checkpoint. */
function auditTail(file: string): { torn: boolean; afterCheckpoint: number; bytes: Buffer } {
  const bytes = readFileSync(file);
  const keep = bytes.lastIndexOf(0x0a) + 1;
  const lines = bytes.subarray(0, keep).toString('utf8').split('\n');
  lines.pop();
  let last = -1;
  lines.forEach((line, i) => {
    if ((JSON.parse(line) as { kind?: unknown }).kind === 'checkpoint') last = i;
  });
  return {
    torn: keep < bytes.length,
    afterCheckpoint: lines.length - 1 - last,
    bytes,
  };
}

interface AuditRecordView {
  readonly seq: number;
  readonly kind: string;
  readonly reason?: string;
  readonly operation?: string;
  readonly keyId?: string | null;
  readonly outcome?: string;
  readonly code?: string | null;
}

/** The complete records of an audit file (a line the host is still writing is left out). */
function auditRecords(file: string): AuditRecordView[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  lines.pop();
  return lines.map((l) => JSON.parse(l) as AuditRecordView);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until the enclave's periodic checkpoint (a 5 s timer when events followed the last checkpoint, enclave/main.ts;
 * reason "interval") follows the `events` event records about `keys` written after seq `after`. Right after it the next
 * periodic checkpoint, which stores the sealed head in the blob directory, is ~5 s away: a fault window on the blob
 * directory opened now does not contain one.
 */
async function untilCheckpointAfter(
  file: string,
  after: number,
  keys: readonly string[],
  events: number,
): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const records = auditRecords(file).filter((r) => r.seq > after);
    const ours = records.filter((r) => r.kind === 'event' && keys.includes(r.keyId ?? '')).length;
    const last = records.at(-1);
    if (ours >= events && last?.kind === 'checkpoint' && last.reason === 'interval') return;
    if (Date.now() > deadline) throw new Error(`no periodic audit checkpoint after seq ${after} within 30 s`);
    await sleep(20);
  }
}

// --------------------------------------------------------------------------------------------- disk full

describe.skipIf(tmpfsSkip !== null)('disk full: state directory and audit log on a real tmpfs', () => {
  let dir: string;
  let mnt: string;
  let mounted = false;
  let host: Host | undefined;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ekms-full-'));
    mnt = join(dir, 'fs');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_SIZE},mode=0700`, 'tmpfs', mnt], {
      stdio: 'pipe',
    });
    mounted = true;
  });

  afterAll(async () => {
    try {
      await host?.close();
    } finally {
      if (mounted) {
        try {
          execFileSync('umount', [mnt], { stdio: 'pipe' });
        } catch {
          // Still busy (a process of a failed run holds a file): detach it, so that the directory can go.
          execFileSync('umount', ['-l', mnt], { stdio: 'pipe' });
        }
      }
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('STORE_FULL, then AUDIT_UNAVAILABLE for the run; nothing acknowledged is lost and the audit log tells what happened', async () => {
    // The audit log is `audit.jsonl` beside the blob directory (host/storage-server.ts): both on the tmpfs. The
    // simulated CA stays outside, so that both runs' evidence verifies under one profile.
    const stateDir = join(mnt, 'state');
    const auditFile = join(mnt, AUDIT_LOG_FILE);
    const simulatedCaFile = join(dir, 'sim-ca.json');
    host = await startTestHost({ stateDir, simulatedCaFile });
    const profile = writeProfile(dir, host);
    const client = await connectTo(host, { timeoutMs: 20_000 });

    // 1. Create keys and encrypt until an operation fails.
    const keys: string[] = [];
    const acked: Acked[] = [];
    let full: EkmsError | undefined;
    for (let i = 0; i < 1_000 && full === undefined; i++) {
      try {
        const { keyId } = await client.createKey({});
        keys.push(keyId);
        for (let j = 0; j < 2; j++) acked.push(await encryptAcked(client, keyId, `key ${i} secret ${j}`));
      } catch (err) {
        if (!(err instanceof EkmsError)) throw err;
        full = err;
      }
    }
    // The blob store fills first: every CreateKey takes a new 4 KiB page (its key record, then a temp copy of the
    // manifest), the audit log one page per ~3 keys. The failing put is the key record or the manifest, whichever
    // found no page (measured: the manifest at 256 KiB). Retriable, as designed: it can succeed once there is space.
    // The one other order (about one CreateKey in 5 s): the enclave's periodic checkpoint found no page for the
    // sealed audit head first; then the log broke for the run and the CreateKey was refused before it acted.
    const headWriteFirst = full?.code === 'AUDIT_UNAVAILABLE';
    if (!headWriteFirst) {
      expect(full?.code).toBe('STORE_FULL');
      expect(full?.message).toMatch(/ENOSPC at write/);
    }
    expect(full?.retriable).toBe(true);
    expect(keys.length).toBeGreaterThanOrEqual(5);
    expect(tempFiles(stateDir)).toEqual([]);

    // 2. Existing keys keep working while the disk is full: a decrypt writes no blob, only an audit line, and the
    // audit file's last page still has room — until it has not. The append that hits ENOSPC breaks the host's
    // sink and the enclave's log for the run (docs/audit.md §2); the request whose line it was had already been
    // answered (lines are chained and sent before the answer, their fsync is not awaited), every later one is
    // refused with AUDIT_UNAVAILABLE: no key use without an audit record.
    let served = 0;
    let broken: EkmsError | undefined = headWriteFirst ? full : undefined;
    for (let n = 0; n < 5_000 && broken === undefined; n++) {
      const a = acked[n % acked.length]!;
      try {
        const d = await client.decrypt(a.blob, { k: a.keyId });
        expect(DEC.decode(d.plaintext)).toBe(a.plaintext);
        served += 1;
      } catch (err) {
        if (!(err instanceof EkmsError)) throw err;
        broken = err;
      }
    }
    expect(broken?.code).toBe('AUDIT_UNAVAILABLE');
    expect(broken?.retriable).toBe(true);
    expect(served).toBeLessThan(5_000);

    // 3. Fail closed for the run: space alone does not repair the log (the sink refuses every append after a failed
    // write until it is reopened, and the enclave's chain is broken), so a key use is still refused and the file
    // does not change.
    execFileSync('mount', ['-o', `remount,size=${TMPFS_GROWN}`, mnt], { stdio: 'pipe' });
    const before = readFileSync(auditFile);
    const still = await failure(client.decrypt(acked[0]!.blob, { k: acked[0]!.keyId }));
    expect(still.code).toBe('AUDIT_UNAVAILABLE');
    // Nor does it act unaudited: a CreateKey is refused before it runs (a retry would otherwise create keys that no
    // record shows; step 5 lists exactly the acknowledged keys).
    const unaudited = await failure(client.createKey({}));
    expect(unaudited.code).toBe('AUDIT_UNAVAILABLE');
    expect(readFileSync(auditFile).equals(before)).toBe(true);
    client.close();
    await host.close();
    host = undefined;

    // 4. The audit file as the failed run left it. The ENOSPC append wrote what fit in the last page, so the file
    // normally ends inside a line, and the verifier refuses it as truncated (AUDIT_TRUNCATED, "ends inside a
    // line"). Had the log broken on a periodic checkpoint's head write instead (the 5 s timer firing while the
    // disk was full), the file would end with a whole line and verify, its tail unsealed.
    const torn = auditTail(auditFile);
    const first = await auditVerify(auditFile, profile);
    if (torn.torn) {
      expect(first.exit).toBe(1);
      expect(first.doc).toMatchObject({ ok: false, code: 'AUDIT_TRUNCATED' });
      expect(first.doc.message).toMatch(/ends inside a line/);
    } else {
      expect(first.exit).toBe(0);
      expect(first.doc).toMatchObject({ ok: true, unsealed: torn.afterCheckpoint, abandoned: 0 });
    }

    // 5. A new host over the same state directory: its sink cuts the torn line (never acknowledged: its fsync did
    // not complete), the enclave continues the chain from its sealed head, and everything acknowledged is there.
    host = await startTestHost({ stateDir, simulatedCaFile });
    const after = readFileSync(auditFile);
    const keep = torn.bytes.lastIndexOf(0x0a) + 1;
    expect(after.subarray(0, keep).equals(torn.bytes.subarray(0, keep))).toBe(true);
    expect(after.subarray(keep).toString('utf8')).toMatch(/^\{"v":1,"seq":\d+,"time":"[^"]+","kind":"boot"/);
    const again = await connectTo(host, { timeoutMs: 20_000 });
    await expectAllDecrypt(again, acked);
    // Nothing half-written is used: the service lists exactly the acknowledged keys. The failed CreateKey may have
    // left its key record (it failed at the manifest, which alone makes a key exist): that record is ignored.
    const listed = await listedKeyIds(again);
    expect(listed).toEqual([...keys].sort());
    const orphans = readdirSync(stateDir)
      .filter((f) => f.startsWith('key.'))
      .map((f) => f.slice('key.'.length))
      .filter((id) => !listed.includes(id));
    expect(orphans.length).toBeLessThanOrEqual(1);
    for (const id of orphans) expect((await failure(again.describeKey(id))).code).toBe('KEY_NOT_FOUND');
    expect(tempFiles(stateDir)).toEqual([]);
    // And with space the service works again.
    const { keyId } = await again.createKey({});
    await expectAllDecrypt(again, [await encryptAcked(again, keyId, 'after the disk was grown')]);
    again.close();
    await host.close();
    host = undefined;

    // 6. One chain across both runs. The second boot continued from the sealed head: normally the latest checkpoint
    // in the file, so the first run's records after it are reported as abandoned (chained but never signed); if
    // the first run had sealed a head whose line never reached the file, the verifier recovers that checkpoint
    // from the boot record instead and nothing is abandoned.
    await expectOneChainOfTwoBoots(auditFile, profile, torn.afterCheckpoint);
  }, 120_000);
});

// ------------------------------------------------------------------------------------- permission denied

describe.skipIf(chattrSkip !== null)('permission denied: the blob directory made immutable mid-run', () => {
  let dir: string;
  let stateDir: string;
  let immutable = false;
  let host: Host | undefined;

  const setImmutable = (on: boolean): void => {
    execFileSync('chattr', [on ? '+i' : '-i', stateDir], { stdio: 'pipe' });
    immutable = on;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ekms-eperm-'));
    stateDir = join(dir, 'state');
    host = await startTestHost({ stateDir, simulatedCaFile: join(dir, 'sim-ca.json') });
  }, 60_000);

  afterAll(async () => {
    if (immutable) setImmutable(false);
    await host?.close();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('writes fail with STORE_WRITE_FAILED, reads keep working, and writes work again afterwards', async () => {
    const h = host!;
    const auditFile = join(dir, AUDIT_LOG_FILE);
    const profile = writeProfile(dir, h);
    const client = await connectTo(h, { timeoutMs: 20_000 });
    const start = auditRecords(auditFile).at(-1)!.seq;
    const keys: string[] = [];
    const acked: Acked[] = [];
    for (let i = 0; i < 2; i++) {
      const { keyId } = await client.createKey({});
      keys.push(keyId);
      for (let j = 0; j < 2; j++) acked.push(await encryptAcked(client, keyId, `key ${i} secret ${j}`));
    }
    const [rotated] = keys as [string, string];
    // The sealed audit head lives in the blob directory too: a periodic checkpoint inside the window would fail and
    // break the audit log for the run. Open the window right after one.
    await untilCheckpointAfter(auditFile, start, keys, 6);
    const files = readdirSync(stateDir).sort();

    setImmutable(true);
    try {
      // As root, chmod does not stop a write; the immutable flag does (EPERM at the temp file's open).
      const create = await failure(client.createKey({}));
      expect(create.code).toBe('STORE_WRITE_FAILED');
      expect(create.retriable).toBe(true);
      expect(create.message).toMatch(/EPERM at open/);
      const rotate = await failure(client.rotateKey(rotated));
      expect(rotate.code).toBe('STORE_WRITE_FAILED');
      // Reads, and operations that write no blob, keep working.
      await expectAllDecrypt(client, acked);
      acked.push(await encryptAcked(client, rotated, 'encrypted while the directory was immutable'));
      expect((await client.describeKey(rotated)).currentVersion).toBe(1);
      expect(readdirSync(stateDir).sort()).toEqual(files);
    } finally {
      setImmutable(false);
    }

    // Writable again: the same operations succeed, and the failed ones left nothing behind.
    const { keyId } = await client.createKey({});
    keys.push(keyId);
    acked.push(await encryptAcked(client, keyId, 'created after the directory was writable again'));
    expect((await client.rotateKey(rotated)).currentVersion).toBe(2);
    acked.push(await encryptAcked(client, rotated, 'under the second version'));
    await expectAllDecrypt(client, acked);
    expect(await listedKeyIds(client)).toEqual([...keys].sort());
    expect(tempFiles(stateDir)).toEqual([]);
    client.close();
    await h.close();
    host = undefined;

    // The audit log (beside the directory, never immutable) recorded both refusals with their code, and verifies.
    const failed = auditRecords(auditFile).filter((r) => r.kind === 'event' && r.outcome === 'error');
    expect(failed.map((r) => [r.operation, r.code, r.keyId])).toEqual([
      ['createKey', 'STORE_WRITE_FAILED', null],
      ['rotateKey', 'STORE_WRITE_FAILED', rotated],
    ]);
    const verified = await auditVerify(auditFile, profile);
    expect(verified.exit).toBe(0);
    expect(verified.doc).toMatchObject({ ok: true, unsealed: 0, abandoned: 0, recovered: 0 });
    expect(verified.doc.keys?.[rotated]?.error).toBe(1);
  }, 90_000);
});

// ------------------------------------------------------------------------------------------- host restart

describe('host restart over the same state directory', () => {
  let dir: string;
  let host: Host | undefined;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ekms-restart-'));
  });

  afterAll(async () => {
    await host?.close();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('graceful: every ciphertext decrypts, and the audit log is one chain across both runs', async () => {
    const stateDir = join(dir, 'state');
    const simulatedCaFile = join(dir, 'sim-ca.json');
    const auditFile = join(dir, AUDIT_LOG_FILE);
    /** Allowed audit events per key id, as the verifier should count them. */
    const uses = new Map<string, number>();
    const use = (keyId: string): void => void uses.set(keyId, (uses.get(keyId) ?? 0) + 1);

    host = await startTestHost({ stateDir, simulatedCaFile });
    const profile = writeProfile(dir, host);
    let client = await connectTo(host, { timeoutMs: 20_000 });
    const keys: string[] = [];
    const acked: Acked[] = [];
    for (let i = 0; i < 3; i++) {
      const { keyId } = await client.createKey({});
      use(keyId);
      keys.push(keyId);
      acked.push(await encryptAcked(client, keyId, `key ${i} before the restart`));
      use(keyId);
    }
    const rotated = keys[0]!;
    expect((await client.rotateKey(rotated)).currentVersion).toBe(2);
    use(rotated);
    acked.push(await encryptAcked(client, rotated, 'under version 2'));
    use(rotated);
    client.close();
    await host.close();
    host = undefined;

    host = await startTestHost({ stateDir, simulatedCaFile });
    client = await connectTo(host, { timeoutMs: 20_000 });
    await expectAllDecrypt(client, acked);
    for (const a of acked) use(a.keyId);
    expect(acked.map((a) => a.version)).toEqual([1, 1, 1, 2]);
    expect((await client.describeKey(rotated)).currentVersion).toBe(2);
    use(rotated);
    expect(await listedKeyIds(client)).toEqual([...keys].sort());
    client.close();
    await host.close();
    host = undefined;

    // Both runs shut down cleanly: every record is signed, nothing abandoned, and every key use of both runs counted.
    const verified = await auditVerify(auditFile, profile);
    expect(verified.exit).toBe(0);
    expect(verified.doc).toMatchObject({ ok: true, unsealed: 0, abandoned: 0, recovered: 0 });
    expect(verified.doc.boots).toHaveLength(2);
    expect(verified.doc.keys).toEqual(
      Object.fromEntries([...uses].map(([k, n]) => [k, { allowed: n, denied: 0, error: 0 }])),
    );
  }, 90_000);
});

// ---------------------------------------------------------------------------------------------- host SIGKILL

/** State and parent of a process from /proc, or undefined if there is no such process. */
function procStat(pid: number): { state: string; ppid: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '?', ppid: Number(fields[1]) };
}

/** Running: exists and is neither a zombie (exited, not reaped yet) nor dead. */
function running(pid: number): boolean {
  const s = procStat(pid);
  return s !== undefined && s.state !== 'Z' && s.state !== 'X';
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

/** The enclave processes `pid` started (node …/enclave.mjs). */
function enclaveChildren(pid: number): number[] {
  return readdirSafe('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((p) => procStat(p)?.ppid === pid && cmdline(p).includes('enclave.mjs'));
}

/** Waits (bounded, generously) until `pid` no longer runs; returns whether it stopped. */
async function stops(pid: number): Promise<boolean> {
  const deadline = Date.now() + 20_000;
  while (running(pid) && Date.now() < deadline) await sleep(25);
  return !running(pid);
}

interface StartedService {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly enclavePid: number;
}

/**
 * `ekms start --data DATA --listen unix:…` as its own process, resolved once ready. Its TMPDIR is `tmp`, so that
 * the run directory a killed host cannot remove (host.ts: sockets, simulated CA) stays inside the test's directory.
 */
async function startService(data: string, tmp: string, socket: string): Promise<StartedService> {
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp };
  delete env['EKMS_PROFILE'];
  delete env['EKMS_DEBUG'];
  const child = spawn(
    process.execPath,
    [CLI, 'start', '--data', data, '--listen', `unix:${socket}`, '--log-level', 'error'],
    { cwd: tmp, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once('exit', (code, signal) => r({ code, signal })),
  );
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ekms start not ready after 60 s: ${err}`)), 60_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.split('\n').some((l) => l.includes('"ready"'))) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`ekms start exited (${code ?? signal}) before ready: ${err}`));
    });
  }).catch((e: unknown) => {
    child.kill('SIGKILL');
    throw e;
  });
  const enclaves = enclaveChildren(child.pid!);
  expect(enclaves).toHaveLength(1);
  return { child, exited, enclavePid: enclaves[0]! };
}

describe.skipIf(procSkip !== null)('host SIGKILL (ekms start as its own process)', () => {
  let dir: string;
  const started: StartedService[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ekms-hostkill-'));
  });

  afterAll(() => {
    for (const s of started) {
      for (const pid of [s.child.pid, s.enclavePid]) {
        if (pid !== undefined && running(pid)) process.kill(pid, 'SIGKILL');
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('the enclave does not outlive its host; a new host has everything acknowledged, and the audit log verifies', async () => {
    const data = join(dir, 'data');
    const tmp = join(dir, 'tmp');
    mkdirSync(tmp);
    const socket = join(dir, 'h.sock');
    const profile = join(data, 'profile.json');
    const auditFile = join(data, AUDIT_LOG_FILE);

    const first = await startService(data, tmp, socket);
    started.push(first);
    let client = await connectProfile(profile, { timeoutMs: 20_000 });
    const keys: string[] = [];
    const acked: Acked[] = [];
    for (let i = 0; i < 3; i++) {
      const { keyId } = await client.createKey({});
      keys.push(keyId);
      for (let j = 0; j < 2; j++) acked.push(await encryptAcked(client, keyId, `key ${i} secret ${j}`));
    }
    const rotated = keys[0]!;
    expect((await client.rotateKey(rotated)).currentVersion).toBe(2);
    acked.push(await encryptAcked(client, rotated, 'under version 2'));
    client.close();

    // SIGKILL the host: no shutdown handler runs. The enclave notices (its stdin pipe from the host reaches EOF,
    // and its storage channel closes: enclave/main.ts) and exits; it is then a zombie until init reaps it.
    first.child.kill('SIGKILL');
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
    const gone = await stops(first.enclavePid);
    expect(
      gone,
      `enclave ${first.enclavePid} still runs after its host was killed: ${JSON.stringify(procStat(first.enclavePid))} ${cmdline(first.enclavePid)}`,
    ).toBe(true);

    // The file as the crash left it: the first run's records after its last checkpoint (the boot checkpoint, unless
    // the 5 s timer fired meanwhile) are chained but unsigned. Lines the enclave had sent but the host had not yet
    // written would simply be missing: an unsigned tail can be dropped undetected (docs/audit.md §5).
    const crashed = auditTail(auditFile);
    const asLeft = await auditVerify(auditFile, profile);
    if (crashed.torn) {
      expect(asLeft.doc).toMatchObject({ ok: false, code: 'AUDIT_TRUNCATED' });
    } else {
      expect(asLeft.exit).toBe(0);
      expect(asLeft.doc).toMatchObject({ ok: true, unsealed: crashed.afterCheckpoint, abandoned: 0 });
      expect(asLeft.doc.boots).toHaveLength(1);
    }

    const second = await startService(data, tmp, socket);
    started.push(second);
    expect(second.enclavePid).not.toBe(first.enclavePid);
    client = await connectProfile(profile, { timeoutMs: 20_000 });
    await expectAllDecrypt(client, acked);
    expect((await client.describeKey(rotated)).currentVersion).toBe(2);
    expect(await listedKeyIds(client)).toEqual([...keys].sort());
    client.close();
    second.child.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });
    expect(await stops(second.enclavePid)).toBe(true);

    // One chain: the second boot continued from the sealed head, the first run's unsigned tail is reported as
    // abandoned (or, had its last checkpoint line been lost after the head was sealed, recovered), and the second
    // run, shut down cleanly, left nothing unsigned.
    await expectOneChainOfTwoBoots(auditFile, profile, crashed.afterCheckpoint);
  }, 120_000);
});
