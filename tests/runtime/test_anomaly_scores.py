"""The anomaly scores (runtime/scores.py, runtime/complexity.py): each as docs/anomaly-scores.md defines it,
recorded by export for every score, and readable (or refused in one line) on bundles exported before."""

from __future__ import annotations

import csv
import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from bundle_helpers import TinyBundle, random_images

from vaekit.export.scores import unseen_latent_scores
from vaekit.runtime import VAE, score_cli, to_uint8
from vaekit.runtime.complexity import code_length, quantize
from vaekit.runtime.errors import InputError
from vaekit.runtime.likelihood import best_log_likelihood, log_standard_normal
from vaekit.runtime.scores import (
    COLOUR,
    COMBINED,
    COMBINED_PARTS,
    COMPLEXITY,
    DEFAULT_SCORE,
    FIRST_COMBINED_PARTS,
    LATENT,
    LIKELIHOOD,
    PRIOR,
    RECONSTRUCTION,
    SCORES,
    colour_log_density,
    image_colours,
    latent_log_density,
    references,
)


def test_code_length_known_answers() -> None:
    flat = np.zeros((1, 1, 28, 28), np.float32)
    # the first pixel costs 3 bits (k = 2 from the start state), the next two 2 bits, then 1 bit each
    assert code_length(flat).tolist() == [3 + 2 + 2 + 781]
    ramp = np.tile(np.arange(8, dtype=np.float32) / 255, (1, 1, 8, 1))
    assert code_length(ramp)[0] > code_length(np.zeros((1, 1, 8, 8)))[0]


def test_code_length_orders_images_by_complexity_and_ignores_the_batch() -> None:
    rng = np.random.default_rng(0)
    noise = rng.random((4, 3, 16, 16))
    smooth = np.repeat(np.linspace(0, 1, 16)[None, None, None], 4, 0) * np.ones((4, 3, 16, 1))
    assert (code_length(noise) > code_length(smooth) + 1000).all()
    both = np.concatenate([noise, smooth])
    assert code_length(both).tolist() == [*code_length(noise).tolist(), *code_length(smooth).tolist()]
    assert code_length(both[2:3]).tolist() == [code_length(both)[2]]


def test_quantize_gives_back_the_uint8_levels() -> None:
    levels = np.arange(256, dtype=np.uint8)
    assert (quantize(levels.astype(np.float32) / np.float32(255)) == levels).all()
    assert (quantize(levels / 255.0) == levels).all()


def test_each_score_is_as_defined(exported: TinyBundle, vae: VAE) -> None:
    x = random_images(vae.image_shape, 11, seed=5)
    got = vae.normalities(x, SCORES, k=1, seed=2)
    assert set(got) == set(SCORES) and all(v.shape == (11,) and v.dtype == np.float64 for v in got.values())
    assert np.array_equal(got["likelihood"], vae.score(x, k=1, seed=2))
    assert np.allclose(got["complexity"], got["likelihood"] / math.log(2.0) + code_length(x), rtol=0, atol=1e-9)
    params = vae.decode_params(vae.encode(x)[0])
    from vaekit.runtime.likelihood import log_likelihood

    want = log_likelihood(x, params, vae.likelihood) - best_log_likelihood(x, params, vae.likelihood)
    assert np.allclose(got["reconstruction"], want, rtol=1e-6)
    assert (got["reconstruction"] <= 1e-6).all()  # no decoder beats the image itself
    codes = vae.encode(x)[0]
    assert np.allclose(got["latent"], latent_log_density(codes, vae.manifest.latent_pca))
    prior = vae.prior.log_prob(codes) if vae.prior is not None else log_standard_normal(codes)
    assert np.array_equal(got["prior"], prior)
    ref = vae.manifest.colour_reference  # a Gaussian kernel density of the images' average colours, by hand:
    colours = x.astype(np.float64).mean(axis=(2, 3))
    kernels = [np.prod([math.exp(-0.5 * ((c[i] - row[i]) / ref.bandwidth[i]) ** 2) / (ref.bandwidth[i] * math.sqrt(2 * math.pi))
                        for i in range(len(c))]) for c in colours for row in ref.means]
    assert np.allclose(got["colour"], np.log(np.reshape(kernels, (11, ref.n)).mean(axis=1)), rtol=1e-9)
    refs = references(vae.manifest)
    assert refs[COMBINED].parts == list(COMBINED_PARTS)  # the bundle names what its `combined` averages
    z = [(got[n] - refs[n].mean) / refs[n].std for n in COMBINED_PARTS]
    assert np.allclose(got[COMBINED], np.mean(z, axis=0))
    assert np.array_equal(vae.normality(x, seed=2), got[DEFAULT_SCORE])
    # chunks do not change anything: the same seeded noise per image
    again = exported.load(batch_size=3).normalities(x, SCORES, k=1, seed=2)
    assert all(np.allclose(again[n], got[n], rtol=1e-9, atol=1e-9) for n in SCORES)


