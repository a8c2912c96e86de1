"""`vaekit-score`: score every image in files, folders and .npz arrays against a bundle; find the unusual
ones (a CSV, a grid of the most unusual) and, when labels are known, measure how well scores separate them.

Exit status, for scripts: 0 every image read and none unusual; 3 at least one image unusual or very
unusual; 4 none unusual, but some files could not be read (they are listed in the CSV); 1 an error
stopped the run (nothing written); 2 a usage error.

Progress is one line on stderr rewritten in place (on a terminal; elsewhere a line every 10 s), written
by hand rather than with tqdm so that the runtime keeps its dependencies to numpy and onnxruntime.
"""

from __future__ import annotations

import argparse
import csv
import heapq
import io
import math
import sys
import time
from collections import Counter
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TextIO

import numpy as np

from .errors import InputError
from .evaluation import Evaluation, evaluate
from .extras import bundle_parser, run_command
from .files import atomic_write, check_writable, write_json
from .images import IMAGE_SUFFIXES, make_grid, save_png, to_uint8, upscale
from .reading import share_below, verdict
from .scores import DEFAULT_SCORE, DESCRIPTIONS, SCORES, UNITS, Choice, choose
from .sources import Item, Source, SourceError, check, count, items, shown

if TYPE_CHECKING:
    from .model import VAE

