/**
 * The benchmark harness's arithmetic and its allocator switch (bench/envelope-harness.ts, bench/allocator.ts). The
 * figures a benchmark prints are never asserted (timed assertions do not belong in tests); what is checked here is
 * that a row reports what was measured: the paired ratio, the samples' medians, and refusal of unpaired samples.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { allocatorSetting, BENCH_GLIBC_TUNABLES, rerunWithBenchAllocator } from '../../bench/allocator.js';
import { type Measured, measure, pairedRow, row } from '../../bench/envelope-harness.js';

function measured(samples: Record<string, number[]>): Measured {
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  return {
    samples: new Map(Object.entries(samples)),
    median: new Map(Object.entries(samples).map(([k, v]) => [k, median(v)])),
  };
}

describe('pairedRow', () => {
  it('reports the medians as value and baseline, and the median of the per-round ratios as ratio', () => {
    // Round 2 ran slow for both and round 3 only for the baseline: the rounds say 0.5, 0.5, 2; the medians alone
    // (100 and 100) would say 1.
    const m = measured({ env: [100, 50, 200], raw: [200, 100, 100] });
    expect(pairedRow('x', 'MB/s', m, 'env', 'raw')).toEqual({
      id: 'x',
      unit: 'MB/s',
      value: 100,
      baseline: 100,
      ratio: 0.5,
    });
    expect(row('x', 'MB/s', 100, 100).ratio).toBe(1);
    expect(row('y', 'ops/s', 3, 4).ratio).toBe(0.75);
  });

  it('refuses a contender it has no samples for, or samples that are not paired', () => {
    expect(() => pairedRow('x', 'MB/s', measured({ env: [1] }), 'env', 'raw')).toThrow(/no paired samples/);
    expect(() => pairedRow('x', 'MB/s', measured({ env: [1, 2], raw: [1] }), 'env', 'raw')).toThrow(
      /no paired samples/,
    );
    expect(() => pairedRow('x', 'MB/s', measured({ env: [], raw: [] }), 'env', 'raw')).toThrow(/no paired/);
  });
});

describe('measure', () => {
  it('takes one sample of each contender per round, alternating the order, after two warm-up rounds', async () => {
    const calls: string[] = [];
    const c = (name: string) => ({ name, run: () => void calls.push(name) });
    const m = await measure(1000, [c('a'), c('b')], { reps: 2, samples: 3 });
    // Warm-up: 2 rounds × 2 reps each, in order; then rounds a b / b a / a b.
    expect(calls.join('')).toBe(`${'aabb'.repeat(2)}aabbbbaaaabb`);
    expect(m.samples.get('a')).toHaveLength(3);
    expect(m.samples.get('b')).toHaveLength(3);
    for (const xs of m.samples.values()) for (const x of xs) expect(x).toBeGreaterThan(0);
  });
});

describe('the benchmark allocator setting', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  });

  it('is only glibc malloc tunables (no trimming, mmap from 8 MiB)', () => {
    expect(BENCH_GLIBC_TUNABLES.split(':').map((t) => t.split('=')[0])).toEqual([
      'glibc.malloc.trim_threshold',
      'glibc.malloc.top_pad',
      'glibc.malloc.mmap_threshold',
    ]);
  });

  it('does not run again when the user set their own tunables or asked for the default allocator', () => {
    process.env['GLIBC_TUNABLES'] = 'glibc.malloc.arena_max=1';
    expect(rerunWithBenchAllocator()).toBeUndefined();
    expect(allocatorSetting()).toBe('user GLIBC_TUNABLES');
    expect(process.env['GLIBC_TUNABLES']).toBe('glibc.malloc.arena_max=1');
    delete process.env['GLIBC_TUNABLES'];
    process.env['EKMS_BENCH_DEFAULT_ALLOCATOR'] = '1';
    expect(rerunWithBenchAllocator()).toBeUndefined();
    expect(allocatorSetting()).toBe('default');
  });

  it('in the re-run, reports the setting and keeps it from child processes (the service suite\u2019s enclave)', () => {
    process.env['GLIBC_TUNABLES'] = BENCH_GLIBC_TUNABLES;
    process.env['EKMS_BENCH_ALLOCATOR_SET'] = '1';
    expect(rerunWithBenchAllocator()).toBeUndefined();
    expect(allocatorSetting()).toBe('glibc-no-trim');
    expect(process.env['GLIBC_TUNABLES']).toBeUndefined();
    expect(process.env['EKMS_BENCH_ALLOCATOR_SET']).toBeUndefined();
  });
});
