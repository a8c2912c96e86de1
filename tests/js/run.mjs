// `npm test`: node --test on the JavaScript runtime's tests (tests/js/*.test.mjs) against tiny bundles of every kind.
// VAEKIT_JS_BUNDLES names a folder of them (tests/js/write_bundles.py); when it is unset they are exported first,
// into a temporary folder, by the project's Python (.venv/bin/python after `make venv`, or VAEKIT_PYTHON), so a
// fresh clone tests the runtime against what the Python runtime computes today instead of against stale fixtures.
// VAEKIT_JS_BUNDLES set but empty runs only the tests that need no bundle.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = dirname(dirname(here));
let bundles = process.env.VAEKIT_JS_BUNDLES;
let made = null;
if (bundles === undefined) {
  const python = process.env.VAEKIT_PYTHON ?? join(repo, '.venv', 'bin', 'python');
  if (!existsSync(python)) {
    console.error(`npm test: ${python} is missing; run \`make venv\` first (or set VAEKIT_PYTHON, or VAEKIT_JS_BUNDLES)`);
    process.exit(1);
  }
  made = await mkdtemp(join(tmpdir(), 'vaekit-js-bundles-'));
  const exported = spawnSync(python, [join(here, 'write_bundles.py'), made], { cwd: repo, stdio: 'inherit' });
  if (exported.status !== 0) {
    await rm(made, { recursive: true });
    console.error('npm test: exporting the test bundles failed (see above)');
    process.exit(1);
  }
  bundles = made;
}
const tests = (await readdir(here)).filter((name) => name.endsWith('.test.mjs')).map((name) => join(here, name));
const run = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...tests], {
  cwd: repo, stdio: 'inherit', env: { ...process.env, VAEKIT_JS_BUNDLES: bundles },
});
if (made) await rm(made, { recursive: true });
process.exit(run.status ?? 1);
