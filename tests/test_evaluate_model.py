"""`audiosr evaluate MODEL -o DIR`: the evaluate stage's protocol on any model folder, on the `project`
fixture's held-out sets (its rendered test split and real set), started as a user starts it."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from audiosr.published import import_checkpoint
from tests.conftest import copy_project, run_stage, stage
from tests.test_audiosr_parity import FIXTURES, tiny_architecture

AUDIOSR = [str(Path(sys.executable).with_name("audiosr"))]  # the installed command


def audiosr(wd: Path, env: dict, *args) -> subprocess.CompletedProcess:
    return subprocess.run([*AUDIOSR, *map(str, args)], cwd=wd, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_any_model_folder_is_scored_item_for_item_like_the_stage(project, tmp_path) -> None:
    wd, env = copy_project(project, tmp_path / "project")
    run_stage(stage("evaluate"), wd, env)
    # the stage's own model through the command: the same items, the same numbers
    out = audiosr(wd, env, "evaluate", "models/pipeline", "-o", "other")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "rendered set: model_lfr LSD" in out.stdout and "python -m studies.compare metrics other" in out.stdout
    for table in ("eval_items.csv", "eval_real_items.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(wd / "metrics" / table), pd.read_csv(wd / "other" / table))
    stage_headline = json.loads((wd / "metrics/eval.json").read_text())["model_lfr"]["lsd"]
    assert json.loads((wd / "other/eval.json").read_text())["model_lfr"]["lsd"] == stage_headline
    # an imported AudioSR (the parity fixture's tiny one) on the same inputs: its items pair with the stage's
    import_checkpoint(FIXTURES / "tiny_checkpoint.bin", wd / "models/audiosr_tiny", tiny_architecture(), n_mels=16)
    out = audiosr(wd, env, "evaluate", "models/audiosr_tiny", "-o", "metrics_audiosr", "--steps", 1)
    assert out.returncode == 0, out.stdout + out.stderr
    ours, theirs = (pd.read_csv(wd / d / "eval_items.csv") for d in ("metrics", "metrics_audiosr"))
    ours = ours[~ours.system.str.startswith("model_fast")].reset_index(drop=True)  # it has no student
    key = ["system", "cutoff_hz", "filter", "noise", "clip"]
    assert ours[key].equals(theirs[key])
    unprocessed = ours.system == "unprocessed"  # the same degraded inputs, scored alike
    pd.testing.assert_series_equal(ours.lsd[unprocessed], theirs.lsd[unprocessed])
    compare = subprocess.run(
        [sys.executable, "-m", "studies.compare", "metrics", "metrics_audiosr"],  # the project's PYTHONPATH
        cwd=wd,
        env=env,
        capture_output=True,
        text=True,
    )
    assert compare.returncode == 0, compare.stderr


def test_evaluate_outside_a_built_repository_says_what_is_missing(tmp_path) -> None:
    shutil.copy(Path(__file__).parents[1] / "params.yaml", tmp_path / "params.yaml")
    out = audiosr(tmp_path, dict(os.environ), "evaluate", "models/pipeline", "-o", "x")
    assert out.returncode == 1 and "data/segments/test: not found" in out.stderr
    assert not (tmp_path / "x").exists()
