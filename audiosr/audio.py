"""Audio I/O, resampling and the one log-mel front end used by every stage and by inference.

The mel follows AudioSR: 48 kHz, n_fft 2048, hop 480 (100 frames/s), Hann window 2048, a librosa
(Slaney) filterbank from 20 Hz to 24 kHz, natural-log magnitude with a 1e-5 floor. A wave of
``T`` samples (``T`` a multiple of the hop) gives exactly ``T // hop`` frames.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch

SAMPLE_RATE = 48_000


class AudioError(ValueError):
    """A file that cannot be used as audio; the message names the file and what is wrong."""


@dataclass(frozen=True)
class MelConfig:
    sample_rate: int = SAMPLE_RATE
    n_fft: int = 2048
    hop: int = 480
    win: int = 2048
    n_mels: int = 64
    fmin: float = 20.0
    fmax: float = 24_000.0
    floor: float = 1e-5

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_params(cls, mel: dict, sample_rate: int = SAMPLE_RATE) -> MelConfig:
        known = {k: mel[k] for k in ("n_fft", "hop", "win", "n_mels", "fmin", "fmax", "floor") if k in mel}
        return cls(sample_rate=sample_rate, **known)


def read(path: str | Path) -> tuple[np.ndarray, int]:
    """Read any file soundfile reads. Returns (wave: (channels, samples) float32, sample rate).

    Raises AudioError naming the file when it is unreadable, empty or holds NaN/inf samples.
    """
    path = Path(path)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises several types for corrupt files
        raise AudioError(f"{path}: cannot be read as audio ({exc})") from exc
    if data.shape[0] == 0:
        raise AudioError(f"{path}: has no samples (zero-length audio)")
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: contains NaN or infinite samples; repair or remove the file")
    return np.ascontiguousarray(data.T), int(sr)


def temporary(path: Path) -> Path:
    """A new, empty file beside `path` with a name of its own (`.<stem>.<random>.tmp<suffix>`), to be
    written and then renamed over `path`: two writers of one path never share a temporary file."""
    fd, name = tempfile.mkstemp(suffix=f".tmp{path.suffix}", prefix=f".{path.stem}.", dir=path.parent)
    os.close(fd)
    return Path(name)


def write(path: str | Path, wave: np.ndarray, sr: int, subtype: str = "PCM_16") -> None:
    """Write (channels, samples) or (samples,) float audio atomically (temporary name, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary(path)
    data = wave.T if wave.ndim == 2 else wave
    try:
        sf.write(str(tmp), np.clip(data, -1.0, 1.0), sr, subtype=subtype)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def resample(wave: np.ndarray, sr_in: int, sr_out: int = SAMPLE_RATE) -> np.ndarray:
    """(..., samples) at sr_in -> (..., samples * sr_out / sr_in) at sr_out, with soxr's high quality."""
    if sr_in == sr_out:
        return wave.astype(np.float32, copy=False)
    flat = wave.reshape(-1, wave.shape[-1])
    out = soxr.resample(flat.T, sr_in, sr_out, quality="HQ").T
    return np.ascontiguousarray(out.reshape(*wave.shape[:-1], out.shape[-1]), dtype=np.float32)


def to_int16(wave: np.ndarray) -> np.ndarray:
    """Quantise float audio in [-1, 1] to 16-bit PCM, as a file would hold it."""
    return np.round(np.clip(wave, -1.0, 1.0) * 32767.0).astype(np.int16)


def from_int16(pcm: np.ndarray) -> np.ndarray:
    return pcm.astype(np.float32) / 32767.0


@lru_cache(maxsize=8)
def _mel_basis(cfg: MelConfig) -> torch.Tensor:
    import librosa

    basis = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax)
    return torch.from_numpy(basis).float()


@lru_cache(maxsize=8)
def _window(win: int) -> torch.Tensor:
    return torch.hann_window(win)


def log_mel(wave: torch.Tensor | np.ndarray, cfg: MelConfig) -> torch.Tensor:
    """wave: (..., T) -> log-mel: (..., n_mels, T // hop), float32 on the wave's device.

    Reflect-pads (n_fft - hop) / 2 on each side and runs an uncentred STFT, as AudioSR does, so a
    segment of k hops gives exactly k frames.
    """
    x = torch.as_tensor(wave, dtype=torch.float32)
    shape = x.shape
    x = x.reshape(-1, shape[-1])
    pad = (cfg.n_fft - cfg.hop) // 2
    x = torch.nn.functional.pad(x.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    spec = torch.stft(
        x,
        cfg.n_fft,
        hop_length=cfg.hop,
        win_length=cfg.win,
        window=_window(cfg.win).to(x.device),
        center=False,
        return_complex=True,
    )
    mag = spec.abs()
    mel = torch.matmul(_mel_basis(cfg).to(x.device), mag)
    out = torch.log(torch.clamp(mel, min=cfg.floor))
    return out.reshape(*shape[:-1], cfg.n_mels, out.shape[-1])
