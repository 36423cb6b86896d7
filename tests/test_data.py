"""Sources, manifest, split, segment and degrade on small fabricated data."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from audiosr.audio import AudioError, MelConfig, from_int16, log_mel
from audiosr.data import sources
from audiosr.data.segments import degrade_split, segment_split, with_stems
from audiosr.data.split import make_split
from audiosr.data.store import SegmentSet, atomic_dir

MEL = MelConfig(n_mels=32)
AUDIO = {"segment_seconds": 0.64, "silence_db": -50.0, "peak": 0.5, "train_stems": []}
FILTER = {"types": ["chebyshev", "elliptic", "butterworth", "boxcar"], "order": [2, 10], "cutoff_hz": [2000, 16000]}
NOISE = {"type": "mixed", "tone_amplitude": [0.001, 0.2], "tone_hz": [100, 15000], "gaussian_amplitude": [0.001, 0.1]}


def split_params(**change) -> dict:
    return {"valid_tracks": 10, "proportions": [90, 10, 50], "seed": 0, **change}


def music(seconds: float, sr: int, seed: int, channels: int = 2) -> np.ndarray:
    """A few harmonic notes with noise bursts: (channels, samples) float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = rng.uniform(100, 400)
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 12))
    x = x * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t) ** 2) + 0.05 * rng.standard_normal(len(t))
    x = 0.6 * x / np.abs(x).max()
    return np.stack([x * (0.8 + 0.2 * c) for c in range(channels)]).astype(np.float32)


def fake_musdb_hq(root, train: int = 4, test: int = 2, seconds: float = 1.5):
    for i in range(train + test):
        folder = root / ("train" if i < train else "test") / f"Artist {i} - Song"
        folder.mkdir(parents=True)
        mix = music(seconds, 44_100, i)
        for stem in ("drums", "bass", "other", "vocals"):
            sf.write(folder / f"{stem}.wav", mix.T / 4, 44_100, subtype="PCM_16")
        sf.write(folder / "mixture.wav", mix.T, 44_100, subtype="PCM_16")
    return root


def test_musdb18hq_manifest_and_split(tmp_path) -> None:
    root = fake_musdb_hq(tmp_path / "musdb")
    m = sources.build_manifest({"source": "musdb18hq", "root": str(root)}, tmp_path / "raw", tmp_path / "raw")
    assert list(m.columns) == sources.COLUMNS
    assert len(m) == 6 and set(m.subset) == {"train", "test"} and (m.status == "ok").all()
    assert (m.sample_rate == 44_100).all() and (m.channels == 2).all()
    assert m.duration.iloc[0] == pytest.approx(1.5) and (m["size"] > 0).all() and (m.mtime != "").all()
    assert not (tmp_path / "raw").exists()  # real data is read in place, not copied
    split = make_split(m, split_params(valid_tracks=1))
    assert [len(split[k]) for k in ("train", "valid", "test")] == [3, 1, 2]
    assert set(split["test"]) == set(m.track[m.subset == "test"])  # the official test set
    assert not set(split["train"]) & set(split["valid"]) | set(split["train"]) & set(split["test"])


def test_musdb_split_counts_like_musdb18() -> None:
    m = pd.DataFrame(
        {"track": [f"t{i:03d}" for i in range(150)], "subset": ["train"] * 100 + ["test"] * 50, "status": "ok"}
    )
    split = make_split(m, split_params())
    assert [len(split[k]) for k in ("train", "valid", "test")] == [90, 10, 50]
    assert len(set().union(*split.values())) == 150
    assert make_split(m, split_params()) == split
    assert make_split(m, split_params(seed=1))["valid"] != split["valid"]


@pytest.mark.parametrize(
    ("train", "test", "counts"),
    [
        (10, 5, [9, 1, 5]),  # data.synthetic.tracks: 15 (was 1 / 9 / 5: valid_tracks taken from 10 folders)
        (100, 50, [90, 10, 50]),  # MUSDB18
        (2, 1, [1, 1, 1]),
        (1, 1, [1, 0, 1]),  # at least 1 valid when 2 can train; never the last training track
        (24, 6, [22, 2, 6]),
        (25, 8, [22, 3, 8]),  # 2.4 -> 2, 2.5 -> 3 (half up)
        (1000, 500, [990, 10, 500]),  # at most split.valid_tracks
    ],
)
def test_official_split_keeps_musdb18_proportion(train, test, counts) -> None:
    m = pd.DataFrame(
        {
            "track": [f"t{i:04d}" for i in range(train + test)],
            "subset": ["train"] * train + ["test"] * test,
            "status": "ok",
        }
    )
    split = make_split(m, split_params())
    assert [len(split[k]) for k in ("train", "valid", "test")] == counts
    assert sorted(sum(split.values(), [])) == sorted(m.track)


