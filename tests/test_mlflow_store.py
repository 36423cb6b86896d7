"""The MLflow store moves with its checkout, and the registered model is a real MLflow model: a copy of a
trained tiny project, moved to another folder, logs into itself only, and
``mlflow.pyfunc.load_model("models:/audiosr@baseline")`` restores a file from it, the version carrying the
evaluation's headline metrics."""

import hashlib
import shutil
import sqlite3

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import run_stage, stage


def tree(folder) -> dict[str, str]:
    """Every file under a folder -> its content's hash."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


def locations(db) -> list[str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT artifact_uri FROM runs UNION ALL SELECT source FROM model_versions "
            "UNION ALL SELECT storage_location FROM model_versions UNION ALL "
            "SELECT artifact_location FROM experiments WHERE name = 'audiosr'"
        ).fetchall()
    return [r[0] for r in rows]


@pytest.mark.slow
def test_a_moved_copy_logs_into_itself_and_its_model_loads(project, tmp_path, monkeypatch) -> None:
    import mlflow

    wd, env = project
    before = {"artifacts": tree(wd / "mlartifacts"), "db": hashlib.sha256((wd / "mlflow.db").read_bytes()).digest()}
    copy = tmp_path / "copy"
    shutil.copytree(wd, copy, symlinks=True)
    # the copy's default store: no MLFLOW_TRACKING_URI, the store of the folder the stages run in
    env = {k: v for k, v in env.items() if k != "MLFLOW_TRACKING_URI"}
    run_stage(stage("package"), copy, env)
    run_stage(stage("evaluate"), copy, env)
    moved = tmp_path / "moved"
    copy.rename(moved)
    run_stage(stage("package"), moved, env)  # a second version, logged from the new place

    # the original is untouched; every location in the moved store is inside it
    assert tree(wd / "mlartifacts") == before["artifacts"]
    assert hashlib.sha256((wd / "mlflow.db").read_bytes()).digest() == before["db"]
    inside = (moved / "mlartifacts").as_uri()
    assert locations(moved / "mlflow.db") and all(loc.startswith(inside) for loc in locations(moved / "mlflow.db"))

    # the registered model, by alias, as an MLflow pyfunc model: predict restores a file
    monkeypatch.chdir(moved)
    uri = f"sqlite:///{moved / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)  # the registry follows it (a registry URI set here would outlive the test)
    model = mlflow.pyfunc.load_model("models:/audiosr@baseline")
    t = np.arange(22_050) / 22_050
    sf.write(tmp_path / "take.wav", 0.3 * np.sin(2 * np.pi * 440 * t), 22_050)
    (out,) = model.predict([str(tmp_path / "take.wav")])
    wave, sr = sf.read(out)
    assert out == str(tmp_path / "take_48k.wav") and sr == 48_000 and abs(len(wave) - 48_000) <= 1
    assert np.isfinite(wave).all() and np.abs(wave).max() > 0.05

    # the evaluated version carries the headline metrics; the alias moved on to the newest version
    client = mlflow.MlflowClient()
    versions = {v.version: v for v in client.search_model_versions("name = 'audiosr'")}
    evaluated = [v for v in versions.values() if "model_lfr/lsd" in v.tags]
    assert len(evaluated) >= 1
    assert {"model_lfr/worse_than_input", "real/model_lfr/lsd"} <= set(evaluated[0].tags)
    assert "model_lfr/lsd" in evaluated[0].description
    assert client.get_model_version_by_alias("audiosr", "baseline").version == max(versions, key=int)
