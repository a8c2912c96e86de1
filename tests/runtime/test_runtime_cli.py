"""`vaekit-sample` end to end: sample grids, interpolation strips, and errors without tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bundle_helpers import TinyBundle, random_images

from vaekit.runtime import load_image, save_png, to_uint8
from vaekit.runtime.sample_cli import main

pytest.importorskip("PIL", reason="the command writes PNGs with Pillow")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The command as users run it, in a fresh interpreter."""
    return subprocess.run([sys.executable, "-m", "vaekit.runtime.sample_cli", *args], capture_output=True, text=True,
                          timeout=120)


def test_sample_grid(exported: TinyBundle, tmp_path: Path) -> None:
    out = tmp_path / "grid.png"
    result = _cli(str(exported.path), "-n", "6", "--seed", "3", "--temperature", "0.8", "--scale", "2",
                  "--device", "cpu", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "wrote 6 samples" in result.stdout and "device: cpu" in result.stdout
    c, h, w = exported.model.config.image_shape
    grid = load_image(out, c)
    assert grid.shape == (2 * (2 * (h + 2) + 2), 2 * (3 * (w + 2) + 2), c)  # 3 per row, 2 rows, doubled
    assert main([str(exported.path), "-n", "6", "--seed", "3", "--temperature", "0.8", "--scale", "2",
                 "--out", str(tmp_path / "again.png")]) == 0
    np.testing.assert_array_equal(load_image(tmp_path / "again.png", c), grid)  # seeded: same picture


def test_interpolation_strip(exported: TinyBundle, tmp_path: Path) -> None:
    c, h, w = exported.model.config.image_shape
    a, b = (save_png(to_uint8(img), tmp_path / f"{name}.png")
            for name, img in zip("ab", random_images((c, h, w), 2)))
    out = tmp_path / "strip.png"
    code = main([str(exported.path), "--interpolate", str(a), str(b), "--steps", "5", "--method", "lerp",
                 "--out", str(out)])
    assert code == 0
    assert load_image(out, c).shape == (h + 4, 5 * (w + 2) + 2, c)


def test_errors_are_one_line_without_traceback(exported: TinyBundle, tmp_path: Path) -> None:
    missing = _cli(str(tmp_path / "nope"), "--out", str(tmp_path / "x.png"))
    assert missing.returncode == 1 and "vaekit-sample: error:" in missing.stderr
    assert "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    big = save_png(np.zeros((30, 30), np.uint8), tmp_path / "big.png")
    wrong = _cli(str(exported.path), "--interpolate", str(big), str(big), "--out", str(tmp_path / "x.png"))
    assert wrong.returncode == 1 and f"{big}: images have shape (30, 30" in wrong.stderr
    assert "8x8 images" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    assert main([str(exported.path), "-n", "0", "--out", str(tmp_path / "x.png")]) == 1
    assert main([str(exported.path), "--interpolate", str(tmp_path / "none.png"), str(big),
                 "--out", str(tmp_path / "x.png")]) == 1
    assert not (tmp_path / "x.png").exists()
