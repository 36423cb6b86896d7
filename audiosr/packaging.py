"""Writing a pipeline folder: the package stage's (`package`: models/{vae,ldm,vocoder} and the student ->
models/pipeline) and the AudioSR importer's (`write_pipeline`). What the folder holds and how inference
reads it: audiosr.inference.model.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from audiosr.data.store import atomic_dir, write_json
from audiosr.inference.model import PARTS, STUDENT, STUDENT_DIR, VERSION, ModelError
from audiosr.models.load import model_files


def package(models: Path, out: Path, extra: dict | None = None) -> None:
    """models/{vae,ldm,vocoder} and, where there is one, models/distill (the student) -> one pipeline
    folder `out` (written atomically); the parts' weight files are copied as they are."""
    parts = {name: model_files(models / name) for name in PARTS}
    if (models / STUDENT_DIR / "model.safetensors").is_file():  # distill.steps 0 leaves a folder without one
        parts[STUDENT] = model_files(models / STUDENT_DIR)
        if parts[STUDENT][1]["arch"] != parts["ldm"][1]["arch"]:
            raise ModelError(f"{models / STUDENT_DIR}: the student is not the LDM's architecture; re-run distill")
    n_mels = {name: cfg["n_mels"] for name, (_, cfg) in parts.items()}
    if len(set(n_mels.values())) != 1:
        raise ModelError(f"{models}: the parts were trained with different n_mels {n_mels}; re-run training")
    profiles = {name: cfg.get("profile") for name, (_, cfg) in parts.items()}
    if len(set(profiles.values())) != 1:
        raise ModelError(f"{models}: the parts come from different profiles {profiles}; re-run training")
    config = {
        "profile": profiles["vae"],
        "n_mels": n_mels["vae"],
        "mel": parts["vae"][1]["mel"],
        "latent_scale": parts["vae"][1]["scale"],
        **(extra or {}),
    }
    write_pipeline(out, parts, config)


def write_pipeline(out: Path, parts: dict[str, tuple[dict[str, torch.Tensor] | Path, dict]], config: dict) -> None:
    """{part: (state dict or its safetensors file, config)} and the pipeline's own config keys -> the pipeline
    folder `out`, written atomically (one ``<part>.safetensors`` per part and ``config.json``)."""
    config = {"version": VERSION, **config, **{name: cfg for name, (_, cfg) in parts.items()}}
    with atomic_dir(out) as tmp:
        for name, (weights, _) in parts.items():
            dest = tmp / f"{name}.safetensors"
            if isinstance(weights, Path):
                shutil.copyfile(weights, dest)
            else:
                save_file({k: v.contiguous() for k, v in weights.items()}, str(dest))
        write_json(tmp / "config.json", config)
