/**
 * The audit log's format and verifier (shared/audit.ts; docs/audit.md): every tamper kind is detected with its code
 * and names the record's seq; the cross-restart rules (truncation, rollback, lost checkpoint lines, crashed runs);
 * and a property: any single-byte change anywhere in a cleanly closed log is detected.
 */
import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { EnclaveTrust } from '../../client/session.js';
import type { Attestor } from '../../enclave/attestor/attestor.js';
import {
  AUDIT_GENESIS_PREV,
  type AuditRecord,
  type AuditSummary,
  auditLineHash,
  encodeAuditRecord,
  parseAuditLine,
  type VerifyAuditOptions,
  verifyAuditLog,
} from '../../shared/audit.js';
import { AuditError } from '../../shared/audit-errors.js';
import {
  checkBootWith,
  FakeHost,
  newRun,
  type Run,
  rechain,
  recordSample,
  simulatedNitro,
} from '../helpers/audit-fixtures.js';
import { runs as propertyRuns } from '../helpers/property-runs.js';

let attestor: Attestor;
let trust: EnclaveTrust;
/** A cleanly closed log of two runs (12 + 5 events, a checkpoint every 4). */
let host: FakeHost;
let runs: Run[];

function verify(lines: readonly string[] | string, options: Partial<VerifyAuditOptions> = {}): AuditSummary {
  const text = typeof lines === 'string' ? lines : lines.map((l) => `${l}\n`).join('');
  return verifyAuditLog(text, { checkBoot: checkBootWith(trust), ...options });
}

function failure(fn: () => unknown): AuditError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AuditError) return err;
    throw err;
  }
  throw new Error('expected an AuditError');
}

const kinds = (lines: readonly string[]): string[] => lines.map((l) => parseAuditLine(l).kind);
const indexOfSeq = (lines: readonly string[], seq: number): number =>
  lines.findIndex((l) => parseAuditLine(l).seq === seq);

beforeAll(async () => {
  ({ attestor, trust } = await simulatedNitro());
  host = new FakeHost();
  runs = [await newRun(attestor), await newRun(attestor)];
  const first = await host.open(runs[0]!, { checkpointEvery: 4 });
  await recordSample(first, 12);
  await first.close();
  const second = await host.open(runs[1]!, { checkpointEvery: 4 });
  await recordSample(second, 5);
  await second.close();
});

describe('a clean log', () => {
  it('verifies, with the boot evidence checked, and summarises per key and principal', () => {
    const s = verify(host.lines);
    expect(s).toMatchObject({
      lines: host.lines.length,
      events: 17,
      unsealed: 0,
      abandoned: 0,
      recovered: 0,
      bootEvidence: 'checked',
    });
    expect(s.boots.map((b) => b.seq)).toEqual([0, indexOfSeq(host.lines, s.boots[1]!.seq)]);
    expect(s.head).toEqual(s.last);
    expect(s.head).toEqual({ seq: host.lines.length - 1, hash: auditLineHash(host.lines.at(-1)!) });
    // 12 events: i%3 → key, outcome; 5 more likewise.
    expect(s.keys['key-0']).toEqual({ allowed: 4 + 2, denied: 0, error: 0 });
    expect(s.keys['key-1']).toEqual({ allowed: 0, denied: 4 + 2, error: 0 });
    expect(s.keys['key-2']).toEqual({ allowed: 0, denied: 0, error: 4 + 1 });
    const principals = Object.values(s.principals).reduce((n, c) => n + c.allowed + c.denied + c.error, 0);
    const anonymous = s.anonymous.allowed + s.anonymous.denied + s.anonymous.error;
    expect(principals + anonymous).toBe(17);
    expect(anonymous).toBe(3 + 1);
  });

  it('has the documented shape: boot, boot checkpoint, events with interval checkpoints, shutdown', () => {
    const k = kinds(host.lines);
    expect(k.slice(0, 2)).toEqual(['boot', 'checkpoint']);
    expect(k.filter((x) => x === 'boot')).toHaveLength(2);
    const reasons = host.lines
      .map((l) => parseAuditLine(l))
      .flatMap((r) => (r.kind === 'checkpoint' ? [r.reason] : []));
    expect(reasons).toEqual([
      'boot',
      'interval',
      'interval',
      'interval',
      'shutdown',
      'boot',
      'interval',
      'shutdown',
    ]);
    const first = parseAuditLine(host.lines[0]!);
    expect(first).toMatchObject({ seq: 0, prev: AUDIT_GENESIS_PREV, kind: 'boot', resumed: null });
  });

  it('is self-consistent without the boot check, and says the evidence was not checked', () => {
    expect(verifyAuditLog(host.text(), { checkBoot: null }).bootEvidence).toBe('unchecked');
  });

  it('an empty log has nothing to verify', () => {
    expect(verify('')).toMatchObject({ lines: 0, events: 0, head: null, last: null });
  });
});