def test_synthetic_15_tracks_split_9_1_5(tmp_path) -> None:
    m = sources.build_manifest(
        {"source": "synthetic", "synthetic": {"tracks": 15, "seconds": 0.2, "seed": 0}},
        tmp_path / "raw",
        tmp_path / "raw",
    )
    split = make_split(m, split_params())
    assert [len(split[k]) for k in ("train", "valid", "test")] == [9, 1, 5]


def test_folder_source_with_corrupt_file(tmp_path) -> None:
    lib = tmp_path / "lib"
    (lib / "album").mkdir(parents=True)
    for i in range(6):
        sf.write(lib / "album" / f"song{i}.flac" if i % 2 else lib / f"song{i}.wav", music(1.0, 22_050, i).T, 22_050)
    (lib / "broken.wav").write_bytes(b"RIFF\x00\x00not really a wave file")
    (lib / "empty.ogg").write_bytes(b"")
    with pytest.raises(AudioError, match="broken.wav.*data.on_error: skip"):
        sources.build_manifest({"source": "folder", "root": str(lib)}, tmp_path / "raw", tmp_path / "raw")
    m = sources.build_manifest(
        {"source": "folder", "root": str(lib), "on_error": "skip"}, tmp_path / "raw", tmp_path / "raw"
    )
    assert len(m) == 8 and (m.status == "ok").sum() == 6
    assert set(m.track[m.status != "ok"]) == {"broken", "empty"}
    assert m.loc[m.track == "broken", "status"].item().startswith("skipped: ")
    split = make_split(m, split_params())
    assert sorted(sum(split.values(), [])) == sorted(m.track[m.status == "ok"])
    assert all(len(v) >= 1 for v in split.values())


