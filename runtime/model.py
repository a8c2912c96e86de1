"""`VAE`: a loaded bundle with numpy in and out, batched so memory stays bounded for any input size."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import checks
from .bundle import DECODER_FILE, DECODER_OUTPUTS, ENCODER_FILE, ENCODER_OUTPUTS, BundleError, read_bundle
from .chunks import runtime_batch_size
from .complexity import code_length
from .conformance import GRAPH_INPUTS, Verification, compare, read_vector
from .devices import SessionConfig, open_sessions
from .errors import InputError
from .images import as_image_batch, nchw_view, to_unit_float32
from .latents import as_latent, as_latents, as_values, path
from .likelihood import PARAMS, best_log_likelihood, kl_to_prior, log_likelihood, log_mean_exp, log_posterior, log_standard_normal
from .manifest import GraphTensors, Manifest
from .prior import Mixture, prior_latents, seed_or_fresh, standard_normal
from .scores import (
    COLOUR,
    COMBINED,
    COMPLEXITY,
    DEFAULT_SCORE,
    LATENT,
    LIKELIHOOD,
    PRIOR,
    RECONSTRUCTION,
    SCORES,
    check_name,
    colour_log_density,
    combined,
    combined_parts,
    combined_references,
    image_colours,
    latent_log_density,
)
from .sessions import Graph


def _check_graph(graph: Graph, tensors: GraphTensors, input_dims: tuple[int, ...], where: Path) -> None:
    """Raise BundleError when a graph's tensor names or fixed input sizes differ from the manifest's."""
    if graph.input_names != list(tensors.inputs) or set(graph.output_names) != set(tensors.outputs):
        raise BundleError(
            f"{where}: the graph's tensors (inputs {graph.input_names}, outputs {graph.output_names}) differ from "
            f"the manifest's {tensors}; the bundle is inconsistent, re-export it"
        )
    declared = graph.session.get_inputs()[0].shape[1:]
    if len(declared) != len(input_dims) or any(isinstance(d, int) and d != e for d, e in zip(declared, input_dims)):
        raise BundleError(
            f"{where}: input {graph.input_names[0]!r} has per-item shape {declared}, but the manifest says "
            f"{list(input_dims)}; the bundle is inconsistent, re-export it"
        )


class VAE:
    """A vaekit bundle loaded for inference on CPU or CUDA; build one with `VAE.load`.

    Every method takes and returns numpy arrays (always batched: a single image in gives a batch of
    one out) and runs the graphs in chunks of `batch_size`. Images out are float32 (N, C, H, W) in
    [0, 1]; images in may be uint8 or float in any layout that `images.as_image_batch` accepts.

    Thread-safety: one VAE may serve many threads at once. Shared between them are the two
    onnxruntime sessions (whose `run` is thread-safe), `manifest` (a frozen `Manifest`) and
    plain read-only attributes. Each call makes its own arrays and, on
    CUDA, its own IO binding, so no mutable state is shared between calls.
    """

    def __init__(self, root: Path | None, manifest: Manifest, encoder: Graph, decoder: Graph, device: str,
                 batch_size: int) -> None:
        self.path = root
        self.manifest = manifest
        self.latent_dim = manifest.latent_dim
        self.image_shape = manifest.image_shape
        self.likelihood = manifest.likelihood
        # the learned mixture prior of a format-version-2 bundle; None: the standard normal
        self.prior = Mixture.from_manifest(manifest.prior) if manifest.prior is not None else None
        self.device = device
        self.batch_size = batch_size
        self._encoder, self._decoder = encoder, decoder

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        device: str = "auto",
        *,
        verify_checksums: bool = True,
        intra_op_threads: int | None = None,
        inter_op_threads: int | None = None,
        graph_optimization: str = "all",
        batch_size: int | None = None,
    ) -> VAE:
        """Open the bundle folder at `path` on `device` ("auto": CUDA when it works, else CPU).

        `batch_size` (images or latents per graph call) defaults to what `chunks.DEFAULT_BUDGET_BYTES`
        holds at the bundle's image size. Raises BundleError for a missing, corrupt (checksum) or
        unsupported bundle and DeviceError when device="cuda" cannot run; `graph_optimization` is
        disable|basic|extended|all.
        """
        if batch_size is not None:
            batch_size = checks.integer("batch_size", batch_size)
        config = SessionConfig(intra_op_threads, inter_op_threads, graph_optimization)
        manifest, graphs = read_bundle(path, verify_checksums=verify_checksums)
        batch_size = batch_size or runtime_batch_size(manifest.image_shape)
        return cls._open(Path(path), manifest, [graphs[ENCODER_FILE], graphs[DECODER_FILE]], device, config, batch_size)

    @classmethod
    def from_graphs(cls, manifest: Manifest, encoder: bytes, decoder: bytes, *, device: str = "cpu",
                    batch_size: int = 256) -> VAE:
        """A VAE over two serialized ONNX graphs held in memory, described by `manifest` (its files and figures
        may still be missing): what an exporter scores and encodes with
        before it writes anything. It has no folder, so `verify` says it cannot be checked."""
        batch_size = checks.integer("batch_size", batch_size)
        return cls._open(None, manifest, [encoder, decoder], device, SessionConfig(), batch_size)

    @classmethod
    def _open(cls, root: Path | None, manifest: Manifest, sources: list[bytes], device: str, config: SessionConfig,
              batch_size: int) -> VAE:
        """Sessions for the two graphs' bytes, checked against the manifest."""
        sessions, used = open_sessions(sources, device, config)
        encoder, decoder = (Graph(s, "cuda" if used == "cuda" else None) for s in sessions)
        where = [root / ENCODER_FILE, root / DECODER_FILE] if root else [Path(ENCODER_FILE), Path(DECODER_FILE)]
        _check_graph(encoder, manifest.tensors.encoder, manifest.image_shape, where[0])
        _check_graph(decoder, manifest.tensors.decoder, (manifest.latent_dim,), where[1])
        return cls(root, manifest, encoder, decoder, used, batch_size)

    @property
    def providers(self) -> list[str]:
        """The onnxruntime execution providers the sessions really use, in priority order."""
        return self._encoder.session.get_providers()

    def __repr__(self) -> str:
        return (f"VAE({str(self.path)!r}, likelihood={self.likelihood!r}, latent_dim={self.latent_dim}, "
                f"image_shape={self.image_shape}, device={self.device!r})")

    # --- the public API -------------------------------------------------------------------------

    def encode(self, images: Any) -> tuple[np.ndarray, np.ndarray]:
        """The posterior q(z|x) of each image: (mean, logvar), each float32 (N, latent_dim)."""
        mean, logvar = self._batched(self._encode_step, nchw_view(images, self.image_shape))
        return mean, logvar

    def decode(self, latents: Any) -> np.ndarray:
        """Images (N, C, H, W) in [0, 1] (the likelihood's mean) for latents (N, D) or (D,)."""
        return self._decode(as_latents(latents, self.latent_dim))

    def decode_params(self, latents: Any) -> dict[str, np.ndarray]:
        """Every decoder output for the latents: `image` plus `logits` (bernoulli) or `logvar` (gaussian)."""
        names = DECODER_OUTPUTS[self.likelihood]
        outputs = self._batched(lambda z: self._decoder.run({"latent": z}, names), as_latents(latents, self.latent_dim))
        return dict(zip(names, outputs))

    def reconstruct(self, images: Any) -> np.ndarray:
        """Each image decoded from its posterior mean, (N, C, H, W) in [0, 1]."""
        return self._batched(self._reconstruct_step, nchw_view(images, self.image_shape))[0]

    def sample(self, n: int, seed: int | None = None, temperature: float = 1.0) -> np.ndarray:
        """`n` images decoded from `prior_latents(n, seed, temperature)`: the same seed gives the same images,
        in every vaekit runtime (Python, Node.js, the browser)."""
        return self._decode(self.prior_latents(n, seed, temperature))

    def log_prior(self, latents: np.ndarray) -> np.ndarray:
        """log p(z) of latents (..., D) under the bundle's prior (its mixture, or the standard normal), float64."""
        return self.prior.log_prob(latents) if self.prior is not None else log_standard_normal(latents)

    def prior_latents(self, n: int, seed: int | None = None, temperature: float = 1.0) -> np.ndarray:
        """The latents `sample` decodes, float32 (n, latent_dim), drawn from the prior with vaekit's portable
        generator (docs/bundle-format.md, "Seeded noise" and "The prior"): `temperature` times N(0, I), or with a
        mixture prior its components' means plus `temperature` times their spread; seed None draws a fresh seed."""
        n = checks.integer("n", n)
        temperature = checks.real("temperature", temperature, minimum=0.0)
        return prior_latents(n, self.latent_dim, seed, temperature, self.prior)

    def interpolate(self, a: Any, b: Any, steps: int = 10, method: str = "slerp") -> np.ndarray:
        """`steps` images along the path from `a` to `b` (ends included); each end is a latent (D,) or
        one image, which stands for its posterior mean. `method` is "slerp" or "lerp"."""
        steps = checks.integer("steps", steps, minimum=2)
        return self._decode(path(self._endpoint(a, "a"), self._endpoint(b, "b"), steps, method))

    def traverse(self, latent: Any, dim: int, values: Any) -> np.ndarray:
        """Images for `latent` (D,) with coordinate `dim` set to each of `values` in turn."""
        z = as_latent(latent, self.latent_dim)
        dim = checks.integer("dim", dim, minimum=0)
        if dim >= self.latent_dim:
            raise InputError(f"dim must be below latent_dim={self.latent_dim}, got {dim}")
        values = as_values(values)
        grid = np.repeat(z[None], len(values), axis=0)
        grid[:, dim] = values
        return self._decode(grid)

    def score(self, images: Any, k: int = 1, seed: int | None = 0) -> np.ndarray:
        """Each image's log-likelihood estimate in nats, float64 (N,): the ELBO for k=1 (one posterior
        sample for the reconstruction term, the KL in closed form; with a mixture prior, which has no closed
        form, the KL from the same sample), the importance-weighted bound
        with k samples for k > 1 (tighter, never below the ELBO on average). Higher means more typical.

        The noise (N, k, latent_dim) is normals 0 .. N * k * latent_dim - 1 of vaekit's portable generator for
        `seed` (see `prior`), in that order, so results do not depend on `batch_size` and equal those of the
        other vaekit runtimes; at most `batch_size` latents are decoded at once.
        """
        x = nchw_view(images, self.image_shape)
        k = checks.integer("k", k)
        seed = seed_or_fresh(seed)
        per_chunk = max(1, self.batch_size // k)
        scores = np.empty(len(x), dtype=np.float64)
        for start in range(0, len(x), per_chunk):
            scores[start : start + per_chunk] = self._score_chunk(x[start : start + per_chunk], k, seed, start)
        return scores

    def normality(self, images: Any, score: str = DEFAULT_SCORE, k: int = 1, seed: int | None = 0) -> np.ndarray:
        """Each image's `score` (one of `scores.SCORES`, docs/anomaly-scores.md), float64 (N,): higher is more
        typical. `k` and `seed` are `VAE.score`'s, for the scores built on the likelihood; `combined` also reads the
        bundle's reference figures (`score_references`), and says in one line when an older bundle lacks them."""
        return self.normalities(images, (score,), k, seed)[score]

    def normalities(self, images: Any, names: tuple[str, ...] = SCORES, k: int = 1,
                    seed: int | None = 0) -> dict[str, np.ndarray]:
        """The scores `names` of each image at once (one encoder pass per chunk), {name: float64 (N,)}."""
        names = tuple(check_name(n) for n in names)
        x = nchw_view(images, self.image_shape)
        k = checks.integer("k", k)
        seed = seed_or_fresh(seed)
        refs = combined_references(self.manifest) if COMBINED in names else {}
        parts = combined_parts(refs) if COMBINED in names else ()
        needed = (set(names) | set(parts)) - {COMBINED}
        if LATENT in needed and self.manifest.latent_pca is None:
            raise InputError("the bundle records no latent_pca (exported before vaekit recorded it), which the "
                             f"{LATENT!r} score needs; re-export it")
        if COLOUR in needed and self.manifest.colour_reference is None:
            raise InputError("the bundle records no colour_reference (exported before vaekit recorded it, or from a "
                             f"run trained before), which the {COLOUR!r} score needs; train and export again")
        if COMPLEXITY in needed:
            needed.add(LIKELIHOOD)
        found = {name: np.empty(len(x), dtype=np.float64) for name in needed}
        per_chunk = max(1, self.batch_size // k)
        for start in range(0, len(x), per_chunk):
            chunk = to_unit_float32(x[start : start + per_chunk])
            rows = slice(start, start + len(chunk))
            mean, logvar = self._encoder.run({"image": chunk}, ENCODER_OUTPUTS)
            if LIKELIHOOD in needed:
                found[LIKELIHOOD][rows] = self._score_chunk(chunk, k, seed, start, (mean, logvar))
            if RECONSTRUCTION in needed:
                params = dict(zip(PARAMS[self.likelihood], self._decoder.run({"latent": mean}, PARAMS[self.likelihood])))
                found[RECONSTRUCTION][rows] = (log_likelihood(chunk, params, self.likelihood)
                                               - best_log_likelihood(chunk, params, self.likelihood))
            if COMPLEXITY in needed:
                found[COMPLEXITY][rows] = found[LIKELIHOOD][rows] / math.log(2.0) + code_length(chunk)
            if LATENT in needed:
                found[LATENT][rows] = latent_log_density(mean, self.manifest.latent_pca)
            if PRIOR in needed:
                found[PRIOR][rows] = self.log_prior(mean)
            if COLOUR in needed:
                found[COLOUR][rows] = colour_log_density(image_colours(chunk), self.manifest.colour_reference)
        if COMBINED in names:
            found[COMBINED] = combined(found, refs, parts)
        return {name: found[name] for name in names}

    def verify(self) -> Verification:
        """Run the bundle's conformance vectors (reference inputs with the exporting torch model's outputs)
        through both graphs on this VAE's device and compare each output with its stored limit.

        `Verification.passed` says whether this machine computes what torch did at export; a bundle
        exported without vectors gives `checked=False` and the reason, and still works as before."""
        entry = self.manifest.conformance
        if self.path is None:
            return Verification(self.device, checked=False, reason="its graphs are held in memory, not in a bundle")
        if entry is None:
            return Verification(self.device, checked=False, reason="the bundle has no conformance vectors (exported "
                                "before vaekit stored them); re-export it to make it checkable")
        outputs = []
        for name, graph, item_shape in (("encoder", self._encoder, self.image_shape),
                                        ("decoder", self._decoder, (self.latent_dim,))):
            spec, tensor = getattr(entry, name), GRAPH_INPUTS[name]
            inputs = read_vector(self.path, spec.inputs[tensor], item_shape)
            names = list(spec.outputs)
            computed = self._batched(lambda x: graph.run({tensor: x}, names), inputs)  # noqa: B023 (used at once)
            outputs += compare(name, spec, dict(zip(names, computed)), self.path)
        return Verification(self.device, checked=True, outputs=tuple(outputs))

    # --- helpers -------------------------------------------------------------------------------

    def _batched(self, step: Callable[[np.ndarray], list[np.ndarray]], inputs: np.ndarray) -> list[np.ndarray]:
        """`step` over `inputs` in chunks of batch_size, its outputs gathered into preallocated arrays."""
        if 0 < len(inputs) <= self.batch_size:
            return step(inputs)  # one chunk: its outputs are already fresh arrays, no copy needed
        results: list[np.ndarray] = []
        for start in range(0, len(inputs), self.batch_size):
            parts = step(inputs[start : start + self.batch_size])
            if not results:
                results = [np.empty((len(inputs), *p.shape[1:]), dtype=p.dtype) for p in parts]
            for result, part in zip(results, parts):
                result[start : start + len(part)] = part
        return results

    def _encode_step(self, images: np.ndarray) -> list[np.ndarray]:
        return self._encoder.run({"image": to_unit_float32(images)}, ENCODER_OUTPUTS)

    def _reconstruct_step(self, images: np.ndarray) -> list[np.ndarray]:
        mean = self._encoder.run({"image": to_unit_float32(images)}, ["mean"], to_host=False)[0]  # stays on CUDA
        return self._decoder.run({"latent": mean}, ["image"])

    def _decode(self, latents: np.ndarray) -> np.ndarray:
        return self._batched(lambda z: self._decoder.run({"latent": z}, ["image"]), latents)[0]

    def _endpoint(self, value: Any, name: str) -> np.ndarray:
        """An interpolation end as a latent: 1-D input is a latent, anything else one image (its mean)."""
        try:
            if checks.numeric_array(value, name).ndim == 1:
                return as_latent(value, self.latent_dim)
            images = as_image_batch(value, self.image_shape)
        except ValueError as e:
            raise InputError(f"{name}: {e} (pass one image, or one latent of size {self.latent_dim})") from e
        if len(images) != 1:
            raise InputError(f"{name} must be one image or one latent of size {self.latent_dim}, "
                             f"got a batch of {len(images)} images")
        return self._encode_step(images)[0][0]

    def _score_chunk(self, x: np.ndarray, k: int, seed: int, first: int,
                     posterior: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """Scores of a few images (the first is image `first` of the call), decoding their k posterior samples
        at most batch_size at a time; `posterior`: their (mean, logvar) when already encoded."""
        x = to_unit_float32(x)
        mean, logvar = posterior if posterior is not None else self._encoder.run({"image": x}, ENCODER_OUTPUTS)
        std = np.exp(0.5 * logvar)
        names = PARAMS[self.likelihood]
        m, block = len(x), max(1, self.batch_size // len(x))
        log_w = np.empty((m, k), dtype=np.float64)
        for j in range(0, k, block):
            kb = min(block, k - j)
            # normals (first*k + j)*D onwards: contiguous, as a block holds either all k samples of each image or one image's
            eps = standard_normal(seed, (first * k + j) * self.latent_dim, m * kb * self.latent_dim).reshape(m, kb, -1)
            z = mean[:, None] + std[:, None] * eps
            outputs = self._decoder.run({"latent": z.reshape(m * kb, self.latent_dim)}, names)
            params = {n: p.reshape(m, kb, *p.shape[1:]) for n, p in zip(names, outputs)}
            log_px = log_likelihood(x[:, None], params, self.likelihood)
            if k == 1 and self.prior is None:
                log_w[:, j : j + kb] = log_px - kl_to_prior(mean, logvar)[:, None]
            else:
                log_prior = self.log_prior(z)
                log_w[:, j : j + kb] = log_px + log_prior - log_posterior(eps, logvar[:, None])
        return log_w[:, 0] if k == 1 else log_mean_exp(log_w, axis=1)
