"""End to end: `dvc repro` of the whole pipeline on tiny params, in a temporary copy of the repository,
as a user runs it; then ablations as temporary DVC experiments, checking what each re-runs."""

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from audiosr.data.store import SegmentSet
from tests import mlflow_browser
from tests.conftest import ROOT, tiny_params


def run(cmd: list[str], cwd: Path, env: dict) -> str:
    # a guard against a hang only: the full profile's `dvc repro` takes minutes, more beside another test file
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout + out.stderr


def repro_copy(dest: Path, params: dict, cache_type: str | None = None) -> tuple[Path, dict]:
    """A copy of the repository's tracked files in `dest` with `params`, after one `dvc repro`;
    `cache_type` sets DVC's (`dvc config cache.type`) before it."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if (ROOT / f).is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dest / f)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "AUDIOSR_WORKERS": "2",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    env.pop("MLFLOW_TRACKING_URI", None)  # the default store: mlflow.db at the repo root
    env.pop("DVC_ROOT", None)
    run(["git", "init", "-q"], dest, env)
    run(["git", "add", "-A"], dest, env)
    run(["git", "commit", "-qm", "copy"], dest, env)
    if cache_type is not None:
        run(["dvc", "config", "--local", "cache.type", cache_type], dest, env)
    run(["dvc", "repro"], dest, env)
    return dest, env


def small_data(params: dict) -> dict:
    """tiny_params with fewer, shorter songs: the pipeline tests' data."""
    params["data"]["synthetic"].update(tracks=6, seconds=3.0)
    params["split"]["valid_tracks"] = 1
    params["audio"]["segment_seconds"] = 1.28
    return params


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> tuple[Path, dict]:
    """A copy of the repository's tracked files with tiny params, after one `dvc repro`."""
    return repro_copy(tmp_path_factory.mktemp("repo"), small_data(tiny_params()))


@pytest.mark.slow
def test_repro_writes_every_output(repo) -> None:
    dest, env = repo
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
    for name in ("vae", "vocoder", "ldm", "distill"):
        assert (dest / "models" / name / "model.safetensors").exists()
    assert (dest / "models/pipeline/student.safetensors").exists()
    assert json.loads((dest / "models/pipeline/config.json").read_text())["n_mels"] == 32
    assert {"model_lfr", "model_fast_lfr"} <= set(json.loads((dest / "metrics/eval.json").read_text()))
    # every plot is a PNG the stages drew, so the page DVC writes needs no network (no Vega from a CDN)
    shown = run(["dvc", "plots", "show", "--json"], dest, env)
    assert "plots/eval/lsd_by_cutoff.png" in shown and "plots/train_ldm_loss.png" in shown
    run(["dvc", "plots", "show", "-o", str(dest / "shown")], dest, env)
    page = (dest / "shown" / "index.html").read_text()
    assert page.count("<img") >= 4 and "http" not in page


@pytest.mark.slow
def test_runs_are_tracked_in_the_repo_store(repo) -> None:
    dest, _ = repo
    db = sqlite3.connect(dest / "mlflow.db")
    names = {r[0] for r in db.execute("select name from runs where status = 'FINISHED'")}
    assert {"workspace", *(f"workspace/{s}" for s in ["fetch", "split", "segment", "degrade", "evaluate"])} <= names
    tags = dict(
        db.execute(
            "select t.key, t.value from tags t join runs r on r.run_uuid = t.run_uuid "
            "where r.name = 'workspace/degrade'"
        )
    )
    assert tags["stage"] == "degrade" and len(tags["dvc.baseline_rev"]) == 40
    logged: dict[str, dict[str, float]] = {}
    for run, key, value in db.execute(
        "select r.name, m.key, m.value from metrics m join runs r "
        "on r.run_uuid = m.run_uuid where r.name like 'workspace/%'"
    ):
        logged.setdefault(run.split("/")[1], {})[key] = value
    assert {"tracks", "tracks_skipped", "seconds"} <= set(logged["fetch"])
    assert {f"{s}/{k}" for s in ("train", "valid", "test") for k in ("tracks", "segments", "seconds")} <= set(
        logged["segment"]
    )
    degrade = logged["degrade"]
    assert {"train/segments", "valid/segments"} <= set(degrade)
    # every degraded segment is counted under the filter drawn for it
    assert sum(v for k, v in degrade.items() if k.startswith("train/filter/")) == degrade["train/segments"] > 0
    assert (dest / "mlartifacts").is_dir()


