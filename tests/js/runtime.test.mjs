// node --test for runtime/js on real bundles: VAEKIT_JS_BUNDLES names a folder written by
// tests/js/js_helpers.py (bundles of every kind and expected.json: what the Python runtime computes on them).
// tests/js/test_js_runtime.py writes that folder and runs this file; without it the bundle tests skip.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';

import { BundleError, VAE, parseNpy } from '../../runtime/js/vaekit.mjs';
import { seedOrFresh, standardNormal } from '../../runtime/js/prior.mjs';
import { usesExternalData } from '../../runtime/js/external_data.mjs';
import { parseManifest } from '../../runtime/js/bundle.mjs';

const ROOT = process.env.VAEKIT_JS_BUNDLES || null;
const expected = ROOT ? JSON.parse(await readFile(join(ROOT, 'expected.json'), 'utf8')) : null;
const skip = ROOT ? false : 'VAEKIT_JS_BUNDLES is not set (tests/js/test_js_runtime.py sets it)';
const ATOL = 1e-5; // float32 arithmetic of the same graphs on the same onnxruntime CPU kernels

function maxAbsDiff(got, want) {
  assert.equal(got.length, want.length, 'lengths differ');
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  return worst;
}

test('npy: float32 arrays parse, anything else is refused by name', () => {
  const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1), }";
  const padded = header.padEnd(118, ' ') + '\n';
  const bytes = new Uint8Array(10 + padded.length + 8);
  bytes.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, padded.length, 0]);
  bytes.set(new TextEncoder().encode(padded), 10);
  new DataView(bytes.buffer).setFloat32(10 + padded.length, 1.5, true);
  new DataView(bytes.buffer).setFloat32(14 + padded.length, -2, true);
  assert.deepEqual(parseNpy(bytes, 'x.npy'), { data: Float32Array.from([1.5, -2]), dims: [2, 1] });
  assert.throws(() => parseNpy(bytes.subarray(0, 20), 'short.npy'), /short\.npy/);
});

test('prior: the known answers of tests/runtime/test_runtime_prior.py and docs/bundle-format.md', () => {
  const known = {
    0: [-0.45275774598121643, 2.6506059169769287, -0.9886041283607483, 0.2524627149105072],
    3: [-0.6410515904426575, 0.8874809145927429, -1.146878957748413, 1.5312470197677612],
    '18446744073709551615': [0.4038981795310974, -1.5578114986419678, 0.37761974334716797, -0.003086482873186469],
  };
  for (const [seed, normals] of Object.entries(known)) {
    const got = standardNormal(BigInt(seed), 0, 4);
    normals.forEach((v, i) => assert.ok(Math.abs(got[i] - v) <= 1e-6 * Math.abs(v) + 1e-7, `seed ${seed}: ${got[i]} vs ${v}`));
  }
  assert.throws(() => seedOrFresh(-1), /seed must be an integer from 0 to 2\*\*64 - 1/);
  assert.throws(() => seedOrFresh(2 ** 64), /seed/);
});

test('prior: the generator is counter-based (any slice equals the same part of the whole)', () => {
  const whole = standardNormal(7n, 0, 40);
  assert.deepEqual(standardNormal(7n, 25, 15), whole.subarray(25));
  assert.notDeepEqual(standardNormal(8n, 0, 40), whole);
});

test('external data: a tensor stored outside the graph is found wherever it sits', () => {
  // ModelProto.graph (7) > GraphProto.initializer (5) > TensorProto.data_location (14) = EXTERNAL (1)
  assert.equal(usesExternalData(Uint8Array.from([0x3a, 0x04, 0x2a, 0x02, 0x70, 0x01])), true);
  // ModelProto.graph > GraphProto.node (1) > NodeProto.attribute (5) > AttributeProto.t (5) > TensorProto.external_data (13)
  assert.equal(usesExternalData(Uint8Array.from([0x3a, 0x08, 0x0a, 0x06, 0x2a, 0x04, 0x2a, 0x02, 0x6a, 0x00])), true);
  assert.equal(usesExternalData(Uint8Array.from([0x3a, 0x04, 0x2a, 0x02, 0x70, 0x00])), false); // DEFAULT location
  assert.throws(() => usesExternalData(Uint8Array.from([0x3a, 0x09, 0x2a])), /runs past its message/);
});

