"""What the studies share: the evaluation's items (clean clip, degraded input, condition) for a grid,
the model's outputs on them, computed on all cores, and the plot of LSD against training length."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from audiosr.audio import SAMPLE_RATE
from audiosr.config import EvalConfig, Params
from audiosr.data.store import SegmentSet
from audiosr.evaluate import Condition, degraded_input, grid, item_seed, pick_clips
from audiosr.inference.restore import Pipeline
from audiosr.parallel import pool_map
from audiosr.plots import close, plt  # pyplot on the headless backend

_PIPE: dict = {}


def eval_config(**overrides) -> EvalConfig:
    """params.yaml's `eval` block with `overrides` (e.g. noises=["none"])."""
    return replace(Params.load().eval, **overrides)


def items(cfg: EvalConfig) -> tuple[list[Condition], np.ndarray, np.ndarray]:
    """(condition per item, clean (N, T), degraded (N, T)): every condition of the grid on each clip,
    seeded as the evaluation seeds them, so a study's items are the evaluation's."""
    test = SegmentSet.open("data/segments/test")
    conditions, clips = grid(cfg), pick_clips(test, cfg.clips)
    jobs = [(k, cond, j, c) for k, cond in enumerate(conditions) for j, c in enumerate(clips)]
    clean = np.stack([test.audio(c) for *_, c in jobs])
    x = np.stack([degraded_input(test.audio(c), cond, cfg, seed=item_seed(cfg, k, j)) for k, cond, j, c in jobs])
    return [cond for _, cond, _, _ in jobs], clean, x


def _load(model: str) -> None:
    _PIPE["pipe"] = Pipeline.load(model, "cpu", "auto", student=True)


def _generate(job: tuple) -> np.ndarray:
    x, steps, guidance, seed = job
    pipe = _PIPE["pipe"] if steps is None else _PIPE["pipe"].teacher_only()  # a number of steps: the teacher's
    return pipe.upsample(x, SAMPLE_RATE, steps=steps, guidance=guidance, seed=seed, cutoff_hz=0).wave[0]


def generate(model: str, x: np.ndarray, steps: int | None, guidance: float, seed: int, workers: int) -> np.ndarray:
    """The model's output (no band merge) for each degraded input (N, T) -> (N, T): the teacher with
    `steps` steps, or the one-step student for steps None."""
    return np.stack(list(pool_map(_generate, [(xi, steps, guidance, seed) for xi in x], workers, _load, (model,))))


def length_curve(png: str, steps: list[int], ticks: list[str], series: dict[str, list[float]], xlabel: str) -> None:
    """LSD against training steps (log axis, one tick label per length), a line per series, as a PNG."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, values in series.items():
        ax.plot(steps, values, marker="o", label=label)
    ax.set(xscale="log", xlabel=xlabel, ylabel="LSD, held-out test (lower is better)")
    ax.set_xticks(steps, ticks)
    ax.minorticks_off()  # else the log axis labels minor ticks (2x10^3) beside the lengths
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    close(fig)
    print(f"curve: {png}")
