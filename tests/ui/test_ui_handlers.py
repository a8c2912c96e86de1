"""Each handler of the app, called directly on tiny exported bundles (grayscale MLP and RGB conv)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from bundle_helpers import N_HELDOUT
from PIL import Image
from ui_helpers import write_image

from vaekit.runtime import VAE
from vaekit.runtime.bundle import latent_pca
from vaekit.runtime.scores import DEFAULT_SCORE, UNITS
from vaekit.ui.app import build_app
from vaekit.ui.axes import BASES, MAX_SLIDERS, principal_axes, reencoded_codes
from vaekit.ui.display import enlarge, tile
from vaekit.ui.handlers import MAX_SAMPLES, MAX_STEPS, Handlers
from vaekit.ui.uploads import UploadError, read_upload


def _native(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """An enlarged image brought back to `size` (H, W) by taking one pixel per block."""
    arr = np.asarray(image)
    fy, fx = arr.shape[0] // size[0], arr.shape[1] // size[1]
    assert arr.shape[0] == fy * size[0] and arr.shape[1] == fx * size[1], "not a whole enlargement"
    small = arr[::fy, ::fx]
    assert np.array_equal(np.asarray(Image.fromarray(small).resize(arr.shape[1::-1], Image.Resampling.NEAREST)), arr)
    return small


def test_sample_grid_is_the_runtimes_samples_enlarged(handlers: Handlers) -> None:
    vae = handlers.vae
    grid = handlers.sample(5, 7, 0.8)
    assert np.array_equal(np.asarray(grid), np.asarray(tile(vae.sample(5, seed=7, temperature=0.8), nrow=3)))
    assert np.array_equal(np.asarray(handlers.sample(5.0, 7.0, 0.8)), np.asarray(grid))  # what web forms send
    assert not np.array_equal(np.asarray(handlers.sample(5, 8, 0.8)), np.asarray(grid))
    _, h, w = vae.image_shape
    _native(grid, (2 * (h + 1) + 1, 3 * (w + 1) + 1))  # nearest-neighbour enlargement of a 3x2 grid


@pytest.mark.parametrize("args, message", [
    ((0, 0, 1.0), "number of samples must be a whole number from 1 to 100"),
    ((MAX_SAMPLES + 1, 0, 1.0), "number of samples"),
    ((4, -1, 1.0), "seed must be a whole number"),
    ((4, 1.5, 1.0), "seed must be a whole number"),
    ((4, 0, -0.1), "temperature must be a number from 0 to 3"),
    ((4, 0, "hot"), "temperature"),
])
def test_sample_refuses_bad_values(handlers: Handlers, args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        handlers.sample(*args)


def test_new_seed_gives_a_fresh_seed_and_its_grid(handlers: Handlers) -> None:
    seeds = set()
    for _ in range(3):
        seed, grid = handlers.new_seed(4, 1.0)
        assert 0 <= seed < 1_000_000
        assert np.array_equal(np.asarray(grid), np.asarray(handlers.sample(4, seed, 1.0)))
        seeds.add(seed)
    assert len(seeds) > 1


def test_seed_latent_is_the_first_sample_of_that_seed(handlers: Handlers) -> None:
    vae = handlers.vae
    assert np.allclose(vae.decode(handlers.seed_latent(11)), vae.sample(3, seed=11)[:1], atol=1e-6)


def test_interpolate_seeds_gives_a_strip_and_a_looping_gif(handlers: Handlers) -> None:
    vae = handlers.vae
    strip, gif = handlers.interpolate_seeds(3, 4, 5, "lerp")
    expected = vae.interpolate(handlers.seed_latent(3), handlers.seed_latent(4), steps=5, method="lerp")
    assert np.array_equal(np.asarray(strip), np.asarray(tile(expected, nrow=5, target=800)))
    assert Path(gif).is_relative_to(handlers.workdir)
    with Image.open(gif) as animation:
        assert animation.format == "GIF" and animation.n_frames == 8
    again = handlers.interpolate_seeds(3, 4, 5, "lerp")[1]
    assert again == gif  # the same request writes nothing new
    assert not np.array_equal(np.asarray(handlers.interpolate_seeds(3, 4, 5, "slerp")[0]), np.asarray(strip))


@pytest.mark.parametrize("args, message", [
    ((0, 1, 1, "slerp"), "steps must be a whole number from 2 to 24"),
    ((0, 1, MAX_STEPS + 1, "slerp"), "steps"),
    ((0, 1, 4, "spline"), "method must be one of 'slerp', 'lerp'"),
    ((0, -3, 4, "lerp"), "seed"),
])
def test_interpolate_refuses_bad_values(handlers: Handlers, args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        handlers.interpolate_seeds(*args)


def test_interpolate_images_walks_between_their_codes(handlers: Handlers, tmp_path: Path) -> None:
    vae = handlers.vae
    a, b = write_image(tmp_path / "a.png", mode="RGB", seed=1), write_image(tmp_path / "b.jpg", mode="L", seed=2)
    strip, gif = handlers.interpolate_images(str(a), str(b), 4, "slerp")
    ends = [read_upload(p, vae.image_shape) for p in (a, b)]
    assert np.array_equal(np.asarray(strip), np.asarray(tile(vae.interpolate(*ends, steps=4), nrow=4, target=800)))
    with pytest.raises(UploadError, match="image B: no image yet"):
        handlers.interpolate_images(str(a), None, 4, "slerp")
    (tmp_path / "notes.txt").write_text("not a picture")
    with pytest.raises(UploadError, match="image A: this file is not an image"):
        handlers.interpolate_images(str(tmp_path / "notes.txt"), str(b), 4, "slerp")


def test_explore_decodes_the_point_the_sliders_name(handlers: Handlers) -> None:
    vae = handlers.vae
    k = min(vae.latent_dim, MAX_SLIDERS)
    assert handlers.sliders == k
    for basis in BASES:
        axes = handlers.axes[basis]
        assert len(axes.labels) == k
        values = np.linspace(-2, 2, k)
        image = handlers.explore(basis, list(values))
        assert np.array_equal(np.asarray(image), np.asarray(enlarge(vae.decode(axes.latent(values))[0])))
        moved = values.copy()
        moved[0] += 1.0
        assert not np.array_equal(np.asarray(handlers.explore(basis, list(moved))), np.asarray(image))


def test_explore_moves_along_the_heldout_axes_the_manifest_records(handlers: Handlers) -> None:
    pca, k = handlers.vae.manifest.latent_pca, handlers.sliders
    assert pca is not None
    main = handlers.axes["main directions"]
    assert np.array_equal(main.center, pca.mean) and np.array_equal(main.vectors, np.array(pca.axes)[:k])
    assert main.notes[0] == f"{pca.variance[0] / sum(pca.variance):.0%} of the codes' variance"
    variance = (np.array(pca.axes) ** 2 * np.array(pca.variance)[:, None]).sum(axis=0)
    assert handlers.axes["latent dimensions"].labels == [f"dimension {d}" for d in np.argsort(-variance)[:k]]
    assert handlers.axes_source == f"the latent codes of {N_HELDOUT} held-out images, recorded at export"


def test_explore_on_a_bundle_without_latent_pca_says_where_its_axes_come_from(ui_bundles: dict[str, Path],
                                                                               tmp_path: Path) -> None:
    """A bundle exported before latent_pca existed: axes from the model's own samples, and the page says so."""
    bundle = Path(shutil.copytree(ui_bundles["gray"], tmp_path / "older"))
    manifest = json.loads((bundle / "manifest.json").read_text())
    del manifest["latent_pca"]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    handlers = Handlers(VAE.load(bundle, device="cpu"), tmp_path)
    expected = principal_axes(latent_pca(reencoded_codes(handlers.vae)), handlers.sliders)
    assert np.array_equal(handlers.axes["main directions"].vectors, expected.vectors)
    assert handlers.axes_source.startswith("the codes of 1,024 images the model generates, encoded again")
    assert "records no held-out codes (re-export it" in handlers.axes_source
    for path, source in ((ui_bundles["gray"], f"the latent codes of {N_HELDOUT} held-out images"),
                         (bundle, "the codes of 1,024 images the model generates")):
        radio = [c["props"] for c in build_app(path, device="cpu").get_config_file()["components"]
                 if c["props"].get("elem_id") == "explore-basis"]
        assert radio[0]["info"].startswith(f"main directions: the principal axes of {source}")


