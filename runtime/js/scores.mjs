// Anomaly scores, the twin of runtime/scores.py (docs/anomaly-scores.md): higher always means more typical.

export const SCORES = ['likelihood', 'complexity', 'reconstruction', 'latent', 'prior', 'combined'];
export const DEFAULT_SCORE = 'combined';
export const FIRST_COMBINED_PARTS = ['likelihood', 'complexity', 'reconstruction', 'latent']; // a reference that names none
export const LATENT_SPREAD = 0.01;
export const REFERENCES_KEY = 'score_references';

/** `name` if it is a vaekit score, else a RangeError listing them. */
export function checkName(name) {
  if (!SCORES.includes(name)) throw new RangeError(`unknown score '${name}'; choose one of ${SCORES.join(', ')}`);
  return name;
}

/** The one line that says a bundle cannot read `name`. */
export function missingReference(name) {
  return `the bundle records no reference scores for '${name}' (exported before vaekit had that score): ` +
         "re-export it with this vaekit, or use the 'likelihood' score";
}

/** Every score the bundle records reference figures for, {name: {k, n, seed, mean, std, q}}; a bundle exported
 * before vaekit recorded them has only score_quantiles, the likelihood's. */
export function references(manifest) {
  const found = { ...(manifest[REFERENCES_KEY] ?? {}) };
  found.likelihood ??= { std: 0, ...manifest.score_quantiles };
  return found;
}

/** `latent`: -0.5 * sum(y^2 / (variance + LATENT_SPREAD)), y = axes @ (mean - pca mean), for the code at `offset`. */
export function latentLogDensity(mean, offset, pca) {
  const d = pca.mean.length;
  let sum = 0;
  for (let i = 0; i < d; i++) {
    let y = 0;
    for (let j = 0; j < d; j++) y += (mean[offset + j] - pca.mean[j]) * pca.axes[i][j];
    sum += (y * y) / (pca.variance[i] + LATENT_SPREAD);
  }
  return -0.5 * sum;
}

/** The scores `combined` averages on this bundle: those its reference names (`parts`), or, for a bundle exported
 * before references named them, FIRST_COMBINED_PARTS. */
export function combinedParts(refs) {
  return refs.combined?.parts?.length ? refs.combined.parts : FIRST_COMBINED_PARTS;
}

/** The reference figures `combined` standardizes by; a RangeError in one line when the bundle lacks them. */
export function combinedReferences(manifest) {
  const refs = references(manifest);
  if (!refs.combined || combinedParts(refs).some((name) => !refs[name])) throw new RangeError(missingReference('combined'));
  return refs;
}

/** `combined`: the mean of the bundle's `combinedParts` scores of each image, each standardized by its reference
 * images (summed in their order, then divided by their number, as numpy's mean does for so few). */
export function combined(parts, refs) {
  const names = combinedParts(refs);
  const n = parts[names[0]].length;
  const out = new Float64Array(n);
  for (const name of names) {
    const ref = refs[name];
    if (!(ref.std > 0)) throw new RangeError(`the reference scores for '${name}' have no spread; re-export the bundle`);
    for (let i = 0; i < n; i++) out[i] += (parts[name][i] - ref.mean) / ref.std;
  }
  return out.map((sum) => sum / names.length);
}
