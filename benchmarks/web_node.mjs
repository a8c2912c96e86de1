// Node.js half of benchmarks/web.py: vaekit's JavaScript runtime on onnxruntime-node (1 thread), timed in-process.
// Usage: node benchmarks/web_node.mjs BUNDLE CALLS SECONDS BLOCK -> prints "first-image" as soon as one image is decoded
// (the parent times the process start to that line), then one JSON line of timings.

import { VAE } from '../runtime/js/vaekit.mjs';

const [bundle, calls, seconds, block] = [process.argv[2], ...process.argv.slice(3, 6).map(Number)];
const vae = await VAE.load(bundle, { sessionOptions: { intraOpNumThreads: 1, interOpNumThreads: 1 } });
await vae.sample(1, { seed: 0 });
console.log('first-image');

const one = vae.priorLatents(1, { seed: 0 });
const batch = vae.priorLatents(64, { seed: 0 });
for (let i = 0; i < 10; i++) await vae.decode(one); // warm up
const times = [];
for (let i = 0; i < calls / block; i++) { // blocks of calls, timed together (as the browser must be)
  const t = performance.now();
  for (let j = 0; j < block; j++) await vae.decode(one);
  times.push((performance.now() - t) / block);
}
times.sort((a, b) => a - b);
let images = 0;
const start = performance.now();
while (performance.now() - start < seconds * 1000) {
  await vae.decode(batch);
  images += 64;
}
const elapsed = (performance.now() - start) / 1000;
console.log(JSON.stringify({
  backend: `onnxruntime-node ${vae.backend}`,
  decode_b1: { median_ms: times[Math.floor(times.length / 2)], p99_ms: times[Math.min(times.length - 1, Math.floor(0.99 * times.length))] },
  b64_images_per_s: images / elapsed,
}));
