// The vaekit bundle format, versions 1 and 2, as docs/bundle-format.md's "Reading a bundle" states it (the twin of
// runtime/bundle.py and runtime/manifest.py): fetch a bundle's files from a URL or a folder, check the manifest
// against runtime/manifest.schema.json and every file's sha256, and refuse anything else with a BundleError that
// names the file.

import { usesExternalData } from './external_data.mjs';
import { MANIFEST_SCHEMA, firstError, kindOf } from './schema.mjs';

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

/** A bundle that is missing, corrupt, or of a format this runtime does not read. */
export class BundleError extends Error {
  constructor(message) { super(message); this.name = 'BundleError'; }
}

const isNode = typeof process !== 'undefined' && Boolean(process.versions?.node);

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

/** Throw a BundleError naming the first thing in `manifest` (parsed JSON) that breaks the format: the schema
 * (runtime/manifest.schema.json), then what depends on other keys. */
export function validateManifest(manifest, where = MANIFEST_FILE) {
  const fail = (why) => { throw new BundleError(`${where}: ${why}`); };
  if (kindOf(manifest) !== 'object') fail('expected a JSON object; the bundle is corrupt, re-export it');
  if (manifest.format !== FORMAT_NAME) fail(`not a vaekit bundle (format is ${JSON.stringify(manifest.format)}, expected "${FORMAT_NAME}")`);
  if (!FORMAT_VERSIONS.includes(manifest.format_version)) {
    fail(`bundle format version ${JSON.stringify(manifest.format_version)} is not supported by this runtime (it reads ` +
         `versions ${FORMAT_VERSIONS.join(', ')}); re-export the model with a matching vaekit, or upgrade vaekit`);
  }
  const error = firstError(manifest, MANIFEST_SCHEMA);
  if (error) fail(`${error}; the manifest breaks the bundle format, re-export the bundle`);
  const tensors = expectedTensors(manifest.likelihood);
  if (!sameJson(manifest.tensors, tensors)) fail(`tensor names ${JSON.stringify(manifest.tensors)} differ from the format's ${JSON.stringify(tensors)}`);
  if (manifest.format_version === MIXTURE_FORMAT_VERSION && !('prior' in manifest)) {
    fail(`format version ${MIXTURE_FORMAT_VERSION} needs the key 'prior'; re-export the bundle`);
  }
  if ('prior' in manifest) checkPrior(manifest.prior, manifest.latent_dim, (why) => fail(`prior${why}`));
  if ('latent_pca' in manifest) checkLatentPca(manifest.latent_pca, manifest.latent_dim, (why) => fail(`latent_pca${why}`));
  if ('colour_reference' in manifest) {
    checkColourReference(manifest.colour_reference, manifest.image_shape[0], (why) => fail(`colour_reference${why}`));
  }
  if ('conformance' in manifest) checkConformance(manifest.conformance, tensors, manifest.files, (why) => fail(`conformance${why}`));
}

/** `value` (schema-checked nested arrays of numbers) when it is `rows` x `cols` (rows null: a list of cols) and
 * finite, else null. */
function finiteMatrix(value, rows, cols) {
  const list = rows === null ? [value] : value;
  const ok = list.length === (rows ?? 1) && list.every((row) => row.length === cols && row.every(Number.isFinite));
  return ok ? list : null;
}

function checkPrior(prior, d, fail) {
  const k = prior.weights.length;
  const sum = prior.weights.reduce((s, w) => s + w, 0);
  if (Math.abs(sum - 1) > WEIGHTS_SUM_TOLERANCE) {
    fail(`.weights must be positive and sum to 1, got a sum of ${sum.toPrecision(9)}; re-export the bundle`);
  }
  for (const key of ['means', 'logvars']) {
    if (!finiteMatrix(prior[key], k, d)) fail(`.${key} must be ${k} rows (one per weight) of latent_dim = ${d} finite numbers; re-export the bundle`);
  }
}

function checkLatentPca(pca, d, fail) {
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

function checkColourReference(reference, channels, fail) {
  const n = reference.n;
  if (!finiteMatrix(reference.means, n, channels)) fail(`.means must be n = ${n} rows of ${channels} numbers (one per channel); re-export the bundle`);
  if (!finiteMatrix(reference.bandwidth, null, channels)) fail(`.bandwidth must be a list of ${channels} numbers, one per channel; re-export the bundle`);
}

function checkConformance(entry, tensors, files, fail) {
  for (const [graph, names] of Object.entries(tensors)) {
    const spec = entry[graph];
    const sorted = (list) => JSON.stringify([...list].sort());
    if (sorted(Object.keys(spec.inputs)) !== sorted(names.inputs) || sorted(Object.keys(spec.outputs)) !== sorted(names.outputs)) {
      fail(`.${graph} must cover inputs ${JSON.stringify(names.inputs)} and outputs ${JSON.stringify(names.outputs)}`);
    }
    const named = [...Object.values(spec.inputs), ...Object.values(spec.outputs).map((output) => output.file)];
    for (const file of named) {
      if (!Object.prototype.hasOwnProperty.call(files, file)) fail(`.${graph} names ${JSON.stringify(file)}, which is not among the manifest's files (so it has no checksum); re-export the bundle`);
    }
  }
}

/** Throw a BundleError when `bytes` (an ONNX file) is not a protobuf message or reads tensor data from another
 * file (ONNX external data), which the bundle's checksums would not cover. */
export function checkGraphBytes(bytes, where) {
  let external;
  try {
    external = usesExternalData(bytes);
  } catch (e) {
    throw new BundleError(`${where}: not an ONNX model (${e.message}); the bundle is corrupt, re-export it`);
  }
  if (external) {
    throw new BundleError(`${where}: the graph reads tensor data from a file outside it (ONNX external data), which ` +
                          "the bundle's checksums do not cover; re-export the bundle with its weights inside the graph");
  }
}

/** Parse a manifest's bytes as strict JSON: numbers too large for a double (Infinity) are refused too. */
export function parseManifest(bytes) {
  return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes), (key, value) => {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new SyntaxError(`${key}: a number too large for a float`);
    return value;
  });
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
    return async (name) => {
      const { readFile } = await import('node:fs/promises');
      const { fileURLToPath } = await import('node:url');
      const folder = text.startsWith('file:') ? fileURLToPath(text) : text;
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
  const bytes = await read(MANIFEST_FILE);
  try {
    manifest = parseManifest(bytes);
  } catch (e) { // bad JSON or UTF-8, numbers too big, nesting too deep (RangeError)
    throw new BundleError(`${where}/${MANIFEST_FILE}: not valid JSON (${String(e.message).split('\n')[0].slice(0, 200)}); the bundle is corrupt, re-export it`);
  }
  validateManifest(manifest, `${where}/${MANIFEST_FILE}`);
  const files = new Map();
  await Promise.all(Object.entries(manifest.files).map(async ([name, entry]) => {
    const bytes = await read(name);
    if ((await sha256Hex(bytes, `${where}/${name}`)) !== entry.sha256) {
      throw new BundleError(`${where}/${name}: sha256 does not match the manifest, so the file was changed or corrupted; re-export the bundle`);
    }
    if (name === ENCODER_FILE || name === DECODER_FILE) checkGraphBytes(bytes, `${where}/${name}`);
    files.set(name, bytes); // the sessions are made from these very bytes, never read again
  }));
  return { manifest, files, where };
}
