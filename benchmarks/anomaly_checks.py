"""The anomaly scores on cases benchmarks/anomaly.py does not have: what the default was checked on beyond it.

One-class handwritten digits: scikit-learn's digits framed as MNIST frames them (20x20 in 28x28), per digit a model
of its first `--digit-images` images (`--digit-time` seconds), scoring its other images (normal) against every other
digit. Leave-one-photograph-out: a model of the crops of 7 of `photos64.npz`'s 8 photographs (`--photo-time`
seconds), scoring the test crops of those 7 (normal) against the 8th's. Grayscale photos: a model of all 8
photographs' crops scoring its test crops against grayscale copies of them (the same luminance in all three
channels). Every vaekit score and the classical detectors side by side, as in anomaly.py; writes
benchmarks/results/anomaly_checks.json. Not part of `make bench` (about 15 minutes).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from anomaly import METHODS, Case, framed_digits, measure, table, timed_bundle  # noqa: E402
from common import DEFAULT_PHOTOS, load_photos, print_table, set_threads, write_result  # noqa: E402

from vaekit.runtime.scores import DEFAULT_SCORE  # noqa: E402

PHOTOGRAPHS = ("astronaut", "chelsea", "coffee", "hubble_deep_field", "ihc", "motorcycle_left", "retina", "rocket")


def one_class_digits(images: int, max_time: float, threads: int, work: Path) -> list[Case]:
    """For each digit: train on its first `images` images, score its others against every other digit."""
    framed, labels = framed_digits()
    cases = []
    for d in range(10):
        own = framed[labels == d]
        bundle, seconds = timed_bundle(own[:images], f"digit{d}", max_time, work)
        cases.append(measure(f"one-class digit {d}", own[:images], own[images:], framed[labels != d], bundle,
                             threads, seconds))
    return cases


def photographs(photos: Path, max_time: float, threads: int, work: Path) -> list[Case]:
    """Grayscale copies against a model of every photograph, then each photograph left out in turn."""
    train, test, y_train, y_test = load_photos(photos)
    bundle, seconds = timed_bundle(train, "photos", max_time, work)
    gray = np.repeat(np.round(test.astype(np.float64).mean(axis=1, keepdims=True)).astype(np.uint8), 3, axis=1)
    cases = [measure("photos64 vs grayscale photos", train, test, gray, bundle, threads, seconds)]
    for p, name in enumerate(PHOTOGRAPHS):
        kept = train[y_train != p]
        bundle, seconds = timed_bundle(kept, f"without{p}", max_time, work)
        cases.append(measure(f"photos64 without {name} vs {name}", kept, test[y_test != p], test[y_test == p], bundle,
                             threads, seconds))
    return cases


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help=f"colour photo crops (default: {DEFAULT_PHOTOS})")
    p.add_argument("--threads", type=int, default=1, help="threads for torch and onnxruntime (default 1)")
    p.add_argument("--digit-images", type=int, default=120, help="training images per one-class digit model (default 120)")
    p.add_argument("--digit-time", type=float, default=10.0, help="training seconds per digit model (default 10)")
    p.add_argument("--photo-time", type=float, default=60.0, help="training seconds per photo model (default 60; 0: skip)")
    args = p.parse_args(argv)
    threads = set_threads(args.threads)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cases = one_class_digits(args.digit_images, args.digit_time, threads, work)
        if args.photo_time > 0 and args.photos.is_file():
            cases += photographs(args.photos, args.photo_time, threads, work)
        elif args.photo_time > 0:
            print(f"photo cases skipped: {args.photos} not found (pass --photos PATH)")
    print_table(f"AUROC (higher is better; default score: {DEFAULT_SCORE})", ["case", *METHODS], table(cases, "auroc"))
    result = {"digit_images": args.digit_images, "digit_time": args.digit_time, "photo_time": args.photo_time,
              "threads": threads, "default": DEFAULT_SCORE, "cases": [asdict(c) for c in cases],
              "minutes": round((time.perf_counter() - start) / 60, 1)}
    print(f"\nwrote {write_result('anomaly_checks', result)}")
    return result


if __name__ == "__main__":
    main()
