/**
 * `ekms audit verify FILE` through the built CLI (design §5 contract: one JSON document with --json; exit 0 verified,
 * 1 verification failed, 2 usage), on logs the test writes with the enclave's AuditLog and simulated evidence.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EnclaveTrust } from '../../client/session.js';
import { parseAuditLine } from '../../shared/audit.js';
import { FakeHost, MEASUREMENT, newRun, recordSample, simulatedNitro } from '../helpers/audit-fixtures.js';
import { CLI } from '../helpers/service.js';

const run = promisify(execFile);
let dir: string;
let trust: EnclaveTrust;
let lines: string[];

/** Runs the CLI in `dir` (no ./.ekms there) without $EKMS_PROFILE. */
async function ekms(
  args: string[],
  json = true,
): Promise<{ code: number; out: string; json: Record<string, unknown> }> {
  const env = { ...process.env };
  delete env['EKMS_PROFILE'];
  try {
    const { stdout } = await run(process.execPath, [CLI, ...args, ...(json ? ['--json'] : [])], {
      cwd: dir,
      env,
    });
    return { code: 0, out: stdout, json: json ? (JSON.parse(stdout) as Record<string, unknown>) : {} };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return {
      code: e.code,
      out: e.stdout,
      json: json ? (JSON.parse(e.stdout) as Record<string, unknown>) : {},
    };
  }
}

function writeLog(name: string, content: readonly string[]): string {
  const path = join(dir, name);
  writeFileSync(path, content.map((l) => `${l}\n`).join(''));
  return path;
}

function writeProfile(name: string, t: EnclaveTrust): string {
  const path = join(dir, name);
  const profile = {
    version: 1,
    endpoint: 'ws://127.0.0.1:1',
    attestor: 'sim-nitro',
    trust: t,
    admin: { name: 'admin', publicKey: '00', keyFile: 'admin.key' },
  };
  writeFileSync(path, JSON.stringify(profile));
  return path;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ekms-audit-cli-'));
  const sim = await simulatedNitro();
  trust = sim.trust;
  const host = new FakeHost();
  const log = await host.open(await newRun(sim.attestor), { checkpointEvery: 4 });
  await recordSample(log, 9);
  await log.close();
  lines = host.lines;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ekms audit verify', () => {
  it('verifies a log against the profile: summary per key and principal, head, boots', async () => {
    const file = writeLog('good.jsonl', lines);
    const profile = writeProfile('profile.json', trust);
    const r = await ekms(['audit', 'verify', file, '--profile', profile]);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({
      ok: true,
      file,
      trust: profile,
      events: 9,
      unsealed: 0,
      bootEvidence: 'checked',
      keys: { 'key-0': { allowed: 3, denied: 0, error: 0 }, 'key-1': { allowed: 0, denied: 3, error: 0 } },
      principals: { p0: expect.any(Object), p1: expect.any(Object) },
      boots: [{ seq: 0, type: 'nitro', measurement: MEASUREMENT, simulated: true }],
    });
    expect((r.json['head'] as { seq: number }).seq).toBe(lines.length - 1);
  });

  it('prints a human summary without --json', async () => {
    const file = writeLog('human.jsonl', lines);
    const r = await ekms(['audit', 'verify', file, '--profile', writeProfile('p-human.json', trust)], false);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`verified ${file}: ${lines.length} records, 9 events`);
    expect(r.out).toContain('key-0: allowed 3, denied 0, error 0');
    expect(r.out).toContain('--expect-head');
  });

  it('exit 1 with AUDIT_CHAIN_BROKEN for an edited record', async () => {
    const edited = [...lines];
    edited[4] = edited[4]!.replace('"requestId":"r', '"requestId":"x');
    const r = await ekms([
      'audit',
      'verify',
      writeLog('edited.jsonl', edited),
      '--profile',
      writeProfile('p2.json', trust),
    ]);
    expect(r).toMatchObject({ code: 1, json: { ok: false, code: 'AUDIT_CHAIN_BROKEN' } });
    expect(r.json['message']).toContain('seq 5');
  });

  it('exit 1 with AUDIT_BOOT_UNTRUSTED without a profile (simulated root) or with another measurement', async () => {
    const file = writeLog('noprofile.jsonl', lines);
    const none = await ekms(['audit', 'verify', file]);
    expect(none).toMatchObject({ code: 1, json: { ok: false, code: 'AUDIT_BOOT_UNTRUSTED' } });
    expect(none.json['message']).toContain('--profile');
    const other = await ekms([
      'audit',
      'verify',
      file,
      '--profile',
      writeProfile('p3.json', { ...trust, measurement: 'cd'.repeat(48) }),
    ]);
    expect(other).toMatchObject({ code: 1, json: { ok: false, code: 'AUDIT_BOOT_UNTRUSTED' } });
  });

  it('--expect-head detects a truncation; --require-sealed refuses an unsigned tail', async () => {
    const profile = writeProfile('p4.json', trust);
    const full = await ekms(['audit', 'verify', writeLog('full.jsonl', lines), '--profile', profile]);
    const head = full.json['head'] as { seq: number; hash: string };
    const cut = writeLog('cut.jsonl', lines.slice(0, lines.length - 1));
    const unsealed = await ekms(['audit', 'verify', cut, '--profile', profile]);
    expect(unsealed).toMatchObject({ code: 0, json: { ok: true, unsealed: 1 } });
    const truncated = await ekms([
      'audit',
      'verify',
      cut,
      '--profile',
      profile,
      '--expect-head',
      `${head.seq}:${head.hash}`,
    ]);
    expect(truncated).toMatchObject({ code: 1, json: { ok: false, code: 'AUDIT_TRUNCATED' } });
    const sealed = await ekms(['audit', 'verify', cut, '--profile', profile, '--require-sealed']);
    expect(sealed).toMatchObject({ code: 1, json: { ok: false, code: 'AUDIT_TAIL_UNSEALED' } });
  });

  it('exit 1 with AUDIT_SIGNATURE_INVALID for a forged checkpoint', async () => {
    const forged = [...lines];
    const i = forged.length - 1;
    const r0 = parseAuditLine(forged[i]!);
    if (r0.kind !== 'checkpoint') throw new Error('last line is not a checkpoint');
    forged[i] = forged[i]!.replace(
      `"signature":"${r0.signature.slice(0, 2)}`,
      `"signature":"${r0.signature[0] === 'a' ? 'b' : 'a'}${r0.signature[1]}`,
    );
    const r = await ekms([
      'audit',
      'verify',
      writeLog('forged.jsonl', forged),
      '--profile',
      writeProfile('p5.json', trust),
    ]);
    expect(r).toMatchObject({ code: 1, json: { ok: false, code: 'AUDIT_SIGNATURE_INVALID' } });
  });

  it('usage errors exit 2; a missing file is IO_ERROR (exit 1)', async () => {
    const file = writeLog('u.jsonl', lines);
    expect(await ekms(['audit', 'verify', file, '--expect-head', 'nope'])).toMatchObject({
      code: 2,
      json: { ok: false, code: 'USAGE_ERROR' },
    });
    expect(await ekms(['audit', 'verify'])).toMatchObject({
      code: 2,
      json: { ok: false, code: 'USAGE_ERROR' },
    });
    expect(
      await ekms([
        'audit',
        'verify',
        join(dir, 'missing.jsonl'),
        '--profile',
        writeProfile('p6.json', trust),
      ]),
    ).toMatchObject({ code: 1, json: { ok: false, code: 'IO_ERROR' } });
  });
});
