"""Where a bundle runs: onnxruntime sessions on CUDA or CPU, and proof that the choice held.

onnxruntime silently falls back to CPU when CUDA cannot start; vaekit never does. `cuda` fails
with a `DeviceError` saying why and how to fix it; `auto` uses CUDA when it really works, else
CPU, and logs which. What onnxruntime prints while CUDA is tried (its red error blocks) is caught
and logged at debug level, after vaekit's own one-line reason, which quotes its first error.
"""

from __future__ import annotations

import io
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from importlib import metadata

from .choices import DEVICES
from .errors import BundleError, DeviceError, InputError, MissingExtraError
from .extras import RUNTIME

try:
    import onnxruntime as ort
except ModuleNotFoundError as e:
    raise MissingExtraError(f"vaekit.runtime needs onnxruntime, which is not installed: {RUNTIME}") from e

log = logging.getLogger("vaekit.runtime")

CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"
# Full float32 on CUDA: TF32 tensor cores (onnxruntime's default on Ampere and newer) round float32 matrix
# products to 10-bit mantissas, far beyond a float32 bundle's conformance limits (1e-4).
CUDA_OPTIONS = {"use_tf32": "0"}
OPTIMIZATION_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
CUDA_FIX = (
    "install the GPU runtime with `pip install 'vaekit[gpu]'` (onnxruntime-gpu plus its CUDA and cuDNN "
    "pip packages); never install `onnxruntime` and `onnxruntime-gpu` together (if both are there: "
    "`pip uninstall -y onnxruntime onnxruntime-gpu`, then reinstall 'vaekit[gpu]'); check the NVIDIA "
    "driver with `nvidia-smi`; or load with device='cpu' (or 'auto' to fall back to CPU)"
)


@dataclass(frozen=True)
class SessionConfig:
    """Session settings a caller may tune: thread counts (None: onnxruntime's default) and graph
    optimization level (one of OPTIMIZATION_LEVELS)."""

    intra_op_threads: int | None = None
    inter_op_threads: int | None = None
    graph_optimization: str = "all"

    def __post_init__(self) -> None:
        for name in ("intra_op_threads", "inter_op_threads"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise InputError(f"{name} must be None or an integer >= 0 (0: onnxruntime decides), got {value!r}")
        if self.graph_optimization not in OPTIMIZATION_LEVELS:
            raise InputError(
                f"graph_optimization must be one of {tuple(OPTIMIZATION_LEVELS)}, got {self.graph_optimization!r}"
            )

    def options(self) -> ort.SessionOptions:
        """onnxruntime SessionOptions carrying these settings."""
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.intra_op_threads or 0
        opts.inter_op_num_threads = self.inter_op_threads or 0
        opts.graph_optimization_level = OPTIMIZATION_LEVELS[self.graph_optimization]
        return opts


def installed_runtimes() -> list[str]:
    """The onnxruntime distributions installed (both at once is a known broken set-up)."""
    found = []
    for name in ("onnxruntime", "onnxruntime-gpu"):
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        found.append(name)
    return found


def cuda_unavailable_reason() -> str | None:
    """Why this onnxruntime cannot offer CUDA, or None when its CUDA provider is built in."""
    if CUDA_PROVIDER in ort.get_available_providers():
        return None
    installed = installed_runtimes()
    if len(installed) == 2:
        return "both onnxruntime and onnxruntime-gpu are installed and the CPU-only build is the one in use"
    return (
        f"the installed onnxruntime {ort.__version__} ({', '.join(installed) or 'unknown distribution'}) "
        f"has no {CUDA_PROVIDER} (providers: {', '.join(ort.get_available_providers())})"
    )


def preload_cuda_libraries() -> None:
    """Load the CUDA/cuDNN libraries shipped as pip packages (onnxruntime-gpu[cuda,cudnn]), if any."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return
    try:
        preload()
    except (OSError, RuntimeError) as e:  # the session check below decides whether CUDA works
        log.debug("onnxruntime.preload_dlls failed: %s", e)


@contextmanager
def captured_output() -> Iterator[io.StringIO]:
    """Everything printed meanwhile, by Python or by onnxruntime's C++ logger straight to file descriptors
    1 and 2, collected in the yielded buffer (filled when the block ends) instead of reaching the terminal.
    Process-wide while it lasts: other threads' output in that moment is caught too (and logged at debug)."""
    sink = io.StringIO()
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as tmp, redirect_stdout(sink), redirect_stderr(sink):
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(tmp.fileno(), 1)
            os.dup2(tmp.fileno(), 2)
            yield sink
        finally:
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)
            tmp.seek(0)
            sink.write(tmp.read().decode("utf-8", errors="replace"))


