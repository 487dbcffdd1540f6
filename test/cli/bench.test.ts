/** `ekms bench` (issue 8): the CLI contract around the harness; the figures themselves are never asserted. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CLI } from '../helpers/service.js';

const run = promisify(execFile);

describe('ekms bench', () => {
  it('an unknown suite is a usage error: exit 2 and one JSON document with USAGE_ERROR', async () => {
    const r = await run(process.execPath, [CLI, 'bench', 'no-such-suite', '--json']).then(
      () => ({ code: 0, stdout: '' }),
      (err: { code: number; stdout: string }) => ({ code: err.code, stdout: err.stdout }),
    );
    expect(r.code).toBe(2);
    const doc = JSON.parse(r.stdout) as { ok: boolean; code: string; message: string };
    expect(doc).toMatchObject({ ok: false, code: 'USAGE_ERROR' });
    expect(doc.message).toMatch(/no-such-suite/);
  });
});
