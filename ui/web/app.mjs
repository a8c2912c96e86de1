// The static page of vaekit-web: Sample, Interpolate and Explore on the bundle beside it, drawn like the Gradio
// app (vaekit-ui) draws them: tiles with thin grey lines, enlarged by whole factors with nearest-neighbour
// pixels, grayscale or colour as the bundle's images are. Runs in the browser only: onnxruntime-web through
// vaekit's JavaScript runtime, no server beyond static files.

import * as ort from 'onnxruntime-web';
import { VAE } from './vaekit/vaekit.mjs';

const BUNDLE = './bundle/';
const SINGLE_PX = 320, GRID_PX = 560, STRIP_PX = 800; // about how wide an image, a grid and a strip are drawn
const PADDING = 1, PAD_VALUE = 128;
const MAX_SAMPLES = 100, MAX_STEPS = 24, MAX_SEED = 2 ** 32 - 1, MAX_TEMPERATURE = 3;
const MAX_SLIDERS = 10, SLIDER_RANGE = 3;
const NEW_SEED_BELOW = 1_000_000;

const $ = (id) => document.getElementById(id);

/** Python's round(): halves to even, so that enlargement factors equal vaekit-ui's. */
function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** A batch {data, dims: [N, C, H, W]} in [0, 1] tiled `nrow` per row with `pad` grey pixels between tiles,
 * as RGBA pixels {rgba, width, height}. */
export function tile(batch, nrow, pad = PADDING) {
  const [n, c, h, w] = batch.dims;
  const cols = Math.min(nrow, n), rows = Math.ceil(n / nrow);
  const width = cols * (w + pad) + pad, height = rows * (h + pad) + pad;
  const rgba = new Uint8ClampedArray(width * height * 4).fill(PAD_VALUE);
  for (let i = 3; i < rgba.length; i += 4) rgba[i] = 255;
  for (let i = 0; i < n; i++) {
    const top = pad + Math.floor(i / cols) * (h + pad), left = pad + (i % cols) * (w + pad);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const at = ((top + y) * width + left + x) * 4;
        for (let k = 0; k < 3; k++) {
          const v = batch.data[((i * c + (c === 1 ? 0 : k)) * h + y) * w + x];
          rgba[at + k] = roundHalfEven(Math.min(1, Math.max(0, v)) * 255);
        }
      }
    }
  }
  return { rgba, width, height };
}

/** Draw pixels on `canvas` enlarged by the whole factor that brings them closest to `target` pixels wide. */
function draw(canvas, { rgba, width, height }, target) {
  const f = Math.max(1, roundHalfEven(target / Math.max(width, height)));
  const big = new ImageData(width * f, height * f);
  for (let y = 0; y < height * f; y++) {
    for (let x = 0; x < width * f; x++) {
      const from = (Math.floor(y / f) * width + Math.floor(x / f)) * 4, to = (y * width * f + x) * 4;
      big.data.set(rgba.subarray(from, from + 4), to);
    }
  }
  canvas.width = width * f;
  canvas.height = height * f;
  canvas.getContext('2d').putImageData(big, 0, 0);
}

/** `input`'s value as a whole number in [low, high], or an error naming the field. */
function whole(input, name, low, high) {
  const value = Number(input.value);
  if (input.value === '' || !Number.isInteger(value) || value < low || value > high) {
    throw new RangeError(`${name} must be a whole number from ${low} to ${high}, got ${JSON.stringify(input.value)}`);
  }
  return value;
}

function showError(error) {
  $('error').textContent = `Error: ${error.message}`;
  $('error').hidden = false;
}

/** Run an action of the page, showing its error (if any) instead of the result. */
async function act(action) {
  try {
    await action();
    $('error').hidden = true;
  } catch (error) {
    showError(error);
  }
}

function setUpTabs() {
  for (const tab of document.querySelectorAll('.tab')) {
    tab.addEventListener('click', () => {
      for (const other of document.querySelectorAll('.tab')) {
        other.setAttribute('aria-selected', String(other === tab));
        $(other.dataset.tab).hidden = other !== tab;
      }
    });
  }
}

async function sample(vae) {
  const n = whole($('sample-n'), 'number of samples', 1, MAX_SAMPLES);
  const seed = whole($('sample-seed'), 'seed', 0, MAX_SEED);
  const temperature = Number($('sample-temperature').value);
  if (!(temperature >= 0 && temperature <= MAX_TEMPERATURE)) throw new RangeError(`temperature must be a number from 0 to ${MAX_TEMPERATURE}`);
  draw($('sample-grid'), tile(await vae.sample(n, { seed, temperature }), Math.ceil(Math.sqrt(n))), GRID_PX);
}

const seedLatent = (vae, seed) => vae.priorLatents(1, { seed }).data;

