"""Where the time of a pipeline run goes: each stage's wall time, as its MLflow run recorded it
(`time/duration_s`), for the latest pipeline execution of a DVC experiment in a project's store.

    python benchmarks/stage_times.py [--root .] [--experiment workspace] [--publish]

`--root` is a checkout whose `mlflow.db` holds the run (a fresh clone after `make run`, say); the
experiment is the DVC experiment's name (`workspace` for `dvc repro`). A stage that DVC skipped (up to
date) has no run in that execution and is not listed. `--publish` writes the table into
docs/performance.md.
"""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

from audiosr import docpages


def stage_times(root: Path, experiment: str) -> tuple[list[tuple[str, float]], str]:
    """[(stage, seconds)] in the order the stages started, and the execution's start time (UTC)."""
    import mlflow

    from audiosr.tracking import EXPERIMENT, KIND

    client = mlflow.MlflowClient(f"sqlite:///{(root / 'mlflow.db').resolve()}")
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is None:
        raise SystemExit(f"{root / 'mlflow.db'}: no experiment {EXPERIMENT!r}; run the pipeline there first")
    ids = [exp.experiment_id]
    parents = client.search_runs(
        ids, f"tags.`{KIND}` = 'pipeline' and tags.`dvc.exp_name` = '{experiment}'", order_by=["start_time DESC"]
    )
    if not parents:
        raise SystemExit(f"{root / 'mlflow.db'}: no pipeline execution of the DVC experiment {experiment!r}")
    parent = parents[0]
    stages = client.search_runs(ids, f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'", max_results=1000)
    rows = sorted(
        (run.info.start_time, run.data.tags.get("stage", run.info.run_name), run.data.metrics["time/duration_s"])
        for run in stages
        if "time/duration_s" in run.data.metrics
    )
    started = datetime.datetime.fromtimestamp(parent.info.start_time / 1000, datetime.UTC)
    return [(stage, seconds) for _, stage, seconds in rows], started.strftime("%Y-%m-%d %H:%M UTC")


def table(rows: list[tuple[str, float]], title: str) -> str:
    total = sum(s for _, s in rows)
    lines = [title, "", "| stage | minutes | share |", "| --- | ---: | ---: |"]
    lines += [f"| {stage} | {s / 60:.1f} | {100 * s / total:.0f} % |" for stage, s in rows]
    lines.append(f"| all stages | {total / 60:.1f} | |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path("."), help="the checkout whose mlflow.db holds the run")
    ap.add_argument("--experiment", default="workspace", help="the DVC experiment's name")
    ap.add_argument("--publish", action="store_true", help="write the table into docs/performance.md")
    args = ap.parse_args()
    rows, started = stage_times(args.root, args.experiment)
    text = table(rows, f"stage wall times of the pipeline execution `{args.experiment}` started {started}")
    print(text)
    if args.publish:
        docpages.publish("stage_times", text)


if __name__ == "__main__":
    main()
