"""The ablations as DVC experiments: which there are, planning them with their seeds, running them through
DVC's queue, and reading back each one's evaluation items from its git revision. The report on them is
studies/ablations.py's (`make ablations`, `python -m studies.ablations`).

Experiments, on the current params (each re-runs only the stages its params touch and logs to the
workspace's MLflow store under its name):
  noise-<type>      noise.type = none | tone | gaussian | mixed
  filter-<family>   filter.types = [<family>]   (the baseline trains on all four)
With `--seeds N`, each runs N times with the seeds of the stages it re-runs set to their value + 0..N-1
(`noise-tone`, `noise-tone-seed1`, ...), and the baseline (the workspace) gets the same seeds
(`baseline-seed1`, ...). The experiments go through DVC's queue, `--jobs` at a time.

"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from audiosr.names import FILTERS, NOISE_TYPES
from audiosr.params import workers

ABLATIONS: dict[str, str] = {
    **{f"noise-{kind}": f"noise.type={kind}" for kind in NOISE_TYPES},
    **{f"filter-{family}": f"filter.types=[{family}]" for family in FILTERS},
}
SYSTEM = "model_lfr"
BASELINE = "baseline"
WORKSPACE = "workspace"
THREADS_PER_JOB = 2  # an experiment's stages use this many cores (torch threads, evaluation workers)


def _outs(stage: dict) -> list[str]:
    return [o if isinstance(o, str) else next(iter(o)) for k in ("outs", "metrics") for o in stage.get(k, [])]


def seed_params(override: str, root: Path = Path(".")) -> list[str]:
    """The seeds of the stages an override re-runs (the stages that read its block and every stage after
    them), as params: `seed` or `<block>.seed`. The evaluation's seed is not one: its items stay fixed."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    params = yaml.safe_load((root / "params.yaml").read_text())
    block = override.split("=")[0].split(".")[0]
    rerun = {name for name, s in stages.items() if block in s.get("params", [])}
    grew = True
    while grew:  # downstream: a stage whose deps include what a re-run stage writes
        made = [o for name in rerun for o in _outs(stages[name])]
        more = {
            name
            for name, s in stages.items()
            if any(d == o or d.startswith(o.rstrip("/") + "/") for d in s.get("deps", []) for o in made)
        }
        grew, rerun = bool(more - rerun), rerun | more
    seeds = set()
    for name in rerun:
        for p in stages[name].get("params", []):
            if p == "seed":
                seeds.add("seed")
            elif p != "eval" and isinstance(params.get(p), dict) and "seed" in params[p]:
                seeds.add(f"{p}.seed")
    return sorted(seeds)


