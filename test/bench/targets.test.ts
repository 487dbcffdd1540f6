/**
 * The targets verdict (bench/targets.ts): which rows each of issue 8's targets is judged on, the bound and its
 * direction, and what "met", "missed" and "not run" mean. No figure is measured here.
 */
import { describe, expect, it } from 'vitest';
import { SERVICE_CONCURRENCY, serviceRowId } from '../../bench/service-rows.js';
import { formatVerdicts, judgeTarget, judgeTargets, type RatioRow, TARGETS } from '../../bench/targets.js';

/** Rows of a run in which every target is met, with the ids the suites print (docs/performance.md). */
const goodRun: RatioRow[] = [
  { id: 'ecdsa-p384.verify (baseline)', ratio: 1 },
  { id: 'nitro.parse+verify (no cache)', ratio: 19.9 },
  { id: 'nitro.parse+verify (cached)', ratio: 1.25 },
  { id: 'snp.verify.uncached', ratio: 11.45 },
  { id: 'snp.verify.cached', ratio: 1.07 },
  { id: 'snp.verify.cached.v2-all-anchors', ratio: 1.07 },
  { id: 'envelope.encrypt.empty', ratio: 0.18 },
  { id: 'envelope.encrypt.1MiB.stream', ratio: 0.93 },
  { id: 'envelope.encrypt.1MiB.stream.major-gcs', ratio: 0 },
  { id: 'envelope.encrypt.1MiB.stream.helper-cpu', ratio: 1.34 },
  { id: 'envelope.encrypt.1MiB', ratio: 0.5 },
  { id: 'envelope.decrypt.1MiB.stream', ratio: 0.94 },
  { id: 'envelope.encrypt.64MiB.stream', ratio: 0.97 },
  { id: 'envelope.decrypt.64MiB.stream', ratio: 0.96 },
  { id: 'envelope.roundtrip.1024MiB', ratio: 0.5 },
  { id: 'xwing.keygen', ratio: 1.82 },
  { id: 'xwing.encaps', ratio: 3.8 },
  { id: 'xwing.decaps.seed', ratio: 2.62 },
  { id: 'xwing.keygen.vs-components', ratio: 1.02 },
  { id: 'xwing.encaps.vs-components', ratio: 0.95 },
  { id: 'xwing.decaps.seed.vs-components', ratio: 0.99 },
  { id: 'xwing.decaps.expanded', ratio: 0.1 },
  { id: 'ml-kem-1024.encaps', ratio: 0.67 },
  { id: 'kms.generateDataKey.c64.ops', ratio: 0.47 },
  { id: 'kms.generateDataKey.c64.p50', ratio: 1.7 },
  { id: 'kms.generateDataKey.c64.p99', ratio: 9 },
  { id: 'kms.generateDataKey.c16.p50', ratio: 9 },
  { id: 'kms.encrypt.32B.c64.p50', ratio: 9 },
];

const target = (id: string) => {
  const t = TARGETS.find((x) => x.id === id);
  if (t === undefined) throw new Error(`no target ${id}`);
  return t;
};
const withRatio = (rows: RatioRow[], id: string, ratio: number): RatioRow[] =>
  rows.map((r) => (r.id === id ? { id, ratio } : r));

