"""The Gradio app: five tabs (Sample, Interpolate, Explore, Reconstruct, Model) over one bundle.

Every action is also an API endpoint with a stable name (see API_NAMES), callable with gradio_client.
Safety lives in `launch_settings`: files served only from this app's own temporary folder (never the
bundle), request bodies and uploads capped (`limits`), errors shown as messages, a bounded queue with
per-endpoint concurrency; and in `uploads.UploadFolder`: a file argument is opened only when it is an upload.
"""

from __future__ import annotations

import atexit
import errno
import functools
import gc
import importlib.util
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
from fastapi.middleware import Middleware
from PIL import Image as PILImage

from vaekit.runtime import VAE, BundleError
from vaekit.runtime.errors import VaekitError

from .axes import BASES
from .handlers import (
    MAX_SAMPLES,
    MAX_SEED,
    MAX_STEPS,
    MAX_TEMPERATURE,
    METHODS,
    SLIDER_RANGE,
    Handlers,
    whole,
)
from .limits import RequestLimit
from .model_card import markdown_table
from .uploads import MAX_UPLOAD_BYTES, UploadFolder

log = logging.getLogger("vaekit.ui")
API_NAMES = ("sample", "new_seed", "interpolate_seeds", "interpolate_images", "explore", "explore_center",
             "explore_random", "reconstruct", "model")
CONCURRENCY = 2  # runs of one endpoint at once; the rest wait in the queue, first come first served
# /sample calls waiting in the queue together run as one batch of up to SAMPLE_BATCH calls: gradio's fixed cost of a
# run, far above the sampling's own, is then paid once per batch (benchmarks/load.py). Its price: gradio has one
# outcome per batch, so a call with a bad value (n over 100, a seed out of range) fails the calls batched with it.
SAMPLE_BATCH = 32
# The queue holds what the server drains within QUEUE_TIMEOUT; beyond that, a request is turned away at once
# with HTTP 503 "queue full" rather than left waiting longer than a client would. REQUEST_SECONDS is about the server
# time one unbatched API call takes (benchmarks/load.py; docs/app.md): the slower, unbatched calls set the bound.
QUEUE_TIMEOUT = 10.0
REQUEST_SECONDS = 0.025
QUEUE_SIZE = int(QUEUE_TIMEOUT / REQUEST_SECONDS)
STATUS_EVERY = 1.0  # seconds between queue-position updates ("auto" sends one to every waiting call per job: n^2)
SESSIONS = 2 * QUEUE_SIZE  # per-visitor state gradio keeps (one per unbatched API call, one per /sample batch); oldest go first
CACHE_CLEANUP = (60, 600)  # every minute, delete uploads and results older than 10 minutes
DEFAULTS = {"n": 36, "seed": 0, "temperature": 1.0, "seed_b": 1, "steps": 10, "method": "slerp"}
STYLE = (Path(__file__).with_name("style.css")).read_text(encoding="utf-8")
IMAGE = {"format": "png", "interactive": False, "elem_classes": ["pixelated"], "buttons": ["download", "fullscreen"]}
UPLOAD = {"type": "filepath", "sources": ["upload", "clipboard"], "elem_classes": ["pixelated"], "height": 220}


