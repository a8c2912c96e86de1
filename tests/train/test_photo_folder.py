"""A newcomer's first run on a folder of colour photos, as the README tells it: `vaekit-train --data FOLDER
--max-time T` with no other flag picks the photo recipe, shows its progress and ends on time; the run exports, and
the app's handlers sample and reconstruct from the bundle."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

MAX_TIME = 12


def _photos(folder: Path, n: int = 60, size: int = 32) -> Path:
    """`n` colour PNGs of smooth gradients and a bright patch, like small photo crops."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, size)
    for i in range(n):
        image = 255 * (ramp[None, :, None] * rng.random(3) + ramp[:, None, None] * rng.random(3)) / 2
        top, left = rng.integers(0, size - 8, 2)
        image[top : top + 8, left : left + 8] = rng.random(3) * 255
        Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(folder / f"photo{i:03d}.png")
    return folder


def test_a_photo_folder_gets_the_photo_recipe_ends_on_time_and_serves(tmp_path: Path) -> None:
    from vaekit.export import export_run
    from vaekit.runtime import VAE
    from vaekit.ui.handlers import Handlers

    folder, run = _photos(tmp_path / "photos"), tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "vaekit.train", "--data", str(folder), "--max-time", str(MAX_TIME),
                           "--out", str(run)], capture_output=True, text=True, check=True)
    assert "training:" in done.stderr and "run written to" in done.stdout  # the progress bar, then where the run is
    config, summary = (json.loads((run / name).read_text()) for name in ("config.json", "summary.json"))
    model, why = config["model"], config["why"]
    assert (model["kind"], model["likelihood"], model["variance"], model["prior_fit"]) == ("conv", "gaussian",
                                                                                           "analytic", True)
    assert all(key in why for key in ("model", "likelihood", "variance", "prior_fit", "epochs"))
    assert summary["wall_time_s"] <= MAX_TIME * 1.15  # the final estimate included (its seconds are in the summary)
    bundle = export_run(run, tmp_path / "bundle")
    vae = VAE.load(bundle, device="cpu")
    assert vae.manifest.prior is not None  # the fitted mixture, what the app samples from
    handlers = Handlers(vae, tmp_path / "work")
    assert handlers.sample(4, seed=0, temperature=1.0).size[0] > 0
    original, rebuilt, score, reading = handlers.reconstruct(str(folder / "photo000.png"))
    assert rebuilt.size == original.size and np.isfinite(score) and reading