def plan(names: list[str], seeds: int, root: Path = Path(".")) -> dict[str, list[str]]:
    """Experiment name -> its `-S` overrides: each ablation at seeds 0..seeds-1, and the baseline at the
    seeds above 0 (seed 0 is the workspace itself)."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    varied = sorted({p for n in names for p in seed_params(ABLATIONS[n], root)})

    def seeded(k: int) -> list[str]:
        out = []
        for p in varied:
            value = params
            for part in p.split("."):
                value = value[part]
            out.append(f"{p}={int(value) + k}")
        return out if k else []

    experiments = {}
    for k in range(seeds):  # seed by seed, so a run cut short leaves every experiment with as many seeds
        if k:
            experiments[f"{BASELINE}-seed{k}"] = seeded(k)
        for n in names:
            experiments[n if k == 0 else f"{n}-seed{k}"] = [ABLATIONS[n], *seeded(k)]
    return experiments


def run_experiments(experiments: dict[str, list[str]], jobs: int) -> None:
    """Queue every experiment (replacing an earlier one of the same name) and run the queue, `jobs` at a
    time, each with its share of the cores; raises when one failed, after printing its log."""
    for name, overrides in experiments.items():
        print(f"ablations: queue {name} ({' '.join(overrides) or 'the baseline params'})", flush=True)
        subprocess.run(["dvc", "exp", "remove", name], capture_output=True)
        cmd = ["dvc", "exp", "run", "--queue", "-n", name]
        subprocess.run(cmd + [a for o in overrides for a in ("-S", o)], check=True, capture_output=True)
    env = {**os.environ, "AUDIOSR_WORKERS": str(max(1, workers() // jobs))}
    # The workers `dvc queue start` leaves behind inherit its stdout and stderr. Were they pipes, reading
    # them would wait for as long as a worker lives, and a worker can outlive the queue (DVC's stops itself
    # when the queue empties, but has hung doing so): its output goes to a file, and the queue is watched.
    with tempfile.TemporaryFile("w+") as log:
        started = subprocess.run(["dvc", "queue", "start", "-j", str(jobs)], env=env, stdout=log, stderr=log)
        if started.returncode:
            log.seek(0)
            raise SystemExit(f"ablations: `dvc queue start` failed:\n{log.read()[-3000:]}")
    wait_for_queue(list(experiments))


def wait_for_queue(names: list[str] | None = None) -> None:
    """Wait until DVC's queue has nothing queued or running: the experiments run in its workers, so this
    process may be stopped and started again (`--report-only` waits too). Raises when one of `names` failed."""
    watched, done = set(names or []), set()
    while True:
        status = queue_status()
        waiting = {n for n, state in status.items() if state in ("Queued", "Running")}
        watched |= waiting
        for name in sorted(watched - waiting - done):
            done.add(name)
            print(f"ablations: {name} {status.get(name, 'gone').lower()}", flush=True)
        if not waiting:
            break
        time.sleep(10)
    failed = [n for n in names or [] if status.get(n) == "Failed"]
    for name in failed:
        logs = subprocess.run(["dvc", "queue", "logs", name], capture_output=True, text=True)
        print(logs.stdout[-3000:], file=sys.stderr)
    if failed:
        raise SystemExit(f"ablations: {', '.join(failed)} failed (log above); `dvc queue status` lists them")


def queue_status() -> dict[str, str]:
    """Experiment name -> state (Queued, Running, Success, Failed) from `dvc queue status`."""
    out = subprocess.run(["dvc", "queue", "status"], capture_output=True, text=True, check=True).stdout
    status = {}
    for line in out.splitlines()[1:]:
        parts = line.split()  # Task, Name, Created (one or two words), Status
        if len(parts) >= 3 and parts[-1] in ("Queued", "Running", "Success", "Failed"):
            status[parts[1]] = parts[-1]
    return status


def experiments_table() -> pd.DataFrame:
    """One row per experiment (and the workspace) with its git revision, from `dvc exp show --csv`.

    Experiments on every commit of the branch count (`-n -1`), newest first, so a commit made while the
    ablations run does not hide the ones that ran on its parent; the newest run of each name wins."""
    out = subprocess.run(
        ["dvc", "exp", "show", "--csv", "--no-pager", "-n", "-1"], capture_output=True, text=True, check=True
    )
    table = pd.read_csv(io.StringIO(out.stdout))
    table["Experiment"] = table["Experiment"].fillna("").astype(str)
    table = table[(table["Experiment"] != "") | (table["rev"] == WORKSPACE)]
    # an experiment still running (or killed mid-run) carries the workspace's metrics, not its own
    if "State" in table.columns:
        table = table[~table["State"].fillna("").isin(["Running", "Queued", "Failed"])]
    table.loc[table["rev"] == WORKSPACE, "Experiment"] = WORKSPACE
    return table.drop_duplicates("Experiment").set_index("Experiment")


def read_file(rev: str, path: str) -> str | None:
    """A file of the workspace (from disk) or of an experiment's git commit; None where it has none."""
    if rev == WORKSPACE:
        return Path(path).read_text() if Path(path).exists() else None
    out = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
    return out.stdout if out.returncode == 0 else None


def protocol(lock: str | None) -> str | None:
    """What an evaluation's numbers depend on besides the model, from a dvc.lock: the evaluate stage's
    code and test data hashes and its params. Experiments are compared only where it is the same."""
    stage = (yaml.safe_load(lock) or {}).get("stages", {}).get("evaluate") if lock else None
    if stage is None:
        return None
    deps = {d["path"]: d.get("md5") for d in stage.get("deps", []) if d["path"] != "models/pipeline"}
    return json.dumps([deps, stage.get("params")], sort_keys=True)


def load_items(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Each experiment's metrics/eval_items.csv (from its git commit; the workspace's from disk), of the
    experiments evaluated as the workspace is (`protocol`): an older one, evaluated by other code or
    other eval params, is left out with a note."""
    items, old, other = {}, [], []
    own = protocol(read_file(WORKSPACE, "dvc.lock"))
    for name, rev in table["rev"].items():
        text = read_file(rev, "metrics/eval_items.csv")
        if text is None:
            old.append(name)
        elif rev != WORKSPACE and protocol(read_file(rev, "dvc.lock")) != own:
            other.append(name)
        else:
            items[name] = pd.read_csv(io.StringIO(text))
    if old:
        print(
            f"ablations: left out {', '.join(old)}: no metrics/eval_items.csv (run before it existed)", file=sys.stderr
        )
    if other:
        print(
            f"ablations: left out {', '.join(other)}: evaluated by other evaluation code or eval params than the "
            "workspace; run them again (make ablations ONLY=...)",
            file=sys.stderr,
        )
    return items


def group_name(experiment: str) -> tuple[str, int]:
    """`noise-tone-seed2` -> (`noise-tone`, 2); the workspace is the baseline's seed 0."""
    if experiment == WORKSPACE:
        return BASELINE, 0
    m = re.fullmatch(r"(.+)-seed(\d+)", experiment)
    return (m[1], int(m[2])) if m else (experiment, 0)


def groups(items: dict[str, pd.DataFrame]) -> dict[str, dict[int, pd.DataFrame]]:
    """Ablation -> seed -> its items table, the baseline first."""
    out: dict[str, dict[int, pd.DataFrame]] = {}
    for name, table in items.items():
        group, seed = group_name(name)
        out.setdefault(group, {})[seed] = table.assign(experiment=name)
    if BASELINE not in out:
        raise SystemExit("ablations: the workspace has no metrics/eval_items.csv; run `dvc repro` first")
    return {BASELINE: out.pop(BASELINE), **dict(sorted(out.items()))}
