/**
 * The benchmark harness's arithmetic and its allocator switch (bench/envelope-harness.ts, bench/allocator.ts). The
 * figures a benchmark prints are never asserted (timed assertions do not belong in tests); what is checked here is
 * that a row reports what was measured: each sample under its contender's name, the paired ratio, the medians, and
 * refusal of unpaired samples; and that the allocator switch runs the benchmark again only when it should, with
 * what, and hands child processes the user's environment back.
 */
import type { spawnSync } from 'node:child_process';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it, vi } from 'vitest';
import {
  allocatorSetting,
  BENCH_GLIBC_TUNABLES,
  type RerunDeps,
  rerunWithBenchAllocator,
} from '../../bench/allocator.js';
import {
  helperCpuRow,
  helperThreadCpuMicros,
  type Measured,
  majorGcRow,
  measure,
  pairedRow,
  row,
} from '../../bench/envelope-harness.js';

function measured(samples: Record<string, number[]>): Measured {
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  return {
    samples: new Map(Object.entries(samples)),
    median: new Map(Object.entries(samples).map(([k, v]) => [k, median(v)])),
    majorGcs: new Map(Object.keys(samples).map((k) => [k, 0])),
    helperCpuMicros: new Map(Object.keys(samples).map((k) => [k, 0])),
    runs: new Map(Object.entries(samples).map(([k, v]) => [k, v.length])),
  };
}

describe('pairedRow', () => {
  it('reports the medians as value and baseline, and as ratio the median over pairs of rounds of their geometric mean', () => {
    // Rounds alternate the order; here the side that runs first in a round loses 40 %: per-round ratios 0.6, 1, 0.6,
    // 1. Each pair of rounds gives sqrt(0.6 × 1) = 0.775; the per-round median and the medians' ratio would say 0.8.
    const m = measured({ env: [60, 100, 60, 100], raw: [100, 100, 100, 100] });
    expect(pairedRow('x', 'MB/s', m, 'env', 'raw')).toEqual({
      id: 'x',
      unit: 'MB/s',
      value: 80,
      baseline: 100,
      ratio: 0.775,
    });
    // Two pairs of rounds of three say 0.5; the medians alone (100 and 100) would say 1.
    const drift = measured({ env: [50, 50, 200, 200, 100, 100], raw: [100, 100, 100, 100, 200, 200] });
    expect(pairedRow('d', 'MB/s', drift, 'env', 'raw').ratio).toBe(0.5);
    expect(row('x', 'MB/s', 100, 100).ratio).toBe(1);
    expect(row('y', 'ops/s', 3, 4).ratio).toBe(0.75);
    // Three decimals, so a ratio just below a 0.9 bound is not rounded onto it.
    expect(row('z', 'MB/s', 895, 1000).ratio).toBe(0.895);
  });

  it('refuses a contender it has no samples for, samples that are not paired, or an odd number of rounds', () => {
    expect(() => pairedRow('x', 'MB/s', measured({ env: [1, 1] }), 'env', 'raw')).toThrow(
      /no paired samples/,
    );
    expect(() => pairedRow('x', 'MB/s', measured({ env: [1, 2], raw: [1] }), 'env', 'raw')).toThrow(
      /no paired samples/,
    );
    expect(() => pairedRow('x', 'MB/s', measured({ env: [], raw: [] }), 'env', 'raw')).toThrow(/no paired/);
    expect(() => pairedRow('x', 'MB/s', measured({ env: [1, 2, 3], raw: [1, 2, 3] }), 'env', 'raw')).toThrow(
      /no paired/,
    );
  });
});

describe('majorGcRow', () => {
  it("reports each side's major collections per 100 timed runs", () => {
    const m: Measured = {
      ...measured({ env: [1, 1], raw: [1, 1] }),
      majorGcs: new Map([
        ['env', 9],
        ['raw', 3],
      ]),
      runs: new Map([
        ['env', 20],
        ['raw', 20],
      ]),
    };
    expect(majorGcRow('g', m, 'env', 'raw')).toEqual({
      id: 'g',
      unit: 'major GCs/100 runs',
      value: 45,
      baseline: 15,
      ratio: 3,
    });
    expect(() => majorGcRow('g', m, 'env', 'other')).toThrow(/no timed runs of other/);
    expect(() => majorGcRow('g', { ...m, runs: new Map([['env', 0]]) }, 'env', 'raw')).toThrow(
      /no timed runs/,
    );
  });
});