describe('judgeTargets', () => {
  it("judges each of issue 8's four targets on its own rows only, and reports the row nearest to missing", () => {
    const verdicts = judgeTargets(goodRun);
    expect(verdicts.map((v) => [v.id, v.status, v.worst, v.rows])).toEqual([
      [
        'envelope-stream',
        'met',
        { id: 'envelope.encrypt.1MiB.stream', ratio: 0.93 },
        [
          'envelope.encrypt.1MiB.stream',
          'envelope.decrypt.1MiB.stream',
          'envelope.encrypt.64MiB.stream',
          'envelope.decrypt.64MiB.stream',
        ],
      ],
      [
        'generate-data-key-c64',
        'met',
        { id: 'kms.generateDataKey.c64.p50', ratio: 1.7 },
        ['kms.generateDataKey.c64.p50'],
      ],
      [
        'cached-attestation',
        'met',
        { id: 'nitro.parse+verify (cached)', ratio: 1.25 },
        ['nitro.parse+verify (cached)', 'snp.verify.cached', 'snp.verify.cached.v2-all-anchors'],
      ],
      [
        'xwing',
        'met',
        { id: 'xwing.encaps.vs-components', ratio: 0.95 },
        [
          'xwing.keygen',
          'xwing.encaps',
          'xwing.decaps.seed',
          'xwing.keygen.vs-components',
          'xwing.encaps.vs-components',
          'xwing.decaps.seed.vs-components',
        ],
      ],
    ]);
    expect(verdicts.map((v) => [v.direction, v.bound])).toEqual([
      ['min', 0.9],
      ['max', 2],
      ['max', 1.5],
      ['min', 1 / 1.1],
    ]);
  });

  it.each([
    ['envelope-stream', 'envelope.decrypt.64MiB.stream', 0.89],
    ['envelope-stream', 'envelope.encrypt.1MiB.stream', 0.5],
    ['generate-data-key-c64', 'kms.generateDataKey.c64.p50', 2.01],
    ['cached-attestation', 'snp.verify.cached.v2-all-anchors', 1.51],
    ['cached-attestation', 'nitro.parse+verify (cached)', 20],
    ['xwing', 'xwing.decaps.seed', 0.9],
    ['xwing', 'xwing.encaps', 0.5],
    ['xwing', 'xwing.encaps.vs-components', 0.909],
    ['xwing', 'xwing.decaps.seed.vs-components', 0.8],
  ])('%s is missed when %s reports %d, which is then the worst row', (id, rowId, ratio) => {
    const verdicts = judgeTargets(withRatio(goodRun, rowId, ratio));
    const v = verdicts.find((x) => x.id === id);
    expect(v?.status).toBe('missed');
    expect(v?.worst).toEqual({ id: rowId, ratio });
    // The other targets are unaffected.
    expect(verdicts.filter((x) => x.id !== id).every((x) => x.status === 'met')).toBe(true);
  });

  it('counts a ratio exactly on the bound as within it', () => {
    let onBound = withRatio(goodRun, 'envelope.encrypt.1MiB.stream', 0.9);
    onBound = withRatio(onBound, 'kms.generateDataKey.c64.p50', 2);
    onBound = withRatio(onBound, 'snp.verify.cached', 1.5);
    onBound = withRatio(onBound, 'xwing.encaps.vs-components', 1 / 1.1);
    expect(judgeTargets(onBound).map((v) => [v.status, v.worst?.ratio])).toEqual([
      ['met', 0.9],
      ['met', 2],
      ['met', 1.5],
      ['met', 1 / 1.1],
    ]);
    // The X-Wing rows report three decimals: 0.91 is within 1/1.1 (0.90909…), 0.909 is not.
    expect(judgeTarget(target('xwing'), withRatio(goodRun, 'xwing.encaps', 0.91)).status).toBe('met');
    expect(judgeTarget(target('xwing'), withRatio(goodRun, 'xwing.encaps', 0.909)).status).toBe('missed');
  });

  it('says "incomplete", never "met", when an expected row did not run beside rows that did', () => {
    // A subset run of the SEV-SNP suite: no Nitro row.
    const snpOnly = goodRun.filter((r) => r.id.startsWith('snp.'));
    expect(judgeTarget(target('cached-attestation'), snpOnly)).toMatchObject({
      status: 'incomplete',
      missing: ['nitro.parse+verify (cached)'],
      rows: ['snp.verify.cached', 'snp.verify.cached.v2-all-anchors'],
    });
    // A renamed row: the envelope target loses its 64 MiB decrypt row.
    const renamed = goodRun.map((r) =>
      r.id === 'envelope.decrypt.64MiB.stream' ? { ...r, id: 'envelope.decrypt.64MiB.streamed' } : r,
    );
    expect(judgeTarget(target('envelope-stream'), renamed)).toMatchObject({
      status: 'incomplete',
      missing: ['envelope.decrypt.64MiB.stream'],
    });
    // A row outside the bound still makes it a miss.
    expect(
      judgeTarget(target('cached-attestation'), withRatio(snpOnly, 'snp.verify.cached', 1.6)).status,
    ).toBe('missed');
    // Every target expects rows, and in a full run none is missing.
    for (const t of TARGETS) expect(t.expected.length).toBeGreaterThan(0);
    expect(judgeTargets(goodRun).every((v) => v.missing.length === 0)).toBe(true);
  });

  it('misses a target whose row has a ratio that is not a finite number, and names that row', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      // A NaN passes neither `>=` nor `<=`; an infinite ratio would pass one of them.
      const run = withRatio(withRatio(goodRun, 'xwing.encaps', bad), 'kms.generateDataKey.c64.p50', bad);
      const verdicts = judgeTargets(run);
      expect(verdicts.find((v) => v.id === 'xwing')).toMatchObject({
        status: 'missed',
        worst: { id: 'xwing.encaps' },
      });
      expect(verdicts.find((v) => v.id === 'generate-data-key-c64')?.status).toBe('missed');
    }
  });

  it('says "not run" for a target none of whose rows ran (a run of some suites only)', () => {
    const xwingOnly = goodRun.filter((r) => r.id.startsWith('xwing.'));
    expect(judgeTargets(xwingOnly).map((v) => [v.id, v.status, v.worst])).toEqual([
      ['envelope-stream', 'not-run', null],
      ['generate-data-key-c64', 'not-run', null],
      ['cached-attestation', 'not-run', null],
      ['xwing', 'met', { id: 'xwing.encaps.vs-components', ratio: 0.95 }],
    ]);
    expect(
      judgeTargets([]).every((v) => v.status === 'not-run' && v.rows.length === 0 && v.missing.length === 0),
    ).toBe(true);
  });

  it("does not judge the envelope target on the streams' side rows, the one-buffer rows or other sizes' names", () => {
    const t = target('envelope-stream');
    for (const id of [
      'envelope.encrypt.1MiB.stream.major-gcs',
      'envelope.decrypt.64MiB.stream.helper-cpu',
      'envelope.encrypt.1MiB.vs-aws-esdk',
      'envelope.encrypt.1MiB',
      'envelope.roundtrip.1024MiB',
      'envelope.encrypt.empty',
      'xenvelope.encrypt.1MiB.stream',
    ]) {
      expect(t.judges(id)).toBe(false);
    }
    expect(t.judges('envelope.decrypt.4KiB.stream')).toBe(true);
    expect(judgeTarget(t, [{ id: 'envelope.encrypt.1MiB.stream.major-gcs', ratio: 0 }]).status).toBe(
      'not-run',
    );
  });

  it('names the GenerateDataKey row the service suite prints (bench/service-rows.ts)', () => {
    expect(SERVICE_CONCURRENCY).toContain(64);
    expect(target('generate-data-key-c64').expected).toEqual([serviceRowId('generateDataKey', 64, 'p50')]);
    expect(serviceRowId('generateDataKey', 64, 'p50')).toBe('kms.generateDataKey.c64.p50');
  });

  it('judges only the like-for-like X-Wing rows and only the c64 p50 GenerateDataKey row', () => {
    expect(target('xwing').judges('xwing.decaps.expanded')).toBe(false);
    expect(target('xwing').judges('ml-kem-768.encaps')).toBe(false);
    for (const id of [
      'kms.generateDataKey.c64.p99',
      'kms.generateDataKey.c16.p50',
      'kms.encrypt.32B.c64.p50',
    ]) {
      expect(target('generate-data-key-c64').judges(id)).toBe(false);
    }
  });
});

