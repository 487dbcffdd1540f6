/**
 * The attestation and X-Wing suites, run for a few milliseconds per figure: they print every row their targets
 * expect (bench/targets.ts `expected`), with finite figures, so a renamed row fails here and not first in a full run.
 * The figures themselves are not judged (a test run is too short, and timing does not belong in tests).
 */
import { describe, expect, it } from 'vitest';
import { benchNitro } from '../../bench/attestation-nitro.js';
import { benchSnp } from '../../bench/attestation-snp.js';
import { judgeTarget, TARGETS } from '../../bench/targets.js';
import { verifyCostRows } from '../../bench/verify-cost.js';
import { benchXWing } from '../../bench/xwing.js';

const target = (id: string) => {
  const t = TARGETS.find((x) => x.id === id);
  if (t === undefined) throw new Error(`no target ${id}`);
  return t;
};

describe('the suites print the rows their targets are judged on', () => {
  it('attestation: every cached row of the target, each with finite figures in the issue shape', async () => {
    const rows = [
      ...(await benchNitro({ seconds: 0.005, rounds: 1 })),
      ...(await benchSnp({ seconds: 0.005, rounds: 1 })),
    ];
    const verdict = judgeTarget(target('cached-attestation'), rows);
    expect(verdict.missing).toEqual([]);
    expect(verdict.rows).toEqual([...target('cached-attestation').expected]);
    for (const r of rows) {
      expect(Object.keys(r).sort()).toEqual(['baseline', 'id', 'ratio', 'unit', 'value']);
      expect([r.value, r.baseline, r.ratio].every((n) => Number.isFinite(n) && n > 0)).toBe(true);
    }
    expect(rows.map((r) => r.id)).toContain('snp.parse');
  }, 60_000);

  it('X-Wing: both readings of "the bare library call" for keygen, encaps and decaps', async () => {
    const rows = await benchXWing({ samples: 2, sampleSeconds: 0.002 });
    const verdict = judgeTarget(target('xwing'), rows);
    expect(verdict.missing).toEqual([]);
    expect(verdict.rows).toHaveLength(6);
    for (const id of [
      'ml-kem-768.keygen',
      'ml-kem-1024.keygen',
      'ml-kem-1024.encaps',
      'ml-kem-1024.decaps',
    ]) {
      expect(rows.map((r) => r.id)).toContain(id);
    }
    expect(rows.every((r) => Number.isFinite(r.ratio) && r.ratio > 0)).toBe(true);
  }, 60_000);
});

describe('verifyCostRows', () => {
  it('reports each case beside the baseline case, ratio = baseline / value to three decimals', () => {
    let spin = 0;
    const work = (n: number) => () => {
      for (let i = 0; i < n; i++) spin = (spin + i) | 0;
    };
    const rows = verifyCostRows({ base: work(200), heavy: work(10_000) }, 'base', {
      seconds: 0.02,
      rounds: 1,
      warmup: 1,
    });
    expect(rows.map((r) => r.id)).toEqual(['base', 'heavy']);
    expect(rows[0]).toMatchObject({ unit: 'ops/s', ratio: 1 });
    expect(rows[1]!.baseline).toBe(rows[0]!.value);
    // The heavy case costs more than one base case (timing is not asserted beyond that direction).
    expect(rows[1]!.ratio).toBeGreaterThan(1);
    expect(Math.round(rows[1]!.ratio * 1000)).toBe(rows[1]!.ratio * 1000);
  });

  it('refuses a baseline that is not a case and an even or non-positive number of rounds', () => {
    const noop = () => {};
    expect(() => verifyCostRows({ a: noop }, 'b', { seconds: 0.001, rounds: 1 })).toThrow(/baseline/);
    expect(() => verifyCostRows({ a: noop }, 'a', { seconds: 0.001, rounds: 2 })).toThrow(/odd/);
    expect(() => verifyCostRows({ a: noop }, 'a', { seconds: 0.001, rounds: 0 })).toThrow(/odd/);
    expect(() => verifyCostRows({ a: noop }, 'a', { seconds: 0, rounds: 1 })).toThrow(/positive/);
  });
});
