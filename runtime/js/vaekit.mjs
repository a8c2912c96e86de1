// vaekit's JavaScript runtime: a bundle loaded with onnxruntime-node (Node.js) or onnxruntime-web (the
// browser), the twin of the Python runtime (vaekit.runtime.VAE). An ES module, no framework, no Python.
//
//   import { VAE } from './vaekit.mjs';
//   const vae = await VAE.load('bundles/digits');           // a folder in Node, a URL in the browser
//   const images = await vae.sample(16, { seed: 3 });       // {data: Float32Array, dims: [16, C, H, W]}
//   console.log(vae.backend, (await vae.verify()).summary);
//
// Batches are {data: Float32Array, dims} (row-major, like an ort.Tensor); images are NCHW in [0, 1].

import { BundleError, DECODER_FILE, DECODER_OUTPUTS, ENCODER_FILE, GRAPH_INPUTS, readBundle } from './bundle.mjs';
import { PARAMS, bestLogLikelihood, klToPrior, logLikelihood, logMeanExp, LOG_2PI } from './likelihood.mjs';
import { codeLength } from './complexity.mjs';
import {
  DEFAULT_SCORE, SCORES, checkName, colourLogDensity, combined, combinedParts, combinedReferences, latentLogDensity,
} from './scores.mjs';
import { METHODS, path } from './latents.mjs';
import { parseNpy } from './npy.mjs';
import { mixtureLogProb, mixtureOf, priorLatents, seedOrFresh, standardNormal } from './prior.mjs';

export { BundleError } from './bundle.mjs';
export { METHODS } from './latents.mjs';
export { standardNormal, seedOrFresh } from './prior.mjs';
export { parseNpy } from './npy.mjs';
export { DEFAULT_SCORE, SCORES } from './scores.mjs';
export { codeLength } from './complexity.mjs';

const isNode = typeof process !== 'undefined' && Boolean(process.versions?.node);
export const BACKENDS = isNode ? ['cpu'] : ['webgpu', 'wasm'];
const product = (dims) => dims.reduce((a, b) => a * b, 1);

function positiveInteger(name, value, minimum = 1) {
  if (!Number.isInteger(value) || value < minimum) throw new RangeError(`${name} must be an integer >= ${minimum}, got ${value}`);
  return value;
}

/** The backend to run on: `requested` if given (it must be one of BACKENDS), else the best one here:
 * cpu in Node; WebGPU in a browser that has an adapter, otherwise wasm. */
async function chooseBackend(requested) {
  if (requested && requested !== 'auto') {
    if (!BACKENDS.includes(requested)) throw new RangeError(`backend must be auto or one of ${BACKENDS.join(', ')} here, got ${requested}`);
    return requested;
  }
  if (isNode) return 'cpu';
  const adapter = globalThis.navigator?.gpu ? await navigator.gpu.requestAdapter().catch(() => null) : null;
  return adapter ? 'webgpu' : 'wasm';
}

/** A vaekit bundle loaded for inference; build one with `VAE.load`. */
export class VAE {
  constructor({ manifest, files, where, ort, backend, encoder, decoder, batchSize }) {
    Object.assign(this, { manifest, where, ort, backend, batchSize });
    this.latentDim = manifest.latent_dim;
    this.imageShape = manifest.image_shape;
    this.likelihood = manifest.likelihood;
    this.prior = mixtureOf(manifest); // a format-version-2 bundle's learned mixture prior; null: the standard normal
    this._files = files; // the checked conformance vectors (the graphs' bytes are dropped once opened)
    this._encoder = encoder;
    this._decoder = decoder;
  }

