"""The study's ablations as DVC experiments, and their report (`make ablations`).

    python -m audiosr.ablate [--only noise-tone filter-boxcar ...] [--report-only]

Runs, one after another as temporary DVC experiments on the current params (each re-runs only the
stages its params touch and logs to the workspace's MLflow store under its name):
  noise-<type>      noise.type = none | tone | gaussian | mixed
  filter-<family>   filter.types = [<family>]   (the baseline trains on all four)
then writes metrics/ablations.md (headline metrics per experiment, with the difference to the
workspace baseline) and metrics/ablations.png (LSD against cutoff per experiment), from
`dvc exp show --csv`.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

import pandas as pd

from audiosr.degrade import FILTERS

ABLATIONS: dict[str, str] = {
    **{f"noise-{kind}": f"noise.type={kind}" for kind in ("none", "tone", "gaussian", "mixed")},
    **{f"filter-{family}": f"filter.types=[{family}]" for family in FILTERS},
}
HEADLINE = ("lsd", "lsd_hf", "lsd_lf", "si_sdr", "visqol")
SYSTEM = "model_lfr"
BASELINE = "baseline (workspace)"


def run_experiments(names: list[str]) -> None:
    for name in names:
        print(f"ablate: {name} ({ABLATIONS[name]})", flush=True)
        subprocess.run(["dvc", "exp", "remove", name], capture_output=True)  # re-running replaces it
        subprocess.run(["dvc", "exp", "run", "--temp", "-n", name, "-S", ABLATIONS[name]], check=True)


def experiments_table() -> pd.DataFrame:
    """One row per experiment (and the workspace) with the eval metrics, from `dvc exp show --csv`.

    Experiments on every commit of the branch count (`-n -1`), newest first, so a commit made while the ablations
    run does not hide the ones that ran on its parent; the newest run of each name wins."""
    out = subprocess.run(
        ["dvc", "exp", "show", "--csv", "--no-pager", "-n", "-1"], capture_output=True, text=True, check=True
    )
    table = pd.read_csv(io.StringIO(out.stdout))
    table["Experiment"] = table["Experiment"].fillna("").astype(str)
    table = table[(table["Experiment"] != "") | (table["rev"] == "workspace")]
    # an experiment still running (or killed mid-run) carries the workspace's metrics, not its own
    if "State" in table.columns:
        table = table[table["State"].fillna("") != "Running"]
    table.loc[table["rev"] == "workspace", "Experiment"] = BASELINE
    return table.drop_duplicates("Experiment").set_index("Experiment")


def _metrics(table: pd.DataFrame) -> pd.DataFrame:
    """`SYSTEM`'s metrics as numbers, one column per key without the system ("lsd", "lsd_by_cutoff.4k"...);
    `dvc exp show` names a metric `<key>` or, where keys clash, `metrics/eval.json:<key>`."""
    prefix = f"{SYSTEM}."
    keys = {c: c.removeprefix("metrics/eval.json:") for c in table.columns}
    keep = {c: k[len(prefix) :] for c, k in keys.items() if k.startswith(prefix)}
    return table[list(keep)].rename(columns=keep).apply(pd.to_numeric, errors="coerce")


def report(table: pd.DataFrame, out_md: Path, out_png: Path) -> str:
    metrics = _metrics(table)
    missing = pd.Series(float("nan"), index=table.index)  # a metric no experiment computed
    lines = [f"| experiment | {' | '.join(f'{m} (Δ)' for m in HEADLINE)} |", "| --- |" + " ---: |" * len(HEADLINE)]
    for name in table.index:
        cells = []
        for m in HEADLINE:
            col = metrics.get(m, missing)
            value, delta = col[name], col[name] - col.get(BASELINE, float("nan"))
            if pd.isna(value):
                cells.append("–")  # not computed (e.g. eval.perceptual: false)
            else:
                cells.append(f"{value:.3f}" if name == BASELINE else f"{value:.3f} ({delta:+.3f})")
        lines.append(f"| {name} | {' | '.join(cells)} |")
    text = (
        f"Ablations: `{SYSTEM}` headline metrics on the fixed evaluation protocol; Δ against the baseline "
        f"(LSD: lower is better).\n\n" + "\n".join(lines) + "\n"
    )
    out_md.write_text(text)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    by_cutoff = sorted((int(c.split(".")[-1][:-1]), c) for c in metrics.columns if c.startswith("lsd_by_cutoff."))
    for name in table.index:  # the cutoffs eval.cutoffs_hz set, "4k" -> 4
        ax.plot([k for k, _ in by_cutoff], [metrics.at[name, c] for _, c in by_cutoff], marker="o", label=name)
    ax.set(xlabel="cutoff (kHz)", ylabel="LSD", title=f"LSD against cutoff, {SYSTEM}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", choices=sorted(ABLATIONS), help="run only these experiments")
    ap.add_argument("--report-only", action="store_true", help="write the report from existing experiments")
    args = ap.parse_args()
    if not args.report_only:
        run_experiments(args.only or list(ABLATIONS))
    print(report(experiments_table(), Path("metrics/ablations.md"), Path("metrics/ablations.png")))


if __name__ == "__main__":
    sys.exit(main())
