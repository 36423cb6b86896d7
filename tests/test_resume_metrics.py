"""Training metrics describe the whole training, also when it was interrupted and resumed: a real tiny VAE
training (the stage function the DVC stage runs, on segments made by the package) killed after a
checkpoint, then run again to the end."""

import json
import sqlite3
import time

import pytest
import yaml

from audiosr import results
from audiosr.config import Params
from audiosr.data.segments import segment_split
from audiosr.train import loop, runner
from audiosr.train.checkpoint import code_fingerprint
from audiosr.train.vae import VAETask
from tests.conftest import tiny_params, tone_tracks

STEPS, BATCH, KILL_AT, SLOW = 8, 2, 5, 0.25


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A folder with params.yaml (tiny, vae.channels overridden) and data/segments/{train,valid}."""
    params = tiny_params()
    params["vae"].update(steps=STEPS, batch=BATCH, validate_every=4)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    p = Params.load(tmp_path / "params.yaml")
    tracks = tone_tracks(tmp_path, 3)
    for split, part in (("train", tracks.iloc[:2]), ("valid", tracks.iloc[2:])):
        segment_split(part, tmp_path / "data/segments" / split, tmp_path, p.audio, p.mel, workers=1)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("AUDIOSR_DEVICE", "cpu")
    monkeypatch.setattr(loop, "CHECKPOINT_EVERY", 2)
    return tmp_path, p


class Interrupted(VAETask):
    """The real VAE task, slowed down and killed at step KILL_AT (after the checkpoint at step 4)."""

    def step(self, step: int, batch) -> dict[str, float]:
        if step == KILL_AT:
            raise KeyboardInterrupt("killed")
        time.sleep(SLOW)
        return super().step(step, batch)


def metrics(db, name: str) -> dict[str, list[tuple[int, float]]]:
    rows = db.execute(
        "select m.key, m.step, m.value from metrics m join runs r on m.run_uuid = r.run_uuid "
        "where r.name = ? and r.status = 'FINISHED'",
        (name,),
    ).fetchall()
    out: dict[str, list] = {}
    for key, step, value in rows:
        out.setdefault(key, []).append((step, value))
    return out


@pytest.mark.slow
def test_metrics_add_up_over_a_resumed_training(workdir) -> None:
    wd, p = workdir
    with pytest.raises(KeyboardInterrupt):
        runner.clean_data_stage("vae", Interrupted, p)
    state = json.loads((wd / "checkpoints/vae/last/state.json").read_text())
    assert state["step"] == 4 and state["totals"]["invocations"] == 1
    assert state["totals"]["seconds"] >= 4 * SLOW and state["totals"]["samples"] == 4 * BATCH
    assert not (wd / "metrics/stats/train_vae.json").exists()

    start = time.perf_counter()
    summary = runner.clean_data_stage("vae", VAETask, p)  # resumes from step 4, at full speed
    second = time.perf_counter() - start
    on_disk = results.training_summary(wd, "vae")
    assert on_disk == pytest.approx({k: round(float(v), 6) for k, v in summary.items()})
    assert on_disk["steps"] == STEPS and on_disk["samples"] == STEPS * BATCH
    assert on_disk["invocations"] == 2 and on_disk["resumes"] == 1
    # the total is the first invocation's seconds up to its checkpoint plus the second's loop time
    first = state["totals"]["seconds"]
    assert first < on_disk["seconds"] < first + second
    assert on_disk["samples_per_s"] == pytest.approx(STEPS * BATCH / on_disk["seconds"], rel=1e-4)
    assert "val/rec_l1" in on_disk

    db = sqlite3.connect(wd / "mlflow.db")
    logged = metrics(db, "workspace/train_vae")
    assert logged["total/invocations"] == [(STEPS, 2.0)] and logged["total/resumes"] == [(STEPS, 1.0)]
    assert logged["total/steps"] == [(STEPS, STEPS)]
    assert logged["time/train_seconds"] == [(STEPS, pytest.approx(on_disk["seconds"], abs=1e-5))]
    # the architecture as used (profile keys resolved, the params' override) is logged with the run
    params = dict(
        db.execute(
            "select p.key, p.value from params p join runs r on p.run_uuid = r.run_uuid "
            "where r.name = 'workspace/train_vae' and r.status = 'FINISHED'"
        ).fetchall()
    )
    assert params["vae.arch.channels"] == "8" and params["vae.arch.multipliers"] == "[1, 2, 4]"
    assert params["vae.betas"] == "[0.5, 0.9]" and "vae.channels" not in params

    # run again after it finished (say, killed during the export): nothing trains, the totals stay
    again = runner.clean_data_stage("vae", VAETask, p)
    assert again["invocations"] == 2 and again["seconds"] == pytest.approx(on_disk["seconds"])
    assert again["val/rec_l1"] == pytest.approx(on_disk["val/rec_l1"], rel=1e-5)


@pytest.mark.slow
def test_an_uninterrupted_training_is_one_invocation(workdir) -> None:
    wd, p = workdir
    summary = runner.clean_data_stage("vae", VAETask, p)
    assert summary["steps"] == STEPS and summary["invocations"] == 1 and summary["resumes"] == 0
    assert summary["seconds"] > 0 and summary["samples"] == STEPS * BATCH


@pytest.mark.slow
def test_a_change_to_the_code_trains_again_from_step_0(workdir, monkeypatch, capsys) -> None:
    """DVC runs a training stage again when the package's code changes; the finished checkpoint of the last
    run must then not be resumed (it would export the old weights), while the same code resumes it."""
    wd, p = workdir
    package = wd / "package"
    (package / "train").mkdir(parents=True)
    (package / "train" / "losses.py").write_text("WEIGHT = 1.0\n")
    monkeypatch.setattr(runner, "code_fingerprint", lambda: code_fingerprint(package))
    first = runner.clean_data_stage("vae", VAETask, p)
    capsys.readouterr()
    same = runner.clean_data_stage("vae", VAETask, p)
    assert f"resuming from step {STEPS}" in capsys.readouterr().out
    assert same["seconds"] == pytest.approx(first["seconds"])
    (package / "train" / "losses.py").write_text("WEIGHT = 2.0\n")
    changed = runner.clean_data_stage("vae", VAETask, p)
    assert "resuming" not in capsys.readouterr().out
    assert changed["steps"] == STEPS and changed["invocations"] == 1 and changed["resumes"] == 0
    assert changed["seconds"] != pytest.approx(first["seconds"], abs=1e-9)
