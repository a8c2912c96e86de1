"""Anomaly detection, every vaekit score against the classical detectors, on two kinds of anomaly at once.

One-class Fashion-MNIST: per class, vaekit's default recipe trained on that class's training images for a
time budget (`--max-time`; the run holds out 10% of them, whose scores the bundle records as its reference),
exported, then the test images scored (each class's 1,000 normal, the other nine classes' anomalous).
Out-of-distribution: a model trained on all of Fashion-MNIST scores 2,000 Fashion test images (normal) against
scikit-learn's digits framed as MNIST frames its digits (20x20 in 28x28), the emoji in grayscale 28x28, uniform noise and inverted Fashion images;
and a model trained on the colour photo crops (`--photos`) scores their test crops against the emoji at 64x64,
uniform noise and the test crops inverted.
Side by side on the same images: every vaekit score (`vaekit.runtime.scores`, k=1), the VAE's reconstruction
error (squared error of the posterior-mean reconstruction), and two scikit-learn detectors fitted on the same
training images: PCA reconstruction error (32 components) and IsolationForest. AUROC and AUPRC per case;
writes benchmarks/results/anomaly.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA, DEFAULT_PHOTOS, load_photos, print_table, set_threads, write_result  # noqa: E402

from vaekit.runtime.scores import DEFAULT_SCORE, SCORES  # noqa: E402

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
BASELINES = ("VAE recon. error", "PCA recon. error", "IsolationForest")
METHODS = (*SCORES, *BASELINES)
OOD_IMAGES = 2000  # normal Fashion test images, and at most as many of each unusual set


@dataclass
class Case:
    """One benchmark case's result: AUROC and AUPRC of every method (scores: higher = more normal)."""

    name: str
    normal: int
    anomalous: int
    train_s: float
    auroc: dict[str, float]
    auprc: dict[str, float]


def train_bundle(train: np.ndarray, name: str, max_time: float, work: Path) -> Path:
    """A bundle of vaekit's default recipe trained on uint8 `train` (N, C, H, W) for `max_time` seconds."""
    from vaekit.export import export_run
    from vaekit.train import TrainConfig
    from vaekit.train import train as fit

    npz = work / f"{name}.npz"
    np.savez(npz, x_train=train.transpose(0, 2, 3, 1) if train.shape[1] == 3 else train[:, 0])
    fit(TrainConfig(data=str(npz), out=str(work / f"run-{name}"), force=True, max_time=max_time, nll_k=1,
                    nll_images=1, progress=False))
    return export_run(work / f"run-{name}", work / f"bundle-{name}", force=True)


def normality(train: np.ndarray, test: np.ndarray, bundle: Path, threads: int) -> dict[str, np.ndarray]:
    """Each method's score of the uint8 test images, higher = more normal."""
    from sklearn.decomposition import PCA
    from sklearn.ensemble import IsolationForest

    from vaekit.runtime import VAE

    vae = VAE.load(bundle, device="cpu", intra_op_threads=threads)
    flat_train, flat_test = train.reshape(len(train), -1) / 255.0, test.reshape(len(test), -1) / 255.0
    pca = PCA(32, random_state=0).fit(flat_train)
    rebuilt = pca.inverse_transform(pca.transform(flat_test))
    forest = IsolationForest(n_estimators=100, random_state=0).fit(flat_train)
    return {
        **vae.normalities(test, SCORES, k=1, seed=0),
        "VAE recon. error": -((vae.reconstruct(test).reshape(len(test), -1) - flat_test) ** 2).sum(axis=1),
        "PCA recon. error": -((rebuilt - flat_test) ** 2).sum(axis=1),
        "IsolationForest": forest.score_samples(flat_test),
    }


def measure(name: str, train: np.ndarray, normal: np.ndarray, unusual: np.ndarray, bundle: Path, threads: int,
            train_s: float) -> Case:
    """Score the normal and unusual images with every method; print and return the case."""
    from vaekit.runtime.evaluation import auroc, average_precision

    test = np.concatenate([normal, unusual])
    anomalous = np.r_[np.zeros(len(normal), bool), np.ones(len(unusual), bool)]
    scores = normality(train, test, bundle, threads)
    case = Case(name, len(normal), len(unusual), round(train_s, 1),
                {m: round(auroc(s, anomalous), 4) for m, s in scores.items()},
                {m: round(average_precision(s, anomalous), 4) for m, s in scores.items()})
    print(f"{name}: " + ", ".join(f"{m} {a:.3f}" for m, a in case.auroc.items()), flush=True)
    return case


def timed_bundle(train: np.ndarray, name: str, max_time: float, work: Path) -> tuple[Path, float]:
    """`train_bundle` and the seconds it took."""
    start = time.perf_counter()
    bundle = train_bundle(train, name, max_time, work)
    return bundle, time.perf_counter() - start


def one_class(data: dict[str, np.ndarray], classes: list[int], max_time: float, threads: int, work: Path) -> list[Case]:
    """For each normal class: train on it, score every test image."""
    cases = []
    for c in classes:
        train_c = data["x_train"][data["y_train"] == c][:, None]
        bundle, seconds = timed_bundle(train_c, f"class{c}", max_time, work)
        normal, unusual = data["x_test"][data["y_test"] == c][:, None], data["x_test"][data["y_test"] != c][:, None]
        cases.append(measure(f"one-class {CLASSES[c]}", train_c, normal, unusual, bundle, threads, seconds))
    return cases


