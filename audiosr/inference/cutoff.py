"""One streamed pass over a signal at 48 kHz: its length, per-channel peaks and cutoffs (the bandwidth
the low-frequency replacement keeps)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from audiosr.audio import SAMPLE_RATE
from audiosr.inference.stream import Frames
from audiosr.metrics import CUTOFF_ENERGY

CUTOFF_FFT = 2048  # cutoff detection as metrics.detect_cutoff: Hann 2048, hop 480, CUTOFF_ENERGY of the magnitude


@dataclass
class Analysis:
    samples: int  # at 48 kHz
    peak: list[float]  # per channel
    cutoff_hz: list[float]  # per channel: the frequency under which CUTOFF_ENERGY of the magnitude spectrum lies


def analyse(blocks48: Iterable[np.ndarray], channels: int) -> Analysis:
    """One pass over a stream of (C, k) blocks at 48 kHz: its length, peaks and cutoffs.

    The cutoff is metrics.detect_cutoff's (AudioSR's: the bin at which the cumulative STFT magnitude,
    Hann 2048, hop 480, summed over frames, reaches CUTOFF_ENERGY of its total) on the frames inside the
    signal, so the same up to the edge frames; digital silence gives 0.
    """
    frames = Frames(CUTOFF_FFT, SAMPLE_RATE // 100)
    spectrum = np.zeros((channels, CUTOFF_FFT // 2 + 1))
    peak = np.zeros(channels)
    n = 0
    for block in blocks48:
        n += block.shape[1]
        if block.shape[1]:
            peak = np.maximum(peak, np.abs(block).max(axis=1))
        spectrum += frames.push(block).sum(axis=1)
    spectrum += frames.finish().sum(axis=1)
    cutoffs = []
    for s in spectrum:
        cum = np.cumsum(s)
        k = int(np.searchsorted(cum, CUTOFF_ENERGY * cum[-1], side="left")) if cum[-1] > 0 else 0
        cutoffs.append(float(min(k, s.size - 1) * SAMPLE_RATE / CUTOFF_FFT))
    return Analysis(n, [float(p) for p in peak], cutoffs)