def test_explore_refuses_bad_values(handlers: Handlers) -> None:
    k = handlers.sliders
    with pytest.raises(ValueError, match=f"expected {k} slider values, got {k + 1}"):
        handlers.explore(BASES[0], [0.0] * (k + 1))
    with pytest.raises(ValueError, match="direction 1 must be a number from -3 to 3"):
        handlers.explore(BASES[0], [4.0] + [0.0] * (k - 1))
    with pytest.raises(ValueError, match="basis must be one of"):
        handlers.explore("diagonals", [0.0] * k)


def test_explore_start_goes_to_the_centre_or_a_seed(handlers: Handlers) -> None:
    k = handlers.sliders
    values, image = handlers.explore_start(BASES[1], None)
    assert values == [0.0] * k
    assert np.array_equal(np.asarray(image), np.asarray(handlers.explore(BASES[1], values)))
    values, image = handlers.explore_start(BASES[1], 5)
    axes = handlers.axes[BASES[1]]
    expected = np.clip(axes.coordinates(handlers.seed_latent(5)), -3, 3)
    assert np.allclose(values, expected, atol=0.005) and any(values)
    assert np.array_equal(np.asarray(image), np.asarray(handlers.explore(BASES[1], values)))


def test_reconstruct_scores_against_the_reference_images(handlers: Handlers, tmp_path: Path) -> None:
    vae = handlers.vae
    path = write_image(tmp_path / "in.png", size=(40, 30), mode="RGB")
    seen, rebuilt, score, reading = handlers.reconstruct(str(path))
    x = read_upload(path, vae.image_shape)
    reference = vae.manifest.score_references[DEFAULT_SCORE]
    assert score == pytest.approx(float(vae.normality(x, k=reference.k, seed=reference.seed)[0]))
    assert np.array_equal(np.asarray(seen), np.asarray(enlarge(x)))
    assert np.array_equal(np.asarray(rebuilt), np.asarray(enlarge(vae.reconstruct(x)[0])))
    assert f"{DEFAULT_SCORE} score, {score:.1f} {UNITS[DEFAULT_SCORE]}" in reading
    assert f"{reference.n} reference images" in reading
    _native(rebuilt, vae.image_shape[1:])