ALL = [
    "fetch",
    "split",
    "segment",
    "degrade",
    "train_vae",
    "train_vocoder",
    "train_ldm",
    "distill",
    "package",
    "evaluate",
]
MODEL_PATH = {"train_ldm", "distill", "package", "evaluate"}
RERUN_CASES = [
    ("tone-ablation", "noise.type=tone", {"degrade"} | MODEL_PATH),
    ("butterworth-only", "filter.types=[butterworth]", {"degrade"} | MODEL_PATH),
    ("cutoff-band", "filter.cutoff_hz=[4000,8000]", {"degrade"} | MODEL_PATH),
    ("ldm-lr", "ldm.lr=0.001", MODEL_PATH),
    ("distill-steps", "distill.steps=2", {"distill", "package", "evaluate"}),
]


@pytest.mark.slow
@pytest.mark.parametrize("name, override, expected", RERUN_CASES)
def test_ablation_reruns_only_what_it_touches(repo, name: str, override: str, expected: set) -> None:
    dest, env = repo
    out = run(["dvc", "exp", "run", "--temp", "-n", name, "-S", override], dest, env)
    ran = {s for s in ALL if f"Running stage '{s}'" in out}
    assert ran == expected, out
    # the temporary copy logged into the main checkout's store, tagged with the experiment's name
    db = sqlite3.connect(dest / "mlflow.db")
    runs = {r[0] for r in db.execute("select name from runs where status = 'FINISHED'")}
    assert f"{name}/evaluate" in runs and name in runs  # the stage run and its pipeline run
    shown = run(["dvc", "exp", "show", "--csv"], dest, env)
    assert name in shown and "model_lfr.lsd" in shown


def terminal_screen(cmd: list[str], cwd: Path, env: dict, columns: int = 160, rows: int = 40) -> list[str]:
    """What `cmd` shows on a terminal of `columns` x `rows` (a pseudo-terminal, so it pages as it does for a
    user): its lines with the escape sequences taken out. A pager is left with `q` once it has drawn."""
    import fcntl
    import pty
    import select
    import struct
    import termios
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: the command, in the terminal
        os.chdir(cwd)
        os.execvpe(cmd[0], cmd, {**env, "TERM": "xterm", "LESS": "", "PAGER": "", "DVC_PAGER": ""})
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    out, deadline = b"", time.monotonic() + 300
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 2.0)[0]:
            try:
                chunk = os.read(fd, 1 << 16)
            except OSError:  # the command has ended
                break
            if not chunk:
                break
            out += chunk
        elif out:
            os.write(fd, b"q")
    os.waitpid(pid, 0)
    text = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]|\r", b"", out).decode(errors="replace")
    return text.splitlines()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("less") is None, reason="dvc exp show pages through less")
def test_exp_show_in_a_160_column_terminal_names_the_experiments_and_the_headline(repo) -> None:
    """Plain `dvc exp show`, as a user types it in a 160-column terminal: the first screen of its pager holds
    every experiment's name and the headline metrics with their values (the rest scrolls to the right)."""
    dest, env = repo
    lines = terminal_screen(["dvc", "exp", "show"], dest, env)
    header = next(line for line in lines if "Experiment" in line)
    assert header.split()[:4] == ["Experiment", "Created", "model_lfr/lsd", "model_lfr/worse_than_input"]
    assert "real/model_lfr/lsd" in header
    screen = "\n".join(lines)
    assert all(name in screen for name, _, _ in RERUN_CASES), screen  # the ablations above
    headline = json.loads((dest / "metrics/headline.json").read_text())
    workspace = next(line.split() for line in lines if line.split()[:1] == ["workspace"])
    shown = [float(v) for v in workspace[2:4]]  # DVC prints 5 significant digits
    assert shown == pytest.approx([headline["model_lfr/lsd"], headline["model_lfr/worse_than_input"]], rel=1e-4)
    assert all(len(line) <= 160 for line in lines)


