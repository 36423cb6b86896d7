"""The study's ablations as DVC experiments, and their report with seeds and intervals (`make ablations`).

    python -m audiosr.ablate [--only noise-tone ...] [--seeds 3] [--jobs 2] [--report-only]

Experiments, on the current params (each re-runs only the stages its params touch and logs to the
workspace's MLflow store under its name):
  noise-<type>      noise.type = none | tone | gaussian | mixed
  filter-<family>   filter.types = [<family>]   (the baseline trains on all four)
With `--seeds N`, each runs N times with the seeds of the stages it re-runs set to their value + 0..N-1
(`noise-tone`, `noise-tone-seed1`, ...), and the baseline (the workspace) gets the same seeds
(`baseline-seed1`, ...). The experiments go through DVC's queue, `--jobs` at a time.

The report, metrics/ablations.md and metrics/ablations.png, gives per experiment the mean over its seeds,
the spread between seeds, and the difference to the baseline with a 95 % paired bootstrap interval over
the evaluation's conditions, clips and training seeds (audiosr.stats), marked * where the interval
excludes zero. The same figures go
to each experiment's MLflow pipeline run.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from audiosr import stats
from audiosr.names import FILTERS, NOISE_TYPES
from audiosr.params import workers

ABLATIONS: dict[str, str] = {
    **{f"noise-{kind}": f"noise.type={kind}" for kind in NOISE_TYPES},
    **{f"filter-{family}": f"filter.types=[{family}]" for family in FILTERS},
}
REPORTED = ("lsd", "lsd_hf", "lsd_lf", "si_sdr", "visqol")  # the report's metrics: the evaluation's but PESQ (speech)
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
        print(f"ablate: queue {name} ({' '.join(overrides) or 'the baseline params'})", flush=True)
        subprocess.run(["dvc", "exp", "remove", name], capture_output=True)
        cmd = ["dvc", "exp", "run", "--queue", "-n", name]
        subprocess.run(cmd + [a for o in overrides for a in ("-S", o)], check=True, capture_output=True)
    env = {**os.environ, "AUDIOSR_WORKERS": str(max(1, workers() // jobs))}
    subprocess.run(["dvc", "queue", "start", "-j", str(jobs)], check=True, env=env, capture_output=True)
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
            print(f"ablate: {name} {status.get(name, 'gone').lower()}", flush=True)
        if not waiting:
            break
        time.sleep(10)
    failed = [n for n in names or [] if status.get(n) == "Failed"]
    for name in failed:
        logs = subprocess.run(["dvc", "queue", "logs", name], capture_output=True, text=True)
        print(logs.stdout[-3000:], file=sys.stderr)
    if failed:
        raise SystemExit(f"ablate: {', '.join(failed)} failed (log above); `dvc queue status` lists them")


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
        print(f"ablate: left out {', '.join(old)}: no metrics/eval_items.csv (run before it existed)", file=sys.stderr)
    if other:
        print(
            f"ablate: left out {', '.join(other)}: evaluated by other evaluation code or eval params than the "
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
        raise SystemExit("ablate: the workspace has no metrics/eval_items.csv; run `dvc repro` first")
    return {BASELINE: out.pop(BASELINE), **dict(sorted(out.items()))}


def compare(runs: dict[str, dict[int, pd.DataFrame]], metric: str, cutoff: float | None = None) -> dict:
    """Per group: mean, seed spread and the difference to the baseline (with its interval) of `metric`."""
    base, index = stats.item_matrix(list(runs[BASELINE].values()), SYSTEM, metric)
    mask = None if cutoff is None else index.get_level_values("cutoff_hz").to_numpy(float) == cutoff
    conditions, clips = stats.crossed(index)
    out = {}
    for group, seeds in runs.items():
        values, other_index = stats.item_matrix(list(seeds.values()), SYSTEM, metric)
        if not other_index.equals(index):
            raise SystemExit(f"ablate: {group} was evaluated on other items than the baseline; re-run it")
        chosen = values if mask is None else values[:, mask]
        per_seed = np.nanmean(chosen, axis=1)
        out[group] = {
            "seeds": len(seeds),
            "mean": float(np.mean(per_seed)),
            "spread": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else float("nan"),
            "diff": None if group == BASELINE else stats.paired_difference(base, values, conditions, clips, mask),
        }
    return out


def report(runs: dict[str, dict[int, pd.DataFrame]], out_md: Path, out_png: Path) -> tuple[str, dict]:
    present = [m for m in REPORTED if m in runs[BASELINE][0].columns and runs[BASELINE][0][m].notna().any()]
    results = {m: compare(runs, m) for m in present}
    header = ["experiment", "seeds"] + [f"{m} (± seed sd) | Δ {m} [95 % CI]" for m in present]
    lines = [f"| {' | '.join(header)} |", "| --- | ---: |" + " ---: | ---: |" * len(present)]
    for group in runs:
        cells = [group if group != BASELINE else f"{BASELINE} (workspace)", str(results[present[0]][group]["seeds"])]
        for m in present:
            r = results[m][group]
            spread = f" ± {r['spread']:.3f}" if not np.isnan(r["spread"]) else ""
            cells += [f"{r['mean']:.3f}{spread}", "" if r["diff"] is None else str(r["diff"])]
        lines.append(f"| {' | '.join(cells)} |")
    n_items = len(runs[BASELINE][0][runs[BASELINE][0]["system"] == SYSTEM])
    text = (
        f"Ablations: `{SYSTEM}` headline metrics on the fixed evaluation protocol ({n_items} items: condition × "
        "clip), the mean over each experiment's training seeds ± their standard deviation, and the "
        "difference to the baseline with a 95 % paired bootstrap interval (drawing conditions, clips and, "
        "where there are several, training seeds); * marks an interval that excludes zero. LSD: lower is "
        "better.\n\n" + "\n".join(lines) + "\n"
    )
    out_md.write_text(text)
    _plot(runs, out_png)
    return text, results


def _plot(runs: dict[str, dict[int, pd.DataFrame]], out_png: Path) -> None:
    """Δ LSD against cutoff per experiment, with the 95 % interval as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = runs[BASELINE][0]
    cutoffs = sorted(first.loc[first["system"] == SYSTEM, "cutoff_hz"].unique())
    by_cutoff = [compare(runs, "lsd", c) for c in cutoffs]
    fig, ax = plt.subplots(figsize=(7, 4))
    others = [g for g in runs if g != BASELINE]
    for n, group in enumerate(others):
        x = np.array(cutoffs) / 1000 + (n - (len(others) - 1) / 2) * 0.15  # side by side at each cutoff
        diffs = [r[group]["diff"] for r in by_cutoff]
        y = np.array([d.delta for d in diffs])
        err = np.array([[d.delta - d.low for d in diffs], [d.high - d.delta for d in diffs]])
        seeds = len(runs[group])
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=f"{group} ({seeds} seed{'s' * (seeds > 1)})")
    ax.axhline(0, color="k", lw=0.8)
    ax.set(xlabel="cutoff (kHz)", ylabel="Δ LSD vs baseline", title=f"{SYSTEM}: Δ LSD with 95 % intervals")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)


