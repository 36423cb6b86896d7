"""The run settings that are deliberately not params (params.yaml itself is read by audiosr.config).

Workers and device do not change results, so they are not DVC params (they would make an
experiment's identity depend on the machine): $AUDIOSR_WORKERS sets how many cores a stage uses, as
worker processes (data stages, evaluation) or torch threads (training; default: every core).
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
