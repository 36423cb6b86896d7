"""The `full` profile (AudioSR's networks, 256 mels) end to end on a CPU: `dvc repro` of the whole
pipeline on the tiny data at one or two steps per model and batches of one, then the model it packaged
restoring a file from the command line. It checks that every stage runs these networks, not what they
learn in two steps."""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from audiosr.profiles import PROFILES
from tests.conftest import tiny_params
from tests.test_pipeline import repro_copy, run, small_data
from tests.test_upsample import music, write


def full_params() -> dict:
    params = small_data(tiny_params())
    params["profile"] = "full"
    params["mel"]["n_mels"] = 256
    for part in ("vae", "ldm", "vocoder"):  # the tiny sizes of the small profile do not apply
        for key in [k for k in params[part] if k in PROFILES["small"][part]]:
            del params[part][key]
    # crops: whole latent frames of the VAE (8) and of the U-Net on them (8 x 8); the patch discriminator
    # needs 24 frames
    params["vae"].update(steps=2, batch=1, crop_frames=32, adv_start=1, validate_every=2)
    params["vocoder"].update(steps=2, batch=1, crop_frames=8, adv_start=1, validate_every=2)
    params["ldm"].update(steps=2, batch=1, crop_frames=64, validate_every=2, validate_timesteps=[500])
    params["distill"]["steps"] = 0
    params["eval"].update(
        cutoffs_hz=[8000], real_cutoffs_hz=[8000], filters=["chebyshev"], noises=["none"], clips=1, steps=1
    )
    return params


@pytest.fixture(scope="module")
def full_repo(tmp_path_factory):
    """The repository after `dvc repro` with the full profile, each weight file stored once (hard links
    into DVC's cache, as docs/models.md advises for these sizes); its checkpoints, cache and MLflow
    artifacts take about 14 GB and are removed when the module's tests are done."""
    wd = tmp_path_factory.mktemp("full")
    yield repro_copy(wd, full_params(), cache_type="hardlink,copy")
    shutil.rmtree(wd, ignore_errors=True)


@pytest.mark.slow
def test_the_full_profile_runs_the_whole_pipeline(full_repo, tmp_path) -> None:
    wd, env = full_repo
    config = json.loads((wd / "models/pipeline/config.json").read_text())
    assert config["profile"] == "full" and config["n_mels"] == 256
    assert config["ldm"]["arch"]["design"] == "audiosr" and config["ldm"]["schedule"]["kind"] == "cosine"
    for name in ("eval.json", "eval_real.json"):
        headline = json.loads((wd / "metrics" / name).read_text())
        assert np.isfinite(headline["model_lfr"]["lsd"])
    src = write(tmp_path / "clip.wav", music(24_000, 24_000), 24_000)
    out = run(["audiosr", "upsample", str(src), "--model", str(wd / "models/pipeline"), "-q"], wd, env)
    restored, sr = sf.read(tmp_path / "clip_48k.wav")
    assert sr == 48_000 and len(restored) == 48_000 and np.isfinite(restored).all(), out
