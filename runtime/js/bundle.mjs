// The vaekit bundle format, versions 1 and 2, as docs/bundle-format.md's "Reading a bundle" states it (the twin of
// runtime/bundle.py and runtime/conformance.py): fetch a bundle's files from a URL or a folder, check the
// manifest and every file's sha256, and refuse anything else with a BundleError that names the file.

export const FORMAT_NAME = 'vaekit-bundle';
const MIXTURE_FORMAT_VERSION = 2; // a learned mixture prior, in the required key `prior`
export const FORMAT_VERSIONS = [1, MIXTURE_FORMAT_VERSION];
const WEIGHTS_SUM_TOLERANCE = 1e-6;
export const MANIFEST_FILE = 'manifest.json';
export const ENCODER_FILE = 'encoder.onnx';
export const DECODER_FILE = 'decoder.onnx';
export const DECODER_OUTPUTS = { bernoulli: ['image', 'logits'], gaussian: ['image', 'logvar'] };
export const GRAPH_INPUTS = { encoder: 'image', decoder: 'latent' };
const ORTHONORMAL_TOLERANCE = 1e-4;
const REQUIRED_KEYS = {
  format: 'string', format_version: 'integer', image_shape: 'array', latent_dim: 'integer', likelihood: 'string',
  model: 'object', tensors: 'object', files: 'object', opset: 'integer', producer: 'object', dtype: 'string',
  provenance: 'object', parity: 'object', score_quantiles: 'object',
};

/** A bundle that is missing, corrupt, or of a format this runtime does not read. */
export class BundleError extends Error {
  constructor(message) { super(message); this.name = 'BundleError'; }
}

const isNode = typeof process !== 'undefined' && Boolean(process.versions?.node);

