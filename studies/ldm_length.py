"""How the held-out LSD moves with the diffusion model's training length: the default recipe with its
steps (`ldm.steps`) times each multiple, each a DVC experiment `ldm-<multiple>x` run through the queue
as `make ablations` runs them (train_ldm, distill and evaluate re-run; the cosine schedule spans the
new steps, the warm-up stays), against the workspace's own run (1x). Prints a table: per length the
LDM's training minutes (wall time: other work on the machine stretches it), `model` LSD (the teacher,
no band merge, so the merge's version does not matter) and by cutoff, the student's, and the
difference to 1x with its 95 % paired bootstrap interval (conditions x clips); writes the curve as a PNG.

    python -m studies.ldm_length [--multiples 0.5 2] [--jobs 1] [--report-only] [--png studies/ldm_length.png]

Run it in a checkout where `dvc repro` has run. `--report-only` waits for experiments still in the
queue, then reports.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from audiosr import experiments, stats
from audiosr.config import Params
from studies.grid import length_curve

SYSTEMS = ("model", "model_fast")


def experiment(multiple: float) -> str:
    return f"ldm-{multiple:g}x"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--multiples", type=float, nargs="+", default=[0.5, 2.0])
    ap.add_argument("--jobs", type=int, default=1, help="experiments at once (each gets cores / jobs)")
    ap.add_argument("--report-only", action="store_true", help="report the experiments there are")
    ap.add_argument("--png", default="studies/ldm_length.png")
    args = ap.parse_args()
    steps = Params.load().ldm.steps
    lengths = {experiments.WORKSPACE: steps} | {experiment(m): round(steps * m) for m in args.multiples if m != 1}
    runs = {name: [f"ldm.steps={n}"] for name, n in lengths.items() if name != experiments.WORKSPACE}
    if args.report_only:
        experiments.wait_for_queue()
    else:
        experiments.run_experiments(runs, args.jobs)
    table = experiments.experiments_table()
    items = experiments.load_items(table)  # those evaluated as the workspace is
    missing = [name for name in lengths if name not in items]
    if missing:
        raise SystemExit(f"ldm_length: no comparable experiment {', '.join(missing)}; run without --report-only")
    minutes = {
        name: json.loads(experiments.read_file(table.loc[name, "rev"], "metrics/stats/train_ldm.json"))["seconds"] / 60
        for name in lengths
    }
    base = {s: stats.item_matrix([items[experiments.WORKSPACE]], s, "lsd") for s in SYSTEMS}
    cutoffs = sorted(items[experiments.WORKSPACE]["cutoff_hz"].unique())
    head = " | ".join(f"{c / 1000:g} kHz" for c in cutoffs)
    print(f"| LDM steps | training (min) | model LSD | {head} | Δ model [95 % CI] | model_fast LSD | Δ model_fast |")
    print("| ---: | ---: | ---: | " + " | ".join("---:" for _ in cutoffs) + " | ---: | ---: | ---: |")
    rows = []
    for name in sorted(lengths, key=lengths.get):
        cells, row = [], {"steps": lengths[name], "minutes": minutes[name]}
        for s in SYSTEMS:
            values, index = stats.item_matrix([items[name]], s, "lsd")
            conditions, clips = stats.crossed(index)
            row[s] = float(np.nanmean(values))
            diff = (
                ""
                if name == experiments.WORKSPACE
                else str(stats.paired_difference(base[s][0], values, conditions, clips))
            )
            cells.append((row[s], diff))
        per_cut = items[name][items[name]["system"] == "model"].groupby("cutoff_hz")["lsd"].mean()
        rows.append(row)
        print(
            f"| {lengths[name]} | {minutes[name]:.1f} | {cells[0][0]:.3f} | "
            + " | ".join(f"{per_cut[c]:.3f}" for c in cutoffs)
            + f" | {cells[0][1]} | {cells[1][0]:.3f} | {cells[1][1]} |"
        )
    xs = [r["steps"] for r in rows]
    series = {s: [r[s] for r in rows] for s in SYSTEMS}
    length_curve(args.png, xs, [str(n) for n in xs], series, "diffusion model training steps")


if __name__ == "__main__":
    main()
