"""What every training stage does around its Task: processes, MLflow run, checkpoints, outputs.

Outputs of stage train_<name>:
  models/<name>/model.safetensors + config.json   the finished model (DVC out)
  metrics/train_<name>.json                        final losses, validation, time, parameter count (DVC metrics)
  metrics/train_<name>_log.csv                     the loss curve (DVC plots)
  checkpoints/<name>/last/                         the resumable state (outside DVC's outs, so it survives)
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch

from audiosr.tracking import stage_run
from audiosr.train import distributed
from audiosr.train.checkpoint import save_model
from audiosr.train.loop import Settings, Task, run, write_summary


def param_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def train_stage(name: str, block: dict, profile: str, make_task: Callable[[Settings, distributed.Dist], Task],
                identity: dict, logged: dict, root: Path = Path(".")) -> dict:
    """Train, export models/<name>, write metrics; under torchrun only rank 0 writes and logs."""
    d = distributed.setup()
    if d.device.type == "cpu":  # share the cores between the processes torchrun started
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        torch.set_num_threads(max(1, cores // d.world))
    try:
        settings = Settings.from_params(block)
        start = time.perf_counter()
        with stage_run(f"train_{name}", logged) if d.main else contextlib.nullcontext(None) as mlflow:
            task = make_task(settings, d)
            counts = {f"params/{k}": param_count(m) for k, m in task.modules.items()}
            if mlflow is not None:
                mlflow.log_params({k: str(v) for k, v in counts.items()})
                mlflow.log_params({"world_size": d.world, "device": str(d.device)})
            val = run(task, settings, root / "checkpoints" / name, identity, d, mlflow,
                      log_csv=root / "metrics" / f"train_{name}_log.csv")
            summary: dict = {}
            if d.main:
                state, config = task.export()
                config["profile"] = profile
                save_model(root / "models" / name, state, config)
                summary = {**val, "steps": settings.steps, "seconds": time.perf_counter() - start, **counts}
                write_summary(root / "metrics" / f"train_{name}.json", summary)
                mlflow.log_artifacts(str(root / "models" / name), "model")
                mlflow.log_metrics({k: v for k, v in summary.items() if not k.startswith("params/")})
                print(f"train_{name}: " + ", ".join(f"{k} {v:.4g}" for k, v in summary.items()))
            return summary
    finally:
        distributed.teardown(d)


def clean_data_stage(name: str, task_cls: Callable, params: dict) -> dict:
    """The stage of a model trained on clean segments alone (the VAE, the vocoder)."""
    from audiosr.audio import MelConfig
    from audiosr.data.store import SegmentSet
    from audiosr.profiles import resolve

    block, profile = params[name], params["profile"]
    arch = resolve(profile, name, block)
    mel = MelConfig.from_params(params["mel"])
    train, valid = SegmentSet.open("data/segments/train"), SegmentSet.open("data/segments/valid")
    return train_stage(name, block, profile, lambda s, d: task_cls(arch, s, mel, train, valid, d),
                       identity={"block": block, "arch": arch, "data": train.meta},
                       logged={"profile": profile, name: block, f"{name}_arch": arch, "mel": params["mel"]})
