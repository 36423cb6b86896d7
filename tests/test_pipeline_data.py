"""End to end: `dvc repro` of fetch -> split -> segment -> degrade on tiny params, in a temporary copy
of the repository, as a user runs it; then an ablation in a temporary DVC experiment."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from audiosr.data.store import SegmentSet

ROOT = Path(__file__).resolve().parents[1]
DATA_STAGES = ["fetch", "split", "segment", "degrade"]


def run(cmd: list[str], cwd: Path, env: dict) -> str:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout + out.stderr


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> tuple[Path, dict]:
    """A copy of the repository's tracked files with tiny params, after one `dvc repro`."""
    dest = tmp_path_factory.mktemp("repo")
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if (ROOT / f).is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dest / f)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["synthetic"].update(tracks=6, seconds=3.0)
    params["split"]["valid_tracks"] = 1
    params["audio"]["segment_seconds"] = 1.28
    params["mel"]["n_mels"] = 32
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "AUDIOSR_WORKERS": "2",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    env.pop("MLFLOW_TRACKING_URI", None)  # the default store: mlflow.db at the repo root
    env.pop("DVC_ROOT", None)
    run(["git", "init", "-q"], dest, env)
    run(["git", "add", "-A"], dest, env)
    run(["git", "commit", "-qm", "copy"], dest, env)
    stages = [s for s in yaml.safe_load((dest / "dvc.yaml").read_text())["stages"] if s in DATA_STAGES]
    run(["dvc", "repro", *stages], dest, env)
    return dest, env


@pytest.mark.slow
def test_repro_writes_every_output(repo) -> None:
    dest, _ = repo
    manifest = (dest / "data/raw/manifest.csv").read_text().splitlines()
    assert len(manifest) == 7 and manifest[1].split(",")[5].startswith("data/raw/synthetic/train/")
    split = json.loads((dest / "data/split.json").read_text())
    assert [len(split[k]) for k in ("train", "valid", "test")] == [3, 1, 2]
    for name in ("train", "valid", "test"):
        seg = SegmentSet.open(dest / "data/segments" / name)
        assert len(seg) == 2 * len(split[name])  # 3 s tracks -> two 1.28 s segments each
        assert seg.mel.shape[1:] == (32, 128)
    for name in ("train", "valid"):
        pairs = SegmentSet.open(dest / "data/pairs" / name)
        assert len(pairs) == len(SegmentSet.open(dest / "data/segments" / name))
        assert {"filter", "order", "cutoff_hz", "noise"} <= set(pairs.index.columns)
    assert not list(dest.glob("data/.*tmp*")) and not list(dest.glob("data/*/.*tmp*"))


@pytest.mark.slow
def test_runs_are_tracked_in_the_repo_store(repo) -> None:
    dest, _ = repo
    db = sqlite3.connect(dest / "mlflow.db")
    names = {r[0] for r in db.execute("select name from runs where status = 'FINISHED'")}
    assert {f"workspace/{s}" for s in DATA_STAGES} <= names
    tags = dict(db.execute("select t.key, t.value from tags t join runs r on r.run_uuid = t.run_uuid "
                           "where r.name = 'workspace/degrade'"))
    assert tags["stage"] == "degrade" and len(tags["dvc.baseline_rev"]) == 40
    metrics = {r[0] for r in db.execute("select key from metrics")}
    assert {"tracks", "duration_s", "train/segments", "train/filter/chebyshev"} & metrics
    assert (dest / "mlartifacts").is_dir()


@pytest.mark.slow
def test_noise_ablation_reruns_only_degrade(repo) -> None:
    dest, env = repo
    out = run(["dvc", "exp", "run", "--temp", "-n", "tone-ablation", "-S", "noise.type=tone", *DATA_STAGES],
              dest, env)
    ran = {s for s in DATA_STAGES if f"Running stage '{s}'" in out}
    assert ran == {"degrade"}, out
    # the temporary copy logged into the main checkout's store, tagged with the experiment's name
    db = sqlite3.connect(dest / "mlflow.db")
    runs = {r[0] for r in db.execute("select name from runs where status = 'FINISHED'")}
    assert "tone-ablation/degrade" in runs
    shown = run(["dvc", "exp", "show", "--csv"], dest, env)
    assert "tone-ablation" in shown