describe('formatVerdicts', () => {
  it('prints one line per target with its status, the worst ratio and its row', () => {
    const text = formatVerdicts(
      judgeTargets(
        withRatio(
          goodRun.filter((r) => !r.id.startsWith('xwing.')),
          'kms.generateDataKey.c64.p50',
          2.08,
        ),
      ),
    );
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(5);
    expect(lines[1]).toMatch(
      /^ {2}met {9}envelope stream .*: worst of 4 rows 0\.93 \(envelope\.encrypt\.1MiB\.stream\)$/,
    );
    expect(lines[2]).toMatch(/^ {2}MISSED {6}GenerateDataKey .*: 2\.08 \(kms\.generateDataKey\.c64\.p50\)$/);
    expect(lines[3]).toMatch(
      /^ {2}met {9}cached attestation .*: worst of 3 rows 1\.25 \(nitro\.parse\+verify \(cached\)\)$/,
    );
    expect(lines[4]).toMatch(/^ {2}not run {5}X-Wing /);
  });

  it('lists the expected rows that did not run', () => {
    const text = formatVerdicts(judgeTargets(goodRun.filter((r) => r.id.startsWith('snp.'))));
    expect(text).toMatch(
      / {2}incomplete {2}cached attestation .*: worst of 2 rows 1\.07 \(snp\.verify\.cached\); did not run: nitro\.parse\+verify \(cached\)\n/,
    );
  });

  it('prints the worst ratio to four significant digits, so that a miss never prints as the bound', () => {
    const text = formatVerdicts(judgeTargets(withRatio(goodRun, 'nitro.parse+verify (cached)', 1.501)));
    expect(text).toMatch(
      /MISSED {6}cached attestation .*: worst of 3 rows 1\.501 \(nitro\.parse\+verify \(cached\)\)/,
    );
    const gdk = formatVerdicts(
      judgeTargets(withRatio(goodRun, 'kms.generateDataKey.c64.p50', 1.9124721863679162)),
    );
    expect(gdk).toContain(': 1.912 (kms.generateDataKey.c64.p50)');
  });

  it("expects the envelope rows of the suite's default sizes", () => {
    expect(target('envelope-stream').expected).toEqual([
      'envelope.encrypt.1MiB.stream',
      'envelope.decrypt.1MiB.stream',
      'envelope.encrypt.64MiB.stream',
      'envelope.decrypt.64MiB.stream',
    ]);
  });

  it('prints a ratio that is not a finite number as such', () => {
    const text = formatVerdicts(judgeTargets([{ id: 'snp.verify.cached', ratio: Number.NaN }]));
    expect(text).toContain('MISSED      cached attestation');
    expect(text).toContain('NaN (snp.verify.cached)');
  });
});
