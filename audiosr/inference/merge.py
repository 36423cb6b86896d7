"""Joining restored windows and keeping the input's own low band.

Neighbouring windows are joined by an equal-power crossfade normalised by their correlation in the
overlap (above the cutoff), which keeps the level for uncorrelated and for identical content alike.
Then the input's own spectrum is kept where it carries the signal and the generated one elsewhere
(low-frequency replacement, `merge_bands`): by default bin by bin (`agreement`), under the input's own
band (`audiosr.inference.cutoff.Band`) unless the input is far above the generated band, and above it
where the two agree and the input stands above its noise floor, or where the input is the louder one (the
merge never takes away what the input carries); a fixed cut-off is the other choice. Either way the
generated band is lowered or lifted where the generated signal is brighter or darker than the input just
under the cutoff (`seam_gain`), so the restored band keeps to the input's level.
STFT frames where the input is digitally silent get no generated band, so silence stays silence, while
quiet input (a decay, a fade, a noise floor) keeps its restored band; over a stream this gives the same
samples as merging the whole signals at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from audiosr.audio import SAMPLE_RATE
from audiosr.inference.cutoff import FLOOR_MARGIN_DB, band_of
from audiosr.inference.stream import BLOCK, extend

LFR_FFT = 2048  # low-frequency replacement STFT: Hann 2048, hop 512 (AudioSR's post-processing)
# Digital silence, about -140 dBFS: under the quantisation noise of any 24-bit file. A window whose peak is below
# it is not run, an STFT frame whose RMS is below it gets no generated band. Anything louder is real signal: a
# hi-hat low-passed at 4 kHz is nearly silent in the input and carries its band in the original.
SILENCE = 1e-7
# The adaptive merge keeps an input bin where its local level lies within AGREE_DB of the generated one's
# and, above the input's band (cutoff.Band), stands FLOOR_MARGIN_DB above its noise floor or above the
# generated one (under the band's cutoff: unless it is more than AGREE_DB[1] above it); further below, the
# input's band was filtered away (a low-pass's stop band and roll-off); further above, it carries what the
# model took out (noise, hum). Where the input's floor is no louder than a 16-bit file's quantisation noise
# (QUIET_FLOOR_DBFS, white), an input bin louder than the generated one is kept too: the merge never takes
# away what a clean input carries, and the model never learnt the top of the band over 21 kHz (its training
# songs are rendered from 44.1 kHz samples), which a recording made at 48 kHz or more carries. A noisier
# floor is noise the model may take out.
# "Local": power averaged over +-SMOOTH_FRAMES STFT frames and +-SMOOTH_BINS bins (Hann 2048, hop 512:
# +-0.5 s, +-140 Hz). Chosen on the evaluation grid (README: the band merge study).
AGREE_DB = (-15.0, 15.0)
QUIET_FLOOR_DBFS = -90.0
# as a noise floor of cutoff.Band: the power of a Hann-LFR_FFT STFT bin of white noise at that level
QUIET_FLOOR = 10 ** (QUIET_FLOOR_DBFS / 10) * 3 / 8 * LFR_FFT
SMOOTH_FRAMES = 48
SMOOTH_BINS = 6
# The seam: where the generated signal stands more than SEAM_TOLERANCE_DB above the input in the band from
# SEAM_OCTAVES[0] to SEAM_OCTAVES[1] octaves under the cutoff (the median over its bins of their power ratio,
# each power averaged over +-SEAM_FRAMES, +-43 ms), the generated band above the cutoff is lowered by the
# excess; where it stands more than SEAM_TOLERANCE_DB below, it is lifted by the shortfall, at most
# SEAM_LIFT_DB. The model is too bright on dark, quiet and sparse material, and too dull on a strike's first
# frames, and what it adds or misses above the cutoff goes with what it adds or misses just under it, where
# the input shows the truth. Averaged over a few frames, the gain follows a strum's decay after its attack.
# The median, and leaving out the last quarter octave, keep a filter's roll-off (which dims the input's top
# bins, most of a hi-hat's energy there) from counting as brightness. Chosen on both test sets (README:
# Results of the default run).
SEAM_OCTAVES = (1.0, 0.25)
SEAM_FRAMES = 4
SEAM_TOLERANCE_DB = 6.5
SEAM_LIFT_DB = 12.0

# box_mean works in pieces of about this many values (float32: 1 MiB), which stay in a core's cache
CACHE_ELEMENTS = 1 << 18


def cutoff_bin(cutoff_hz: float, n_fft: int) -> int:
    """The rfft bin of an n_fft-point transform at 48 kHz nearest the cutoff: the first one taken from above."""
    return int(round(cutoff_hz / (SAMPLE_RATE / n_fft)))


class Crossfade:
    """Joins consecutive restored windows (C, seg) that overlap by `ov` samples into one stream.

    Equal-power fades (cos, sin) normalised by the correlation r of the two windows in the overlap:
    a = cos / sqrt(1 + 2 r cos sin), b = sin / sqrt(...), so E[(a x + b y)²] keeps the level for
    uncorrelated (r = 0: plain equal power) and identical (r = 1: a + b = 1) content. r is measured on
    the band the output keeps (bins from `bins[c]` up; 0: all), clipped to [0, 1].
    """

    def __init__(self, ov: int, bins: list[int]):
        self.ov, self.bins = ov, bins
        theta = 0.5 * np.pi * (np.arange(ov) + 0.5) / ov
        self.fade_out, self.fade_in = np.cos(theta), np.sin(theta)
        self.tail: np.ndarray | None = None

    def correlation(self, x: np.ndarray, y: np.ndarray, lo: int) -> float:
        """x, y: (ov,) -> correlation of their parts above rfft bin `lo` (Parseval on one rfft each)."""
        fx, fy = np.fft.rfft(x.astype(np.float64))[lo:], np.fft.rfft(y.astype(np.float64))[lo:]
        den = math.sqrt(float(np.sum(np.abs(fx) ** 2) * np.sum(np.abs(fy) ** 2)))
        return 0.0 if den == 0 else float(np.clip(np.real(np.sum(fx * np.conj(fy))) / den, 0.0, 1.0))

    def add(self, window: np.ndarray, first: bool, last: bool) -> np.ndarray:
        """The next window (C, seg) -> the samples it completes: from its start (the overlap with the
        previous window, joined) up to the start of its own tail (all of it when `last`)."""
        window = window.astype(np.float64)
        head = window[:, : self.ov].copy()
        if not first:
            for c in range(len(window)):
                r = self.correlation(self.tail[c], head[c], self.bins[c])
                norm = np.sqrt(1.0 + 2.0 * r * self.fade_out * self.fade_in)
                head[c] = (self.tail[c] * self.fade_out + head[c] * self.fade_in) / norm
        body = window[:, self.ov :] if last else window[:, self.ov : -self.ov]
        self.tail = None if last else window[:, -self.ov :]
        return np.concatenate([head, body], axis=1).astype(np.float32)


def box_mean(a: torch.Tensor, radius: int, dim: int) -> torch.Tensor:
    """The mean of `a` over the ±radius neighbours along `dim` that exist (avg_pool's count_include_pad=False).
    Each window's sum is a sum of its own terms only, at most 2 * radius + 1 of them, never a difference of
    running totals, so a quiet stretch after a loud one (or digital silence, exactly 0) keeps its own level:
    sums over 1, 2, 4, ... neighbours, each of two of the previous size, and a window's sum from those of the
    sizes that make up its width (97 = 64 + 32 + 1). Every pass is a plain add of two shifted slices, done
    in pieces along another axis that stay in the core's cache."""
    if radius == 0:
        return a
    dim = dim % a.dim()
    n, w = a.shape[dim], 2 * radius + 1
    j = torch.arange(n)
    count = torch.clamp(j + radius, max=n - 1) - torch.clamp(j - radius, min=0) + 1
    shape = [1] * a.dim()
    shape[dim] = n
    inverse = (1.0 / count.to(torch.float64)).to(a.dtype).reshape(shape)
    other = max(d for d in range(a.dim()) if d != dim)
    step = max(1, CACHE_ELEMENTS * a.shape[other] // max(1, a.numel()))
    out = torch.empty_like(a)
    for lo in range(0, a.shape[other], step):
        piece = a.narrow(other, lo, min(step, a.shape[other] - lo))
        s = torch.nn.functional.pad(piece, (0, 0) * (a.dim() - 1 - dim) + (radius, radius))  # sums over 1
        total, width, offset = None, 1, 0
        while True:
            if w & width:
                part = s.narrow(dim, offset, n)
                total = part.clone() if total is None else total.add_(part)
                offset += width
            if 2 * width > w:
                break
            s = s.narrow(dim, 0, s.shape[dim] - width) + s.narrow(dim, width, s.shape[dim] - width)
            width *= 2
        torch.mul(total, inverse, out=out.narrow(other, lo, piece.shape[other]))
    return out


def power(s: torch.Tensor) -> torch.Tensor:
    """A complex STFT -> its power |s|², as re² + im² (no square root and square again)."""
    return s.real.square() + s.imag.square()


def agreement(p: torch.Tensor, below: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
    """STFT powers (2, C, bins, frames) of the input and the generated signal, (C, bins, 1) True under each
    channel's band cutoff and (C, 1, 1) its noise floor (power of a bin) -> (C, bins, frames) bool, the
    input's bins to keep: under the cutoff unless its local power is more than AGREE_DB[1] above the
    generated one's; above it where it lies within AGREE_DB of it and FLOOR_MARGIN_DB above the floor
    (see AGREE_DB). The levels are compared as power ratios against the thresholds' (no logarithms); the
    tests of agreement run only from the lowest cutoff up, where some channel uses them."""
    lo, hi = (10 ** (db / 10) for db in AGREE_DB)
    over_time = box_mean(p, SMOOTH_FRAMES, -1)
    # across the band, the average over neighbouring bins; above the cutoff each bin must agree on its
    # own too, so that a brick-wall edge is not blurred into the kept band. 1e-20: bins empty in both agree.
    wx, wy = box_mean(over_time, SMOOTH_BINS, -2).add_(1e-20)
    keep = wx <= hi * wy
    first = int(below.sum(1).min())
    if first < p.shape[2]:
        top = slice(first, None)
        ox, oy = (o[:, top] + 1e-20 for o in over_time)
        agree = (wx[:, top] >= lo * wy[:, top]) & (ox >= lo * oy) & (ox <= hi * oy)
        # not the input's noise alone, unless that is a clean file's and the generated one has even less
        agree &= (over_time[0, :, top] >= floor * 10 ** (FLOOR_MARGIN_DB / 10)) | ((floor <= QUIET_FLOOR) & (ox >= oy))
        keep[:, top] &= agree | below[:, top]
    return keep


def seam_gain(px: torch.Tensor, py: torch.Tensor, bins: Sequence[int], gate: torch.Tensor) -> torch.Tensor:
    """STFT powers (C, bins, frames) of the input and the generated signal, each channel's cutoff bin and the
    gate (C, 1, frames) that scales the generated signal -> (C, 1, frames) gains for the generated band
    above the cutoff (see SEAM_OCTAVES); 1 where a channel keeps no input (cutoff bin 0)."""
    gain = torch.ones(px.shape[0], 1, px.shape[2], dtype=px.dtype)
    for c, b in enumerate(bins):
        lo, hi = (int(b * 2**-octaves) for octaves in SEAM_OCTAVES)
        if not 0 < lo < hi:
            continue
        both = torch.stack([px[c, lo:hi], py[c, lo:hi] * gate[c]])  # (2, bins, frames), the gated y
        local = torch.nn.functional.avg_pool1d(both, 2 * SEAM_FRAMES + 1, 1, SEAM_FRAMES, count_include_pad=False)
        excess_db = 10 * torch.log10((local[1] + 1e-20) / (local[0] + 1e-20)).median(dim=0).values
        lower = torch.clamp(excess_db - SEAM_TOLERANCE_DB, min=0.0)
        lift = torch.clamp(-excess_db - SEAM_TOLERANCE_DB, min=0.0, max=SEAM_LIFT_DB)
        gain[c, 0] = 10 ** ((lift - lower) / 20)
    return gain


def merge_bands(
    x: np.ndarray,
    y: np.ndarray,
    bins: Sequence[int],
    silence: float = 0.0,
    n_fft: int = LFR_FFT,
    floors: Sequence[float] | None = None,
) -> np.ndarray:
    """x (input), y (generated): (C, T) at 48 kHz -> (C, T) taking each STFT bin from x or from y.

    Per channel, x's bins below bins[c] are kept (a fixed cut-off; 0: y alone); with `floors` (the
    adaptive merge) those `agreement` keeps instead, with bins[c] the band's cutoff and floors[c] its
    noise floor. y's band above bins[c] is lowered where y is brighter than x just under it (`seam_gain`).
    STFT: Hann n_fft, hop n_fft // 4, centred. Both
    signals are first continued n_fft samples past their ends by linear prediction: the frames at the
    ends then see what the signal would have gone on to do, where a mirror image (reflect padding) puts
    a kink at the very end whose spectrum reaches above the cutoff; with x's share of it dropped, a tone
    ended in a burst of up to twice its peak. With `silence` > 0, frames where x's windowed RMS is below
    it take nothing from y (the overlap-add of the inverse STFT smooths the gate's edges).
    """
    pad = n_fft  # a whole number of hops: the frames stay on the signal's hop grid
    xt, yt = torch.from_numpy(extend(x, pad)), torch.from_numpy(extend(y, pad))
    window = torch.hann_window(n_fft, dtype=xt.dtype)

    sx, sy = (torch.stft(v, n_fft, n_fft // 4, window=window, return_complex=True) for v in (xt, yt))
    p = torch.stack([power(sx), power(sy)])  # (2, C, n_fft // 2 + 1, frames), computed once for every use below
    px, py = p
    below = torch.arange(sx.shape[1])[None, :, None] < torch.tensor(list(bins))[:, None, None]
    if floors is None:
        keep = below
    else:
        keep = agreement(p, below, torch.tensor(list(floors), dtype=xt.dtype)[:, None, None])
    gate = torch.ones(sx.shape[0], 1, sx.shape[2], dtype=xt.dtype)  # (C, 1, frames): 0 where y is not taken
    if silence > 0:
        # Parseval for an rfft: the frame's windowed energy is (|X_0|² + 2·Σ|X_k|² + |X_N/2|²) / N
        weight = torch.full((sx.shape[1],), 2.0, dtype=xt.dtype)
        weight[0] = weight[-1] = 1.0
        energy = torch.einsum("cbf,b->cf", px, weight) / n_fft
        gate = (torch.sqrt(energy / window.pow(2).sum()) >= silence).to(xt.dtype)[:, None, :]
    # y's bins: gated, and above the cutoff scaled by the seam's gain (of the gated y); one real factor each
    factor = torch.where(below, gate, gate * seam_gain(px, py, bins, gate))
    merged = torch.where(keep, sx, sy.mul_(factor))
    out = torch.istft(merged, n_fft, n_fft // 4, window=window, length=x.shape[-1] + 2 * pad)
    return out[:, pad : pad + x.shape[-1]].numpy()


def context(n_fft: int = LFR_FFT) -> int:
    """Samples of context on either side that make a piece's merge equal to the whole signal's there:
    the STFT's window, plus the local averages' frames (the adaptive merge's and the seam's)."""
    return n_fft + max(SMOOTH_FRAMES, SEAM_FRAMES) * (n_fft // 4)


def replace_low_band(
    original: np.ndarray, generated: np.ndarray, cutoff_hz: float | None = None, silence: float = SILENCE
) -> np.ndarray:
    """Both (samples,) at 48 kHz -> (samples,): `merge_bands` of one channel, adaptive at the original's
    own band (`band_of`) for cutoff_hz None, else `original` kept below cutoff_hz (AudioSR's
    post-processing)."""
    if cutoff_hz is not None:
        return merge_bands(original[None], generated[None], [cutoff_bin(cutoff_hz, LFR_FFT)], silence)[0]
    band = band_of(original)
    return merge_bands(
        original[None], generated[None], [cutoff_bin(band.cutoff_hz, LFR_FFT)], silence, floors=[band.floor]
    )[0]


class BandMerger:
    """merge_bands over a stream (the adaptive merge with `floors`): (input, generated) pushed in pieces,
    merged blocks out, the same samples as merging the whole signals at once (each block is computed
    with `context()` samples of context on either side, starting on the STFT's hop grid, so it sees exactly
    the frames the whole signal's STFT has there, and the frames its local averages see). The gate is
    SILENCE. A block holds at least BLOCK samples (the last one: what is left), at most what was pushed
    since the last one plus BLOCK, so memory stays bounded by the pieces pushed."""

    def __init__(self, bins: list[int], n: int, floors: list[float] | None = None):
        self.bins, self.n, self.floors, self.margin = bins, n, floors, context()
        self.x = self.y = np.zeros((len(bins), 0), np.float32)
        self.start = 0  # the buffers' first sample
        self.done = 0  # samples emitted

    def push(self, x: np.ndarray, y: np.ndarray) -> Iterator[np.ndarray]:
        """Once at least BLOCK samples have their context, all of them that do come out as one block (whole
        hops of the STFT): each merge then pays for its context once per pushed piece, not once per BLOCK."""
        self.x, self.y = np.concatenate([self.x, x], 1), np.concatenate([self.y, y], 1)
        ready = self.start + self.x.shape[1] - self.margin - self.done
        if ready >= BLOCK:
            hop = LFR_FFT // 4
            yield self._emit(self.done + ready // hop * hop)

    def finish(self) -> np.ndarray:
        return self._emit(self.n)

    def _emit(self, end: int) -> np.ndarray:
        lo, hi = max(0, self.done - self.margin), min(self.n, end + self.margin)
        part = slice(lo - self.start, hi - self.start)
        out = merge_bands(self.x[:, part], self.y[:, part], self.bins, SILENCE, floors=self.floors)[
            :, self.done - lo : end - lo
        ]
        keep = max(0, end - self.margin) - self.start
        self.x, self.y, self.start, self.done = self.x[:, keep:], self.y[:, keep:], self.start + keep, end
        return out
