"""The evaluation protocol: a fixed grid of degradations on the test split, systems side by side.

Grid (`eval` params): cutoffs × filter families (all at `eval.order`) × noises (none; a tone and
Gaussian noise at fixed mid-range amplitudes), on `eval.clips` test segments per condition. The clips,
the grid and every seed are fixed, independent of the training degradation, so two experiments are
compared on identical inputs. The degraded inputs are quantised to 16 bits, as in a file.

A second set, the real recordings (`audiosr.data.realset`), is scored the same way: every clip at each of
`eval.real_cutoffs_hz`, low-passed at `eval.real_order` by the family of `eval.real_filters` that cycles
over clips and cutoffs, without noise.

Beside the means, per system and set: how many items come out worse than the unprocessed input on LSD
(the goal is none), for a band-merged system how many are worse than the system without the merge on
LSD-HF, and the level error of the restored band per octave above the cutoff (dB; positive: too bright).

Systems: `unprocessed` (the degraded input), `gt_vocoder` (vocoder on the clean mel: the ceiling of
any mel pipeline), `gt_vae` (VAE round trip + vocoder), `model` (the full pipeline, no replacement)
and `model_lfr` (with low-frequency replacement); where the model has a one-step student (the distill
stage), `model_fast` and `model_fast_lfr` are the same for the student. `model` is the teacher at
`eval.steps` steps and `eval.guidance` (one step: the teacher's own single step, not the student).
Inference runs through `audiosr.inference.Pipeline`, the object `audiosr upsample` uses.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from audiosr import degrade as deg
from audiosr import metrics, results
from audiosr.audio import SAMPLE_RATE, from_int16, log_mel, to_int16
from audiosr.config import EvalConfig, block
from audiosr.data import realset
from audiosr.data.store import SegmentSet, atomic_dir
from audiosr.inference.merge import replace_low_band
from audiosr.inference.model import read_config
from audiosr.inference.restore import Pipeline
from audiosr.parallel import pool_map
from audiosr.stats import ITEM

SYSTEMS = ("unprocessed", "gt_vocoder", "gt_vae", "model", "model_lfr", "model_fast", "model_fast_lfr")
GENERATED = {"model": "model_lfr", "model_fast": "model_fast_lfr"}  # a system with its band-merged version
HEADLINE = ("lsd", "lsd_hf", "lsd_lf", "si_sdr", "visqol", "pesq")
SETS = ("rendered", "real")  # the held-out rendered test songs, the real recordings
OCTAVES = 4  # level_oct1..4: the octave bands above the lowest cutoff (2 kHz: 2-4, 4-8, 8-16, 16-24 kHz)
HF_MARGIN = 0.01  # a band-merged item counts as worse on LSD-HF than its system without the merge beyond this


@dataclass(frozen=True)
class Condition:
    cutoff_hz: float
    filter: str
    noise: str


def grid(params: EvalConfig | dict) -> list[Condition]:
    cfg = block(EvalConfig, params, "eval")
    return [Condition(float(c), f, n) for c, f, n in itertools.product(cfg.cutoffs_hz, cfg.filters, cfg.noises)]


def real_conditions(params: EvalConfig | dict, clip: int) -> list[Condition]:
    """The real set's conditions of its clip number `clip`: each cutoff, the filter family cycling."""
    cfg = block(EvalConfig, params, "eval")
    filters = cfg.real_filters
    return [Condition(float(c), filters[(clip + k) % len(filters)], "none") for k, c in enumerate(cfg.real_cutoffs_hz)]


def pick_clips(test: SegmentSet, n: int) -> list[int]:
    """`n` test segments spread evenly over the split (so over tracks), the same for every experiment."""
    if len(test) == 0:
        raise ValueError("data/segments/test: the test split has no segments; check the data source and split")
    return sorted({int(i) for i in np.linspace(0, len(test) - 1, min(n, len(test)))})


def item_seed(cfg: EvalConfig, condition: int, clip: int) -> int:
    """The seed of one item's degradation (its noise): condition `condition` of the grid on its `clip`-th
    clip, a function of those and eval.seed alone."""
    return cfg.seed * 100_003 + condition * 1009 + clip


def degraded_input(
    clean: np.ndarray, cond: Condition, params: EvalConfig | dict, seed: int, order: int | None = None
) -> np.ndarray:
    """The condition applied to a clean clip with a fixed seed (filter order `order`, default
    `eval.order`), quantised to 16 bits."""
    cfg = block(EvalConfig, params, "eval")
    rng = np.random.default_rng(seed)
    amp = {"none": 0.0, "tone": cfg.tone_amplitude, "gaussian": cfg.gaussian_amplitude}[cond.noise]
    d = deg.Degradation(
        cond.filter,
        cfg.order if order is None else order,
        cond.cutoff_hz,
        cond.noise,
        amp,
        cfg.tone_hz if cond.noise == "tone" else 0.0,
    )
    return from_int16(to_int16(deg.apply(clean, SAMPLE_RATE, d, rng)))


