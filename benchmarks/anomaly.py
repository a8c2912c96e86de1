"""One-class anomaly detection on Fashion-MNIST: train on one class, call the other nine anomalous.

Per class: vaekit's mlp recipe trained on that class's 6,000 training images for a fixed number of
epochs, exported, then every one of the 10,000 test images scored by the bundle (1,000 normal, 9,000
anomalous). Side by side in one run, on the same test images: the vaekit score (ELBO, k=1, what
`vaekit-score` uses by default), the importance-weighted score (k=64), the VAE's reconstruction error
alone (squared error of the posterior-mean reconstruction), and two scikit-learn baselines fitted on the
same training images: PCA reconstruction error (32 components) and IsolationForest. AUROC per class
(vaekit.runtime.evaluation, numpy) and its mean; writes benchmarks/results/anomaly.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA, print_table, set_threads, write_result  # noqa: E402

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
METHODS = ("vaekit k=1", "vaekit k=64", "VAE recon. error", "PCA recon. error", "IsolationForest")


def normality(train: np.ndarray, test: np.ndarray, bundle: Path, threads: int) -> dict[str, np.ndarray]:
    """Each method's score of the test images, higher = more normal."""
    from sklearn.decomposition import PCA
    from sklearn.ensemble import IsolationForest

    from vaekit.runtime import VAE

    vae = VAE.load(bundle, device="cpu", intra_op_threads=threads)
    flat_train, flat_test = train.reshape(len(train), -1) / 255.0, test.reshape(len(test), -1) / 255.0
    pca = PCA(32, random_state=0).fit(flat_train)
    rebuilt = pca.inverse_transform(pca.transform(flat_test))
    forest = IsolationForest(n_estimators=100, random_state=0).fit(flat_train)
    return {
        "vaekit k=1": vae.score(test, k=1, seed=0),
        "vaekit k=64": vae.score(test, k=64, seed=0),
        "VAE recon. error": -((vae.reconstruct(test).reshape(len(test), -1) - flat_test) ** 2).sum(axis=1),
        "PCA recon. error": -((rebuilt - flat_test) ** 2).sum(axis=1),
        "IsolationForest": forest.score_samples(flat_test),
    }


def one_class(c: int, data: dict[str, np.ndarray], epochs: int, threads: int, work: Path) -> dict[str, Any]:
    """Train, export and score for normal class `c`; AUROC of every method and the times taken."""
    from vaekit.export import export_run
    from vaekit.runtime.evaluation import auroc
    from vaekit.train import TrainConfig, train

    train_c, test_c = data["x_train"][data["y_train"] == c], data["x_test"][data["y_test"] == c]
    npz = work / f"class{c}.npz"
    np.savez(npz, x_train=train_c, x_test=test_c)
    start = time.perf_counter()
    train(TrainConfig(data=str(npz), out=str(work / f"run{c}"), force=True, epochs=epochs, nll_k=1, nll_images=1,
                      progress=False))
    trained = time.perf_counter() - start
    bundle = export_run(work / f"run{c}", work / f"bundle{c}", force=True)
    start = time.perf_counter()
    test = data["x_test"][:, None]
    scores = normality(train_c[:, None], test, bundle, threads)
    anomalous = data["y_test"] != c
    result = {"class": c, "name": CLASSES[c], "train_s": round(trained, 1),
              "score_s": round(time.perf_counter() - start, 1), "auroc": {m: round(auroc(s, anomalous), 4) for m, s in scores.items()}}
    print(f"{CLASSES[c]}: " + ", ".join(f"{m} {a:.3f}" for m, a in result["auroc"].items()), flush=True)
    return result


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"Fashion-MNIST .npz (default: {DEFAULT_DATA})")
    p.add_argument("--threads", type=int, default=1, help="threads for torch and onnxruntime (default 1)")
    p.add_argument("--classes", type=int, nargs="+", default=list(range(10)),
                   help="normal classes to run (default all)")
    p.add_argument("--epochs", type=int, default=10, help="training epochs per class (default 10)")
    args = p.parse_args(argv)
    if not args.data.is_file():
        print(f"skipped: benchmark data {args.data} not found (Fashion-MNIST .npz with x_train, y_train, x_test, "
              "y_test; pass --data PATH)")
        return None
    threads = set_threads(args.threads)
    with np.load(args.data) as f:
        data = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        per_class = [one_class(c, data, args.epochs, threads, Path(work)) for c in args.classes]
    mean = {m: round(float(np.mean([r["auroc"][m] for r in per_class])), 4) for m in METHODS}
    rows = [[r["name"], *(r["auroc"][m] for m in METHODS)] for r in per_class] + [["mean", *mean.values()]]
    print_table(f"AUROC, one class normal, the other nine anomalous ({args.epochs} epochs, {threads} thread(s))",
                ["normal class", *METHODS], rows)
    result = {"epochs": args.epochs, "threads": threads, "classes": args.classes, "per_class": per_class,
              "mean_auroc": mean, "minutes": round((time.perf_counter() - start) / 60, 1)}
    print(f"\nwrote {write_result('anomaly', result)}")
    print("\n| normal class | " + " | ".join(METHODS) + " |\n" + "|---" * (len(METHODS) + 1) + "|")
    for row in rows:
        print("| " + " | ".join(f"{c:.3f}" if isinstance(c, float) else f"**{c}**" if c == "mean" else str(c)
                                for c in row) + " |")
    return result


if __name__ == "__main__":
    main()
