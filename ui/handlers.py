"""What the app does, as plain methods of plain values: numbers, strings and uploaded file paths in,
Pillow images (already enlarged for the page), text and file paths out.

The page and the API call these through `vaekit.ui.app`; unit tests call them directly. Bad input
raises ValueError (UploadError for files) with a message meant for the person at the page.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vaekit.runtime import VAE, checks
from vaekit.runtime.choices import METHODS  # the paths VAE.interpolate takes
from vaekit.runtime.errors import InputError
from vaekit.runtime.scores import choose

from .axes import BASES, explore_axes
from .display import STRIP_PX, enlarge, gif_bytes, tile, write_once
from .model_card import summary
from .score_text import read_score
from .uploads import UploadError, read_upload

MAX_SAMPLES = 100
MAX_STEPS = 24
MAX_TEMPERATURE = 3.0
SLIDER_RANGE = 3.0  # sliders move each coordinate within [-3, 3], the prior's plausible range
MAX_SEED = 2**32 - 1
NEW_SEED_BELOW = 1_000_000  # fresh seeds are short, so people can read them out and type them back


def whole(name: str, value: Any, low: int, high: int) -> int:
    """`value` as an int in [low, high]; integral floats (web forms send 3 as 3.0) are accepted."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return checks.integer(name, value, low, high)


def number(name: str, value: Any, low: float, high: float) -> float:
    """`value` as a float in [low, high]."""
    return checks.real(name, value, low, high)


def choice(name: str, value: Any, options: Sequence[str]) -> str:
    """`value` if it is one of `options`."""
    if value in options:
        return value
    raise InputError(f"{name} must be one of {', '.join(map(repr, options))}, got {value!r}")


class Handlers:
    """The app's actions on one loaded bundle; `workdir` receives the GIFs it writes."""

    def __init__(self, vae: VAE, workdir: str | os.PathLike[str]) -> None:
        self.vae = vae
        self.workdir = Path(workdir)
        self.verification = vae.verify()  # conformance vectors on this machine; build_app refuses a failing bundle
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
        """The latent that seed `seed` stands for: the first latent `VAE.sample(n, seed)` decodes."""
        return self.vae.prior_latents(1, whole("seed", seed, 0, MAX_SEED))[0]

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
            raise InputError(f"expected {len(axes.labels)} slider values, got {len(values)}")
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
            raise UploadError(f"{name}: {e}") from e

    def reconstruct(self, image: str | None) -> tuple[Image.Image, Image.Image, float, str]:
        """The uploaded image as the model sees it, its reconstruction, its default score (`scores.choose`; k
        and seed as recorded for the reference images) and what that score means."""
        x = self.upload(image)
        chosen = choose(self.vae.manifest)
        score = float(self.vae.normality(x, chosen.name, k=chosen.reference.k, seed=chosen.reference.seed)[0])
        return (enlarge(x), enlarge(self.vae.reconstruct(x)[0]), score,
                read_score(score, chosen.reference, chosen.name, chosen.note).text)

    # --- Model --------------------------------------------------------------------------------

    def model_info(self) -> dict[str, Any]:
        """The readable summary of the bundle and its full manifest."""
        return {"summary": summary(self.vae, self.verification), "manifest": self.vae.manifest.to_json()}
