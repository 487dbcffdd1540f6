/** `ekms attest verify|simulate` through the real CLI process (design §5 contract: JSON, exit codes). */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, REPO } from '../helpers/service.js';

const run = promisify(execFile);
const VECTORS = resolve(REPO, '../shared/vectors');
const haveVectors = existsSync(VECTORS);

async function ekms(args: string[]): Promise<{ code: number; out: Record<string, unknown> }> {
  try {
    const { stdout } = await run(process.execPath, [CLI, ...args, '--json']);
    return { code: 0, out: JSON.parse(stdout) as Record<string, unknown> };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, out: JSON.parse(e.stdout) as Record<string, unknown> };
  }
}

const M = 'ab'.repeat(48);

describe('ekms attest simulate + verify', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ekms-attest-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('Nitro: simulated evidence verifies only with the simulated root, and policies decide', async () => {
    const ca = join(dir, 'ca-nitro');
    const doc = join(dir, 'n.cbor');
    const s = await ekms([
      'attest',
      'simulate',
      '--type',
      'nitro',
      '--ca',
      ca,
      '--out',
      doc,
      '--measurement',
      M,
      '--nonce',
      '0102',
    ]);
    expect(s).toMatchObject({ code: 0, out: { ok: true, type: 'nitro' } });
    expect(existsSync(join(ca, 'root.pem'))).toBe(true);

    const untrusted = await ekms(['attest', 'verify', doc, '--type', 'nitro']);
    expect(untrusted).toMatchObject({ code: 1, out: { ok: false, code: 'CERT_ROOT_UNTRUSTED' } });

    const ok = await ekms(['attest', 'verify', doc, '--type', 'nitro', '--root', join(ca, 'root.pem')]);
    expect(ok).toMatchObject({
      code: 0,
      out: { ok: true, type: 'nitro', measurement: M, nonce: '0102', debug: false, simulated: true },
    });

    const policy = join(dir, 'p.json');
    writeFileSync(
      policy,
      JSON.stringify({ version: 1, measurements: [M], allowSimulated: true, maxAgeSeconds: 300 }),
    );
    const good = await ekms([
      'attest',
      'verify',
      doc,
      '--type',
      'nitro',
      '--root',
      join(ca, 'root.pem'),
      '--policy',
      policy,
    ]);
    expect(good).toMatchObject({ code: 0, out: { ok: true, policy: 'satisfied' } });

    // The same CA is reused; a debug document violates a strict policy on three counts, all listed.
    const dbg = join(dir, 'd.cbor');
    expect(
      (await ekms(['attest', 'simulate', '--type', 'nitro', '--ca', ca, '--out', dbg, '--debug'])).code,
    ).toBe(0);
    const strict = join(dir, 'strict.json');
    writeFileSync(strict, JSON.stringify({ version: 1, measurements: [M] }));
    const bad = await ekms([
      'attest',
      'verify',
      dbg,
      '--type',
      'nitro',
      '--root',
      join(ca, 'root.pem'),
      '--policy',
      strict,
    ]);
    expect(bad.code).toBe(1);
    expect(bad.out['code']).toBe('POLICY_VIOLATION');
    const codes = (bad.out['violations'] as Array<{ code: string }>).map((v) => v.code).sort();
    expect(codes).toEqual(['DEBUG_NOT_ALLOWED', 'MEASUREMENT_NOT_ALLOWED', 'SIMULATED_NOT_ALLOWED']);
  });

  it('SEV-SNP: simulated report verifies with the ARK given as --root and the VCEK/ASK as --cert', async () => {
    const ca = join(dir, 'ca-snp');
    const rep = join(dir, 's.bin');
    const s = await ekms([
      'attest',
      'simulate',
      '--type',
      'sev-snp',
      '--ca',
      ca,
      '--out',
      rep,
      '--measurement',
      M,
      '--report-data',
      '00ff',
    ]);
    expect(s).toMatchObject({ code: 0, out: { ok: true, bytes: 1184 } });
    for (const f of ['ark.pem', 'ask.pem', 'vcek.pem']) expect(existsSync(join(ca, f)), f).toBe(true);
    const certs = ['--cert', join(ca, 'vcek.pem'), '--cert', join(ca, 'ask.pem')];
    expect(await ekms(['attest', 'verify', rep, '--type', 'sev-snp', ...certs])).toMatchObject({
      code: 1,
      out: { code: 'CERT_ROOT_UNTRUSTED' },
    });
    const ok = await ekms([
      'attest',
      'verify',
      rep,
      '--type',
      'sev-snp',
      '--root',
      join(ca, 'ark.pem'),
      ...certs,
    ]);
    expect(ok).toMatchObject({
      code: 0,
      out: { type: 'sev-snp', measurement: M, signingKey: 'vcek', simulated: true },
    });
    expect(String(ok.out['reportData'])).toBe(`00ff${'00'.repeat(62)}`);
    expect(
      await ekms(['attest', 'verify', rep, '--type', 'sev-snp', '--root', join(ca, 'ark.pem')]),
    ).toMatchObject({
      code: 1,
      out: { code: 'CERT_MISSING' },
    });
  });

  it('explains base64-encoded input, and refuses bad usage with exit 2', async () => {
    const b64 = join(dir, 'b64.txt');
    writeFileSync(b64, Buffer.from(readFileSync(join(dir, 'n.cbor'))).toString('base64'));
    const r = await ekms(['attest', 'verify', b64, '--type', 'nitro']);
    expect(r.code).toBe(1);
    expect(String(r.out['message'])).toContain('base64');
    expect((await ekms(['attest', 'verify', b64, '--type', 'tpm'])).code).toBe(2);
    expect((await ekms(['attest', 'verify', b64])).code).toBe(2);
    expect((await ekms(['attest', 'verify', b64, '--type', 'nitro', '--at', 'yesterday'])).code).toBe(2);
    expect(await ekms(['attest', 'verify', join(dir, 'missing'), '--type', 'nitro'])).toMatchObject({
      code: 1,
      out: { code: 'IO_ERROR' },
    });
  });
});

