"""MLflow conventions: one parent run per pipeline execution, one nested run per stage, one store per project.

Store: $MLFLOW_TRACKING_URI if set (a team's server), else ``sqlite:///<repo root>/mlflow.db`` (WAL mode,
created under a file lock so that queued experiments starting together do not race on its tables) with
artifacts in ``<repo root>/mlartifacts``. The repo root is the main checkout also when DVC runs an
experiment in a temporary copy (``dvc exp run --temp`` / ``--queue``): DVC passes the parent
repository as $DVC_ROOT there, and a path inside ``.dvc/tmp/exps/`` is cut back to its owner.

A SQLite store keeps its artifacts beside it (``mlartifacts/`` next to the ``.db``), and the store is
portable: MLflow records artifact locations as absolute paths, so when a store is opened from another
folder than the one it was made in (a copied or moved checkout) the locations it holds are rewritten to
the ``mlartifacts/`` beside it (`relocate`). A copy then reads its own artifacts and writes only into
itself.

In the MLflow experiment "audiosr" ($AUDIOSR_MLFLOW_EXPERIMENT overrides), a pipeline execution is a
parent run named after the DVC experiment (``workspace`` for ``dvc repro``) that holds every param, the
overrides against the baseline commit as the tag ``overrides``, and, once the evaluation ran, the headline
metrics; the stage runs ``<experiment>/<stage>`` are nested under it. The first stage of an execution opens
the parent, the evaluation closes it; a stage re-run after a failure joins the execution still open.
Metric names are ``/`` hierarchies (``model_lfr/lsd``), with timings under ``time/``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sqlite3
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

EXPERIMENT = "audiosr"
MODEL_NAME = "audiosr"  # the registered model the package stage makes versions of (audiosr.registry)
KIND = "audiosr.run"  # tag: "pipeline" on a pipeline execution's parent run, "stage" on a stage's run


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
    """The store's URI; a local SQLite store that was copied or moved is relocated first (`relocate`)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root() / 'mlflow.db'}"
    if uri.startswith("sqlite:///"):
        relocate(Path(uri[len("sqlite:///") :]))
    return uri


ARTIFACTS = "mlartifacts"  # beside the store
PORTABLE = "audiosr.artifacts"  # experiment tag: "beside the store" on the experiments this module made
# every column of MLflow's SQLite schema that holds an artifact location
LOCATIONS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("model_versions", "source"),
    ("model_versions", "storage_location"),
    ("logged_models", "artifact_location"),
)


def relocate(db: Path) -> bool:
    """Point the artifact locations of a SQLite store at the ``mlartifacts/`` beside it, if they point at
    another folder's (the store was copied or moved). Only the experiments this module made, which keep
    their artifacts beside the store (tag `PORTABLE`), are touched; returns whether anything changed."""
    if not db.is_file():
        return False
    here = db.resolve().parent / ARTIFACTS
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        try:
            rows = conn.execute(
                "SELECT e.artifact_location FROM experiments e JOIN experiment_tags t "
                "ON t.experiment_id = e.experiment_id WHERE t.key = ?",
                (PORTABLE,),
            ).fetchall()
        except sqlite3.DatabaseError:  # not (yet) an MLflow store
            return False
        if not rows:  # a store made before the tag: mark the experiments made beside it
            with conn:
                conn.execute(
                    "INSERT INTO experiment_tags (key, value, experiment_id) SELECT ?, 'beside the store', "
                    "experiment_id FROM experiments WHERE artifact_location = ?",
                    (PORTABLE, here.as_uri()),
                )
            return False
        old = {_artifact_root(loc) for (loc,) in rows} - {None, here.as_uri()}
        if not old:
            return False
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        with conn:
            for root in old:
                for table, column in LOCATIONS:
                    if table in tables:
                        conn.execute(
                            f"UPDATE {table} SET {column} = ? || substr({column}, ?) WHERE substr({column}, 1, ?) = ?",
                            (here.as_uri(), len(root) + 1, len(root), root),
                        )
    return True


