"""What the app does, as plain methods of plain values: numbers, strings and uploaded file paths in,
Pillow images (already enlarged for the page), text and file paths out.

The page and the API call these through `vaekit.ui.app`; unit tests call them directly. Bad input
raises ValueError (UploadError for files) with a message meant for the person at the page.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vaekit.runtime import VAE
from vaekit.runtime.latents import METHODS  # the paths VAE.interpolate takes
from vaekit.runtime.reading import reference_setting

from .axes import BASES, explore_axes
from .display import STRIP_PX, enlarge, gif_bytes, tile, write_once
from .model_card import summary
from .reading import read_score
from .uploads import UploadError, read_upload

MAX_SAMPLES = 100
MAX_STEPS = 24
MAX_TEMPERATURE = 3.0
SLIDER_RANGE = 3.0  # sliders move each coordinate within [-3, 3], the prior's plausible range
MAX_SEED = 2**32 - 1
NEW_SEED_BELOW = 1_000_000  # fresh seeds are short, so people can read them out and type them back


def whole(name: str, value: Any, low: int, high: int) -> int:
    """`value` as an int in [low, high]; integral floats (what web forms send) are accepted."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and value == int(value):
        value = int(value)
        if low <= value <= high:
            return value
    raise ValueError(f"{name} must be a whole number from {low} to {high}, got {value!r}")


def number(name: str, value: Any, low: float, high: float) -> float:
    """`value` as a float in [low, high]."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and low <= value <= high:
        return float(value)
    raise ValueError(f"{name} must be a number from {low:g} to {high:g}, got {value!r}")


def choice(name: str, value: Any, options: Sequence[str]) -> str:
    """`value` if it is one of `options`."""
    if value in options:
        return value
    raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}, got {value!r}")


class Handlers:
    """The app's actions on one loaded bundle; `workdir` receives the GIFs it writes."""

    def __init__(self, vae: VAE, workdir: str | os.PathLike[str]) -> None:
        self.vae = vae
        self.workdir = Path(workdir)
        self.axes, self.axes_source = explore_axes(vae)  # the Explore bases, and which latent codes they come from
        self.sliders = len(self.axes[BASES[0]].labels)

    # --- Sample -------------------------------------------------------------------------------

    def sample(self, n: int, seed: int, temperature: float) -> Image.Image:
        """A square-ish grid of `n` samples drawn with `seed` at `temperature`."""
        n = whole("number of samples", n, 1, MAX_SAMPLES)
        images = self.vae.sample(n, seed=whole("seed", seed, 0, MAX_SEED),
                                 temperature=number("temperature", temperature, 0.0, MAX_TEMPERATURE))
        return tile(images, nrow=math.ceil(math.sqrt(n)))

    def new_seed(self, n: int, temperature: float) -> tuple[int, Image.Image]:
        """A fresh random seed and its grid."""
        seed = int(np.random.default_rng().integers(NEW_SEED_BELOW))
        return seed, self.sample(n, seed, temperature)

    # --- Interpolate --------------------------------------------------------------------------

    def seed_latent(self, seed: int) -> np.ndarray:
        """The latent that seed `seed` stands for: the first latent `VAE.sample(n, seed)` draws."""
        rng = np.random.default_rng(whole("seed", seed, 0, MAX_SEED))
        return rng.standard_normal((1, self.vae.latent_dim), dtype=np.float32)[0]

    def _interpolate(self, a: np.ndarray, b: np.ndarray, steps: int, method: str) -> tuple[Image.Image, str]:
        images = self.vae.interpolate(a, b, steps=whole("steps", steps, 2, MAX_STEPS),
                                      method=choice("method", method, METHODS))
        gif = write_once(gif_bytes(images), self.workdir, "interpolation.gif")
        return tile(images, nrow=len(images), target=STRIP_PX), str(gif)

    def interpolate_seeds(self, seed_a: int, seed_b: int, steps: int, method: str) -> tuple[Image.Image, str]:
        """The strip and the GIF path of the walk between the latents of two seeds."""
        return self._interpolate(self.seed_latent(seed_a), self.seed_latent(seed_b), steps, method)

    def interpolate_images(self, image_a: str | None, image_b: str | None, steps: int,
                           method: str) -> tuple[Image.Image, str]:
        """The strip and the GIF path of the walk between the codes of two uploaded image files."""
        ends = [self.upload(path, name) for path, name in ((image_a, "image A"), (image_b, "image B"))]
        return self._interpolate(*ends, steps, method)

    # --- Explore ------------------------------------------------------------------------------

    def explore(self, basis: str, values: Sequence[float]) -> Image.Image:
        """The image at these slider values along `basis` ("main directions" or "latent dimensions")."""
        axes = self.axes[choice("basis", basis, BASES)]
        if len(values) != len(axes.labels):
            raise ValueError(f"expected {len(axes.labels)} slider values, got {len(values)}")
        coords = np.array([number(label, v, -SLIDER_RANGE, SLIDER_RANGE) for label, v in zip(axes.labels, values)])
        return enlarge(self.vae.decode(axes.latent(coords))[0])

    def explore_start(self, basis: str, seed: int | None) -> tuple[list[float], Image.Image]:
        """Slider values and image of a starting point: the centre (seed None) or the latent of `seed`,
        projected on the sliders' directions and kept within their range."""
        axes = self.axes[choice("basis", basis, BASES)]
        if seed is None:
            coords = np.zeros(len(axes.labels), dtype=np.float32)
        else:
            coords = np.clip(axes.coordinates(self.seed_latent(seed)), -SLIDER_RANGE, SLIDER_RANGE)
        values = [round(float(v), 2) for v in coords]
        return values, self.explore(basis, values)

    # --- Reconstruct --------------------------------------------------------------------------

    def upload(self, path: str | None, name: str = "image") -> np.ndarray:
        """An uploaded file as the bundle's uint8 HWC image; UploadError names `name` when it is unusable."""
        if not path:
            raise UploadError(f"{name}: no image yet; upload one first")
        try:
            return read_upload(path, self.vae.image_shape)
        except UploadError as e:
            raise UploadError(f"{name}: {e}") from None

    def reconstruct(self, image: str | None) -> tuple[Image.Image, Image.Image, float, str]:
        """The uploaded image as the model sees it, its reconstruction, its score (nats, k and seed as
        recorded for the reference images) and what that score means."""
        x = self.upload(image)
        k, seed = reference_setting(self.vae.manifest)
        score = float(self.vae.score(x, k=k, seed=seed)[0])
        return (enlarge(x), enlarge(self.vae.reconstruct(x)[0]), score,
                read_score(score, self.vae.manifest["score_quantiles"]).text)

    # --- Model --------------------------------------------------------------------------------

    def model_info(self) -> dict[str, Any]:
        """The readable summary of the bundle and its full manifest."""
        return {"summary": summary(self.vae), "manifest": self.vae.manifest}
