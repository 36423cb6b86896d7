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
        ax.imshow(np.asarray(m, dtype=np.float32), origin="lower", aspect="auto", vmin=max(lo, hi - 14), vmax=hi,
                  cmap="magma")
        if cutoff_bin is not None:
            ax.axhline(cutoff_bin, color="cyan", lw=0.8, ls="--")
        ax.set(title=name, xlabel="frame", ylabel="mel bin")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def close(fig) -> None:
    plt.close(fig)
