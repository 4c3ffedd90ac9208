"""Learning-rate schedules as pure functions of the step, so a resumed run continues the exact schedule."""
from __future__ import annotations

import math


def cosine_lr(base_lr: float, step: int, total_steps: int) -> float:
    """Cosine decay from `base_lr` at step 0 to 0 after `total_steps` (0-based `step`; SGDR without restarts)."""
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))


def expert_lr(base_lr: float, schedule: str, step: int, total_steps: int) -> float:
    """The expert's lr at (0-based) `step` under `train_expert.lr_schedule`."""
    if schedule == "constant":
        return base_lr
    if schedule == "cosine":
        return cosine_lr(base_lr, step, total_steps)
    raise ValueError(f"unknown lr schedule {schedule!r} (constant | cosine)")


def generator_lr(lr: float, pixel_only_lr: float, pixel_only_steps: int, step: int) -> float:
    """The learning rate at (0-based) `step`: `pixel_only_lr` in the pixel-only phase, else `lr` (the paper's 1e-4;
    at 1e-3 the terms that join after the pixel-only phase undo what it learned in a few dozen steps)."""
    return pixel_only_lr if step < pixel_only_steps else lr


def set_lr(optimizers, lr: float) -> None:
    """Write `lr` into every param group that does not have it already."""
    for opt in optimizers:
        for group in opt.param_groups:
            if group["lr"] != lr:
                group["lr"] = lr
