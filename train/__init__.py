"""vaekit.train: train VAEs on any image set with PyTorch; runs are resumable and never lost.

    from vaekit.train import TrainConfig, train
    run = train(TrainConfig(data="digits", out="runs/digits"))
"""

from .checkpoint import RunError
from .config import TrainConfig
from .data import DataError, load_data
from .run import LoadedRun, load_run
from .trainer import TrainingError, train

__all__ = ["DataError", "LoadedRun", "RunError", "TrainConfig", "TrainingError", "load_data", "load_run", "train"]
