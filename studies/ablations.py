"""The study's ablations and their report with seeds and intervals (`make ablations`).

    python -m studies.ablations [--only noise-tone ...] [--seeds 3] [--jobs 2] [--report-only]

Runs the experiments of audiosr.experiments (each re-runs only the stages its params touch and logs to the
workspace's MLflow store under its name), then writes metrics/ablations.md and metrics/ablations.png: per
experiment the mean over its seeds, the spread between seeds, and the difference to the baseline with a
95 % paired bootstrap interval over the evaluation's conditions, clips and training seeds (audiosr.stats),
marked * where the interval excludes zero. The same figures go to each experiment's MLflow pipeline run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from audiosr import stats
from audiosr.experiments import (
    ABLATIONS,
    BASELINE,
    SYSTEM,
    THREADS_PER_JOB,
    experiments_table,
    groups,
    load_items,
    plan,
    run_experiments,
    wait_for_queue,
)
from audiosr.params import workers

REPORTED = ("lsd", "lsd_hf", "lsd_lf", "si_sdr", "visqol")  # the evaluation's metrics but PESQ (speech)


def compare(runs: dict[str, dict[int, pd.DataFrame]], metric: str, cutoff: float | None = None) -> dict:
    """Per group: mean, seed spread and the difference to the baseline (with its interval) of `metric`."""
    base, index = stats.item_matrix(list(runs[BASELINE].values()), SYSTEM, metric)
    mask = None if cutoff is None else index.get_level_values("cutoff_hz").to_numpy(float) == cutoff
    conditions, clips = stats.crossed(index)
    out = {}
    for group, seeds in runs.items():
        values, other_index = stats.item_matrix(list(seeds.values()), SYSTEM, metric)
        if not other_index.equals(index):
            raise SystemExit(f"ablations: {group} was evaluated on other items than the baseline; re-run it")
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
    print(f"ablations: the figures are on {log_to_mlflow(runs, results)} MLflow pipeline runs (ablation/*)")


if __name__ == "__main__":
    sys.exit(main())
