// vaekit's portable seeded generator and the model's prior, the twin of runtime/prior.py (spec: docs/bundle-format.md,
// "Seeded noise" and "The prior").
// Word j of seed s is splitmix64's output for state s + (j + 1) * GOLDEN (mod 2**64), in BigInt; normal i is
// Box-Muller's cosine branch on the uniforms of words 2i and 2i + 1, in float64, rounded to float32.

import { LOG_2PI, logMeanExp } from './likelihood.mjs';

const MASK = (1n << 64n) - 1n;
const GOLDEN = 0x9e3779b97f4a7c15n;
const MIX1 = 0xbf58476d1ce4e5b9n;
const MIX2 = 0x94d049bb133111ebn;
export const MAX_SEED = MASK;
const COMPONENT_WORDS = 1n << 63n; // a mixture's component of sample i is chosen by the uniform of word 2**63 + i

/** `seed` (a non-negative safe integer or BigInt below 2**64) as a BigInt; a fresh random one for undefined/null. */
export function seedOrFresh(seed) {
  if (seed === undefined || seed === null) {
    const words = crypto.getRandomValues(new Uint32Array(2));
    return (BigInt(words[0]) << 32n) | BigInt(words[1]);
  }
  const ok = typeof seed === 'bigint' || Number.isSafeInteger(seed);
  const value = ok ? BigInt(seed) : -1n;
  if (value < 0n || value > MAX_SEED) {
    throw new RangeError(`seed must be an integer from 0 to 2**64 - 1, got ${String(seed)}`);
  }
  return value;
}

/** Uniform number j of `seed`'s stream in (0, 1): ((word >> 11) + 0.5) / 2**53, exact in float64. */
export function uniform(seed, j) {
  let z = (seed + (BigInt(j) + 1n) * GOLDEN) & MASK;
  z = ((z ^ (z >> 30n)) * MIX1) & MASK;
  z = ((z ^ (z >> 27n)) * MIX2) & MASK;
  z ^= z >> 31n;
  return (Number(z >> 11n) + 0.5) * 2 ** -53;
}

/** Normal numbers start .. start + count - 1 of `seed` (a BigInt), as a Float32Array. */
export function standardNormal(seed, start, count) {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const k = 2 * (start + i);
    out[i] = Math.sqrt(-2.0 * Math.log(uniform(seed, k))) * Math.cos(2.0 * Math.PI * uniform(seed, k + 1));
  }
  return out;
}

/** The learned mixture prior of a manifest (format version 2), or null for the standard normal prior. */
export function mixtureOf(manifest) {
  const prior = manifest.prior;
  if (!prior) return null;
  let total = 0;
  const cumulative = Float64Array.from(prior.weights, (w) => (total += w));
  return {
    weights: Float64Array.from(prior.weights), cumulative, d: manifest.latent_dim,
    means: Float32Array.from(prior.means.flat()), logvars: Float32Array.from(prior.logvars.flat()),
  };
}

/** The component of sample i: the first whose cumulative weight exceeds the uniform of word 2**63 + i (the last one
 * if rounding leaves the uniform above them all). */
function component(mixture, seed, i) {
  const u = uniform(seed, COMPONENT_WORDS + BigInt(i));
  const c = mixture.cumulative.findIndex((edge) => edge > u);
  return c === -1 ? mixture.cumulative.length - 1 : c;
}

/** log p(z) under the mixture, float64, for the latent z[offset .. offset + d - 1]. */
export function mixtureLogProb(mixture, z, offset) {
  const { d, means, logvars, weights } = mixture;
  const terms = Array.from(weights, (w, c) => {
    let sum = 0;
    for (let t = 0; t < d; t++) {
      const lv = logvars[c * d + t], diff = z[offset + t] - means[c * d + t];
      sum += lv + diff * diff * Math.exp(-lv);
    }
    return Math.log(w) - 0.5 * (LOG_2PI * d + sum);
  });
  return logMeanExp(terms) + Math.log(terms.length); // log sum_c w_c N_c(z): the log-mean over the K components, plus log K
}

/** Latents {data, dims: [n, latentDim]}: normals 0 .. n * latentDim - 1 of `seed`, times float32(temperature); with a
 * mixture prior each row then scaled by its component's float32(exp(logvar / 2)) and shifted by its mean, in float32. */
export function priorLatents(n, latentDim, seed, temperature, mixture = null) {
  const s = seedOrFresh(seed);
  const data = standardNormal(s, 0, n * latentDim);
  const t = Math.fround(temperature);
  for (let i = 0; i < data.length; i++) data[i] = Math.fround(data[i] * t);
  if (mixture) {
    for (let i = 0; i < n; i++) {
      const c = component(mixture, s, i);
      for (let j = 0; j < latentDim; j++) {
        const std = Math.fround(Math.exp(mixture.logvars[c * latentDim + j] / 2));
        data[i * latentDim + j] = Math.fround(mixture.means[c * latentDim + j] + Math.fround(std * data[i * latentDim + j]));
      }
    }
  }
  return { data, dims: [n, latentDim] };
}
