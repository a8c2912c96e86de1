"""The time a `vaekit-train` command may spend (`--max-time`), and the chores paced to a share of it.

The budget counts from the command's start and covers the whole command: loading data, building the
model, the periodic held-out passes, image grids, checkpoints, and the final test NLL estimate, which is
sized to at most NLL_SHARE of the budget (of the training time, without one). Chores (evaluation, grids, checkpoints) run as often as they
can while costing about their share of the wall clock, so a run spends its budget on training
whatever the data size: a cheap held-out pass runs often, a costly one seldom.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

# Wall-clock shares of the periodic chores (their sum is what planning keeps back from training).
EVAL_SHARE, IMAGES_SHARE, CHECKPOINT_SHARE = 0.02, 0.01, 0.01
CHORES_SHARE = EVAL_SHARE + IMAGES_SHARE + CHECKPOINT_SHARE
NLL_SHARE = 0.15  # of the budget (or of the training time) that the final test NLL estimate may take
# However cheap, a held-out pass runs at most every second and a pair of grids every 10 s (their records and
# files would pile up on tiny data); checkpoints are written at least every minute, so a kill -9 loses at most that.
EVAL_MIN_S, IMAGES_MIN_S, CHECKPOINT_MIN_S, CHECKPOINT_MAX_S = 1.0, 10.0, 1.0, 60.0


@dataclass
class Budget:
    """`seconds` (None: no limit) from `started`, a `time.perf_counter()` reading taken when the command began."""

    seconds: float | None
    started: float = field(default_factory=time.perf_counter)

    def left(self) -> float:
        """Seconds left (infinite without a limit)."""
        if self.seconds is None:
            return math.inf
        return self.started + self.seconds - time.perf_counter()


@dataclass
class Paced:
    """A chore that is due once its last run's cost is at most `share` of the time since, and at least `min_s`
    has passed; or once `max_s` has passed, whatever it costs."""

    share: float
    min_s: float = 0.0
    max_s: float = math.inf
    cost: float = 0.0
    last: float = -math.inf

    def due(self, now: float) -> bool:
        return now - self.last >= min(self.max_s, max(self.min_s, self.cost / self.share))

    def ran(self, began: float, now: float) -> None:
        """Record a run that began at `began` and ended at `now` (perf_counter readings)."""
        self.cost, self.last = now - began, now


@dataclass
class StepClock:
    """The seconds one training step takes, chores included (they share the clock), as a moving average over
    about 1/`smoothing` steps; `seconds` starts from a planning estimate, or from the first step."""

    seconds: float | None = None
    smoothing: float = 0.02
    last: float = field(default_factory=time.perf_counter)

    def tick(self) -> float:
        """Call once per step; returns the current estimate."""
        now = time.perf_counter()
        taken, self.last = now - self.last, now
        self.seconds = taken if self.seconds is None else self.seconds + self.smoothing * (taken - self.seconds)
        return self.seconds
