"""What every training stage does around its Task: processes, MLflow run, checkpoints, outputs.

Outputs of stage train_<name>:
  models/<name>/model.safetensors + config.json   the finished model (DVC out)
  metrics/train_<name>.json                        final validation (DVC metrics)
  metrics/stats/train_<name>.json                  the whole training's steps, seconds, samples/s and
                                                   invocations, parameter counts (not metrics)
  metrics/train_<name>_log.csv                     the loss curve's values
  plots/train_<name>_loss.png                      the loss curve (a DVC image plot)
  checkpoints/<name>/last/                         the resumable state (outside DVC's outs, so it survives)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import torch

from audiosr import results
from audiosr.config import LoopConfig, Params, mel_dict, to_dict
from audiosr.params import workers
from audiosr.tracking import stage_run
from audiosr.train import distributed
from audiosr.train.checkpoint import code_fingerprint, save_model
from audiosr.train.loop import Task, run, totals


def param_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def train_stage(
    name: str,
    cfg: LoopConfig,
    profile: str,
    make_task: Callable[[distributed.Dist], Task],
    identity: dict,
    logged: dict,
    root: Path = Path("."),
) -> dict:
    """Train, export models/<name>, write metrics; under torchrun only rank 0 writes and logs.

    The metrics (JSON and MLflow) report the whole training, also when it was interrupted and resumed:
    steps, seconds and samples/s summed over the invocations that trained (`loop.totals`), and how many
    there were (`invocations`, `resumes`)."""
    identity = {**identity, "code": code_fingerprint()}  # other code: the checkpoint is not resumed
    d = distributed.setup()
    if d.device.type == "cpu":  # share the cores ($AUDIOSR_WORKERS) between the processes torchrun started
        torch.set_num_threads(max(1, workers() // d.world))
    try:
        with stage_run(f"train_{name}", logged) if d.main else contextlib.nullcontext(None) as mlflow:
            task = make_task(d)
            counts = {f"params/{k}": param_count(m) for k, m in task.modules.items()}
            if mlflow is not None:
                mlflow.log_params({k: str(v) for k, v in counts.items()})
                mlflow.log_params({"world_size": d.world, "device": str(d.device)})
            checkpoints = root / "checkpoints" / name
            val = run(task, cfg, checkpoints, identity, d, mlflow, log_csv=root / "metrics" / f"train_{name}_log.csv")
            summary: dict = {}
            if d.main:
                state, config = task.export()
                config["profile"] = profile
                save_model(root / "models" / name, state, config)
                whole = totals(checkpoints, identity)
                summary = {**val, **whole, **counts}
                results.write_training(root, name, summary)
                # the exported model's config; its weights are a DVC out, and the pipeline the package
                # stage registers carries them all (the full profile's are 2.7 GB a run)
                mlflow.log_artifact(str(root / "models" / name / "config.json"), "model")
                timing = ("seconds", "samples_per_s")  # the whole training's; the stage's own is time/duration_s
                logged = {(f"time/train_{k}" if k in timing else f"total/{k}"): v for k, v in whole.items()}
                mlflow.log_metrics(logged, step=whole["steps"])
                print(f"train_{name}: " + ", ".join(f"{k} {v:.4g}" for k, v in summary.items()))
            return summary
    finally:
        distributed.teardown(d)


def clean_data_stage(name: str, task_cls: Callable, params: Params) -> dict:
    """The stage of a model trained on clean segments alone (the VAE, the vocoder)."""
    from audiosr.data.store import SegmentSet

    cfg = getattr(params, name)
    train, valid = SegmentSet.open("data/segments/train"), SegmentSet.open("data/segments/valid")
    return train_stage(
        name,
        cfg,
        params.profile,
        lambda d: task_cls(cfg, params.mel, train, valid, d),
        identity={"params": to_dict(cfg), "data": train.meta},
        logged={"profile": params.profile, name: to_dict(cfg), "mel": mel_dict(params.mel)},
    )
