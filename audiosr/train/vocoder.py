"""Training the vocoder on clean (mel, wave) crops: mel L1 and a multi-resolution log-STFT L1, then
adversarial + feature matching losses from `adv_start` on (HiFi-GAN's recipe plus the STFT term; the
weights are the `lambdas` dict, named like the logged metrics)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from audiosr.audio import SAMPLE_RATE, MelConfig, write
from audiosr.config import VocoderConfig
from audiosr.data.datasets import draw_crops, mel_crops, wave_crops
from audiosr.data.store import SegmentSet
from audiosr.models.vocoder import build_vocoder
from audiosr.train.checkpoint import init_from
from audiosr.train.discriminators import Discriminators
from audiosr.train.distributed import Dist
from audiosr.train.loop import batch_rng, clip_and_step, optimizers, rank_slice
from audiosr.train.losses import discriminator_loss, feature_matching_loss, generator_adversarial_loss, mel_l1_loss

VERSION = 1
EXAMPLE_SECONDS = 3
STFT_SIZES = (512, 1024, 2048)  # the log-STFT loss's resolutions: Hann n_fft, hop n_fft // 4
STFT_FLOOR = 1e-5  # magnitudes are clamped to it before the log (-100 dB)


def stft_l1_loss(wave_hat: torch.Tensor, wave: torch.Tensor) -> torch.Tensor:
    """mean over STFT_SIZES of mean |log|STFT(wave_hat)| - log|STFT(wave)||; waves (B, L).

    The log-spectral distance the evaluation scores, as a loss: every bin counts alike, however quiet,
    where the mel L1 sees only the mel bands' sums (64 bands: the top ones about 1.5 kHz wide)."""
    total = wave.new_zeros(())
    for n_fft in STFT_SIZES:
        window = torch.hann_window(n_fft, device=wave.device)

        def logmag(v: torch.Tensor, n_fft: int = n_fft, window: torch.Tensor = window) -> torch.Tensor:
            spec = torch.stft(v, n_fft, n_fft // 4, window=window, return_complex=True)
            return torch.log(spec.abs().clamp(min=STFT_FLOOR))

        total = total + torch.nn.functional.l1_loss(logmag(wave_hat), logmag(wave))
    return total / len(STFT_SIZES)


class VocoderTask:
    name = "vocoder"

    def __init__(self, cfg: VocoderConfig, mel: MelConfig, train: SegmentSet, valid: SegmentSet, d: Dist):
        self.cfg, self.train, self.valid, self.d, self.arch, self.mel = cfg, train, valid, d, cfg.arch, mel
        if cfg.arch["hop"] != mel.hop:
            raise ValueError(f"vocoder: its hop {cfg.arch['hop']} is not the mel hop {mel.hop}")
        self.crop = cfg.crop_frames
        self.lambdas = {
            "mel/l1": cfg.mel_weight,
            "stft/l1": cfg.stft_weight,
            "adv/gen": cfg.adv_weight,
            "adv/fm": cfg.fm_weight,
        }
        self.adv_start = cfg.adv_start
        torch.manual_seed(cfg.seed)
        self.gen = build_vocoder(cfg.arch, mel.n_mels)
        init_from(self.gen, cfg.init, "vocoder", cfg.arch, "vocoder.init")
        self.gen = self.gen.to(d.device)
        self.disc = Discriminators(cfg.discriminators, cfg.disc_channels_scale).to(d.device)
        self.net, self.net_d = d.wrap(self.gen), d.wrap(self.disc)
        self.modules = {"generator": self.gen, "disc": self.disc}
        self.optimizers = optimizers(self.modules, cfg)
        self.samples_per_step = cfg.batch
        self.frames = train.mel.shape[-1]

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This process's share of step `step`'s (mel, waveform) crops, on the CPU."""
        idx, off = draw_crops(batch_rng(self.cfg.seed, step), len(self.train), self.frames, self.crop, self.cfg.batch)
        idx, off = rank_slice(idx, self.d), rank_slice(off, self.d)
        return mel_crops(self.train, idx, off, self.crop), wave_crops(self.train, idx, off, self.crop, self.mel.hop)

    def step(self, step: int, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        mel, wave = (v.to(self.d.device, non_blocking=True) for v in batch)
        adversarial = step >= self.adv_start and self.lambdas["adv/gen"] > 0
        out: dict[str, float] = {}
        fake = self.net(mel)
        if adversarial:  # discriminator first, on a detached generator output
            real_logits, _ = self.net_d(wave)
            fake_logits, _ = self.net_d(fake.detach())
            d_loss = discriminator_loss(real_logits, fake_logits)
            d_loss.backward()
            clip_and_step(self.optimizers["disc"], self.disc.parameters(), self.cfg.grad_clip)
            out["adv/disc"] = float(d_loss.detach())
        losses = {"mel/l1": mel_l1_loss(fake, wave, self.mel)}
        if self.lambdas["stft/l1"] > 0:
            losses["stft/l1"] = stft_l1_loss(fake, wave)
        if adversarial:
            _, real_feats = self.net_d(wave)
            fake_logits, fake_feats = self.net_d(fake)
            losses["adv/gen"] = generator_adversarial_loss(fake_logits)
            losses["adv/fm"] = feature_matching_loss(real_feats, fake_feats)
        total = sum(self.lambdas[k] * v for k, v in losses.items())
        total.backward()
        clip_and_step(self.optimizers["generator"], self.gen.parameters(), self.cfg.grad_clip)
        self.optimizers["disc"].zero_grad(set_to_none=True)  # drop what the generator's loss left there
        return {"loss": float(total.detach()), **{k: float(v.detach()) for k, v in losses.items()}, **out}

    def _valid_pairs(self, n: int = 8):
        for i in range(min(n, len(self.valid))):
            mel = torch.from_numpy(
                np.asarray(self.valid.mel[i, :, : EXAMPLE_SECONDS * SAMPLE_RATE // self.mel.hop], dtype=np.float32)
            )
            wave = torch.from_numpy(self.valid.audio(i)[: mel.shape[-1] * self.mel.hop])
            yield mel[None].to(self.d.device), wave[None].to(self.d.device)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        self.gen.eval()
        errs = [float(mel_l1_loss(self.gen(mel), wave, self.mel)) for mel, wave in self._valid_pairs()]
        self.gen.train()
        return {"val/mel_l1": float(np.mean(errs)) if errs else float("nan")}

    @torch.no_grad()
    def log_examples(self, mlflow, step: int) -> None:
        self.gen.eval()
        with tempfile.TemporaryDirectory() as tmp:
            for k, (mel, wave) in enumerate(self._valid_pairs(2)):
                write(Path(tmp) / f"vocoder_step{step:06d}_{k}.wav", self.gen(mel)[0].cpu().numpy(), SAMPLE_RATE)
                if step == self.cfg.validate_every or step == self.cfg.steps:
                    write(Path(tmp) / f"target_{k}.wav", wave[0].cpu().numpy(), SAMPLE_RATE)
            mlflow.log_artifacts(tmp, "examples")
        self.gen.train()

    def export(self) -> tuple[dict, dict]:
        config = {
            "kind": "vocoder",
            "version": VERSION,
            "arch": self.arch,
            "n_mels": self.mel.n_mels,
            "mel": self.mel.to_dict(),
            "steps": self.cfg.steps,
        }
        return self.gen.state_dict(), config
