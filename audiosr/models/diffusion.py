"""The diffusion process (schedule, v-parameterisation) and samplers as pure functions over a denoiser.

k-diffusion style: the schedule, the network and the sampler are separate pieces. A sampler takes a
``model_fn(x_t: (B, ...), t: (B,) float) -> v: (B, ...)``, an initial latent x_T ~ N(0, I), a list of
integer timesteps from high to low (``Schedule.timesteps``), and returns the sample x_0. After the last
listed timestep the sampler jumps to x_0 itself (alpha = 1, sigma = 0).

Conventions: x_t = alpha_t·x_0 + sigma_t·eps with alpha_t² + sigma_t² = 1; lambda_t = log(alpha_t / sigma_t).
With a zero-terminal-SNR schedule alpha_999 = 0, so x_999 is pure noise and lambda_999 = -inf.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Progress = Callable[[int, int], None]


SCHEDULES = ("cosine_zero_terminal_snr", "cosine")


class Schedule:
    """A 1000-step cosine schedule; all per-step tensors are float64 (1000,).

    ``kind``: ``cosine_zero_terminal_snr`` (this project's) clips the betas at 0.999 and rescales to zero
    terminal SNR, spaces sampling steps "trailing" and ends a trajectory at x_0 itself; ``cosine`` is
    AudioSR's (Latent Diffusion's ``make_beta_schedule``): the betas unclipped (alpha-bar reaches ~1e-33 at
    the last step), sampling steps at 1 + multiples of 1000 / steps, and the last step landing on t = 0.
    """

    def __init__(self, num_steps: int = 1000, cosine_s: float = 0.008, kind: str = SCHEDULES[0]):
        if kind not in SCHEDULES:
            raise ValueError(f"schedule: unknown kind {kind!r}; choose one of {', '.join(SCHEDULES)}")
        self.num_steps, self.kind = num_steps, kind
        # Cosine alpha-bar, Nichol & Dhariwal 2021 Eq. 17, turned into betas
        steps = torch.arange(num_steps + 1, dtype=torch.float64) / num_steps
        f = torch.cos((steps + cosine_s) / (1 + cosine_s) * math.pi / 2) ** 2
        betas = 1 - f[1:] / f[:-1]
        if kind == "cosine":
            self.alphas_cumprod = torch.cumprod(1 - betas, dim=0)
            return
        sqrt_ab = torch.cumprod(1 - betas.clamp(max=0.999), dim=0).sqrt()  # clipped: their §3.2
        # Zero terminal SNR, Lin et al. 2024 Alg. 1: shift sqrt(alpha-bar) so its last value is 0, scale so
        # its first value is unchanged.
        first, last = sqrt_ab[0].clone(), sqrt_ab[-1].clone()
        sqrt_ab = (sqrt_ab - last) * first / (first - last)
        self.alphas_cumprod = sqrt_ab**2

    @classmethod
    def of(cls, config: dict) -> Schedule:
        """The schedule a model was trained with: its exported ``schedule`` block (this project's kind
        where a config names none)."""
        block = config.get("schedule") or {}
        return cls(int(block.get("num_steps", 1000)), kind=block.get("kind", SCHEDULES[0]))

    @property
    def end(self) -> tuple[float, float]:
        """(alpha, sigma) where a sampling trajectory ends after its last listed timestep."""
        if self.kind == "cosine":
            return self.alpha(0).item(), self.sigma(0).item()
        return 1.0, 0.0

    def alpha(self, t: torch.Tensor | int) -> torch.Tensor:
        """Integer timesteps t (any shape) -> sqrt(alphas_cumprod[t]), same shape, on t's device."""
        t = torch.as_tensor(t).long()
        return self.alphas_cumprod.to(t.device)[t].sqrt()

    def sigma(self, t: torch.Tensor | int) -> torch.Tensor:
        """Integer timesteps t (any shape) -> sqrt(1 - alphas_cumprod[t]), same shape, on t's device."""
        t = torch.as_tensor(t).long()
        return (1 - self.alphas_cumprod.to(t.device)[t]).sqrt()

    def _coefs(self, x: torch.Tensor, t: torch.Tensor | int) -> tuple[torch.Tensor, torch.Tensor]:
        """alpha_t, sigma_t for a batch x: (B, ...) and t: (B,) or a scalar, shaped to broadcast over x."""
        t = torch.as_tensor(t, device=x.device)
        shape = (-1,) + (1,) * (x.ndim - 1) if t.ndim else ()
        return self.alpha(t).to(x.dtype).reshape(shape), self.sigma(t).to(x.dtype).reshape(shape)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor | int, noise: torch.Tensor) -> torch.Tensor:
        """x0, noise: (B, ...), t: (B,) -> x_t = alpha_t·x0 + sigma_t·noise (Ho et al. 2020, Eq. 4)."""
        a, s = self._coefs(x0, t)
        return a * x0 + s * noise

    def v_target(self, x0: torch.Tensor, t: torch.Tensor | int, noise: torch.Tensor) -> torch.Tensor:
        """v = alpha_t·eps - sigma_t·x0 (Salimans & Ho 2022, §4)."""
        a, s = self._coefs(x0, t)
        return a * noise - s * x0

    def x0_from_v(self, x_t: torch.Tensor, t: torch.Tensor | int, v: torch.Tensor) -> torch.Tensor:
        """x0 = alpha_t·x_t - sigma_t·v (Salimans & Ho 2022, §4)."""
        a, s = self._coefs(x_t, t)
        return a * x_t - s * v

    def eps_from_v(self, x_t: torch.Tensor, t: torch.Tensor | int, v: torch.Tensor) -> torch.Tensor:
        """eps = sigma_t·x_t + alpha_t·v (Salimans & Ho 2022, §4)."""
        a, s = self._coefs(x_t, t)
        return s * x_t + a * v

    def timesteps(self, steps: int) -> list[int]:
        """`steps` timesteps, high to low: "trailing" spacing (Lin et al. 2024, Table 2), 999 first; for
        AudioSR's kind its DDIM's "uniform" one, 1 + multiples of num_steps // steps (at most num_steps - 1
        of them)."""
        if not 1 <= steps <= self.num_steps:
            raise ValueError(f"timesteps: steps must be in [1, {self.num_steps}], got {steps}")
        if self.kind == "cosine":  # the lowest `steps` of them: 1 last (AudioSR's spacing never reaches 1000)
            spaced = [t for t in range(1, self.num_steps + 1, self.num_steps // steps) if t < self.num_steps]
            return spaced[:steps][::-1]
        return [round(self.num_steps - i * self.num_steps / steps) - 1 for i in range(steps)]


def _v(model_fn: ModelFn, x: torch.Tensor, t: int) -> torch.Tensor:
    """The model's v prediction at integer timestep t for the batch x: (B, ...)."""
    return model_fn(x, torch.full((x.shape[0],), float(t), device=x.device))


def _alpha_sigma(schedule: Schedule, t: int | None) -> tuple[float, float]:
    """(alpha_t, sigma_t) as floats; t = None is the end of the trajectory (`Schedule.end`)."""
    return schedule.end if t is None else (schedule.alpha(t).item(), schedule.sigma(t).item())


def sample_ddim(
    model_fn: ModelFn,
    x: torch.Tensor,
    timesteps: list[int],
    schedule: Schedule,
    progress: Progress | None = None,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    noises: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """DDIM: x: (B, ...) noise at timesteps[0] -> x_0: (B, ...); deterministic at eta = 0.

    eta > 0 adds fresh noise each step, eta = 1 being DDPM's posterior variance (Song et al. 2021, Eq. 16):
    `noises[i]` (one standard normal tensor like x per step) or drawn from `generator`. `progress(step,
    total)` is called after each network evaluation.
    """
    for i, t in enumerate(timesteps):
        v = _v(model_fn, x, t)
        x0, eps = schedule.x0_from_v(x, t, v), schedule.eps_from_v(x, t, v)
        a, s = _alpha_sigma(schedule, t)
        a_next, s_next = _alpha_sigma(schedule, timesteps[i + 1] if i + 1 < len(timesteps) else None)
        # Song et al. 2021, Eq. 12 and 16, in alpha-bar = alpha²: sigma_t² = eta²·(1 - ab')/(1 - ab)·(1 - ab/ab')
        noise_sd = eta * math.sqrt(s_next**2 / s**2 * (1 - a**2 / a_next**2)) if eta and s > 0 else 0.0
        if not noise_sd:
            x = a_next * x0 + s_next * eps  # Song et al. 2021, Eq. 12 with sigma_t = 0
        else:
            x = a_next * x0 + math.sqrt(max(s_next**2 - noise_sd**2, 0.0)) * eps
            z = noises[i] if noises is not None else torch.randn(x.shape, generator=generator)
            x = x + noise_sd * z.to(x.device)
        if progress is not None:
            progress(i + 1, len(timesteps))
    return x


def sample_dpmpp_2m(
    model_fn: ModelFn,
    x: torch.Tensor,
    timesteps: list[int],
    schedule: Schedule,
    progress: Progress | None = None,
) -> torch.Tensor:
    """DPM-Solver++(2M), data prediction (Lu et al. 2022, Alg. 2): x: (B, ...) at timesteps[0] -> x_0.

    Zero terminal SNR: at t = 999 lambda = -inf, so the step size h is infinite and the step is first
    order, x_next = alpha_next·x0 + sigma_next·x (DDIM: at alpha = 0 the noise estimate is x itself);
    the next step's second-order weight h / (2·h_prev) is then 0, so it is first order as well. The last
    step goes to sigma = 0, where the update reduces to the x0 prediction. `progress(step, total)` is
    called after each network evaluation.
    """
    x0_prev, h_prev = None, None
    for i, t in enumerate(timesteps):
        x0 = schedule.x0_from_v(x, t, _v(model_fn, x, t))
        if progress is not None:
            progress(i + 1, len(timesteps))
        if i + 1 == len(timesteps):
            return x0
        a, s = _alpha_sigma(schedule, t)
        a_next, s_next = _alpha_sigma(schedule, timesteps[i + 1])
        lam = math.log(a / s) if a > 0 else -math.inf
        h = math.log(a_next / s_next) - lam
        if x0_prev is None or math.isinf(h_prev):
            d = x0
        else:
            # D = (1 + 1/(2r))·x0_i - 1/(2r)·x0_{i-1}, r = h_prev / h (Alg. 2, line 6)
            w = h / (2 * h_prev)
            d = (1 + w) * x0 - w * x0_prev
        x = (s_next / s) * x - a_next * math.expm1(-h) * d  # Alg. 2, line 7
        x0_prev, h_prev = x0, h
    return x


def guided(model_fn: ModelFn, cond: torch.Tensor, null_cond: torch.Tensor, guidance: float) -> ModelFn:
    """Classifier-free guidance (Ho & Salimans 2022, Eq. 6 in v-form): v_u + guidance·(v_c - v_u).

    `model_fn` is the network, called as model_fn(cat([x_t, cond], 1), t); cond: (B, C_c, H, W) and
    null_cond (broadcastable to cond) are the condition and the dropped condition. The conditional and
    unconditional passes run as one batch of 2B; guidance 1.0 runs only the conditional pass.
    """
    null_cond = null_cond.expand_as(cond)

    def fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if guidance == 1.0:
            return model_fn(torch.cat([x_t, cond], 1), t)
        both = torch.cat([torch.cat([x_t, cond], 1), torch.cat([x_t, null_cond], 1)])
        v_cond, v_uncond = model_fn(both, torch.cat([t, t])).chunk(2)
        return v_uncond + guidance * (v_cond - v_uncond)

    return fn


def one_step(unet: Callable, noise: torch.Tensor, cond: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """A distilled student's sample: x0 predicted from pure noise at the last timestep, in one pass of
    `unet(cat([x_t, cond], 1), t)`. With zero terminal SNR (alpha = 0 there) it is -v.
    noise, cond: (B, C, H, W) -> x0 (B, C, H, W) in float32."""
    t_last = schedule.num_steps - 1
    v = unet(torch.cat([noise, cond], 1), torch.full((len(noise),), float(t_last), device=noise.device))
    return schedule.x0_from_v(noise, t_last, v.float())


def sample_ddim_eta1(
    model_fn: ModelFn,
    x: torch.Tensor,
    timesteps: list[int],
    schedule: Schedule,
    progress: Progress | None = None,
    noises: list[torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """DDIM at eta = 1, AudioSR's default sampler (its generate_batch): fresh noise every step, `noises[i]`
    or drawn from `generator` (see sample_ddim)."""
    return sample_ddim(model_fn, x, timesteps, schedule, progress, eta=1.0, generator=generator, noises=noises)


SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {
    "ddim": sample_ddim,
    "ddim_eta1": sample_ddim_eta1,
    "dpmpp_2m": sample_dpmpp_2m,
}
STOCHASTIC = ("ddim_eta1",)  # the samplers that take a fresh noise per step (`noises`)
