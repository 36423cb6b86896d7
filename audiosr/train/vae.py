"""Training the mel VAE: L1 reconstruction + KL, and a patch discriminator after a warm-up.

After training, the standard deviation of the latent means over the training set is measured and
stored as the model's `scale` (latents are multiplied by 1/std before diffusion, as Stable
Diffusion / AudioLDM do).
"""

from __future__ import annotations

import numpy as np
import torch

from audiosr import plots
from audiosr.audio import MelConfig
from audiosr.config import VAEConfig
from audiosr.data.datasets import draw_crops, mel_crops
from audiosr.data.store import SegmentSet
from audiosr.models.vae import build_vae
from audiosr.train.checkpoint import init_from
from audiosr.train.discriminators import PatchDiscriminator
from audiosr.train.distributed import Dist
from audiosr.train.loop import batch_rng, clip_and_step, optimizers, rank_slice
from audiosr.train.losses import d_hinge_loss, g_hinge_loss, kl_loss

VERSION = 1


class VAETask:
    name = "vae"

    def __init__(self, cfg: VAEConfig, mel: MelConfig, train: SegmentSet, valid: SegmentSet, d: Dist):
        self.cfg, self.train, self.valid, self.d, self.arch, self.mel = cfg, train, valid, d, cfg.arch, mel
        self.crop = cfg.crop_frames
        self.lambdas = {"rec/l1": 1.0, "kl": cfg.kl_weight, "adv/gen": cfg.adv_weight}
        self.adv_start = cfg.adv_start
        torch.manual_seed(cfg.seed)
        self.vae = build_vae(cfg.arch, mel.n_mels)
        init_from(self.vae, cfg.init, "vae", cfg.arch, "vae.init")
        self.vae = self.vae.to(d.device)
        self.disc = PatchDiscriminator(cfg.disc_channels).to(d.device)
        self.net, self.net_d = d.wrap(self.vae), d.wrap(self.disc)
        self.modules = {"vae": self.vae, "disc": self.disc}
        self.optimizers = optimizers(self.modules, cfg)
        self.samples_per_step = cfg.batch
        frames = train.mel.shape[-1]
        align = self.vae.factor
        if self.crop % align:
            raise ValueError(f"vae.crop_frames: {self.crop} must be a multiple of the VAE's downsampling ({align})")
        self.frames = frames
        self.align = align

    def batch(self, step: int) -> torch.Tensor:
        """This process's share of step `step`'s mel crops, on the CPU."""
        idx, off = draw_crops(
            batch_rng(self.cfg.seed, step), len(self.train), self.frames, self.crop, self.cfg.batch, self.align
        )
        return mel_crops(self.train, rank_slice(idx, self.d), rank_slice(off, self.d), self.crop)

    def step(self, step: int, batch: torch.Tensor) -> dict[str, float]:
        mel = batch.to(self.d.device, non_blocking=True)
        adversarial = step >= self.adv_start and self.lambdas["adv/gen"] > 0
        recon, mean, logvar = self.net(mel)
        losses = {"rec/l1": (recon - mel).abs().mean(), "kl": kl_loss(mean, logvar)}
        if adversarial:
            losses["adv/gen"] = g_hinge_loss(self.net_d(recon))
        total = sum(self.lambdas[k] * v for k, v in losses.items())
        total.backward()
        clip_and_step(self.optimizers["vae"], self.vae.parameters(), self.cfg.grad_clip)
        out = {"loss": float(total.detach()), **{k: float(v.detach()) for k, v in losses.items()}}
        self.optimizers["disc"].zero_grad(set_to_none=True)  # drop what the generator's loss left there
        if adversarial:
            d_loss = d_hinge_loss(self.net_d(mel), self.net_d(recon.detach()))
            d_loss.backward()
            clip_and_step(self.optimizers["disc"], self.disc.parameters(), self.cfg.grad_clip)
            out["adv/disc"] = float(d_loss.detach())
        return out

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        self.vae.eval()
        errs = []
        n = min(len(self.valid), 16)
        for i in range(n):
            mel = torch.from_numpy(np.asarray(self.valid.mel[i], dtype=np.float32))[None].to(self.d.device)
            mean, _ = self.vae.encode(mel)
            errs.append(float((self.vae.decode(mean) - mel).abs().mean()))
        self.vae.train()
        return {"val/rec_l1": float(np.mean(errs)) if errs else float("nan")}

    @torch.no_grad()
    def log_examples(self, mlflow, step: int) -> None:
        if not len(self.valid):
            return
        mel = torch.from_numpy(np.asarray(self.valid.mel[0], dtype=np.float32))[None].to(self.d.device)
        recon = self.vae.decode(self.vae.encode(mel)[0])
        fig = plots.mel_figure(
            {"target": mel[0].cpu().numpy(), "reconstruction": recon[0].cpu().numpy()}, f"VAE, step {step}"
        )
        mlflow.log_figure(fig, f"examples/vae_step{step:06d}.png")
        plots.close(fig)

    @torch.no_grad()
    def latent_std(self, max_segments: int = 256) -> float:
        """Std of the latent means over (up to) max_segments training segments, whole length."""
        self.vae.eval()
        values = []
        for i in np.linspace(0, len(self.train) - 1, min(len(self.train), max_segments)).astype(int):
            mel = torch.from_numpy(np.asarray(self.train.mel[i], dtype=np.float32))[None].to(self.d.device)
            values.append(self.vae.encode(mel)[0].flatten().cpu())
        return float(torch.cat(values).std())

    def export(self) -> tuple[dict, dict]:
        config = {
            "kind": "vae",
            "version": VERSION,
            "arch": self.arch,
            "n_mels": self.mel.n_mels,
            "mel": self.mel.to_dict(),
            "scale": 1.0 / self.latent_std(),
            "factor": self.vae.factor,
            "latent_channels": self.arch["latent_channels"],
            "steps": self.cfg.steps,
        }
        return self.vae.state_dict(), config
