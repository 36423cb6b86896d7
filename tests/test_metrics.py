"""Each metric on signals whose answer is known: gains, removed bands, known SNRs, identical copies."""

import math

import librosa
import numpy as np
import pesq
import pytest
from scipy import signal

from audiosr import metrics as m

SR = 48_000


def white(seconds: float, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def brickwall(x: np.ndarray, cutoff_hz: float) -> np.ndarray:
    """Zero every DFT bin at or above cutoff_hz (an ideal low-pass)."""
    spec = np.fft.rfft(x.astype(np.float64))
    spec[np.fft.rfftfreq(x.size, 1 / SR) >= cutoff_hz] = 0
    return np.fft.irfft(spec, x.size).astype(np.float32)


def at_snr(x: np.ndarray, snr_db: float, seed: int = 1) -> np.ndarray:
    """x plus independent white noise scaled to the given SNR."""
    x = x.astype(np.float64)
    noise = np.random.default_rng(seed).standard_normal(x.size)
    noise *= math.sqrt(np.sum(x**2) / np.sum(noise**2) / 10 ** (snr_db / 10))
    return x + noise


def music_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Two harmonic tones (A3, E4) with a pulsing envelope plus a little noise, full band, peak 0.5."""
    t = np.arange(int(seconds * SR)) / SR
    x = sum(0.3 / k * np.sin(2 * np.pi * 220 * k * t) for k in range(1, 105))
    x = x + sum(0.2 / k * np.sin(2 * np.pi * 330 * k * t + 1) for k in range(1, 70))
    x = x * (0.5 + 0.5 * np.abs(np.sin(2 * np.pi * 1.5 * t)))
    x = x + 0.02 * np.random.default_rng(seed).standard_normal(t.size)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """A voiced source (f0 ~120 Hz with intonation) shaped by three drifting formants, in ~4 Hz syllables with
    pauses, peak 0.5 at 48 kHz."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = 120 + 20 * np.sin(2 * np.pi * 0.7 * t) + 10 * np.sin(2 * np.pi * 3.1 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    formants = [
        (500 + 200 * np.sin(2 * np.pi * 1.3 * t), 1.0),
        (1500 + 400 * np.sin(2 * np.pi * 0.9 * t + 1), 0.5),
        (2500 + 300 * np.sin(2 * np.pi * 0.6 * t + 2), 0.25),
    ]
    x = np.zeros_like(t)
    for k in range(1, 60):
        amp = sum(g * np.exp(-0.5 * ((k * f0 - f) / 120) ** 2) for f, g in formants) + 0.02
        x += amp * np.sin(k * phase) / math.sqrt(k)
    envelope = np.clip(np.sin(2 * np.pi * 2.0 * t), 0, None) ** 2 * (np.sin(2 * np.pi * 0.35 * t) > -0.6)
    x = envelope * (x + 0.003 * np.random.default_rng(seed).standard_normal(t.size))
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


# ---------------------------------------------------------------- LSD


def test_lsd_stft_params_match_the_kit() -> None:
    assert m.lsd_stft_params(48_000) == (2229, 480)
    assert m.lsd_stft_params(44_100) == (2048, 441)
    assert m.lsd_stft_params(16_000) == (743, 160)


def test_lsd_identical_is_zero() -> None:
    x = white(2)
    assert m.lsd(x, x) < 1e-9


@pytest.mark.parametrize("gain", [2.0, 0.5, 10.0])
def test_lsd_of_a_gain_is_log10_of_its_square(gain: float) -> None:
    # every bin: log10(X^2 / (gX)^2) = -log10(g^2), so each frame's RMS and the mean are |log10(g^2)|
    x = white(2)
    assert m.lsd(x, gain * x) == pytest.approx(abs(math.log10(gain**2)), rel=1e-5)
    assert m.lsd(x, 2.0 * x) == pytest.approx(0.60206, abs=1e-5)


def test_lsd_is_symmetric_for_independent_signals() -> None:
    a, b = white(2, seed=0), white(2, seed=1)
    assert m.lsd(a, b) == pytest.approx(m.lsd(b, a), rel=1e-6)
    assert m.lsd(a, b) > 0.3


def test_lsd_split_on_a_removed_band() -> None:
    x = white(2)
    lowpassed = brickwall(x, 8000)
    split = m.lsd_split(x, lowpassed, cutoff_hz=8000, sr=SR)
    assert split["lsd_lf"] < 0.05  # the kept band is untouched but for window leakage at the edge
    assert split["lsd_hf"] > 5.0  # the removed band sits ~10 decades down
    assert split["lsd_lf"] < split["lsd"] < split["lsd_hf"]
    assert split["lsd"] == pytest.approx(m.lsd(x, lowpassed), rel=1e-12)
    assert split["lsd_hf"] == pytest.approx(m.lsd(x, lowpassed, lo_hz=8000), rel=1e-12)
    assert split["lsd_lf"] == pytest.approx(m.lsd(x, lowpassed, hi_hz=8000), rel=1e-12)


