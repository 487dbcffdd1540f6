/**
 * The host's audit sink (host/audit-sink.ts) and the `audit.append` op of the storage channel: the enclave's
 * AuditLog writing through a real StorageClient into `<dir>/audit.jsonl`, which then verifies; batching (one fsync
 * per batch), order, refused lines, and a torn last line cut at reopen.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EnclaveTrust } from '../../client/session.js';
import type { Attestor } from '../../enclave/attestor/attestor.js';
import { AuditLog } from '../../enclave/audit/audit-log.js';
import { StorageClient } from '../../enclave/storage/storage-client.js';
import { AuditFileSink } from '../../host/audit-sink.js';
import { BlobStore } from '../../host/blob-store.js';
import { type StorageServer, startStorageServer } from '../../host/storage-server.js';
import { verifyAuditLog } from '../../shared/audit.js';
import { checkBootWith, newRun, recordSample, simulatedNitro } from '../helpers/audit-fixtures.js';

const silent = pino({ level: 'silent' });
let dir: string;
let attestor: Attestor;
let trust: EnclaveTrust;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ekms-audit-sink-'));
  ({ attestor, trust } = await simulatedNitro());
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('audit.append over the storage channel', () => {
  let server: StorageServer;
  let client: StorageClient;

  beforeAll(async () => {
    server = await startStorageServer(join(dir, 's.sock'), await BlobStore.open(join(dir, 'state')), silent);
    client = await StorageClient.connect(join(dir, 's.sock'));
  });
  afterAll(async () => {
    client.close();
    await server.close();
  });

  it('writes the log beside the blob store, and the file verifies', async () => {
    expect(server.auditLogPath).toBe(join(dir, 'audit.jsonl'));
    const run = await newRun(attestor);
    const log = await AuditLog.open({
      storage: client,
      rootKey: new Uint8Array(32).fill(3),
      identity: run.identity,
      evidence: run.evidence,
      now: Date.now,
      sink: (line) => client.appendAudit(line),
      checkpointEvery: 8,
    });
    await recordSample(log, 30);
    await log.close();
    const text = readFileSync(server.auditLogPath, 'utf8');
    expect(verifyAuditLog(text, { checkBoot: checkBootWith(trust) })).toMatchObject({
      events: 30,
      unsealed: 0,
    });
    // Lines of one event-loop turn travel in one audit.append: fewer requests than lines, none lost.
    const requests = server.counts['audit.append'] ?? 0;
    expect(requests).toBeGreaterThan(0);
    expect(requests).toBeLessThan(text.split('\n').length - 1);
  });

  it('batches the lines of one turn into one request, in order; each waiter resolves after the batch', async () => {
    const before = server.counts['audit.append'] ?? 0;
    const size = () => readFileSync(server.auditLogPath, 'utf8').split('\n').length - 1;
    const at = size();
    const lines = Array.from({ length: 40 }, (_, i) => `{"batch":${i}}`);
    await Promise.all(lines.map((l) => client.appendAudit(l)));
    expect((server.counts['audit.append'] ?? 0) - before).toBe(1);
    expect(
      readFileSync(server.auditLogPath, 'utf8')
        .split('\n')
        .slice(at, at + 40),
    ).toEqual(lines);
    expect(size()).toBe(at + 40);
  });

  it('refuses a line with a line break, or an empty one (REQUEST_INVALID)', async () => {
    await expect(client.appendAudit('{"a":1}\n{"b":2}')).rejects.toMatchObject({ code: 'REQUEST_INVALID' });
    await expect(client.appendAudit('')).rejects.toMatchObject({ code: 'REQUEST_INVALID' });
    await expect(client.appendAudit('x\ry')).rejects.toMatchObject({ code: 'REQUEST_INVALID' });
  });
});

describe('AuditFileSink', () => {
  it('appends in call order, one fsync per batch', async () => {
    const path = join(dir, 'batch.jsonl');
    const sink = await AuditFileSink.open(path);
    const enc = new TextEncoder();
    await Promise.all(Array.from({ length: 50 }, (_, i) => sink.append(enc.encode(`line ${i}`))));
    expect(readFileSync(path, 'utf8')).toBe(Array.from({ length: 50 }, (_, i) => `line ${i}\n`).join(''));
    expect(sink.batches).toBeLessThan(50);
    expect(sink.batches).toBeGreaterThanOrEqual(1);
    await sink.close();
    await expect(sink.append(enc.encode('late'))).rejects.toMatchObject({ code: 'STORE_WRITE_FAILED' });
  });

  it('group commit: lines of separate turns within the sync interval share one fsync', async () => {
    const path = join(dir, 'group.jsonl');
    const sink = await AuditFileSink.open(path, { syncIntervalMs: 200 }); // wide, so that a slow machine still groups
    const enc = new TextEncoder();
    await sink.append(enc.encode('first')); // synced: the next fsync waits for the interval
    const before = sink.batches;
    const later: Promise<void>[] = [];
    for (let i = 0; i < 5; i++) {
      later.push(sink.append(enc.encode(`turn ${i}`)));
      await new Promise((r) => setImmediate(r)); // a separate event-loop turn each
    }
    await Promise.all(later);
    expect(sink.batches - before).toBe(1);
    expect(readFileSync(path, 'utf8')).toBe(`first\n${[0, 1, 2, 3, 4].map((i) => `turn ${i}\n`).join('')}`);
    await sink.close();
  });

  it('cuts a torn last line (never acknowledged) when it reopens', async () => {
    const path = join(dir, 'torn.jsonl');
    const sink = await AuditFileSink.open(path);
    await sink.append(new TextEncoder().encode('whole'));
    await sink.close();
    appendFileSync(path, '{"v":1,"seq":1,"ti');
    const again = await AuditFileSink.open(path);
    expect(readFileSync(path, 'utf8')).toBe('whole\n');
    await again.append(new TextEncoder().encode('next'));
    await again.close();
    expect(readFileSync(path, 'utf8')).toBe('whole\nnext\n');
  });
});
