"""Figures: mel spectrograms side by side (training examples, evaluation), with an optional cutoff line."""

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
