"""The training loop shared by the VAE, vocoder and latent diffusion: resume, learning-rate warm-up,
NaN guard, checkpoints, progress bar, loss logs for DVC plots and MLflow.

A model's training is a `Task`: it owns its modules and optimizers and does one optimisation step
(forward, losses, backward, clipping, optimizer steps) in `step`. Batches are drawn from
``batch_rng(seed, step)``, a function of the step alone, so a resumed run sees the same batches as
an uninterrupted one, and N processes under torchrun split the same global batch one process sees.
A task that reads its batches from the data (the VAE's and the vocoder's crops) draws them in `batch`,
which `batches` runs ahead of the steps in worker processes where $AUDIOSR_LOADER_WORKERS says (by
default on a GPU), into pinned memory; the others draw theirs in `step` (their data lives on the device).
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from audiosr.params import loader_workers
from audiosr.progress import bar
from audiosr.train.checkpoint import fingerprint, load_checkpoint, read_totals, save_checkpoint
from audiosr.train.distributed import Dist

if TYPE_CHECKING:
    from audiosr.config import LoopConfig

CHECKPOINT_EVERY = int(os.environ.get("AUDIOSR_CHECKPOINT_EVERY", "100"))  # steps; not a param: no effect on results
LOG_EVERY = int(os.environ.get("AUDIOSR_LOG_EVERY", "10"))


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the message names the step and the last good checkpoint."""


def lr_at(cfg: LoopConfig, step: int) -> float:
    """The learning rate of `step`: linear warm-up over cfg.warmup steps, then cosine decay to 10 % of
    cfg.lr at cfg.steps."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def optimizers(modules: dict[str, torch.nn.Module], cfg: LoopConfig) -> dict[str, torch.optim.Optimizer]:
    """One AdamW per trained module (cfg.lr, cfg.betas, cfg.weight_decay); `run` sets the learning rate of
    every step (`lr_at`)."""
    return {
        name: torch.optim.AdamW(m.parameters(), cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
        for name, m in modules.items()
    }


def batch_rng(seed: int, step: int) -> np.random.Generator:
    return np.random.default_rng([seed, step])


def rank_slice(indices: np.ndarray, d: Dist) -> np.ndarray:
    """This process's share of a global batch."""
    return indices[d.rank :: d.world]


class Task(Protocol):
    name: str
    modules: dict[str, torch.nn.Module]  # everything checkpointed (networks, EMA, discriminators)
    optimizers: dict[str, torch.optim.Optimizer]
    samples_per_step: int

    def step(self, step: int, batch: Any) -> dict[str, float]:
        """One optimisation step; `batch` is what the task's `batch(step)` drew, None for a task without one."""
        ...

    def validate(self) -> dict[str, float]: ...

    def log_examples(self, mlflow, step: int) -> None: ...


def clip_and_step(opt: torch.optim.Optimizer, params, clip: float) -> float:
    """Clip the gradient norm, take the optimizer step, return the norm before clipping."""
    norm = torch.nn.utils.clip_grad_norm_(params, clip)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return float(norm)


class _Steps(torch.utils.data.Dataset):
    """The batches of `steps`, item i that of steps[i], for a DataLoader's workers."""

    def __init__(self, task, steps: range):
        self.task, self.steps = task, steps

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, i: int):
        return self.task.batch(self.steps[i])


def batches(task: Task, steps: range, d: Dist) -> Iterator[Any]:
    """The batch of each step in `steps`, in order: `task.batch(step)` where the task has one (it must draw
    from `batch_rng`, not torch's global generator, so any process draws the same), else None. With
    $AUDIOSR_LOADER_WORKERS above 0, worker processes draw them ahead (torch's DataLoader, a few batches
    each), into pinned memory on a GPU so that the step's copies to it do not block."""
    if not hasattr(task, "batch"):
        return (None for _ in steps)
    cuda = d.device.type == "cuda"
    workers = loader_workers(cuda)
    if workers == 0 or len(steps) == 0:
        return (task.batch(step) for step in steps)
    loader = torch.utils.data.DataLoader(
        _Steps(task, steps), batch_size=None, num_workers=workers, pin_memory=cuda, prefetch_factor=4
    )
    return iter(loader)


NO_TOTALS = {"seconds": 0.0, "samples": 0, "invocations": 0}


def totals(checkpoint_dir: Path, identity: dict) -> dict[str, float]:
    """The whole training's totals, as the last checkpoint of the run `identity` in `checkpoint_dir` holds
    them (after `run`): steps, seconds, samples, samples_per_s, invocations (a resumed training counts
    each process start that trained), resumes."""
    t = read_totals(checkpoint_dir / "last", fingerprint(identity)) or {"steps": 0, **NO_TOTALS}
    seconds = float(t["seconds"])
    return {
        "steps": int(t["steps"]),
        "seconds": seconds,
        "samples": int(t["samples"]),
        "samples_per_s": t["samples"] / seconds if seconds > 0 else 0.0,
        "invocations": int(t["invocations"]),
        "resumes": max(0, int(t["invocations"]) - 1),
    }


