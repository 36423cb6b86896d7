"""The band merge (low-frequency replacement) on signals whose answer is known: the truth, a degraded
copy of it (low-passed, with or without noise) and a stand-in for the model's output (the truth's low
band a little off in level, its high band another draw of the same spectrum, as a generative model
gives). The merge must never score worse than either side on the side it should take from: LSD-LF no
worse than the input's, LSD-HF no worse than the generated signal's."""

import numpy as np
import pytest
import torch
from scipy import signal

from audiosr import metrics
from audiosr.audio import SAMPLE_RATE
from audiosr.degrade import lowpass
from audiosr.inference.cutoff import analyse, band_of
from audiosr.inference.merge import (
    LFR_FFT,
    SEAM_TOLERANCE_DB,
    SILENCE,
    BandMerger,
    cutoff_bin,
    merge_bands,
    replace_low_band,
)
from audiosr.inference.stream import BLOCK

N = 3 * SAMPLE_RATE


def coloured(seed: int, n: int = N) -> np.ndarray:
    """Noise falling 6 dB per octave above 500 Hz, with a slow level swell and a few partials: the
    spectrum of a mix, full band."""
    rng = np.random.default_rng(seed)
    sos = signal.butter(1, 500, btype="low", fs=SAMPLE_RATE, output="sos")
    x = signal.sosfilt(sos, rng.standard_normal(n)) * 3
    t = np.arange(n) / SAMPLE_RATE
    x += sum(0.02 * np.sin(2 * np.pi * f * t) for f in (220.0, 440.0, 660.0, 1320.0))
    return (0.1 * x * (0.7 + 0.3 * np.sin(2 * np.pi * 0.5 * t))).astype(np.float32)


def generated(truth: np.ndarray, cutoff: float) -> np.ndarray:
    """The model's stand-in: below `cutoff` the truth blended with another draw of the same spectrum
    (about the right level, detail partly wrong), above it that other draw alone (right level, wrong
    detail)."""
    other = coloured(seed=99)
    low = lowpass(0.7 * truth + 0.5 * other, SAMPLE_RATE, "butterworth", 8, cutoff)
    return (low + other - lowpass(other, SAMPLE_RATE, "butterworth", 8, cutoff)).astype(np.float32)


@pytest.mark.parametrize(
    ("filter", "cutoff", "noise"),
    [
        ("butterworth", 4000.0, 0.0),
        ("chebyshev", 8000.0, 0.0),
        ("elliptic", 12_000.0, 0.0),
        ("boxcar", 2000.0, 0.0),
        ("boxcar", 16_000.0, 0.0),
        # white noise over the whole band, as the evaluation's
        ("butterworth", 8000.0, 0.01),
        ("boxcar", 4000.0, 0.01),
        ("elliptic", 12_000.0, 0.01),
    ],
)
def test_merge_never_worse_than_either_side(filter, cutoff, noise) -> None:
    truth = coloured(seed=1)
    x = lowpass(truth, SAMPLE_RATE, filter, 6, cutoff)
    x = x + noise * np.random.default_rng(2).standard_normal(N).astype(np.float32)
    y = generated(truth, cutoff)
    merged = replace_low_band(x, y)
    got, inp, gen = (metrics.lsd_split(truth, v, cutoff) for v in (merged, x, y))
    assert got["lsd_lf"] <= inp["lsd_lf"] + 0.02, (got, inp)
    assert got["lsd_hf"] <= gen["lsd_hf"] + 0.03, (got, gen)
    # and better than AudioSR's fixed cut at the energy cutoff, which keeps all of the noise
    fixed = metrics.lsd_split(truth, replace_low_band(x, y, metrics.detect_cutoff(x)), cutoff)
    assert got["lsd"] <= fixed["lsd"] + 0.02, (got, fixed)
    # and it is a real choice: better than either signal alone over the whole band
    assert got["lsd"] < min(inp["lsd"], gen["lsd"]) - 0.01 or (filter == "boxcar" or noise > 0)