describe('tampering is detected, with its code and the seq', () => {
  const eventAt = (lines: readonly string[], n: number): number =>
    lines.findIndex((l, i) => i >= n && parseAuditLine(l).kind === 'event');

  it('edited field: the next record no longer chains (AUDIT_CHAIN_BROKEN)', () => {
    const lines = [...host.lines];
    const i = eventAt(lines, 3);
    lines[i] = lines[i]!.replace('"requestId":"r', '"requestId":"x');
    expect(lines[i]).not.toBe(host.lines[i]);
    const err = failure(() => verify(lines));
    expect(err.code).toBe('AUDIT_CHAIN_BROKEN');
    expect(err.details).toMatchObject({ seq: i + 1, line: i + 2 });
    expect(err.message).toContain(`seq ${i + 1}`);
    expect(err.message).toContain(`the line before (seq ${i})`);
  });

  it('deleted line: a seq is missing (AUDIT_CHAIN_BROKEN)', () => {
    const lines = [...host.lines];
    const i = eventAt(lines, 5);
    lines.splice(i, 1);
    const err = failure(() => verify(lines));
    expect(err.code).toBe('AUDIT_CHAIN_BROKEN');
    expect(err.details).toMatchObject({ seq: i + 1 });
    expect(err.message).toContain(`records seq ${i}..${i} are missing`);
  });

  it('inserted line: a copied record repeats a seq (AUDIT_CHAIN_BROKEN)', () => {
    const lines = [...host.lines];
    const i = eventAt(lines, 5);
    lines.splice(i + 1, 0, lines[i]!);
    const err = failure(() => verify(lines));
    expect(err.code).toBe('AUDIT_CHAIN_BROKEN');
    expect(err.details).toMatchObject({ seq: i, line: i + 2 });
    expect(err.message).toContain('repeats or goes back');
  });

  it('inserted forged record re-chained by the host: the next checkpoint signature fails (AUDIT_SIGNATURE_INVALID)', () => {
    const i = eventAt(host.lines, 3);
    const forged = [...host.lines.slice(0, i + 1), host.lines[i]!, ...host.lines.slice(i + 1)];
    let seq = 0;
    const lines = rechain(forged, (r) => ({ ...r, seq: seq++ }) as AuditRecord);
    const err = failure(() => verify(lines));
    expect(err.code).toBe('AUDIT_SIGNATURE_INVALID');
    const cp = lines.findIndex((l, j) => j > i && parseAuditLine(l).kind === 'checkpoint');
    expect(err.details).toMatchObject({ seq: cp, line: cp + 1 });
  });

  it('reordered lines: AUDIT_CHAIN_BROKEN at the first one out of place', () => {
    const lines = [...host.lines];
    const i = eventAt(lines, 3);
    [lines[i], lines[i + 1]] = [lines[i + 1]!, lines[i]!];
    const err = failure(() => verify(lines));
    expect(err.code).toBe('AUDIT_CHAIN_BROKEN');
    expect(err.details).toMatchObject({ seq: i + 1, line: i + 1 });
    expect(err.message).toContain(`expected seq ${i} after seq ${i - 1}`);
  });

  it('truncated tail: detected against the expected head (AUDIT_TRUNCATED)', () => {
    const full = verify(host.lines);
    const lastCheckpointBefore = host.lines.length - 4;
    const cut = host.lines.slice(0, lastCheckpointBefore);
    // The cut log alone is a valid shorter log (docs/audit.md §5) …
    expect(() => verify(cut)).not.toThrow();
    // … but not the log whose head an earlier verification saw.
    const err = failure(() => verify(cut, { expectHead: full.head! }));
    expect(err.code).toBe('AUDIT_TRUNCATED');
    expect(err.message).toContain(`before the expected checkpoint seq ${full.head!.seq}`);
  });

  it('truncated inside a line: AUDIT_TRUNCATED', () => {
    const text = host.text();
    const err = failure(() => verify(text.slice(0, text.length - 10)));
    expect(err.code).toBe('AUDIT_TRUNCATED');
    expect(err.details).toMatchObject({ line: host.lines.length });
  });

  it('a rewritten log does not hold the expected head: AUDIT_CHAIN_BROKEN', () => {
    const err = failure(() =>
      verify(host.lines, { expectHead: { seq: 1, hash: auditLineHash(host.lines[0]!) } }),
    );
    expect(err.code).toBe('AUDIT_CHAIN_BROKEN');
    expect(err.details).toMatchObject({ seq: 1 });
  });

  it('forged checkpoint signature: AUDIT_SIGNATURE_INVALID', () => {
    const lines = [...host.lines];
    const i = 5 + kinds(lines.slice(5)).indexOf('checkpoint');
    const r = parseAuditLine(lines[i]!);
    if (r.kind !== 'checkpoint') throw new Error('not a checkpoint');
    const flipped = (r.signature[0] === 'a' ? 'b' : 'a') + r.signature.slice(1);
    lines[i] = encodeAuditRecord({ ...r, signature: flipped });
    const err = failure(() => verify(lines));
    expect(err.code).toBe('AUDIT_SIGNATURE_INVALID');
    expect(err.details).toMatchObject({ seq: i, line: i + 1 });
  });

  it('checkpoint signed by another key (the host re-signs): AUDIT_SIGNATURE_INVALID', () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const lines = rechain(host.lines, (r) => r, privateKey);
    const err = failure(() => verify(lines));
    expect(err.code).toBe('AUDIT_SIGNATURE_INVALID');
    expect(err.details).toMatchObject({ seq: 1 });
  });

  it('swapped identity key (host re-signs with its own key): the evidence does not bind it (AUDIT_BOOT_UNTRUSTED)', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url').toString('hex');
    const lines = rechain(host.lines, (r) => (r.kind === 'boot' ? { ...r, identity: raw } : r), privateKey);
    // Self-consistent: only the evidence check can tell (docs/audit.md §4).
    expect(() => verifyAuditLog(host.text(lines), { checkBoot: null })).not.toThrow();
    const err = failure(() => verify(lines));
    expect(err.code).toBe('AUDIT_BOOT_UNTRUSTED');
    expect(err.details).toMatchObject({ seq: 0, line: 1 });
    expect(err.message).toContain('ENCLAVE_NOT_TRUSTED');
  });

  it('boot evidence from an untrusted root or another measurement: AUDIT_BOOT_UNTRUSTED', () => {
    const noRoot = failure(() => verify(host.lines, { checkBoot: checkBootWith({ ...trust, roots: [] }) }));
    expect(noRoot.code).toBe('AUDIT_BOOT_UNTRUSTED');
    expect(noRoot.message).toContain('CERT_ROOT_UNTRUSTED');
    const other = failure(() =>
      verify(host.lines, { checkBoot: checkBootWith({ ...trust, measurement: 'ab'.repeat(48) }) }),
    );
    expect(other.code).toBe('AUDIT_BOOT_UNTRUSTED');
    expect(other.details).toMatchObject({ seq: 0 });
  });

  it('authentic checkpoint with a wrong count: AUDIT_CHECKPOINT_INVALID', () => {
    const lines = rechain(
      host.lines,
      (r, i) => (r.kind === 'checkpoint' && i > 2 ? { ...r, count: r.count + 1 } : r),
      runs[0]!.key,
    );
    const err = failure(() => verify(lines));
    expect(err.code).toBe('AUDIT_CHECKPOINT_INVALID');
    expect(err.message).toContain('counts');
  });

  it('an event after the shutdown checkpoint: AUDIT_CHAIN_BROKEN', () => {
    const event = host.lines[kinds(host.lines).indexOf('event')]!;
    const lines = rechain([...host.lines, event], (r, i) => ({ ...r, seq: i }) as AuditRecord);
    const err = failure(() => verify(lines));
    expect(err.code).toBe('AUDIT_CHAIN_BROKEN');
    expect(err.message).toContain('shutdown checkpoint');
  });

  it('a log that does not start at seq 0: AUDIT_TRUNCATED', () => {
    const err = failure(() => verify(host.lines.slice(2)));
    expect(err.code).toBe('AUDIT_TRUNCATED');
    expect(err.details).toMatchObject({ seq: 2, line: 1 });
  });
});