def first_error(output: str) -> str | None:
    """The first error onnxruntime printed (e.g. which CUDA library failed to load), without colour codes
    or its logger's prefix."""
    for line in re.sub(r"\x1b\[[0-9;]*m", "", output).splitlines():
        found = re.search(r"(failed to |error: ).*", line, re.IGNORECASE)
        if found:
            return found.group(0).strip()[:300]
    return None


def _try_cuda(paths: list[str | os.PathLike[str] | bytes], config: SessionConfig) -> tuple[list[ort.InferenceSession] | None, str]:
    """CUDA sessions for `paths`, or None and why not; onnxruntime's own messages go to the debug log."""
    with captured_output() as output:
        preload_cuda_libraries()
        sessions: list[ort.InferenceSession] | None = []
        for path in paths:  # stop at the first graph that falls back to CPU
            session = create_session(path, [(CUDA_PROVIDER, CUDA_OPTIONS), CPU_PROVIDER], config)
            if session.get_providers()[0] != CUDA_PROVIDER:
                sessions = None
                break
            sessions.append(session)
    said = output.getvalue().strip()
    if said:
        log.debug("onnxruntime's output while it tried CUDA:\n%s", said)
    if sessions is not None:
        return sessions, ""
    detail = first_error(said)
    return None, (f"onnxruntime could not start {CUDA_PROVIDER}"
                  + (f" ({detail})" if detail else " (CUDA or cuDNN libraries missing or of the wrong version, or no "
                     "usable GPU/driver)") + "; onnxruntime's full output is logged at debug level (logger "
                  "'vaekit.runtime')")


def create_session(source: str | os.PathLike[str] | bytes, providers: list, config: SessionConfig) -> ort.InferenceSession:
    """An onnxruntime session for one graph (a file, or its bytes); one onnxruntime cannot load is a BundleError."""
    path = "the in-memory graph" if isinstance(source, bytes) else os.fspath(source)
    try:
        return ort.InferenceSession(source if isinstance(source, bytes) else path, sess_options=config.options(),
                                    providers=providers)
    except Exception as e:  # onnxruntime raises its own pybind classes (Fail, InvalidGraph, ...)
        raise BundleError(
            f"{path}: onnxruntime {ort.__version__} cannot load this graph ({type(e).__name__}: {e}); "
            "the file is corrupt or needs a newer onnxruntime; re-export the bundle or upgrade onnxruntime"
        ) from e


def open_sessions(
    paths: list[str | os.PathLike[str] | bytes], device: str, config: SessionConfig
) -> tuple[list[ort.InferenceSession], str]:
    """Sessions for `paths` (graph files, or their bytes) on `device` ("auto" | "cpu" | "cuda"), and the device
    they really run on."""
    if device not in DEVICES:
        raise InputError(f"device must be one of {DEVICES}, got {device!r}")
    if device != "cpu":
        reason = cuda_unavailable_reason()
        if reason is None:
            sessions, reason = _try_cuda(paths, config)
            if sessions is not None:
                log.info("running on CUDA (device=%r)", device)
                return sessions, "cuda"
        if device == "cuda":
            raise DeviceError(f"device='cuda' was requested but {reason}. Fix: {CUDA_FIX}")
        log.info("device='auto' runs on CPU because %s", reason)
    return [create_session(p, [CPU_PROVIDER], config) for p in paths], "cpu"
