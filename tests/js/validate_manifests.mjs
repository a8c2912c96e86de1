// node tests/js/validate_manifests.mjs LIST.json: each manifest of the JSON list through the JavaScript reader's
// check (runtime/js/bundle.mjs validateManifest), printing a JSON list with null (accepted) or the BundleError's
// message (refused). tests/runtime/test_runtime_manifest_schema.py feeds it the manifests it feeds the Python reader.

import { readFile } from 'node:fs/promises';

import { BundleError, validateManifest } from '../../runtime/js/bundle.mjs';

const manifests = JSON.parse(await readFile(process.argv[2], 'utf8'));
const verdicts = manifests.map((manifest) => {
  try {
    validateManifest(manifest);
    return null;
  } catch (e) {
    if (!(e instanceof BundleError)) throw e;
    return e.message;
  }
});
process.stdout.write(JSON.stringify(verdicts));
