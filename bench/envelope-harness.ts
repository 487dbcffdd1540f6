/**
 * Shared by the envelope benchmarks (bench/envelope*.ts): inputs cut like a file read, sinks, CPU-time sampling of
 * contenders that take turns, and the result row. No benchmark of its own.
 *
 * Why CPU time: these machines have 2 cores shared with other work, and a process that is descheduled loses wall
 * time but not CPU time. Every contender here is synchronous work on the main thread plus V8's GC threads, so CPU
 * time (user + system, GC threads included) equals wall time on an idle machine and charges allocation honestly.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { GCProfiler } from 'node:v8';

/** One benchmark figure, in the shape of bench/index.ts rows. */
export interface BenchResult {
  readonly id: string;
  readonly unit: string;
  readonly value: number;
  readonly baseline: number;
  readonly ratio: number;
}

/** The piece size of `fs.createReadStream` (its default highWaterMark): how the streaming contenders get input. */
export const PIECE = 64 * 1024;

export const KiB = 1024;
export const MiB = 1024 * 1024;

/** `buf` cut into `PIECE`-byte views (no copy). */
export function piecesOf(buf: Uint8Array, piece = PIECE): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < buf.length; i += piece) out.push(buf.subarray(i, i + piece));
  return out;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** A sink that drops what it is given (same for every contender). */
export function nullSink(): Writable {
  return new Writable({
    write(_chunk: Buffer, _encoding, callback) {
      callback();
    },
  });
}

/** A sink that keeps what it is given, to check a contender's output once before it is timed. */
export function collectSink(into: Uint8Array[]): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      into.push(new Uint8Array(chunk));
      callback();
    },
  });
}

/** V8's `gc()` when node runs with --expose-gc (as `npm run bench` starts it), else undefined. */
export function exposedGc(): (() => void) | undefined {
  return (globalThis as { gc?: () => void }).gc;
}

/**
 * A full collection if --expose-gc gave us one (bench/envelope-memory.ts, before it reads live memory). Not between
 * samples, and no longer before each envelope pair either (decision 42).
 */
export function collectGarbage(): void {
  exposedGc()?.();
}

/** Something to time: `run` processes `bytes` bytes once. */
export interface Contender {
  readonly name: string;
  readonly run: () => Promise<unknown> | unknown;
  /** Runs per sample for this contender (default: the `reps` given to `measure`), to give unequal sides equal time. */
  readonly reps?: number;
}

/** Consecutive warm-up rounds in which a contender short of its budget may use no CPU before measure gives up. */
const MAX_IDLE_WARMUP_ROUNDS = 1000;

/** CPU microseconds used by this process so far (user + system, all threads). */
function processCpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/**
 * On-CPU microseconds used so far by this process's threads other than the main one: V8's garbage-collection and
 * compiler threads (and libuv's pool, idle in these benchmarks), from Linux's per-thread scheduler statistics
 * (`/proc/self/task/<tid>/schedstat`, nanoseconds). Undefined where those are not available. A thread that exits
 * takes its time with it; V8's helper threads live as long as the process.
 */
export function helperThreadCpuMicros(): number | undefined {
  let tasks: string[];
  try {
    tasks = readdirSync('/proc/self/task');
  } catch {
    return undefined;
  }
  const main = String(process.pid);
  let ns = 0;
  for (const tid of tasks) {
    if (tid === main) continue;
    try {
      const runNs = Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'latin1').split(' ')[0]);
      if (Number.isFinite(runNs)) ns += runNs;
    } catch {
      // The thread exited between the listing and the read.
    }
  }
  return ns / 1000;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * What `measure` found: each contender's samples (MB per CPU second) and their median, by name; and per contender the
 * major (mark-compact) collections V8 ran during its timed samples, the CPU time other threads than the main one used
 * meanwhile (µs; undefined where it cannot be read), and its timed runs.
 */
export interface Measured {
  readonly samples: ReadonlyMap<string, readonly number[]>;
  readonly median: ReadonlyMap<string, number>;
  readonly majorGcs: ReadonlyMap<string, number>;
  readonly helperCpuMicros: ReadonlyMap<string, number> | undefined;
  readonly runs: ReadonlyMap<string, number>;
}

/** Runs `work` and returns how many major collections V8 ran meanwhile (v8.GCProfiler, read synchronously). */
async function majorGcsDuring(work: () => Promise<void>): Promise<number> {
  const profiler = new GCProfiler();
  profiler.start();
  try {
    await work();
  } catch (err) {
    profiler.stop();
    throw err;
  }
  return profiler.stop().statistics.filter((s) => s.gcType === 'MarkSweepCompact').length;
}