def score(
    target: np.ndarray, estimate: np.ndarray, cutoff_hz: float, perceptual: bool, target_mag: np.ndarray | None = None
) -> dict[str, float]:
    """Every metric of one estimate; `target_mag`: the target's `metrics.spectrum`, when several estimates
    are scored against one target (computed here otherwise)."""
    tm = metrics.spectrum(target) if target_mag is None else target_mag
    em = metrics.spectrum(estimate)
    out = metrics.lsd_split_from_spectra(tm, em, cutoff_hz)
    out["si_sdr"] = metrics.si_sdr(target, estimate)
    levels = metrics.band_level_error_from_spectra(tm, em, cutoff_hz)
    out.update({f"level_oct{i + 1}": v for i, v in enumerate(levels[:OCTAVES])})
    if perceptual:
        out["visqol"] = metrics.visqol(target, estimate)
        out["pesq"] = metrics.pesq_wb(target, estimate)
    return out


_WORKER: dict = {}  # the pipeline and both test sets of this process (loaded once per worker)


def _load(model: str, device: str, precision: str, test_dir: str, real_dir: str | None) -> None:
    real = {}
    if real_dir:
        table, clips = realset.load(real_dir)
        real = dict(zip(table.name, clips, strict=True))
    pipe = Pipeline.load(model, device, precision, student=True)  # the student, where there is one: model_fast
    _WORKER.update(pipe=pipe, test=SegmentSet.open(test_dir), real=real)


def _clean(clip: int | str) -> np.ndarray:
    """A test segment (its index) or a real clip (its name)."""
    return _WORKER["real"][clip] if isinstance(clip, str) else _WORKER["test"].audio(clip)


