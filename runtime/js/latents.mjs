// Paths between two latents, the twin of runtime/latents.py: straight (lerp) or spherical (slerp, which falls
// back to lerp when the ends are parallel, opposite or zero). Computed in float64, returned as float32.

export const METHODS = ['slerp', 'lerp'];

/** `steps` latents from `a` to `b` (both ends included) as {data: Float32Array, dims: [steps, D]}. */
export function path(a, b, steps, method) {
  if (!METHODS.includes(method)) throw new RangeError(`method must be one of ${METHODS.join(', ')}, got ${method}`);
  const d = a.length;
  const data = new Float32Array(steps * d);
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < d; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  const norms = Math.sqrt(na) * Math.sqrt(nb);
  const omega = norms === 0 ? 0 : Math.acos(Math.min(1, Math.max(-1, dot / norms)));
  const spherical = method === 'slerp' && norms !== 0 && Math.sin(omega) >= 1e-6;
  for (let s = 0; s < steps; s++) {
    const t = steps === 1 ? 0 : s / (steps - 1);
    const [wa, wb] = spherical
      ? [Math.sin((1 - t) * omega) / Math.sin(omega), Math.sin(t * omega) / Math.sin(omega)]
      : [1 - t, t];
    for (let i = 0; i < d; i++) data[s * d + i] = wa * a[i] + wb * b[i];
  }
  return { data, dims: [steps, d] };
}
