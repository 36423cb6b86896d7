"""Distilling the latent diffusion model into a one-step student (knowledge distillation of a
deterministic sampler, Luhman & Luhman 2021).

The teacher (the LDM's EMA U-Net) maps a noise latent and a condition to a clean latent by
`teacher_steps` DPM-Solver++ (2M) steps with classifier-free guidance: a deterministic function of the
noise. The student, the same U-Net initialised from the teacher's weights, learns that function in one
evaluation at the last timestep (t = 999, where the zero-terminal-SNR schedule has alpha = 0, so its
x0 prediction is -v): x0 = student(noise, condition). Before training it is exactly the teacher sampled
with one step and no guidance, so the loss starts at that baseline.

The teacher's samples are made once, at start-up, for `examples` (noise, condition crop) pairs of the
training split (in float32, so every machine and every process of a torchrun makes the same set), and
for 16 validation crops; a training step is one U-Net pass and backward, as in the LDM's training. The
validation metric `val/x0_mse` is the student's latent MSE to the teacher on the validation crops,
`val/one_step_mse` the teacher's own unguided one-step MSE (the starting point).
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from audiosr.config import DistillConfig
from audiosr.data.datasets import draw_crops
from audiosr.data.store import SegmentSet
from audiosr.models.diffusion import Schedule, guided, one_step, sample_dpmpp_2m
from audiosr.models.load import load_unet, load_vae
from audiosr.progress import bar
from audiosr.train.distributed import Dist
from audiosr.train.ldm import check_vae_matches, encode_all, log_latent_mels
from audiosr.train.loop import batch_rng, clip_and_step, optimizers, rank_slice

VERSION = 1
STUDENT_STEPS = 1  # the student's sampling steps
VALID_CROPS = 16


@torch.no_grad()
def teacher_samples(
    unet: torch.nn.Module,
    noise: torch.Tensor,
    cond: torch.Tensor,
    steps: int,
    guidance: float,
    schedule: Schedule,
    null: float,
    batch: int = 32,
) -> torch.Tensor:
    """The teacher's guided DPM-Solver++ samples for (noise, cond) pairs (N, C, H, W), `batch` at a time;
    `null` is the dropped condition's value (scaled latent units)."""
    out = []
    device = next(unet.parameters()).device
    with bar("distill: teacher samples") as progress:
        task = progress.add_task("teacher", total=len(noise), info=f"{steps} steps, guidance {guidance:g}")
        for i in range(0, len(noise), batch):
            c = cond[i : i + batch].to(device)
            fn = guided(unet, c, torch.full_like(c[:1], null), guidance)
            out.append(sample_dpmpp_2m(fn, noise[i : i + batch].to(device), schedule.timesteps(steps), schedule).cpu())
            progress.update(task, completed=min(len(noise), i + batch))
    return torch.cat(out)


