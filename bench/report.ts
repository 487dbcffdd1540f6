/**
 * `npm run bench-report -- RUN.json`: renders one saved `ekms bench --json` document as Markdown, every row of every
 * suite that ran and the target verdicts, so that docs/performance.md's tables all come from one run and can be
 * regenerated from the JSON kept beside them (nothing is re-measured or re-judged: the verdicts are the run's own).
 *
 * Numbers are printed as the JSON holds them, grouped in threes with a space (`15 639`): figures of 100 and more as
 * integers, smaller ones to three significant digits, ratios to three decimals (the service rows carry more in the
 * JSON).
 */
import type { TargetVerdict } from './targets.js';

/** A row as `ekms bench --json` writes it (a non-finite number is null in the JSON). */
export interface ReportRow {
  readonly id: string;
  readonly unit: string;
  readonly value: number | null;
  readonly baseline: number | null;
  readonly ratio: number | null;
}

/** The parts of an `ekms bench --json` document the report reads. */
export interface BenchDocument {
  readonly ok: true;
  readonly machine: Readonly<Record<string, unknown>>;
  readonly results: readonly ReportRow[];
  /** Suite name → the ids of its rows, in the order they ran (absent in documents before 2026-12-05 14:00). */
  readonly suites?: Readonly<Record<string, readonly string[]>>;
  readonly targets?: readonly TargetVerdict[];
}

/** Checks the shape of a parsed document. @throws Error naming the first field that is wrong. */
export function asBenchDocument(value: unknown): BenchDocument {
  const doc = value as Partial<BenchDocument> | null;
  if (doc === null || typeof doc !== 'object' || doc.ok !== true) {
    throw new Error('not an `ekms bench --json` document: no "ok": true');
  }
  if (typeof doc.machine !== 'object' || doc.machine === null)
    throw new Error('the document has no "machine"');
  if (!Array.isArray(doc.results)) throw new Error('the document has no "results" array');
  for (const [i, r] of doc.results.entries()) {
    const row = r as Partial<ReportRow> | null;
    if (row === null || typeof row.id !== 'string' || typeof row.unit !== 'string') {
      throw new Error(`results[${i}] has no string id and unit`);
    }
    for (const k of ['value', 'baseline', 'ratio'] as const) {
      if (row[k] !== null && typeof row[k] !== 'number')
        throw new Error(`results[${i}].${k} is not a number`);
    }
  }
  return doc as BenchDocument;
}

/** Groups the digits of an integer string in threes with a space. */
function grouped(digits: string): string {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
}

/** A figure: ≥ 100 as an integer, below to three significant digits; `—` for null. */
export function figure(n: number | null): string {
  if (n === null) return '—';
  if (Math.abs(n) >= 100) return `${n < 0 ? '-' : ''}${grouped(String(Math.round(Math.abs(n))))}`;
  if (n === 0) return '0';
  return String(Number(n.toPrecision(3)));
}

/** A ratio to three decimals (trailing zeros dropped); `—` for null. */
export function ratio(n: number | null): string {
  if (n === null) return '—';
  const [int, frac] = (Math.round(n * 1000) / 1000)
    .toFixed(3)
    .replace(/\.?0+$/, '')
    .split('.');
  return frac === undefined ? grouped(int!) : `${grouped(int!)}.${frac}`;
}

const cell = (s: string): string => s.replace(/\|/g, '\\|');

function table(rows: readonly ReportRow[]): string {
  const lines = ['| id | value | baseline | ratio | unit |', '|---|---:|---:|---:|---|'];
  for (const r of rows) {
    lines.push(
      `| ${cell(r.id)} | ${figure(r.value)} | ${figure(r.baseline)} | ${ratio(r.ratio)} | ${cell(r.unit)} |`,
    );
  }
  return lines.join('\n');
}

/** The Markdown of one document: the machine line, one table per suite, the verdicts. */
export function renderReport(doc: BenchDocument): string {
  const out: string[] = [];
  out.push(`Machine: \`${JSON.stringify(doc.machine)}\``, '');
  const byId = new Map(doc.results.map((r) => [r.id, r]));
  const placed = new Set<string>();
  for (const [suite, ids] of Object.entries(doc.suites ?? {})) {
    const rows = ids.map((id) => byId.get(id)).filter((r): r is ReportRow => r !== undefined);
    if (rows.length === 0) continue;
    for (const r of rows) placed.add(r.id);
    out.push(`#### ${suite}`, '', table(rows), '');
  }
  const rest = doc.results.filter((r) => !placed.has(r.id));
  if (rest.length > 0)
    out.push(doc.suites === undefined ? '#### results' : '#### other rows', '', table(rest), '');
  if (doc.targets !== undefined && doc.targets.length > 0) {
    out.push('#### Target verdicts of this run (judged by the run itself, bench/targets.ts)', '');
    out.push('| target | status | worst row | its ratio | bound |', '|---|---|---|---:|---|');
    for (const t of doc.targets) {
      // Four significant digits: 1/1.1 prints 0.9091, so a row reporting 0.909 visibly misses it.
      const bound = `${t.direction === 'min' ? '≥' : '≤'} ${Number(t.bound.toPrecision(4))}`;
      const missing = t.missing.length > 0 ? ` (missing: ${t.missing.join(', ')})` : '';
      out.push(
        `| ${cell(t.description)} | **${t.status}**${cell(missing)} | ${cell(t.worst?.id ?? '—')} | ${ratio(t.worst?.ratio ?? null)} | ${bound} |`,
      );
    }
    out.push('');
  }
  return out.join('\n');
}