def test_export_records_every_score_of_the_heldout_images(exported: TinyBundle, vae: VAE) -> None:
    recorded = vae.manifest.score_references
    assert recorded is not None
    assert set(recorded) == set(SCORES)
    scores = vae.normalities(exported.heldout, (LIKELIHOOD, COMPLEXITY, RECONSTRUCTION, PRIOR, COLOUR), k=1, seed=0)
    codes = vae.encode(exported.heldout)[0]
    scores[LATENT] = unseen_latent_scores(codes)  # each code against axes fitted without it, as a new image's
    assert scores[LATENT].mean() < latent_log_density(codes, vae.manifest.latent_pca).mean()
    refs = {name: recorded[name] for name in COMBINED_PARTS}
    scores[COMBINED] = np.mean([(scores[n] - refs[n].mean) / refs[n].std for n in COMBINED_PARTS], axis=0)
    for name in SCORES:
        ref = recorded[name]
        assert ref.n == len(exported.heldout) and ref.k == 1 and ref.seed == 0
        assert ref.mean == pytest.approx(scores[name].mean(), rel=1e-5, abs=1e-5)
        assert ref.std == pytest.approx(scores[name].std(), rel=1e-4, abs=1e-5)
        assert ref.q["0.5"] == pytest.approx(np.quantile(scores[name], 0.5), rel=1e-5, abs=1e-5)
    # the old key still holds the likelihood's, as bundles always did
    assert vae.manifest.score_quantiles == recorded["likelihood"]