function kindOf(value) {
  if (Array.isArray(value)) return 'array';
  if (value === null) return 'null';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/** JSON text with object keys sorted, so that equal values compare equal whatever their key order. */
function canonical(value) {
  if (kindOf(value) !== 'object') return JSON.stringify(value) ?? 'undefined';
  return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
}
const sameJson = (a, b) => canonical(a) === canonical(b);

/** The tensor names a bundle with this likelihood must use. */
export function expectedTensors(likelihood) {
  return {
    encoder: { inputs: ['image'], outputs: ['mean', 'logvar'] },
    decoder: { inputs: ['latent'], outputs: DECODER_OUTPUTS[likelihood] },
  };
}

/** Throw a BundleError naming the first thing in `manifest` that breaks the format. */
export function validateManifest(manifest, where = MANIFEST_FILE) {
  const fail = (why) => { throw new BundleError(`${where}: ${why}`); };
  if (kindOf(manifest) !== 'object') fail('expected a JSON object; the bundle is corrupt, re-export it');
  if (manifest.format !== FORMAT_NAME) fail(`not a vaekit bundle (format is ${JSON.stringify(manifest.format)}, expected "${FORMAT_NAME}")`);
  if (!FORMAT_VERSIONS.includes(manifest.format_version)) {
    fail(`bundle format version ${JSON.stringify(manifest.format_version)} is not supported by this runtime (it reads ` +
         `versions ${FORMAT_VERSIONS.join(', ')}); re-export the model with a matching vaekit, or upgrade vaekit`);
  }
  for (const [key, kind] of Object.entries(REQUIRED_KEYS)) {
    if (!(key in manifest)) fail(`required key '${key}' is missing; re-export the bundle`);
    if (kindOf(manifest[key]) !== kind) fail(`key '${key}' has the wrong type (${kindOf(manifest[key])}, expected ${kind})`);
  }
  const shape = manifest.image_shape;
  if (shape.length !== 3 || !shape.every((s) => Number.isInteger(s) && s > 0) || ![1, 3].includes(shape[0])) {
    fail(`image_shape must be [C, H, W] with C in (1, 3), got ${JSON.stringify(shape)}`);
  }
  if (manifest.latent_dim < 1) fail(`latent_dim must be positive, got ${manifest.latent_dim}`);
  if (!(manifest.likelihood in DECODER_OUTPUTS)) fail(`unknown likelihood "${manifest.likelihood}"; expected bernoulli or gaussian`);
  const tensors = expectedTensors(manifest.likelihood);
  if (!sameJson(manifest.tensors, tensors)) fail(`tensor names ${JSON.stringify(manifest.tensors)} differ from the format's ${JSON.stringify(tensors)}`);
  for (const name of [ENCODER_FILE, DECODER_FILE]) {
    if (!(name in manifest.files)) fail(`files['${name}'] is missing; re-export the bundle`);
  }
  for (const [name, entry] of Object.entries(manifest.files)) checkFileEntry(name, entry, fail);
  if (manifest.format_version === MIXTURE_FORMAT_VERSION) {
    if (!('prior' in manifest)) fail(`format version ${MIXTURE_FORMAT_VERSION} needs the key 'prior'; re-export the bundle`);
    checkPrior(manifest.prior, manifest.latent_dim, (why) => fail(`prior${why}`));
  }
  if ('latent_pca' in manifest) checkLatentPca(manifest.latent_pca, manifest.latent_dim, (why) => fail(`latent_pca${why}`));
  if ('conformance' in manifest) checkConformance(manifest.conformance, tensors, manifest.files, (why) => fail(`conformance${why}`));
}

function checkFileEntry(name, entry, fail) {
  const parts = name.split('/');
  if (!name || name.startsWith('/') || name.includes('\\') || parts.some((p) => ['', '.', '..'].includes(p))) {
    fail(`files['${name}'] is not a relative path inside the bundle; the manifest is corrupt`);
  }
  const digest = kindOf(entry) === 'object' ? entry.sha256 : undefined;
  if (typeof digest !== 'string' || !/^[0-9a-f]{64}$/.test(digest)) fail(`files['${name}'].sha256 is missing or malformed`);
}

function finiteMatrix(value, rows, cols) {
  const list = rows === null ? [value] : value;
  const ok = Array.isArray(value) && list.length === (rows ?? 1) && list.every(
    (row) => Array.isArray(row) && row.length === cols && row.every((x) => typeof x === 'number' && Number.isFinite(x)));
  return ok ? list : null;
}

function checkPrior(prior, d, fail) {
  if (kindOf(prior) !== 'object' || prior.kind !== 'mixture') {
    fail(" must be an object with kind 'mixture' (the only prior of format version 2); re-export the bundle");
  }
  const k = Array.isArray(prior.weights) ? prior.weights.length : 0;
  if (k < 1) fail('.weights must be a non-empty list of component weights; re-export the bundle');
  if (!finiteMatrix(prior.weights, null, k)) fail(`.weights must be a list of ${k} finite numbers; re-export the bundle`);
  const sum = prior.weights.reduce((s, w) => s + w, 0);
  if (prior.weights.some((w) => w <= 0) || Math.abs(sum - 1) > WEIGHTS_SUM_TOLERANCE) {
    fail(`.weights must be positive and sum to 1, got a sum of ${sum.toPrecision(9)}; re-export the bundle`);
  }
  for (const key of ['means', 'logvars']) {
    if (!finiteMatrix(prior[key], k, d)) fail(`.${key} must be ${k} rows (one per weight) of latent_dim = ${d} finite numbers; re-export the bundle`);
  }
}

function checkLatentPca(pca, d, fail) {
  if (kindOf(pca) !== 'object') fail(` has the wrong type (${kindOf(pca)}); expected an object`);
  const missing = ['n', 'mean', 'axes', 'variance'].filter((k) => !(k in pca));
  if (missing.length) fail(`: missing ${missing.join(', ')}; re-export the bundle (or delete latent_pca)`);
  if (!Number.isInteger(pca.n) || pca.n < 1) fail(`.n must be a positive integer (the number of images), got ${JSON.stringify(pca.n)}`);
  if (!finiteMatrix(pca.mean, null, d)) fail(`.mean must be a list of latent_dim = ${d} finite numbers; re-export the bundle`);
  const axes = finiteMatrix(pca.axes, d, d);
  if (!axes) fail(`.axes must be ${d} rows (latent_dim) of ${d} finite numbers; re-export the bundle`);
  if (!finiteMatrix(pca.variance, null, d)) fail(`.variance must be a list of ${d} finite numbers, one per axis; re-export the bundle`);
  const v = pca.variance;
  if (v.some((x, i) => x < 0 || (i > 0 && x > v[i - 1]))) fail(`.variance must be non-negative and in decreasing order, got ${JSON.stringify(v)}`);
  let error = 0;
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      let dot = 0;
      for (let k = 0; k < d; k++) dot += axes[i][k] * axes[j][k];
      error = Math.max(error, Math.abs(dot - (i === j ? 1 : 0)));
    }
  }
  if (error > ORTHONORMAL_TOLERANCE) {
    fail(`.axes must be orthonormal rows (axes @ axes.T = identity), but they are off by ${error.toPrecision(3)} (> ${ORTHONORMAL_TOLERANCE}); re-export the bundle`);
  }
}