def log_to_mlflow(runs: dict[str, dict[int, pd.DataFrame]], results: dict) -> int:
    """The report's figures on each experiment's latest finished pipeline run (every seed's run gets its
    group's): `ablation/<metric>/mean`, `/seed_sd`, `/delta`, `/ci_low`, `/ci_high`; returns how many runs."""
    import mlflow

    from audiosr.tracking import KIND, open_store

    experiment_id = open_store(mlflow)
    client = mlflow.MlflowClient()
    stamp, logged = int(time.time() * 1000), 0
    for group, seeds in runs.items():
        figures = {}
        for metric, per_group in results.items():
            r = per_group[group]
            figures[f"ablation/{metric}/mean"] = r["mean"]
            if not np.isnan(r["spread"]):
                figures[f"ablation/{metric}/seed_sd"] = r["spread"]
            if r["diff"] is not None:
                d = r["diff"]
                figures.update(
                    {
                        f"ablation/{metric}/{k}": v
                        for k, v in (("delta", d.delta), ("ci_low", d.low), ("ci_high", d.high))
                    }
                )
        batch = [mlflow.entities.Metric(k, float(v), stamp, 0) for k, v in figures.items() if not np.isnan(v)]
        for table in seeds.values():
            name = table["experiment"].iloc[0]
            found = client.search_runs(
                [experiment_id],
                f"tags.`{KIND}` = 'pipeline' and tags.`dvc.exp_name` = '{name}' and attributes.status = 'FINISHED'",
                max_results=1,
                order_by=["attributes.start_time DESC"],
            )
            if found:
                client.log_batch(found[0].info.run_id, metrics=batch)
                logged += 1
    return logged


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", choices=sorted(ABLATIONS), help="run only these experiments")
    ap.add_argument("--seeds", type=int, default=1, help="training seeds per experiment (default 1)")
    ap.add_argument(
        "--jobs",
        type=int,
        default=max(1, workers() // THREADS_PER_JOB),
        help=f"experiments at a time (default: the cores / {THREADS_PER_JOB})",
    )
    ap.add_argument(
        "--report-only", action="store_true", help="write the report from the experiments there are (after the queue)"
    )
    args = ap.parse_args()
    if args.seeds < 1 or args.jobs < 1:
        ap.error("--seeds and --jobs must be at least 1")
    if not args.report_only:
        run_experiments(plan(args.only or list(ABLATIONS), args.seeds), args.jobs)
    else:  # experiments still in DVC's queue (this process was stopped while they ran) are waited for
        wait_for_queue()
    runs = groups(load_items(experiments_table()))
    text, results = report(runs, Path("metrics/ablations.md"), Path("metrics/ablations.png"))
    print(text)
    print(f"ablate: the figures are on {log_to_mlflow(runs, results)} MLflow pipeline runs (ablation/*)")


if __name__ == "__main__":
    sys.exit(main())
