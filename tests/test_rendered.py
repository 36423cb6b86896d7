"""The rendered source: recorded instruments (FluidR3 GM, Hydrogen kits), held-out test instruments,
full band, determinism, stems that sum to the mixture, and clear errors. Skipped only where Debian's
SoundFont or drum kits are not installed (`make test` does not need them; `.ci/run` installs them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml
from scipy import signal

from audiosr.config import RenderConfig, block
from audiosr.data import instruments as ins
from audiosr.data.rendered import (
    CEILING,
    choose_instruments,
    generate,
    limiter_gain,
    render_track,
    song_instruments,
)
from audiosr.data.score import FILES, STEMS

ROOT = Path(__file__).resolve().parents[1]
installed = Path(ins.SOUNDFONT).is_file() and Path(ins.DRUMKITS).is_dir()
needs_samples = pytest.mark.skipif(not installed, reason="apt-get install fluid-soundfont-gm hydrogen-drumkits")
TRACKS, SECONDS = 6, 3.0


def config(**change) -> RenderConfig:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["data"]["rendered"]
    return block(RenderConfig, {**params, "tracks": TRACKS, "seconds": SECONDS, **change}, "data.rendered")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path], pd.DataFrame]:
    if not installed:
        pytest.skip("apt-get install fluid-soundfont-gm hydrogen-drumkits")
    root = tmp_path_factory.mktemp("rendered")
    folders, measured = generate(root, config(), workers=1)
    return root, folders, measured


def _band_db(x: np.ndarray, lo: float, hi: float = np.inf, sr: int = ins.SAMPLE_RATE) -> float:
    """Power of [lo, hi) Hz relative to the whole, dB (Welch PSD, both channels)."""
    f, psd = signal.welch(x, sr, nperseg=4096)
    psd = psd.sum(axis=0)
    return float(10 * np.log10(psd[(f >= lo) & (f < hi)].sum() / psd.sum() + 1e-30))


@needs_samples
def test_layout_and_stems_sum_to_the_mixture(rendered) -> None:
    root, folders, _ = rendered
    assert [f.parent.name for f in folders] == ["train"] * 4 + ["test"] * 2
    for folder in folders:
        audio = {}
        for name in FILES:
            info = sf.info(folder / f"{name}.wav")
            assert (info.samplerate, info.channels, info.frames, info.subtype) == (
                44_100,
                2,
                SECONDS * 44_100,
                "PCM_16",
            )
            audio[name] = sf.read(folder / f"{name}.wav", always_2d=True)[0].T
        # the limiter's gain is applied to every stem, so its effect cancels: what is left is the
        # conversion of five files to 16 bits (at most a step each)
        assert np.abs(audio["mixture"] - sum(audio[s] for s in STEMS)).max() <= 5 / 32768
        assert np.abs(audio["mixture"]).max() <= CEILING + 1 / 32768
    assert {"instruments.csv", "songs.csv"} <= {p.name for p in root.iterdir()}


@needs_samples
def test_deterministic_for_any_worker_count(rendered, tmp_path: Path) -> None:
    _, folders, _ = rendered
    again, _ = generate(tmp_path, config(), workers=2)
    for a, b in zip(folders, again, strict=True):
        for name in FILES:
            assert (a / f"{name}.wav").read_bytes() == (b / f"{name}.wav").read_bytes(), (a.name, name)


@needs_samples
def test_held_out_instruments_never_in_training(rendered) -> None:
    root, _, _ = rendered
    cfg = config()
    songs = pd.read_csv(root / "songs.csv")
    held = set(cfg.test_programs)
    for row in songs.itertuples():
        programs = {row.bass, row.vocals, *yaml.safe_load(row.other)}
        if row.split == "train":
            assert not programs & held and row.kit not in cfg.test_kits, row
        else:
            assert programs <= held and row.kit in cfg.test_kits, row
    assert set(songs["split"]) == {"train", "test"}


@needs_samples
def test_every_instrument_used_reaches_the_top_and_every_stem_has_energy_above_16k(rendered) -> None:
    _, _, measured = rendered
    cfg = config()
    used = measured[measured["split"] != ""]
    assert (used["top_db"] >= cfg.min_top_db).all()
    assert (measured.loc[measured["split"] == "", "top_db"] < cfg.min_top_db).any()  # the line excludes some
    pools = choose_instruments(cfg, measured)
    for index in (0, TRACKS - 1):  # a training song and a test song
        song = render_track(index, cfg, pools)
        for name in STEMS:
            # the float render, before 16-bit files: a sample set that stops at 11 kHz sits near -150 dB
            assert _band_db(song[name], 16_000, 20_000) > -80, (index, name)


@needs_samples
def test_the_band_measure_tells_full_band_from_band_limited_programs() -> None:
    rows = {r["id"]: r for r in ins.measure_programs(ins.SOUNDFONT, [105, 4])}
    assert rows[105]["name"] == "Banjo" and rows[105]["top_db"] > -40  # recorded to the top
    assert rows[4]["top_db"] < -70  # Rhodes EP: its samples stop far below 16 kHz
    assert rows[105]["edge_hz"] > rows[4]["edge_hz"]


def test_limiter_holds_its_ceiling_without_steps() -> None:
    t = np.arange(44_100) / 44_100
    x = np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)]) * 0.5
    x[:, 20_000:20_200] *= 4  # a burst to 2.0
    g = limiter_gain(x)
    assert np.abs(x * g).max() <= CEILING + 1e-9
    assert g.max() <= 1.0 and g[:15_000].min() == 1.0  # untouched far from the burst
    assert np.abs(np.diff(g)).max() < 0.01  # a smooth gain curve: no clicks


@needs_samples
def test_song_instruments_depend_only_on_seed_and_index() -> None:
    cfg = config()
    measured = pd.DataFrame(
        ins.measure_kits(cfg.drumkits, ins.kit_names(cfg.drumkits))
        + ins.measure_programs(cfg.soundfont, sorted(set(cfg.test_programs) | {37, 53, 1, 25, 18}))
    )
    pools = choose_instruments(config(), measured)
    assert song_instruments(3, cfg, pools) == song_instruments(3, cfg, pools)
    assert [song_instruments(i, cfg, pools) for i in range(TRACKS)] != [
        song_instruments(i, config(seed=1), pools) for i in range(TRACKS)
    ]


def test_bad_params_are_named() -> None:
    with pytest.raises(
        ValueError,
        match=r"data\.rendered\.soundfnt is not a known key; did you mean "
        r"data\.rendered\.soundfont\?",
    ):
        config(soundfnt="x")
    with pytest.raises(ins.InstrumentError, match="fluid-soundfont-gm"):
        ins.Synth("/nonexistent/FluidR3_GM.sf2")
    with pytest.raises(ins.InstrumentError, match="hydrogen-drumkits"):
        ins.kit_names("/nonexistent/drumkits")


@needs_samples
def test_unknown_program_or_kit_lists_what_exists() -> None:
    measured = pd.DataFrame(
        ins.measure_kits(ins.DRUMKITS, ins.kit_names(ins.DRUMKITS)) + ins.measure_programs(ins.SOUNDFONT, [37, 43])
    )
    with pytest.raises(ValueError, match="no kit 'Nope'; kits: .*The Black Pearl 1.0"):
        choose_instruments(config(test_kits=["Nope"], test_programs=[43]), measured)
    with pytest.raises(ValueError, match="125 is not a program of the families used.*bass: "):
        choose_instruments(config(test_programs=[125]), measured)
    with pytest.raises(ins.InstrumentError, match="kits there: .*BJA_Pacific"):
        ins.load_kit(ins.DRUMKITS, "Nope")
