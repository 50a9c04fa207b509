"""When to change the step size and when to stop, for every trainer: the learning-rate schedule, a pure
function of the step and the share of the time budget used (nanoGPT's get_lr), and early stopping."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal


def get_lr(step: int, lr: float, warmup_steps: int, max_steps: int, min_lr_ratio: float,
           time_frac: float = 0.0) -> float:
    """Linear warmup over `warmup_steps`, then cosine decay from `lr` to `lr * min_lr_ratio`.

    The decay's progress (0 -> 1, clamped) is the share of the steps after warmup that have run (when
    `max_steps` > 0) or `time_frac`, the share of a time budget used after warmup, whichever is further.
    """
    min_lr = lr * min_lr_ratio
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if max_steps and step >= max_steps:
        return min_lr
    progress = time_frac
    if max_steps:
        progress = max(progress, (step - warmup_steps) / max(1, max_steps - warmup_steps))
    progress = min(1.0, max(0.0, progress))
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (lr - min_lr)


@dataclass
class EarlyStopping:
    """Keep the best value of a validation metric; stop after `patience` validations in a row that did not
    improve on it by more than `min_delta` (patience 0: never stop)."""

    mode: Literal["min", "max"] = "min"
    patience: int = 0
    min_delta: float = 0.0
    best: float | None = None  # None: nothing validated yet, the first value improves
    bad_evals: int = 0  # validations since the last improvement

    def update(self, value: float) -> bool:
        """Record one validation -> whether it is a new best."""
        if self.best is None:
            improved = True
        elif self.mode == "max":
            improved = value > self.best + self.min_delta
        else:
            improved = value < self.best - self.min_delta
        if improved:
            self.best, self.bad_evals = value, 0
        else:
            self.bad_evals += 1
        return improved

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_evals >= self.patience