  /** Open the bundle at `source` (a folder path in Node, a URL in the browser): check its manifest and every
   * file's sha256 (a BundleError names the file otherwise), then open both graphs on `backend` ("auto",
   * "cpu" in Node, "webgpu" or "wasm" in the browser). A backend that fails is an error, never a fallback.
   * `ort` is the onnxruntime module to use; by default onnxruntime-node in Node and the import map's
   * "onnxruntime-web" in the browser; `sessionOptions` go to onnxruntime (e.g. {intraOpNumThreads: 1}). */
  static async load(source, { backend = 'auto', ort = null, batchSize = 256, sessionOptions = {} } = {}) {
    positiveInteger('batchSize', batchSize);
    const { manifest, files, where } = await readBundle(source);
    const runtime = ort ?? (await import(isNode ? 'onnxruntime-node' : 'onnxruntime-web'));
    const used = await chooseBackend(backend);
    const open = async (name, inputs, outputs, itemShape) => {
      let session;
      try {
        session = await runtime.InferenceSession.create(files.get(name), { ...sessionOptions, executionProviders: [used] });
      } catch (e) {
        throw new Error(`${where}/${name}: onnxruntime could not open it on ${used} (${e.message})` +
                        (used === 'webgpu' ? "; load with {backend: 'wasm'} to run on the CPU" : ''));
      }
      const same = (a, b) => JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());
      if (!same(session.inputNames, inputs) || !same(session.outputNames, outputs)) {
        throw new BundleError(`${where}/${name}: the graph's tensors (inputs ${session.inputNames}, outputs ${session.outputNames}) ` +
                              `differ from the manifest's; the bundle is inconsistent, re-export it`);
      }
      const declared = session.inputMetadata?.[0]?.shape?.slice(1); // absent in runtimes without metadata
      if (declared && (declared.length !== itemShape.length || declared.some((dim, i) => typeof dim === 'number' && dim !== itemShape[i]))) {
        throw new BundleError(`${where}/${name}: input '${inputs[0]}' has per-item shape (${declared}), but the manifest says ` +
                              `(${itemShape}); the bundle is inconsistent, re-export it`);
      }
      files.delete(name);
      return session;
    };
    const encoder = await open(ENCODER_FILE, ['image'], ['mean', 'logvar'], manifest.image_shape);
    const decoder = await open(DECODER_FILE, ['latent'], DECODER_OUTPUTS[manifest.likelihood], [manifest.latent_dim]);
    return new VAE({ manifest, files, where, ort: runtime, backend: used, encoder, decoder, batchSize });
  }

  // --- the public API ---------------------------------------------------------------------------

  /** Images {data, dims: [N, C, H, W]} in [0, 1] for latents {data, dims: [N, D]} (or one Float32Array of D). */
  async decode(latents) {
    return (await this._batched(this._decoder, 'latent', ['image'], this._latents(latents)))[0];
  }

  /** The posterior of each image (NCHW {data, dims}; Uint8Array 0-255 or floats in [0, 1]): {mean, logvar}. */
  async encode(images) {
    const [mean, logvar] = await this._batched(this._encoder, 'image', ['mean', 'logvar'], this._images(images));
    return { mean, logvar };
  }

  /** Each image decoded from its posterior mean. */
  async reconstruct(images) {
    return this.decode((await this.encode(images)).mean);
  }

  /** log p(z) of the latent z[offset .. offset + D - 1] under the bundle's prior (its mixture, or the standard
   * normal), float64: the Python runtime's `VAE.log_prior`. */
  logPrior(z, offset) {
    if (this.prior) return mixtureLogProb(this.prior, z, offset);
    let normal = 0;
    for (let t = 0; t < this.latentDim; t++) normal += z[offset + t] ** 2;
    return -0.5 * (LOG_2PI * this.latentDim + normal);
  }

  /** The latents `sample` decodes, {data, dims: [n, D]}: temperature times N(0, I) drawn with vaekit's portable
   * generator, equal to the Python runtime's `VAE.prior_latents(n, seed, temperature)`; no seed draws a fresh one. */
  priorLatents(n, { seed = null, temperature = 1.0 } = {}) {
    positiveInteger('n', n);
    if (!Number.isFinite(temperature) || temperature < 0) throw new RangeError(`temperature must be a finite number >= 0, got ${temperature}`);
    return priorLatents(n, this.latentDim, seed, temperature, this.prior);
  }

  /** `n` images decoded from `priorLatents(n, {seed, temperature})`: a seed gives the same images in every runtime. */
  async sample(n, options = {}) {
    return this.decode(this.priorLatents(n, options));
  }

  /** `steps` images from latent `a` to latent `b` (Float32Arrays of D), both ends included; method slerp or lerp. */
  async interpolate(a, b, { steps = 10, method = 'slerp' } = {}) {
    positiveInteger('steps', steps, 2);
    return this.decode(path(this._latent(a, 'a'), this._latent(b, 'b'), steps, method));
  }

  /** Images for `latent` with coordinate `dim` set to each of `values` in turn. */
  async traverse(latent, dim, values) {
    const z = this._latent(latent, 'latent');
    positiveInteger('dim', dim, 0);
    if (dim >= this.latentDim) throw new RangeError(`dim must be below latentDim=${this.latentDim}, got ${dim}`);
    const d = this.latentDim;
    const data = new Float32Array(values.length * d);
    values.forEach((v, i) => { data.set(z, i * d); data[i * d + dim] = v; });
    return this.decode({ data, dims: [values.length, d] });
  }

  /** Each image's log-likelihood estimate in nats (Float64Array): the ELBO for k = 1, the importance-weighted
   * bound for k > 1; the noise is normals 0 .. N * k * D - 1 of `seed`, as in the Python runtime, so scores agree. */
  async score(images, { k = 1, seed = 0 } = {}) {
    positiveInteger('k', k);
    const x = this._images(images);
    const s = seedOrFresh(seed);
    const n = x.dims[0], d = this.latentDim, size = product(this.imageShape);
    const perChunk = Math.max(1, Math.floor(this.batchSize / k));
    const scores = new Float64Array(n);
    for (let first = 0; first < n; first += perChunk) {
      const m = Math.min(perChunk, n - first);
      const chunk = { data: x.data.subarray(first * size, (first + m) * size), dims: [m, ...this.imageShape] };
      const [mean, logvar] = await this._run(this._encoder, 'image', ['mean', 'logvar'], chunk);
      const block = Math.max(1, Math.floor(this.batchSize / m));
      const logW = Array.from({ length: m }, () => new Float64Array(k));
      for (let j = 0; j < k; j += block) {
        const kb = Math.min(block, k - j);
        // normals (first*k + j)*d onwards: contiguous, as a block holds either all k samples of each image or one image's
        const eps = standardNormal(s, (first * k + j) * d, m * kb * d);
        const z = new Float32Array(m * kb * d);
        for (let i = 0; i < m; i++) {
          for (let t = 0; t < d; t++) {
            const std = Math.fround(Math.exp(0.5 * logvar.data[i * d + t]));
            for (let jj = 0; jj < kb; jj++) {
              const e = (i * kb + jj) * d + t;
              z[e] = Math.fround(mean.data[i * d + t] + Math.fround(std * eps[e]));
            }
          }
        }
        const names = PARAMS[this.likelihood];
        const outputs = await this._run(this._decoder, 'latent', names, { data: z, dims: [m * kb, d] });
        const params = Object.fromEntries(names.map((name, i) => [name, outputs[i].data]));
        for (let i = 0; i < m; i++) {
          for (let jj = 0; jj < kb; jj++) {
            const row = i * kb + jj;
            const logPx = logLikelihood(chunk.data, i * size, params, row, size, this.likelihood);
            if (k === 1 && !this.prior) {
              logW[i][j + jj] = logPx - klToPrior(mean.data, logvar.data, i * d, d);
            } else {
              let posterior = 0;
              for (let t = 0; t < d; t++) posterior += logvar.data[i * d + t] + eps[row * d + t] ** 2;
              logW[i][j + jj] = logPx + this.logPrior(z, row * d) + 0.5 * (LOG_2PI * d + posterior);
            }
          }
        }
      }
      logW.forEach((w, i) => { scores[first + i] = k === 1 ? w[0] : logMeanExp(w); });
    }
    return scores;
  }

  /** Each image's `score` (one of SCORES, docs/anomaly-scores.md; higher is more typical), Float64Array:
   * the Python runtime's `VAE.normality`. `k` and `seed` are the likelihood's. */
  async normality(images, { score = DEFAULT_SCORE, k = 1, seed = 0 } = {}) {
    return (await this.normalities(images, { names: [score], k, seed }))[score];
  }

  /** The scores `names` of each image, {name: Float64Array}: the Python runtime's `VAE.normalities`. */
  async normalities(images, { names = SCORES, k = 1, seed = 0 } = {}) {
    names.forEach(checkName);
    const x = this._images(images);
    const n = x.dims[0], size = product(this.imageShape), d = this.latentDim;
    const refs = names.includes('combined') ? combinedReferences(this.manifest) : null;
    const needed = new Set(names.flatMap((name) => (name === 'combined' ? combinedParts(refs) : [name])));
    if (needed.has('latent') && !this.manifest.latent_pca) {
      throw new RangeError("the bundle records no latent_pca (exported before vaekit recorded it), which the 'latent' score needs; re-export it");
    }
    if (needed.has('colour') && !this.manifest.colour_reference) {
      throw new RangeError("the bundle records no colour_reference (exported before vaekit recorded it, or from a run trained before), which the 'colour' score needs; train and export again");
    }
    const found = {};
    if (needed.has('colour')) {
      const [channels] = this.imageShape, pixels = size / channels;
      found.colour = Float64Array.from({ length: n }, (_, i) => colourLogDensity(x.data, i * size, channels, pixels, this.manifest.colour_reference));
    }
    if (needed.has('likelihood') || needed.has('complexity')) found.likelihood = await this.score(x, { k, seed });
    if (needed.has('complexity')) {
      found.complexity = found.likelihood.map((l, i) => l / Math.LN2 + codeLength(x.data, i * size, this.imageShape));
    }
    if (needed.has('reconstruction') || needed.has('latent') || needed.has('prior')) {
      const { mean } = await this.encode(x);
      if (needed.has('latent')) found.latent = Float64Array.from({ length: n }, (_, i) => latentLogDensity(mean.data, i * d, this.manifest.latent_pca));
      if (needed.has('prior')) found.prior = Float64Array.from({ length: n }, (_, i) => this.logPrior(mean.data, i * d));
      if (needed.has('reconstruction')) {
        const wanted = PARAMS[this.likelihood];
        const outputs = await this._batched(this._decoder, 'latent', wanted, mean);
        const params = Object.fromEntries(wanted.map((name, i) => [name, outputs[i].data]));
        found.reconstruction = Float64Array.from({ length: n }, (_, i) => logLikelihood(x.data, i * size, params, i, size, this.likelihood) -
                                                                        bestLogLikelihood(x.data, i * size, params, i, size, this.likelihood));
      }
    }
    if (refs) found.combined = combined(found, refs);
    return Object.fromEntries(names.map((name) => [name, found[name]]));
  }

  /** Run the bundle's conformance vectors through both graphs here and compare each output with its limit:
   * {checked, passed, backend, outputs: [{name, maxAbsDiff, limit, passed}], summary}. */
  async verify() {
    const entry = this.manifest.conformance;
    if (!entry) {
      return { checked: false, passed: false, backend: this.backend, outputs: [],
               summary: 'cannot be checked: the bundle has no conformance vectors; re-export it to make it checkable' };
    }
    const outputs = [];
    for (const [graph, session] of [['encoder', this._encoder], ['decoder', this._decoder]]) {
      const spec = entry[graph], tensor = GRAPH_INPUTS[graph];
      const inputs = this._vector(spec.inputs[tensor]);
      const names = Object.keys(spec.outputs);
      const computed = await this._batched(session, tensor, names, inputs);
      names.forEach((name, i) => {
        const reference = this._vector(spec.outputs[name].file);
        const got = computed[i];
        if (JSON.stringify(got.dims) !== JSON.stringify(reference.dims)) {
          throw new BundleError(`${this.where}/${spec.outputs[name].file}: shaped (${reference.dims}), but the graph gives (${got.dims}); the bundle is inconsistent, re-export it`);
        }
        let diff = 0;
        for (let j = 0; j < got.data.length; j++) {
          const delta = Math.abs(got.data[j] - reference.data[j]);
          diff = delta > diff || Number.isNaN(delta) ? delta : diff;
        }
        const limit = spec.outputs[name].limit;
        outputs.push({ name: `${graph}.${name}`, maxAbsDiff: diff, limit, passed: diff <= limit });
      });
    }
    const failed = outputs.filter((o) => !o.passed);
    const worst = outputs.reduce((a, o) => (o.maxAbsDiff / o.limit > a.maxAbsDiff / a.limit ? o : a));
    const summary = failed.length
      ? `FAILED on ${this.backend}: ${failed.map((o) => `${o.name} differs by ${o.maxAbsDiff.toPrecision(3)} > ${o.limit.toPrecision(3)} allowed`).join(', ')}`
      : `checked on ${this.backend}: worst output ${worst.name}, ${worst.maxAbsDiff.toExponential(2)} of ${worst.limit.toExponential(2)} allowed`;
    return { checked: true, passed: failed.length === 0, backend: this.backend, outputs, summary };
  }

  // --- helpers ----------------------------------------------------------------------------------

  _vector(name) {
    try {
      return parseNpy(this._files.get(name), `${this.where}/${name}`);
    } catch (e) {
      throw new BundleError(`${e.message}; the bundle is corrupt, re-export it`);
    }
  }

  /** One run of `session` on a batch {data, dims}: the outputs `names` as {data, dims}. */
  async _run(session, input, names, batch) {
    const results = await session.run({ [input]: new this.ort.Tensor('float32', batch.data, batch.dims) }, names);
    return names.map((name) => ({ data: results[name].data, dims: [...results[name].dims] }));
  }

  /** `_run` in chunks of batchSize, the outputs gathered into one batch each. */
  async _batched(session, input, names, batch) {
    const n = batch.dims[0], item = product(batch.dims.slice(1));
    if (n <= this.batchSize) return this._run(session, input, names, batch);
    let gathered = null;
    for (let start = 0; start < n; start += this.batchSize) {
      const m = Math.min(this.batchSize, n - start);
      const part = { data: batch.data.subarray(start * item, (start + m) * item), dims: [m, ...batch.dims.slice(1)] };
      const outputs = await this._run(session, input, names, part);
      gathered ??= outputs.map((o) => ({ data: new Float32Array(n * product(o.dims.slice(1))), dims: [n, ...o.dims.slice(1)] }));
      outputs.forEach((o, i) => gathered[i].data.set(o.data, start * product(o.dims.slice(1))));
    }
    return gathered;
  }

  _latents(latents) {
    const batch = latents instanceof Float32Array || Array.isArray(latents)
      ? { data: Float32Array.from(latents), dims: [1, latents.length] } : latents;
    const d = this.latentDim;
    if (batch.dims.length !== 2 || batch.dims[1] !== d || batch.data.length !== batch.dims[0] * d || batch.dims[0] < 1) {
      throw new RangeError(`latents must be shaped (N, ${d}) for this bundle, got (${batch.dims})`);
    }
    if (!batch.data.every(Number.isFinite)) throw new RangeError('latents contain NaN or infinite values; pass finite numbers');
    return { data: Float32Array.from(batch.data), dims: batch.dims };
  }

  _latent(latent, name) {
    const batch = this._latents(latent);
    if (batch.dims[0] !== 1) throw new RangeError(`${name} must be one latent of size ${this.latentDim}`);
    return batch.data;
  }

  _images(images) {
    const [c, h, w] = this.imageShape;
    const { data, dims } = images;
    if (dims.length !== 4 || dims[0] < 1 || dims[1] !== c || dims[2] !== h || dims[3] !== w || data.length !== product(dims)) {
      throw new RangeError(`images must be shaped (N, ${c}, ${h}, ${w}) for this bundle, got (${dims})`);
    }
    if (data instanceof Uint8Array) return { data: Float32Array.from(data, (v) => v / 255), dims };
    if (!data.every((v) => v >= 0 && v <= 1)) throw new RangeError('float images must lie in [0, 1]; divide 0-255 values by 255 (or pass a Uint8Array)');
    return { data: Float32Array.from(data), dims };
  }
}
