"""Random crops of segments and pairs for training, drawn by index and offset (no loader state), so a
batch is a pure function of (seed, step)."""

from __future__ import annotations

import numpy as np
import torch

from audiosr.audio import from_int16
from audiosr.data.store import SegmentSet


def draw_crops(
    rng: np.random.Generator, n: int, frames: int, crop: int, batch: int, align: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Segment indices (batch,) and frame offsets (batch,), offsets multiples of `align`."""
    if crop > frames:
        raise ValueError(f"crop of {crop} frames is longer than the segments ({frames} frames)")
    if n == 0:
        raise ValueError("no segments to train on; check the data stages' outputs")
    idx = rng.integers(n, size=batch)
    off = rng.integers(0, (frames - crop) // align + 1, size=batch) * align
    return idx, off


def mel_crops(seg: SegmentSet, idx: np.ndarray, off: np.ndarray, crop: int) -> torch.Tensor:
    """-> (B, n_mels, crop) float32."""
    return torch.from_numpy(np.stack([seg.mel[i, :, o : o + crop] for i, o in zip(idx, off, strict=True)])).float()


def wave_crops(seg: SegmentSet, idx: np.ndarray, off: np.ndarray, crop: int, hop: int) -> torch.Tensor:
    """-> (B, crop * hop) float32, the audio under the same mel frames."""
    return torch.from_numpy(
        np.stack([from_int16(seg.wave[i, o * hop : (o + crop) * hop]) for i, o in zip(idx, off, strict=True)])
    )
