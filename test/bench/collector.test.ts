/**
 * The envelope suite's collector setting (bench/collector.ts): when it sets V8's growing factor, that it sets it back
 * afterwards (also when the suite throws), that it leaves a user's own choice alone, and that this node's V8 knows the
 * flag (a flag V8 does not know would be a silent no-op through setFlagsFromString).
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  BENCH_HEAP_GROWING_PERCENT,
  type CollectorDeps,
  chooseCollectorSetting,
  collectorSetting,
  withBenchCollector,
} from '../../bench/collector.js';

function deps(env: NodeJS.ProcessEnv = {}, execArgv: string[] = []): { d: CollectorDeps; calls: string[] } {
  const calls: string[] = [];
  return { d: { env, execArgv, setFlags: (f) => calls.push(f), collect: () => calls.push('gc') }, calls };
}

describe('withBenchCollector', () => {
  it('sets the growing percent before the suite runs and V8’s adaptive factor back after it', async () => {
    const { d, calls } = deps();
    const seen: string[] = [];
    const result = await withBenchCollector(async () => {
      seen.push(...calls);
      return 'rows';
    }, d);
    expect(result).toBe('rows');
    expect(seen).toEqual([`--heap-growing-percent=${BENCH_HEAP_GROWING_PERCENT}`]);
    expect(calls).toEqual([
      `--heap-growing-percent=${BENCH_HEAP_GROWING_PERCENT}`,
      '--heap-growing-percent=0',
      'gc',
    ]);
    expect(collectorSetting()).toBe(`heap-growing-percent=${BENCH_HEAP_GROWING_PERCENT}`);
  });

  it('sets the factor back when the suite throws, and passes the error on', async () => {
    const { d, calls } = deps();
    const boom = new Error('suite failed');
    await expect(
      withBenchCollector(async () => {
        throw boom;
      }, d),
    ).rejects.toBe(boom);
    expect(calls.slice(1)).toEqual(['--heap-growing-percent=0', 'gc']);
  });

  it('sets the factor back without a collection where none is exposed', async () => {
    const { d, calls } = deps();
    await withBenchCollector(async () => undefined, { ...d, collect: undefined });
    expect(calls).toEqual([
      `--heap-growing-percent=${BENCH_HEAP_GROWING_PERCENT}`,
      '--heap-growing-percent=0',
    ]);
  });

  it('sets nothing with EKMS_BENCH_DEFAULT_COLLECTOR=1', async () => {
    const { d, calls } = deps({ EKMS_BENCH_DEFAULT_COLLECTOR: '1' });
    expect(await withBenchCollector(async () => 3, d)).toBe(3);
    expect(calls).toEqual([]);
    expect(collectorSetting()).toBe('default');
  });

  it('leaves a growing percent given to node alone, in either spelling', async () => {
    for (const flag of ['--heap-growing-percent=50', '--heap_growing_percent=50', '--heap-growing-percent']) {
      const { d, calls } = deps({}, ['--expose-gc', flag]);
      await withBenchCollector(async () => undefined, d);
      expect(calls, flag).toEqual([]);
      expect(collectorSetting(), flag).toBe('user V8 flags');
    }
  });

  it('is not put off by other V8 options', () => {
    expect(
      chooseCollectorSetting({
        env: { EKMS_BENCH_DEFAULT_COLLECTOR: '0' },
        execArgv: ['--max-old-space-size=100'],
      }),
    ).toBe(`heap-growing-percent=${BENCH_HEAP_GROWING_PERCENT}`);
  });
});

describe('the flag the setting uses', () => {
  it('is one this node’s V8 knows (and a misspelt one is refused, so the check can fail)', () => {
    const known = spawnSync(process.execPath, [
      `--heap-growing-percent=${BENCH_HEAP_GROWING_PERCENT}`,
      '-e',
      '0',
    ]);
    expect(known.status, known.stderr.toString()).toBe(0);
    const unknown = spawnSync(process.execPath, ['--heap-growing-percentage=400', '-e', '0']);
    expect(unknown.status).not.toBe(0);
  });

  it('takes effect when set at run time, as withBenchCollector sets it (V8 computes the next limit with it)', () => {
    // V8 prints each new old-generation limit with the factor it used; setFlagsFromString of an unknown or ignored
    // flag would be silent, so this watches the factor itself: 5.0 after the run-time setting, not without it.
    const limits = (script: string): string[] => {
      const r = spawnSync(process.execPath, ['--expose-gc', '--trace-gc-verbose', '-e', script]);
      expect(r.status, r.stderr.toString()).toBe(0);
      return r.stdout
        .toString()
        .split('\n')
        .filter((l) => l.includes('[HeapController] Limit:'));
    };
    const factor = (1 + BENCH_HEAP_GROWING_PERCENT / 100).toFixed(1);
    const set = limits(
      `require('node:v8').setFlagsFromString('--heap-growing-percent=${BENCH_HEAP_GROWING_PERCENT}'); gc();`,
    );
    expect(set.length).toBeGreaterThan(0);
    expect(set.at(-1)).toContain(`(${factor})`);
    const reset = limits(
      `const v8 = require('node:v8'); v8.setFlagsFromString('--heap-growing-percent=${BENCH_HEAP_GROWING_PERCENT}'); v8.setFlagsFromString('--heap-growing-percent=0'); gc();`,
    );
    expect(reset.length).toBeGreaterThan(0);
    expect(reset.at(-1)).not.toContain(`(${factor})`);
  });
});
