"""Where a bundle runs: onnxruntime sessions on CUDA or CPU, and proof that the choice held.

onnxruntime silently falls back to CPU when CUDA cannot start; vaekit never does. `cuda` fails
with a `DeviceError` saying why and how to fix it; `auto` uses CUDA when it really works, else
CPU, and logs which.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from importlib import metadata

import onnxruntime as ort

from .bundle import BundleError

log = logging.getLogger("vaekit.runtime")

DEVICES = ("auto", "cpu", "cuda")
CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"
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


class DeviceError(RuntimeError):
    """The requested device cannot run the bundle (e.g. `cuda` without a working CUDA provider)."""


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
                raise ValueError(f"{name} must be None or an integer >= 0 (0: onnxruntime decides), got {value!r}")
        if self.graph_optimization not in OPTIMIZATION_LEVELS:
            raise ValueError(
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


def create_session(path: str | os.PathLike[str], providers: list[str], config: SessionConfig) -> ort.InferenceSession:
    """An onnxruntime session for one graph file; a file onnxruntime cannot load is a BundleError."""
    try:
        return ort.InferenceSession(os.fspath(path), sess_options=config.options(), providers=providers)
    except Exception as e:  # onnxruntime raises its own pybind classes (Fail, InvalidGraph, ...)
        raise BundleError(
            f"{path}: onnxruntime {ort.__version__} cannot load this graph ({type(e).__name__}: {e}); "
            "the file is corrupt or needs a newer onnxruntime; re-export the bundle or upgrade onnxruntime"
        ) from None


def open_sessions(
    paths: list[str | os.PathLike[str]], device: str, config: SessionConfig
) -> tuple[list[ort.InferenceSession], str]:
    """Sessions for `paths` on `device` ("auto" | "cpu" | "cuda"), and the device they really run on."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device != "cpu":
        reason = cuda_unavailable_reason()
        if reason is None:
            preload_cuda_libraries()
            sessions = [create_session(p, [CUDA_PROVIDER, CPU_PROVIDER], config) for p in paths]
            if all(s.get_providers()[0] == CUDA_PROVIDER for s in sessions):
                log.info("running on CUDA (device=%r)", device)
                return sessions, "cuda"
            reason = (
                f"onnxruntime could not start {CUDA_PROVIDER} (CUDA or cuDNN libraries missing or of the wrong "
                "version, or no usable GPU/driver; onnxruntime's own log above says which)"
            )
        if device == "cuda":
            raise DeviceError(f"device='cuda' was requested but {reason}. Fix: {CUDA_FIX}")
        log.info("device='auto' runs on CPU because %s", reason)
    return [create_session(p, [CPU_PROVIDER], config) for p in paths], "cpu"