def run(
    task: Task,
    cfg: LoopConfig,
    checkpoint_dir: Path,
    identity: dict,
    d: Dist,
    mlflow=None,
    log_csv: Path | None = None,
) -> dict[str, float]:
    """Train `task` for cfg.steps steps, resuming from checkpoint_dir when it holds a checkpoint of
    the same run (same `identity`). Returns the final validation metrics.

    Each checkpoint also holds the training's totals so far (`totals`): seconds in this loop and samples
    seen, summed over every invocation that trained, counting the steps up to the checkpoint once (work
    done after the last checkpoint of an interrupted invocation is lost, and its time with it)."""
    run_id = fingerprint(identity)
    ckpt = checkpoint_dir / "last"
    start = load_checkpoint(ckpt, task.modules, task.optimizers, run_id)
    before = (read_totals(ckpt, run_id) or NO_TOTALS) if start else NO_TOTALS
    rows_path = checkpoint_dir / "log.csv"  # survives with the checkpoint; truncated to it on resume
    rows = _read_rows(rows_path, start) if start else []
    if d.main and start:
        print(f"{task.name}: resuming from step {start} ({ckpt})")
    val: dict[str, float] = {}
    t_start = t_last = time.perf_counter()
    steps_timed = 0
    with bar(task.name, disable=None if d.main else True) as progress:
        bar_task = progress.add_task(task.name, total=cfg.steps, completed=start, info="")
        steps = range(start, cfg.steps)
        for step, batch in zip(steps, batches(task, steps, d), strict=True):
            for opt in task.optimizers.values():
                for group in opt.param_groups:
                    group["lr"] = lr_at(cfg, step)
            # the step's randomness is a function of (seed, step), so a resumed run draws what an
            # uninterrupted one would have (tasks slice global-batch draws by rank)
            torch.manual_seed(cfg.seed * 1_000_003 + step)
            losses = task.step(step, batch)
            bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
            if bad:
                raise TrainingDiverged(
                    f"{task.name}: step {step}: loss {', '.join(f'{k}={v}' for k, v in bad.items())}; the last good "
                    f"checkpoint (step {max(start, step // CHECKPOINT_EVERY * CHECKPOINT_EVERY)}) is kept in {ckpt}; "
                    "lower the learning rate and run again"
                )
            steps_timed += 1
            done = step + 1
            if done % LOG_EVERY == 0 or done == cfg.steps:
                losses = d.mean(losses)
                now = time.perf_counter()
                rate = steps_timed * task.samples_per_step / max(now - t_last, 1e-9)
                t_last, steps_timed = now, 0
                row = {
                    "step": done,
                    **{k: round(v, 6) for k, v in losses.items()},
                    "lr": lr_at(cfg, step),
                    "samples_per_s": round(rate, 2),
                }
                rows.append(row)
                if mlflow is not None:
                    mlflow.log_metrics(mlflow_names(row), step=done)
                main_loss = next(iter(losses.values()))
                progress.update(bar_task, info=f"loss {main_loss:.4f} {rate:.1f} samples/s")
            progress.update(bar_task, completed=done)
            if done % cfg.validate_every == 0 or done == cfg.steps:
                val = d.mean(task.validate())
                if mlflow is not None:
                    mlflow.log_metrics(val, step=done)
                    task.log_examples(mlflow, done)
            if done % CHECKPOINT_EVERY == 0 or done == cfg.steps:
                if d.main:
                    now = {
                        "steps": done,
                        "seconds": before["seconds"] + time.perf_counter() - t_start,
                        "samples": before["samples"] + (done - start) * task.samples_per_step,
                        "invocations": before["invocations"] + 1,
                    }
                    save_checkpoint(ckpt, done, task.modules, task.optimizers, run_id, totals=now)
                    _write_rows(rows_path, rows)
                d.barrier()
    if start >= cfg.steps:  # finished by an earlier invocation (killed before its export): measure it again
        val = d.mean(task.validate())
        if mlflow is not None:
            mlflow.log_metrics(val, step=cfg.steps)
    if d.main and log_csv is not None:
        _write_rows(log_csv, rows)
    return val


def mlflow_names(row: dict) -> dict[str, float]:
    """A log row's MLflow names: the losses, learning rate and gradient norm under `train/`, the
    throughput under `time/`."""
    return {("time/" if k == "samples_per_s" else "train/") + k: v for k, v in row.items() if k != "step"}


def _read_rows(path: Path, upto: int) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [
            {k: (float(v) if k != "step" else int(v)) for k, v in r.items() if v != ""}
            for r in csv.DictReader(f)
            if int(r["step"]) <= upto
        ]


def _write_rows(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)


def write_summary(path: Path, metrics: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({k: round(float(v), 6) for k, v in metrics.items()}, indent=2) + "\n")