def _copy_with_manifest(bundle: Path, copy: Path, edit: Callable[[dict], None]) -> Path:
    """A copy of `bundle` at `copy` whose manifest `edit` changed in place, as another vaekit would have written it."""
    shutil.copytree(bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    edit(manifest)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def _older_bundle(exported: TinyBundle, tmp_path: Path) -> Path:
    """A copy of the bundle as vaekit wrote it before it recorded score_references and latent_pca."""
    def drop(manifest: dict) -> None:
        del manifest["score_references"], manifest["latent_pca"]

    return _copy_with_manifest(exported.path, tmp_path / "old", drop)


def test_a_bundle_exported_before_reads_the_likelihood_and_refuses_the_rest_in_one_line(
        exported: TinyBundle, tmp_path: Path) -> None:
    vae = VAE.load(_older_bundle(exported, tmp_path), device="cpu")
    x = random_images(vae.image_shape, 3)
    assert set(references(vae.manifest)) == {"likelihood"}
    assert np.array_equal(vae.normality(x, "likelihood"), vae.score(x))
    with pytest.raises(InputError, match="no reference scores for 'combined'.*re-export") as e:
        vae.normality(x, COMBINED)
    assert "\n" not in str(e.value)
    with pytest.raises(InputError, match="latent_pca"):
        vae.normality(x, "latent")
    with pytest.raises(InputError, match="unknown score 'elbo'; choose one of likelihood"):
        vae.normality(x, "elbo")


def test_a_bundle_whose_combined_names_no_parts_averages_the_first_four(exported: TinyBundle, tmp_path: Path) -> None:
    """Bundles exported before `combined`'s reference named its parts (it averaged `latent`, not `prior`) read as
    they were written: their recorded figures describe that mean."""
    def drop(manifest: dict) -> None:
        del manifest["score_references"]["combined"]["parts"], manifest["score_references"]["prior"]

    vae = VAE.load(_copy_with_manifest(exported.path, tmp_path / "first", drop), device="cpu")
    x = random_images(vae.image_shape, 5, seed=4)
    got = vae.normalities(x, (*FIRST_COMBINED_PARTS, COMBINED), k=1, seed=0)
    refs = references(vae.manifest)
    want = np.mean([(got[n] - refs[n].mean) / refs[n].std for n in FIRST_COMBINED_PARTS], axis=0)
    assert np.array_equal(got[COMBINED], want)


def test_colour_ranks_an_image_by_how_far_its_average_colour_lies_from_the_training_images() -> None:
    from vaekit.runtime.bundle import colour_reference

    rng = np.random.default_rng(0)
    train = np.clip(rng.normal([0.2, 0.5, 0.7], 0.05, (300, 3)), 0, 1)  # the training images' average colours
    ref = colour_reference(train)
    assert ref.n == 300 and all(h == pytest.approx(s * 300 ** (-1 / 7), rel=1e-3) for h, s in zip(ref.bandwidth, train.std(0)))
    plain = [np.broadcast_to(np.float32(rgb)[None, :, None, None], (1, 3, 4, 4))
             for rgb in ([0.2, 0.5, 0.7], [0.2, 0.5, 0.4], [0.8, 0.5, 0.3])]  # typical, a colour cast, inverted
    scores = [colour_log_density(image_colours(x), ref)[0] for x in plain]
    assert scores[0] > scores[1] > scores[2]
    # one grey level at least: a reference of identical colours still scores a new image finitely
    flat = colour_reference(np.full((5, 1), 0.5))
    assert flat.bandwidth == [1 / 255] and np.isfinite(colour_log_density(np.array([[0.9]]), flat)).all()


def test_a_bundle_without_training_colours_leaves_colour_out_of_combined(tmp_path: Path) -> None:
    """A run trained before vaekit stored its training images' colours exports without the `colour` score: combined
    averages the other four parts, and asking for `colour` says what to do in one line."""
    from bundle_helpers import PROVENANCE, TINY, tiny_model

    from vaekit.export import export_model

    heldout = random_images(tuple(TINY["mlp-bernoulli"]["image_shape"]), 12, seed=1)
    vae = VAE.load(export_model(tiny_model("mlp-bernoulli"), tmp_path / "b", heldout=heldout, provenance=PROVENANCE),
                   device="cpu")
    refs = references(vae.manifest)
    assert vae.manifest.colour_reference is None and COLOUR not in refs
    assert refs[COMBINED].parts == [p for p in COMBINED_PARTS if p != COLOUR]
    x = random_images(vae.image_shape, 4, seed=3)
    got = vae.normalities(x, (*refs[COMBINED].parts, COMBINED), k=1, seed=0)
    want = np.mean([(got[n] - refs[n].mean) / refs[n].std for n in refs[COMBINED].parts], axis=0)
    assert np.allclose(got[COMBINED], want)
    with pytest.raises(InputError, match="no colour_reference.*train and export again") as e:
        vae.normality(x, COLOUR)
    assert "\n" not in str(e.value)


def test_a_bundle_with_a_score_this_vaekit_does_not_know_still_loads(exported: TinyBundle, tmp_path: Path) -> None:
    """Within a format version a writer may add keys, so a newer vaekit's score is ignored; only a `combined` that
    averages it cannot be read, and says so in one line."""
    def add_score(manifest: dict) -> None:
        manifest["score_references"]["sharpness"] = dict(manifest["score_references"]["likelihood"])

    def average_it(manifest: dict) -> None:
        manifest["score_references"]["combined"]["parts"].append("sharpness")

    newer = _copy_with_manifest(exported.path, tmp_path / "newer", add_score)
    vae = VAE.load(newer, device="cpu")
    x = random_images(vae.image_shape, 3, seed=6)
    assert np.array_equal(vae.normality(x), exported.load().normality(x))
    vae = VAE.load(_copy_with_manifest(newer, tmp_path / "newer-parts", average_it), device="cpu")
    assert np.array_equal(vae.normality(x, LIKELIHOOD), vae.score(x))
    with pytest.raises(InputError, match="averages 'sharpness', which this vaekit does not compute.*upgrade vaekit") as e:
        vae.normality(x)
    assert "\n" not in str(e.value)


def test_vaekit_score_reads_the_score_asked_for_and_names_it(exported: TinyBundle, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    x = to_uint8(random_images(tuple(exported.model.config.image_shape), 4, seed=8))
    np.savez(tmp_path / "x.npz", x=x)
    vae = exported.load()
    for name in (None, "likelihood", "latent"):
        out = tmp_path / f"{name}.csv"
        score_cli.main([str(exported.path), str(tmp_path / "x.npz"), "--out", str(out), "--quiet",
                        *(["--score", name] if name else [])])
        with open(out, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        want = [vae.normality(image, name or DEFAULT_SCORE)[0] for image in x]
        assert [r["score_name"] for r in rows] == [name or DEFAULT_SCORE] * 4
        np.testing.assert_allclose([float(r["score"]) for r in rows], want, atol=1e-3)
        assert f"on the {name or DEFAULT_SCORE} score" in capsys.readouterr().out


def test_vaekit_score_on_an_older_bundle_falls_back_or_says_why_not(exported: TinyBundle, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    old = _older_bundle(exported, tmp_path)
    np.savez(tmp_path / "x.npz", x=to_uint8(random_images(tuple(exported.model.config.image_shape), 2)))
    out = tmp_path / "s.csv"
    assert score_cli.main([str(old), str(tmp_path / "x.npz"), "--out", str(out), "--quiet"]) in (0, 3)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "predates the 'combined' score" in err and "reading the 'likelihood'" in err
    assert {r.split(",")[2] for r in out.read_text().splitlines()[1:]} == {"likelihood"}
    assert score_cli.main([str(old), str(tmp_path / "x.npz"), "--out", str(out), "--score", "combined"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no reference scores for 'combined'" in err and "re-export" in err
