/**
 * `ekms encrypt` / `ekms decrypt` (streaming envelope encryption, design §5) through the real CLI process against one
 * real service: byte-identical round trips (files, stdin/stdout, empty input), the contract's JSON and exit codes, and
 * the atomic output (client/cli/encrypt.ts): a failure of any kind leaves neither the output nor a `.ekms-tmp` file.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  type FSWatcher,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  watch,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CliResult,
  type CliService,
  failureOf,
  jsonOf,
  KEY_ID,
  mapLimit,
  runCli,
  startCliService,
  tempFilesIn,
} from '../helpers/cli-service.js';
import { CLI } from '../helpers/service.js';

/** Generous: the budget is ~60 s per file on an idle 2-core machine, but a loaded one must not make it flaky. */
const TEST_TIMEOUT = 120_000;

describe('ekms encrypt / decrypt (CLI against a real service)', () => {
  let svc: CliService;
  /** The key every test encrypts under (alias/files), another key, and a scratch directory per test. */
  let keyId: string;
  let otherKey: string;
  const ekms = (args: readonly string[], input?: Buffer | string): Promise<CliResult> =>
    runCli([...args, '--profile', svc.profile], { cwd: svc.dir, ...(input === undefined ? {} : { input }) });
  const ok = async (args: readonly string[]): Promise<Record<string, unknown>> => {
    const r = await ekms([...args, '--json']);
    const doc = jsonOf(r);
    expect(doc, `${args.join(' ')}: ${r.stderr}`).toMatchObject({ ok: true });
    expect(r.code).toBe(0);
    return doc;
  };
  const fail = async (args: readonly string[]): Promise<{ exit: number | null; code: unknown }> => {
    const { exit, code } = failureOf(await ekms([...args, '--json']));
    return { exit, code };
  };
  const scratch = (): string => mkdtempSync(join(svc.dir, 'w-'));
  /** Encrypts `data` into DIR/NAME under alias/files with the context app=x, tenant=t1. */
  const encryptTo = async (dir: string, name: string, data: Buffer, ...extra: string[]): Promise<string> => {
    const src = join(dir, `${name}.src`);
    const out = join(dir, name);
    writeFileSync(src, data);
    await ok(['encrypt', '--key', 'alias/files', ...CTX, '--in', src, '--out', out, ...extra]);
    return out;
  };
  const CTX = ['--context', 'app=x', '--context', 'tenant=t1'];

  beforeAll(async () => {
    svc = await startCliService('ekms-cli-enc-');
    const create = async (...extra: string[]): Promise<string> => {
      const r = await ekms(['key', 'create', ...extra, '--json']);
      return jsonOf(r)['keyId'] as string;
    };
    keyId = await create('--alias', 'alias/files');
    otherKey = await create();
    expect(keyId).toMatch(KEY_ID);
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it(
    'a 3 MiB random file round-trips byte-identical; JSON summaries; the plaintext output is mode 0600',
    async () => {
      const dir = scratch();
      const data = randomBytes(3 * 1024 * 1024 + 123);
      const src = join(dir, 'data.bin');
      const enc = join(dir, 'data.ekms');
      const dec = join(dir, 'data.out');
      writeFileSync(src, data);

      const e = await ok(['encrypt', '--key', 'alias/files', ...CTX, '--in', src, '--out', enc]);
      expect(e).toEqual({
        ok: true,
        keyId,
        keyVersion: 1,
        encryptionContext: { app: 'x', tenant: 't1' },
        chunkSize: 1048576,
        bytesIn: data.length,
        bytesOut: statSync(enc).size,
        in: src,
        out: enc,
      });
      expect(statSync(enc).size).toBeGreaterThan(data.length);
      // The plaintext does not appear in the envelope (a sample of it, anyway).
      expect(readFileSync(enc).includes(data.subarray(1000, 1032))).toBe(false);

      // Two decryptions of the same envelope (independent: two at a time). With --context, JSON; without, the
      // stream's own context is used (the enclave still checks it), an existing 0644 file is replaced by a 0600
      // one, and the human output is one summary line on stdout.
      const dec2 = join(dir, 'data.out2');
      writeFileSync(dec2, 'old', { mode: 0o644 });
      const [dr, h] = await Promise.all([
        ekms(['decrypt', ...CTX, '--in', enc, '--out', dec, '--json']),
        ekms(['decrypt', '--in', enc, '--out', dec2]),
      ]);
      expect(dr.code).toBe(0);
      expect(jsonOf(dr)).toEqual({
        ok: true,
        keyId,
        keyVersion: 1,
        encryptionContext: { app: 'x', tenant: 't1' },
        bytesIn: statSync(enc).size,
        bytesOut: data.length,
        in: enc,
        out: dec,
      });
      expect(readFileSync(dec).equals(data)).toBe(true);
      expect(statSync(dec).mode & 0o777).toBe(0o600);
      expect(h.code).toBe(0);
      expect(h.stdout.toString()).toBe(
        `decrypted ${statSync(enc).size} bytes → ${data.length} bytes (${dec2}) under ${keyId} v1\n`,
      );
      expect(readFileSync(dec2).equals(data)).toBe(true);
      expect(statSync(dec2).mode & 0o777).toBe(0o600);
      expect(tempFilesIn(dir)).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'stdin and stdout with -, and an empty file, round-trip',
    async () => {
      const data = randomBytes(200_000);
      const e = await ekms(['encrypt', '--key', keyId, ...CTX, '--in', '-', '--out', '-'], data);
      expect(e.code).toBe(0);
      // The summary goes to stderr when stdout carries the data.
      expect(e.stderr).toMatch(/^encrypted 200000 bytes → \d+ bytes \(-\) under /);
      expect(e.stdout.length).toBeGreaterThan(data.length);
      const d = await ekms(['decrypt', ...CTX, '--in', '-', '--out', '-', '--quiet'], e.stdout);
      expect(d.code).toBe(0);
      expect(d.stderr).toBe('');
      expect(d.stdout.equals(data)).toBe(true);

      const dir = scratch();
      const enc = await encryptTo(dir, 'empty.ekms', Buffer.alloc(0));
      const out = join(dir, 'empty.out');
      expect(await ok(['decrypt', ...CTX, '--in', enc, '--out', out])).toMatchObject({ bytesOut: 0 });
      expect(readFileSync(out).length).toBe(0);
      expect(statSync(out).mode & 0o777).toBe(0o600);

      // --json prints the summary on stdout, so it cannot also carry the data.
      expect(await fail(['encrypt', '--key', keyId, '--in', enc, '--out', '-'])).toEqual({
        exit: 2,
        code: 'USAGE_ERROR',
      });
    },
    TEST_TIMEOUT,
  );

  it(
    'a wrong --context is CONTEXT_MISMATCH, exit 1: no output file and no .ekms-tmp file left, an existing file kept',
    async () => {
      const dir = scratch();
      const enc = await encryptTo(dir, 'c.ekms', randomBytes(300_000));
      const out = join(dir, 'c.out');
      const wrong = [
        ['--context', 'app=y', '--context', 'tenant=t1'], // another value
        ['--context', 'app=x'], // an entry missing
        [...CTX, '--context', 'extra=1'], // an entry too many
      ];
      const results = await mapLimit(wrong, 2, (ctx) => fail(['decrypt', ...ctx, '--in', enc, '--out', out]));
      for (const [i, ctx] of wrong.entries()) {
        expect(results[i], ctx.join(' ')).toEqual({ exit: 1, code: 'CONTEXT_MISMATCH' });
      }
      expect(existsSync(out)).toBe(false);
      expect(tempFilesIn(dir)).toEqual([]);

      writeFileSync(out, 'keep me');
      expect(await fail(['decrypt', '--context', 'app=y', '--in', enc, '--out', out])).toEqual({
        exit: 1,
        code: 'CONTEXT_MISMATCH',
      });
      expect(readFileSync(out, 'utf8')).toBe('keep me');
      expect(tempFilesIn(dir)).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'truncated, bit-flipped and appended-to envelopes fail with a typed code, exit 1, nothing left at --out',
    async () => {
      const dir = scratch();
      // Small chunks so that the stream has many: failures in the last chunk come after plaintext was written
      // to the temporary file.
      const enc = await encryptTo(dir, 't.ekms', randomBytes(100_000), '--chunk-size', '4096');
      const good = readFileSync(enc);
      const flip = (at: number): Buffer => {
        const b = Buffer.from(good);
        b[at] = (b[at] ?? 0) ^ 0x01;
        return b;
      };
      const cases: Array<{ name: string; bytes: Buffer; codes: string[] }> = [
        { name: 'empty', bytes: Buffer.alloc(0), codes: ['STREAM_TRUNCATED'] },
        { name: 'inside the header', bytes: good.subarray(0, 40), codes: ['STREAM_TRUNCATED'] },
        { name: 'one byte short', bytes: good.subarray(0, good.length - 1), codes: ['STREAM_TRUNCATED'] },
        { name: 'magic flipped', bytes: flip(0), codes: ['STREAM_HEADER_INVALID'] },
        {
          name: 'header byte flipped',
          bytes: flip(8),
          // Which check sees a header change first depends on the field; each is typed.
          codes: [
            'STREAM_HEADER_INVALID',
            'STREAM_HEADER_AUTH_FAILED',
            'CIPHERTEXT_KEY_MISMATCH',
            'DECRYPT_FAILED',
          ],
        },
        { name: 'middle chunk flipped', bytes: flip(good.length >> 1), codes: ['STREAM_CHUNK_AUTH_FAILED'] },
        { name: 'last byte flipped', bytes: flip(good.length - 1), codes: ['STREAM_CHUNK_AUTH_FAILED'] },
        {
          name: 'a byte appended',
          bytes: Buffer.concat([good, Buffer.of(0)]),
          codes: ['STREAM_TRAILING_BYTES'],
        },
      ];
      const results = await mapLimit(cases, 2, async (c) => {
        const sub = mkdtempSync(join(dir, 'case-'));
        const input = join(sub, 'in.ekms');
        const out = join(sub, 'out.bin');
        writeFileSync(input, c.bytes);
        const r = await fail(['decrypt', ...CTX, '--in', input, '--out', out]);
        return { ...r, outLeft: existsSync(out), temps: tempFilesIn(sub) };
      });
      for (const [i, c] of cases.entries()) {
        const r = results[i]!;
        expect({ exit: r.exit, outLeft: r.outLeft, temps: r.temps }, c.name).toEqual({
          exit: 1,
          outLeft: false,
          temps: [],
        });
        expect(c.codes, `${c.name}: ${String(r.code)}`).toContain(r.code);
      }
    },
    TEST_TIMEOUT,
  );

  it(
    'decrypt --key: the stream key (or its alias) passes; another key is KEY_ID_MISMATCH, an unknown one KEY_NOT_FOUND',
    async () => {
      const dir = scratch();
      const enc = await encryptTo(dir, 'k.ekms', randomBytes(10_000));
      const out = join(dir, 'k.out');
      expect(await ok(['decrypt', '--key', 'alias/files', '--in', enc, '--out', out])).toMatchObject({
        keyId,
      });
      const out2 = join(dir, 'k2.out');
      const [other, unknown] = await mapLimit([otherKey, 'alias/nope'], 2, (k) =>
        fail(['decrypt', '--key', k, '--in', enc, '--out', out2]),
      );
      expect(other).toEqual({ exit: 1, code: 'KEY_ID_MISMATCH' });
      expect(unknown).toEqual({ exit: 1, code: 'KEY_NOT_FOUND' });
      expect(existsSync(out2)).toBe(false);
      expect(tempFilesIn(dir)).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'a disabled key can neither encrypt nor decrypt (KEY_DISABLED, exit 1, nothing left); enabled again it can',
    async () => {
      const dir = scratch();
      const id = jsonOf(await ekms(['key', 'create', '--json']))['keyId'] as string;
      const src = join(dir, 'p.bin');
      const data = randomBytes(5000);
      writeFileSync(src, data);
      const enc = join(dir, 'p.ekms');
      await ok(['encrypt', '--key', id, '--in', src, '--out', enc]);
      await ok(['key', 'disable', id]);
      const out = join(dir, 'p.out');
      expect(await fail(['encrypt', '--key', id, '--in', src, '--out', join(dir, 'p2.ekms')])).toEqual({
        exit: 1,
        code: 'KEY_DISABLED',
      });
      expect(await fail(['decrypt', '--in', enc, '--out', out])).toEqual({ exit: 1, code: 'KEY_DISABLED' });
      expect(existsSync(out) || existsSync(join(dir, 'p2.ekms'))).toBe(false);
      expect(tempFilesIn(dir)).toEqual([]);
      await ok(['key', 'enable', id]);
      await ok(['decrypt', '--in', enc, '--out', out]);
      expect(readFileSync(out).equals(data)).toBe(true);
    },
    TEST_TIMEOUT,
  );

  it(
    'file and argument errors: --out a directory and bad options are USAGE_ERROR (exit 2); a missing --in is IO_ERROR (exit 1)',
    async () => {
      const dir = scratch();
      const src = join(dir, 'p.bin');
      writeFileSync(src, 'plaintext');
      const enc = await encryptTo(dir, 'p.ekms', Buffer.from('plaintext'));
      const sub = join(dir, 'sub');
      mkdirSync(sub);
      const missing = join(dir, 'missing.bin');
      const out = join(dir, 'o.bin');
      const cases: Array<{ args: string[]; exit: number; code: string }> = [
        { args: ['encrypt', '--key', keyId, '--in', src, '--out', sub], exit: 2, code: 'USAGE_ERROR' },
        { args: ['decrypt', '--in', enc, '--out', sub], exit: 2, code: 'USAGE_ERROR' },
        { args: ['encrypt', '--key', keyId, '--in', sub, '--out', out], exit: 2, code: 'USAGE_ERROR' },
        { args: ['encrypt', '--key', keyId, '--in', missing, '--out', out], exit: 1, code: 'IO_ERROR' },
        { args: ['decrypt', '--in', missing, '--out', out], exit: 1, code: 'IO_ERROR' },
        {
          args: ['encrypt', '--key', keyId, '--in', src, '--out', join(dir, 'no-dir', 'o.bin')],
          exit: 1,
          code: 'IO_ERROR',
        },
        { args: ['encrypt', '--in', src, '--out', out], exit: 2, code: 'USAGE_ERROR' }, // no --key
        {
          args: ['encrypt', '--key', keyId, '--in', src, '--out', out, '--chunk-size', '0'],
          exit: 2,
          code: 'USAGE_ERROR',
        },
        {
          args: ['encrypt', '--key', keyId, '--context', 'novalue', '--in', src, '--out', out],
          exit: 2,
          code: 'USAGE_ERROR',
        },
        {
          args: ['encrypt', '--key', '00000000-0000-4000-8000-000000000000', '--in', src, '--out', out],
          exit: 1,
          code: 'KEY_NOT_FOUND',
        },
      ];
      // Every case is refused without writing: safe to run two at a time.
      const results = await mapLimit(cases, 2, (c) => fail(c.args));
      for (const [i, c] of cases.entries()) {
        expect(results[i], c.args.join(' ')).toEqual({ exit: c.exit, code: c.code });
      }
      expect(existsSync(out)).toBe(false);
      expect(tempFilesIn(dir)).toEqual([]);
      expect(tempFilesIn(sub)).toEqual([]);

      // Human form of an error: "ekms: CODE: message" on stderr, nothing on stdout.
      const h = await ekms(['decrypt', '--in', missing, '--out', out]);
      expect(h.code).toBe(1);
      expect(h.stdout.length).toBe(0);
      expect(h.stderr).toMatch(/^ekms: IO_ERROR: .*ENOENT\n$/);
    },
    TEST_TIMEOUT,
  );

  it(
    'SIGTERM as soon as the temporary output exists deletes it (exit 143): encrypt and decrypt',
    async () => {
      const dir = scratch();
      const envelope = readFileSync(await encryptTo(dir, 's.ekms', randomBytes(300_000)));
      // stdin stays open, so the command stays mid-stream with its temporary file beside --out until the signal.
      // The signal goes as soon as the file appears (inotify): the handler must already be there by then.
      const cases = [
        { name: 'encrypt', args: ['encrypt', '--key', keyId], input: randomBytes(100_000) },
        { name: 'decrypt', args: ['decrypt'], input: envelope.subarray(0, envelope.length >> 1) },
      ];
      for (const c of cases) {
        const sub = mkdtempSync(join(dir, `${c.name}-`));
        const out = join(sub, 'never.out');
        const child = spawn(
          process.execPath,
          [CLI, ...c.args, '--in', '-', '--out', out, '--profile', svc.profile, '--quiet'],
          { cwd: svc.dir, stdio: ['pipe', 'ignore', 'ignore'] },
        );
        child.stdin.on('error', () => {});
        const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
        let watcher: FSWatcher | undefined;
        let poll: NodeJS.Timeout | undefined;
        try {
          const appeared = new Promise<boolean>((resolve) => {
            const check = (): void => {
              if (tempFilesIn(sub).length > 0) resolve(true);
            };
            watcher = watch(sub, check);
            poll = setInterval(check, 50);
            void exited.then(() => resolve(false));
          });
          child.stdin.write(c.input);
          expect(await appeared, `${c.name}: a temporary file appears before the command ends`).toBe(true);
          child.kill('SIGTERM');
          expect(await exited, c.name).toBe(143);
          expect(readdirSync(sub), c.name).toEqual([]);
        } finally {
          watcher?.close();
          clearInterval(poll);
          child.kill('SIGKILL');
        }
      }
    },
    TEST_TIMEOUT,
  );
});