test('manifest JSON: numbers too large for a float are refused', () => {
  const bytes = (text) => new TextEncoder().encode(text);
  assert.deepEqual(parseManifest(bytes('{"a": [1, 2.5]}')), { a: [1, 2.5] });
  assert.throws(() => parseManifest(bytes('{"latent_dim": 1e400}')), /too large/);
});

describe('bundles of every kind', { skip }, () => {
  for (const [name, want] of Object.entries(expected?.bundles ?? {})) {
    describe(name, () => {
      let vae;
      test('loads on onnxruntime-node and passes its conformance vectors', async () => {
        vae = await VAE.load(join(ROOT, name));
        assert.equal(vae.backend, 'cpu');
        const verification = await vae.verify();
        assert.ok(verification.checked && verification.passed, verification.summary);
        assert.deepEqual(verification.outputs.map((o) => o.name).sort(), Object.keys(vae.manifest.parity.max_abs_diff).sort());
      });
      test('seeded latents and samples equal the Python runtime\'s', async () => {
        const { seed, n, temperature } = expected;
        const latents = vae.priorLatents(n, { seed, temperature });
        assert.ok(maxAbsDiff(latents.data, want.prior_latents.flat()) <= 1e-6);
        const images = await vae.sample(n, { seed, temperature });
        assert.deepEqual(images.dims, [n, ...vae.imageShape]);
        assert.ok(maxAbsDiff(images.data, want.sample) <= ATOL);
      });
      test('interpolate (slerp, lerp) and traverse equal the Python runtime\'s', async () => {
        const [a, b] = [0, 1].map((i) => vae.priorLatents(2, { seed: expected.seed }).data.subarray(i * vae.latentDim, (i + 1) * vae.latentDim));
        for (const method of ['slerp', 'lerp']) {
          assert.ok(maxAbsDiff((await vae.interpolate(a, b, { steps: 5, method })).data, want[method]) <= ATOL, method);
        }
        assert.ok(maxAbsDiff((await vae.traverse(a, 1, [-2, 0, 2])).data, want.traverse) <= ATOL);
      });
      test('scores (k = 1 and k > 1) equal the Python runtime\'s', async () => {
        const images = parseNpy(await readFile(join(ROOT, name, vae.manifest.conformance.encoder.inputs.image)), 'images');
        // batchSize 2 cuts the images into chunks and the samples into blocks: the same noise, so the same scores;
        // not for int8 graphs of the dynamic scheme, whose activations are quantized with a scale computed per batch
        // (in every runtime). The conv family's int8 scheme computes in float32, so its scores hold too.
        const perBatch = Object.values(vae.manifest.quantization ?? {}).some((q) => q.scheme === 'dynamic');
        const runtimes = perBatch ? [vae] : [vae, await VAE.load(join(ROOT, name), { batchSize: 2 })];
        for (const k of expected.score_ks) {
          const wanted = want.scores[String(k)];
          for (const runtime of runtimes) {
            const scores = await runtime.score(images, { k, seed: expected.seed });
            scores.forEach((s, i) => assert.ok(Math.abs(s - wanted[i]) <= 1e-4 * Math.max(1, Math.abs(wanted[i])), `k=${k}: ${s} vs ${wanted[i]}`));
          }
        }
      });
    });
  }
});

