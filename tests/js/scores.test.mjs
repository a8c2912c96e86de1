// node --test for the anomaly scores of runtime/js: VAEKIT_JS_SCORES names a folder written by
// tests/js/test_js_scores.py (tiny bundles and expected.json: what the Python runtime computes on them).

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { VAE, codeLength, SCORES } from '../../runtime/js/vaekit.mjs';
import { checkName, combinedReferences } from '../../runtime/js/scores.mjs';

const ROOT = process.env.VAEKIT_JS_SCORES || null;
const expected = ROOT ? JSON.parse(await readFile(join(ROOT, 'expected.json'), 'utf8')) : null;
const skip = ROOT ? false : 'VAEKIT_JS_SCORES is not set (tests/js/test_js_scores.py sets it)';

test('code length: the known answer of tests/runtime/test_anomaly_scores.py', () => {
  assert.equal(codeLength(new Float32Array(28 * 28), 0, [1, 28, 28]), 3 + 2 + 2 + 781);
});

test('score names: an unknown one is refused with the list; an older bundle lacks combined\'s references', () => {
  assert.throws(() => checkName('elbo'), /unknown score 'elbo'; choose one of likelihood/);
  const old = { score_quantiles: { k: 1, n: 8, seed: 0, mean: -3, q: { '0.5': -3 } } };
  assert.throws(() => combinedReferences(old), /no reference scores for 'combined'.*re-export it/);
  assert.deepEqual(SCORES, ['likelihood', 'complexity', 'reconstruction', 'latent', 'prior', 'colour', 'combined']);
  const ref = { k: 1, n: 8, seed: 0, mean: -3, std: 1, q: { '0.5': -3 } };
  const newer = { score_quantiles: ref, score_references: { likelihood: ref, sharpness: ref, combined: { ...ref, parts: ['likelihood'] } } };
  assert.ok(combinedReferences(newer).combined);  // a score of a newer vaekit is ignored ...
  newer.score_references.combined.parts = ['likelihood', 'sharpness'];  // ... unless combined averages it
  assert.throws(() => combinedReferences(newer), /averages 'sharpness', which this vaekit does not compute.*upgrade vaekit/);
});

describe('the Python runtime\'s numbers', { skip }, () => {
  test('code lengths equal to the bit', () => {
    for (const { dims, data, bits } of expected.code_lengths) {
      assert.equal(codeLength(Float32Array.from(data), 0, dims), bits, `image (${dims})`);
    }
  });
  for (const [name, want] of Object.entries(expected?.bundles ?? {})) {
    test(`${name}: every score equals the Python runtime's`, async () => {
      const vae = await VAE.load(join(ROOT, name), { batchSize: 3 });
      const images = { data: Uint8Array.from(want.images), dims: want.dims };
      const got = await vae.normalities(images, { names: SCORES, seed: expected.seed });
      for (const score of SCORES) {
        got[score].forEach((s, i) => {
          const w = want.scores[score][i];
          assert.ok(Math.abs(s - w) <= 1e-4 * Math.max(1, Math.abs(w)), `${score} of image ${i}: ${s} vs ${w}`);
        });
      }
      const alone = await vae.normality(images, { seed: expected.seed });
      assert.deepEqual(alone, got.combined);
    });
  }
});