def private_temp_dir() -> Path:
    """This process's folder for uploads and results (gradio's GRADIO_TEMP_DIR): a fresh private one,
    removed at exit, unless the caller chose one. Gradio serves files from there only, so the app never
    serves another app's files."""
    if not os.environ.get("GRADIO_TEMP_DIR"):
        folder = tempfile.mkdtemp(prefix="vaekit-ui-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        os.environ["GRADIO_TEMP_DIR"] = folder
    return Path(os.environ["GRADIO_TEMP_DIR"])


def shown(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` with the errors a person can fix (bad input, unusable uploads) turned into messages on the page;
    anything else is a bug, which gradio logs and shows only as "Error"."""

    @functools.wraps(fn)
    def wrapper(*args: Any) -> Any:
        try:
            return fn(*args)
        except VaekitError as e:
            raise gr.Error(str(e), print_exception=False) from e

    return wrapper


def _header(vae: VAE) -> str:
    c, h, w = vae.image_shape
    data = vae.manifest.provenance.data or "unnamed data"
    return (f"# vaekit · {data}\n"
            f"A variational autoencoder of {h}x{w} {'grayscale' if c == 1 else 'colour'} images with "
            f"{vae.latent_dim} latent dimensions, running on onnxruntime ({vae.device}). Sample new images, walk "
            "between two, move through the latent space, or see how it rebuilds yours.")


def _sample_tab(h: Handlers) -> None:
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            n = gr.Slider(1, MAX_SAMPLES, value=DEFAULTS["n"], step=1, precision=0, label="Samples")
            seed = gr.Number(DEFAULTS["seed"], label="Seed", precision=0, minimum=0, maximum=MAX_SEED,
                             info="the same seed always gives the same images")
            temperature = gr.Slider(0.0, MAX_TEMPERATURE, value=DEFAULTS["temperature"], step=0.05,
                                    label="Temperature", info="scale of the latent noise: lower is cleaner, "
                                    "higher is more varied")
            with gr.Row():
                go = gr.Button("Sample", variant="primary", elem_id="sample-button")
                new = gr.Button("New seed", elem_id="new-seed-button")
        grid = gr.Image(h.sample(DEFAULTS["n"], DEFAULTS["seed"], DEFAULTS["temperature"]), label="Samples",
                        elem_id="sample-grid", scale=2, **IMAGE)

    def sample_batch(ns: list[int], seeds: list[int], temperatures: list[float]) -> list[list[PILImage.Image]]:
        """The grids of the /sample calls that waited in the queue together (gradio's batch=True)."""
        return [[h.sample(*call) for call in zip(ns, seeds, temperatures)]]

    gr.on([go.click, seed.submit, n.release, temperature.release], shown(sample_batch), [n, seed, temperature], grid,
          api_name="sample", batch=True, max_batch_size=SAMPLE_BATCH)
    new.click(shown(h.new_seed), [n, temperature], [seed, grid], api_name="new_seed")


def _interpolate_tab(h: Handlers, uploads: UploadFolder) -> None:
    strip0, gif0 = h.interpolate_seeds(DEFAULTS["seed"], DEFAULTS["seed_b"], DEFAULTS["steps"], DEFAULTS["method"])
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            with gr.Tabs():
                with gr.Tab("Between two seeds"):
                    with gr.Row():
                        seed_a = gr.Number(DEFAULTS["seed"], label="Seed A", precision=0, minimum=0, maximum=MAX_SEED)
                        seed_b = gr.Number(DEFAULTS["seed_b"], label="Seed B", precision=0, minimum=0,
                                           maximum=MAX_SEED)
                    by_seeds = gr.Button("Interpolate seeds", variant="primary", elem_id="interpolate-seeds-button")
                with gr.Tab("Between two images"):
                    with gr.Row():
                        image_a = gr.Image(label="Image A", elem_id="interpolate-image-a", **UPLOAD)
                        image_b = gr.Image(label="Image B", elem_id="interpolate-image-b", **UPLOAD)
                    by_images = gr.Button("Interpolate images", variant="primary",
                                          elem_id="interpolate-images-button")
            steps = gr.Slider(2, MAX_STEPS, value=DEFAULTS["steps"], step=1, precision=0, label="Steps",
                              info="images along the path, both ends included")
            method = gr.Radio(list(METHODS), value=DEFAULTS["method"], label="Path",
                              info="slerp follows the sphere where the prior puts its mass; lerp is a straight line")
        with gr.Column(scale=2):
            strip = gr.Image(strip0, label="Path", elem_id="interpolate-strip", **IMAGE)
            gif = gr.Image(gif0, label="Animation", elem_id="interpolate-gif", height=260, **{**IMAGE, "format": "gif"})
    by_seeds.click(shown(h.interpolate_seeds), [seed_a, seed_b, steps, method], [strip, gif],
                   api_name="interpolate_seeds")

    def interpolate_images(image_a: Any, image_b: Any, steps: int, method: str) -> tuple[Any, str]:
        return h.interpolate_images(uploads.path_of(image_a), uploads.path_of(image_b), steps, method)

    by_images.click(shown(interpolate_images), [image_a, image_b, steps, method], [strip, gif],
                    api_name="interpolate_images", preprocess=False)


def _explore_tab(h: Handlers) -> None:
    axes = h.axes[BASES[0]]
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            basis_radio = gr.Radio(list(BASES), value=BASES[0], label="Move along",
                                   info=f"main directions: the principal axes of {h.axes_source}; latent "
                                   "dimensions: the most used ones first", elem_id="explore-basis")
            with gr.Row():
                seed_box = gr.Number(DEFAULTS["seed"], label="Seed", precision=0, minimum=0, maximum=MAX_SEED,
                                     scale=1)
                random = gr.Button("Go to seed", elem_id="explore-random-button", scale=1)
                center = gr.Button("Centre", elem_id="explore-center-button", scale=1)
            sliders = [gr.Slider(-SLIDER_RANGE, SLIDER_RANGE, value=0.0, step=0.01, label=label, info=note,
                                 elem_id=f"explore-slider-{i}")
                       for i, (label, note) in enumerate(zip(axes.labels, axes.notes))]
        image = gr.Image(h.explore(BASES[0], [0.0] * len(axes.labels)), label="Decoded latent",
                         elem_id="explore-image", scale=1, **IMAGE)

    def start(basis: str, seed: int | None) -> list[Any]:
        values, picture = h.explore_start(basis, seed)
        chosen = h.axes[basis]
        return [gr.update(value=v, label=label, info=info)
                for v, label, info in zip(values, chosen.labels, chosen.notes)] + [picture]

    def explore(basis: str, *values: float) -> Any:
        return h.explore(basis, values)

    def center_of(basis: str) -> list[Any]:
        return start(basis, None)

    def at_seed(basis: str, seed: Any) -> list[Any]:
        return start(basis, whole("seed", seed, 0, MAX_SEED))  # an empty seed box is an error, not the centre

    gr.on([s.input for s in sliders], shown(explore), [basis_radio, *sliders], image, api_name="explore",
          trigger_mode="always_last", show_progress="hidden")
    gr.on([basis_radio.change, center.click], shown(center_of), basis_radio, [*sliders, image],
          api_name="explore_center", show_progress="hidden")
    random.click(shown(at_seed), [basis_radio, seed_box], [*sliders, image], api_name="explore_random",
                 show_progress="hidden")


def _reconstruct_tab(h: Handlers, uploads: UploadFolder) -> None:
    with gr.Row():
        upload = gr.Image(label="Your image", elem_id="reconstruct-upload", scale=1,
                          **{**UPLOAD, "height": 320})
        seen = gr.Image(label="As the model sees it", elem_id="reconstruct-input", scale=1, **IMAGE)
        rebuilt = gr.Image(label="Reconstruction", elem_id="reconstruct-output", scale=1, **IMAGE)
    with gr.Row():
        score = gr.Number(None, label="Score (higher is more typical)", precision=2, interactive=False, scale=1,
                          elem_id="reconstruct-score")
        reading = gr.Markdown("Upload an image to see its reconstruction and how typical the model finds it.",
                              label="Reading", elem_id="reconstruct-reading")
        button = gr.Button("Reconstruct", variant="primary", elem_id="reconstruct-button", scale=0)

    def reconstruct(image: Any) -> tuple[Any, ...]:
        return h.reconstruct(uploads.path_of(image))

    gr.on([upload.upload, button.click], shown(reconstruct), upload, [seen, rebuilt, score, reading],
          api_name="reconstruct", preprocess=False)


def _model_tab(h: Handlers) -> None:
    info = h.model_info()
    gr.Markdown(markdown_table(info["summary"]), elem_id="model-table")
    with gr.Accordion("Full manifest", open=False):
        gr.JSON(info["manifest"], show_label=False)


def build_app(bundle: str | os.PathLike[str], *, device: str = "auto", queue_size: int = QUEUE_SIZE) -> gr.Blocks:
    """The Blocks app for the bundle folder `bundle`, loaded on `device` (auto, cpu or cuda), whose queue
    holds at most `queue_size` waiting calls.

    Launch it with `app.launch(**launch_settings(bundle))` (or use `serve`) to get its safety settings.
    """
    workdir = private_temp_dir()
    vae = VAE.load(bundle, device=device)
    h = Handlers(vae, workdir / "results")
    uploads = UploadFolder(workdir, (Path(bundle),))
    if h.verification.checked and not h.verification.passed:
        raise BundleError(f"{bundle}: not served, because this machine does not compute what the model computed at "
                          f"export: {h.verification.summary()}. Run `vaekit-check {bundle}` for every figure; try "
                          "--device cpu, or re-export the bundle in float32")
    log.info("vaekit-ui: %s %s", bundle, h.verification.summary())
    with gr.Blocks(title=f"vaekit · {Path(bundle).resolve().name}", analytics_enabled=False,
                   delete_cache=CACHE_CLEANUP) as app:
        gr.Markdown(_header(vae), elem_id="vaekit-header")
        tabs = {"Sample": _sample_tab, "Interpolate": functools.partial(_interpolate_tab, uploads=uploads),
                "Explore": _explore_tab, "Reconstruct": functools.partial(_reconstruct_tab, uploads=uploads),
                "Model": _model_tab}
        with gr.Tabs():
            for name, tab in tabs.items():
                with gr.Tab(name, id=name.lower()):
                    tab(h)
        gr.api(h.model_info, api_name="model")
    app.queue(default_concurrency_limit=CONCURRENCY, max_size=queue_size, status_update_rate=STATUS_EVERY)
    return app


def launch_settings(bundle: str | os.PathLike[str]) -> dict[str, Any]:
    """Keyword arguments for `Blocks.launch`: look, upload and request caps, and the files that may never be served."""
    return {
        "max_file_size": MAX_UPLOAD_BYTES,
        "app_kwargs": {"middleware": [Middleware(RequestLimit, folder=private_temp_dir())]},
        "state_session_capacity": SESSIONS,
        "allowed_paths": [],
        "blocked_paths": [str(Path(bundle).resolve())],
        "show_error": False,
        "footer_links": ["api"],
        "ssr_mode": False,
        "mcp_server": False,
        "enable_monitoring": False,
        "pwa": False,
        "css": STYLE,
        "theme": gr.themes.Soft(primary_hue="indigo"),
    }


def preload_matplotlib() -> None:
    """Import matplotlib now, where it is installed, with the non-interactive Agg backend unless one is chosen.

    Gradio switches matplotlib's backend around every call; left to the first call, that import (0.1 s, or 0.7 s
    when it must also pick a backend) would stall every request queued behind it."""
    if importlib.util.find_spec("matplotlib") is not None:
        os.environ.setdefault("MPLBACKEND", "agg")
        importlib.import_module("matplotlib")


def serve(bundle: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 7860, share: bool = False, *,
          device: str = "auto") -> gr.Blocks:
    """Build the app and start serving it on `host`:`port` (plus a public gradio.live link with `share`)
    in a background thread; `app.local_url` is its address, `app.close()` stops it."""
    preload_matplotlib()
    app = build_app(bundle, device=device)
    try:
        app.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=True, quiet=True,
                   **launch_settings(bundle))
    except OSError as e:
        hint = ("is something else using that port? Choose another port (vaekit-ui --port)"
                if e.errno in (None, errno.EADDRINUSE) else "choose another --host or --port")
        raise VaekitError(f"cannot serve on {host}:{port}: {e.strerror or e}; {hint}") from e
    # What start-up built (gradio, the app, the model: some 200,000 objects) lives as long as the server. Frozen,
    # the collector never scans it again, so a full collection (one every few hundred calls) no longer stalls every
    # request for 0.1 to 0.3 s.
    gc.collect()
    gc.freeze()
    return app