@pytest.mark.parametrize("filter", ["boxcar", "elliptic", "butterworth"])
def test_band_ends_at_the_filter_edge_also_under_noise(filter) -> None:
    """The energy cutoff sits under a filter's edge, and at the top of the band under white noise; the
    band ends at the edge in both cases, and the noise floor is the noise's power in a bin."""
    truth = coloured(seed=1)
    x = lowpass(truth, SAMPLE_RATE, filter, 6, 8000.0)
    clean = band_of(x)
    assert 7950 <= clean.cutoff_hz <= 9500, clean
    sigma = 0.01
    noisy = band_of(x + sigma * np.random.default_rng(2).standard_normal(N).astype(np.float32))
    assert metrics.detect_cutoff(x + sigma * np.random.default_rng(2).standard_normal(N)) > 20_000
    assert 7000 <= noisy.cutoff_hz <= 9000, noisy
    # white noise of variance s² has E|X_k|² = s² * sum(window²) in a Hann-2048 bin
    expected = sigma**2 * np.sum(np.hanning(2049)[:-1] ** 2)
    assert 0.7 < noisy.floor / expected < 1.4, (noisy.floor, expected)
    assert band_of(np.zeros(N, np.float32)).cutoff_hz == 0.0


def dark(seed: int = 4) -> np.ndarray:
    """A dark recording: noise falling 24 dB per octave above 300 Hz (a kick, a strum's decay), its energy
    cutoff near 1 kHz, yet audible to 12 kHz and beyond."""
    rng = np.random.default_rng(seed)
    sos = signal.butter(4, 300, btype="low", fs=SAMPLE_RATE, output="sos")
    return (0.3 * signal.sosfilt(sos, rng.standard_normal(N))).astype(np.float32)


@pytest.mark.parametrize("filter", ["butterworth", "chebyshev", "elliptic"])
def test_a_dark_recordings_band_ends_at_the_filter_not_at_its_energy_cutoff(filter) -> None:
    x = lowpass(dark(), SAMPLE_RATE, filter, 8, 12_000.0)
    assert metrics.detect_cutoff(x) < 2000
    assert 11_000 <= band_of(x).cutoff_hz <= 13_000, band_of(x)


def test_a_dark_recording_keeps_its_own_band_under_a_too_bright_model() -> None:
    """Low-passed at 12 kHz, with a generated signal 30 dB too bright from 1 kHz up (the model taking it
    for a mix low-passed there): the merge keeps the input's own band up to the filter."""
    truth = dark()
    x = lowpass(truth, SAMPLE_RATE, "butterworth", 8, 12_000.0)
    hp = signal.butter(4, 1000, btype="high", fs=SAMPLE_RATE, output="sos")
    bright = truth + 10 ** (30 / 20) * signal.sosfilt(hp, dark(seed=5)).astype(np.float32)
    levels = metrics.band_level_error(truth, replace_low_band(x, bright), 2000.0)  # 2-4, 4-8, 8-16 kHz
    assert max(abs(v) for v in levels[:2]) < 1.0, levels


def test_fixed_cut_keeps_the_input_below_it() -> None:
    truth = coloured(seed=1)
    y = generated(truth, 4000.0)
    merged = replace_low_band(truth, y, 4000.0)
    assert metrics.lsd(truth, merged, hi_hz=3900.0) < 0.01
    assert metrics.lsd(y, merged, lo_hz=4100.0) < 0.01


def test_silence_stays_silent() -> None:
    truth = coloured(seed=1)
    x = lowpass(truth, SAMPLE_RATE, "butterworth", 6, 4000.0)
    x[SAMPLE_RATE : 2 * SAMPLE_RATE] = 0
    merged = replace_low_band(x, generated(truth, 4000.0))
    # digital silence in, digital silence out, up to the STFT frames that reach the sound
    assert not merged[SAMPLE_RATE + 2048 : 2 * SAMPLE_RATE - 2048].any()
    assert np.abs(merged[: SAMPLE_RATE - 2048]).max() > 0.01


@pytest.mark.parametrize("cutoff", [None, 4000.0])
@pytest.mark.parametrize("off_db", [15.0, -15.0])
def test_a_band_brighter_or_darker_than_the_input_is_brought_to_its_level(cutoff, off_db) -> None:
    """A generated signal 15 dB too loud (a model too bright on dark material) or too quiet (too dull on a
    strike) under the cutoff and above it: the restored band comes out within the seam's tolerance of the
    truth's level."""
    truth = coloured(seed=1)
    x = lowpass(truth, SAMPLE_RATE, "butterworth", 8, 4000.0)
    off = 10 ** (off_db / 20) * generated(truth, 4000.0)
    before = metrics.band_level_error(truth, off, 5000.0)
    after = metrics.band_level_error(truth, replace_low_band(x, off, cutoff), 5000.0)
    assert np.allclose(before, off_db, atol=1.5), before
    # moved by the excess over the tolerance (the stand-in is itself 1.3 dB under the truth below the cutoff)
    assert np.all(np.abs(after) < SEAM_TOLERANCE_DB + 2), (before, after)