def _artifact_root(location: str) -> str | None:
    """file:///old/checkout/mlartifacts/1 -> file:///old/checkout/mlartifacts; None if not beside a store."""
    marker = f"/{ARTIFACTS}"
    if not location.startswith("file://") or marker not in location:
        return None
    end = location.rindex(marker) + len(marker)
    return location[:end] if end == len(location) or location[end] == "/" else None


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
    # the experiment's kind, for UIs that open an experiment by it (MLflow 3.17 follows its own
    # "Model training / GenAI" switch instead: docs/tracking.md and `make ui` give the address that sets it)
    tags = {"mlflow.experimentKind": "custom_model_development"}
    exp = mlflow.get_experiment_by_name(name)
    if exp is None:
        uri = mlflow.get_tracking_uri()
        location = None
        if uri.startswith("sqlite:///"):  # keep artifacts beside the database, not in the cwd
            location = (Path(uri[len("sqlite:///") :]).resolve().parent / ARTIFACTS).as_uri()
            tags[PORTABLE] = "beside the store"
        try:
            return mlflow.create_experiment(name, artifact_location=location, tags=tags)
        except Exception:  # created meanwhile by a concurrent stage
            exp = mlflow.get_experiment_by_name(name)
    if exp.tags.get("mlflow.experimentKind") != tags["mlflow.experimentKind"]:
        mlflow.MlflowClient().set_experiment_tag(
            exp.experiment_id, "mlflow.experimentKind", tags["mlflow.experimentKind"]
        )
    return exp.experiment_id


def open_store(mlflow) -> str:
    """Point mlflow at the project's store and return the experiment id. A local SQLite store is created
    (MLflow's table migrations) and switched to WAL under an exclusive file lock: two stages creating it
    at once otherwise fail on MLflow's migrations, and WAL lets writers and the UI's reads overlap."""
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    if not uri.startswith("sqlite:///"):
        return _experiment_id(mlflow)
    db = Path(uri[len("sqlite:///") :])
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        experiment_id = _experiment_id(mlflow)
        with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
    return experiment_id


def _params() -> dict:
    """params.yaml of the folder the stage runs in (a DVC experiment's copy holds its overrides)."""
    import yaml

    path = Path("params.yaml")
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


def overrides(params: dict, rev: str) -> str:
    """The params that differ from the baseline commit's params.yaml, as `key=value` (the `-S` of a DVC
    experiment, or an edit in the workspace); "" where none differ or the commit has no params.yaml."""
    if not rev:
        return ""
    out = subprocess.run(["git", "show", f"{rev}:params.yaml"], capture_output=True, text=True, cwd=repo_root())
    if out.returncode != 0:
        return ""
    import yaml

    base, now = flatten(yaml.safe_load(out.stdout) or {}), flatten(params)
    return " ".join(f"{k}={v}" for k, v in sorted(now.items()) if base.get(k) != v)


