"""The degradation that makes training pairs and test inputs: a zero-phase low-pass, then noise.

Filter families (as AudioSR's pre-processing):
  chebyshev    type I, 0.1 dB pass-band ripple
  elliptic     0.1 dB ripple, 60 dB stop band
  butterworth  maximally flat
  boxcar       windowed-sinc FIR with a rectangular window; its length grows with the order:
               ``taps = 2 * round(64 * order * sr / 48000) + 1`` (order 2 -> 257 taps, order 10 ->
               1281 taps at 48 kHz, i.e. 5.3 to 26.7 ms)
IIR filters are applied forward and backward (``sosfiltfilt``); the FIR is convolved with its own
reverse, which is the same thing for a symmetric kernel: zero phase and a squared magnitude
response in every family.

Noise is added after filtering, on audio peak-normalised to 0.5: a single tone (amplitude, i.e.
the sine's peak, in U(0.001, 0.2), frequency U(100 Hz, 15 kHz), random phase) or Gaussian white
noise (amplitude = standard deviation, U(0.001, 0.1)). ``noise.type``: ``none``, ``tone``,
``gaussian`` or ``mixed`` (each segment draws none, tone or gaussian with equal probability).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import signal

from audiosr.names import FILTERS

if TYPE_CHECKING:
    from audiosr.config import FilterConfig, NoiseConfig


@dataclass(frozen=True)
class Degradation:
    """One drawn degradation; `noise` is the kind applied (never 'mixed')."""

    filter: str
    order: int
    cutoff_hz: float
    noise: str = "none"
    noise_amplitude: float = 0.0
    tone_hz: float = 0.0
    tone_phase: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def boxcar_taps(order: int, sr: int) -> int:
    """FIR length of the boxcar family for an order (odd, so the kernel has a centre sample)."""
    return 2 * round(64 * order * sr / 48_000) + 1


def _check(filter: str, order: int, cutoff_hz: float, sr: int) -> None:
    if filter not in FILTERS:
        raise ValueError(f"filter: unknown filter family {filter!r}; choose one of {', '.join(FILTERS)}")
    if not 1 <= int(order) <= 32:
        raise ValueError(f"order: {order} is out of range; use an integer from 1 to 32")
    if not 0 < cutoff_hz < sr / 2:
        raise ValueError(f"cutoff: {cutoff_hz} Hz must lie between 0 and the Nyquist frequency {sr / 2:g} Hz")


def lowpass(x: np.ndarray, sr: int, filter: str, order: int, cutoff_hz: float) -> np.ndarray:
    """Zero-phase low-pass along the last axis. x: (..., T) -> (..., T) float32."""
    _check(filter, order, cutoff_hz, sr)
    x = np.asarray(x, dtype=np.float64)
    wn = cutoff_hz / (sr / 2)
    if filter == "boxcar":
        h = signal.firwin(boxcar_taps(order, sr), wn, window="boxcar")
        kernel = np.convolve(h, h[::-1])  # forward + backward pass in one symmetric kernel
        y = signal.oaconvolve(x, kernel.reshape((1,) * (x.ndim - 1) + (-1,)), mode="same", axes=-1)
    else:
        if filter == "chebyshev":
            sos = signal.cheby1(order, 0.1, wn, btype="low", output="sos")
        elif filter == "elliptic":
            sos = signal.ellip(order, 0.1, 60, wn, btype="low", output="sos")
        else:
            sos = signal.butter(order, wn, btype="low", output="sos")
        y = signal.sosfiltfilt(sos, x, axis=-1)
    return y.astype(np.float32)


def noise(n: int, sr: int, d: Degradation, rng: np.random.Generator) -> np.ndarray:
    """The additive noise of a degradation: (n,) float32 (zeros for 'none')."""
    if d.noise == "none":
        return np.zeros(n, dtype=np.float32)
    if d.noise == "tone":
        t = np.arange(n) / sr
        return (d.noise_amplitude * np.sin(2 * np.pi * d.tone_hz * t + d.tone_phase)).astype(np.float32)
    if d.noise == "gaussian":
        return (d.noise_amplitude * rng.standard_normal(n)).astype(np.float32)
    raise ValueError(f"noise: unknown noise kind {d.noise!r}; choose one of none, tone, gaussian")


def apply(x: np.ndarray, sr: int, d: Degradation, rng: np.random.Generator) -> np.ndarray:
    """Low-pass then noise. x: (T,) or (C, T) -> same shape, float32 (not clipped)."""
    y = lowpass(x, sr, d.filter, d.order, d.cutoff_hz)
    return y + noise(y.shape[-1], sr, d, rng)


def draw(rng: np.random.Generator, f: FilterConfig, n: NoiseConfig) -> Degradation:
    """Draw one degradation from the `filter` and `noise` blocks of params.yaml (typed and checked by
    audiosr.config)."""
    family = f.types[rng.integers(len(f.types))]
    order = int(rng.integers(f.order[0], f.order[1] + 1))
    cutoff = float(rng.uniform(*f.cutoff_hz))

    kind = n.type
    if kind == "mixed":
        kind = ("none", "tone", "gaussian")[rng.integers(3)]
    if kind == "tone":
        amp = float(rng.uniform(*n.tone_amplitude))
        return Degradation(
            family, order, cutoff, "tone", amp, float(rng.uniform(*n.tone_hz)), float(rng.uniform(0, 2 * np.pi))
        )
    if kind == "gaussian":
        return Degradation(family, order, cutoff, "gaussian", float(rng.uniform(*n.gaussian_amplitude)))
    return Degradation(family, order, cutoff)


def segment_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of one segment's draw: a function of (seed, split, index) alone, so the
    result does not depend on how segments are spread over workers."""
    return np.random.default_rng([seed, ["train", "valid", "test"].index(split), index])
