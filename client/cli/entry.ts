/** Process entry of the `ekms` bundle (dist/cli.mjs). */
import { main } from './main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`ekms: INTERNAL_ERROR: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