describe('a changed bundle is refused, naming the file', { skip }, () => {
  const name = 'float32-mlp-bernoulli';
  // Runs `check` on a throwaway copy of the bundle, removed afterwards whatever happens.
  async function withCopy(check) {
    const dir = await mkdtemp(join(tmpdir(), 'vaekit-js-'));
    try {
      await cp(join(ROOT, name), dir, { recursive: true });
      await check(dir);
    } finally {
      await rm(dir, { recursive: true });
    }
  }
  async function editManifest(dir, edit) {
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
    edit(manifest);
    await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
  }
  for (const file of ['decoder.onnx', 'conformance/decoder.latent.npy']) {
    test(`one byte of ${file} changed`, () => withCopy(async (dir) => {
      const bytes = await readFile(join(dir, file));
      bytes[bytes.length - 1] ^= 0xff;
      await writeFile(join(dir, file), bytes);
      await assert.rejects(VAE.load(dir), (e) => e instanceof BundleError && e.message.includes(file) && /sha256/.test(e.message));
    }));
  }
  test('a manifest of another format version', () => withCopy(async (dir) => {
    await editManifest(dir, (manifest) => { manifest.format_version = 3; });
    await assert.rejects(VAE.load(dir), /manifest\.json: bundle format version 3 is not supported by this runtime \(it reads versions 1, 2\)/);
  }));
  test('a version-2 manifest without its prior, or with a broken one', () => withCopy(async (dir) => {
    await editManifest(dir, (manifest) => { manifest.format_version = 2; });
    await assert.rejects(VAE.load(dir), /format version 2 needs the key 'prior'/);
    await editManifest(dir, (manifest) => { manifest.prior = { kind: 'mixture', weights: [0.5, 0.6], means: [[0], [1]], logvars: [[0], [0]] }; });
    await assert.rejects(VAE.load(dir), /prior\.weights must be positive and sum to 1/);
    await editManifest(dir, (manifest) => { manifest.prior.weights = [0.5, 0.5]; });
    await assert.rejects(VAE.load(dir), /prior\.means must be 2 rows \(one per weight\) of latent_dim = 3/);
  }));
  test('a colour reference whose rows or bandwidths do not fit the image\'s channels', () => withCopy(async (dir) => {
    await editManifest(dir, (manifest) => { manifest.colour_reference.n += 1; });
    await assert.rejects(VAE.load(dir), /colour_reference\.means must be n = \d+ rows of 1 numbers/);
    await editManifest(dir, (manifest) => { manifest.colour_reference.n -= 1; manifest.colour_reference.bandwidth = [0.1, 0.1]; });
    await assert.rejects(VAE.load(dir), /colour_reference\.bandwidth must be a list of 1 numbers/);
  }));
  test('a reference output changed on purpose (checksum re-pinned): loads, but verify() fails and says where', () => withCopy(async (dir) => {
    const file = 'conformance/decoder.image.npy';
    const bytes = await readFile(join(dir, file));
    new DataView(bytes.buffer, bytes.byteOffset).setFloat32(bytes.length - 4, 0.5 + bytes[bytes.length - 1], true);
    await writeFile(join(dir, file), bytes);
    await editManifest(dir, (manifest) => { manifest.files[file].sha256 = createHash('sha256').update(bytes).digest('hex'); });
    const verification = await (await VAE.load(dir)).verify();
    assert.equal(verification.passed, false);
    assert.match(verification.summary, /^FAILED on cpu: decoder\.image differs by/);
  }));
  test('a manifest whose latent_dim differs from the graphs\'', () => withCopy(async (dir) => {
    await editManifest(dir, (manifest) => {
      manifest.latent_dim += 1;
      delete manifest.latent_pca;
    });
    await assert.rejects(VAE.load(dir), /decoder\.onnx: input 'latent' has per-item shape \(3\), but the manifest says \(4\)/);
  }));
  test('file names that would resolve off the bundle folder (issue 36)', () => withCopy(async (dir) => {
    for (const bad of ['https:evil.example/c.npy', '%2e%2e']) {
      await editManifest(dir, (manifest) => { manifest.files[bad] = { sha256: '0'.repeat(64), bytes: 1 }; });
      await assert.rejects(VAE.load(dir), (e) => e instanceof BundleError && e.message.includes(`key '${bad}'`) && /does not match/.test(e.message));
      await editManifest(dir, (manifest) => { delete manifest.files[bad]; });
    }
  }));
  test('malformed manifest JSON is one BundleError', () => withCopy(async (dir) => {
    for (const text of ['{"latent_dim": 1e400}', '{not json', '['.repeat(200000)]) {
      await writeFile(join(dir, 'manifest.json'), text);
      await assert.rejects(VAE.load(dir), (e) => e instanceof BundleError && !e.message.includes('\n'));
    }
  }));
  test('a folder given as a file: URL with percent-encoded characters', async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'vaekit-js-')), 'my bundle%20');
    try {
      await cp(join(ROOT, name), dir, { recursive: true });
      const url = pathToFileURL(dir).href;
      assert.match(url, /my%20bundle%2520$/);
      assert.equal((await VAE.load(url)).latentDim, 3);
    } finally {
      await rm(join(dir, '..'), { recursive: true });
    }
  });
  test('a missing file', async () => {
    await assert.rejects(VAE.load(join(ROOT, 'no-such-bundle')), /no-such-bundle.*manifest\.json: missing/);
  });
});