def test_a_clean_inputs_floor_is_kept_where_the_model_has_less() -> None:
    """A clean recording (its floor at -100 dBFS) whose top above 20 kHz is that floor alone, and a model
    whose output there lies 10 dB under it (the model never learnt the band over 21 kHz): the merge keeps
    the input's floor instead of taking it away. A noisy input's floor is not kept (the noise tests above)."""

    def under_20k(v: np.ndarray) -> np.ndarray:  # faded in and out, so that no STFT frame sees a step
        spectrum = np.fft.rfft(v * signal.windows.tukey(len(v), 0.2))
        spectrum[np.fft.rfftfreq(len(v), 1 / SAMPLE_RATE) > 20_000] = 0
        return np.fft.irfft(spectrum, len(v)).astype(np.float32)

    rng = np.random.default_rng(5)
    floor = 1e-5 * rng.standard_normal(N).astype(np.float32)
    music = under_20k(coloured(seed=1))
    truth = music + floor
    x = lowpass(music, SAMPLE_RATE, "butterworth", 8, 4000.0) + floor
    y = under_20k(generated(music, 4000.0)) + 10 ** (-10 / 20) * 1e-5 * rng.standard_normal(N).astype(np.float32)
    assert metrics.band_level_error(truth, y, 21_000.0)[0] < -9
    assert abs(metrics.band_level_error(truth, replace_low_band(x, y), 21_000.0)[0]) < 1.0