/**
 * Times the contenders in rounds: one sample of each per round, the order reversed every other round, so that a
 * disturbance from other processes, or garbage one contender leaves for the next to collect, falls on all of them
 * alike. A sample is a contender's `reps` back-to-back runs; its figure is bytes × reps per CPU microsecond (MB/s,
 * or runs/s with bytes = 10^6). Untimed warm-up rounds first: two of every contender, then more of each until it has
 * used `warmupMicros` of CPU (default 0: two rounds), so that the JIT has settled before the first sample. Two rounds
 * at 1 MiB are ~30 ms; V8 took 0.1–0.8 s to settle on the envelope streams (`--trace-opt`/`--trace-deopt` probes,
 * 2026-12-03): after the fixed-cost rows, the per-record functions deoptimised on the streams' inputs and were
 * optimised again after 100–300 streams, one of them twice at 20–24 ms of compiling each; in a process that ran only
 * streams, the once-per-message code was optimised after ~400–800 messages. Until then code runs in the interpreter
 * and the compiler's work lands in the samples. `cpuMicros` is for tests.
 *
 * No forced GC between samples. Until 2026-12-03 this harness collected garbage before each sample, untimed; that
 * is not the regime a stream runs in, and it was not neutral: glibc then returned the freed output buffers to the
 * OS, so each sample re-faulted its pages (100–250 minor faults per MiB at ~10 µs each on these VMs: contenders
 * 2–7× slower and ratios that swung 0.6–2× between runs), and concurrent sweeping and re-optimisation landed on
 * whichever contender ran next. Now each sample collects its own garbage in the scavenges it triggers; samples are
 * large (callers can give the sides similar lengths with per-contender `reps`), so that what spills into the next
 * one is a small part of it. The number of rounds is rounded up to an even one: rounds go in pairs, one in each
 * order (see pairedRow).
 */
export async function measure(
  bytes: number,
  contenders: readonly Contender[],
  { reps, samples, warmupMicros = 0 }: { reps: number; samples: number; warmupMicros?: number },
  cpuMicros: () => number = processCpuMicros,
  helperCpu: () => number | undefined = helperThreadCpuMicros,
): Promise<Measured> {
  const figures = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
  /* Precondition: names identify contenders (a row looks its pair up by name). */
  if (figures.size !== contenders.length) throw new Error('benchmark contenders need distinct names');
  const reversed = [...contenders].reverse();
  /* Precondition: the warm-up budget is a finite, non-negative number of µs. */
  if (!Number.isFinite(warmupMicros) || warmupMicros < 0) {
    throw new Error(`benchmark warm-up must be a finite number of µs ≥ 0 (got ${warmupMicros})`);
  }
  // Two rounds of every contender, then rounds of those still short of the budget (each side gets about the
  // budget, not as many rounds as the cheapest side needs).
  const warmed = new Map<string, number>(contenders.map((c) => [c.name, 0]));
  const idle = new Map<string, number>(contenders.map((c) => [c.name, 0]));
  for (let round = 0; ; round++) {
    const due = contenders.filter((c) => round < 2 || warmed.get(c.name)! < warmupMicros);
    if (due.length === 0) break;
    for (const c of due) {
      const t0 = cpuMicros();
      for (let i = 0, n = c.reps ?? reps; i < n; i++) await c.run();
      const used = cpuMicros() - t0;
      warmed.set(c.name, warmed.get(c.name)! + used);
      // Consecutive rounds without CPU time, per contender.
      idle.set(c.name, used > 0 ? 0 : idle.get(c.name)! + 1);
      /* Precondition: the warm-up ends (a contender that uses no CPU cannot warm up). */
      if (round >= 2 && idle.get(c.name)! >= MAX_IDLE_WARMUP_ROUNDS) {
        throw new Error(`benchmark warm-up of ${c.name} did not reach ${warmupMicros} µs (it uses no CPU)`);
      }
    }
  }
  const rounds = samples + (samples % 2);
  const majorGcs = new Map<string, number>(contenders.map((c) => [c.name, 0]));
  let helperMicros: Map<string, number> | undefined = new Map(contenders.map((c) => [c.name, 0]));
  for (let s = 0; s < rounds; s++) {
    for (const c of s % 2 === 0 ? contenders : reversed) {
      const n = c.reps ?? reps;
      let used = 0;
      // Read outside the timed part (each read lists the threads and opens a file per thread).
      const h0 = helperCpu();
      const collections = await majorGcsDuring(async () => {
        const t0 = cpuMicros();
        for (let i = 0; i < n; i++) await c.run();
        used = cpuMicros() - t0;
      });
      const h1 = helperCpu();
      figures.get(c.name)!.push((bytes * n) / Math.max(1, used));
      majorGcs.set(c.name, majorGcs.get(c.name)! + collections);
      if (h0 === undefined || h1 === undefined) helperMicros = undefined;
      else helperMicros?.set(c.name, helperMicros.get(c.name)! + Math.max(0, h1 - h0));
    }
  }
  return {
    samples: figures,
    median: new Map([...figures].map(([name, xs]) => [name, median(xs)])),
    majorGcs,
    helperCpuMicros: helperMicros,
    runs: new Map(contenders.map((c) => [c.name, rounds * (c.reps ?? reps)])),
  };
}

