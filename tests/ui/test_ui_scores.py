"""The Reconstruct tab's reading of the default anomaly score, and its fallback on an older bundle."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bundle_helpers import TinyBundles
from ui_helpers import BUNDLES, write_image

from vaekit.runtime import VAE
from vaekit.runtime.manifest import ScoreQuantiles
from vaekit.runtime.scores import DEFAULT_SCORE, UNITS
from vaekit.ui.handlers import Handlers
from vaekit.ui.score_text import read_score

QUANTILES = ScoreQuantiles(k=1, n=50, q={"0.01": -3.0, "0.05": -2.0, "0.5": 0.0, "0.95": 2.0, "0.99": 3.0})


def test_a_reading_names_its_score_and_unit_and_any_note() -> None:
    text = read_score(-2.5, QUANTILES, DEFAULT_SCORE).text
    assert text.startswith("**Unusual.**") and f"Its {DEFAULT_SCORE} score, -2.5 {UNITS[DEFAULT_SCORE]}," in text
    noted = read_score(0.5, QUANTILES, "likelihood", "the bundle is older").text
    assert "0.5 nats" in noted and noted.endswith("(Note: the bundle is older.)")


def test_an_older_bundle_reads_the_likelihood_and_says_so(tiny_bundles: TinyBundles, tmp_path: Path) -> None:
    old = Path(shutil.copytree(tiny_bundles[BUNDLES["gray"]].path, tmp_path / "old"))
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["score_references"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    handlers = Handlers(VAE.load(old, device="cpu"), tmp_path)
    score, text = handlers.reconstruct(str(write_image(tmp_path / "in.png")))[2:]
    x = handlers.upload(str(tmp_path / "in.png"))
    assert score == float(handlers.vae.score(x)[0])
    assert f"likelihood score, {score:.1f} nats" in text and f"predates the '{DEFAULT_SCORE}' score" in text
