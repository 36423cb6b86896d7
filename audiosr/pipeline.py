"""A trained model as one object: load it, upsample a waveform of any length to 48 kHz.

A pipeline folder (``models/pipeline/``, made by the `package` stage) holds ``vae.safetensors``,
``ldm.safetensors`` (EMA weights), ``vocoder.safetensors`` and one ``config.json`` with each part's
config, the profile, the mel settings, the latent scale and a version. The evaluation stage and the
`audiosr upsample` command both run `Pipeline.upsample`: one code path.

Upsampling: resample to 48 kHz, scale each channel to the training peak (0.5), cut into windows of
the model's segment length that overlap by `overlap` seconds, restore windows in batches (mel → VAE
latent → diffusion sampling with classifier-free guidance → VAE decoder → vocoder), overlap-add with
an equal-power crossfade, undo the gain, and keep the input's own spectrum below its detected cutoff
(low-frequency replacement).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from audiosr.audio import SAMPLE_RATE, MelConfig, log_mel, resample
from audiosr.data.store import atomic_dir, write_json
from audiosr.metrics import detect_cutoff
from audiosr.models.diffusion import SAMPLERS, Schedule, guided
from audiosr.train.checkpoint import load_model
from audiosr.train.ldm import load_unet
from audiosr.train.vae import load_vae
from audiosr.train.vocoder import load_vocoder

VERSION = 1
PARTS = ("vae", "ldm", "vocoder")
TRAINING_PEAK = 0.5


class ModelError(ValueError):
    """A model folder that cannot be used; the message names the folder and what is wrong."""


def package(models: Path, out: Path, extra: dict | None = None) -> None:
    """models/{vae,ldm,vocoder} -> one pipeline folder `out` (written atomically)."""
    parts = {name: load_model(models / name) for name in PARTS}
    n_mels = {name: cfg["n_mels"] for name, (_, cfg) in parts.items()}
    if len(set(n_mels.values())) != 1:
        raise ModelError(f"{models}: the parts were trained with different n_mels {n_mels}; re-run training")
    profiles = {name: cfg.get("profile") for name, (_, cfg) in parts.items()}
    if len(set(profiles.values())) != 1:
        raise ModelError(f"{models}: the parts come from different profiles {profiles}; re-run training")
    config = {"version": VERSION, "profile": profiles["vae"], "n_mels": n_mels["vae"], "mel": parts["vae"][1]["mel"],
              "latent_scale": parts["vae"][1]["scale"], **{name: cfg for name, (_, cfg) in parts.items()},
              **(extra or {})}
    with atomic_dir(out) as tmp:
        for name, (state, _) in parts.items():
            save_file(state, str(tmp / f"{name}.safetensors"))
        write_json(tmp / "config.json", config)


@dataclass
class Result:
    wave: np.ndarray  # (channels, samples) float32 at 48 kHz
    sample_rate: int
    cutoff_hz: list[float]  # detected (or given) per channel


class Pipeline:
    def __init__(self, config: dict, vae, unet, vocoder, device: torch.device):
        self.config, self.vae, self.unet, self.vocoder, self.device = config, vae, unet, vocoder, device
        self.mel = MelConfig(**config["mel"])
        self.scale = float(config["latent_scale"])
        self.schedule = Schedule()
        self.segment_frames = int(config.get("segment_frames", 512))

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> Pipeline:
        """Load a pipeline folder; one clear error for a missing folder or part."""
        path = Path(path)
        if not path.is_dir():
            raise ModelError(f"{path}: no such model folder; train one with `make run` (dvc repro) or pass --model")
        missing = [n for n in ("config.json", *(f"{p}.safetensors" for p in PARTS)) if not (path / n).exists()]
        if missing:
            raise ModelError(f"{path}: incomplete model folder, missing {', '.join(missing)}; run `dvc repro package`")
        config = json.loads((path / "config.json").read_text())
        if config.get("version") != VERSION:
            raise ModelError(f"{path}: model format version {config.get('version')}, this audiosr reads {VERSION}")
        device = torch.device(device)
        try:
            vae = load_vae(load_file(str(path / "vae.safetensors")), config["vae"], device)
            unet = load_unet(load_file(str(path / "ldm.safetensors")), config["ldm"], device)
            vocoder = load_vocoder(load_file(str(path / "vocoder.safetensors")), config["vocoder"], device)
        except (RuntimeError, KeyError) as exc:
            raise ModelError(f"{path}: the weights do not match the config ({exc})") from exc
        if hasattr(vocoder, "remove_weight_norm"):
            vocoder.remove_weight_norm()
        return cls(config, vae, unet, vocoder, device)

    @torch.no_grad()
    def restore_windows(self, windows: torch.Tensor, steps: int, guidance: float, sampler: str,
                        generator: torch.Generator) -> torch.Tensor:
        """windows: (B, segment samples) at 48 kHz, peak ~0.5 -> restored (B, segment samples)."""
        mel = log_mel(windows.to(self.device), self.mel)
        cond = self.vae.encode(mel)[0] * self.scale
        noise = torch.randn(cond.shape, generator=generator).to(self.device)
        fn = guided(self.unet, cond, torch.zeros_like(cond[:1]), guidance)
        z = SAMPLERS[sampler](fn, noise, self.schedule.timesteps(steps), self.schedule)
        return self.vocoder(self.vae.decode(z / self.scale)).float().cpu()

    def upsample(self, wave: np.ndarray, sr: int, steps: int = 20, guidance: float = 2.0, seed: int = 0,
                 cutoff_hz: float | None = None, sampler: str = "dpmpp_2m", batch: int = 4, overlap: float = 0.5,
                 progress: Callable[[int, int], None] | None = None) -> Result:
        """wave: (samples,) or (channels, samples) at sr -> Result at 48 kHz, same channels.

        cutoff_hz None detects each channel's bandwidth (the 98.5 % energy bin) for the low-frequency
        replacement; a number uses it for every channel; 0 turns the replacement off.
        """
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler: {sampler!r} is not one of {', '.join(SAMPLERS)}")
        x = np.atleast_2d(np.asarray(wave, dtype=np.float32))
        x48 = resample(x, sr, SAMPLE_RATE) if sr != SAMPLE_RATE else x
        seg = self.segment_frames * self.mel.hop
        hop_s = seg - round(overlap * SAMPLE_RATE / self.mel.hop) * self.mel.hop
        n = x48.shape[1]
        starts = [i * hop_s for i in range(1 + max(0, math.ceil((n - seg) / hop_s)))]
        ov = seg - hop_s
        fade = np.sin(0.5 * np.pi * (np.arange(ov) + 0.5) / ov).astype(np.float32)  # fade², reversed², sum to 1
        gen = torch.Generator().manual_seed(seed)
        out = np.zeros_like(x48)
        cutoffs = []
        total = len(starts) * len(x48)
        done = 0
        for c, channel in enumerate(x48):
            peak = float(np.abs(channel).max())
            cut = detect_cutoff(channel) if cutoff_hz is None else float(cutoff_hz)
            cutoffs.append(cut)
            if peak == 0:  # silence stays silence
                done += len(starts)
                if progress:
                    progress(done, total)
                continue
            gain = TRAINING_PEAK / peak
            acc = np.zeros(starts[-1] + seg, np.float32)
            for b in range(0, len(starts), batch):
                chunk = starts[b : b + batch]
                windows = np.zeros((len(chunk), seg), np.float32)
                for k, s in enumerate(chunk):
                    piece = channel[s : s + seg] * gain
                    windows[k, : len(piece)] = piece
                restored = self.restore_windows(torch.from_numpy(windows), steps, guidance, sampler, gen).numpy()
                for k, s in enumerate(chunk):
                    env = np.ones(seg, np.float32)
                    if s > 0:
                        env[:ov] = fade
                    if s != starts[-1]:
                        env[-ov:] = fade[::-1]
                    acc[s : s + seg] += restored[k] * env
                done += len(chunk)
                if progress:
                    progress(done, total)
            y = acc[:n] / gain
            out[c] = replace_low_band(channel, y, cut) if cut > 0 else y
        return Result(out, SAMPLE_RATE, cutoffs)


def replace_low_band(original: np.ndarray, generated: np.ndarray, cutoff_hz: float, n_fft: int = 2048) -> np.ndarray:
    """Keep `original`'s STFT below cutoff_hz and `generated`'s above it (AudioSR's post-processing).
    Both (samples,) at 48 kHz -> (samples,)."""
    x, y = torch.from_numpy(original), torch.from_numpy(generated)
    window = torch.hann_window(n_fft)
    spec_x = torch.stft(x, n_fft, n_fft // 4, window=window, return_complex=True)
    spec_y = torch.stft(y, n_fft, n_fft // 4, window=window, return_complex=True)
    bins = int(round(cutoff_hz / (SAMPLE_RATE / n_fft)))
    spec_y[:bins] = spec_x[:bins]
    return torch.istft(spec_y, n_fft, n_fft // 4, window=window, length=len(original)).numpy()
