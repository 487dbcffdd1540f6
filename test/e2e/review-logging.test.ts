/**
 * Review: logs record codes and sizes, never payloads (style §15). The host's redaction paths are checked on the
 * logger itself; the whole service is checked by running `ekms start` at debug level (host and enclave) and
 * searching everything it logged for the parameters and results that went through it.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../host/logger.js';
import type { EkmsError } from '../../shared/errors.js';
import { connectProfile } from '../helpers/connect.js';
import { CLI } from '../helpers/service.js';

describe('host logger redaction', () => {
  it('redacts payload-bearing fields at the top level and one level down', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const log = createLogger('debug', sink);
    const secret = 'S3CRET-PAYLOAD';
    log.info({ params: { a: secret } }, 'top-level params');
    log.info({ req: { params: { a: secret }, op: 'health' } }, 'nested params');
    log.info({ res: { result: secret } }, 'nested result');
    log.info({ err: { frame: secret, body: secret } }, 'nested frame and body');
    log.child({ component: 'x' }).info({ key: secret, payload: secret, plaintext: secret }, 'child');
    log.info({ conn: { secret } }, 'nested secret');
    const all = lines.join('');
    expect(all).not.toContain(secret);
    expect(all.match(/\[redacted\]/g)?.length).toBe(9);
    // What may be logged still is: codes, sizes, op names.
    expect(all).toContain('"op":"health"');
  });
});

describe('service logs', () => {
  it('at debug level, neither host nor enclave logs parameters or results', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ekms-review-log-'));
    const child = spawn(
      process.execPath,
      [CLI, 'start', '--listen', `unix:${join(dir, 'h.sock')}`, '--log-level', 'debug'],
      {
        cwd: dir,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let logs = '';
    child.stderr.on('data', (d: Buffer) => {
      logs += d.toString();
    });
    try {
      const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
        let buf = '';
        child.stdout.on('data', (d: Buffer) => {
          buf += d.toString();
          const line = buf.split('\n').find((l) => l.includes('"ready"'));
          if (line) resolve(JSON.parse(line) as Record<string, unknown>);
        });
        child.on('exit', (code) => reject(new Error(`ekms start exited ${code}: ${logs}`)));
      });
      // The profile ekms start wrote: its trust and admin key (the session and authenticate are logged too).
      const client = await connectProfile(ready['profile'] as string);
      expect(client.endpoint).toBe(ready['endpoint']);
      const marker = 'MARKER-7f3a9c-PARAM';
      const randoms: Uint8Array[] = [];
      for (let i = 0; i < 5; i++) randoms.push(await client.generateRandom(32));
      const codes: string[] = [];
      for (const params of [{ length: 8, [marker]: marker }, { length: marker }, { note: marker }]) {
        await client.request('generateRandom', params).catch((e: EkmsError) => codes.push(e.code));
      }
      await client.request(`op${marker.replace(/-/g, '')}`).catch((e: EkmsError) => codes.push(e.code));
      expect(codes).toEqual(['REQUEST_INVALID', 'REQUEST_INVALID', 'REQUEST_INVALID', 'OPERATION_UNKNOWN']);
      client.close();
      await new Promise((r) => setTimeout(r, 300));
      // The debug log did record the traffic (so the search below is meaningful)…
      expect(logs).toMatch(/"code":"REQUEST_INVALID"/);
      expect(logs).toMatch(/"op":"generateRandom"/);
      // …but not what it carried.
      expect(logs).not.toContain(marker);
      for (const r of randoms) {
        expect(logs).not.toContain(Buffer.from(r).toString('hex'));
        expect(logs).not.toContain(Buffer.from(r).toString('base64'));
        expect(logs).not.toContain(Array.from(r).join(','));
      }
    } finally {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
