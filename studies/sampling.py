"""Sampling steps × guidance scale at inference: LSD of `model` and `model_lfr` and the real-time
factor, on a part of the evaluation grid (all cutoffs and filters, no noise), with the trained model;
the teacher at each (steps, guidance), then the one-step student where the model has one.

    python -m studies.sampling [--model models/pipeline] [--steps 1 2 5 10 20 40] [--guidance 1 2 3]
                               [--visqol] [--no-student]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from audiosr import metrics
from audiosr.audio import SAMPLE_RATE
from audiosr.inference.merge import replace_low_band
from audiosr.parallel import pool_map
from studies.grid import eval_config, generate, items


def _score(job: tuple) -> tuple[float, ...]:
    """LSD of the generated signal and of its band merge (as the evaluation's), and the merge's ViSQOL
    when asked (NaN otherwise)."""
    clean, x, y, visqol = job
    merged = replace_low_band(x, y)
    return metrics.lsd(clean, y), metrics.lsd(clean, merged), metrics.visqol(clean, merged) if visqol else np.nan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/pipeline")
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 2, 5, 10, 20, 40])
    ap.add_argument("--guidance", type=float, nargs="+", default=[1.0, 2.0, 3.0])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--visqol", action="store_true", help="add model_lfr's ViSQOL (about 0.4 s per item)")
    ap.add_argument("--no-student", dest="student", action="store_false", help="the teacher's rows only")
    args = ap.parse_args()
    cfg = eval_config(noises=["none"])
    conds, clean, x = items(cfg)
    cutoffs = sorted({c.cutoff_hz for c in conds})
    print(f"{len(x)} items ({len(conds) // len(set(conds))} clips × {len(set(conds))} conditions, no noise)")
    head = " | ".join(f"{c / 1000:g} kHz" for c in cutoffs)
    visqol = " | model_lfr ViSQOL" if args.visqol else ""
    print(f"| sampler | steps | guidance | model LSD | model_lfr LSD | model_lfr {head}{visqol} | RTF (2 cores) |")
    numbers = 2 + len(cutoffs) + args.visqol + 1  # LSDs, per cutoff, ViSQOL, RTF
    print("| --- | ---: | ---: | " + " | ".join("---:" for _ in range(numbers)) + " |")
    runs = [(s, g) for s in args.steps for g in args.guidance]
    if args.student and "student" in json.loads((Path(args.model) / "config.json").read_text()):
        runs.append((None, 0.0))
    for steps, guidance in runs:
        start = time.perf_counter()
        y = generate(args.model, x, steps, guidance, cfg.seed, args.workers)
        rtf = (time.perf_counter() - start) / (x.size / SAMPLE_RATE)
        jobs = [(c, xi, yi, args.visqol) for c, xi, yi in zip(clean, x, y, strict=True)]
        scores = np.array(list(pool_map(_score, jobs, args.workers)))
        by_cut = [scores[[cd.cutoff_hz == c for cd in conds], 1].mean() for c in cutoffs]
        cells = " | ".join(f"{v:.3f}" for v in by_cut)
        means = f"{scores[:, 0].mean():.3f} | {scores[:, 1].mean():.3f}"
        cells += f" | {np.mean(scores[:, 2]):.3f}" if args.visqol else ""
        what = "teacher" if steps else "student"
        print(f"| {what} | {steps or 1} | {guidance or '(distilled)'} | {means} | {cells} | {rtf:.3f} |")


if __name__ == "__main__":
    main()
