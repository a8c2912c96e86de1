// An image's code length in bits under a fixed predictor and an adaptive Golomb-Rice code, the twin of
// runtime/complexity.py: integer arithmetic only, so both runtimes give the same number to the bit
// (docs/anomaly-scores.md, "Code length").

const ACTIVITY_STEPS = [0, 2, 6, 14, 30, 62, 126];
const CONTEXTS = ACTIVITY_STEPS.length + 1;
const A_START = 4, N_START = 1, N_RESET = 64;
const MAX_K = 12;
const UNARY_LIMIT = 24;
const ESCAPE_BITS = UNARY_LIMIT + 1 + 9;

/** The code length in bits of one image: `size` = c * h * w floats in [0, 1] from x[offset], CHW order. */
export function codeLength(x, offset, [c, h, w]) {
  const level = (i) => Math.min(255, Math.max(0, Math.floor(x[offset + i] * 255 + 0.5)));
  const sums = new Array(CONTEXTS).fill(A_START), counts = new Array(CONTEXTS).fill(N_START);
  let total = 0;
  for (let ch = 0; ch < c; ch++) {
    const base = ch * h * w;
    const at = (r, col) => (r < 0 || col < 0 || col >= w ? 0 : level(base + r * w + col));
    for (let r = 0; r < h; r++) {
      for (let col = 0; col < w; col++) {
        const a = at(r, col - 1), b = at(r - 1, col), cc = at(r - 1, col - 1), d = at(r - 1, col + 1);
        const low = Math.min(a, b), high = Math.max(a, b);
        const pred = cc >= high ? low : cc <= low ? high : a + b - cc; // the median edge detector
        const e = level(base + r * w + col) - pred;
        const m = e >= 0 ? 2 * e : -2 * e - 1;
        const activity = Math.abs(a - cc) + Math.abs(b - cc) + Math.abs(d - b);
        const q = ACTIVITY_STEPS.reduce((n, t) => n + (activity > t ? 1 : 0), 0);
        let k = 0;
        while (k < MAX_K && counts[q] * 2 ** k < sums[q]) k++; // the smallest k with count << k >= sum
        const quotient = Math.floor(m / 2 ** k);
        total += quotient < UNARY_LIMIT ? quotient + 1 + k : ESCAPE_BITS;
        sums[q] += m;
        counts[q] += 1;
        if (counts[q] === N_RESET) {
          sums[q] = Math.floor(sums[q] / 2);
          counts[q] = Math.floor(counts[q] / 2);
        }
      }
    }
  }
  return total;
}
