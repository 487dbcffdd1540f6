/**
 * The enclave's audit writer (enclave/audit/audit-log.ts) over the in-memory host storage: the chain continues
 * across reopen, checkpoints every N events, the sealed head, order under concurrency, fail-closed behaviour when
 * the host loses appends, and host truncation detected at reopen + verify.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { EnclaveTrust } from '../../client/session.js';
import type { Attestor } from '../../enclave/attestor/attestor.js';
import { AUDIT_HEAD_BLOB } from '../../enclave/audit/audit-log.js';
import { type AuditEventRecord, auditLineHash, parseAuditLine, verifyAuditLog } from '../../shared/audit.js';
import { contextDigest } from '../../shared/encryption-context.js';
import { checkBootWith, FakeHost, newRun, recordSample, simulatedNitro } from '../helpers/audit-fixtures.js';

let attestor: Attestor;
let trust: EnclaveTrust;

beforeAll(async () => {
  ({ attestor, trust } = await simulatedNitro());
});

const records = (h: FakeHost) => h.lines.map((l) => parseAuditLine(l));

describe('AuditLog', () => {
  it('opens a new chain: boot record at seq 0, then a checkpoint sealed as the head', async () => {
    const h = new FakeHost();
    const run = await newRun(attestor);
    const log = await h.open(run);
    expect(log.resumed).toBe(false);
    const [boot, cp] = records(h);
    expect(boot).toMatchObject({
      seq: 0,
      kind: 'boot',
      identity: Buffer.from(run.publicKey).toString('hex'),
      resumed: null,
    });
    expect(cp).toMatchObject({ seq: 1, kind: 'checkpoint', reason: 'boot', count: 0 });
    expect(log.sealedHead).toEqual({ seq: 1, hash: auditLineHash(h.lines[1]!) });
    expect(log.head).toEqual(log.sealedHead);
    expect(h.storage.has(AUDIT_HEAD_BLOB)).toBe(true);
    // Sealed: the host sees no record in the blob.
    expect(Buffer.from(h.storage.peek(AUDIT_HEAD_BLOB)!).toString('latin1')).not.toContain('checkpoint');
    await log.close();
  });

  it('checkpoints every N events and on close, counting the events', async () => {
    const h = new FakeHost();
    const log = await h.open(await newRun(attestor), { checkpointEvery: 3 });
    await recordSample(log, 7);
    await log.close();
    const kinds = records(h).map((r) => (r.kind === 'checkpoint' ? `cp:${r.reason}:${r.count}` : r.kind));
    expect(kinds).toEqual([
      'boot',
      'cp:boot:0',
      'event',
      'event',
      'event',
      'cp:interval:3',
      'event',
      'event',
      'event',
      'cp:interval:6',
      'event',
      'cp:shutdown:7',
    ]);
    expect(verifyAuditLog(h.text(), { checkBoot: checkBootWith(trust) })).toMatchObject({
      events: 7,
      unsealed: 0,
    });
  });

  it('the timer checkpoint (checkpointIfDue) writes one only when events followed the last: idle writes nothing', async () => {
    const h = new FakeHost();
    const log = await h.open(await newRun(attestor));
    await log.checkpointIfDue(); // right after the boot checkpoint: nothing to sign
    expect(h.lines).toHaveLength(2);
    await recordSample(log, 2);
    expect(log.eventsSinceCheckpoint).toBe(2);
    await log.checkpointIfDue();
    expect(log.eventsSinceCheckpoint).toBe(0);
    const written = h.lines.length;
    expect(records(h).at(-1)).toMatchObject({ kind: 'checkpoint', reason: 'interval', count: 2 });
    for (let tick = 0; tick < 5; tick++) await log.checkpointIfDue();
    expect(h.lines).toHaveLength(written);
    await log.close();
    await log.checkpointIfDue(); // after close: nothing (the shutdown checkpoint is the run's last line)
    expect(records(h).at(-1)).toMatchObject({ kind: 'checkpoint', reason: 'shutdown' });
  });

  it('continues the chain across reopen from the sealed head', async () => {
    const h = new FakeHost();
    const a = await h.open(await newRun(attestor));
    await recordSample(a, 2);
    await a.close();
    const lastOfFirstRun = h.lines.at(-1)!;
    const b = await h.open(await newRun(attestor));
    expect(b.resumed).toBe(true);
    const boot = parseAuditLine(h.lines[h.lines.length - 2]!);
    expect(boot).toMatchObject({
      kind: 'boot',
      seq: parseAuditLine(lastOfFirstRun).seq + 1,
      prev: auditLineHash(lastOfFirstRun),
      resumed: lastOfFirstRun,
    });
    await recordSample(b, 1);
    await b.close();
    const s = verifyAuditLog(h.text(), { checkBoot: checkBootWith(trust) });
    expect(s).toMatchObject({ events: 3, checkpoints: 4, unsealed: 0, abandoned: 0 });
    expect(s.boots).toHaveLength(2);
    expect(s.boots[0]!.identity).not.toBe(s.boots[1]!.identity);
  });

  it('host truncation is detected at reopen + verify (AUDIT_TRUNCATED names the boot record)', async () => {
    const h = new FakeHost();
    const a = await h.open(await newRun(attestor), { checkpointEvery: 2 });
    await recordSample(a, 5);
    await a.close();
    const before = verifyAuditLog(h.text(), { checkBoot: null });
    h.lines.splice(h.lines.length - 4); // the host drops the tail, shutdown checkpoint included
    // Until the next boot the shorter file is self-consistent (docs/audit.md §5) — unless the head is known.
    expect(() => verifyAuditLog(h.text(), { checkBoot: null })).not.toThrow();
    expect(() => verifyAuditLog(h.text(), { checkBoot: null, expectHead: before.head! })).toThrow(
      expect.objectContaining({ code: 'AUDIT_TRUNCATED' }),
    );
    const b = await h.open(await newRun(attestor));
    await b.close();
    const bootLine = h.lines.length - 3;
    expect(() => verifyAuditLog(h.text(), { checkBoot: null })).toThrow(
      expect.objectContaining({
        code: 'AUDIT_TRUNCATED',
        details: { seq: before.last!.seq + 1, line: bootLine + 1 },
      }),
    );
  });

  it('hands lines to the sink in seq order under concurrency, even when appends complete out of order', async () => {
    const h = new FakeHost();
    h.sink = async (line) => {
      h.lines.push(line);
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 5)));
    };
    const log = await h.open(await newRun(attestor), { checkpointEvery: 5 });
    await recordSample(log, 40);
    await log.close();
    expect(records(h).map((r) => r.seq)).toEqual(h.lines.map((_, i) => i));
    expect(verifyAuditLog(h.text(), { checkBoot: null })).toMatchObject({ events: 40, unsealed: 0 });
  });

  it('a checkpoint seals the head only after earlier lines are durable, and later lines wait behind it', async () => {
    const h = new FakeHost();
    const log = await h.open(await newRun(attestor));
    const handed: string[] = [];
    const acks: Array<() => void> = [];
    h.sink = (line) => {
      const r = parseAuditLine(line);
      handed.push(r.kind === 'checkpoint' ? 'checkpoint' : String((r as AuditEventRecord).requestId));
      h.lines.push(line);
      return new Promise<void>((r) => acks.push(r));
    };
    const puts: number[] = [];
    const put = h.storage.put.bind(h.storage);
    h.storage.put = async (name, bytes) => {
      puts.push(handed.length);
      return put(name, bytes);
    };
    const event = (requestId: string) =>
      ({
        principal: 'a',
        authentication: 'signature',
        operation: 'Encrypt',
        outcome: 'allowed',
        requestId,
      }) as const;
    const a = log.record(event('a'));
    expect(handed).toEqual(['a']); // nothing waits: handed over at once
    const cp = log.checkpoint();
    const b = log.record(event('b'));
    await new Promise((r) => setTimeout(r, 20));
    // The head is not sealed while "a" is not durable, and "b" is not handed over before the checkpoint.
    expect(puts).toEqual([]);
    expect(handed).toEqual(['a']);
    acks.shift()!();
    await a;
    await new Promise((r) => setTimeout(r, 20));
    expect(puts).toEqual([1]);
    expect(handed).toEqual(['a', 'checkpoint', 'b']);
    for (const ack of acks.splice(0)) ack();
    await Promise.all([cp, b]);
    // Once nothing waits, lines are handed over at once again, in seq order.
    const c = log.record(event('c'));
    expect(handed).toEqual(['a', 'checkpoint', 'b', 'c']);
    acks.shift()!();
    await c;
    expect(records(h).map((r) => r.seq)).toEqual(h.lines.map((_, i) => i));
  });

  it('records the digest of the canonical encryption context, and null for an invalid one', async () => {
    const h = new FakeHost();
    const log = await h.open(await newRun(attestor));
    await log.record({
      principal: 'alice',
      authentication: 'signature',
      operation: 'Decrypt',
      keyId: 'k',
      keyVersion: 2,
      context: { b: '2', a: '1' },
      outcome: 'allowed',
    });
    await log.record({
      principal: 'alice',
      authentication: 'signature',
      operation: 'Decrypt',
      context: { 'ekms:reserved': 'x' },
      outcome: 'error',
      code: 'CONTEXT_INVALID',
    });
    const [ok, bad] = records(h).filter((r): r is AuditEventRecord => r.kind === 'event');
    expect(ok!.contextDigest).toBe(Buffer.from(contextDigest({ a: '1', b: '2' })).toString('hex'));
    expect(ok).toMatchObject({ keyId: 'k', keyVersion: 2, attested: null, requestId: null, code: null });
    expect(bad!.contextDigest).toBeNull();
    await log.close();
  });

  it('refuses an invalid event without consuming a seq (AUDIT_RECORD_MALFORMED)', async () => {
    const h = new FakeHost();
    const log = await h.open(await newRun(attestor));
    const head = log.head;
    await expect(
      log.record({ principal: 'a', authentication: 'signature', operation: 'Encrypt', outcome: 'denied' }),
    ).rejects.toMatchObject({ code: 'AUDIT_RECORD_MALFORMED' });
    await expect(
      log.record({
        principal: 'a',
        authentication: 'signature',
        operation: 'Encrypt',
        outcome: 'allowed',
        contextDigest: 'XYZ',
      }),
    ).rejects.toMatchObject({ code: 'AUDIT_RECORD_MALFORMED' });
    expect(log.head).toEqual(head);
    await log.close();
    expect(() => verifyAuditLog(h.text(), { checkBoot: null })).not.toThrow();
  });

  it('fails closed when the host loses an append: every later record is AUDIT_UNAVAILABLE', async () => {
    const h = new FakeHost();
    const log = await h.open(await newRun(attestor));
    h.sink = async () => {
      throw new Error('disk on fire');
    };
    const event = {
      principal: 'a',
      authentication: 'signature',
      operation: 'Encrypt',
      outcome: 'allowed',
    } as const;
    await expect(log.record(event)).rejects.toMatchObject({
      code: 'AUDIT_UNAVAILABLE',
      message: expect.stringContaining('disk on fire'),
    });
    h.sink = async (line) => {
      h.lines.push(line);
    };
    await expect(log.record(event)).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    await expect(log.close()).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
  });

  it('fails closed when the sealed head cannot be stored (the checkpoint is not appended)', async () => {
    const h = new FakeHost();
    const log = await h.open(await newRun(attestor));
    const lines = h.lines.length;
    h.storage.failNext('put', { name: AUDIT_HEAD_BLOB, code: 'STORE_FULL' });
    await expect(log.checkpoint()).rejects.toMatchObject({
      code: 'AUDIT_UNAVAILABLE',
      message: expect.stringContaining('STORE_FULL'),
    });
    expect(h.lines).toHaveLength(lines);
  });

  it('close is idempotent; nothing is recorded after it', async () => {
    const h = new FakeHost();
    const log = await h.open(await newRun(attestor));
    await Promise.all([log.close(), log.close()]);
    expect(records(h).filter((r) => r.kind === 'checkpoint' && r.reason === 'shutdown')).toHaveLength(1);
    await expect(
      log.record({ principal: null, authentication: 'none', operation: 'Health', outcome: 'allowed' }),
    ).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE', message: expect.stringContaining('closed') });
  });

  it('refuses to continue from a corrupt sealed head (the enclave must not start)', async () => {
    const h = new FakeHost();
    await (await h.open(await newRun(attestor))).close();
    h.storage.corrupt(AUDIT_HEAD_BLOB, -1);
    await expect(h.open(await newRun(attestor))).rejects.toMatchObject({ code: 'SEALED_BLOB_CORRUPT' });
  });

  it('refuses a sealed head made under another root key', async () => {
    const h = new FakeHost();
    await (await h.open(await newRun(attestor))).close();
    await expect(
      h.open(await newRun(attestor), { rootKey: new Uint8Array(32).fill(9) }),
    ).rejects.toMatchObject({
      code: 'SEALED_KEY_MISMATCH',
    });
  });

  it('refuses a bad checkpoint interval', async () => {
    const h = new FakeHost();
    await expect(h.open(await newRun(attestor), { checkpointEvery: 0 })).rejects.toMatchObject({
      code: 'AUDIT_RECORD_MALFORMED',
    });
  });
});
