// vaekit's portable seeded generator, the twin of runtime/prior.py (spec: docs/bundle-format.md, "Seeded noise").
// Word j of seed s is splitmix64's output for state s + (j + 1) * GOLDEN (mod 2**64), in BigInt; normal i is
// Box-Muller's cosine branch on the uniforms of words 2i and 2i + 1, in float64, rounded to float32.

const MASK = (1n << 64n) - 1n;
const GOLDEN = 0x9e3779b97f4a7c15n;
const MIX1 = 0xbf58476d1ce4e5b9n;
const MIX2 = 0x94d049bb133111ebn;
export const MAX_SEED = MASK;

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

/** Latents {data, dims: [n, latentDim]}: normals 0 .. n * latentDim - 1 of `seed`, times float32(temperature). */
export function priorLatents(n, latentDim, seed, temperature) {
  const data = standardNormal(seedOrFresh(seed), 0, n * latentDim);
  const t = Math.fround(temperature);
  for (let i = 0; i < data.length; i++) data[i] = Math.fround(data[i] * t);
  return { data, dims: [n, latentDim] };
}
