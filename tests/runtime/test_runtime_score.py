"""`vaekit-score` end to end (CSV, grid, exit status, evaluation) and the numpy metrics behind it."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bundle_helpers import TinyBundle, random_images

from vaekit.runtime import load_image, save_png, score_cli, sources, to_uint8
from vaekit.runtime.evaluation import auroc, average_precision, evaluate, threshold_at_fpr
from vaekit.runtime.images import fit_image
from vaekit.runtime.reading import share_below, verdict
from vaekit.runtime.scores import DEFAULT_SCORE

pytest.importorskip("PIL", reason="the command reads and writes images with Pillow")


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _mixed_folder(root: Path, exported: TinyBundle) -> dict[str, Path]:
    """Good images of the bundle's size and of another, nested; a text file named .png; a truncated PNG;
    and a file without an image suffix (ignored)."""
    c, h, w = exported.model.config.image_shape
    images = to_uint8(random_images((c, h, w), 3, seed=7))
    (root / "sub" / "deeper").mkdir(parents=True)
    files = {
        "a": save_png(images[0], root / "a.png"),
        "b": save_png(images[1], root / "sub" / "b.png"),
        "big": save_png(np.kron(images[2], np.ones((1, 3, 5), np.uint8)), root / "sub" / "deeper" / "big.PNG"),
    }
    (root / "text.png").write_text("not an image")
    files["text"] = root / "text.png"
    data = files["a"].read_bytes()
    (root / "sub" / "cut.png").write_bytes(data[: len(data) // 2])
    files["cut"] = root / "sub" / "cut.png"
    (root / "notes.txt").write_text("ignored: not an image suffix")
    return files


def _reference(path: Path, low: float) -> Path:
    """A copy of the bundle whose reference quantiles all lie at `low` + level: very low makes every image
    typical, very high makes every image very unusual (the manifest is not checksummed, the graphs are)."""
    copy = Path(shutil.copytree(path, path.parent / f"{path.name}-ref{low:g}", dirs_exist_ok=True))
    manifest = json.loads((copy / "manifest.json").read_text())
    for record in [manifest["score_quantiles"], *manifest["score_references"].values()]:
        record["q"] = {q: low + float(q) for q in record["q"]}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def test_csv_of_a_mixed_folder(exported: TinyBundle, tmp_path: Path) -> None:
    files = _mixed_folder(tmp_path / "photos", exported)
    out = tmp_path / "scores.csv"
    code = score_cli.main([str(exported.path), str(tmp_path / "photos"), "--out", str(out), "--quiet"])
    rows = {Path(r["path"]).name: r for r in _rows(out)}
    assert list(rows) == ["a.png", "b.png", "cut.png", "big.PNG", "text.png"]  # by name, folder by folder
    assert "not an image vaekit can read" in rows["text.png"]["error"] and rows["text.png"]["score"] == ""
    assert "damaged or truncated" in rows["cut.png"]["error"]
    vae = exported.load()
    reference = vae.manifest.score_references[DEFAULT_SCORE]
    for name in ("a", "b", "big"):
        row = rows[files[name].name]
        want = vae.normality(fit_image(files[name], vae.image_shape), k=reference.k, seed=reference.seed)[0]
        assert float(row["score"]) == pytest.approx(want, abs=1e-3) and row["error"] == ""
        assert row["score_name"] == DEFAULT_SCORE
        below = share_below(float(row["score"]), reference.q)
        assert float(row["share_below"]) == pytest.approx(below, abs=1e-4) and row["reading"] == verdict(below)
    unusual = any(r["reading"] in ("unusual", "very unusual") for r in rows.values())
    assert code == (score_cli.EXIT_UNUSUAL if unusual else score_cli.EXIT_UNREADABLE)
    assert not list(out.parent.glob(".scores.csv.*")), "the temporary file is renamed, never left behind"


@pytest.mark.parametrize("low, status", [(-1e9, score_cli.EXIT_OK), (1e9, score_cli.EXIT_UNUSUAL)])
def test_exit_status_says_whether_anything_was_unusual(exported: TinyBundle, tmp_path: Path, low: float,
                                                        status: int) -> None:
    bundle = _reference(exported.path, low)
    image = save_png(to_uint8(random_images(tuple(exported.model.config.image_shape), 1)[0]), tmp_path / "x.png")
    result = subprocess.run([sys.executable, "-m", "vaekit.runtime.score_cli", str(bundle), str(image), "--out",
                             str(tmp_path / "s.csv")], capture_output=True, text=True, timeout=120)
    assert result.returncode == status, result.stderr
    assert _rows(tmp_path / "s.csv")[0]["reading"] == ("typical" if low < 0 else "very unusual")
    (tmp_path / "bad.png").write_text("no")
    assert score_cli.main([str(bundle), str(image), str(tmp_path / "bad.png"), "--out", str(tmp_path / "t.csv"),
                           "--quiet"]) == (score_cli.EXIT_UNREADABLE if low < 0 else score_cli.EXIT_UNUSUAL)


def test_errors_are_one_line_and_write_nothing(exported: TinyBundle, tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    missing = subprocess.run([sys.executable, "-m", "vaekit.runtime.score_cli", str(exported.path), str(tmp_path / "nope"),
                              "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and missing.stderr.startswith("vaekit-score: error:")
    assert "no such file or folder" in missing.stderr and "Traceback" not in missing.stderr
    assert score_cli.main([str(tmp_path / "no-bundle"), str(tmp_path), "--out", str(out)]) == score_cli.EXIT_ERROR
    (tmp_path / "empty").mkdir()
    assert score_cli.main([str(exported.path), str(tmp_path / "empty"), "--out", str(out)]) == score_cli.EXIT_ERROR
    assert not out.exists()
    with pytest.raises(SystemExit) as usage:
        score_cli.main([str(exported.path)])
    assert usage.value.code == score_cli.EXIT_USAGE


def test_npz_is_streamed_and_the_grid_shows_the_lowest(exported: TinyBundle, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    shape = tuple(exported.model.config.image_shape)
    x = to_uint8(random_images(shape, 11, seed=3))
    np.savez(tmp_path / "data.npz", x=x)
    monkeypatch.setattr(sources, "CHUNK_BYTES", 3 * x[0].nbytes)  # 3 rows at a time from the archive
    grid = tmp_path / "unusual.png"
    score_cli.main([str(exported.path), str(tmp_path / "data.npz"), "--out", str(tmp_path / "s.csv"), "--grid",
                    str(grid), "--top", "4", "--quiet"])
    rows = _rows(tmp_path / "s.csv")
    assert [r["path"] for r in rows] == [f"{tmp_path / 'data.npz'}[{i}]" for i in range(11)]
    vae = exported.load()
    alone = [vae.normality(image, k=1, seed=0)[0] for image in x]  # each scored alone, as the app scores an upload
    np.testing.assert_allclose([float(r["score"]) for r in rows], alone, atol=1e-3)
    tile = exported.model.config.image_shape[2] * round(score_cli.TILE_PX / shape[2])
    assert load_image(grid, shape[0]).shape[1] == 2 * tile + 3 * 4  # 4 tiles: 2 per row, padding 4


def test_evaluation_matches_scikit_learn(exported: TinyBundle, tmp_path: Path) -> None:
    sklearn = pytest.importorskip("sklearn.metrics")
    shape = tuple(exported.model.config.image_shape)
    x = to_uint8(random_images(shape, 12, seed=5))
    labels = np.arange(12) % 3 == 0
    np.savez(tmp_path / "labelled.npz", x=x, y=labels.astype(np.int64))
    metrics = tmp_path / "m.json"
    score_cli.main([str(exported.path), "--labelled", str(tmp_path / "labelled.npz"), "--out",
                    str(tmp_path / "s.csv"), "--metrics", str(metrics), "--fpr", "0.25", "--quiet"])
    vae = exported.load()
    scores = np.array([vae.normality(image, k=1, seed=0)[0] for image in x])
    got = json.loads(metrics.read_text())
    assert got["normal"] == 8 and got["anomalous"] == 4
    assert got["auroc"] == pytest.approx(sklearn.roc_auc_score(labels, -scores))
    assert got["auprc"] == pytest.approx(sklearn.average_precision_score(labels, -scores))
    assert [r["label"] for r in _rows(tmp_path / "s.csv")] == ["anomalous" if a else "normal" for a in labels]


def test_normal_and_anomalous_folders(exported: TinyBundle, tmp_path: Path) -> None:
    shape = tuple(exported.model.config.image_shape)
    for name, seed in (("good", 1), ("bad", 2)):
        (tmp_path / name).mkdir()
        for i, image in enumerate(to_uint8(random_images(shape, 3, seed=seed))):
            save_png(image, tmp_path / name / f"{i}.png")
    score_cli.main([str(exported.path), "--normal", str(tmp_path / "good"), "--anomalous", str(tmp_path / "bad"),
                    "--out", str(tmp_path / "s.csv"), "--quiet"])
    got = json.loads((tmp_path / "s.metrics.json").read_text())
    assert (got["normal"], got["anomalous"]) == (3, 3) and 0.0 <= got["auroc"] <= 1.0


# --- the metrics ------------------------------------------------------------------------------

def test_metrics_on_known_answers() -> None:
    scores = np.array([-10.0, -9.0, -1.0, -2.0, -3.0])  # the anomalous score lowest: perfect separation
    anomalous = np.array([True, True, False, False, False])
    assert auroc(scores, anomalous) == 1.0 and average_precision(scores, anomalous) == 1.0
    assert auroc(-scores, anomalous) == 0.0
    assert auroc(np.zeros(4), [True, False, True, False]) == 0.5  # all tied: half credit
    assert auroc([0.0, 0.0, 1.0], [True, False, False]) == 0.75
    assert threshold_at_fpr(scores, anomalous, 0.0) == (-3.0, 0.0, 1.0)  # flags below the lowest normal score
    result = evaluate(scores, anomalous, fpr=0.4)
    assert result.threshold == -2.0 and result.fpr_at_threshold == pytest.approx(1 / 3)
    assert evaluate(scores, anomalous, fpr=1.0).as_dict()["threshold"] is None  # flag everything: no finite bound
    with pytest.raises(ValueError, match="both normal and anomalous"):
        auroc([1.0, 2.0], [False, False])


def test_metrics_match_scikit_learn_with_ties() -> None:
    sklearn = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for _trial in range(100):
        n = int(rng.integers(2, 50))
        scores = np.round(rng.normal(size=n), int(rng.integers(0, 3)))  # rounding makes ties
        labels = rng.random(n) < 0.4
        labels[: 2] = [True, False]
        assert auroc(scores, labels) == pytest.approx(sklearn.roc_auc_score(labels, -scores), abs=1e-12)
        assert average_precision(scores, labels) == pytest.approx(
            sklearn.average_precision_score(labels, -scores), abs=1e-12)


def test_unusable_npz_files_are_rows_with_their_reason(exported: TinyBundle, tmp_path: Path) -> None:
    x = to_uint8(random_images(tuple(exported.model.config.image_shape), 2))
    np.savez(tmp_path / "two.npz", a=x, b=x)
    np.savez(tmp_path / "unlabelled.npz", x=x)
    np.savez(tmp_path / "classes.npz", x=x, y=np.array([3, 7]))
    np.savez(tmp_path / "small.npz", x=np.zeros((2, 5, 5), np.uint8))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    code = score_cli.main([str(exported.path), str(tmp_path / "two.npz"), str(tmp_path / "small.npz"),
                           str(tmp_path / "junk.npz"), "--labelled", str(tmp_path / "unlabelled.npz"),
                           str(tmp_path / "classes.npz"), "--out", str(tmp_path / "s.csv"), "--quiet"])
    errors = {Path(r["path"]).name: r["error"] for r in _rows(tmp_path / "s.csv")}
    assert "holds a, b; save the images to score as 'x'" in errors["two.npz"]
    assert "images have shape (2, 5, 5)" in errors["small.npz"]
    assert "not a readable .npz file" in errors["junk.npz"]
    assert "has no labels" in errors["unlabelled.npz"]
    assert "--normal-label V" in errors["classes.npz"]
    assert code == score_cli.EXIT_UNREADABLE and not (tmp_path / "s.metrics.json").exists()
