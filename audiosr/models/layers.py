"""Layers the networks share: GroupNorm, the ResNet block (with an optional timestep embedding),
multi-head self-attention over an image's positions, stride-2 down- and nearest-neighbour upsampling, and
the sinusoidal timestep embedding. The compact networks (audiosr.models.vae, unet) are built of them; the
AudioSR networks (audiosr_vae, audiosr_unet) use the ones that are AudioSR's too.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """t: (B,) float -> (B, dim): [cos(t·f_k), sin(t·f_k)], f_k = max_period^(-k / (dim/2)) (Vaswani 2017)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 32 groups that always divide `channels` (small models have few channels)."""
    return nn.GroupNorm(math.gcd(32, channels), channels, eps=1e-6)


class ResBlock(nn.Module):
    """x: (B, in, H, W) [, emb: (B, emb_dim)] -> (B, out, H, W).

    norm -> SiLU -> conv -> norm [-> scale/shift from emb] -> SiLU -> dropout -> conv, plus a (1x1
    where channels change) skip. The residual branch's last conv starts at zero, so every block starts
    as the identity.
    """

    def __init__(self, in_channels: int, out_channels: int, emb_dim: int | None = None, dropout: float = 0.0):
        super().__init__()
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, 2 * out_channels)) if emb_dim else None
        self.norm2 = group_norm(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.norm2(h)
        if self.emb is not None:
            # FiLM-style conditioning as in Dhariwal & Nichol 2021 ("AdaGN"): norm(h) * (1 + scale) + shift
            scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
            h = h * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """x: (B, C, H, W) -> (B, C, H, W): multi-head self-attention over the H·W positions, residual."""

    def __init__(self, channels: int, heads: int = 1):
        super().__init__()
        if channels % heads:
            raise ValueError(f"SelfAttention: channels ({channels}) must be divisible by heads ({heads})")
        self.heads = heads
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        # (B, 3C, H, W) -> 3 × (B, heads, H·W, C / heads)
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).transpose(-1, -2)
        out = F.scaled_dot_product_attention(qkv[:, 0], qkv[:, 1], qkv[:, 2])
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class Downsample(nn.Module):
    """x: (B, C, H, W) -> (B, C, H / 2, W / 2) by a stride-2 3x3 conv (H, W even)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """x: (B, C, H, W) -> (B, C, 2H, 2W): nearest-neighbour doubling, then a 3x3 conv.

    With `transposed` set (inference sets it: audiosr.inference.restore.inference_form) and no gradient
    taken, the same map runs as one stride-2 transposed conv of x (`doubled_taps`): 16 instead of 36
    multiplications per input position and channel pair, and no doubled tensor; the same output to float
    rounding, about 2x faster on a CPU. Training never sets it.
    """

    transposed = False

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.transposed and not torch.is_grad_enabled():
            return F.conv_transpose2d(x, doubled_taps(self.conv.weight), self.conv.bias, stride=2, padding=1)
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


# Nearest doubling then a 3-tap kernel w (offsets -1, 0, 1), along one axis: output 2i sees input i - 1
# through w[-1] and input i through w[0] + w[1]; output 2i + 1 sees input i through w[-1] + w[0] and i + 1
# through w[1]. A stride-2 transposed conv with padding 1 sends input j to outputs 2j - 1 + k by tap k, so
# its 4 taps are (w[1], w[0] + w[1], w[-1] + w[0], w[-1]): the rows of _DOUBLING applied to (w[-1], w[0], w[1]).
_DOUBLING = ((0.0, 0.0, 1.0), (0.0, 1.0, 1.0), (1.0, 1.0, 0.0), (1.0, 0.0, 0.0))


def doubled_taps(weight: torch.Tensor) -> torch.Tensor:
    """A 3x3 conv's weight (out, in, 3, 3) -> the (in, out, 4, 4) weight of the stride-2, padding-1 transposed
    conv that equals nearest-neighbour doubling followed by that conv."""
    a = torch.tensor(_DOUBLING, dtype=weight.dtype, device=weight.device)
    return torch.einsum("ky,oiyx,lx->iokl", a, weight, a)


class MelAutoencoder(nn.Module):
    """What both VAEs are: mel (B, n_mels, T) <-> latent (B, latent_channels, n_mels / factor, T / factor).
    A subclass sets n_mels, latent_channels and factor, and gives `_moments` (mel -> the 2·latent_channels
    moments) and `_decode`; the shapes are checked here."""

    n_mels: int
    latent_channels: int
    factor: int  # how many mel bins (and frames) one latent position covers, per axis

    def encode(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """mel: (B, n_mels, T) -> (mean, logvar), each (B, latent_channels, n_mels / factor, T / factor)."""
        if mel.ndim != 3 or mel.shape[1] != self.n_mels or mel.shape[2] % self.factor:
            raise ValueError(
                f"VAE.encode: expected mel (B, {self.n_mels}, T) with T divisible by {self.factor}, "
                f"got {tuple(mel.shape)}"
            )
        mean, logvar = self._moments(mel).chunk(2, dim=1)
        # Same clamp as Stable Diffusion's DiagonalGaussianDistribution: keeps exp(logvar) finite.
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, latent_channels, n_mels / factor, T / factor) -> mel: (B, n_mels, T)."""
        expected = (self.latent_channels, self.n_mels // self.factor)
        if z.ndim != 4 or tuple(z.shape[1:3]) != expected:
            raise ValueError(
                f"VAE.decode: expected z (B, {expected[0]}, {expected[1]}, T / {self.factor}), got {tuple(z.shape)}"
            )
        return self._decode(z)

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """mel: (B, n_mels, T) -> (recon (B, n_mels, T), mean, logvar), decoding a sample of q(z | mel)."""
        mean, logvar = self.encode(mel)
        # reparameterisation trick, Kingma & Welling 2014, §2.4
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        return self.decode(z), mean, logvar

    def _moments(self, mel: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class LatentUNet(nn.Module):
    """What both U-Nets are: x: (B, in_channels, mel, time), t: (B,) timesteps -> (B, out_channels, mel, time),
    both axes divisible by `factor`; a subclass gives `_run`."""

    factor: int

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[2] % self.factor or x.shape[3] % self.factor:
            raise ValueError(
                f"UNet: expected x (B, C, H, W) with H and W divisible by {self.factor}, got {tuple(x.shape)}"
            )
        return self._run(x, t)

    def _run(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError
