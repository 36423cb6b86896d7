"""Training the vocoder on clean (mel, wave) crops: mel L1, then adversarial + feature matching losses
from `adv_start` on (HiFi-GAN's recipe; the weights are the `lambdas` dict, named like the logged
metrics)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from audiosr.audio import SAMPLE_RATE, MelConfig, write
from audiosr.data.datasets import draw_crops, mel_crops, wave_crops
from audiosr.data.store import SegmentSet
from audiosr.models.vocoder import (
    Discriminators,
    build_vocoder,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    mel_l1_loss,
)
from audiosr.train.distributed import Dist
from audiosr.train.loop import Settings, batch_rng, clip_and_step, rank_slice

VERSION = 1
EXAMPLE_SECONDS = 3


class VocoderTask:
    name = "vocoder"

    def __init__(self, arch: dict, settings: Settings, mel: MelConfig, train: SegmentSet, valid: SegmentSet,
                 d: Dist):
        x = settings.extra
        self.settings, self.train, self.valid, self.d, self.arch, self.mel = settings, train, valid, d, arch, mel
        self.crop = int(x.get("crop_frames", 32))
        self.lambdas = {"mel/l1": 45.0, "adv/gen": float(x.get("adv_weight", 1.0)),
                        "adv/fm": float(x.get("fm_weight", 2.0))}
        self.adv_start = int(x.get("adv_start", 0))
        torch.manual_seed(settings.seed)
        self.gen = build_vocoder(arch, mel.n_mels).to(d.device)
        self.disc = Discriminators(tuple(x.get("discriminators", ["mpd", "mrd"])),
                                   float(x.get("disc_channels_scale", 1.0))).to(d.device)
        self.net, self.net_d = d.wrap(self.gen), d.wrap(self.disc)
        betas = (0.8, 0.99)
        self.modules = {"generator": self.gen, "disc": self.disc}
        self.optimizers = {
            name: torch.optim.AdamW(m.parameters(), settings.lr, betas=betas, weight_decay=settings.weight_decay)
            for name, m in self.modules.items()
        }
        self.samples_per_step = settings.batch
        self.frames = train.mel.shape[-1]

    def step(self, step: int) -> dict[str, float]:
        idx, off = draw_crops(batch_rng(self.settings.seed, step), len(self.train), self.frames, self.crop,
                              self.settings.batch)
        idx, off = rank_slice(idx, self.d), rank_slice(off, self.d)
        mel = mel_crops(self.train, idx, off, self.crop).to(self.d.device)
        wave = wave_crops(self.train, idx, off, self.crop, self.mel.hop).to(self.d.device)
        adversarial = step >= self.adv_start and self.lambdas["adv/gen"] > 0
        out: dict[str, float] = {}
        fake = self.net(mel)
        if adversarial:  # discriminator first, on a detached generator output
            real_logits, _ = self.net_d(wave)
            fake_logits, _ = self.net_d(fake.detach())
            d_loss = discriminator_loss(real_logits, fake_logits)
            d_loss.backward()
            clip_and_step(self.optimizers["disc"], self.disc.parameters(), self.settings.grad_clip)
            out["adv/disc"] = float(d_loss.detach())
        losses = {"mel/l1": mel_l1_loss(fake, wave, self.mel)}
        if adversarial:
            _, real_feats = self.net_d(wave)
            fake_logits, fake_feats = self.net_d(fake)
            losses["adv/gen"] = generator_adversarial_loss(fake_logits)
            losses["adv/fm"] = feature_matching_loss(real_feats, fake_feats)
        total = sum(self.lambdas[k] * v for k, v in losses.items())
        total.backward()
        clip_and_step(self.optimizers["generator"], self.gen.parameters(), self.settings.grad_clip)
        self.optimizers["disc"].zero_grad(set_to_none=True)  # drop what the generator's loss left there
        return {"loss": float(total.detach()), **{k: float(v.detach()) for k, v in losses.items()}, **out}

    def _valid_pairs(self, n: int = 8):
        for i in range(min(n, len(self.valid))):
            mel = torch.from_numpy(np.asarray(self.valid.mel[i, :, : EXAMPLE_SECONDS * 100], dtype=np.float32))
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
                if step == self.settings.validate_every or step == self.settings.steps:
                    write(Path(tmp) / f"target_{k}.wav", wave[0].cpu().numpy(), SAMPLE_RATE)
            mlflow.log_artifacts(tmp, "examples")
        self.gen.train()

    def export(self) -> tuple[dict, dict]:
        config = {"kind": "vocoder", "version": VERSION, "arch": self.arch, "n_mels": self.mel.n_mels,
                  "mel": self.mel.to_dict(), "steps": self.settings.steps}
        return self.gen.state_dict(), config


def load_vocoder(state: dict, config: dict, device: torch.device) -> torch.nn.Module:
    gen = build_vocoder(config["arch"], config["n_mels"])
    gen.load_state_dict(state)
    return gen.to(device).eval()