@torch.no_grad()
def _references(job: tuple) -> dict[str, tuple[np.ndarray, dict]]:
    """gt_vocoder and gt_vae of one clean clip (they do not depend on the condition), with their
    perceptual scores, computed once per clip."""
    clip, perceptual = job
    pipe, clean = _WORKER["pipe"], _clean(clip)
    # a real clip of any length: padded with silence to whole latent frames of the VAE, the output cut back
    multiple = pipe.mel.hop * int(pipe.config["vae"]["factor"])
    padded = np.pad(clean, (0, -len(clean) % multiple))
    mel = log_mel(torch.from_numpy(padded)[None].to(pipe.device), pipe.mel)
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
    pipe, clean = _WORKER["pipe"], _clean(clip)
    real = isinstance(clip, str)
    order = cfg.real_order if real else cfg.order
    x = degraded_input(clean, cond, cfg, seed=item_seed(cfg, k, j), order=order)
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
    rows, spec = [], metrics.spectrum(clean)  # the clean clip's spectrum, shared by every system's scores
    for system in (s for s in SYSTEMS if s in outs):
        if system in refs:  # the perceptual scores of a reference do not depend on the condition
            scores = {**score(clean, outs[system], cond.cutoff_hz, False, spec), **refs[system][1]}
        else:
            scores = score(clean, outs[system], cond.cutoff_hz, cfg.perceptual and not real, spec)
        rows.append(
            {
                "set": SETS[real],
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
    real_dir: str | None = None,
) -> tuple[pd.DataFrame, list, list[dict[str, float]]]:
    """Run the protocol over `workers` processes, on the test split and, with `real_dir`, the real set.
    Returns (one row per set × system × condition × clip, examples: (condition, clean, waves) of the
    first clip of a few conditions of the test split, real-time factors)."""
    cfg = block(EvalConfig, params, "eval")
    test = SegmentSet.open(test_dir)
    conditions, clips = grid(cfg), pick_clips(test, cfg.clips)
    names = list(pd.read_csv(Path(real_dir) / "manifest.csv").name) if real_dir else []  # the workers load the audio
    init = (_load, (model, device, cfg.precision, test_dir, real_dir))
    ref_jobs = [(c, cfg.perceptual) for c in clips] + [(name, False) for name in names]
    refs = dict(zip(clips + names, pool_map(_references, ref_jobs, workers, *init), strict=True))
    jobs = [(k, cond, j, c, cfg, refs[c]) for k, cond in enumerate(conditions) for j, c in enumerate(clips)]
    jobs += [
        (k, cond, 0, name, cfg, refs[name])
        for i, name in enumerate(names)
        for k, cond in enumerate(real_conditions(cfg, i))
    ]
    rows, examples, rtfs = [], [], []
    for n, ((_, cond, j, c, _, _), (r, outs, rtf)) in enumerate(
        zip(jobs, pool_map(_condition, jobs, workers, *init), strict=True)
    ):
        rows += r
        if not isinstance(c, str):  # the real set's clips are as short as a hi-hat: no RTF from them
            rtfs.append(rtf)
        if j == 0 and not isinstance(c, str) and is_example(cond, cfg):
            examples.append((cond, test.audio(c), outs))
        if progress:
            progress(n + 1, len(jobs))
    return pd.DataFrame(rows), examples, rtfs


def worse_than(rows: pd.DataFrame, system: str, base: str, metric: str, margin: float = 0.0) -> pd.Series:
    """Per item (ITEM columns) of one set: whether `system`'s metric is above `base`'s by more than margin."""
    pivot = rows.pivot_table(metric, ITEM, "system", sort=False)
    return pivot[system] > pivot[base] + margin


def summarise(rows: pd.DataFrame, rtf: list[dict[str, float]]) -> tuple[dict, pd.DataFrame]:
    """Headline per system of one set (mean over every condition and clip; the counts of items worse
    than the input and, for a merged system, worse on LSD-HF than without the merge, by cutoff; the
    restored band's level error) and the per-condition table."""
    present = [m for m in HEADLINE if m in rows.columns]
    levels = [c for c in rows.columns if c.startswith("level_oct")]
    headline = {}
    for system, group in rows.groupby("system", sort=False):
        values = {m: round(float(np.nanmean(group[m])), 4) for m in present}
        values["lsd_by_cutoff"] = {
            f"{int(c) // 1000}k": round(float(v), 4) for c, v in group.groupby("cutoff_hz")["lsd"].mean().items()
        }
        if system != "unprocessed":
            worse = {"worse_than_input": worse_than(rows, system, "unprocessed", "lsd")}
            if system in GENERATED.values():
                plain = next(k for k, v in GENERATED.items() if v == system)
                worse["hf_worse_than_unmerged"] = worse_than(rows, system, plain, "lsd_hf", HF_MARGIN)
            for name, flags in worse.items():
                by_cutoff = flags.groupby(level="cutoff_hz").sum()
                values[name] = int(flags.sum())
                values[f"{name}_by_cutoff"] = {f"{int(c) // 1000}k": int(v) for c, v in by_cutoff.items()}
        # the restored band's level: every item's octave bands, then their mean and mean absolute
        octaves = group[levels].to_numpy(float)
        if np.isfinite(octaves).any():
            values["level_db"] = round(float(np.nanmean(octaves)), 2)
            values["level_abs_db"] = round(float(np.nanmean(np.abs(octaves))), 2)
            values["level_db_by_octave"] = {
                c.removeprefix("level_"): round(float(np.nanmean(group[c])), 2)
                for c in levels
                if group[c].notna().any()
            }
        headline[system] = values
    for system in rtf[0] if rtf else ():
        headline[system]["rtf"] = round(float(np.mean([r[system] for r in rtf])), 4)
    keys = ["system", "cutoff_hz", "filter", "noise"]
    by_condition = rows.groupby(keys, sort=False)[present + levels].mean().reset_index()
    return headline, by_condition


def evaluate_folder(
    model: str | Path,
    out: Path,
    params: EvalConfig,
    test_dir: str = "data/segments/test",
    real_dir: str = "data/real",
    steps: int | None = None,
    guidance: float | None = None,
    workers: int = 1,
    device: str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, dict]:
    """The protocol of the evaluate stage on any pipeline folder (an imported AudioSR, another run's
    model): the same clips, conditions and seeds, so its items pair with the stage's for studies/compare.py.
    The `model` system samples with `steps` and `guidance`, by default the model's own where its folder
    names them (an imported AudioSR: 50 DDIM steps at 3.5), else the protocol's (`eval.steps`, `eval.guidance`).
    Writes what the stage writes of them into `out` (eval.json, eval_real.json, headline.json, stats/eval.json,
    eval_items.csv, eval_real_items.csv); returns the quality headlines {"rendered": ..., "real": ...}."""
    own = read_config(Path(model)).get("sampling", {})
    steps = steps if steps is not None else int(own.get("steps", params.steps))
    guidance = guidance if guidance is not None else float(own.get("guidance", params.guidance))
    cfg = dataclasses.replace(params, steps=steps, guidance=guidance)
    both, _, rtf = evaluate(str(model), test_dir, cfg, workers, device, progress, real_dir=real_dir)
    sets = both.pop("set")
    rows, real = (both[sets == name].reset_index(drop=True) for name in SETS)
    with atomic_dir(Path(out)) as tmp:  # as the stage writes them (audiosr.results)
        rendered_q, real_q = results.write_eval(tmp, summarise(rows, rtf)[0], summarise(real, [])[0])
        rows.round(4).to_csv(tmp / "eval_items.csv", index=False)
        real.round(4).to_csv(tmp / "eval_real_items.csv", index=False)
    return {"rendered": rendered_q, "real": real_q}
