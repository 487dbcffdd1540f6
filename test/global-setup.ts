// Builds dist/ once before the suites: the end-to-end tests launch the real enclave bundle as its own process.
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
}
