"""The run settings that are deliberately not params (params.yaml itself is read by audiosr.config).

Workers and device do not change results, so they are not DVC params (they would make an
experiment's identity depend on the machine): $AUDIOSR_WORKERS sets how many cores a stage uses, as
worker processes (data stages, evaluation) or torch threads (training; default: every core);
$AUDIOSR_LOADER_WORKERS how many processes draw a training's batches ahead of its steps.
"""

from __future__ import annotations

import os


def workers() -> int:
    value = os.environ.get("AUDIOSR_WORKERS")
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"AUDIOSR_WORKERS: {value!r} is not a positive integer")
        return int(value)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def loader_workers(cuda: bool) -> int:
    """$AUDIOSR_LOADER_WORKERS: the processes that draw a training's batches ahead of its steps (torch's
    DataLoader); by default 4 on a GPU, and none on a CPU, where they would take the training's cores."""
    value = os.environ.get("AUDIOSR_LOADER_WORKERS")
    if value:
        if not value.isdigit():
            raise ValueError(f"AUDIOSR_LOADER_WORKERS: {value!r} is not a whole number (0: none)")
        return int(value)
    return 4 if cuda else 0
