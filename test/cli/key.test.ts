/**
 * `ekms key …` through the real CLI process against one real service (host + enclave, `ekms start`): the design §5
 * contract (one JSON document with --json, `{"ok":true,…}` / `{"ok":false,"code","message"}`, exit 0/1/2) for every
 * subcommand in client/cli/key.ts, and the documented fields and encodings of docs/key-service.md §4.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BASE64,
  type CliResult,
  type CliService,
  failureOf,
  ISO,
  jsonOf,
  KEY_ID,
  mapLimit,
  runCli,
  startCliService,
} from '../helpers/cli-service.js';

/** The fields of keyMetadata (docs/key-service.md §4), flattened into the `{"ok":true,…}` document. */
const METADATA_FIELDS = [
  'aliases',
  'createdAt',
  'currentVersion',
  'deletionDate',
  'deniedUses',
  'description',
  'destroyedAt',
  'keyId',
  'keyUsage',
  'pendingWindowDays',
  'rotation',
  'state',
  'suite',
  'versions',
];

/** Generous: the budget is ~60 s per file on an idle 2-core machine, but a loaded one must not make it flaky. */
const TEST_TIMEOUT = 120_000;
const DAY_MS = 86_400_000;

describe('ekms key (CLI against a real service)', () => {
  let svc: CliService;
  /** Runs `ekms ARGS --profile P` (add --json yourself: some checks need the human output). */
  const ekms = (args: readonly string[], input?: Buffer | string): Promise<CliResult> =>
    runCli([...args, '--profile', svc.profile], { cwd: svc.dir, ...(input === undefined ? {} : { input }) });
  /** Runs a --json command that must succeed; returns its document. */
  const ok = async (args: readonly string[], input?: Buffer | string): Promise<Record<string, unknown>> => {
    const r = await ekms([...args, '--json'], input);
    const doc = jsonOf(r);
    expect(doc, `${args.join(' ')}: ${r.stderr}`).toMatchObject({ ok: true });
    expect(r.code).toBe(0);
    return doc;
  };
  /** Runs a --json command that must fail; returns its exit code and error code. */
  const fail = async (
    args: readonly string[],
    input?: Buffer | string,
  ): Promise<{ exit: number | null; code: unknown }> => {
    const { exit, code } = failureOf(await ekms([...args, '--json'], input));
    return { exit, code };
  };
  const createKey = async (...extra: string[]): Promise<string> => {
    const m = await ok(['key', 'create', ...extra]);
    return m['keyId'] as string;
  };

  beforeAll(async () => {
    svc = await startCliService('ekms-cli-key-');
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it(
    'create, describe and list: documented metadata fields, lowercase ids, ISO dates; human output',
    async () => {
      const before = Date.now();
      const m = await ok([
        'key',
        'create',
        '--description',
        'orders db',
        '--alias',
        'alias/orders',
        '--rotation-days',
        '90',
      ]);
      // Every documented field (more may be added); none that could carry key material.
      expect(Object.keys(m)).toEqual(expect.arrayContaining(['ok', ...METADATA_FIELDS]));
      expect(Object.keys(m).filter((k) => /material|secret|plaintext|private/i.test(k))).toEqual([]);
      expect(m['keyId']).toMatch(KEY_ID);
      expect(m).toMatchObject({
        description: 'orders db',
        state: 'Enabled',
        keyUsage: 'ENCRYPT_DECRYPT',
        suite: 'AES-256-GCM/KDF-CTR-HMAC-SHA-512/COMMIT-v2',
        currentVersion: 1,
        rotation: { periodDays: 90 },
        deletionDate: null,
        pendingWindowDays: null,
        destroyedAt: null,
        deniedUses: null,
        aliases: ['alias/orders'],
      });
      expect(m['createdAt']).toMatch(ISO);
      expect(m['versions']).toEqual([{ version: 1, createdAt: m['createdAt'] }]);
      const next = Date.parse((m['rotation'] as { nextRotationAt: string }).nextRotationAt);
      expect(Math.abs(next - (before + 90 * DAY_MS))).toBeLessThan(60_000);
      const id = m['keyId'] as string;

      // describe by alias: the same key, the same document (ok + metadata). Human output: labelled lines on
      // stdout, nothing on stderr. (Reads: two at a time.)
      const [byAlias, human] = await Promise.all([
        ok(['key', 'describe', 'alias/orders']),
        ekms(['key', 'describe', id]),
      ]);
      expect(byAlias).toEqual(m);
      expect(human.code).toBe(0);
      expect(human.stderr).toBe('');
      const text = human.stdout.toString();
      expect(text).toContain(`key id:       ${id}\n`);
      expect(text).toContain('state:        Enabled\n');
      expect(text).toContain('description:  orders db\n');
      expect(text).toContain('version:      1 (current) of 1\n');
      expect(text).toMatch(/rotation: {5}every 90 days, next \d{4}-/);
      expect(text).toContain('aliases:      alias/orders\n');
      expect(text.trimStart().startsWith('{')).toBe(false);

      const created = await ok(['key', 'create']);
      expect(created).toMatchObject({ description: '', rotation: null, aliases: [] });
      const plain = created['keyId'] as string;

      // list: one page by key id; --limit/--marker paging; --all follows the markers.
      const all = await ok(['key', 'list']);
      expect(Object.keys(all).sort()).toEqual(['keys', 'nextMarker', 'ok', 'truncated']);
      expect(all).toMatchObject({ truncated: false, nextMarker: null });
      const keys = all['keys'] as Array<{ keyId: string; state: string }>;
      expect(keys).toEqual(
        expect.arrayContaining([
          { keyId: id, state: 'Enabled' },
          { keyId: plain, state: 'Enabled' },
        ]),
      );
      const ids = keys.map((k) => k.keyId);
      expect(ids).toEqual([...ids].sort());
      const [page1, followed] = await Promise.all([
        ok(['key', 'list', '--limit', '1']),
        ok(['key', 'list', '--limit', '1', '--all']),
      ]);
      expect(page1).toMatchObject({ keys: [keys[0]], truncated: true });
      expect(typeof page1['nextMarker']).toBe('string');
      expect(followed).toEqual(all);
      const [page2, listed] = await Promise.all([
        ok(['key', 'list', '--limit', '1', '--marker', page1['nextMarker'] as string]),
        ekms(['key', 'list']),
      ]);
      expect((page2['keys'] as unknown[])[0]).toEqual(keys[1]);
      expect(listed.code).toBe(0);
      expect(listed.stdout.toString()).toContain(`${id}  Enabled\n`);
    },
    TEST_TIMEOUT,
  );

  it(
    'rotate, rotation --enable/--disable, disable/enable: state changes, a disabled key cannot be used',
    async () => {
      const id = await createKey();
      const old = await ok(['key', 'encrypt', '--key', id, '--plaintext-b64', 'djE=']);
      expect(old['keyVersion']).toBe(1);

      const r = await ok(['key', 'rotate', id]);
      expect(r).toMatchObject({ keyId: id, currentVersion: 2 });
      expect((r['versions'] as unknown[]).length).toBe(2);
      // An old blob still decrypts, with the version it names (independent of the rotation schedule: together).
      const [dOld, on] = await Promise.all([
        ok(['key', 'decrypt', '--ciphertext-b64', old['ciphertext'] as string]),
        ok(['key', 'rotation', id, '--enable', '--days', '30']),
      ]);
      expect(dOld).toMatchObject({ plaintext: 'djE=', keyVersion: 1 });
      expect(on['rotation']).toMatchObject({ periodDays: 30 });
      expect((on['rotation'] as { nextRotationAt: string }).nextRotationAt).toMatch(ISO);
      expect((await ok(['key', 'rotation', id, '--disable']))['rotation']).toBeNull();

      expect(await ok(['key', 'disable', id])).toMatchObject({ keyId: id, state: 'Disabled' });
      expect(await fail(['key', 'encrypt', '--key', id, '--plaintext-b64', 'eA=='])).toEqual({
        exit: 1,
        code: 'KEY_DISABLED',
      });
      const enabled = await ekms(['key', 'enable', id]);
      expect(enabled.code).toBe(0);
      expect(enabled.stdout.toString()).toMatch(/^enabled\nkey id: {7}\S+\nstate: {8}Enabled\n/);
    },
    TEST_TIMEOUT,
  );

  it(
    'key encrypt / decrypt / re-encrypt: base64 in and out, the context binds, --key checks the key',
    async () => {
      const [a, b] = await Promise.all([
        createKey('--alias', 'alias/blob-a'),
        createKey('--alias', 'alias/blob-b'),
      ]);
      const plaintext = randomBytes(100);
      const ctx = ['--context', 'tenant=t1', '--context', 'purpose=a=b'];
      const e = await ok([
        'key',
        'encrypt',
        '--key',
        'alias/blob-a',
        '--plaintext-b64',
        plaintext.toString('base64'),
        ...ctx,
      ]);
      expect(Object.keys(e).sort()).toEqual(['ciphertext', 'keyId', 'keyVersion', 'ok']);
      expect(e).toMatchObject({ keyId: a, keyVersion: 1 });
      expect(e['ciphertext']).toMatch(BASE64);
      const ct = e['ciphertext'] as string;

      // Decrypt the raw bytes from a file, the context entries in another order (the same context). The context
      // is AAD: a wrong one is DECRYPT_FAILED (docs/key-service.md §7); --key checks the key. (Reads: two at a time.)
      const file = join(svc.dir, 'blob.bin');
      writeFileSync(file, Buffer.from(ct, 'base64'));
      const wrong = ['--context', 'tenant=t2', '--context', 'purpose=a=b'];
      const [d, ...refused] = await mapLimit(
        [
          ['--ciphertext-file', file, '--context', 'purpose=a=b', '--context', 'tenant=t1'],
          ['--ciphertext-b64', ct, ...wrong],
          ['--ciphertext-b64', ct, '--key', b, ...ctx],
        ],
        2,
        (args) => ekms(['key', 'decrypt', ...args, '--json']).then(jsonOf),
      );
      expect(Object.keys(d!).sort()).toEqual(['keyId', 'keyVersion', 'ok', 'plaintext']);
      expect(d).toMatchObject({ ok: true, keyId: a, keyVersion: 1 });
      expect(d!['plaintext']).toMatch(BASE64);
      expect(Buffer.from(d!['plaintext'] as string, 'base64')).toEqual(plaintext);
      expect(refused).toMatchObject([
        { ok: false, code: 'DECRYPT_FAILED' },
        { ok: false, code: 'KEY_ID_MISMATCH' },
      ]);

      // Two at a time: a human-output encryption (just the base64 blob; plaintext from stdin) and a re-encryption
      // under another key and context, inside the enclave; then each one's decryption.
      const [h, re] = await Promise.all([
        ekms(['key', 'encrypt', '--key', a, '--plaintext-file', '-'], 'hello'),
        ok([
          'key',
          're-encrypt',
          '--ciphertext-b64',
          ct,
          '--source-context',
          'tenant=t1',
          '--source-context',
          'purpose=a=b',
          '--destination-key',
          'alias/blob-b',
          '--destination-context',
          'tenant=t9',
        ]),
      ]);
      expect(h.code).toBe(0);
      const blob = h.stdout.toString();
      expect(blob).toMatch(/^[A-Za-z0-9+/=]+\n$/);
      expect(blob.trimEnd()).toMatch(BASE64);
      expect(Object.keys(re).sort()).toEqual([
        'ciphertext',
        'keyId',
        'keyVersion',
        'ok',
        'sourceKeyId',
        'sourceKeyVersion',
      ]);
      expect(re).toMatchObject({ keyId: b, keyVersion: 1, sourceKeyId: a, sourceKeyVersion: 1 });
      expect(re['ciphertext']).toMatch(BASE64);

      const [back, d2] = await Promise.all([
        // Raw ciphertext bytes from stdin; human output: the plaintext in base64.
        ekms(['key', 'decrypt', '--ciphertext-file', '-'], Buffer.from(blob, 'base64')),
        ok([
          'key',
          'decrypt',
          '--ciphertext-b64',
          re['ciphertext'] as string,
          '--context',
          'tenant=t9',
          '--key',
          'alias/blob-b',
        ]),
      ]);
      expect(back.code).toBe(0);
      expect(back.stdout.toString()).toBe(`${Buffer.from('hello').toString('base64')}\n`);
      expect(d2).toMatchObject({ keyId: b, plaintext: d!['plaintext'] });

      // Size limits: 4097 bytes of plaintext are PLAINTEXT_TOO_LARGE; a big ciphertext file is refused unread;
      // bytes that are no blob are CIPHERTEXT_MALFORMED.
      const big = join(svc.dir, 'p4097');
      writeFileSync(big, randomBytes(4097));
      const huge = join(svc.dir, 'c64k');
      writeFileSync(huge, randomBytes(64 * 1024));
      const limits = await mapLimit(
        [
          ['key', 'encrypt', '--key', a, '--plaintext-file', big],
          ['key', 'decrypt', '--ciphertext-file', huge],
          ['key', 'decrypt', '--ciphertext-b64', 'aGVsbG8='],
        ],
        2,
        fail,
      );
      expect(limits).toEqual([
        { exit: 1, code: 'PLAINTEXT_TOO_LARGE' },
        { exit: 1, code: 'CIPHERTEXT_TOO_LARGE' },
        { exit: 1, code: 'CIPHERTEXT_MALFORMED' },
      ]);
    },
    TEST_TIMEOUT,
  );

  it(
    'generate-data-key --key ID --context k=v --json prints {"ok":true,"plaintext","ciphertext","keyId"} and the ciphertext decrypts back',
    async () => {
      const id = await createKey('--alias', 'alias/dek');
      const g = await ok(['key', 'generate-data-key', '--key', 'alias/dek', '--context', 'bucket=b1']);
      expect(Object.keys(g).sort()).toEqual(['ciphertext', 'keyId', 'keyVersion', 'ok', 'plaintext']);
      expect(g).toMatchObject({ keyId: id, keyVersion: 1 });
      expect(g['plaintext']).toMatch(BASE64);
      expect(g['ciphertext']).toMatch(BASE64);
      expect(Buffer.from(g['plaintext'] as string, 'base64').length).toBe(32); // AES_256 by default
      const ct = g['ciphertext'] as string;
      // Independent calls (decryptions, more data keys): two at a time.
      const [d, wrong, g128, sealed] = await mapLimit(
        [
          ['decrypt', '--ciphertext-b64', ct, '--context', 'bucket=b1', '--key', id],
          ['decrypt', '--ciphertext-b64', ct, '--context', 'bucket=b2'],
          ['generate-data-key', '--key', id, '--spec', 'AES_128'],
          ['generate-data-key', '--key', id, '--no-plaintext', '--context', 'x=y'],
        ],
        2,
        (args) => ekms(['key', ...args, '--json']).then(jsonOf),
      );
      expect(d).toEqual({ ok: true, plaintext: g['plaintext'], keyId: id, keyVersion: 1 });
      expect(wrong).toMatchObject({ ok: false, code: 'DECRYPT_FAILED' });
      expect(Buffer.from(g128!['plaintext'] as string, 'base64').length).toBe(16);
      expect(Object.keys(sealed!).sort()).toEqual(['ciphertext', 'keyId', 'keyVersion', 'ok']);
      const [opened, human] = await Promise.all([
        ok(['key', 'decrypt', '--ciphertext-b64', sealed!['ciphertext'] as string, '--context', 'x=y']),
        ekms(['key', 'generate-data-key', '--key', id]),
      ]);
      expect(Buffer.from(opened['plaintext'] as string, 'base64').length).toBe(32);
      expect(human.code).toBe(0);
      expect(human.stdout.toString()).toMatch(
        new RegExp(
          `^key id: {5}${id}\\nversion: {4}1\\nplaintext: {2}[A-Za-z0-9+/=]{44}\\nciphertext: [A-Za-z0-9+/=]+\\n$`,
        ),
      );
    },
    TEST_TIMEOUT,
  );

  it(
    'schedule-deletion (7..30 days): a pending key is unusable and the use recorded; cancel leaves it Disabled',
    async () => {
      const [id, other] = await Promise.all([createKey(), createKey()]);
      const before = Date.now();
      // Two keys, independent: --days 7 and the default window (30 days).
      const [s, s30] = await Promise.all([
        ok(['key', 'schedule-deletion', id, '--days', '7']),
        ok(['key', 'schedule-deletion', other]),
      ]);
      expect(s).toMatchObject({
        keyId: id,
        state: 'PendingDeletion',
        pendingWindowDays: 7,
        deniedUses: null,
      });
      expect(s['deletionDate']).toMatch(ISO);
      expect(Math.abs(Date.parse(s['deletionDate'] as string) - (before + 7 * DAY_MS))).toBeLessThan(60_000);
      expect(s30).toMatchObject({ keyId: other, state: 'PendingDeletion', pendingWindowDays: 30 });

      expect(await fail(['key', 'encrypt', '--key', id, '--plaintext-b64', 'eA=='])).toEqual({
        exit: 1,
        code: 'KEY_PENDING_DELETION',
      });
      const [d, enable, again] = await mapLimit(
        [
          ['describe', id],
          ['enable', id],
          ['schedule-deletion', id, '--days', '30'],
        ],
        2,
        (args) => ekms(['key', ...args, '--json']).then(jsonOf),
      );
      expect(d!['deniedUses']).toMatchObject({ count: 1, lastOperation: 'Encrypt' });
      expect((d!['deniedUses'] as { lastAt: string }).lastAt).toMatch(ISO);
      expect(enable).toMatchObject({ ok: false, code: 'KEY_STATE_INVALID' });
      expect(again).toMatchObject({ ok: false, code: 'KEY_STATE_INVALID' });

      const c = await ekms(['key', 'cancel-deletion', id]);
      expect(c.code).toBe(0);
      const text = c.stdout.toString();
      expect(text).toMatch(/^deletion cancelled; the key is disabled until `ekms key enable`\n/);
      expect(text).toContain('state:        Disabled\n');
      expect(text).not.toContain('deletion:');
      expect(text).toMatch(/denied uses: {2}1 \(last Encrypt at /);
      expect(await fail(['key', 'cancel-deletion', id])).toEqual({ exit: 1, code: 'KEY_STATE_INVALID' });
    },
    TEST_TIMEOUT,
  );

  it(
    'aliases: create, update, list, delete; alias/NAME works wherever a key id does',
    async () => {
      const [a, b] = await Promise.all([createKey(), createKey('--alias', 'alias/team-b')]);
      expect(await ok(['key', 'alias', 'create', 'alias/app/x', '--key', a])).toEqual({
        ok: true,
        aliasName: 'alias/app/x',
        targetKeyId: a,
      });
      const refused = await mapLimit(
        [
          ['create', 'alias/app/x', '--key', b],
          ['create', 'alias/ekms/x', '--key', a],
          ['create', 'alias/nokey', '--key', 'alias/none'],
          ['update', 'alias/absent', '--key', a],
        ],
        2,
        (args) => fail(['key', 'alias', ...args]),
      );
      expect(refused).toEqual([
        { exit: 1, code: 'ALIAS_EXISTS' },
        { exit: 1, code: 'ALIAS_INVALID' },
        { exit: 1, code: 'KEY_NOT_FOUND' },
        { exit: 1, code: 'ALIAS_NOT_FOUND' },
      ]);

      // update with --key given as an alias: the printed target is the key id.
      expect(await ok(['key', 'alias', 'update', 'alias/app/x', '--key', 'alias/team-b'])).toEqual({
        ok: true,
        aliasName: 'alias/app/x',
        targetKeyId: b,
      });

      // Listings are reads: two at a time.
      const [ofB, followed, human] = await mapLimit(
        [
          ['list', '--key', b, '--json'],
          ['list', '--key', b, '--limit', '1', '--all', '--json'],
          ['list', '--key', 'alias/team-b'],
        ],
        2,
        (args) => ekms(['key', 'alias', ...args]),
      );
      const doc = jsonOf(ofB!);
      expect(Object.keys(doc).sort()).toEqual(['aliases', 'nextMarker', 'ok', 'truncated']);
      expect(doc).toEqual({
        ok: true,
        aliases: [
          { aliasName: 'alias/app/x', targetKeyId: b },
          { aliasName: 'alias/team-b', targetKeyId: b },
        ],
        truncated: false,
        nextMarker: null,
      });
      expect(jsonOf(followed!)).toEqual(doc);
      expect(human!.stdout.toString()).toBe(`alias/app/x  → ${b}\nalias/team-b  → ${b}\n`);

      expect(await ok(['key', 'alias', 'delete', 'alias/app/x'])).toEqual({
        ok: true,
        aliasName: 'alias/app/x',
        deleted: true,
      });
      const [deleted, described] = await Promise.all([
        fail(['key', 'alias', 'delete', 'alias/app/x']),
        fail(['key', 'describe', 'alias/app/x']),
      ]);
      expect(deleted).toEqual({ exit: 1, code: 'ALIAS_NOT_FOUND' });
      expect(described).toEqual({ exit: 1, code: 'KEY_NOT_FOUND' });
    },
    TEST_TIMEOUT,
  );

  it(
    'an unknown key is KEY_NOT_FOUND with exit 1 (JSON on stdout, or "ekms: CODE: message" on stderr)',
    async () => {
      const unknown = '00000000-0000-4000-8000-000000000000';
      const cases: string[][] = [
        ['key', 'rotate', unknown, '--json'],
        ['key', 'disable', 'alias/does-not-exist', '--json'],
        ['key', 'encrypt', '--key', unknown, '--plaintext-b64', 'eA==', '--json'],
        ['key', 'generate-data-key', '--key', unknown, '--json'],
        ['key', 'describe', unknown],
      ];
      // Read-only or refused: safe to run two at a time.
      const results = await mapLimit(cases, 2, (args) => ekms(args));
      for (const [i, args] of cases.slice(0, -1).entries()) {
        expect(failureOf(results[i]!), args.join(' ')).toMatchObject({ exit: 1, code: 'KEY_NOT_FOUND' });
      }
      const human = results[cases.length - 1]!;
      expect(human.code).toBe(1);
      expect(human.stdout.length).toBe(0);
      expect(human.stderr).toMatch(/^ekms: KEY_NOT_FOUND: .+\n$/);
    },
    TEST_TIMEOUT,
  );

  it(
    'bad arguments are USAGE_ERROR with exit 2; service, profile and trust failures are exit 1',
    async () => {
      // Usage errors are found before the service is asked anything: the key need not exist.
      const id = '00000000-0000-4000-8000-000000000001';
      const usage: string[][] = [
        ['key', 'generate-data-key'], // missing required --key
        ['key', 'generate-data-key', '--key', id, '--context', 'novalue'],
        ['key', 'generate-data-key', '--key', id, '--context', '=v'],
        ['key', 'generate-data-key', '--key', id, '--context', 'a=1', '--context', 'a=2'],
        ['key', 'generate-data-key', '--key', id, '--bytes', '1025'],
        ['key', 'generate-data-key', '--key', id, '--spec', 'AES_512'],
        ['key', 'schedule-deletion', id, '--days', '6'],
        ['key', 'schedule-deletion', id, '--days', '31'],
        ['key', 'create', '--rotation-days', '0'],
        ['key', 'list', '--limit', '1001'],
        ['key', 'rotation', id, '--enable', '--disable'],
        ['key', 'decrypt', '--ciphertext-b64', 'not base64!'],
        ['key', 'describe', id, '--no-such-option'],
        ['key', 'describe', id, '--timeout', '0'],
      ].map((args) => [...args, '--profile', svc.profile]);

      // Not usage errors (exit 1): the service's own context rules (CONTEXT_INVALID, on a real key); key policies,
      // a stub for now (NOT_IMPLEMENTED); no profile; a profile whose endpoint is dead; a profile that trusts
      // another measurement (refused in the attested session's handshake, ENCLAVE_NOT_TRUSTED, or against
      // describe, ENCLAVE_MEASUREMENT_MISMATCH).
      const real = await createKey();
      const profile = JSON.parse(readFileSync(svc.profile, 'utf8')) as Record<string, unknown>;
      const variant = (name: string, change: Record<string, unknown>): string => {
        const path = join(svc.dir, name);
        writeFileSync(path, JSON.stringify({ ...profile, ...change }));
        return path;
      };
      const dead = variant('dead.json', { endpoint: `unix:${join(svc.dir, 'no.sock')}` });
      const other = variant('other.json', {
        trust: { ...(profile['trust'] as object), measurement: '0'.repeat(96) },
      });
      const failures: Array<[string[], string]> = [
        [
          ['key', 'generate-data-key', '--key', real, '--context', 'ekms:x=1', '--profile', svc.profile],
          'CONTEXT_INVALID',
        ],
        [
          [
            'key',
            'policy',
            'put',
            real,
            '--file',
            join(svc.dir, 'missing-policy.json'),
            '--profile',
            svc.profile,
          ],
          'IO_ERROR',
        ],
        [['key', 'list', '--profile', join(svc.dir, 'none.json')], 'PROFILE_NOT_FOUND'],
        [['key', 'list', '--profile', dead], 'CONNECTION_FAILED'],
        [['key', 'describe', real, '--profile', other], 'ENCLAVE_NOT_TRUSTED|ENCLAVE_MEASUREMENT_MISMATCH'],
      ];

      // None changes anything: two at a time.
      const all = [...usage, ...failures.map(([args]) => args)];
      const results = await mapLimit(all, 2, (args) => runCli([...args, '--json'], { cwd: svc.dir }));
      for (const [i, args] of usage.entries()) {
        expect(failureOf(results[i]!), args.join(' ')).toMatchObject({ exit: 2, code: 'USAGE_ERROR' });
      }
      for (const [i, [args, codes]] of failures.entries()) {
        const f = failureOf(results[usage.length + i]!);
        expect(f.exit, args.join(' ')).toBe(1);
        expect(codes.split('|'), args.join(' ')).toContain(f.code);
      }
    },
    TEST_TIMEOUT,
  );
});