def test_lsd_band_limits_select_bins() -> None:
    # a gain applied only above 8 kHz shows in LSD-HF (exactly log10(4) well above the edge) and not below
    x = white(2)
    spec = np.fft.rfft(x.astype(np.float64))
    spec[np.fft.rfftfreq(x.size, 1 / SR) >= 8000] *= 2
    y = np.fft.irfft(spec, x.size)
    assert m.lsd(x, y, lo_hz=9000) == pytest.approx(math.log10(4), rel=1e-3)
    assert m.lsd(x, y, hi_hz=7000) < 0.01
    with pytest.raises(ValueError, match="no STFT bin"):
        m.lsd(x, y, lo_hz=30_000)


def test_lsd_matches_the_kit_code() -> None:
    """The kit: librosa.stft magnitudes (librosa 0.9 default: reflect padding), then its torch expression."""
    x, y = white(1, seed=2), (white(1, seed=2) + white(1, seed=3) * 0.3).astype(np.float32)
    n_fft, hop = 2229, 480
    target = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop, pad_mode="reflect")).T.astype(np.float64)
    est = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop, pad_mode="reflect")).T.astype(np.float64)
    kit = np.mean(np.mean(np.log10(target**2 / (est + 1e-12) ** 2 + 1e-12) ** 2, axis=1) ** 0.5)
    assert m.lsd(x, y) == pytest.approx(kit, rel=1e-6)


def test_lsd_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="length"):
        m.lsd(white(1), white(1.1))


# ---------------------------------------------------------------- SI-SDR


def test_si_sdr_identical_and_scaled() -> None:
    x = white(2)
    assert m.si_sdr(x, x) > 60
    assert m.si_sdr(x, 0.25 * x) > 60


def test_si_sdr_at_known_snr_and_scale_invariance() -> None:
    x = white(3)
    noisy = at_snr(x, 10.0)
    assert m.si_sdr(x, noisy) == pytest.approx(10.0, abs=0.5)
    assert m.si_sdr(x, 3.7 * noisy) == pytest.approx(m.si_sdr(x, noisy), abs=1e-9)
    assert m.si_sdr(x, noisy + 0.2) == pytest.approx(m.si_sdr(x, noisy), abs=1e-9)  # zero-mean first
    assert m.si_sdr(x, at_snr(x, 0.0)) == pytest.approx(0.0, abs=0.5)


# ---------------------------------------------------------------- ViSQOL


def test_visqol_identical_high_lowpassed_lower() -> None:
    x = music_like(3)
    identical = m.visqol(x, x)
    sos = signal.butter(10, 4000, fs=SR, output="sos")
    lowpassed = signal.sosfiltfilt(sos, x)
    degraded = m.visqol(x, lowpassed)
    assert identical >= 4.5  # audio mode tops out at ~4.73
    assert degraded < identical - 1.0


def test_visqol_missing_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    m._visqol_api.cache_clear()
    monkeypatch.setitem(sys.modules, "visqol", None)  # makes `import visqol` raise ImportError
    try:
        with pytest.raises(ImportError, match="pip install visqol-python"):
            m.visqol(white(1), white(1))
    finally:
        m._visqol_api.cache_clear()


# ---------------------------------------------------------------- PESQ


def test_pesq_identical_high_noisy_low() -> None:
    x = speech_like(4)
    assert m.pesq_wb(x, x) > 4.0
    assert m.pesq_wb(x, at_snr(x, 0.0)) < 2.0


def test_pesq_silence_is_nan(monkeypatch: pytest.MonkeyPatch) -> None:
    silence = np.zeros(SR, dtype=np.float32)
    assert math.isnan(m.pesq_wb(silence, silence))

    def no_utterances(*args: object, **kwargs: object) -> float:
        raise pesq.NoUtterancesError()

    monkeypatch.setattr(pesq, "pesq", no_utterances)
    x = speech_like(1)
    assert math.isnan(m.pesq_wb(x, x))


# ---------------------------------------------------------------- cutoff detection


def test_detect_cutoff_lowpassed_and_full_band() -> None:
    x = white(3)
    sos = signal.ellip(12, 0.1, 80, 4000, fs=SR, output="sos")
    assert m.detect_cutoff(signal.sosfiltfilt(sos, x)) == pytest.approx(4000, rel=0.1)
    assert m.detect_cutoff(brickwall(x, 8000)) == pytest.approx(8000, rel=0.1)
    assert m.detect_cutoff(x) > 20_000
    assert m.detect_cutoff(np.zeros(SR)) == 0.0


def test_band_level_error_per_octave() -> None:
    """A band made 6 dB louder reads +6 dB in its octave, 0 elsewhere; a band the target lacks is NaN."""
    rng = np.random.default_rng(0)
    target = rng.standard_normal(SR).astype(np.float32) * 0.1
    spectrum = np.fft.rfft(target)
    f = np.fft.rfftfreq(SR, 1 / SR)
    brighter = np.fft.irfft(spectrum * np.where((f >= 8000) & (f < 16_000), 2.0, 1.0), n=SR)
    assert m.octaves(4000) == [(4000, 8000), (8000, 16_000), (16_000, 24_000)]
    levels = m.band_level_error(target, brighter, 4000)
    assert levels[0] == pytest.approx(0, abs=0.2) and levels[2] == pytest.approx(0, abs=0.2)
    assert levels[1] == pytest.approx(6.02, abs=0.2)
    dark = np.fft.irfft(spectrum * (f < 8000), n=SR).astype(np.float32)
    assert np.isnan(m.band_level_error(dark, dark, 4000, floor_db=-40)[2])  # only the edge frames leak there
