// `npm run demo [-- --dir DIR --rows N]`: builds and runs the multi-party analytics demo
// (examples/multi-party-analytics/README.md).
import { spawnSync } from 'node:child_process';
import { buildDemo } from './demo-build.mjs';

const paths = await buildDemo();
const r = spawnSync(
  process.execPath,
  [
    paths.main,
    '--cli',
    paths.cli,
    '--workload',
    paths.workload,
    '--modified-workload',
    paths.modifiedWorkload,
    ...process.argv.slice(2),
  ],
  { stdio: 'inherit' },
);
process.exit(r.status ?? 1);