describe('helperCpuRow', () => {
  it("reports each side's helper-thread CPU in ms per timed run, and nothing where it could not be read", () => {
    const m: Measured = {
      ...measured({ env: [1, 1], raw: [1, 1] }),
      helperCpuMicros: new Map([
        ['env', 600_000],
        ['raw', 200_000],
      ]),
      runs: new Map([
        ['env', 20],
        ['raw', 20],
      ]),
    };
    expect(helperCpuRow('h', m, 'env', 'raw')).toEqual({
      id: 'h',
      unit: 'helper-thread CPU ms/run',
      value: 30,
      baseline: 10,
      ratio: 3,
    });
    expect(() => helperCpuRow('h', m, 'env', 'other')).toThrow(/no timed runs of other/);
    expect(helperCpuRow('h', { ...m, helperCpuMicros: undefined }, 'env', 'raw')).toBeUndefined();
  });
});

describe('helperThreadCpuMicros', () => {
  it.skipIf(helperThreadCpuMicros() === undefined)(
    'counts the CPU time of a thread other than the main one (Linux /proc; skipped where unavailable)',
    async () => {
      const before = helperThreadCpuMicros()!;
      // A worker thread that spins until its own thread has used 40 ms of CPU (its own schedstat), then exits:
      // the amount is fixed by the worker, not by a clock, so the lower bound holds on a loaded machine too.
      const { Worker } = await import('node:worker_threads');
      const worker = new Worker(
        `const fs = require('node:fs');
         const own = () => Number(fs.readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ')[0]) / 1000;
         const start = own();
         let x = 0;
         while (own() - start < 40_000) for (let i = 0; i < 10_000; i++) x += i;
         const { parentPort } = require('node:worker_threads');
         parentPort.postMessage(own() - start + (x & 0));
         parentPort.once('message', () => {}); // stay alive (and counted) until terminated`,
        { eval: true },
      );
      const burned = await new Promise<number>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      // Read while the worker's thread still exists (a thread that exits takes its time with it): it waits for a
      // message that never comes until terminate().
      const after = helperThreadCpuMicros()!;
      await worker.terminate();
      expect(burned).toBeGreaterThanOrEqual(40_000);
      expect(after - before).toBeGreaterThanOrEqual(40_000);
    },
  );
});