@pytest.mark.parametrize("kind", ["hat", "click"])
def test_a_hit_alone_gets_its_band_back(kind) -> None:
    """A hi-hat (noise above 6 kHz, decaying) or a click alone, low-passed at 4 kHz, is nearly silent in
    the input (under -80 dBFS in most frames), yet the original carries its high band there: with the
    truth as the generated signal, the merge gives it back."""
    rng = np.random.default_rng(3)
    truth = np.zeros(N, np.float32)
    hp = signal.butter(4, 6000, btype="high", fs=SAMPLE_RATE, output="sos")
    for start in (SAMPLE_RATE // 2, 2 * SAMPLE_RATE):
        if kind == "hat":
            n = SAMPLE_RATE // 2
            hit = rng.standard_normal(n) * np.exp(-np.arange(n) / (0.05 * SAMPLE_RATE))
        else:
            n = 256
            hit = np.zeros(n)
            hit[0] = 1.0
        truth[start : start + n] = 0.1 * signal.sosfilt(hp, hit)
    x = lowpass(truth, SAMPLE_RATE, "butterworth", 8, 4000.0)
    rms = lambda v: np.sqrt(np.mean(v.reshape(-1, 2000) ** 2, axis=1))  # noqa: E731
    sounding = rms(truth) > 1e-3
    assert np.mean(rms(x)[sounding] < 1e-4) > 0.25  # under -80 dBFS in many frames where the hit sounds
    for merged in (replace_low_band(x, truth), replace_low_band(x, truth, 4000.0)):
        levels = metrics.band_level_error(truth, merged, 5000.0)  # above the roll-off
        # within 1 dB: a hat's input just under the cutoff is dimmed by the filter, which the seam reads as
        # the generated band being a little bright
        assert np.nanmax(np.abs(levels)) < 1.0, levels


def test_streamed_merge_equals_whole_merge() -> None:
    """Adaptive and fixed cuts (one channel with no replacement), pushed in uneven pieces (one of a single
    sample) through BandMerger: the same samples as merging the whole signals at once."""
    rng = np.random.default_rng(0)
    n = 2 * BLOCK + 12_345
    x = np.stack([coloured(1, n), coloured(2, n), coloured(3, n)])
    x = lowpass(x, SAMPLE_RATE, "chebyshev", 6, 6000.0)
    y = rng.standard_normal((3, n)).astype(np.float32) * 0.01 + np.stack([coloured(4, n)] * 3)
    x[:, 100_000:150_000] = 0  # a silent stretch: the gate
    bins = [256, 170, 0]
    for floors in ([1e-3, 0.0, 0.0], None):  # adaptive (with a noise floor in one channel), fixed
        whole = merge_bands(x, y, bins, SILENCE, floors=floors)
        merger = BandMerger(bins, n, floors)
        parts, edges = [], [0, 5000, 5001, 140_000, 262_144, 270_000, n]
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            parts += list(merger.push(x[:, a:b], y[:, a:b]))
        streamed = np.concatenate([*parts, merger.finish()], axis=1)
        np.testing.assert_allclose(streamed, whole, atol=1e-5)


# --------------------------------------------------------------------------------------------------
# The fast merge against the slow, obvious one


def _box(p: torch.Tensor, bins: int, frames: int) -> torch.Tensor:
    """The mean of (bins, frames) over the ±bins × ±frames neighbours that exist: one 2-D average."""
    kernel, padding = (2 * bins + 1, 2 * frames + 1), (bins, frames)
    return torch.nn.functional.avg_pool2d(p[None, None], kernel, 1, padding, count_include_pad=False)[0, 0]


def _db(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return 10 * torch.log10((a + 1e-20) / (b + 1e-20))


def slow_merge(x: np.ndarray, y: np.ndarray, bins: list[int], floors: list[float] | None) -> np.ndarray:
    """merge_bands written out the obvious way, in float64, channel by channel: |X|² from the magnitude, the
    local means as one 2-D average over the ±SMOOTH_FRAMES × ±SMOOTH_BINS box (and one over frames alone),
    the levels compared in dB, the seam's excess as the median in dB, the gate by Parseval; all of the whole
    signal at once."""
    from audiosr.inference.cutoff import FLOOR_MARGIN_DB
    from audiosr.inference.merge import (
        AGREE_DB,
        QUIET_FLOOR,
        SEAM_FRAMES,
        SEAM_LIFT_DB,
        SEAM_OCTAVES,
        SMOOTH_BINS,
        SMOOTH_FRAMES,
    )
    from audiosr.inference.stream import extend

    n_fft = pad = LFR_FFT
    window = torch.hann_window(n_fft, dtype=torch.float64)
    out = []
    for c in range(len(x)):
        sx, sy = (
            torch.stft(torch.from_numpy(extend(v[c : c + 1].astype(np.float64), pad)[0]), n_fft, n_fft // 4,
                       window=window, return_complex=True)
            for v in (x, y)
        )  # fmt: skip
        px, py = sx.abs() ** 2, sy.abs() ** 2
        below = torch.arange(sx.shape[0])[:, None] < bins[c]
        keep = below.expand(sx.shape)
        if floors is not None:
            own = _db(_box(px, 0, SMOOTH_FRAMES), _box(py, 0, SMOOTH_FRAMES))
            wide = _db(_box(px, SMOOTH_BINS, SMOOTH_FRAMES), _box(py, SMOOTH_BINS, SMOOTH_FRAMES))
            agree = (wide >= AGREE_DB[0]) & (own >= AGREE_DB[0]) & (own <= AGREE_DB[1])
            loud = _box(px, 0, SMOOTH_FRAMES) >= floors[c] * 10 ** (FLOOR_MARGIN_DB / 10)
            agree &= loud | ((floors[c] <= QUIET_FLOOR) & (own >= 0))
            keep = (wide <= AGREE_DB[1]) & (agree | below)
        energy = (2 * px.sum(0) - px[0] - px[-1]) / n_fft
        sy = sy * (torch.sqrt(energy / window.pow(2).sum()) >= SILENCE)
        lo, hi = (int(bins[c] * 2**-o) for o in SEAM_OCTAVES)
        if 0 < lo < hi:
            excess = _db(_box(sy[lo:hi].abs() ** 2, 0, SEAM_FRAMES), _box(px[lo:hi], 0, SEAM_FRAMES)).median(0).values
            lift = torch.clamp(-excess - SEAM_TOLERANCE_DB, 0.0, SEAM_LIFT_DB)
            sy = torch.where(below, sy, sy * 10 ** ((lift - torch.clamp(excess - SEAM_TOLERANCE_DB, min=0.0)) / 20))
        merged = torch.istft(torch.where(keep, sx, sy), n_fft, n_fft // 4, window=window, length=x.shape[1] + 2 * pad)
        out.append(merged[pad : pad + x.shape[1]].numpy())
    return np.stack(out)


def song(seconds: float, seed: int) -> np.ndarray:
    """A stereo stand-in for a mix at 48 kHz: partials, a noise burst every quarter second and a fade to digital
    silence at the end."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    out = []
    for _ in range(2):
        partials = sum(0.03 * np.sin(2 * np.pi * rng.uniform(60, 12_000) * t + rng.uniform(0, 6)) for _ in range(16))
        hits = rng.standard_normal(len(t)) * np.exp(-((t * 4) % 1) * 12) * 0.1
        out.append((partials + hits) * np.clip((seconds - 1 - t) / 2, 0, 1))
    return np.stack(out).astype(np.float32)


@pytest.mark.parametrize(
    ("filter", "cutoffs", "noise"),
    [
        ("chebyshev", (8000.0, 8000.0), 0.0),
        ("butterworth", (4000.0, 4000.0), 0.003),
        ("elliptic", (12000.0, 3000.0), 0.0),
    ],
)
def test_streamed_merge_equals_the_slow_obvious_merge(filter, cutoffs, noise) -> None:
    """A stereo song low-passed (with white noise or without; each channel at its own cutoff in one case),
    merged with a stand-in for the model's output through BandMerger in the pieces `Pipeline.upsample` pushes
    (4.6 s): within 1e-4 of full scale of the slow merge of the whole signals, adaptive (the default) and with
    a fixed cut."""
    n_s = 12.0
    truth = song(n_s, seed=1)
    x = np.stack([lowpass(t, SAMPLE_RATE, filter, 8, c) for t, c in zip(truth, cutoffs, strict=True)])
    cutoff = max(cutoffs)
    x = x + noise * np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)
    x[:, -SAMPLE_RATE:] = 0  # the fade ends in digital silence: the gate
    other = song(n_s, seed=7)  # the model's stand-in, as `generated`: right level, detail partly wrong
    y = lowpass(0.7 * truth + 0.5 * other, SAMPLE_RATE, "butterworth", 8, cutoff)
    y = y + other - lowpass(other, SAMPLE_RATE, "butterworth", 8, cutoff)
    bands = analyse([x], 2).band
    for floors, bins in (
        ([b.floor for b in bands], [cutoff_bin(b.cutoff_hz, LFR_FFT) for b in bands]),
        (None, [cutoff_bin(c, LFR_FFT) for c in cutoffs]),
    ):
        merger = BandMerger(bins, x.shape[1], floors)
        piece = 461 * 480
        parts = [b for a in range(0, x.shape[1], piece) for b in merger.push(x[:, a : a + piece], y[:, a : a + piece])]
        streamed = np.concatenate([*parts, merger.finish()], axis=1)
        slow = slow_merge(x, y, bins, floors)
        assert np.abs(streamed - slow).max() <= 1e-4 * max(1.0, np.abs(slow).max()), np.abs(streamed - slow).max()
        assert not streamed[:, -SAMPLE_RATE + LFR_FFT :].any()  # silence stays silence


def test_box_mean_is_avg_pool_and_keeps_silence_exact() -> None:
    """box_mean against avg_pool (count_include_pad=False) on a loud stretch followed by a quiet one and by
    digital silence, along either axis and for lengths shorter than the box."""
    from audiosr.inference.merge import box_mean

    rng = np.random.default_rng(0)
    for frames in (3, 50, 97, 421):
        a = torch.from_numpy(rng.random((2, 30, frames)).astype(np.float32)) * 1e4
        a[..., frames // 3 :] *= 1e-12
        a[..., 2 * frames // 3 :] = 0
        for dim, r in ((-1, 48), (-2, 6)):
            k = (2 * r + 1, 1) if dim == -2 else (1, 2 * r + 1)
            p = (r, 0) if dim == -2 else (0, r)
            want = torch.nn.functional.avg_pool2d(a.double(), k, 1, p, count_include_pad=False)
            got = box_mean(a, r, dim).double()
            assert torch.allclose(got, want, rtol=1e-5, atol=0), (frames, dim)
            assert torch.equal(got == 0, want == 0)
