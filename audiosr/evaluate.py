"""The evaluation protocol: a fixed grid of degradations on the test split, systems side by side.

Grid (`eval` params): cutoffs × filter families (all at `eval.order`) × noises (none; a tone and
Gaussian noise at fixed mid-range amplitudes), on `eval.clips` test segments per condition. The clips,
the grid and every seed are fixed, independent of the training degradation, so two experiments are
compared on identical inputs. The degraded inputs are quantised to 16 bits, as in a file.

Systems: `unprocessed` (the degraded input), `gt_vocoder` (vocoder on the clean mel: the ceiling of
any mel pipeline), `gt_vae` (VAE round trip + vocoder), `model` (the full pipeline, no replacement)
and `model_lfr` (with low-frequency replacement). Inference runs through `audiosr.pipeline.Pipeline`,
the object `audiosr upsample` uses.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from audiosr import degrade as deg
from audiosr import metrics
from audiosr.audio import SAMPLE_RATE, from_int16, log_mel, to_int16
from audiosr.data.store import SegmentSet
from audiosr.pipeline import Pipeline, replace_low_band

SYSTEMS = ("unprocessed", "gt_vocoder", "gt_vae", "model", "model_lfr")
HEADLINE = ("lsd", "lsd_hf", "lsd_lf", "si_sdr", "visqol", "pesq")


@dataclass(frozen=True)
class Condition:
    cutoff_hz: float
    filter: str
    noise: str


def grid(params: dict) -> list[Condition]:
    return [Condition(float(c), f, n) for c, f, n in
            itertools.product(params["cutoffs_hz"], params["filters"], params["noises"])]


def pick_clips(test: SegmentSet, n: int) -> list[int]:
    """`n` test segments spread evenly over the split (so over tracks), the same for every experiment."""
    if len(test) == 0:
        raise ValueError("data/segments/test: the test split has no segments; check the data source and split")
    return sorted({int(i) for i in np.linspace(0, len(test) - 1, min(n, len(test)))})


def degraded_input(clean: np.ndarray, cond: Condition, params: dict, seed: int) -> np.ndarray:
    """The condition applied to a clean clip with a fixed seed, quantised to 16 bits."""
    rng = np.random.default_rng(seed)
    amp = {"none": 0.0, "tone": params["tone_amplitude"], "gaussian": params["gaussian_amplitude"]}[cond.noise]
    d = deg.Degradation(cond.filter, int(params["order"]), cond.cutoff_hz, cond.noise, float(amp),
                        float(params["tone_hz"]) if cond.noise == "tone" else 0.0)
    return from_int16(to_int16(deg.apply(clean, SAMPLE_RATE, d, rng)))


def score(target: np.ndarray, estimate: np.ndarray, cutoff_hz: float, perceptual: bool) -> dict[str, float]:
    out = metrics.lsd_split(target, estimate, cutoff_hz)
    out["si_sdr"] = metrics.si_sdr(target, estimate)
    if perceptual:
        out["visqol"] = metrics.visqol(target, estimate)
        out["pesq"] = metrics.pesq_wb(target, estimate)
    return out


@torch.no_grad()
def references(pipe: Pipeline, clean: np.ndarray) -> dict[str, np.ndarray]:
    """gt_vocoder and gt_vae outputs for a clean clip (they do not depend on the condition)."""
    mel = log_mel(torch.from_numpy(clean)[None].to(pipe.device), pipe.mel)
    voc = pipe.vocoder(mel)[0].float().cpu().numpy()
    z = pipe.vae.encode(mel)[0]
    vae = pipe.vocoder(pipe.vae.decode(z))[0].float().cpu().numpy()
    return {"gt_vocoder": voc[: len(clean)], "gt_vae": vae[: len(clean)]}


def evaluate(pipe: Pipeline, test: SegmentSet, params: dict,
             progress: Callable[[int, int], None] | None = None) -> tuple[pd.DataFrame, dict, list]:
    """Run the protocol. Returns (one row per system × condition × clip, examples, rtf) where examples
    holds the waves of the first clip of a few conditions for figures and listening."""
    conditions, clips = grid(params), pick_clips(test, int(params["clips"]))
    perceptual = bool(params.get("perceptual", True))
    rows, examples, rtfs = [], [], []
    refs = {c: references(pipe, test.audio(c)) for c in clips}
    total, done = len(conditions) * len(clips), 0
    for k, cond in enumerate(conditions):
        for j, c in enumerate(clips):
            clean = test.audio(c)
            x = degraded_input(clean, cond, params, seed=int(params["seed"]) * 100_003 + k * 1009 + j)
            start = time.perf_counter()
            y = pipe.upsample(x, SAMPLE_RATE, steps=int(params["steps"]), guidance=float(params["guidance"]),
                              seed=int(params["seed"]), cutoff_hz=0).wave[0]
            rtfs.append((time.perf_counter() - start) / (len(x) / SAMPLE_RATE))
            outs = {"unprocessed": x, **refs[c], "model": y,
                    "model_lfr": replace_low_band(x, y, metrics.detect_cutoff(x))}
            for system in SYSTEMS:
                rows.append({"system": system, "cutoff_hz": cond.cutoff_hz, "filter": cond.filter,
                             "noise": cond.noise, "clip": c, **score(clean, outs[system], cond.cutoff_hz, perceptual)})
            if j == 0 and cond.noise == "none" and cond.filter == params["filters"][0]:
                examples.append((cond, clean, outs))
            done += 1
            if progress:
                progress(done, total)
    return pd.DataFrame(rows), examples, rtfs


def summarise(rows: pd.DataFrame, rtf: list[float]) -> tuple[dict, pd.DataFrame]:
    """Headline per system (mean over every condition and clip) and the per-condition table."""
    present = [m for m in HEADLINE if m in rows.columns]
    headline = {}
    for system, group in rows.groupby("system", sort=False):
        headline[system] = {m: round(float(np.nanmean(group[m])), 4) for m in present}
        headline[system]["lsd_by_cutoff"] = {
            f"{int(c) // 1000}k": round(float(v), 4) for c, v in group.groupby("cutoff_hz")["lsd"].mean().items()}
    headline["model"]["rtf"] = round(float(np.mean(rtf)), 4)
    by_condition = rows.groupby(["system", "cutoff_hz", "filter", "noise"], sort=False)[present].mean().reset_index()
    return headline, by_condition