async function interpolate(vae) {
  const a = seedLatent(vae, whole($('seed-a'), 'seed A', 0, MAX_SEED));
  const b = seedLatent(vae, whole($('seed-b'), 'seed B', 0, MAX_SEED));
  const steps = whole($('steps'), 'steps', 2, MAX_STEPS);
  const images = await vae.interpolate(a, b, { steps, method: $('method').value });
  draw($('interpolate-strip'), tile(images, steps), STRIP_PX);
}

/** The Explore sliders: the bundle's first principal axes of its held-out latent codes (manifest latent_pca). */
function setUpExplore(vae) {
  const pca = vae.manifest.latent_pca;
  if (!pca) {
    $('explore-source').textContent = 'This bundle records no latent_pca (exported before vaekit recorded it): re-export it with this vaekit to explore it.';
    for (const id of ['explore-seed-button', 'explore-center-button']) $(id).disabled = true;
    return;
  }
  const k = Math.min(vae.latentDim, MAX_SLIDERS);
  const total = pca.variance.reduce((s, v) => s + v, 0) || 1e-30;
  $('explore-source').textContent = `Sliders move along the main directions of the latent codes of ${pca.n.toLocaleString('en')} held-out images, recorded at export.`;
  const sliders = pca.axes.slice(0, k).map((_, i) => {
    const box = document.createElement('div');
    box.className = 'slider';
    box.innerHTML = `<label>direction ${i + 1} <small>${Math.round(100 * pca.variance[i] / total)}% of the codes' variance</small>
      <input type="range" min="${-SLIDER_RANGE}" max="${SLIDER_RANGE}" step="0.01" value="0"></label>`;
    $('sliders').append(box);
    return box.querySelector('input');
  });
  const show = async () => {
    const latent = Float32Array.from(pca.mean, (m, d) => m + sliders.reduce((s, el, i) => s + Number(el.value) * pca.axes[i][d], 0));
    draw($('explore-image'), tile(await vae.decode(latent), 1, 0), SINGLE_PX); // one image: no frame, as vaekit-ui
  };
  const moveTo = async (latent) => {
    sliders.forEach((el, i) => {
      const value = latent ? pca.axes[i].reduce((s, a, d) => s + a * (latent[d] - pca.mean[d]), 0) : 0;
      el.value = String(Math.round(100 * Math.min(SLIDER_RANGE, Math.max(-SLIDER_RANGE, value))) / 100);
    });
    await show();
  };
  for (const el of sliders) el.addEventListener('input', () => act(show));
  $('explore-center-button').addEventListener('click', () => act(() => moveTo(null)));
  $('explore-seed-button').addEventListener('click', () => act(() => moveTo(seedLatent(vae, whole($('explore-seed'), 'seed', 0, MAX_SEED)))));
  return show;
}

async function main() {
  setUpTabs();
  ort.env.wasm.wasmPaths = new URL('./ort/', location.href).href;
  ort.env.wasm.numThreads = globalThis.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency) : 1;
  const backend = new URLSearchParams(location.search).get('backend') ?? 'auto'; // ?backend=wasm or webgpu forces one
  let vae;
  try {
    vae = await VAE.load(BUNDLE, { ort, backend });
  } catch (error) {
    if (backend === 'auto' && / on webgpu /.test(error.message)) error.message += '; or open this page as ?backend=wasm';
    throw error;
  }
  window.vaekit = { vae, tile };
  const [c, h, w] = vae.imageShape;
  $('about').textContent = `A variational autoencoder of ${h}x${w} ${c === 1 ? 'grayscale' : 'colour'} images with ` +
    `${vae.latentDim} latent dimensions (${vae.manifest.dtype}, ${vae.likelihood}), running in this browser on onnxruntime-web (${vae.backend}).`;
  const verification = await vae.verify();
  $('check').textContent = `Conformance: ${verification.summary}`;
  if (!verification.passed) throw new Error(`the bundle does not compute here what it computed at export: ${verification.summary}`);
  $('sample-temperature').addEventListener('input', () => { $('sample-temperature-value').value = $('sample-temperature').value; });
  $('sample-form').addEventListener('submit', (e) => { e.preventDefault(); act(() => sample(vae)); });
  $('new-seed-button').addEventListener('click', () => {
    $('sample-seed').value = String(Math.floor(Math.random() * NEW_SEED_BELOW));
    act(() => sample(vae));
  });
  $('interpolate-form').addEventListener('submit', (e) => { e.preventDefault(); act(() => interpolate(vae)); });
  const explore = setUpExplore(vae);
  await sample(vae);
  performance.mark('vaekit:first-image'); // page load to first image, for benchmarks/web.py
  await interpolate(vae);
  if (explore) await explore();
}

main().then(() => { document.body.dataset.state = 'ready'; }, (error) => {
  showError(error);
  document.body.dataset.state = 'error';
  for (const button of document.querySelectorAll('button:not(.tab)')) button.disabled = true;
});