describe('measure', () => {
  /** A CPU clock that only the contenders advance: each run of `name` costs `cost[name]` µs. */
  function fakeClock(cost: Record<string, number>) {
    let now = 0;
    const calls: string[] = [];
    const c = (name: string, reps?: number) => ({
      name,
      ...(reps === undefined ? {} : { reps }),
      run: () => {
        calls.push(name);
        now += cost[name]!;
      },
    });
    return { c, calls, clock: () => now };
  }

  it("adds up the helper threads' CPU over each contender's timed samples only, or reports none if unreadable", async () => {
    const { c, clock } = fakeClock({ a: 1, b: 1 });
    // A helper-thread clock that the contenders advance: each run of a costs 7 µs on other threads, of b 3 µs.
    let helper = 0;
    const runs = { a: 0, b: 0 };
    const contender = (name: 'a' | 'b', cost: number) => {
      const base = c(name);
      return {
        ...base,
        run: () => {
          base.run();
          runs[name]++;
          helper += cost;
        },
      };
    };
    const m = await measure(
      1000,
      [contender('a', 7), contender('b', 3)],
      { reps: 2, samples: 4 },
      clock,
      () => helper,
    );
    // Warm-up runs (2 rounds × 2 reps) are not counted: 4 timed rounds × 2 reps each.
    expect(runs).toEqual({ a: 12, b: 12 });
    expect(m.helperCpuMicros?.get('a')).toBe(8 * 7);
    expect(m.helperCpuMicros?.get('b')).toBe(8 * 3);
    const none = await measure(1000, [c('a'), c('b')], { reps: 1, samples: 2 }, clock, () => undefined);
    expect(none.helperCpuMicros).toBeUndefined();
  });

  it('takes one sample of each contender per round, alternating the order, after two warm-up rounds', async () => {
    const { c, calls, clock } = fakeClock({ a: 1, b: 1 });
    // 3 rounds asked for, 4 taken: rounds go in pairs, one in each order.
    const m = await measure(1000, [c('a'), c('b')], { reps: 2, samples: 3 }, clock);
    // Warm-up: 2 rounds × 2 reps each, in order; then rounds a b / b a / a b / b a.
    expect(calls.join('')).toBe(`${'aabb'.repeat(2)}aabbbbaaaabbbbaa`);
    expect(m.samples.get('a')).toHaveLength(4);
    expect(m.samples.get('b')).toHaveLength(4);
  });

  it('files every sample under the contender that produced it, in reversed rounds too', async () => {
    // a costs 4 µs a run, b 10 µs, c 25 µs: 1000 bytes per run → 250, 100, 40 bytes/µs in every round.
    const { c, clock } = fakeClock({ a: 4, b: 10, c: 25 });
    const m = await measure(1000, [c('a'), c('b'), c('c')], { reps: 3, samples: 4 }, clock);
    expect(m.samples.get('a')).toEqual([250, 250, 250, 250]);
    expect(m.samples.get('b')).toEqual([100, 100, 100, 100]);
    expect(m.samples.get('c')).toEqual([40, 40, 40, 40]);
    expect(m.median.get('b')).toBe(100);
  });

  it('runs a contender its own number of times per sample and counts them in its figure', async () => {
    const { c, calls, clock } = fakeClock({ fast: 1, slow: 50 });
    const m = await measure(1000, [c('fast', 50), c('slow')], { reps: 1, samples: 2 }, clock);
    expect(calls.filter((n) => n === 'fast')).toHaveLength(50 * 4); // 2 warm-up rounds + 2 samples
    expect(calls.filter((n) => n === 'slow')).toHaveLength(4);
    expect(m.samples.get('fast')).toEqual([1000, 1000]);
    expect(m.samples.get('slow')).toEqual([20, 20]);
  });

  it('warms each contender up until it has used warmupMicros of CPU, after two rounds of all', async () => {
    // a: 2 µs per round (2 runs × 1 µs), b: 6 µs per round; 10 µs of warm-up takes a 5 rounds, b 2.
    const { c, calls, clock } = fakeClock({ a: 1, b: 3 });
    const m = await measure(1000, [c('a'), c('b')], { reps: 2, samples: 2, warmupMicros: 10 }, clock);
    expect(calls.join('')).toBe(`${'aabb'.repeat(2)}${'aa'.repeat(3)}aabbbbaa`);
    // Samples: 2 runs × 1000 bytes over 2 µs (a) and 6 µs (b).
    expect(m.samples.get('a')).toEqual([1000, 1000]);
    expect(m.samples.get('b')).toEqual([2000 / 6, 2000 / 6]);
    // A budget both reach in one round still gets two.
    const short = fakeClock({ a: 100, b: 100 });
    await measure(1000, [short.c('a'), short.c('b')], { reps: 1, samples: 2, warmupMicros: 1 }, short.clock);
    expect(short.calls.join('')).toBe(`${'ab'.repeat(2)}abba`);
  });

  it('refuses a warm-up that cannot end (a contender that uses no CPU) or a budget that is not a number', async () => {
    const { c, calls, clock } = fakeClock({ a: 1, idle: 0 });
    await expect(
      measure(1000, [c('a'), c('idle')], { reps: 1, samples: 2, warmupMicros: 5 }, clock),
    ).rejects.toThrow(/warm-up of idle did not reach 5 µs/);
    // a stopped at its budget (5 µs: 5 runs); idle gave up after 1000 consecutive rounds without CPU time.
    expect(calls.filter((n) => n === 'a')).toHaveLength(5);
    expect(calls.filter((n) => n === 'idle')).toHaveLength(1000);
    // A bad budget is refused before anything runs.
    const before = calls.length;
    for (const warmupMicros of [Number.NaN, Number.POSITIVE_INFINITY, -1]) {
      await expect(measure(1000, [c('a')], { reps: 1, samples: 2, warmupMicros }, clock)).rejects.toThrow(
        /finite number of µs/,
      );
    }
    expect(calls).toHaveLength(before);
  });

  it('warms a contender up with its own number of runs per round', async () => {
    const { c, calls, clock } = fakeClock({ fast: 1, slow: 50 });
    await measure(1000, [c('fast', 10), c('slow')], { reps: 1, samples: 2, warmupMicros: 35 }, clock);
    // fast: 10 µs a round → 4 rounds (40 µs ≥ 35); slow: 50 µs a round → the two first rounds; then 2 samples each.
    // (Rounds after the second at the global reps = 1 would take fast 15 more runs: 35 + 20 calls, not 60.)
    expect(calls.filter((n) => n === 'fast')).toHaveLength(10 * (4 + 2));
    expect(calls.filter((n) => n === 'slow')).toHaveLength(2 + 2);
  });

  it("counts the major collections during each contender's timed samples, and its timed runs", async () => {
    // A full collection on demand (V8's gc(), as --expose-gc gives it) in every run of `a`, and a minor one
    // (a scavenge, which must not count) in every run of `b`.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as (options?: { type: 'minor' | 'major' }) => void;
    const { c, clock } = fakeClock({ a: 1, b: 1 });
    const a = c('a', 3);
    const b = c('b');
    const m = await measure(
      1000,
      [
        {
          ...a,
          run: () => {
            a.run();
            gc();
          },
        },
        {
          ...b,
          run: () => {
            b.run();
            gc({ type: 'minor' });
          },
        },
      ],
      { reps: 2, samples: 4 },
      clock,
    );
    // Warm-up runs are not counted: 4 rounds × 3 runs of a, 4 × 2 of b.
    expect(m.runs.get('a')).toBe(12);
    expect(m.runs.get('b')).toBe(8);
    expect(m.majorGcs.get('a')).toBe(12);
    expect(m.majorGcs.get('b')).toBe(0);
  });

  it('refuses contenders with the same name (a row could not tell them apart)', async () => {
    const { c, clock } = fakeClock({ a: 1 });
    await expect(measure(1, [c('a'), c('a')], { reps: 1, samples: 1 }, clock)).rejects.toThrow(/distinct/);
  });
});

