"""The README's "Restore your own files": its commands and its Python example, run as written (in a folder
holding the files they name, with a tiny random model as the default and as the registry's
`audiosr@baseline`), write what the README says they write."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.test_upsample import build_tiny, music

ROOT = Path(__file__).resolve().parents[1]
REGISTER = """
import sys
from pathlib import Path
import mlflow
from audiosr.registry import log_pipeline
with mlflow.start_run(experiment_id=mlflow.create_experiment("readme", artifact_location=sys.argv[2])):
    log_pipeline(Path(sys.argv[1]), mlflow, tags={"dvc.exp_name": "workspace"})
"""


def readme_block(section: str, language: str) -> str:
    """The first ```language block under the README's `## section`."""
    text = (ROOT / "README.md").read_text()
    part = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.search(rf"```{language}\n(.*?)```", part, re.S).group(1)


@pytest.mark.slow
def test_the_readme_restores_as_it_says(tmp_path, monkeypatch) -> None:
    model = tmp_path / "models" / "pipeline"
    shutil.copytree(build_tiny(tmp_path / "parts"), model)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "AUDIOSR_MODEL": str(model),
        "MLFLOW_TRACKING_URI": store,
    }
    # registered as the package stage does (models:/audiosr@baseline), in a process of its own: MLflow's
    # tracking URI is process-wide
    subprocess.run(
        [sys.executable, "-c", REGISTER, str(model), (tmp_path / "mlartifacts").as_uri()], env=env, check=True
    )
    stereo = np.stack([music(88_200, 44_100), music(88_200, 44_100, seed=1)]).T
    for name, fmt in (("song.mp3", "MP3"), ("live/a.wav", "WAV"), ("live/set/b.flac", "FLAC")):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(tmp_path / name, stereo, 44_100, format=fmt)
    for name in ("old.wav", "take.wav"):
        sf.write(tmp_path / name, stereo[:, 0], 22_050)

    commands = [line.split("#")[0].strip() for line in readme_block("Restore your own files", "bash").splitlines()]
    for command in filter(None, commands):
        out = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, f"{command}: {out.stdout}{out.stderr}"
    for name, rate, channels in (
        ("song_48k.wav", 48_000, 2),
        ("restored/a_48k.wav", 48_000, 2),
        ("restored/set/b_48k.wav", 48_000, 2),
        ("new.flac", 48_000, 1),
        ("take_48k.wav", 48_000, 1),
    ):
        info = sf.info(tmp_path / name)
        assert (info.samplerate, info.channels) == (rate, channels), name
    assert (tmp_path / "old.png").stat().st_size > 0

    (tmp_path / "take_48k.wav").unlink()
    monkeypatch.chdir(tmp_path)
    exec(readme_block("Restore your own files", "python"), {})
    assert sf.info(tmp_path / "take_48k.wav").samplerate == 48_000
