/**
 * bench/report.ts: a saved `ekms bench --json` document rendered as Markdown (docs/performance.md's tables): every row
 * under the suite that printed it, numbers as the JSON holds them, the run's own verdicts.
 */
import { describe, expect, it } from 'vitest';
import { asBenchDocument, figure, ratio, renderReport } from '../../bench/report.js';

const doc = {
  ok: true,
  machine: { node: 'v20.20.2', cpus: 2 },
  results: [
    { id: 'ecdsa-p384.verify (baseline)', unit: 'ops/s', value: 1859, baseline: 1859, ratio: 1 },
    { id: 'nitro.parse+verify (cached)', unit: 'ops/s', value: 1534, baseline: 1859, ratio: 1.212 },
    { id: 'kms.generateDataKey.c64.p50', unit: 'ms', value: 8.618, baseline: 4.426, ratio: 1.9471 },
    { id: 'kms.decrypt.32B.c64.p50', unit: 'ms', value: 10.77, baseline: 4.542, ratio: null },
    { id: 'unplaced', unit: 'x|y', value: 0.05, baseline: 0, ratio: 0 },
  ],
  suites: {
    'attestation-nitro': ['ecdsa-p384.verify (baseline)', 'nitro.parse+verify (cached)'],
    service: ['kms.generateDataKey.c64.p50', 'kms.decrypt.32B.c64.p50'],
    xwing: [],
  },
  targets: [
    {
      id: 'cached-attestation',
      description: 'cached ≤ 1.5×',
      direction: 'max',
      bound: 1.5,
      status: 'incomplete',
      worst: { id: 'nitro.parse+verify (cached)', ratio: 1.212 },
      rows: ['nitro.parse+verify (cached)'],
      missing: ['snp.verify.cached'],
    },
    {
      id: 'xwing',
      description: 'X-Wing',
      direction: 'min',
      bound: 1 / 1.1,
      status: 'not-run',
      worst: null,
      rows: [],
      missing: [],
    },
  ],
};

describe('renderReport', () => {
  it('puts every row under the suite that printed it, in run order, and the rest after', () => {
    const md = renderReport(asBenchDocument(doc));
    const lines = md.split('\n');
    const at = (s: string) => lines.findIndex((l) => l.startsWith(s));
    expect(at('#### attestation-nitro')).toBeLessThan(at('| ecdsa-p384.verify (baseline) |'));
    expect(at('| nitro.parse+verify (cached) |')).toBeLessThan(at('#### service'));
    expect(at('#### service')).toBeLessThan(at('| kms.generateDataKey.c64.p50 |'));
    expect(at('#### xwing')).toBe(-1); // a suite with no rows prints no table
    expect(at('#### other rows')).toBeGreaterThan(at('| kms.decrypt.32B.c64.p50 |'));
    expect(lines).toContain('| nitro.parse+verify (cached) | 1 534 | 1 859 | 1.212 | ops/s |');
    expect(lines).toContain('| kms.generateDataKey.c64.p50 | 8.62 | 4.43 | 1.947 | ms |');
    expect(lines).toContain('| kms.decrypt.32B.c64.p50 | 10.8 | 4.54 | — | ms |');
    expect(lines).toContain('| unplaced | 0.05 | 0 | 0 | x\\|y |');
    // Every result row and every verdict once: all table lines but the two header lines of each table.
    const tables = md.split('\n').filter((l) => l.startsWith('| id |') || l.startsWith('| target |'));
    const body = md.split('\n').filter((l) => l.startsWith('|') && !l.startsWith('|---'));
    expect(body.length - tables.length).toBe(doc.results.length + doc.targets.length);
    expect(md).toContain(`Machine: \`${JSON.stringify(doc.machine)}\``);
  });

  it("prints the run's own verdicts with the worst row, its ratio, the bound and what is missing", () => {
    const md = renderReport(asBenchDocument(doc));
    expect(md).toContain(
      '| cached ≤ 1.5× | **incomplete** (missing: snp.verify.cached) | nitro.parse+verify (cached) | 1.212 | ≤ 1.5 |',
    );
    expect(md).toContain('| X-Wing | **not-run** | — | — | ≥ 0.9091 |');
  });

  it('renders a document without `suites` (before 2026-12-05) as one table', () => {
    const { suites: _, ...old } = doc;
    const md = renderReport(asBenchDocument(old));
    expect(md).toContain('#### results');
    expect(md).not.toContain('#### other rows');
  });
});

describe('number formats', () => {
  it.each([
    [15639.4, '15 639'],
    [1234567, '1 234 567'],
    [100, '100'],
    [99.94, '99.9'],
    [8.618, '8.62'],
    [0.0512, '0.0512'],
    [0, '0'],
    [-2500, '-2 500'],
    [null, '—'],
  ])('figure(%s) = %s', (n, s) => expect(figure(n)).toBe(s));

  it.each([
    [1, '1'],
    [1.5, '1.5'],
    [0.9094, '0.909'],
    [1.9471, '1.947'],
    [13.1049, '13.105'],
    [1234.5, '1 234.5'],
    [null, '—'],
  ])('ratio(%s) = %s', (n, s) => expect(ratio(n)).toBe(s));
});

describe('asBenchDocument', () => {
  it.each([
    [null, /ok/],
    [{ ok: false }, /ok/],
    [{ ok: true, results: [] }, /machine/],
    [{ ok: true, machine: {} }, /results/],
    [{ ok: true, machine: {}, results: [{ id: 1, unit: 'x' }] }, /results\[0\]/],
    [
      { ok: true, machine: {}, results: [{ id: 'a', unit: 'x', value: '3', baseline: 1, ratio: 1 }] },
      /value/,
    ],
  ])('refuses %j', (value, message) => {
    expect(() => asBenchDocument(value)).toThrow(message);
  });
});
