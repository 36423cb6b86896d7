"""One streamed pass over a signal at 48 kHz: its length, per-channel peaks, cutoffs (AudioSR's
bandwidth measure) and bands (where the input's own band ends and its noise floor: what the band merge
keeps of it)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from audiosr.audio import SAMPLE_RATE
from audiosr.inference.stream import Frames
from audiosr.metrics import CUTOFF_ENERGY

CUTOFF_FFT = 2048  # cutoff detection as metrics.detect_cutoff: Hann 2048, hop 480, CUTOFF_ENERGY of the magnitude
# The input's own band, from its long-term spectrum (the magnitude averaged over frames, in dB, smoothed
# over +-SMOOTH_BINS). The energy cutoff sits a little under a filter's edge (the last 0.5 % of the
# magnitude lies between them): the band goes on above it while the spectrum stays within EDGE_DROP_DB of
# its median over the EDGE_REF_HZ under it. Noise over the whole band moves the energy cutoff to the top:
# the band ends at the last bin that stands FLOOR_MARGIN_DB above the noise floor, the median level over
# FLOOR_HZ (white noise is level up to there; a clean 16-bit file's floor is its quantisation noise).
# A dark recording (a kick, a strum's decay) has its energy cutoff far under the filter: where the
# spectrum above that edge falls gently (less than STEEP_DB over the next STEEP_OCTAVES, each level the
# median over +-LEVEL_OCTAVES), it is the recording's own roll-off, not a filter's (an order-8 low-pass
# falls 48 dB an octave), and the band goes on up to the next steep fall.
# Chosen on the evaluation grid and the real set (README: the band merge study, Results).
HZ_PER_BIN = SAMPLE_RATE / CUTOFF_FFT
EDGE_DROP_DB = 10.0
EDGE_REF_HZ = 470.0
FLOOR_HZ = (22_000.0, 23_700.0)
FLOOR_MARGIN_DB = 3.0
SMOOTH_BINS = 2
STEEP_DB = 10.0
STEEP_OCTAVES = 0.25
LEVEL_OCTAVES = 1 / 16


@dataclass
class Band:
    cutoff_hz: float  # where the input's own band ends
    floor: float  # its noise floor: the power of a Hann-CUTOFF_FFT STFT bin of white noise at that level


@dataclass
class Analysis:
    samples: int  # at 48 kHz
    peak: list[float]  # per channel
    cutoff_hz: list[float]  # per channel: the frequency under which CUTOFF_ENERGY of the magnitude spectrum lies
    band: list[Band]  # per channel


def analyse(blocks48: Iterable[np.ndarray], channels: int) -> Analysis:
    """One pass over a stream of (C, k) blocks at 48 kHz: its length, peaks and cutoffs.

    The cutoff is metrics.detect_cutoff's (AudioSR's: the bin at which the cumulative STFT magnitude,
    Hann 2048, hop 480, summed over frames, reaches CUTOFF_ENERGY of its total) on the frames inside the
    signal, so the same up to the edge frames; digital silence gives 0. The band: see `input_band`.
    """
    frames = Frames(CUTOFF_FFT, SAMPLE_RATE // 100)
    spectrum = np.zeros((channels, CUTOFF_FFT // 2 + 1))
    peak = np.zeros(channels)
    n = 0
    for block in blocks48:
        n += block.shape[1]
        if block.shape[1]:
            peak = np.maximum(peak, torch.from_numpy(np.asarray(block, np.float32)).abs().amax(1).numpy())
        spectrum += frames.push(block).sum(axis=1)
    spectrum += frames.finish().sum(axis=1)
    cutoffs, bands = [], []
    for s in spectrum:
        cum = np.cumsum(s)
        k = min(int(np.searchsorted(cum, CUTOFF_ENERGY * cum[-1], side="left")), s.size - 1) if cum[-1] > 0 else 0
        cutoffs.append(k * HZ_PER_BIN)
        bands.append(input_band(s / max(1, frames.frames), k))
    return Analysis(n, [float(p) for p in peak], cutoffs, bands)


def _edge(level: np.ndarray, k: int) -> int:
    """The first bin above bin k whose level lies EDGE_DROP_DB under the median over EDGE_REF_HZ up to k."""
    ref = np.median(level[max(0, k - round(EDGE_REF_HZ / HZ_PER_BIN)) : k + 1])
    below = np.nonzero(level[k + 1 :] < ref - EDGE_DROP_DB)[0]
    return k + below[0] if below.size else level.size - 1


def _next_steep_fall(level: np.ndarray, start: int, stop: int) -> int:
    """The first bin from `start` (up to `stop`) after which the level falls more than STEEP_DB over the
    next STEEP_OCTAVES (each level the median over +-LEVEL_OCTAVES)."""
    n = level.size

    def smooth(b: int) -> float:  # only for the bins the walk visits: a bright mix stops at its first
        return np.median(level[int(b * 2**-LEVEL_OCTAVES) : int(np.ceil(b * 2**LEVEL_OCTAVES)) + 1])

    b = start
    while b < stop and smooth(b) - smooth(min(n - 1, round(b * 2**STEEP_OCTAVES))) <= STEEP_DB:
        b += 1
    return b


def input_band(spectrum: np.ndarray, k: int) -> Band:
    """The mean magnitude spectrum of a signal (CUTOFF_FFT // 2 + 1,) and the bin of its energy cutoff ->
    its Band: the energy cutoff moved up to the filter's edge (EDGE_DROP_DB), past a gentle roll-off to the
    next steep fall (STEEP_DB), or down to where the spectrum meets the noise floor (FLOOR_MARGIN_DB),
    whichever is lower. Silence: Band(0, 0)."""
    if not spectrum.any():
        return Band(0.0, 0.0)
    kernel = np.ones(2 * SMOOTH_BINS + 1) / (2 * SMOOTH_BINS + 1)
    level = 20 * np.log10(np.convolve(spectrum, kernel, mode="same") + 1e-30)
    floor_db = np.median(level[round(FLOOR_HZ[0] / HZ_PER_BIN) : round(FLOOR_HZ[1] / HZ_PER_BIN)])
    above = np.nonzero(level > floor_db + FLOOR_MARGIN_DB)[0]
    top = above[-1] if above.size else 0
    edge = _edge(level, k)
    steep = _next_steep_fall(level, edge, top)
    if steep > edge:
        edge = _edge(level, steep)
    # a Rayleigh-distributed magnitude (white noise) has mean power 4 / pi times its squared mean
    return Band(float(max(0, min(edge, top))) * HZ_PER_BIN, float(4 / np.pi * 10 ** (floor_db / 10)))


def band_of(wave: np.ndarray) -> Band:
    """The Band of one channel (samples,) at 48 kHz."""
    return analyse([np.asarray(wave, np.float32)[None]], 1).band[0]
