"""The model folder is the contract between training and inference: what the model was trained on (its
window, the peak of its segments, the top of its training cutoffs) is read from its config.json, and a
folder that predates those keys means what version 1 always meant."""

import json
import shutil

import numpy as np
import soundfile as sf

from audiosr.degrade import lowpass
from audiosr.inference.model import FORMAT_1
from audiosr.inference.restore import Pipeline
from tests.test_upsample import build_tiny, write


def test_inference_reads_what_the_model_was_trained_on(tmp_path) -> None:
    folder = build_tiny(tmp_path / "models")
    config = json.loads((folder / "config.json").read_text())
    # 48 kHz noise band-limited at 12 kHz: above a model trained on cutoffs up to 8 kHz, below 16 kHz
    x = lowpass(np.random.default_rng(0).standard_normal((2, 96_000)), 48_000, "butterworth", 8, 12_000)
    src = write(tmp_path / "take.wav", 0.5 * x / np.abs(x).max(), 48_000)
    results = {}
    for name, trained in {"up_to_8k": {"full_band_hz": 8000.0, "peak": 0.25}, "legacy": {}}.items():
        other = tmp_path / name
        shutil.copytree(folder, other)
        cfg = {k: v for k, v in config.items() if k not in FORMAT_1 or k == "segment_frames"}
        (other / "config.json").write_text(json.dumps({**cfg, **trained}))
        pipe = Pipeline.load(other)
        results[name] = pipe.upsample_file(src, tmp_path / f"{name}.wav", steps=1)
        assert (pipe.peak, pipe.full_band_hz) == (trained.get("peak", 0.5), trained.get("full_band_hz", 16_000.0))
    assert results["up_to_8k"].copied and not results["legacy"].copied
    copied, _ = sf.read(tmp_path / "up_to_8k.wav", dtype="float32")
    original, _ = sf.read(src, dtype="float32")
    assert np.abs(copied - original).max() < 1e-4  # written unchanged: the model was not run
