"""Figures: mel spectrograms (training examples), spectrograms in kHz and seconds (evaluation, `audiosr
upsample --spectrogram`), and the line and bar charts that the stages write as DVC image plots, one
colour per system throughout."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def mel_figure(mels: dict[str, np.ndarray], title: str = "", cutoff_bin: float | None = None):
    """mels: name -> (n_mels, frames) log-mel. Returns a matplotlib figure (close it after saving)."""
    fig, axes = plt.subplots(1, len(mels), figsize=(3.2 * len(mels), 2.8), squeeze=False)
    lo = min(float(np.min(m)) for m in mels.values())
    hi = max(float(np.max(m)) for m in mels.values())
    for ax, (name, m) in zip(axes[0], mels.items(), strict=True):
        ax.imshow(
            np.asarray(m, dtype=np.float32), origin="lower", aspect="auto", vmin=max(lo, hi - 14), vmax=hi, cmap="magma"
        )
        if cutoff_bin is not None:
            ax.axhline(cutoff_bin, color="cyan", lw=0.8, ls="--")
        ax.set(title=name, xlabel="frame", ylabel="mel bin")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def close(fig) -> None:
    plt.close(fig)


def spectrogram_figure(
    images: dict[str, np.ndarray], seconds: float, cutoffs_hz: list[float], sample_rate: int, title: str = ""
):
    """images: name -> (bins, columns) power from 0 Hz to sample_rate / 2 over `seconds`, shown side by side
    in dB on one scale, each channel's cutoff marked. Returns a matplotlib figure (close it after saving)."""
    fig, axes = plt.subplots(
        1, len(images), figsize=(5.0 * len(images), 3.4), squeeze=False, sharey=True, layout="constrained"
    )
    db = {name: 10 * np.log10(np.maximum(np.asarray(p, dtype=np.float64), 1e-12)) for name, p in images.items()}
    hi = max(float(np.max(d)) for d in db.values())
    extent = (0.0, seconds, 0.0, sample_rate / 2000)
    for ax, (name, d) in zip(axes[0], db.items(), strict=True):
        im = ax.imshow(d, origin="lower", aspect="auto", extent=extent, vmin=hi - 100, vmax=hi, cmap="magma")
        for cutoff in sorted(set(cutoffs_hz)):
            if cutoff > 0:
                ax.axhline(cutoff / 1000, color="cyan", lw=0.8, ls="--", label=f"cutoff {cutoff / 1000:.1f} kHz")
        ax.set(title=name, xlabel="time (s)")
    axes[0][0].set_ylabel("frequency (kHz)")
    if any(c > 0 for c in cutoffs_hz):
        axes[0][0].legend(loc="upper right", fontsize=7)
    fig.colorbar(im, ax=axes[0].tolist(), label="dB")
    if title:
        fig.suptitle(title)
    return fig


# one colour per evaluated system, the same in every figure
SYSTEM_COLOURS = {
    "unprocessed": "#7f7f7f",
    "gt_vocoder": "#2ca02c",
    "gt_vae": "#17becf",
    "model": "#1f77b4",
    "model_lfr": "#d62728",
    "model_fast": "#9467bd",
    "model_fast_lfr": "#ff7f0e",
}


def colour(name: str, index: int) -> str:
    return SYSTEM_COLOURS.get(name, f"C{index % 10}")


def line_figure(
    series: dict[str, tuple[np.ndarray, np.ndarray]],
    title: str,
    xlabel: str,
    ylabel: str,
    logy: bool = False,
    empty: str = "",
):
    """series: name -> (x, y), one line each. Returns a matplotlib figure (close it after saving)."""
    fig, ax = plt.subplots(figsize=(7.0, 4.0), layout="constrained")
    for i, (name, (x, y)) in enumerate(series.items()):
        keep = np.isfinite(y) & ((y > 0) if logy else True)
        ax.plot(x[keep], y[keep], label=name, color=colour(name, i), lw=1.2)
    if logy and any(np.any(np.isfinite(y) & (y > 0)) for _, y in series.values()):
        ax.set_yscale("log")
    if empty:
        ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    if series and not empty:
        ax.legend(fontsize=8)
    return fig


def panels_figure(panels: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], title: str, xlabel: str, ylabel: str):
    """panels: panel title -> {system: (x, y)}, one line per system with markers, panels side by side."""
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(6.0 * max(1, len(panels)), 4.0), squeeze=False)
    for ax, (name, series) in zip(axes[0], panels.items(), strict=False):
        for i, (system, (x, y)) in enumerate(series.items()):
            ax.plot(x, y, marker="o", label=system, color=colour(system, i), lw=1.4)
        ax.set(title=name, xlabel=xlabel, ylabel=ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def bars_figure(values: dict[str, np.ndarray], groups: list[str], title: str, xlabel: str, ylabel: str):
    """values: system -> one value per group; grouped bars, one colour per system."""
    fig, ax = plt.subplots(figsize=(8.0, 4.0), layout="constrained")
    width = 0.8 / max(1, len(values))
    for i, (system, v) in enumerate(values.items()):
        ax.bar(np.arange(len(groups)) + i * width, v, width, label=system, color=colour(system, i))
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, groups)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return fig
