/**
 * The multi-party analytics demo end to end (issue 7): `ekms start` as a real process, three hospital principals,
 * the analytics workload as its own attested process, and a modified build of it.
 * - the genuine workload's aggregates equal the same computation done here on the plaintext (so the data really
 *   went through the keys it was given);
 * - the modified workload is refused for every key, with the reason; a hospital cannot read another's data, nor
 *   use its key under another party's context; the operator cannot read any;
 * - no row of any dataset is in the host's capture of every relayed frame, the KMS data dir or the untrusted
 *   storage (and the scan does find a row that is there: a control);
 * - `ekms audit verify` verifies the log and counts the denials;
 * - `npm run demo`'s script runs and exits 0.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeJointResults, parseAdmissions } from '../../examples/multi-party-analytics/analytics.js';
import { PARTIES } from '../../examples/multi-party-analytics/datasets.js';
import { type DemoReport, runDemo, scanForPlaintext } from '../../examples/multi-party-analytics/demo.js';
import { buildDemo } from '../../scripts/demo-build.mjs';
import { REPO } from '../helpers/service.js';

let dir: string;
let report: DemoReport;
let paths: Awaited<ReturnType<typeof buildDemo>>;
const narrative: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ekms-demo-test-'));
  paths = await buildDemo();
  report = await runDemo({
    dir: join(dir, 'run'),
    cli: paths.cli,
    workload: paths.workload,
    modifiedWorkload: paths.modifiedWorkload,
    rows: 3000,
    print: (line) => narrative.push(line),
  });
}, 120_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('multi-party analytics demo', () => {
  it('the genuine workload computes the joint aggregates: equal to the same computation on the plaintext', () => {
    expect(report.workload.ok).toBe(true);
    const expected = computeJointResults({
      'hospital-a': parseAdmissions(report.datasets['hospital-a'], 'a'),
      'hospital-b': parseAdmissions(report.datasets['hospital-b'], 'b'),
      'hospital-c': parseAdmissions(report.datasets['hospital-c'], 'c'),
    });
    expect(report.workload.ok && report.workload.results).toEqual(JSON.parse(JSON.stringify(expected)));
    // Thousands of rows per party, overlapping patients: the joint question has a non-trivial answer.
    expect(expected.admissions).toBe(9000);
    expect(expected.patientsAtAllHospitals).toBeGreaterThan(100);
    expect(report.workload.measurement).toBe(report.measurement.workload);
  });

  it('the modified workload (another measurement) is refused for every key with MEASUREMENT_NOT_ALLOWED', () => {
    expect(report.measurement.modifiedWorkload).not.toBe(report.measurement.workload);
    const m = report.modifiedWorkload;
    expect(m.ok).toBe(false);
    if (m.ok || !('refusals' in m)) throw new Error('expected refusals');
    expect(m.refusals.map((r) => r.party)).toEqual([...PARTIES]);
    for (const r of m.refusals) {
      expect(r.code).toBe('ACCESS_DENIED');
      expect(r.message).toContain('MEASUREMENT_NOT_ALLOWED');
    }
  });

  it("a hospital cannot read another hospital's data nor use its own key under another context; the operator reads nothing", () => {
    expect(report.crossPartyRefusals).toHaveLength(3);
    for (const r of report.crossPartyRefusals) expect(r.code).toBe('ACCESS_DENIED');
  });

  it('no dataset row in the host capture, the KMS data dir or the untrusted storage — and the scan finds a planted one', () => {
    expect(report.leakScan.captureFrames).toBeGreaterThan(20);
    expect(report.leakScan.files).toBeGreaterThan(5);
    expect(report.leakScan.hits).toEqual([]);
    // Control: the same scan over the same directory, with one row planted in the untrusted storage.
    const row = report.datasets['hospital-b'].split('\n')[1] as string;
    writeFileSync(join(dir, 'run', 'untrusted-storage', 'leak.txt'), `prefix ${row} suffix`);
    const again = scanForPlaintext(join(dir, 'run'), join(dir, 'run', 'host-capture.ekcp'), report.datasets);
    expect(again.hits.some((h) => h.startsWith('hospital-b row 1 (raw)'))).toBe(true);
    rmSync(join(dir, 'run', 'untrusted-storage', 'leak.txt'));
  });

  it('ekms audit verify verifies the log: every use, release and denial is there', () => {
    const a = report.audit;
    expect(a['ok']).toBe(true);
    const keys = a['keys'] as Record<string, { allowed: number; denied: number }>;
    for (const party of PARTIES) {
      const k = keys[report.keys[party]];
      // GenerateDataKey + the workload's Decrypt (and policy administration) allowed; the refusals denied.
      expect(k?.allowed).toBeGreaterThanOrEqual(2);
      expect(k?.denied).toBeGreaterThanOrEqual(1);
    }
    const principals = a['principals'] as Record<string, { allowed: number; denied: number }>;
    const modified = `workload:${report.measurement.modifiedWorkload.slice(0, 16)}`;
    const genuine = `workload:${report.measurement.workload.slice(0, 16)}`;
    expect(principals[modified]?.denied).toBe(3);
    expect(principals[genuine]?.denied).toBe(0);
    expect(principals['hospital-a']?.denied).toBe(2);
  });

  it('prints the narrative: results and the audit summary', () => {
    const text = narrative.join('\n');
    expect(text).toMatch(/patients treated at all three hospitals: \d+/);
    expect(text).toMatch(/verified: \d+ events, \d+ signed checkpoints, chain intact/);
    expect(text).toMatch(/no row found/);
  });

  it('npm run demo (scripts/demo.mjs) runs the whole story and exits 0', () => {
    const r = spawnSync(
      process.execPath,
      ['scripts/demo.mjs', '--dir', join(dir, 'script'), '--rows', '500'],
      {
        cwd: REPO,
        encoding: 'utf8',
        timeout: 90_000,
      },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('no row found');
  });
});
