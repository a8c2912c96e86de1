"""vaekit.train: train VAEs on any image set with PyTorch; runs are resumable and never lost.

    from vaekit.train import TrainConfig, train
    run = train(TrainConfig(data="digits", out="runs/digits"))

Names load on first use, so `vaekit-train` can say which extra is missing instead of failing in an import.
"""

from vaekit.runtime.extras import lazy_exports

_WHERE = {
    "ConfigError": "errors",
    "RunError": "errors",
    "TrainConfig": "config",
    "DataError": "errors",
    "load_data": "data",
    "LoadedRun": "run",
    "load_run": "run",
    "TrainingError": "errors",
    "train": "train_cli",
}
__all__ = sorted(_WHERE)
__getattr__ = lazy_exports(__name__, _WHERE)
