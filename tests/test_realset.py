"""The real-recordings test set (audiosr.data.realset) built from recordings and stems made here, and from
the held-out drum kits where Debian's hydrogen-drumkits is installed."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from audiosr.audio import SAMPLE_RATE
from audiosr.config import RealsetConfig
from audiosr.data import instruments as ins
from audiosr.data.realset import RealsetError, build, load
from audiosr.data.score import STEMS
from tests.conftest import recordings

CFG = RealsetConfig(strums="", strum_clips=2, drumkits=ins.DRUMKITS, kits=(), stem_songs=1, seconds=1.0, peak=0.5)


def song(root: Path, track: str) -> dict:
    """A test song's mixture and stems (3 s, 44.1 kHz stereo): the bass plays only in its last second."""
    folder = root / "raw" / track
    folder.mkdir(parents=True)
    t = np.arange(3 * 44_100) / 44_100
    for i, stem in enumerate(("mixture", *STEMS)):
        x = 0.3 * np.sin(2 * np.pi * 110 * (i + 1) * t)
        if stem == "bass":
            x[: 2 * 44_100] = 0
        sf.write(folder / f"{stem}.wav", np.stack([x, x]).T, 44_100)
    return {"track": track, "status": "ok", "path": f"raw/{track}/mixture.wav"}


def test_recordings_and_stems(tmp_path) -> None:
    recordings(tmp_path / "rec")
    manifest = pd.DataFrame([song(tmp_path, "s0"), song(tmp_path, "s1")])
    cfg = RealsetConfig(**{**CFG.__dict__, "strums": str(tmp_path / "rec")})
    table = build(cfg, manifest, {"test": ["s1", "s0"]}, tmp_path, tmp_path / "real")
    assert list(table.kind) == ["strum", "strum", *["stem"] * 4]
    assert list(table.name[2:]) == [f"stem_s0_{s}" for s in STEMS]  # the first test song, sorted
    assert {"edge_hz", "top_db", "source", "licence", "seconds"} <= set(table.columns)
    names, clips = load(tmp_path / "real")
    assert list(names.name) == list(table.name)
    for clip in clips:
        assert len(clip) <= SAMPLE_RATE and np.abs(clip).max() == pytest.approx(0.5, abs=1e-4)
    # a stem's loudest second: the bass's last, where it plays
    bass = clips[list(table.name).index("stem_s0_bass")]
    assert np.sqrt(np.mean(bass**2)) > 0.3
    # the noise burst of the recordings decays from its first sample: the clip starts at the onset
    burst = clips[list(table.name).index("strum_burst")]
    assert np.abs(burst[: SAMPLE_RATE // 50]).max() > 0.25


def test_missing_sources_say_what_to_install(tmp_path) -> None:
    with pytest.raises(RealsetError, match="apt-get install hydrogen-drumkits-effects.*strum_clips: 0"):
        build(CFG, pd.DataFrame(columns=["track", "status", "path"]), {"test": []}, tmp_path, tmp_path / "real")
    off = RealsetConfig(**{**CFG.__dict__, "strum_clips": 0, "stem_songs": 0})
    with pytest.raises(RealsetError, match="empty"):
        build(off, pd.DataFrame(columns=["track", "status", "path"]), {"test": []}, tmp_path, tmp_path / "real")


@pytest.mark.skipif(not Path(ins.DRUMKITS).is_dir(), reason="apt-get install hydrogen-drumkits")
def test_held_out_kits_give_hits_and_sparse_patterns(tmp_path) -> None:
    cfg = RealsetConfig(
        **{**CFG.__dict__, "strum_clips": 0, "stem_songs": 0, "kits": ("HardElectro1",), "seconds": 5.12}
    )
    table = build(cfg, pd.DataFrame(columns=["track", "status", "path"]), {"test": []}, tmp_path, tmp_path / "real")
    assert set(table.kind) == {"hit", "sparse"} and (table.kind == "sparse").sum() == 1
    assert {"hit_hardelectro1_kick", "hit_hardelectro1_hat"} <= set(table.name)
    _, clips = load(tmp_path / "real")
    sparse = clips[list(table.name).index("sparse_hardelectro1")]
    assert (sparse == 0).mean() > 0.2  # silence between the hits
    hat = table.set_index("name").loc["hit_hardelectro1_hat"]
    kick = table.set_index("name").loc["hit_hardelectro1_kick"]
    assert hat.top_db > kick.top_db + 20  # bright and dark
