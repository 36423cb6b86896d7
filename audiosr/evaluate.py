"""The evaluation protocol: a fixed grid of degradations on the test split, systems side by side.

Grid (`eval` params): cutoffs × filter families (all at `eval.order`) × noises (none; a tone and
Gaussian noise at fixed mid-range amplitudes), on `eval.clips` test segments per condition. The clips,
the grid and every seed are fixed, independent of the training degradation, so two experiments are
compared on identical inputs. The degraded inputs are quantised to 16 bits, as in a file.

Systems: `unprocessed` (the degraded input), `gt_vocoder` (vocoder on the clean mel: the ceiling of
any mel pipeline), `gt_vae` (VAE round trip + vocoder), `model` (the full pipeline, no replacement)
and `model_lfr` (with low-frequency replacement); where the model has a one-step student (the distill
stage), `model_fast` and `model_fast_lfr` are the same for the student. `model` is the teacher at
`eval.steps` steps and `eval.guidance` (one step: the teacher's own single step, not the student).
Inference runs through `audiosr.inference.Pipeline`, the object `audiosr upsample` uses.
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
from audiosr.config import EvalConfig, block
from audiosr.data.store import SegmentSet
from audiosr.inference.merge import replace_low_band
from audiosr.inference.restore import Pipeline
from audiosr.parallel import pool_map

SYSTEMS = ("unprocessed", "gt_vocoder", "gt_vae", "model", "model_lfr", "model_fast", "model_fast_lfr")
GENERATED = {"model": "model_lfr", "model_fast": "model_fast_lfr"}  # a system with its band-merged version
HEADLINE = ("lsd", "lsd_hf", "lsd_lf", "si_sdr", "visqol", "pesq")


@dataclass(frozen=True)
class Condition:
    cutoff_hz: float
    filter: str
    noise: str


def grid(params: EvalConfig | dict) -> list[Condition]:
    cfg = block(EvalConfig, params, "eval")
    return [Condition(float(c), f, n) for c, f, n in itertools.product(cfg.cutoffs_hz, cfg.filters, cfg.noises)]


def pick_clips(test: SegmentSet, n: int) -> list[int]:
    """`n` test segments spread evenly over the split (so over tracks), the same for every experiment."""
    if len(test) == 0:
        raise ValueError("data/segments/test: the test split has no segments; check the data source and split")
    return sorted({int(i) for i in np.linspace(0, len(test) - 1, min(n, len(test)))})


def degraded_input(clean: np.ndarray, cond: Condition, params: EvalConfig | dict, seed: int) -> np.ndarray:
    """The condition applied to a clean clip with a fixed seed, quantised to 16 bits."""
    cfg = block(EvalConfig, params, "eval")
    rng = np.random.default_rng(seed)
    amp = {"none": 0.0, "tone": cfg.tone_amplitude, "gaussian": cfg.gaussian_amplitude}[cond.noise]
    d = deg.Degradation(
        cond.filter, cfg.order, cond.cutoff_hz, cond.noise, amp, cfg.tone_hz if cond.noise == "tone" else 0.0
    )
    return from_int16(to_int16(deg.apply(clean, SAMPLE_RATE, d, rng)))


def score(target: np.ndarray, estimate: np.ndarray, cutoff_hz: float, perceptual: bool) -> dict[str, float]:
    out = metrics.lsd_split(target, estimate, cutoff_hz)
    out["si_sdr"] = metrics.si_sdr(target, estimate)
    if perceptual:
        out["visqol"] = metrics.visqol(target, estimate)
        out["pesq"] = metrics.pesq_wb(target, estimate)
    return out


_WORKER: dict = {}  # the pipeline and test set of this process (loaded once per worker)


def _load(model: str, device: str, precision: str, test_dir: str) -> None:
    _WORKER.update(pipe=Pipeline.load(model, device, precision), test=SegmentSet.open(test_dir))


@torch.no_grad()
def _references(job: tuple) -> dict[str, tuple[np.ndarray, dict]]:
    """gt_vocoder and gt_vae of one clean clip (they do not depend on the condition), with their
    perceptual scores, computed once per clip."""
    clip, perceptual = job
    pipe, clean = _WORKER["pipe"], _WORKER["test"].audio(clip)
    mel = log_mel(torch.from_numpy(clean)[None].to(pipe.device), pipe.mel)
    waves = {"gt_vocoder": pipe.vocoder(mel), "gt_vae": pipe.vocoder(pipe.vae.decode(pipe.vae.encode(mel)[0]))}
    out = {}
    for name, wave in waves.items():
        wave = wave[0].float().cpu().numpy()[: len(clean)]
        scores = {"visqol": metrics.visqol(clean, wave), "pesq": metrics.pesq_wb(clean, wave)} if perceptual else {}
        out[name] = (wave, scores)
    return out


def _condition(job: tuple) -> tuple[list[dict], dict, dict[str, float]]:
    """One condition on one clip: every system's scores, the waves, and the real-time factor of the
    model (and of the student, where there is one)."""
    k, cond, j, clip, cfg, refs = job
    pipe, clean = _WORKER["pipe"], _WORKER["test"].audio(clip)
    x = degraded_input(clean, cond, cfg, seed=cfg.seed * 100_003 + k * 1009 + j)
    outs = {"unprocessed": x, **{name: wave for name, (wave, _) in refs.items()}}
    # the teacher at eval.steps (also at 1: its own single step), and the student where there is one
    runs = {"model": (pipe.teacher_only(), cfg.steps)}
    if pipe.student is not None:
        runs["model_fast"] = (pipe, pipe.student_steps)
    rtf = {}
    for system, (p, n) in runs.items():
        start = time.perf_counter()
        y = p.upsample(x, SAMPLE_RATE, steps=n, guidance=cfg.guidance, seed=cfg.seed, cutoff_hz=0).wave[0]
        rtf[system] = (time.perf_counter() - start) / (len(x) / SAMPLE_RATE)
        outs[system], outs[GENERATED[system]] = y, replace_low_band(x, y)
    rows = []
    for system in (s for s in SYSTEMS if s in outs):
        if system in refs:  # the perceptual scores of a reference do not depend on the condition
            scores = {**score(clean, outs[system], cond.cutoff_hz, False), **refs[system][1]}
        else:
            scores = score(clean, outs[system], cond.cutoff_hz, cfg.perceptual)
        rows.append(
            {
                "system": system,
                "cutoff_hz": cond.cutoff_hz,
                "filter": cond.filter,
                "noise": cond.noise,
                "clip": clip,
                **scores,
            }
        )
    return rows, outs, rtf


def is_example(cond: Condition, cfg: EvalConfig) -> bool:
    """The conditions whose first clip is kept as an example: every cutoff with the first filter family
    and no noise, and at the middle cutoff every filter family and every noise."""
    middle = float(cfg.cutoffs_hz[len(cfg.cutoffs_hz) // 2])
    if cond.noise == "none" and cond.filter == cfg.filters[0]:
        return True
    return cond.cutoff_hz == middle and (cond.noise == "none" or cond.filter == cfg.filters[0])


def evaluate(
    model: str,
    test_dir: str,
    params: EvalConfig | dict,
    workers: int,
    device: str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pd.DataFrame, list, list[dict[str, float]]]:
    """Run the protocol over `workers` processes. Returns (one row per system × condition × clip,
    examples: (condition, clean, waves) of the first clip of a few conditions, real-time factors)."""
    cfg = block(EvalConfig, params, "eval")
    test = SegmentSet.open(test_dir)
    conditions, clips = grid(cfg), pick_clips(test, cfg.clips)
    init = (_load, (model, device, cfg.precision, test_dir))
    refs = dict(zip(clips, pool_map(_references, [(c, cfg.perceptual) for c in clips], workers, *init), strict=True))
    jobs = [(k, cond, j, c, cfg, refs[c]) for k, cond in enumerate(conditions) for j, c in enumerate(clips)]
    rows, examples, rtfs = [], [], []
    for n, ((_, cond, j, c, _, _), (r, outs, rtf)) in enumerate(
        zip(jobs, pool_map(_condition, jobs, workers, *init), strict=True)
    ):
        rows += r
        rtfs.append(rtf)
        if j == 0 and is_example(cond, cfg):
            examples.append((cond, test.audio(c), outs))
        if progress:
            progress(n + 1, len(jobs))
    return pd.DataFrame(rows), examples, rtfs


def summarise(rows: pd.DataFrame, rtf: list[dict[str, float]]) -> tuple[dict, pd.DataFrame]:
    """Headline per system (mean over every condition and clip) and the per-condition table."""
    present = [m for m in HEADLINE if m in rows.columns]
    headline = {}
    for system, group in rows.groupby("system", sort=False):
        headline[system] = {m: round(float(np.nanmean(group[m])), 4) for m in present}
        headline[system]["lsd_by_cutoff"] = {
            f"{int(c) // 1000}k": round(float(v), 4) for c, v in group.groupby("cutoff_hz")["lsd"].mean().items()
        }
    for system in rtf[0]:
        headline[system]["rtf"] = round(float(np.mean([r[system] for r in rtf])), 4)
    by_condition = rows.groupby(["system", "cutoff_hz", "filter", "noise"], sort=False)[present].mean().reset_index()
    return headline, by_condition
