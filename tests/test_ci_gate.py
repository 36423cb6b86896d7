"""CI's metric gate (.ci/metrics_gate.py) on the committed default run's own items: it fails on a
significant worsening over the tolerance, and passes a re-run's noise, a small shift and a few items'
luck."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import ROOT

GATE = ROOT / ".ci" / "metrics_gate.py"


@pytest.fixture()
def repo(tmp_path) -> Path:
    """A git repository whose last commit holds the default run's metrics/eval.json and eval_items.csv."""
    (tmp_path / "metrics").mkdir()
    for name in ("eval.json", "eval_items.csv", "eval_real.json", "eval_real_items.csv"):
        shutil.copy(ROOT / "metrics" / name, tmp_path / "metrics" / name)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@t"
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "baseline"]):
        subprocess.run(cmd, cwd=tmp_path, env=env, check=True)
    return tmp_path


def gate(repo: Path, shift) -> subprocess.CompletedProcess:
    """Run the gate with model_lfr's LSD of the current run changed by `shift(items) -> new values`."""
    items = pd.read_csv(ROOT / "metrics" / "eval_items.csv")
    rows = items["system"] == "model_lfr"
    items.loc[rows, "lsd"] = shift(items.loc[rows, "lsd"].to_numpy())
    items.to_csv(repo / "metrics" / "eval_items.csv", index=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(GATE)], cwd=repo, env=env, capture_output=True, text=True)


def test_gate_fails_on_a_real_regression_only(repo) -> None:
    same = gate(repo, lambda x: x)
    assert same.returncode == 0 and "WORSE" not in same.stdout and same.stdout.count(": ok") >= 3, same.stdout
    worse = gate(repo, lambda x: x + 0.15)
    assert worse.returncode == 1 and "model_lfr lsd" in worse.stdout and "WORSE" in worse.stdout, worse.stdout
    assert "model_fast_lfr" in worse.stdout  # the student is judged apart, and passes
    # significant (every item moved) but under the tolerance: a re-run's size of difference passes
    small = gate(repo, lambda x: x + 0.05)
    assert small.returncode == 0 and "+0.050 [+0.050, +0.050] *" in small.stdout, small.stdout
    # over the tolerance on average, but from three items alone: the interval holds zero, so it passes
    n = len(pd.read_csv(ROOT / "metrics" / "eval_items.csv").query("system == 'model_lfr'"))
    few = gate(repo, lambda x: x + (pd.Series(range(len(x))) < 3).to_numpy() * 0.13 * n / 3)
    assert few.returncode == 0 and "Δ +0.130" in few.stdout and ": ok" in few.stdout, few.stdout


def turn_real_items_worse(repo: Path, k: int) -> None:
    """The workspace's real-recordings metrics with k more of model_lfr's items worse than the unprocessed
    input (0.01 above it), items file and headline count alike."""
    items = pd.read_csv(ROOT / "metrics" / "eval_real_items.csv")
    key = ["cutoff_hz", "filter", "noise", "clip"]
    model = items[items["system"] == "model_lfr"].set_index(key)
    plain = items[items["system"] == "unprocessed"].set_index(key)["lsd"]
    better = model.index[model["lsd"] <= plain.loc[model.index]][:k]
    assert len(better) == k
    rows = items.set_index(key).index.isin(better) & (items["system"] == "model_lfr").to_numpy()
    items.loc[rows, "lsd"] = plain.loc[items.loc[rows].set_index(key).index].to_numpy() + 0.01
    items.to_csv(repo / "metrics" / "eval_real_items.csv", index=False)
    headline = json.loads((ROOT / "metrics" / "eval_real.json").read_text())
    headline["model_lfr"]["worse_than_input"] += k
    (repo / "metrics" / "eval_real.json").write_text(json.dumps(headline))


def test_gate_fails_when_significantly_more_items_are_worse_than_the_input(repo) -> None:
    """Real recordings turned worse than the unprocessed input, paired item by item against the committed
    run: two (what a machine that trains other models gives) pass, five fail; without items to pair, one
    more in the count fails."""
    for k, code in ((2, 0), (5, 1)):
        turn_real_items_worse(repo, k)
        out = gate(repo, lambda x: x)
        assert out.returncode == code and f"real set, model_lfr: {k} items worse" in out.stdout, out.stdout
        assert f"{k} turned worse, 0 better" in out.stdout and ("WORSE" in out.stdout) == (k == 5), out.stdout
    assert "rendered set, model_lfr: 0 items worse" in out.stdout and "0 turned worse, 0 better" in out.stdout
    # another eval block (no common items): the count alone, which fails on one more
    turn_real_items_worse(repo, 1)
    items = pd.read_csv(repo / "metrics" / "eval_real_items.csv")
    items[items["cutoff_hz"] != 4000].to_csv(repo / "metrics" / "eval_real_items.csv", index=False)
    out = gate(repo, lambda x: x)
    assert out.returncode == 1 and "no common items to pair: fails when it grows: WORSE" in out.stdout, out.stdout