def test_reconstruct_reads_a_reference_like_image_as_typical(handlers: Handlers, tmp_path: Path) -> None:
    """The reference images were uniform noise; a fresh noise image must read as typical."""
    shape = handlers.vae.image_shape
    noise = np.random.default_rng(5).integers(0, 256, (shape[1], shape[2], shape[0]), dtype=np.uint8)
    Image.fromarray(noise.squeeze()).save(tmp_path / "noise.png")
    assert "**Typical.**" in handlers.reconstruct(str(tmp_path / "noise.png"))[3]


@pytest.mark.parametrize("content, message", [(None, "no image yet"), (b"plain text", "not an image")])
def test_reconstruct_refuses_what_is_not_an_image(handlers: Handlers, tmp_path: Path, content: bytes | None,
                                                 message: str) -> None:
    path = None
    if content is not None:
        path = tmp_path / "upload.png"
        path.write_bytes(content)
    with pytest.raises(UploadError, match=message):
        handlers.reconstruct(path and str(path))


def test_model_info_summarises_the_manifest(handlers: Handlers) -> None:
    info = handlers.model_info()
    s = info["summary"]
    assert info["manifest"] == handlers.vae.manifest.to_json()
    assert s["Data"].startswith("random") and s["Training"] == "1 epochs, 3 steps"
    assert s["Test NLL"] == "39.25 nats, 0.125 bits/dim (IWAE k=10, 32 test images)" and s["Test ELBO"] == "-40.50 nats"
    assert s["Providers in use"] == "CPUExecutionProvider (device: cpu)"
    assert s["Parity"].startswith("passed") and f"latent dimension {handlers.vae.latent_dim}" in s["Model"]
    assert s["Images"] == ("8x8, grayscale" if handlers.vae.image_shape[0] == 1 else "64x64, RGB")


def test_colour_bundle_is_shown_in_colour_at_a_sensible_size(ui_bundles: dict[str, Path], tmp_path: Path) -> None:
    """64x64 RGB: grids stay RGB, one image is enlarged 5x (to about 320 px), a 6x6 grid is not enlarged."""
    handlers = Handlers(VAE.load(ui_bundles["rgb"], device="cpu"), tmp_path)
    assert handlers.vae.image_shape == (3, 64, 64)
    grid = handlers.sample(36, 0, 1.0)
    assert grid.mode == "RGB" and grid.size == (6 * 65 + 1, 6 * 65 + 1)
    one = enlarge(handlers.vae.sample(1, seed=0)[0])
    assert one.mode == "RGB" and one.size == (320, 320)
