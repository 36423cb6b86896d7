"""An ordered map over a pool of processes, one torch thread each; in-process for one worker.

Spawned, not forked: a forked child of a process that already ran torch's thread pool can hang.
Results come back in task order, so the worker count never changes an output.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterator

import torch


def _init(initializer: Callable | None, initargs: tuple) -> None:
    # one thread per worker for every pool in it: torch's, and numba's (ViSQOL), which is imported later and
    # would otherwise start a thread per core that spins against the other workers
    os.environ["NUMBA_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    if initializer is not None:
        initializer(*initargs)


def pool_map(
    fn: Callable, tasks: list, workers: int, initializer: Callable | None = None, initargs: tuple = ()
) -> Iterator:
    """fn over tasks, in order. `initializer(*initargs)` runs once per worker (or once here)."""
    if workers <= 1 or len(tasks) <= 1:
        if initializer is not None:
            initializer(*initargs)
        yield from map(fn, tasks)
        return
    with mp.get_context("spawn").Pool(
        min(workers, len(tasks)), initializer=_init, initargs=(initializer, initargs)
    ) as pool:
        yield from pool.imap(fn, tasks)