def test_nan_samples_are_rejected(tmp_path) -> None:
    x = music(1.0, 48_000, 0).T.copy()
    x[100, 0] = np.nan
    sf.write(tmp_path / "nan.wav", x, 48_000, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav.*NaN"):
        sources.build_manifest({"source": "folder", "root": str(tmp_path)}, tmp_path / "raw", tmp_path / "raw")


def test_missing_roots_say_what_to_do(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("MUSDB_PATH", raising=False)
    with pytest.raises(sources.SourceError, match="MUSDB_PATH"):
        sources.build_manifest({"source": "musdb18hq"}, tmp_path, tmp_path)
    monkeypatch.setenv("MUSDB_PATH", str(tmp_path / "nowhere"))
    with pytest.raises(sources.SourceError, match="not a folder"):
        sources.build_manifest({"source": "musdb18hq"}, tmp_path, tmp_path)
    with pytest.raises(sources.SourceError, match="data.root"):
        sources.build_manifest({"source": "folder"}, tmp_path, tmp_path)
    with pytest.raises(sources.SourceError, match="unknown source"):
        sources.build_manifest({"source": "youtube"}, tmp_path, tmp_path)


def test_musdb18_stems_need_ffmpeg(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(sources.shutil, "which", lambda name: None)
    (tmp_path / "train").mkdir()
    with pytest.raises(sources.SourceError, match="apt-get install ffmpeg"):
        sources.build_manifest({"source": "musdb18", "root": str(tmp_path)}, tmp_path, tmp_path)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg binary (.ci/run installs it)")
def test_musdb18_stem_mp4(tmp_path) -> None:
    import stempeg

    for i, subset in enumerate(("train", "train", "test")):
        (tmp_path / subset).mkdir(exist_ok=True)
        stems = np.stack([music(1.0, 44_100, i + k).T for k in range(5)])  # mixture + 4 stems
        stempeg.write_stems(
            str(tmp_path / subset / f"song{i}.stem.mp4"), stems, sample_rate=44_100, writer=stempeg.StreamsWriter()
        )
    m = sources.build_manifest({"source": "musdb18", "root": str(tmp_path)}, tmp_path / "raw", tmp_path / "raw")
    assert list(m.subset) == ["train", "train", "test"] and (m.channels == 2).all()
    assert m.duration.iloc[0] == pytest.approx(1.0, abs=0.1)
    wave, sr = sources.load_track(m.path.iloc[0], tmp_path)
    assert sr == 44_100 and wave.shape[0] == 2 and np.abs(wave).max() > 0.1


def tracks_table(root, specs: dict) -> pd.DataFrame:
    rows = []
    for name, (seconds, sr, silent) in specs.items():
        x = music(seconds, sr, len(rows))
        if silent:  # second half silent
            x[:, x.shape[1] // 2 :] = 0
        sf.write(root / f"{name}.wav", x.T, sr, subtype="PCM_16")
        rows.append({"track": name, "path": str(root / f"{name}.wav")})
    return pd.DataFrame(rows)


def test_segment_split(tmp_path) -> None:
    tracks = tracks_table(tmp_path, {"a": (2.0, 44_100, False), "b": (2.6, 48_000, True), "tiny": (0.3, 16_000, False)})
    counts = segment_split(tracks, tmp_path / "seg", tmp_path, AUDIO, MEL, workers=1)
    assert counts["tracks"] == 3 and counts["short_tracks"] == 1
    assert counts["silent_segments"] >= 1
    seg = SegmentSet.open(tmp_path / "seg")
    n = counts["segments"]
    assert seg.wave.shape == (n, 30_720) and seg.wave.dtype == np.int16
    assert seg.mel.shape == (n, 32, 64) and seg.mel.dtype == np.float16
    assert list(seg.index.columns) == ["track", "start", "peak", "rms"] and len(seg.index) == n
    assert set(seg.index.track) == {"a", "b"}
    for i in range(n):
        assert np.abs(seg.audio(i)).max() == pytest.approx(0.5, abs=1e-4)
        np.testing.assert_allclose(seg.mel[i], log_mel(from_int16(seg.wave[i]), MEL).numpy(), atol=2e-2)
    assert seg.meta["mel"]["n_mels"] == 32 and seg.meta["segment_samples"] == 30_720


def test_training_stems_are_cut_alone_too(tmp_path) -> None:
    """audio.train_stems: each track's stems beside its mixture become tracks of their own, silent parts
    of a stem skipped as any track's; a source without them is an error naming the track and the param."""
    (tmp_path / "song").mkdir()
    mix = music(2.0, 48_000, 0)
    bass = music(2.0, 48_000, 1)
    bass[:, bass.shape[1] // 2 :] = 0  # a bass that rests for the second second
    for name, x in (("mixture", mix), ("bass", bass), ("drums", music(2.0, 48_000, 2))):
        sf.write(tmp_path / "song" / f"{name}.wav", x.T, 48_000)
    tracks = pd.DataFrame([{"track": "song", "path": str(tmp_path / "song" / "mixture.wav")}])
    both = with_stems(tracks, ("bass", "drums"), tmp_path)
    assert list(both.track) == ["song", "song/bass", "song/drums"]
    counts = segment_split(both, tmp_path / "seg", tmp_path, AUDIO, MEL, workers=1)
    index = SegmentSet.open(tmp_path / "seg").index
    assert (index.track == "song").sum() == (index.track == "song/drums").sum() == 3
    assert (index.track == "song/bass").sum() == 2 and counts["silent_segments"] == 1  # its last 0.64 s rests
    with pytest.raises(ValueError, match="song has no vocals stem.*audio.train_stems"):
        with_stems(tracks, ("vocals",), tmp_path)


def test_segment_length_must_be_whole_frames(tmp_path) -> None:
    tracks = tracks_table(tmp_path, {"a": (1.0, 48_000, False)})
    with pytest.raises(ValueError, match="audio.segment_seconds"):
        segment_split(tracks, tmp_path / "seg", tmp_path, {**AUDIO, "segment_seconds": 0.125}, MEL, workers=1)
    assert not (tmp_path / "seg").exists()


def test_degrade_is_deterministic_across_workers(tmp_path) -> None:
    tracks = tracks_table(tmp_path, {f"t{i}": (3.0, 44_100, False) for i in range(3)})
    segment_split(tracks, tmp_path / "seg", tmp_path, AUDIO, MEL, workers=2)
    one = degrade_split(tmp_path / "seg", tmp_path / "p1", "train", FILTER, NOISE, 7, MEL, workers=1)
    two = degrade_split(tmp_path / "seg", tmp_path / "p2", "train", FILTER, NOISE, 7, MEL, workers=2)
    pd.testing.assert_frame_equal(one, two)
    a, b = SegmentSet.open(tmp_path / "p1"), SegmentSet.open(tmp_path / "p2")
    assert np.array_equal(a.wave, b.wave) and np.array_equal(a.mel, b.mel)
    assert len(one) == len(SegmentSet.open(tmp_path / "seg")) == 12
    assert {"filter", "order", "cutoff_hz", "noise", "noise_amplitude", "tone_hz"} <= set(one.columns)
    other = degrade_split(tmp_path / "seg", tmp_path / "p3", "train", FILTER, NOISE, 8, MEL, workers=1)
    assert not other.cutoff_hz.equals(one.cutoff_hz)
    # a degraded segment has lost its high band
    clean = SegmentSet.open(tmp_path / "seg")
    i = int(np.argmin(one.cutoff_hz))
    hi = int(MEL.n_mels * 0.9)
    assert a.mel[i, hi:].astype(float).mean() < clean.mel[i, hi:].astype(float).mean() - 2


def test_degrade_refuses_mismatched_mels(tmp_path) -> None:
    tracks = tracks_table(tmp_path, {"a": (1.5, 48_000, False)})
    segment_split(tracks, tmp_path / "seg", tmp_path, AUDIO, MEL, workers=1)
    with pytest.raises(ValueError, match="re-run the segment stage"):
        degrade_split(tmp_path / "seg", tmp_path / "p", "train", FILTER, NOISE, 0, MelConfig(n_mels=64), workers=1)


def test_atomic_dir_keeps_the_old_output_on_failure(tmp_path) -> None:
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "a.json").write_text(json.dumps({"good": True}))
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "a.json").write_text("half")
        raise RuntimeError("interrupted")
    assert json.loads((out / "a.json").read_text()) == {"good": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