def pipeline_run(mlflow, experiment_id: str) -> str:
    """The id of this pipeline execution's parent run: the open one of this DVC experiment and params, or
    a new one holding every param and the overrides tag."""
    exp_name = os.environ.get("DVC_EXP_NAME", "workspace")
    params = _params()
    flat = flatten(params)
    fingerprint = hashlib.sha256(json.dumps(flat, sort_keys=True).encode()).hexdigest()[:16]
    client = mlflow.MlflowClient()
    found = client.search_runs(
        [experiment_id],
        f"tags.`{KIND}` = 'pipeline' and tags.`dvc.exp_name` = '{exp_name}' and attributes.status = 'RUNNING' "
        f"and tags.`audiosr.params_sha` = '{fingerprint}'",
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    if found:
        return found[0].info.run_id
    rev = _baseline_rev()
    tags = {
        KIND: "pipeline",
        "dvc.exp_name": exp_name,
        "dvc.baseline_rev": rev,
        "overrides": overrides(params, rev) or "none",
        "audiosr.params_sha": fingerprint,
    }
    run = client.create_run(experiment_id, run_name=exp_name, tags=tags)
    items = [mlflow.entities.Param(k, v) for k, v in flat.items()]
    for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
        client.log_batch(run.info.run_id, params=items[i : i + 100])
    return run.info.run_id


@contextlib.contextmanager
def stage_run(stage: str, params: dict) -> Iterator:
    """An MLflow run for one stage execution, nested under the pipeline execution's parent run; yields
    the mlflow module with the run active. Logs the stage's params, tags (DVC experiment, baseline
    commit, stage) and its duration (`time/duration_s`)."""
    import mlflow

    experiment_id = open_store(mlflow)
    parent = pipeline_run(mlflow, experiment_id)
    exp_name = os.environ.get("DVC_EXP_NAME", "workspace")
    tags = {"dvc.exp_name": exp_name, "dvc.baseline_rev": _baseline_rev(), "stage": stage, KIND: "stage"}
    start = time.perf_counter()
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{exp_name}/{stage}", tags=tags, parent_run_id=parent):
        mlflow.log_params(flatten(params))
        yield mlflow
        mlflow.log_metric("time/duration_s", time.perf_counter() - start)


def close_pipeline_run(metrics: dict[str, float]) -> str:
    """Log the headline metrics on this execution's parent run and mark it finished (the evaluation, the
    pipeline's last stage, calls it), and put the `HEADLINE` ones on the model version this execution's
    package stage registered; returns the run id."""
    import mlflow

    experiment_id = open_store(mlflow)
    run_id = pipeline_run(mlflow, experiment_id)
    client = mlflow.MlflowClient()
    stamp = int(time.time() * 1000)
    items = [mlflow.entities.Metric(k, float(v), stamp, 0) for k, v in metrics.items()]
    for i in range(0, len(items), 1000):
        client.log_batch(run_id, metrics=items[i : i + 1000])
    client.set_terminated(run_id, "FINISHED")
    headline = {k: float(v) for k, v in metrics.items() if k in HEADLINE}
    packaged = client.search_runs(
        [experiment_id], f"tags.`mlflow.parentRunId` = '{run_id}' and tags.stage = 'package'", max_results=1
    )
    if packaged and headline:
        tag_version(client, packaged[0].info.run_id, headline)
    return run_id


def tag_version(client, package_run_id: str, metrics: dict[str, float], name: str = MODEL_NAME) -> list[str]:
    """Put `metrics` (the headline) on the model versions the package run registered: as tags, and as the
    version's description. Returns the versions tagged."""
    versions = client.search_model_versions(f"name = '{name}' and run_id = '{package_run_id}'")
    line = ", ".join(f"{k} {v:g}" for k, v in metrics.items())
    for version in versions:
        for key, value in metrics.items():
            client.set_model_version_tag(name, version.version, key, f"{value:g}")
        client.update_model_version(name, version.version, description=f"Evaluation: {line}")
    return [v.version for v in versions]


# the numbers a pipeline execution is judged by (`audiosr.results.headline`): on the pipeline run, in
# `dvc exp show`, and on the registered model's version
HEADLINE = (
    "model_lfr/lsd",
    "model_lfr/worse_than_input",
    "real/model_lfr/lsd",
    "real/model_lfr/worse_than_input",
)


def ui_address(port: int, host: str = "127.0.0.1") -> str:
    """The MLflow UI's address of the project's experiment: its pipeline runs, sorted by the headline LSD
    (relocating a copied store first); the experiments page where the store has no such experiment yet."""
    base = f"http://{host}:{port}/#/experiments"
    uri = tracking_uri()
    db = Path(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else None
    if db is None or not db.is_file():
        return f"{base}?workflowType=machine_learning"
    name = os.environ.get("AUDIOSR_MLFLOW_EXPERIMENT", EXPERIMENT)
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        row = conn.execute("SELECT experiment_id FROM experiments WHERE name = ?", (name,)).fetchone()
    if row is None:
        return f"{base}?workflowType=machine_learning"
    # one row per pipeline execution (its stage runs filtered out), the best headline LSD first
    query = urllib.parse.urlencode(
        {
            "workflowType": "machine_learning",
            "searchFilter": f"tags.`{KIND}` = 'pipeline'",
            "orderByKey": "metrics.`model_lfr/lsd`",
            "orderByAsc": "true",
        },
        quote_via=urllib.parse.quote,
    )
    return f"{base}/{row[0]}/runs?{query}"


if __name__ == "__main__":
    import sys

    # `make ui`: the store (relocated if the checkout was copied) and the address to open
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    print(f"MLflow UI: {ui_address(port)}  (store: {tracking_uri()})")