describe('record format', () => {
  const event = (): string => host.lines[kinds(host.lines).indexOf('event')]!;

  it('refuses a non-canonical line (spacing, field order, escapes): AUDIT_RECORD_MALFORMED', () => {
    for (const line of [
      event().replace('"v":1,', '"v": 1,'),
      event().replace('{"v":1,"seq":', '{"seq":').replace(',"time":', ',"v":1,"time":'),
      event().replace('"operation":"Encrypt"', '"operation":"\\u0045ncrypt"'),
    ]) {
      expect(() => parseAuditLine(line), line).toThrow(
        expect.objectContaining({ code: 'AUDIT_RECORD_MALFORMED' }),
      );
    }
  });

  it('refuses unknown and missing fields, wrong types, bad hex, allowed with a code', () => {
    const base = JSON.parse(event()) as Record<string, unknown>;
    const cases: Record<string, unknown>[] = [
      { ...base, extra: 1 },
      Object.fromEntries(Object.entries(base).filter(([k]) => k !== 'requestId')),
      { ...base, seq: -1 },
      { ...base, seq: 1.5 },
      { ...base, prev: 'AB'.repeat(32) },
      { ...base, time: '2025-01-01T00:00:00Z' },
      { ...base, outcome: 'allowed', code: 'ACCESS_DENIED' },
      { ...base, outcome: 'denied', code: null },
      { ...base, authentication: 'password' },
      { ...base, attested: { type: 'tdx', measurement: 'ab'.repeat(48) } },
      { ...base, operation: '' },
    ];
    for (const c of cases) {
      expect(() => parseAuditLine(JSON.stringify(c)), JSON.stringify(c).slice(0, 80)).toThrow(
        expect.objectContaining({ code: 'AUDIT_RECORD_MALFORMED' }),
      );
    }
    expect(() => parseAuditLine('not json')).toThrow(
      expect.objectContaining({ code: 'AUDIT_RECORD_MALFORMED' }),
    );
    expect(() => parseAuditLine(new Uint8Array([0x7b, 0xff, 0x7d]))).toThrow(
      expect.objectContaining({ code: 'AUDIT_RECORD_MALFORMED', message: expect.stringContaining('UTF-8') }),
    );
  });

  it('refuses an empty or malformed time in a fresh process too (the last-valid-time memo starts empty)', async () => {
    const base = JSON.parse(event()) as Record<string, unknown>;
    vi.resetModules();
    const fresh = await import('../../shared/audit.js');
    for (const time of ['', '2025-01-01T00:00:00Z', null]) {
      expect(() => fresh.parseAuditLine(JSON.stringify({ ...base, time })), String(time)).toThrow(
        expect.objectContaining({ code: 'AUDIT_RECORD_MALFORMED' }),
      );
    }
    expect(fresh.parseAuditLine(event()).time).toBe(base['time']);
  });

  it('refuses another format version: AUDIT_VERSION_UNSUPPORTED', () => {
    const lines = [...host.lines];
    lines[2] = lines[2]!.replace('{"v":1,', '{"v":2,');
    const err = failure(() => verify(lines));
    expect(err.code).toBe('AUDIT_VERSION_UNSUPPORTED');
    expect(err.details).toMatchObject({ seq: 2, line: 3 });
  });

  it('refuses an over-long line before parsing it', () => {
    expect(() => parseAuditLine('x'.repeat(128 * 1024 + 1))).toThrow(
      expect.objectContaining({
        code: 'AUDIT_RECORD_MALFORMED',
        message: expect.stringContaining('exceeds'),
      }),
    );
  });

  it('round-trips: encode(parse(line)) = line for every record', () => {
    for (const line of host.lines) expect(encodeAuditRecord(parseAuditLine(line))).toBe(line);
  });
});