describe('the benchmark allocator setting', () => {
  type Spawn = typeof spawnSync;
  function deps(env: NodeJS.ProcessEnv, result: Partial<ReturnType<Spawn>> = { status: 0, signal: null }) {
    const spawn = vi.fn(() => ({
      pid: 1,
      output: [],
      stdout: '',
      stderr: '',
      status: null,
      signal: null,
      ...result,
    }));
    const d: RerunDeps = { env, isGlibc: () => true, spawn: spawn as unknown as Spawn };
    return { d, spawn };
  }
  const childEnv = (spawn: ReturnType<typeof deps>['spawn']) =>
    (spawn.mock.calls[0] as unknown as [string, string[], { env: NodeJS.ProcessEnv }])[2].env;

  it('is only glibc malloc tunables (no trimming, mmap from 8 MiB)', () => {
    expect(BENCH_GLIBC_TUNABLES.split(':').map((t) => t.split('=')[0])).toEqual([
      'glibc.malloc.trim_threshold',
      'glibc.malloc.top_pad',
      'glibc.malloc.mmap_threshold',
    ]);
  });

  it('runs the benchmark again with the setting, and passes its exit code (or signal) back', () => {
    const ok = deps({ PATH: '/bin' }, { status: 7, signal: null });
    expect(rerunWithBenchAllocator(ok.d)).toBe(7);
    expect(childEnv(ok.spawn)).toMatchObject({
      PATH: '/bin',
      GLIBC_TUNABLES: BENCH_GLIBC_TUNABLES,
      EKMS_BENCH_USER_GLIBC_TUNABLES: '',
    });
    expect(rerunWithBenchAllocator(deps({}, { status: null, signal: 'SIGKILL' }).d)).toBe(137);
    const failed = deps({}, { status: null, signal: null, error: new Error('spawn ENOENT') });
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(rerunWithBenchAllocator(failed.d)).toBe(1);
      expect(String(stderr.mock.calls[0]?.[0])).toMatch(/ENOENT/);
    } finally {
      stderr.mockRestore();
    }
  });

  it("adds its tunables to a user's other glibc tunables, and keeps the user's value for child processes", () => {
    const { d, spawn } = deps({ GLIBC_TUNABLES: 'glibc.pthread.rseq=0' });
    rerunWithBenchAllocator(d);
    const env = childEnv(spawn);
    expect(env['GLIBC_TUNABLES']).toBe(`glibc.pthread.rseq=0:${BENCH_GLIBC_TUNABLES}`);
    expect(env['EKMS_BENCH_USER_GLIBC_TUNABLES']).toBe('glibc.pthread.rseq=0');
    // In the re-run: reported, and the user's value restored for children.
    expect(allocatorSetting(env)).toBe('glibc-no-trim');
    expect(env['GLIBC_TUNABLES']).toBe('glibc.pthread.rseq=0');
    expect(env['EKMS_BENCH_USER_GLIBC_TUNABLES']).toBeUndefined();
  });

  it('in the re-run, drops its tunables from what child processes inherit (the enclave runs the default)', () => {
    const env: NodeJS.ProcessEnv = {
      GLIBC_TUNABLES: BENCH_GLIBC_TUNABLES,
      EKMS_BENCH_USER_GLIBC_TUNABLES: '',
    };
    const { d, spawn } = deps(env);
    expect(rerunWithBenchAllocator(d)).toBeUndefined(); // no second re-run
    expect(spawn).not.toHaveBeenCalled();
    expect(allocatorSetting(env)).toBe('glibc-no-trim');
    expect(env).toEqual({});
  });

  it("does not run again for a user's own malloc tunables, the opt-out, or another C library", () => {
    for (const env of [
      { GLIBC_TUNABLES: 'glibc.malloc.arena_max=1' },
      { MALLOC_ARENA_MAX_: '2' },
      { EKMS_BENCH_DEFAULT_ALLOCATOR: '1' },
    ] as NodeJS.ProcessEnv[]) {
      const { d, spawn } = deps(env);
      expect(rerunWithBenchAllocator(d)).toBeUndefined();
      expect(spawn).not.toHaveBeenCalled();
    }
    const { d, spawn } = deps({});
    expect(rerunWithBenchAllocator({ ...d, isGlibc: () => false })).toBeUndefined();
    expect(spawn).not.toHaveBeenCalled();
    expect(allocatorSetting({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=1' })).toBe('user malloc tunables');
    expect(allocatorSetting({ MALLOC_TRIM_THRESHOLD_: '0' })).toBe('user malloc tunables');
    expect(allocatorSetting({})).toBe('default');
  });

  it('does not take an inherited marker for a re-run unless the tunables are its own', () => {
    const env: NodeJS.ProcessEnv = {
      EKMS_BENCH_USER_GLIBC_TUNABLES: 'x',
      GLIBC_TUNABLES: 'glibc.pthread.rseq=0',
    };
    const { d, spawn } = deps({ ...env });
    rerunWithBenchAllocator(d);
    expect(spawn).toHaveBeenCalledOnce();
    expect(childEnv(spawn)['GLIBC_TUNABLES']).toBe(`glibc.pthread.rseq=0:${BENCH_GLIBC_TUNABLES}`);
    expect(allocatorSetting(env)).toBe('default');
    expect(env).toEqual({ GLIBC_TUNABLES: 'glibc.pthread.rseq=0' });
  });
});
