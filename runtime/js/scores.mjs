// Anomaly scores, the twin of runtime/scores.py (docs/anomaly-scores.md): higher always means more typical.

import { LOG_2PI } from './likelihood.mjs';

export const SCORES = ['likelihood', 'complexity', 'reconstruction', 'latent', 'prior', 'colour', 'combined'];
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

/** `colour`: the log of the mean over the reference's rows of N(c; row, diag(bandwidth^2)), where c is the average
 * value per channel of the image at `offset` (`channels` planes of `pixels` values each). */
export function colourLogDensity(data, offset, channels, pixels, reference) {
  const colour = Array.from({ length: channels }, (_, c) => {
    let sum = 0;
    for (let p = 0; p < pixels; p++) sum += data[offset + c * pixels + p];
    return sum / pixels;
  });
  const h = reference.bandwidth;
  const half = reference.means.map((row) => 0.5 * row.reduce((s, v, c) => s + ((colour[c] - v) / h[c]) ** 2, 0));
  const nearest = half.reduce((a, b) => Math.min(a, b), Infinity);
  const total = half.reduce((s, v) => s + Math.exp(nearest - v), 0);
  const logBandwidth = h.reduce((s, v) => s + Math.log(v), 0);
  return Math.log(total) - nearest - Math.log(reference.means.length) - logBandwidth - 0.5 * channels * LOG_2PI;
}

/** The scores `combined` averages on this bundle: those its reference names (`parts`), or, for a bundle exported
 * before references named them, FIRST_COMBINED_PARTS. */
export function combinedParts(refs) {
  return refs.combined?.parts?.length ? refs.combined.parts : FIRST_COMBINED_PARTS;
}

/** The reference figures `combined` standardizes by; a RangeError in one line when the bundle lacks them, or when
 * its `combined` averages a score this vaekit does not compute (a newer vaekit wrote it). */
export function combinedReferences(manifest) {
  const refs = references(manifest);
  const parts = combinedParts(refs);
  if (!refs.combined || parts.some((name) => !refs[name])) throw new RangeError(missingReference('combined'));
  const unknown = parts.filter((name) => !SCORES.includes(name) || name === 'combined');
  if (unknown.length) {
    throw new RangeError(`the bundle's 'combined' averages ${unknown.map((name) => `'${name}'`).join(', ')}, which this vaekit ` +
                         "does not compute (a newer vaekit exported it): upgrade vaekit, or use the 'likelihood' score");
  }
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
