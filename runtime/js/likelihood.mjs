// Log-densities in nats (float64, summed per image) behind VAE.score, the twin of runtime/likelihood.py.

export const LOG_2PI = Math.log(2 * Math.PI);
export const PARAMS = { bernoulli: ['logits'], gaussian: ['image', 'logvar'] };

/** log p(x | z) of image `x` (pixels x[offset ..]) under decoder parameters for row `row`, `size` pixels each. */
export function logLikelihood(x, offset, params, row, size, likelihood) {
  let sum = 0;
  const base = row * size;
  if (likelihood === 'bernoulli') {
    const l = params.logits;
    for (let i = 0; i < size; i++) {
      const v = l[base + i];
      const softplus = Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v))); // log(1 + exp(v)), without overflow
      sum += x[offset + i] * v - softplus;
    }
  } else {
    const m = params.image, lv = params.logvar;
    for (let i = 0; i < size; i++) {
      const diff = x[offset + i] - m[base + i];
      sum += -0.5 * (LOG_2PI + lv[base + i] + diff * diff * Math.exp(-lv[base + i]));
    }
  }
  return sum;
}

/** KL(q(z | x) || N(0, I)) in closed form for one posterior (mean, logvar from offset, d entries). */
export function klToPrior(mean, logvar, offset, d) {
  let sum = 0;
  for (let i = offset; i < offset + d; i++) sum += Math.exp(logvar[i]) + mean[i] * mean[i] - 1 - logvar[i];
  return 0.5 * sum;
}

/** log(mean(exp(a))), shifted by the maximum so nothing overflows. */
export function logMeanExp(a) {
  const top = a.reduce((x, y) => Math.max(x, y), -Infinity);
  const shift = Number.isFinite(top) ? top : 0;
  return Math.log(a.reduce((s, v) => s + Math.exp(v - shift), 0) / a.length) + shift;
}

/** log p(x | x): the likelihood of image `x` under a decoder whose mean is the image itself (gaussian: with
 * the variance of row `row`), the twin of best_log_likelihood in runtime/likelihood.py. */
export function bestLogLikelihood(x, offset, params, row, size, likelihood) {
  let sum = 0;
  if (likelihood === 'bernoulli') {
    for (let i = 0; i < size; i++) {
      const v = x[offset + i];
      if (v > 0) sum += v * Math.log(v);
      if (v < 1) sum += (1 - v) * Math.log1p(-v);
    }
  } else {
    for (let i = 0; i < size; i++) sum += -0.5 * (LOG_2PI + params.logvar[row * size + i]);
  }
  return sum;
}