/**
 * A row for contender `value` against contender `baseline` from one `measure`: the medians of their samples, and as
 * ratio the median, over pairs of consecutive rounds (one in each order), of the geometric mean of the pair's two
 * ratios. Paired because the two samples of a round ran back to back (a slow stretch slows both and cancels); two
 * rounds because the order matters: a contender that runs right after the other pays for what the other left
 * behind (a review probe of the 1 MiB encrypt streams: per-round ratios 0.55–0.62 in one order, 0.84–1.09 in the
 * other), and in a pair of rounds each side runs once in each place. So the ratio can differ from value / baseline.
 */
export function pairedRow(
  id: string,
  unit: string,
  m: Measured,
  value: string,
  baseline: string,
): BenchResult {
  const a = m.samples.get(value);
  const b = m.samples.get(baseline);
  if (a === undefined || b === undefined || a.length !== b.length || a.length === 0 || a.length % 2 !== 0) {
    throw new Error(`benchmark ${id}: no paired samples for ${value} and ${baseline}`);
  }
  const pairs: number[] = [];
  for (let i = 0; i < a.length; i += 2) {
    pairs.push(Math.sqrt((a[i]! / b[i]!) * (a[i + 1]! / b[i + 1]!)));
  }
  return row(id, unit, median(a), median(b), median(pairs));
}

/**
 * A row of the major (mark-compact) collections V8 ran per 100 timed runs of contender `value` and of `baseline`, from
 * one `measure`: which collector mode the pair ran in. On these machines a 64 MiB stream pair ran either with a few
 * (5–15 per 100 runs) or with one for nearly every stream, and then both sides ran at about half speed and the
 * envelope stream's ratio fell (docs/performance.md); this row puts that beside the ratio. Ratio = value / baseline
 * (0 when the baseline ran none): not a target.
 */
export function majorGcRow(id: string, m: Measured, value: string, baseline: string): BenchResult {
  const per100 = (name: string) => 100 * perTimedRun(id, m, m.majorGcs, name);
  return row(id, 'major GCs/100 runs', per100(value), per100(baseline));
}

/** `totals` of contender `name` (summed over its timed samples) per timed run. */
function perTimedRun(id: string, m: Measured, totals: ReadonlyMap<string, number>, name: string): number {
  const runs = m.runs.get(name);
  const total = totals.get(name);
  if (runs === undefined || total === undefined || runs === 0) {
    throw new Error(`benchmark ${id}: no timed runs of ${name}`);
  }
  return total / runs;
}

/**
 * A row of the CPU time V8's helper threads (every thread but the main one) used per timed run of contender `value`
 * and of `baseline`, in ms, from one `measure`; undefined where that time cannot be read. The process-CPU figures
 * include it: in the collector mode of the majorGcRow each 64 MiB stream paid for about one concurrent major mark of
 * V8's heap on those threads, 27–47 ms per stream against 2–4 outside it, charged to whichever sample was running
 * (docs/performance.md). Ratio = value / baseline (0 when the baseline used none): not a target.
 */
export function helperCpuRow(
  id: string,
  m: Measured,
  value: string,
  baseline: string,
): BenchResult | undefined {
  const micros = m.helperCpuMicros;
  if (micros === undefined) return undefined;
  const ms = (name: string) => perTimedRun(id, m, micros, name) / 1000;
  return row(id, 'helper-thread CPU ms/run', ms(value), ms(baseline));
}

/** A row: `value` against `baseline`, both in the same unit; ratio = value / baseline unless given. */
export function row(
  id: string,
  unit: string,
  value: number,
  baseline: number,
  ratio: number = baseline === 0 ? 0 : value / baseline,
): BenchResult {
  const round = (n: number) => (Math.abs(n) >= 100 ? Math.round(n) : Math.round(n * 100) / 100);
  return {
    id,
    unit,
    value: round(value),
    baseline: round(baseline),
    // Three decimals: a target is judged on the ratio as reported, so 0.895 (missing ≥ 0.9) must not print, and count, as 0.90.
    ratio: Math.round(ratio * 1000) / 1000,
  };
}

/** Throws if two byte arrays differ (checks a contender before it is timed). */
export function assertSameBytes(what: string, got: Uint8Array, want: Uint8Array): void {
  if (got.length !== want.length || Buffer.compare(got, want) !== 0) {
    throw new Error(`benchmark sanity check failed: ${what} (${got.length} bytes, expected ${want.length})`);
  }
}
