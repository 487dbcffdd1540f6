/**
 * Benchmark `primitives`: the symmetric primitives on the enclave's hot paths, each beside the alternative we did
 * not pick, measured in the same run (issue 8; design §7 "where the time goes"):
 *
 * - `aes-256-gcm.seal.{64B,4KiB,1MiB}`: `node:crypto` (OpenSSL, AES-NI) one-shot seal against `@noble/ciphers`
 *   `gcm` — why every AEAD in the service goes through node:crypto (enclave/crypto/aead.ts). Unit MB/s.
 * - `aes-256-gcm.open.{64B,4KiB,1MiB}`: the same for open (tag check included).
 * - `hkdf-sha384.{32B,64B}`: `node:crypto` `hkdfSync` against `@noble/hashes` `hkdf(sha384)` for the output lengths
 *   the service derives (a data key's wrapping key; the envelope stream's key ‖ commitment). Unit ops/s.
 * - `hkdf-sha256.32B`: the same with SHA-256 (HPKE's KDF, the release path).
 * - `key-schedule.blob.v2`: a blob's key and commitment with the v2 schedule (suite 3: one HMAC-SHA-512) against v1
 *   (suite 1: HKDF-SHA-384), shared/key-schedule.ts: the per-message cost decision 38 removed.
 * - `audit.record.encode`: building and checking one canonical audit line (shared/audit.ts), the per-request cost of
 *   the audit log on the enclave, against SHA-256 of that line (the chain step that follows it). Unit ops/s.
 *
 * Every contender's output is checked against its baseline's once before timing (same bytes, or a round trip).
 * Timing: bench/envelope-harness.ts `measure`, CPU seconds, contenders in turns, the median of the samples; ratios
 * come from pairs of rounds (pairedRow).
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { gcm } from '@noble/ciphers/aes.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256, sha384 } from '@noble/hashes/sha2.js';
import { type AuditEventRecord, encodeAuditRecord } from '../shared/audit.js';
import { deriveMessageKeys } from '../shared/key-schedule.js';
import { getSuite, SuiteId } from '../shared/suites.js';
import {
  assertSameBytes,
  type BenchResult,
  type Contender,
  KiB,
  MiB,
  measure,
  pairedRow,
} from './envelope-harness.js';

export interface BenchPrimitivesOptions {
  readonly samples?: number;
  /** Target CPU seconds per sample of each contender (default 0.1). */
  readonly sampleSeconds?: number;
}

const OPS = 1e6; // with 10^6 "bytes" per run, `measure`'s MB/s figure is runs per CPU second

function secondsPerRun(fn: () => unknown): number {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 3; i++) {
    const t0 = process.cpuUsage();
    fn();
    const d = process.cpuUsage(t0);
    best = Math.min(best, (d.user + d.system) / 1e6);
  }
  return Math.max(best, 1e-6);
}

function nodeSeal(key: Uint8Array, iv: Uint8Array, pt: Uint8Array): Uint8Array {
  const c = createCipheriv('aes-256-gcm', key, iv);
  const body = c.update(pt);
  c.final();
  return Buffer.concat([body, c.getAuthTag()]);
}

function nodeOpen(key: Uint8Array, iv: Uint8Array, sealed: Uint8Array): Uint8Array {
  const d = createDecipheriv('aes-256-gcm', key, iv);
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  const body = d.update(sealed.subarray(0, sealed.length - 16));
  d.final();
  return body;
}

