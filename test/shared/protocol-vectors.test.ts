/** Pins the test vectors printed in docs/protocol.md, so the document and the code cannot drift apart. */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseEndpointAddress, vsockBridgeArgs } from '../../shared/address.js';
import { EkmsError } from '../../shared/errors.js';
import { encodeStreamFrame } from '../../shared/frame.js';
import { encodeRequest } from '../../shared/messages.js';
import { VERSION } from '../../shared/version.js';

const REPO = resolve(import.meta.dirname, '../..');
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('docs/protocol.md vectors', () => {
  it('encodes the documented health request byte for byte', () => {
    const doc = readFileSync(resolve(REPO, 'docs/protocol.md'), 'utf8');
    const m = /`encodeRequest\(7, "health"\)` =\n`([0-9a-f ]+)`/.exec(doc);
    expect(m, 'vector present in docs/protocol.md').not.toBeNull();
    expect(hex(encodeRequest(7, 'health'))).toBe(m![1]!.replaceAll(' ', ''));
    expect(hex(encodeStreamFrame(encodeRequest(7, 'health'))).slice(0, 8)).toBe('0000001a');
  });
});

describe('endpoint addresses', () => {
  it('parses unix and vsock addresses', () => {
    expect(parseEndpointAddress('unix:/tmp/e.sock')).toEqual({ kind: 'unix', path: '/tmp/e.sock' });
    expect(parseEndpointAddress('vsock:16:5000')).toEqual({ kind: 'vsock', cid: 16, port: 5000 });
  });

  for (const bad of [
    'unix:',
    `unix:/${'x'.repeat(120)}`,
    'vsock:16',
    'vsock:-1:5',
    'vsock:4294967296:1',
    'tcp:1',
    '',
  ]) {
    it(`rejects "${bad.slice(0, 20)}" with CONFIG_INVALID`, () => {
      expect(() => parseEndpointAddress(bad)).toThrowError(EkmsError);
      try {
        parseEndpointAddress(bad);
      } catch (err) {
        expect((err as EkmsError).code).toBe('CONFIG_INVALID');
      }
    });
  }

  it('builds the socat bridge for each side of a vsock link', () => {
    expect(vsockBridgeArgs('listen', { cid: 16, port: 5000 }, '/run/e.sock')).toEqual([
      'VSOCK-LISTEN:5000,fork,reuseaddr',
      'UNIX-CONNECT:/run/e.sock',
    ]);
    expect(vsockBridgeArgs('connect', { cid: 16, port: 5000 }, '/run/h.sock')).toEqual([
      'UNIX-LISTEN:/run/h.sock,fork,unlink-early,mode=600',
      'VSOCK-CONNECT:16:5000',
    ]);
  });
});

it('shared/version.ts matches package.json', () => {
  const pkg = JSON.parse(readFileSync(resolve(REPO, 'package.json'), 'utf8')) as { version: string };
  expect(VERSION).toBe(pkg.version);
});
