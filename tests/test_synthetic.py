"""The built-in synthetic songs: MUSDB18-HQ layout, determinism, full-band content, variety."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from audiosr.data.synthetic import FILES, STEMS, generate, generate_track, song_params

SR = 44_100
TRACKS = 6
SECONDS = 3.0


@pytest.fixture(scope="module")
def songs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path], list[int]]:
    root = tmp_path_factory.mktemp("synth")
    ticks: list[int] = []
    folders = generate(root, tracks=TRACKS, seconds=SECONDS, seed=0, progress=ticks.append)
    return root, folders, ticks


def _read(folder: Path) -> dict[str, np.ndarray]:
    return {name: sf.read(folder / f"{name}.wav", dtype="float64", always_2d=True)[0].T for name in FILES}


def _band_db(x: np.ndarray, lo: float, hi: float = np.inf, sr: int = SR) -> float:
    """Power of the band [lo, hi) Hz relative to the total, in dB (Welch PSD of the left channel)."""
    f, psd = signal.welch(x[0], sr, nperseg=4096)
    return float(10 * np.log10(psd[(f >= lo) & (f < hi)].sum() / psd.sum() + 1e-30))


def test_layout(songs: tuple[Path, list[Path], list[int]]) -> None:
    root, folders, ticks = songs
    names = [f"synth_{i:03d}" for i in range(TRACKS)]
    assert [f.name for f in folders] == names
    assert sorted(p.name for p in (root / "train").iterdir()) == names[:4]
    assert sorted(p.name for p in (root / "test").iterdir()) == names[4:]
    assert sum(ticks) == TRACKS
    for folder in folders:
        assert sorted(p.name for p in folder.iterdir()) == sorted(f"{n}.wav" for n in FILES)
        for name in FILES:
            info = sf.info(folder / f"{name}.wav")
            assert (info.samplerate, info.channels, info.frames) == (SR, 2, int(SECONDS * SR))
            assert info.subtype == "PCM_16"
        audio = _read(folder)
        # each file is rounded to 16 bits on its own: a few LSB apart at most
        assert np.abs(audio["mixture"] - sum(audio[s] for s in STEMS)).max() < 4 / 32768


def test_same_seed_same_bytes_for_any_worker_count(songs: tuple[Path, list[Path], list[int]], tmp_path: Path) -> None:
    _, folders, _ = songs
    again = generate(tmp_path, tracks=TRACKS, seconds=SECONDS, seed=0, workers=2)
    assert [f.relative_to(tmp_path) for f in again] == [f.relative_to(folders[0].parents[1]) for f in folders]
    for a, b in zip(folders, again, strict=True):
        for name in FILES:
            assert (a / f"{name}.wav").read_bytes() == (b / f"{name}.wav").read_bytes()


def test_other_seed_other_audio() -> None:
    a = generate_track(0, 1.0, seed=0)
    b = generate_track(0, 1.0, seed=1)
    assert not np.allclose(a["mixture"], b["mixture"])
    assert song_params(0, 0) != song_params(0, 1)


def test_levels_no_silence_no_clipping(songs: tuple[Path, list[Path], list[int]]) -> None:
    _, folders, _ = songs
    peaks = []
    for folder in folders:
        audio = _read(folder)
        for name, x in audio.items():
            assert np.isfinite(x).all()
            assert np.abs(x).max() < 0.99, name
            assert np.sqrt(np.mean(x**2)) > 3e-3, f"{folder.name}/{name} is silent"
        peaks.append(np.abs(audio["mixture"]).max())
    assert 0.2 < min(peaks) and max(peaks) < 0.96
    assert max(peaks) - min(peaks) > 0.1  # loudness varies between songs


def test_full_band(songs: tuple[Path, list[Path], list[int]]) -> None:
    _, folders, _ = songs
    for folder in folders:
        audio = _read(folder)
        # hi-hats and cymbals put real energy at the top of the band
        assert _band_db(audio["drums"], 16_000) > -40, folder.name
        # harmonic parts reach past 10 kHz
        assert _band_db(audio["other"], 10_000) > -60, folder.name
        assert _band_db(audio["vocals"], 10_000) > -60, folder.name
        assert _band_db(audio["mixture"], 16_000) > -45, folder.name


def test_harmonic_parts_stay_below_the_top() -> None:
    # partials stop at 20 kHz: nothing is folded back from above Nyquist
    song = generate_track(1, 2.0, seed=3)
    assert _band_db(song["other"], 20_300) < -70
    assert _band_db(song["bass"], 20_300) < -70


def test_other_sample_rate() -> None:
    song = generate_track(2, 1.0, seed=0, sample_rate=22_050)
    assert {k: v.shape for k, v in song.items()} == {k: (2, 22_050) for k in FILES}
    assert all(v.dtype == np.float32 for v in song.values())
    assert _band_db(song["other"], 0.95 * 11_025 + 200, sr=22_050) < -70


def test_variety() -> None:
    params = [song_params(i, 0) for i in range(12)]
    assert len({p.tempo for p in params}) > 6
    assert len({p.key for p in params}) > 3
    assert len({p.scale for p in params}) > 1
    assert all(70 <= p.tempo <= 170 for p in params)
    assert (params[0].tempo, params[0].key) != (params[1].tempo, params[1].key)
    assert song_params(3, 0) == params[3]  # a pure function of (index, seed)
