/** `npm run bench-report -- RUN.json`: prints bench/report.ts's Markdown for a saved `ekms bench --json` document. */
import { readFileSync } from 'node:fs';
import { asBenchDocument, renderReport } from './report.js';

const file = process.argv[2];
if (file === undefined || process.argv.length > 3) {
  process.stderr.write('usage: npm run bench-report -- RUN.json (a saved `ekms bench --json` document)\n');
  process.exit(2);
}
try {
  process.stdout.write(renderReport(asBenchDocument(JSON.parse(readFileSync(file, 'utf8')))));
} catch (err) {
  process.stderr.write(`bench-report: ${(err as Error).message}\n`);
  process.exit(1);
}