describe('restarts', () => {
  it('a run that crashed leaves unsigned records; the next boot continues from its last checkpoint', async () => {
    const h = new FakeHost();
    const a = await h.open(await newRun(attestor), { checkpointEvery: 4 });
    await recordSample(a, 6); // checkpoint after 4, two more unsigned: then the enclave dies (no close)
    const crashed = verify(h.lines);
    expect(crashed.unsealed).toBe(2);
    expect(() => verify(h.lines, { requireSealed: true })).toThrow(
      expect.objectContaining({ code: 'AUDIT_TAIL_UNSEALED' }),
    );
    const b = await h.open(await newRun(attestor), { checkpointEvery: 4 });
    await recordSample(b, 1);
    await b.close();
    const s = verify(h.lines);
    expect(s).toMatchObject({ abandoned: 2, unsealed: 0, events: 5 });
    expect(() => verify(h.lines, { requireSealed: true })).toThrow(
      expect.objectContaining({ code: 'AUDIT_TAIL_UNSEALED' }),
    );
  });

  it('host truncated the file before a restart: the boot record points past its end (AUDIT_TRUNCATED)', async () => {
    const h = new FakeHost();
    const a = await h.open(await newRun(attestor), { checkpointEvery: 4 });
    await recordSample(a, 9);
    await a.close();
    h.lines.splice(h.lines.length - 3); // drops two events and the shutdown checkpoint
    const b = await h.open(await newRun(attestor));
    await b.close();
    const err = failure(() => verify(h.lines));
    expect(err.code).toBe('AUDIT_TRUNCATED');
    const boot = h.lines.length - 3;
    expect(err.details).toMatchObject({ seq: parseAuditLine(h.lines[boot]!).seq, line: boot + 1 });
  });

  it('host rolled back the sealed head: the boot resumes from an older checkpoint (AUDIT_HEAD_ROLLBACK)', async () => {
    const h = new FakeHost();
    const a = await h.open(await newRun(attestor), { checkpointEvery: 4 });
    await recordSample(a, 9);
    await a.close();
    h.storage.rollback('audit.head', 2);
    const b = await h.open(await newRun(attestor));
    await b.close();
    const err = failure(() => verify(h.lines));
    expect(err.code).toBe('AUDIT_HEAD_ROLLBACK');
  });

  it('host dropped the sealed head: a new chain starts mid-file (AUDIT_HEAD_ROLLBACK)', async () => {
    const h = new FakeHost();
    const a = await h.open(await newRun(attestor));
    await recordSample(a, 2);
    await a.close();
    h.storage.drop('audit.head');
    const b = await h.open(await newRun(attestor));
    expect(b.resumed).toBe(false);
    await b.close();
    const err = failure(() => verify(h.lines));
    expect(err.code).toBe('AUDIT_HEAD_ROLLBACK');
    expect(err.details).toMatchObject({ seq: 0, line: 6 });
  });

  it('a checkpoint sealed but not appended (crash in between) is recovered from the next boot record', async () => {
    const h = new FakeHost();
    const a = await h.open(await newRun(attestor), { checkpointEvery: 3 });
    // The host loses the interval checkpoint's append: the enclave has already sealed it as the head.
    h.sink = async (line) => {
      if (line.includes('"reason":"interval"')) throw new Error('lost');
      h.lines.push(line);
    };
    await recordSample(a, 3);
    await expect(a.checkpoint()).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    expect(h.storage.has('audit.head')).toBe(true);
    h.sink = async (line) => {
      h.lines.push(line);
    };
    const b = await h.open(await newRun(attestor));
    await b.close();
    const s = verify(h.lines);
    expect(s).toMatchObject({ recovered: 1, events: 3, unsealed: 0 });
  });
});

describe('property: any single-byte change of a closed log is detected', () => {
  it('flipping any byte to any other value fails verification with an audit code', () => {
    const bytes = new TextEncoder().encode(host.text());
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: bytes.length - 1 }),
        fc.integer({ min: 1, max: 255 }),
        (pos, delta) => {
          const changed = bytes.slice();
          changed[pos] = (changed[pos]! + delta) & 0xff;
          const err = failure(() => verifyAuditLog(changed, { checkBoot: null }));
          expect(err).toBeInstanceOf(AuditError);
        },
      ),
      { numRuns: propertyRuns(400) },
    );
  });

  it('every cut before the end is detected against the expected head', () => {
    const text = host.text();
    const expectHead = verify(host.lines).head!;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: text.length - 1 }), (cut) => {
        const err = failure(() => verifyAuditLog(text.slice(0, cut), { checkBoot: null, expectHead }));
        expect(['AUDIT_TRUNCATED', 'AUDIT_CHAIN_BROKEN']).toContain(err.code);
      }),
      { numRuns: propertyRuns(200) },
    );
  });
});
