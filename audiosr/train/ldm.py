"""Training the latent diffusion U-Net: v-prediction on VAE latents of clean mels, conditioned by
channel concatenation on the latents of the degraded mels, the condition replaced by a null (zero)
latent `cond_drop` of the time for classifier-free guidance; EMA weights are the exported model.

The frozen VAE encodes every training and validation segment once at start-up (latent means, scaled
by the VAE's stored 1/std), so a step costs only the U-Net.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from audiosr import plots
from audiosr.config import LDMConfig
from audiosr.data.datasets import draw_crops
from audiosr.data.store import SegmentSet
from audiosr.models.diffusion import SCHEDULES, Schedule, guided, sample_dpmpp_2m
from audiosr.models.load import load_vae
from audiosr.models.unet import build_unet
from audiosr.train.checkpoint import init_from
from audiosr.train.distributed import Dist
from audiosr.train.loop import batch_rng, clip_and_step, optimizers, rank_slice

VERSION = 1


def check_vae_matches(vae_cfg: dict, data_meta: dict, where: str) -> None:
    """Stop with both values named when the VAE and the data were made with different mels."""
    if vae_cfg["n_mels"] != data_meta["mel"]["n_mels"]:
        raise ValueError(
            f"the VAE (models/vae) was trained with n_mels={vae_cfg['n_mels']}, but {where} has "
            f"n_mels={data_meta['mel']['n_mels']}; re-run train_vae with the same mel params (dvc repro)"
        )


@torch.no_grad()
def log_latent_mels(mlflow, vae, scale: float, latents: dict[str, torch.Tensor], title: str, artifact: str) -> None:
    """Decode scaled latents (1, C, H, W) with the VAE and log their mels side by side as the figure
    `artifact` (the LDM's and the student's training examples)."""
    device = next(vae.parameters()).device
    mels = {name: vae.decode(z.to(device) / scale)[0].cpu().numpy() for name, z in latents.items()}
    fig = plots.mel_figure(mels, title)
    mlflow.log_figure(fig, artifact)
    plots.close(fig)


@torch.no_grad()
def encode_all(vae, scale: float, mels: np.ndarray, device: torch.device, batch: int = 8) -> torch.Tensor:
    """(N, n_mels, T) mels -> (N, C, n_mels/f, T/f) scaled latent means, on the CPU."""
    out = []
    for i in range(0, len(mels), batch):
        mel = torch.from_numpy(np.asarray(mels[i : i + batch], dtype=np.float32)).to(device)
        out.append((vae.encode(mel)[0] * scale).cpu())
    return torch.cat(out) if out else torch.zeros(0)


class LDMTask:
    name = "ldm"

    def __init__(
        self,
        cfg: LDMConfig,
        vae_state: dict,
        vae_cfg: dict,
        pairs: SegmentSet,
        clean: SegmentSet,
        pairs_valid: SegmentSet,
        clean_valid: SegmentSet,
        d: Dist,
    ):
        self.cfg, self.d, self.arch, self.vae_cfg = cfg, d, cfg.arch, vae_cfg
        for name, s in (("data/pairs/train", pairs), ("data/segments/train", clean)):
            check_vae_matches(vae_cfg, s.meta, name)
        if len(pairs) != len(clean):
            raise ValueError(
                f"data/pairs/train has {len(pairs)} segments, data/segments/train {len(clean)}; "
                "re-run the degrade stage (dvc repro)"
            )
        self.vae = load_vae(vae_state, vae_cfg, d.device)
        scale = float(vae_cfg["scale"])
        self.z_clean = encode_all(self.vae, scale, clean.mel, d.device)
        self.z_cond = encode_all(self.vae, scale, pairs.mel, d.device)
        self.val_clean = encode_all(self.vae, scale, clean_valid.mel[:16], d.device)
        self.val_cond = encode_all(self.vae, scale, pairs_valid.mel[:16], d.device)
        self.factor = int(vae_cfg["factor"])
        self.crop = cfg.crop_frames // self.factor
        self.cond_drop = cfg.cond_drop
        self.ema_decay = cfg.ema_decay
        self.schedule = Schedule(kind=cfg.arch.get("schedule", SCHEDULES[0]))
        self.null = float(cfg.arch.get("null_latent", 0.0)) * scale  # the dropped condition, in scaled units
        bad = [t for t in cfg.validate_timesteps if not 0 <= t < self.schedule.num_steps]
        if bad:
            raise ValueError(f"ldm.validate_timesteps: {bad} outside [0, {self.schedule.num_steps})")
        torch.manual_seed(cfg.seed)
        self.unet = build_unet(cfg.arch, int(vae_cfg["latent_channels"]))
        init_from(self.unet, cfg.init, "ldm", cfg.arch, "ldm.init")
        self.unet = self.unet.to(d.device)
        self.ema = copy.deepcopy(self.unet).requires_grad_(False)
        self.net = d.wrap(self.unet)
        self.modules = {"unet": self.unet, "ema": self.ema}
        self.optimizers = optimizers({"unet": self.unet}, cfg)  # the EMA copy is not trained
        self.samples_per_step = cfg.batch

    def _loss(self, net, x0: torch.Tensor, cond: torch.Tensor, t: torch.Tensor, noise: torch.Tensor):
        x_t = self.schedule.q_sample(x0, t, noise)
        v = net(torch.cat([x_t, cond], 1), t.float())
        return torch.mean((v - self.schedule.v_target(x0, t, noise)) ** 2)

    def step(self, step: int, batch: None = None) -> dict[str, float]:  # its data lives on the device
        b, frames = self.cfg.batch, self.z_clean.shape[-1]
        idx, off = draw_crops(batch_rng(self.cfg.seed, step), len(self.z_clean), frames, self.crop, b)
        # the randomness is drawn for the global batch and then sliced, so N processes under torchrun
        # train on exactly what one process would
        keep = (torch.rand(b) >= self.cond_drop).float().reshape(b, 1, 1, 1)
        t = torch.randint(0, self.schedule.num_steps, (b,))
        noise = torch.randn(b, *self.z_clean.shape[1:-1], self.crop)
        mine = rank_slice(np.arange(b), self.d)
        x0 = torch.stack([self.z_clean[idx[i], ..., off[i] : off[i] + self.crop] for i in mine])
        cond = torch.stack([self.z_cond[idx[i], ..., off[i] : off[i] + self.crop] for i in mine])
        x0, cond, keep, t, noise = (v.to(self.d.device) for v in (x0, cond, keep[mine], t[mine], noise[mine]))
        with torch.autocast(self.d.device.type, dtype=torch.bfloat16, enabled=self.d.device.type == "cuda"):
            loss = self._loss(self.net, x0, cond * keep + self.null * (1 - keep), t, noise)
        loss.backward()
        norm = clip_and_step(self.optimizers["unet"], self.unet.parameters(), self.cfg.grad_clip)
        # EMA with a warm-up (decay grows with the step), so a short CPU run still gets a useful average
        decay = min(self.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(self.ema.parameters(), self.unet.parameters(), strict=True):
                e.lerp_(p, 1 - decay)
        value = float(loss.detach())
        return {"loss": value, "grad_norm": norm}  # loss: the v-prediction MSE

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        if not len(self.val_clean):
            return {}
        gen = torch.Generator().manual_seed(1234)  # the same noise and timesteps at every validation
        x0, cond = self.val_clean.to(self.d.device), self.val_cond.to(self.d.device)
        losses = []
        for t_value in self.cfg.validate_timesteps:
            t = torch.full((len(x0),), t_value, device=self.d.device)
            noise = torch.randn(x0.shape, generator=gen).to(self.d.device)
            losses.append(float(self._loss(self.ema, x0, cond, t, noise)))
        return {"val/v_mse": float(np.mean(losses))}

    @torch.no_grad()
    def log_examples(self, mlflow, step: int) -> None:
        if not len(self.val_clean):
            return
        cond = self.val_cond[:1].to(self.d.device)
        fn = guided(self.ema, cond, torch.full_like(cond, self.null), 1.0)
        gen = torch.Generator().manual_seed(0)
        z = sample_dpmpp_2m(
            fn, torch.randn(cond.shape, generator=gen).to(self.d.device), self.schedule.timesteps(20), self.schedule
        )
        log_latent_mels(
            mlflow,
            self.vae,
            float(self.vae_cfg["scale"]),
            {"condition": cond, "generated": z, "target": self.val_clean[:1]},
            f"LDM (EMA), step {step}, 20 DPM-Solver++ steps",
            f"examples/ldm_step{step:06d}.png",
        )

    def export(self) -> tuple[dict, dict]:
        config = {
            "kind": "ldm",
            "version": VERSION,
            "arch": self.arch,
            "n_mels": self.vae_cfg["n_mels"],
            "latent_channels": self.vae_cfg["latent_channels"],
            "cond_drop": self.cond_drop,
            "schedule": {"num_steps": self.schedule.num_steps, "kind": self.schedule.kind, "prediction": "v"},
            "null_latent": float(self.arch.get("null_latent", 0.0)),
            "steps": self.cfg.steps,
        }
        return self.ema.state_dict(), config