@pytest.mark.slow
def test_make_ablations_with_seeds_runs_two_at_once(repo) -> None:
    """`make ablations SEEDS=2 JOBS=2`: three queued experiments (noise-none at seeds 0 and 1, the baseline at
    seed 1), two at a time, every stage run in the workspace's SQLite store, a report with intervals."""
    dest, env = repo
    out = run(
        [sys.executable, "-m", "studies.ablations", "--only", "noise-none", "--seeds", "2", "--jobs", "2"], dest, env
    )
    names = ["noise-none", "baseline-seed1", "noise-none-seed1"]
    assert all(f"ablations: {n} success" in out for n in names), out
    db = sqlite3.connect(dest / "mlflow.db")
    runs = db.execute(
        "select r.name, r.start_time, r.end_time, r.status, t.value from runs r join tags t on "
        "t.run_uuid = r.run_uuid and t.key = 'mlflow.parentRunId' where r.name like 'noise-none%' "
        "or r.name like 'baseline-seed1%'"
    ).fetchall()
    by_exp: dict[str, list] = {}
    for name, start, end, status, parent in runs:
        assert status == "FINISHED", name
        by_exp.setdefault(name.split("/")[0], []).append((name.split("/")[1], start, end, parent))
    # nothing lost: each experiment's re-run stages, nested under one pipeline run of its own
    assert {s for s, *_ in by_exp["noise-none"]} == {"degrade", "train_ldm", "train_distill", "package", "evaluate"}
    assert {s for s, *_ in by_exp["baseline-seed1"]} == {"degrade", "train_ldm", "train_distill", "package", "evaluate"}
    for name in names:
        (parent,) = {p for *_, p in by_exp[name]}
        (pipeline,) = db.execute("select name, status from runs where run_uuid = ?", (parent,)).fetchall()
        assert pipeline == (name, "FINISHED")

    def span(name: str) -> tuple[int, int]:
        return min(s for _, s, _, _ in by_exp[name]), max(e for _, _, e, _ in by_exp[name])

    spans = sorted(span(n) for n in names)
    assert spans[0][1] > spans[1][0], spans  # the first two ran at the same time
    # the report: the mean over seeds with their spread, the difference with its interval
    md = (dest / "metrics/ablations.md").read_text()
    rows = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in md.splitlines() if line.startswith("| ")}
    assert set(rows) >= {"baseline (workspace)", "noise-none"}
    seeds, lsd, diff = (c.strip() for c in rows["noise-none"][:3])
    assert seeds == "2" and "±" in lsd and re.fullmatch(r"[+-]\d\.\d{3} \[[+-]\d\.\d{3}, [+-]\d\.\d{3}\]( \*)?", diff)
    low, high = (float(v) for v in re.findall(r"[+-]\d\.\d{3}", diff)[1:])
    assert low <= float(diff.split()[0]) <= high
    assert "visqol" not in md  # not computed (eval.perceptual: false) so not reported
    assert (dest / "metrics/ablations.png").stat().st_size > 1000
    # the report's figures are on the experiments' pipeline runs
    (delta,) = db.execute(
        "select m.value from metrics m join runs r on r.run_uuid = m.run_uuid "
        "where r.name = 'noise-none' and m.key = 'ablation/lsd/delta'"
    ).fetchone()
    assert delta == pytest.approx(float(diff.split()[0]), abs=1e-3)
    # a commit made after the ablations ran (the README table, say) does not hide them from the report
    (dest / "NOTES.md").write_text("ablations ran\n")
    run(["git", "add", "NOTES.md"], dest, env)
    run(["git", "commit", "-qm", "notes"], dest, env)
    run([sys.executable, "-m", "studies.ablations", "--report-only"], dest, env)
    assert (dest / "metrics/ablations.md").read_text() == md


@pytest.mark.slow
@pytest.mark.skipif(mlflow_browser.available() is not None, reason=str(mlflow_browser.available()))
def test_mlflow_ui_compares_two_experiments_in_a_browser(repo, tmp_path) -> None:
    """The real MLflow UI in headless Chromium on the store the pipeline and an ablation wrote (`make ui-check`
    does the same on the project's own store)."""
    dest, _ = repo
    with mlflow_browser.mlflow_ui(dest / "mlflow.db") as base:
        done = mlflow_browser.check(base, ["workspace", "noise-none"], tmp_path)  # the seeds test ran it
    assert len(done) == 5, done
    assert all((tmp_path / f"mlflow_{n}.png").stat().st_size > 10_000 for n in ("runs", "compare", "registry"))


@pytest.mark.slow
def test_dvc_remote_round_trip(repo, tmp_path) -> None:
    """A team's data remote: push the pipeline's outputs, clone the repository elsewhere, pull, and the
    clone is up to date with the models in place."""
    dest, env = repo
    run(["dvc", "remote", "add", "-d", "storage", str(tmp_path / "remote")], dest, env)
    run(["git", "add", "-A"], dest, env)
    run(["git", "commit", "-qm", "pipeline outputs and remote"], dest, env)
    run(["dvc", "push"], dest, env)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(dest), str(clone)], tmp_path, env)
    assert not (clone / "models/pipeline").exists()
    run(["dvc", "pull"], clone, env)
    assert json.loads((clone / "models/pipeline/config.json").read_text())["n_mels"] == 32
    assert "up to date" in run(["dvc", "status"], clone, env)
