"""The band merge study: the trained model's outputs on the evaluation grid, merged with the input in
several ways, scored per condition. Prints, per merge, the mean LSD / LSD-HF / LSD-LF and the number
of conditions where it loses to `model` (LSD-HF) or to `unprocessed` (LSD-LF).

    python -m studies.merge [--model models/pipeline] [--steps N --guidance G] [--cache FILE]

The teacher runs once per (condition, clip); its outputs are cached, by default in
.cache/merge_study_<steps>x<guidance>.npz (delete it after changing the model), so trying a merge costs
a minute.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd

from audiosr import metrics
from audiosr.inference import merge
from audiosr.inference.cutoff import band_of
from audiosr.parallel import pool_map
from studies.grid import eval_config, generate, items


def generated(model: str, cache: Path | None, workers: int, steps: int | None, guidance: float | None) -> tuple:
    """(condition per item, clean, degraded, generated) over the evaluation grid, the teacher at `steps` and
    `guidance` (default: the evaluation's); the generated signals are cached in `cache` (default: named
    after the sampler)."""
    cfg = eval_config()
    conds, clean, x = items(cfg)
    steps, guidance = steps or cfg.steps, cfg.guidance if guidance is None else guidance
    cache = cache or Path(f".cache/merge_study_{steps}x{guidance:g}.npz")
    if cache.exists():
        y = np.load(cache)["y"]
    else:
        y = generate(model, x, steps, guidance, cfg.seed, workers)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, y=y)
    return conds, clean, x, y


def _score(job: tuple) -> dict:
    clean, est, cutoff = job
    return metrics.lsd_split(clean, est, cutoff)


def study(variants: dict, conds: list, clean, x, y, workers: int) -> pd.DataFrame:
    rows = []
    for name, fn in variants.items():
        outs = [fn(xi, yi) for xi, yi in zip(x, y, strict=True)]
        scores = pool_map(
            _score, [(c, o, cond.cutoff_hz) for c, o, cond in zip(clean, outs, conds, strict=True)], workers
        )
        for cond, s in zip(conds, scores, strict=True):
            rows.append({"merge": name, "cutoff_hz": cond.cutoff_hz, "filter": cond.filter, "noise": cond.noise, **s})
    return pd.DataFrame(rows)


def report(df: pd.DataFrame) -> str:
    per = df.groupby(["merge", "cutoff_hz", "filter", "noise"], sort=False)[["lsd", "lsd_hf", "lsd_lf"]].mean()
    model, unproc = per.loc["model"], per.loc["unprocessed"]
    lines = [
        "| merge | LSD | LSD-HF | LSD-LF | 4 kHz | 8 kHz | 12 kHz | loses to model (HF) | loses to unprocessed (LF) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in df["merge"].unique():
        p = per.loc[name]
        by_cut = p.groupby("cutoff_hz")["lsd"].mean()
        hf_loss = int((p["lsd_hf"] > model["lsd_hf"] + 0.01).sum())
        lf_loss = int((p["lsd_lf"] > unproc["lsd_lf"] + 0.01).sum())
        lines.append(
            f"| {name} | {p['lsd'].mean():.3f} | {p['lsd_hf'].mean():.3f} | {p['lsd_lf'].mean():.3f} | "
            + " | ".join(f"{by_cut.get(c, np.nan):.3f}" for c in (4000.0, 8000.0, 12000.0))
            + f" | {hf_loss}/{len(p)} | {lf_loss}/{len(p)} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/pipeline")
    ap.add_argument("--cache", type=Path, default=None, help="the model's outputs (default: named after the sampler)")
    ap.add_argument("--steps", type=int, default=None, help="the teacher's sampling steps (default: eval.steps)")
    ap.add_argument("--guidance", type=float, default=None, help="its guidance scale (default: eval.guidance)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    conds, clean, x, y = generated(args.model, args.cache, args.workers, args.steps, args.guidance)

    def fixed(xi, yi):  # AudioSR's post-processing: the input below its energy cutoff
        return merge.replace_low_band(xi, yi, metrics.detect_cutoff(xi), silence=0.0)

    def adaptive(band: bool, floor: bool):
        """The adaptive merge at the input's band (else at its energy cutoff), with its noise floor (else none)."""

        def fn(xi, yi):
            b = band_of(xi)
            cut = b.cutoff_hz if band else metrics.detect_cutoff(xi)
            return merge.merge_bands(
                xi[None], yi[None], [merge.cutoff_bin(cut, merge.LFR_FFT)], 0.0, floors=[b.floor if floor else 0.0]
            )[0]

        return fn

    variants = {
        "unprocessed": lambda xi, yi: xi,
        "model": lambda xi, yi: yi,
        "fixed cut at the energy cutoff": fixed,
        "adaptive at the energy cutoff": adaptive(band=False, floor=False),
        "adaptive at the input's band": adaptive(band=True, floor=False),
        "adaptive at the input's band, above its noise floor (default)": adaptive(band=True, floor=True),
    }
    print(report(study(variants, conds, clean, x, y, args.workers)))


if __name__ == "__main__":
    main()