class DistillTask:
    name = "distill"

    def __init__(
        self,
        cfg: DistillConfig,
        vae_state: dict,
        vae_cfg: dict,
        ldm_state: dict,
        ldm_cfg: dict,
        pairs: SegmentSet,
        pairs_valid: SegmentSet,
        d: Dist,
    ):
        self.cfg, self.d, self.vae_cfg, self.ldm_cfg = cfg, d, vae_cfg, ldm_cfg
        check_vae_matches(vae_cfg, pairs.meta, "data/pairs/train")
        if ldm_cfg["latent_channels"] != vae_cfg["latent_channels"] or ldm_cfg["n_mels"] != vae_cfg["n_mels"]:
            raise ValueError("models/ldm was not trained on models/vae's latents; re-run train_ldm (dvc repro)")
        factor = int(vae_cfg["factor"])
        if cfg.crop_frames % factor or cfg.crop_frames > pairs.mel.shape[-1]:
            raise ValueError(
                f"distill.crop_frames: {cfg.crop_frames} must be a multiple of the VAE's downsampling ({factor}) "
                f"and at most the segment's {pairs.mel.shape[-1]} frames"
            )
        self.vae = load_vae(vae_state, vae_cfg, d.device)
        scale = float(vae_cfg["scale"])
        self.schedule = Schedule.of(ldm_cfg)
        null = float(ldm_cfg.get("null_latent", 0.0)) * scale
        teacher = load_unet(ldm_state, ldm_cfg, d.device)
        crop = cfg.crop_frames // factor
        self.cond, self.noise = self._crops(encode_all(self.vae, scale, pairs.mel, d.device), cfg.examples, crop, 1)
        self.val_cond, self.val_noise = self._crops(
            encode_all(self.vae, scale, pairs_valid.mel[:VALID_CROPS], d.device), VALID_CROPS, crop, 2
        )
        self.target = teacher_samples(
            teacher, self.noise, self.cond, cfg.teacher_steps, cfg.guidance, self.schedule, null
        )
        self.val_target = teacher_samples(
            teacher, self.val_noise, self.val_cond, cfg.teacher_steps, cfg.guidance, self.schedule, null
        )
        with torch.no_grad():
            start = one_step(teacher, self.val_noise.to(d.device), self.val_cond.to(d.device), self.schedule)
        self.one_step_mse = float(torch.mean((start.cpu() - self.val_target) ** 2))
        torch.manual_seed(cfg.seed)
        self.student = copy.deepcopy(teacher).train().requires_grad_(True)
        self.net = d.wrap(self.student)
        self.modules = {"student": self.student}
        self.optimizers = optimizers(self.modules, cfg)
        self.samples_per_step = cfg.batch

    def _crops(self, z: torch.Tensor, n: int, crop: int, stream: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n condition crops of `crop` latent frames drawn from z (N, C, H, W), and their noise, seeded."""
        if not len(z):
            raise ValueError("distill: no degraded segments to distil on; check data/pairs (dvc repro)")
        rng = np.random.default_rng([self.cfg.seed, stream])
        idx, off = draw_crops(rng, len(z), z.shape[-1], crop, n)
        cond = torch.stack([z[i, ..., o : o + crop] for i, o in zip(idx, off, strict=True)])
        noise = torch.from_numpy(rng.standard_normal(cond.shape).astype(np.float32))
        return cond, noise

    def step(self, step: int, batch: None = None) -> dict[str, float]:  # its data lives on the device
        idx = batch_rng(self.cfg.seed, step).integers(0, len(self.target), self.cfg.batch)
        mine = rank_slice(idx, self.d)
        noise, cond, target = (v[mine].to(self.d.device) for v in (self.noise, self.cond, self.target))
        with torch.autocast(self.d.device.type, dtype=torch.bfloat16, enabled=self.d.device.type == "cuda"):
            x0 = one_step(self.net, noise, cond, self.schedule)
        loss = torch.mean((x0 - target) ** 2)
        loss.backward()
        norm = clip_and_step(self.optimizers["student"], self.student.parameters(), self.cfg.grad_clip)
        value = float(loss.detach())
        return {"loss": value, "grad_norm": norm}  # loss: the latent MSE to the teacher's sample

    @torch.no_grad()
    def _student_valid(self) -> torch.Tensor:
        self.student.eval()
        x0 = one_step(self.student, self.val_noise.to(self.d.device), self.val_cond.to(self.d.device), self.schedule)
        self.student.train()
        return x0.cpu()

    def validate(self) -> dict[str, float]:
        mse = float(torch.mean((self._student_valid() - self.val_target) ** 2))
        return {"val/x0_mse": mse, "val/one_step_mse": self.one_step_mse}

    @torch.no_grad()
    def log_examples(self, mlflow, step: int) -> None:
        log_latent_mels(
            mlflow,
            self.vae,
            float(self.vae_cfg["scale"]),
            {"condition": self.val_cond[:1], "teacher": self.val_target[:1], "student": self._student_valid()[:1]},
            f"student (1 step) vs teacher ({self.cfg.teacher_steps} steps), step {step}",
            f"examples/distill_step{step:06d}.png",
        )

    def export(self) -> tuple[dict, dict]:
        config = {
            **{k: self.ldm_cfg[k] for k in ("arch", "n_mels", "latent_channels", "schedule")},
            "kind": "student",
            "version": VERSION,
            "sampling_steps": STUDENT_STEPS,
            "teacher": {"steps": self.cfg.teacher_steps, "guidance": self.cfg.guidance},
            "steps": self.cfg.steps,
        }
        return self.student.state_dict(), config
