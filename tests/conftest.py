"""Shared fixtures: a tiny project that went through the real stages (data made by the package's own
segment/degrade steps, then the train_vae, train_vocoder, train_ldm, distill and package stage scripts
run as subprocesses), for the tests of training, evaluation and upsampling."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from audiosr.audio import MelConfig
from audiosr.config import RealsetConfig, block
from audiosr.data.realset import build
from audiosr.data.segments import degrade_split, segment_split

ROOT = Path(__file__).resolve().parents[1]


# The longest test files, collected first: under `make test`'s two workers (pytest-xdist, a file to a worker)
# they start early and the other files fill the other worker, instead of both waiting on them at the end.
LONGEST_FIRST = ("test_pipeline.py", "test_full_profile.py")


def pytest_collection_modifyitems(items: list) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file keeps its order


def tiny_params() -> dict:
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    p["data"]["source"] = "synthetic"  # the fast built-in source: no SoundFont needed
    p["mel"]["n_mels"] = 32
    p["audio"]["segment_seconds"] = 0.64
    p["vae"].update(steps=4, batch=2, crop_frames=32, adv_start=2, validate_every=2, channels=8, latent_channels=4)
    p["vocoder"].update(
        steps=4,
        batch=2,
        crop_frames=8,
        adv_start=2,
        validate_every=2,
        stft_weight=1.0,  # the log-STFT term's code path, off in the defaults
        istft={"dim": 32, "intermediate_dim": 64, "num_layers": 1, "n_fft": 1920},
    )
    p["ldm"].update(steps=6, batch=4, crop_frames=32, validate_every=3, width=16, heads=2)
    p["distill"].update(steps=4, batch=2, crop_frames=32, examples=6, teacher_steps=2, validate_every=2)
    # the real set without Debian packages: the stems of one test song (the synthetic source writes them)
    p["realset"].update(strum_clips=0, kits=[], stem_songs=1, seconds=0.97)  # not whole latent frames
    p["eval"].update(
        cutoffs_hz=[4000, 8000],
        real_cutoffs_hz=[4000, 8000],
        filters=["chebyshev", "boxcar"],
        noises=["none", "tone"],
        clips=2,
        steps=2,
        perceptual=False,
    )
    return p


def run_stage(cmd: list[str], cwd: Path, env: dict, ok: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if ok:
        assert out.returncode == 0, out.stdout + out.stderr
    return out


def stage(name: str) -> list[str]:
    return [sys.executable, str(ROOT / "stages" / f"{name}.py")]


def tone_tracks(folder: Path, n: int) -> pd.DataFrame:
    """n 2-second harmonic tones with a little noise, 44.1 kHz, as a tracks table."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        t = np.arange(2 * 44_100) / 44_100
        x = sum(np.sin(2 * np.pi * 110 * (i + 1) * k * t) / k for k in range(1, 60) if 110 * (i + 1) * k < 20_000)
        x = x + 0.05 * rng.standard_normal(len(t))
        sf.write(folder / f"t{i}.wav", (0.5 * x / np.abs(x).max()).astype(np.float32), 44_100)
        rows.append({"track": f"t{i}", "path": str(folder / f"t{i}.wav")})
    return pd.DataFrame(rows)


def recordings(folder: Path) -> None:
    """Two 1.5 s 'recordings' at 96 kHz / 24 bit: a burst of noise decaying into silence, a plucked tone."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    t = np.arange(int(1.5 * 96_000)) / 96_000
    burst = rng.standard_normal(len(t)) * np.exp(-t / 0.1)
    pluck = sum(np.sin(2 * np.pi * 196 * k * t) / k for k in range(1, 40)) * np.exp(-t / 0.4)
    for name, x in (("burst", burst), ("pluck", pluck)):
        sf.write(folder / f"{name}.flac", 0.5 * x / np.abs(x).max(), 96_000, subtype="PCM_24")


@pytest.fixture(scope="session")
def project(tmp_path_factory) -> tuple[Path, dict]:
    """A working folder with params.yaml, data/{segments,pairs}, models/{vae,vocoder,ldm,distill,pipeline},
    metrics/ and an MLflow store, made by the real stages on tiny params."""
    wd = tmp_path_factory.mktemp("project")
    params = tiny_params()
    # the real set from recordings made here: a decaying noise burst and a plucked tone, as FLAC at 96 kHz
    params["realset"].update(strums=str(wd / "recordings"), strum_clips=2, stem_songs=0)
    recordings(wd / "recordings")
    (wd / "params.yaml").write_text(yaml.safe_dump(params))
    mel = MelConfig.from_params(params["mel"])
    tracks = tone_tracks(wd, 5)
    for split, part in (("train", tracks.iloc[:3]), ("valid", tracks.iloc[3:4]), ("test", tracks.iloc[4:])):
        segment_split(part, wd / "data/segments" / split, wd, params["audio"], mel, workers=1)
        if split != "test":
            degrade_split(
                wd / "data/segments" / split,
                wd / "data/pairs" / split,
                split,
                params["filter"],
                params["noise"],
                0,
                mel,
                workers=1,
            )
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{wd / 'mlflow.db'}",
        "AUDIOSR_CHECKPOINT_EVERY": "2",
        "PYTHONPATH": str(ROOT),
        "AUDIOSR_DEVICE": "cpu",
    }
    no_songs = pd.DataFrame(columns=["track", "status", "path"])
    build(block(RealsetConfig, params["realset"], "realset"), no_songs, {"test": []}, wd, wd / "data/real")
    for name in ("train_vae", "train_vocoder", "train_ldm", "distill", "package"):
        run_stage(stage(name), wd, env)
    return wd, env


def copy_project(project: tuple[Path, dict], dest: Path) -> tuple[Path, dict]:
    """A private copy of the project, for tests that change it."""
    wd, env = project
    shutil.copytree(wd, dest / "p", symlinks=True)
    return dest / "p", {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{dest / 'p' / 'mlflow.db'}"}
