"""Trained networks back from their tensors: a model folder (``model.safetensors`` + ``config.json``,
as training exports it) and the builders that turn a state dict and its config into a module in eval
mode. Training and inference both read models through here, so inference never needs the training
code."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from audiosr.models.unet import build_unet
from audiosr.models.vae import build_vae
from audiosr.models.vocoder import build_vocoder


def model_files(path: Path) -> tuple[Path, dict]:
    """(weights file, config) of a model folder; a clear error when a part is missing."""
    path = Path(path)
    missing = [n for n in ("model.safetensors", "config.json") if not (path / n).exists()]
    if missing:
        raise FileNotFoundError(f"{path}: missing {', '.join(missing)}; train it first (dvc repro) or fix the path")
    return path / "model.safetensors", json.loads((path / "config.json").read_text())


def load_model(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(state dict, config) of a model folder; a clear error when a part is missing."""
    weights, config = model_files(path)
    return load_file(str(weights)), config


def load_vae(state: dict, config: dict, device: torch.device) -> torch.nn.Module:
    """A VAE's state dict and exported config -> the VAE on `device`, in eval mode."""
    vae = build_vae(config["arch"], config["n_mels"])
    vae.load_state_dict(state)
    return vae.to(device).eval()


def load_unet(state: dict, config: dict, device: torch.device) -> torch.nn.Module:
    """The latent diffusion U-Net's (EMA) state dict and exported config -> the U-Net on `device`, in eval mode."""
    unet = build_unet(config["arch"], int(config["latent_channels"]))
    unet.load_state_dict(state)
    return unet.to(device).eval()


def load_vocoder(state: dict, config: dict, device: torch.device) -> torch.nn.Module:
    """A vocoder's state dict and exported config -> the generator on `device`, in eval mode."""
    gen = build_vocoder(config["arch"], config["n_mels"])
    gen.load_state_dict(state)
    return gen.to(device).eval()
