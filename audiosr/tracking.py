"""MLflow conventions: one run per stage execution, all in one store per project.

Store: $MLFLOW_TRACKING_URI if set (a team's server), else ``sqlite:///<repo root>/mlflow.db`` with
artifacts in ``<repo root>/mlartifacts``. The repo root is the main checkout also when DVC runs an
experiment in a temporary copy (``dvc exp run --temp`` / ``--queue``): DVC passes the parent
repository as $DVC_ROOT there, and a path inside ``.dvc/tmp/exps/`` is cut back to its owner.

Runs are named ``<experiment>/<stage>`` in the MLflow experiment "audiosr" ($AUDIOSR_MLFLOW_EXPERIMENT
overrides) and tagged with the DVC experiment name, the baseline commit and the stage.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

EXPERIMENT = "audiosr"


def repo_root(start: str | Path | None = None) -> Path:
    """The main checkout's root (the folder holding dvc.yaml), seen from `start` or the cwd."""
    if os.environ.get("DVC_ROOT"):
        return _owner(Path(os.environ["DVC_ROOT"]).resolve())
    here = Path(start or os.getcwd()).resolve()
    for p in (here, *here.parents):
        if (p / "dvc.yaml").exists() or (p / ".dvc").is_dir():
            return _owner(p)
    return here


def _owner(path: Path) -> Path:
    parts = path.parts
    for i in range(len(parts) - 2):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    return path


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root() / 'mlflow.db'}"


def _baseline_rev() -> str:
    if os.environ.get("DVC_EXP_BASELINE_REV"):
        return os.environ["DVC_EXP_BASELINE_REV"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def flatten(params: dict, prefix: str = "") -> dict[str, str]:
    """{'noise': {'type': 'tone'}} -> {'noise.type': 'tone'} (MLflow params are flat strings)."""
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = str(value)[:6000]
    return out


def _experiment_id(mlflow) -> str:
    name = os.environ.get("AUDIOSR_MLFLOW_EXPERIMENT", EXPERIMENT)
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    uri = mlflow.get_tracking_uri()
    location = None
    if uri.startswith("sqlite:///"):  # keep artifacts beside the database, not in the cwd
        location = (Path(uri[len("sqlite:///") :]).parent / "mlartifacts").as_uri()
    try:
        return mlflow.create_experiment(name, artifact_location=location)
    except Exception:  # created meanwhile by a concurrent stage
        return mlflow.get_experiment_by_name(name).experiment_id


@contextlib.contextmanager
def stage_run(stage: str, params: dict) -> Iterator:
    """An MLflow run for one stage execution; yields the mlflow module with the run active.

    Logs the params, tags (DVC experiment, baseline commit, stage) and the stage's duration.
    """
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    exp_name = os.environ.get("DVC_EXP_NAME", "workspace")
    tags = {"dvc.exp_name": exp_name, "dvc.baseline_rev": _baseline_rev(), "stage": stage}
    start = time.perf_counter()
    with mlflow.start_run(experiment_id=_experiment_id(mlflow), run_name=f"{exp_name}/{stage}", tags=tags):
        mlflow.log_params(flatten(params))
        yield mlflow
        mlflow.log_metric("duration_s", time.perf_counter() - start)


def log_summary(params: dict, metrics: dict[str, float]) -> None:
    """The pipeline execution's summary run (`<experiment>/summary`): every param and the headline
    metrics, so experiments line up side by side in the MLflow compare view."""
    with stage_run("summary", params) as mlflow:
        mlflow.log_metrics(metrics)