PROG = "vaekit-score"

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNUSUAL, EXIT_UNREADABLE = 0, 1, 2, 3, 4
COLUMNS = ["path", "score", "score_name", "share_below", "reading", "label", "error"]
TILE_PX = 84  # about how wide each image is drawn on the grid
CAPTION_PX = 12
MAX_TOP = 400  # images on the grid at most (a 20x20 grid)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    p = bundle_parser(PROG, "Score images against a vaekit bundle: a CSV of scores and readings (typical, unusual, very "
                      "unusual), a grid of the most unusual, and AUROC/AUPRC when labels are known.",
                      epilog="Exit status: 0 nothing unusual; 3 something unusual; 4 nothing unusual but some files "
                             "unreadable; 1 error; 2 usage.")
    p.add_argument("paths", nargs="*", metavar="PATH", help="image files, folders (searched recursively) or .npz files")
    p.add_argument("--normal", nargs="+", default=[], metavar="PATH", help="images known to be normal (for AUROC)")
    p.add_argument("--anomalous", nargs="+", default=[], metavar="PATH", help="images known to be anomalous")
    p.add_argument("--labelled", nargs="+", default=[], metavar="NPZ",
                   help=".npz files with images (x) and labels (y: 0 normal, 1 anomalous)")
    p.add_argument("--normal-label", type=int, default=None, metavar="V",
                   help="with --labelled: images labelled V are normal, all others anomalous")
    p.add_argument("--score", choices=SCORES, default=None, metavar="NAME",
                   help=f"which score to read (default {DEFAULT_SCORE}; higher is always more typical): "
                        + "; ".join(f"{n}: {d}" for n, d in DESCRIPTIONS.items()))
    p.add_argument("--k", type=int, default=None,
                   help="importance samples per image (default: the k of the bundle's reference scores, usually 1)")
    p.add_argument("--out", default="scores.csv", help="CSV to write (default scores.csv)")
    p.add_argument("--grid", default=None, metavar="PNG", help="also write a grid of the most unusual images")
    p.add_argument("--top", type=int, default=None, metavar="N", help="images on the grid (default 16)")
    p.add_argument("--fpr", type=float, default=0.05, help="false-positive rate for the threshold (default 0.05)")
    p.add_argument("--metrics", default=None, metavar="JSON",
                   help="where evaluation results go (default: the CSV's name with .metrics.json)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    args = p.parse_args(argv)
    if not (args.paths or args.normal or args.anomalous or args.labelled):
        p.error("give at least one PATH (or --normal/--anomalous/--labelled)")
    if args.top is not None and not args.grid:
        p.error("--top needs --grid PNG (the file to draw them in)")
    if args.normal_label is not None and not args.labelled:
        p.error("--normal-label applies to --labelled .npz files")
    return args


def sources(args: argparse.Namespace) -> list[Source]:
    """Every path of the command line with what is known of its images; SourceError for a missing one."""
    found = [Source(Path(p)) for p in args.paths]
    found += [Source(Path(p), False) for p in args.normal] + [Source(Path(p), True) for p in args.anomalous]
    found += [Source(Path(p), "file", args.normal_label) for p in args.labelled]
    return [check(s) for s in found]


class Progress:
    """One line on stderr: rewritten in place on a terminal, else printed every 10 s; nothing when quiet."""

    def __init__(self, total: int, quiet: bool, stream: TextIO = sys.stderr) -> None:
        self.total, self.stream, self.start = total, stream, time.perf_counter()
        self.tty = stream.isatty()
        self.quiet = quiet
        self.shown = self.start

    def update(self, done: int, unusual: int, final: bool = False) -> None:
        """Show `done` of the total (at most every 0.2 s on a terminal), and always when `final`."""
        now = time.perf_counter()
        if self.quiet or (not final and now - self.shown < (0.2 if self.tty else 10.0)):
            return
        self.shown = now
        rate = done / max(now - self.start, 1e-9)
        line = (f"vaekit-score: {done:,}/{self.total:,} images ({done / max(self.total, 1):.0%}), {rate:,.0f}/s, "
                f"{unusual:,} unusual")
        self.stream.write(f"\r{line}\033[K" + ("\n" if final else "") if self.tty else line + "\n")
        self.stream.flush()


def caption(image: np.ndarray, text: str) -> np.ndarray:
    """HWC uint8 `image` with a black strip below it holding `text` in white (Pillow's built-in font)."""
    from PIL import Image, ImageDraw

    h, w, c = image.shape
    strip = Image.new("L", (w, CAPTION_PX), 0)
    ImageDraw.Draw(strip).text((2, 0), text, fill=255)
    below = np.repeat(np.asarray(strip)[:, :, None], c, axis=2)
    return np.concatenate([image, below], axis=0)


def write_grid(worst: list[tuple[float, str, np.ndarray]], path: str) -> None:
    """The most unusual images (score, name, CHW image), lowest score first, each over its score, as a PNG."""
    tiles = []
    for score, _, image in worst:
        hwc = upscale(image, max(1, round(TILE_PX / image.shape[2])))
        tiles.append(caption(hwc, f"{score:.1f}").transpose(2, 0, 1))
    save_png(make_grid(np.stack(tiles), nrow=math.ceil(math.sqrt(len(tiles))), padding=4, pad_value=96), path)


def write_metrics(result: Evaluation, path: str) -> None:
    """The evaluation as JSON, atomically."""
    write_json(path, result.as_dict(), strict=False)


class Run:
    """One scoring run: scores items, writes CSV rows, keeps the lowest scores for the grid.

    Each image is scored alone, with the k and seed of the bundle's reference scores: its score does not
    depend on what else is being scored, and equals the one the app's Reconstruct tab shows."""

    def __init__(self, vae: VAE, chosen: Choice, k: int, seed: int, top: int) -> None:
        self.vae, self.k, self.seed, self.top = vae, k, seed, top
        self.score, self.quantiles = chosen.name, chosen.reference.q
        self.verdicts: Counter[str] = Counter()
        self.unreadable = 0
        self.worst: list[tuple[float, int, str, np.ndarray]] = []  # the lowest `top` scores; heapq root: the highest
        self.scores: list[float] = []
        self.labels: list[bool] = []
        self.seen = 0

    def add(self, item: Item, writer: Any) -> None:
        """Score `item` (or note why it has no score) and write its CSV row."""
        label = "" if item.anomalous is None else ("anomalous" if item.anomalous else "normal")
        if item.image is None:
            self.unreadable += 1
            writer.writerow([item.name, "", self.score, "", "", label, item.error])
            return
        score = float(self.vae.normality(item.image, self.score, k=self.k, seed=self.seed)[0])
        self.seen += 1
        below = share_below(score, self.quantiles)
        word = verdict(below)
        self.verdicts[word] += 1
        writer.writerow([item.name, f"{score:.4f}", self.score, f"{below:.4f}", word, label, ""])
        if item.anomalous is not None:
            self.scores.append(score)
            self.labels.append(item.anomalous)
        if self.top:
            entry = (-score, -self.seen, item.name, to_uint8(item.image))
            (heapq.heappush if len(self.worst) < self.top else heapq.heappushpop)(self.worst, entry)

    @property
    def unusual(self) -> int:
        """How many images read unusual or very unusual so far."""
        return self.verdicts["unusual"] + self.verdicts["very unusual"]

    def lowest(self) -> list[tuple[float, str, np.ndarray]]:
        """The kept (score, name, image) triples, lowest score first."""
        return [(-neg, name, image) for neg, _, name, image in sorted(self.worst, reverse=True)]


def run(args: argparse.Namespace) -> int:
    """Do what the arguments ask, print a summary; return the exit status."""
    if args.k is not None and args.k < 1:
        raise InputError(f"--k must be an integer >= 1, got {args.k}")
    if not 0.0 <= args.fpr <= 1.0:
        raise InputError(f"--fpr must be from 0 to 1, got {args.fpr}")
    if args.top is not None and not 1 <= args.top <= MAX_TOP:
        raise InputError(f"--top must be from 1 to {MAX_TOP} (images on the grid), got {args.top}")
    todo = sources(args)
    out = Path(args.out)
    metrics = args.metrics or str(out.with_suffix(".metrics.json"))
    labelled = args.normal or args.anomalous or args.labelled
    for path, option in ((out, "--out"), (args.grid, "--grid"), (labelled and metrics, "--metrics")):
        if path:
            check_writable(path, option)  # before the slow part, not after it
    from .model import VAE  # onnxruntime loads here, once `require` has checked that it is installed

    vae = VAE.load(args.bundle, device=args.device)
    chosen = choose(vae.manifest, args.score)
    if chosen.note:
        print(f"vaekit-score: warning: {chosen.note}", file=sys.stderr)
    unit = UNITS[chosen.name]
    reference_k, seed = chosen.reference.k, chosen.reference.seed
    k = args.k or reference_k
    if k != reference_k:
        print(f"vaekit-score: warning: --k {k} differs from the k={reference_k} of the bundle's reference scores; "
              "share_below and the readings compare unlike scores (a larger k scores higher)", file=sys.stderr)
    total = sum(count(s) for s in todo)
    if total == 0:
        raise SourceError(f"found no images in {', '.join(str(s.path) for s in todo)}: folders are searched for "
                          f"{', '.join(IMAGE_SUFFIXES)} files; pass .npz files by name")
    current = Run(vae, chosen, k, seed, (args.top or 16) if args.grid else 0)
    progress = Progress(total, args.quiet)
    start = time.perf_counter()

    def write_rows(f: IO[bytes]) -> None:
        text = io.TextIOWrapper(f, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow(COLUMNS)
        for item in (item for s in todo for item in items(s, vae.image_shape)):
            current.add(item, writer)
            progress.update(current.seen + current.unreadable, current.unusual)
        text.flush()
        text.detach()  # atomic_write closes the file itself

    atomic_write(out, write_rows)
    scored = current.seen
    progress.update(scored + current.unreadable, current.unusual, final=True)
    seconds = time.perf_counter() - start
    print(f"scored {scored:,} images in {seconds:.1f} s on the {chosen.name} score (k={k}) on {vae.device}: "
          + ", ".join(f"{current.verdicts[v]:,} {v}" for v in ("typical", "unusual", "very unusual"))
          + (f"; {current.unreadable:,} file{'s' * (current.unreadable != 1)} could not be read (see the error column)"
             if current.unreadable else ""))
    print(f"wrote {shown(out)}")
    if args.grid and current.worst:
        worst = current.lowest()
        write_grid(worst, args.grid)
        print(f"wrote {shown(args.grid)}: the {len(worst)} lowest scores, from {worst[0][1]} ({worst[0][0]:.1f} {unit})")
    if current.labels:
        result = evaluate(current.scores, current.labels, args.fpr)
        write_metrics(result, metrics)
        print(f"{result.normal:,} normal, {result.anomalous:,} anomalous: AUROC {result.auroc:.4f}, AUPRC "
              f"{result.auprc:.4f}; at {result.fpr:.1%} false positives, flag scores below {result.threshold:.2f} "
              f"{unit}: catches {result.tpr_at_threshold:.1%} of the anomalous ({result.fpr_at_threshold:.1%} of the "
              f"normal flagged); wrote {shown(metrics)}")
    if current.unusual:
        return EXIT_UNUSUAL
    return EXIT_UNREADABLE if current.unreadable else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point of `vaekit-score`: errors become one message on stderr and exit status 1."""
    args = parse_args(argv)
    # OSError: an --out or --grid that cannot be written
    return run_command(PROG, lambda: run(args), also=(OSError,), interrupted="interrupted; nothing written")


if __name__ == "__main__":
    sys.exit(main())
