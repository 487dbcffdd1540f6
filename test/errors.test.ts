/**
 * docs/errors.md lists every error code, and every code it lists exists (style §1). Codes are registered by
 * the module of each family; importing them here registers them all.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import '../attestation/errors.js';
import '../shared/store-errors.js';
import '../shared/crypto-errors.js';
import '../shared/kms-errors.js';
import '../shared/session-errors.js';
import '../shared/audit-errors.js';
import '../shared/custody-errors.js';
import { EkmsError, registeredErrorCodes, toWireError } from '../shared/errors.js';

const doc = readFileSync(resolve(import.meta.dirname, '../docs/errors.md'), 'utf8');
/** Rows look like: | `CODE` | yes/no | summary | */
const documented = new Map<string, { retriable: boolean }>();
for (const m of doc.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \| (yes|no) \|/gm)) {
  documented.set(m[1]!, { retriable: m[2] === 'yes' });
}

describe('docs/errors.md', () => {
  it('documents every registered code with its retriable flag', () => {
    const missing: string[] = [];
    for (const [code, spec] of registeredErrorCodes()) {
      const d = documented.get(code);
      if (!d) missing.push(code);
      else expect(d.retriable, `retriable flag of ${code}`).toBe(spec.retriable);
    }
    expect(missing).toEqual([]);
  });

  it('lists no code that the code base does not define', () => {
    const unknown = [...documented.keys()].filter((c) => !registeredErrorCodes().has(c));
    expect(unknown).toEqual([]);
  });

  it('codes are UPPER_SNAKE_CASE and unique in the document', () => {
    const all = [...doc.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \|/gm)].map((m) => m[1]);
    expect(new Set(all).size).toBe(all.length);
    expect(documented.size).toBeGreaterThan(40);
  });
});

describe('EkmsError', () => {
  it('takes retriable from the registry unless the wire says otherwise', () => {
    expect(new EkmsError('ENCLAVE_UNAVAILABLE', 'x').retriable).toBe(true);
    expect(new EkmsError('FRAME_MALFORMED', 'x').retriable).toBe(false);
    expect(new EkmsError('SOME_FUTURE_CODE', 'x', { retriable: true }).retriable).toBe(true);
  });

  it('builds the wire form in one place and never leaks unexpected errors', () => {
    expect(toWireError(new EkmsError('REQUEST_INVALID', 'bad length'))).toEqual({
      code: 'REQUEST_INVALID',
      message: 'bad length',
      retriable: false,
    });
    const w = toWireError(new TypeError('key=deadbeef'));
    expect(w.code).toBe('INTERNAL_ERROR');
    expect(w.message).not.toContain('deadbeef');
    expect(toWireError('a string').code).toBe('INTERNAL_ERROR');
  });
});