/** Runs the benchmark and returns its figures. */
export async function benchPrimitives(options: BenchPrimitivesOptions = {}): Promise<BenchResult[]> {
  const samples = options.samples ?? 6;
  const sampleSeconds = options.sampleSeconds ?? 0.1;
  const rows: BenchResult[] = [];
  const c = (name: string, run: () => unknown): Contender => ({ name, run });
  const pair = async (id: string, unit: string, bytes: number, value: Contender, baseline: Contender) => {
    // Each side gets ~sampleSeconds per sample: equal time, so neither side's garbage dwarfs the other's sample.
    const sized = (x: Contender): Contender => ({
      ...x,
      reps: Math.max(3, Math.round(sampleSeconds / secondsPerRun(x.run as () => unknown))),
    });
    const figures = await measure(bytes, [sized(value), sized(baseline)], { reps: 3, samples });
    rows.push(pairedRow(id, unit, figures, value.name, baseline.name));
  };

  const key = new Uint8Array(randomBytes(32));
  const iv = new Uint8Array(randomBytes(12));
  for (const [label, size] of [
    ['64B', 64],
    ['4KiB', 4 * KiB],
    ['1MiB', MiB],
  ] as const) {
    const pt = new Uint8Array(randomBytes(size));
    const sealed = nodeSeal(key, iv, pt);
    assertSameBytes(`aes-gcm ${label}: node = noble`, sealed, gcm(key, iv).encrypt(pt));
    assertSameBytes(`aes-gcm ${label}: noble opens`, gcm(key, iv).decrypt(sealed), pt);
    await pair(
      `aes-256-gcm.seal.${label}`,
      'MB/s',
      size,
      c('node seal', () => nodeSeal(key, iv, pt)),
      c('noble seal', () => gcm(key, iv).encrypt(pt)),
    );
    await pair(
      `aes-256-gcm.open.${label}`,
      'MB/s',
      size,
      c('node open', () => nodeOpen(key, iv, sealed)),
      c('noble open', () => gcm(key, iv).decrypt(sealed)),
    );
  }

  const ikm = new Uint8Array(randomBytes(32));
  const salt = new Uint8Array(randomBytes(32));
  const info = new TextEncoder().encode('EKMS-BENCH-HKDF-V1');
  for (const [hash, noble, length] of [
    ['sha384', sha384, 32],
    ['sha384', sha384, 64],
    ['sha256', sha256, 32],
  ] as const) {
    const ours = new Uint8Array(hkdfSync(hash, ikm, salt, info, length));
    assertSameBytes(`hkdf ${hash} ${length}: node = noble`, ours, hkdf(noble, ikm, salt, info, length));
    await pair(
      `hkdf-${hash}.${length}B`,
      'ops/s',
      OPS,
      c('node hkdf', () => hkdfSync(hash, ikm, salt, info, length)),
      c('noble hkdf', () => hkdf(noble, ikm, salt, info, length)),
    );
  }

  const prefix = new Uint8Array(40).fill(7);
  const v1 = getSuite(SuiteId.Aes256GcmHkdfSha384CommitV1);
  const v2 = getSuite(SuiteId.Aes256GcmKdfCtrHmacSha512CommitV2);
  await pair(
    'key-schedule.blob.v2',
    'ops/s',
    OPS,
    c('v2 one HMAC-SHA-512', () => deriveMessageKeys(v2, 'BLOB', ikm, salt, prefix)),
    c('v1 HKDF-SHA-384', () => deriveMessageKeys(v1, 'BLOB', ikm, salt, prefix)),
  );

  const record: AuditEventRecord = {
    v: 1,
    seq: 1234,
    time: new Date().toISOString(),
    kind: 'event',
    prev: 'ab'.repeat(32),
    principal: 'hospital-a',
    authentication: 'signature',
    attested: null,
    operation: 'GenerateDataKey',
    keyId: '0516321c-440e-4a2f-a68f-7f00e9abe5ea',
    keyVersion: 1,
    contextDigest: 'cd'.repeat(32),
    outcome: 'allowed',
    code: null,
    requestId: '17.42',
  };
  const line = encodeAuditRecord(record);
  if (!line.startsWith('{"v":1,"seq":1234,')) throw new Error('audit encode: unexpected line');
  await pair(
    'audit.record.encode',
    'ops/s',
    OPS,
    c('encode', () => encodeAuditRecord(record)),
    c('sha256 of the line', () => createHash('sha256').update(line).digest()),
  );
  return rows;
}