function checkConformance(entry, tensors, files, fail) {
  if (kindOf(entry) !== 'object') fail(` has the wrong type (${kindOf(entry)}); expected an object`);
  for (const [graph, names] of Object.entries(tensors)) {
    const spec = entry[graph];
    if (kindOf(spec) !== 'object' || kindOf(spec.inputs) !== 'object' || kindOf(spec.outputs) !== 'object') {
      fail(`.${graph} must be an object with 'inputs' and 'outputs'; re-export the bundle`);
    }
    const sorted = (list) => JSON.stringify([...list].sort());
    if (sorted(Object.keys(spec.inputs)) !== sorted(names.inputs) || sorted(Object.keys(spec.outputs)) !== sorted(names.outputs)) {
      fail(`.${graph} must cover inputs ${JSON.stringify(names.inputs)} and outputs ${JSON.stringify(names.outputs)}`);
    }
    const named = Object.values(spec.inputs);
    for (const [name, output] of Object.entries(spec.outputs)) {
      const limit = kindOf(output) === 'object' ? output.limit : undefined;
      if (typeof limit !== 'number' || !Number.isFinite(limit) || limit <= 0) {
        fail(`.${graph}.outputs.${name}.limit must be a positive number, got ${JSON.stringify(limit)}`);
      }
      named.push(output.file);
    }
    for (const file of named) {
      if (!(file in files)) fail(`.${graph} names ${JSON.stringify(file)}, which is not among the manifest's files (so it has no checksum); re-export the bundle`);
    }
  }
}

/** Lowercase hex sha256 of `bytes`, with node:crypto in Node and WebCrypto in the browser. */
export async function sha256Hex(bytes, name) {
  if (isNode) {
    const { createHash } = await import('node:crypto');
    return createHash('sha256').update(bytes).digest('hex');
  }
  if (!globalThis.crypto?.subtle) {
    throw new BundleError(`${name}: cannot check its sha256: WebCrypto is only available on secure pages; serve the page over https or from localhost`);
  }
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** A function name -> Uint8Array reading the bundle's files from `source`: a URL (http(s):, file:, or
 * relative to the page in the browser) or, in Node, a folder path. Missing files are BundleErrors. */
export function fileReader(source) {
  const text = String(source);
  if (isNode && !/^https?:/.test(text)) {
    const folder = text.startsWith('file:') ? new URL(text).pathname : text;
    return async (name) => {
      const { readFile } = await import('node:fs/promises');
      const { join } = await import('node:path');
      const where = join(folder, name);
      try {
        return new Uint8Array(await readFile(where));
      } catch (e) {
        throw new BundleError(`${where}: missing or unreadable (${e.code ?? e.message}); pass the folder that vaekit-export wrote`);
      }
    };
  }
  const base = new URL(text.endsWith('/') ? text : `${text}/`, globalThis.location?.href);
  return async (name) => {
    const url = new URL(name, base);
    let response;
    try {
      response = await fetch(url);
    } catch (e) {
      throw new BundleError(`${url}: could not be fetched (${e.message})`);
    }
    if (!response.ok) throw new BundleError(`${url}: missing (HTTP ${response.status}); is ${base} a vaekit bundle?`);
    return new Uint8Array(await response.arrayBuffer());
  };
}

/** Read and check a bundle: its manifest and every file it lists, each against its sha256.
 * Returns {manifest, files: Map name -> Uint8Array, where: the bundle's location in words}. */
export async function readBundle(source) {
  const read = fileReader(source);
  const where = String(source).replace(/\/$/, '');
  let manifest;
  try {
    manifest = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(await read(MANIFEST_FILE)));
  } catch (e) {
    if (e instanceof BundleError) throw e;
    throw new BundleError(`${where}/${MANIFEST_FILE}: not valid JSON (${e.message}); the bundle is corrupt, re-export it`);
  }
  validateManifest(manifest, `${where}/${MANIFEST_FILE}`);
  const files = new Map();
  await Promise.all(Object.entries(manifest.files).map(async ([name, entry]) => {
    const bytes = await read(name);
    if ((await sha256Hex(bytes, `${where}/${name}`)) !== entry.sha256) {
      throw new BundleError(`${where}/${name}: sha256 does not match the manifest, so the file was changed or corrupted; re-export the bundle`);
    }
    files.set(name, bytes);
  }));
  return { manifest, files, where };
}