def framed_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as MNIST frames its digits: 0..16 scaled to uint8, resized to 20x20 (Pillow's bilinear
    filter) and centred on a black 28x28 square, (N, 1, 28, 28); and their labels."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    out = np.zeros((len(images), 1, 28, 28), np.uint8)
    for i, x in enumerate(images):
        out[i, 0, 4:24, 4:24] = np.asarray(Image.fromarray(x).resize((20, 20), Image.Resampling.BILINEAR))
    return out, digits.target


def out_of_distribution(data: dict[str, np.ndarray], max_time: float, threads: int, work: Path) -> list[Case]:
    """A model of all Fashion-MNIST against digits, emoji, noise and inverted Fashion."""
    from vaekit.train.emoji import emoji_images

    train = data["x_train"][:, None]
    bundle, seconds = timed_bundle(train, "fashion", max_time, work)
    normal = data["x_test"][:OOD_IMAGES, None]
    unusual = {
        "digits": framed_digits()[0][:OOD_IMAGES],
        "emoji (gray)": emoji_images(28, channels=1)[:OOD_IMAGES],
        "uniform noise": np.random.default_rng(0).integers(0, 256, normal.shape, dtype=np.uint8),
        "inverted Fashion": 255 - data["x_test"][OOD_IMAGES : 2 * OOD_IMAGES, None],
    }
    return [measure(f"Fashion vs {name}", train, normal, images, bundle, threads, seconds)
            for name, images in unusual.items()]


def colour(photos: Path, max_time: float, threads: int, work: Path) -> list[Case]:
    """A model of the colour photo crops against the colour emoji at 64x64, uniform noise and inverted crops."""
    from vaekit.train.emoji import emoji_images

    train, test = load_photos(photos)[:2]
    bundle, seconds = timed_bundle(train, "photos", max_time, work)
    unusual = {
        "emoji (colour)": emoji_images(64, channels=3),
        "uniform noise (colour)": np.random.default_rng(0).integers(0, 256, test.shape, dtype=np.uint8),
        "inverted photos": 255 - test,
    }
    return [measure(f"photos64 vs {name}", train, test, images, bundle, threads, seconds)
            for name, images in unusual.items()]


def table(cases: list[Case], metric: str, methods: tuple[str, ...] = METHODS) -> list[list[Any]]:
    """Rows of `metric` of `methods` per case, with the one-class mean after the one-class cases."""
    rows = [[c.name, *(getattr(c, metric)[m] for m in methods)] for c in cases]
    single = [c for c in cases if c.name.startswith("one-class")]
    if single:
        mean = [round(float(np.mean([getattr(c, metric)[m] for c in single])), 4) for m in methods]
        rows.insert(len(single), ["one-class mean", *mean])
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"Fashion-MNIST .npz (default: {DEFAULT_DATA})")
    p.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help=f"colour photo crops (default: {DEFAULT_PHOTOS})")
    p.add_argument("--threads", type=int, default=1, help="threads for torch and onnxruntime (default 1)")
    p.add_argument("--classes", type=int, nargs="*", default=list(range(10)),
                   help="one-class normal classes to run (default all; none: skip)")
    p.add_argument("--max-time", type=float, default=20.0, help="training seconds per one-class model (default 20)")
    p.add_argument("--ood-time", type=float, default=60.0,
                   help="training seconds of the Fashion and photo models (default 60; 0: skip those cases)")
    args = p.parse_args(argv)
    if not args.data.is_file():
        print(f"skipped: benchmark data {args.data} not found (Fashion-MNIST .npz with x_train, y_train, x_test, "
              "y_test; pass --data PATH)")
        return None
    threads = set_threads(args.threads)
    with np.load(args.data) as f:
        data = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cases = one_class(data, args.classes, args.max_time, threads, work)
        if args.ood_time > 0:
            cases += out_of_distribution(data, args.ood_time, threads, work)
            if args.photos.is_file():
                cases += colour(args.photos, args.ood_time, threads, work)
            else:
                print(f"colour pair skipped: {args.photos} not found (pass --photos PATH)")
    for metric in ("auroc", "auprc"):
        print_table(f"{metric.upper()} (higher is better; default score: {DEFAULT_SCORE})", ["case", *METHODS],
                    table(cases, metric))
    result = {"max_time": args.max_time, "ood_time": args.ood_time, "threads": threads, "default": DEFAULT_SCORE,
              "cases": [asdict(c) for c in cases], "minutes": round((time.perf_counter() - start) / 60, 1)}
    print(f"\nwrote {write_result('anomaly', result)}")
    print("\n| case | " + " | ".join(METHODS) + " |\n" + "|---" * (len(METHODS) + 1) + "|")
    for row in table(cases, "auroc"):
        print("| " + " | ".join(f"{c:.3f}" if isinstance(c, float) else str(c) for c in row) + " |")
    return result


if __name__ == "__main__":
    main()
