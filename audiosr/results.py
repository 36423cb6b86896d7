"""What the stages write for DVC beside their models: quality metrics, run statistics and figures.

- ``metrics/*.json``: quality alone (validation losses, the evaluation's scores). These are DVC's
  metrics, so `dvc metrics diff` and `dvc exp show` compare what a change does to quality.
- ``metrics/stats/*.json``: how a stage ran (steps, seconds, samples/s, invocations, parameter counts,
  real-time factors). Plain outputs, not metrics: a re-run changes them without changing a result.
- ``metrics/headline.json``: the few numbers an experiment is judged by, first in `dvc exp show`.
- ``plots/``: PNG figures, DVC image plots (`dvc plots show` draws them without a network).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from audiosr import plots

STATS = Path("metrics/stats")
PLOTS = Path("plots")
HEADLINE_SYSTEM = "model_lfr"  # what `audiosr upsample` outputs
QUALITY_PREFIX = "val/"  # a training summary's quality metrics; the rest is how the training ran


def split_training_summary(summary: Mapping[str, float]) -> tuple[dict, dict]:
    """A training summary -> (quality: the validation losses, stats: steps, timings, counts)."""
    quality = {k: v for k, v in summary.items() if k.startswith(QUALITY_PREFIX)}
    return quality, {k: v for k, v in summary.items() if k not in quality}


def write_json(path: Path, values: Mapping, digits: int | None = 6) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    out = {k: round(float(v), digits) for k, v in values.items()} if digits is not None else dict(values)
    path.write_text(json.dumps(out, indent=2) + "\n")


def write_training(root: Path, name: str, summary: Mapping[str, float], digits: int | None = 6) -> None:
    """metrics/train_<name>.json (quality), metrics/stats/train_<name>.json (the rest) and the loss curve
    plots/train_<name>_loss.png from metrics/train_<name>_log.csv."""
    quality, stats = split_training_summary(summary)
    write_json(root / "metrics" / f"train_{name}.json", quality, digits)
    write_json(root / STATS / f"train_{name}.json", stats, digits)
    write_loss_figure(root / "metrics" / f"train_{name}_log.csv", root / PLOTS / f"train_{name}_loss.png", name)


def training_summary(root: Path, name: str) -> dict:
    """The whole summary of a training stage again: its quality metrics, then its stats."""
    out = {}
    for path in (root / "metrics" / f"train_{name}.json", root / STATS / f"train_{name}.json"):
        if path.exists():
            out.update(json.loads(path.read_text()))
    return out


def write_loss_figure(log_csv: Path, png: Path, name: str) -> None:
    """The loss curve of a training log (columns step, loss, and the loss terms), one line per term."""
    rows = pd.read_csv(log_csv) if log_csv.exists() and log_csv.stat().st_size else pd.DataFrame()
    png.parent.mkdir(parents=True, exist_ok=True)
    terms = [c for c in rows.columns if c == "loss" or ("/" in c and rows[c].notna().any())]
    series = {c: (rows["step"].to_numpy(), rows[c].to_numpy(dtype=float)) for c in terms}
    fig = plots.line_figure(
        series,
        title=f"train_{name}: training loss",
        xlabel="step",
        ylabel="loss (log scale)",
        logy=True,
        empty="no training steps (distill.steps is 0)" if not len(rows) else "",
    )
    fig.savefig(png, dpi=100)
    plots.close(fig)


def split_eval(headline: dict) -> tuple[dict, dict]:
    """The evaluation's summary -> (quality per system, the real-time factors per system)."""
    quality, rtf = {}, {}
    for system, values in headline.items():
        quality[system] = {k: v for k, v in values.items() if k != "rtf"}
        if "rtf" in values:
            rtf[system] = values["rtf"]
    return quality, rtf


def headline(rendered: dict, real: dict) -> dict:
    """The numbers an experiment is judged by, named as in MLflow: `model_lfr`'s LSD and how many items
    come out worse than the input, on the rendered and the real test set."""
    out = {}
    for prefix, result in (("", rendered), ("real/", real)):
        values = result.get(HEADLINE_SYSTEM, {})
        for key in ("lsd", "worse_than_input"):
            if key in values:
                out[f"{prefix}{HEADLINE_SYSTEM}/{key}"] = values[key]
    return out


def write_eval(metrics: Path, rendered: dict, real: dict) -> tuple[dict, dict]:
    """metrics/eval.json and eval_real.json (quality), metrics/headline.json, metrics/stats/eval.json
    (real-time factors); returns the quality of both sets."""
    rendered_q, rtf = split_eval(rendered)
    real_q, real_rtf = split_eval(real)
    metrics.mkdir(parents=True, exist_ok=True)
    (metrics / "eval.json").write_text(json.dumps(rendered_q, indent=2) + "\n")
    (metrics / "eval_real.json").write_text(json.dumps(real_q, indent=2) + "\n")
    (metrics / "headline.json").write_text(json.dumps(headline(rendered_q, real_q), indent=2) + "\n")
    stats = {"rtf": rtf} | ({"real_rtf": real_rtf} if real_rtf else {})
    (metrics / "stats").mkdir(exist_ok=True)
    (metrics / "stats" / "eval.json").write_text(json.dumps(stats, indent=2) + "\n")
    return rendered_q, real_q


def write_eval_figures(out: Path, rows: pd.DataFrame, real: pd.DataFrame) -> None:
    """plots/eval/lsd_by_cutoff.png (LSD against cutoff per system, both test sets) and
    lsd_hf_by_filter.png (LSD above the cutoff per filter family and system, the rendered set)."""
    out.mkdir(parents=True, exist_ok=True)
    panels = {}
    for name, table in (("rendered test songs", rows), ("real recordings", real)):
        if len(table):
            wide = table.pivot_table("lsd", "cutoff_hz", "system", sort=False)
            panels[name] = {s: (wide.index.to_numpy() / 1000, wide[s].to_numpy()) for s in wide.columns}
    fig = plots.panels_figure(
        panels, title="LSD against cutoff, per system (lower is better)", xlabel="cutoff (kHz)", ylabel="LSD"
    )
    fig.savefig(out / "lsd_by_cutoff.png", dpi=100)
    plots.close(fig)
    wide = rows.pivot_table("lsd_hf", "filter", "system", sort=False)
    fig = plots.bars_figure(
        {s: wide[s].to_numpy() for s in wide.columns},
        list(wide.index),
        title="LSD above the cutoff per filter family (rendered test songs; lower is better)",
        xlabel="filter family",
        ylabel="LSD-HF",
    )
    fig.savefig(out / "lsd_hf_by_filter.png", dpi=100)
    plots.close(fig)


def power_image(wave: np.ndarray, n_fft: int = 1024, hop: int = 480) -> np.ndarray:
    """wave: (samples,) -> (n_fft // 2 + 1, frames) power, Hann window, for a spectrogram figure."""
    wave = np.asarray(wave, dtype=np.float64).reshape(-1)
    if len(wave) < n_fft:
        wave = np.pad(wave, (0, n_fft - len(wave)))
    frames = np.lib.stride_tricks.sliding_window_view(wave, n_fft)[::hop]
    return (np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2).T
