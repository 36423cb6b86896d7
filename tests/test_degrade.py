"""The degradation: each filter family measured on white noise, noise draws, determinism, the CLI."""

import numpy as np
import pytest
from scipy import signal
from typer.testing import CliRunner

from audiosr import degrade as deg
from audiosr.audio import read, write
from audiosr.cli import app
from audiosr.config import FilterConfig, NoiseConfig, block

SR = 48_000
FILTER_PARAMS = {"types": list(deg.FILTERS), "order": [2, 10], "cutoff_hz": [2000, 16000]}
NOISE_PARAMS = {
    "type": "mixed",
    "tone_amplitude": [0.001, 0.2],
    "tone_hz": [100, 15000],
    "gaussian_amplitude": [0.001, 0.1],
}
FILTER, NOISE = block(FilterConfig, FILTER_PARAMS, "filter"), block(NoiseConfig, NOISE_PARAMS, "noise")


@pytest.fixture(scope="module")
def white() -> np.ndarray:
    return np.random.default_rng(0).standard_normal(4 * SR).astype(np.float32)


def gain_db(x: np.ndarray, y: np.ndarray, f_lo: float, f_hi: float) -> float:
    """Mean power gain of y over x in the band [f_lo, f_hi], from Welch spectra."""
    f, px = signal.welch(x, SR, nperseg=8192)
    _, py = signal.welch(y, SR, nperseg=8192)
    band = (f >= f_lo) & (f <= f_hi)
    return float(10 * np.log10(py[band].mean() / px[band].mean()))


@pytest.mark.parametrize("family", deg.FILTERS)
@pytest.mark.parametrize("cutoff", [4000.0, 8000.0])
def test_filter_family_on_white_noise(family: str, cutoff: float, white: np.ndarray) -> None:
    stop = {}
    for order in (2, 6, 10):
        y = deg.lowpass(white, SR, family, order, cutoff)
        assert y.shape == white.shape and y.dtype == np.float32
        # flat well below the cutoff
        assert abs(gain_db(white, y, 100, 0.5 * cutoff)) < 1.0, (family, order)
        stop[order] = gain_db(white, y, 1.45 * cutoff, 1.55 * cutoff)
    assert stop[2] > stop[6] > stop[10], (family, stop)  # steeper with the order
    assert stop[10] < -40, (family, stop)


def test_lowpass_is_zero_phase() -> None:
    t = np.arange(SR) / SR
    x = np.sin(2 * np.pi * 500 * t).astype(np.float32)
    for family in deg.FILTERS:
        y = deg.lowpass(x, SR, family, 8, 4000)
        mid = slice(SR // 4, 3 * SR // 4)  # away from the edges
        assert np.max(np.abs(y[mid] - x[mid])) < 0.02, family


def test_boxcar_length_grows_with_order() -> None:
    taps = [deg.boxcar_taps(o, SR) for o in range(2, 11)]
    assert taps == sorted(taps) and taps[0] == 257 and taps[-1] == 1281 and all(t % 2 for t in taps)


def test_bad_filter_values() -> None:
    x = np.zeros(1000, np.float32)
    with pytest.raises(ValueError, match="filter family"):
        deg.lowpass(x, SR, "bessel", 4, 4000)
    with pytest.raises(ValueError, match="Nyquist"):
        deg.lowpass(x, SR, "butterworth", 4, 30000)
    with pytest.raises(ValueError, match="noise.type"):
        block(NoiseConfig, {**NOISE_PARAMS, "type": "pink"}, "noise")
    with pytest.raises(ValueError, match="filter.types"):
        block(FilterConfig, {**FILTER_PARAMS, "types": ["cheby"]}, "filter")


def test_draws_fall_in_their_ranges() -> None:
    draws = [deg.draw(deg.segment_rng(0, "train", i), FILTER, NOISE) for i in range(600)]
    assert {d.filter for d in draws} == set(deg.FILTERS)
    assert {d.noise for d in draws} == {"none", "tone", "gaussian"}
    assert {d.order for d in draws} == set(range(2, 11))
    assert all(2000 <= d.cutoff_hz <= 16000 for d in draws)
    tones = [d for d in draws if d.noise == "tone"]
    gauss = [d for d in draws if d.noise == "gaussian"]
    assert all(0.001 <= d.noise_amplitude <= 0.2 and 100 <= d.tone_hz <= 15000 for d in tones)
    assert all(0.001 <= d.noise_amplitude <= 0.1 for d in gauss)
    assert all(d.noise_amplitude == 0 for d in draws if d.noise == "none")


def test_applied_noise_has_the_drawn_amplitude() -> None:
    x = np.zeros(SR, np.float32)
    rng = np.random.default_rng(1)
    tone = deg.Degradation("butterworth", 4, 8000, "tone", 0.1, 1000.0, 0.3)
    y = deg.apply(x, SR, tone, rng)
    assert np.abs(y).max() == pytest.approx(0.1, rel=1e-3)
    f, p = signal.welch(y, SR, nperseg=4800)
    assert f[np.argmax(p)] == pytest.approx(1000, abs=10)
    gauss = deg.Degradation("butterworth", 4, 8000, "gaussian", 0.05)
    assert deg.apply(x, SR, gauss, rng).std() == pytest.approx(0.05, rel=0.02)


def test_draw_depends_only_on_seed_split_index() -> None:
    a = deg.draw(deg.segment_rng(3, "train", 17), FILTER, NOISE)
    b = deg.draw(deg.segment_rng(3, "train", 17), FILTER, NOISE)
    c = deg.draw(deg.segment_rng(3, "valid", 17), FILTER, NOISE)
    assert a == b and a != c


def test_cli_degrade(tmp_path) -> None:
    sr = 44_100
    t = np.arange(2 * sr) / sr
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), 0.3 * np.random.default_rng(0).standard_normal(len(t))])
    src = tmp_path / "in.wav"
    write(src, (0.8 * stereo / np.abs(stereo).max()).astype(np.float32), sr)
    out = tmp_path / "out.wav"
    runner = CliRunner()
    args = [
        "degrade",
        str(src),
        "-o",
        str(out),
        "--filter",
        "chebyshev",
        "--order",
        "8",
        "--cutoff",
        "4000",
        "--noise",
        "tone",
        "--tone-hz",
        "12000",
        "--amplitude",
        "0.01",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    y, y_sr = read(out)
    assert y_sr == sr and y.shape == stereo.shape
    # the band between the cutoff and the tone is emptied; the tone is there
    assert gain_db(stereo[1], y[1], 6000, 10000) < -50
    f, p = signal.welch(y[0], sr, nperseg=4410)
    assert p[np.argmin(np.abs(f - 12000))] > 100 * p[np.argmin(np.abs(f - 8000))]
    # an existing output is not overwritten without --force; bad values get one clear line
    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "--force" in again.output
    bad = runner.invoke(app, [*args[:9], "30000", "--force"])
    assert bad.exit_code == 1 and "Nyquist" in bad.output
    missing = runner.invoke(app, ["degrade", str(tmp_path / "nope.wav"), "-o", str(tmp_path / "x.wav")])
    assert missing.exit_code == 1 and "nope.wav" in missing.output