describe.skipIf(!haveVectors)('ekms attest verify on real vectors (../shared/vectors)', () => {
  it('verifies a real Nitro document at its time and rejects it now (CERT_EXPIRED)', async () => {
    const doc = join(VECTORS, 'nitro/aws-samples-2.cbor');
    const side = JSON.parse(readFileSync(join(VECTORS, 'nitro/aws-samples-2.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    const ok = await ekms([
      'attest',
      'verify',
      doc,
      '--type',
      'nitro',
      '--at',
      String(side['verification_time']),
    ]);
    expect(ok).toMatchObject({ code: 0, out: { ok: true, moduleId: side['module_id'], simulated: false } });
    expect(await ekms(['attest', 'verify', doc, '--type', 'nitro'])).toMatchObject({
      code: 1,
      out: { code: 'CERT_EXPIRED' },
    });
  });

  it('verifies a real SEV-SNP report with its VCEK', async () => {
    const rep = join(VECTORS, 'sev-snp/trustee-1.bin');
    const side = JSON.parse(readFileSync(join(VECTORS, 'sev-snp/trustee-1.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    const ok = await ekms([
      'attest',
      'verify',
      rep,
      '--type',
      'sev-snp',
      '--cert',
      join(VECTORS, 'sev-snp/trustee-1-vcek.pem'),
      '--at',
      '2025-01-01T00:00:00Z',
    ]);
    expect(ok).toMatchObject({
      code: 0,
      out: { ok: true, measurement: side['measurement'], chipId: side['chip_id'] },
    });
  });
});
if (!haveVectors) console.warn(`skipping real-vector CLI tests: ${VECTORS} is absent`);
