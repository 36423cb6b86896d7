"""AudioSR's mel VAE, layer for layer (the `full` profile; design "audiosr").

The KL autoencoder of Latent Diffusion (Rombach et al. 2022) as AudioLDM and AudioSR use it over a log-mel
image: ResNet blocks (GroupNorm with 32 groups, SiLU, dropout), stride-2 convolutions padded at the end
of each axis, a single-head attention block in the middle of both the encoder and the decoder, and 1x1
convolutions between the encoder's moments and the latent (``quant_conv``, ``post_quant_conv``).

The module names are those of AudioSR's checkpoint (``first_stage_model.*``), so its weights load
unchanged (`audiosr.published`). AudioSR lays a mel out as (B, 1, time, mel); this pipeline's mels are
(B, n_mels, T) and its latents (B, C, mel, time), so `encode` and `decode` transpose at their edges.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from audiosr.models.layers import MelAutoencoder, Upsample  # Upsample: its conv named as AudioSR names it


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, channels, eps=1e-6)


class ResnetBlock(nn.Module):
    """x: (B, in, H, W) -> (B, out, H, W): norm, SiLU, conv, norm, SiLU, dropout, conv, plus a 1x1 skip
    where the channels change."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float):
        super().__init__()
        self.norm1 = _norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = _norm(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return (self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x) + h


class AttnBlock(nn.Module):
    """x: (B, C, H, W) -> (B, C, H, W): single-head self-attention over the H·W positions, residual."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = _norm(channels)
        self.q, self.k, self.v = (nn.Conv2d(channels, channels, 1) for _ in range(3))
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        y = self.norm(x)
        q, k, v = (f(y).reshape(b, 1, c, h * w).transpose(-1, -2) for f in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v).transpose(-1, -2).reshape(b, c, h, w)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    """(B, C, H, W) -> (B, C, H / 2, W / 2): zero-pad one row and column at the end, a stride-2 3x3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class _Middle(nn.Module):
    def __init__(self, channels: int, dropout: float):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, dropout)
        self.attn_1 = AttnBlock(channels)
        self.block_2 = ResnetBlock(channels, channels, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class _Level(nn.Module):
    """One resolution: its ResNet blocks (``block``) and, between levels, the resampling conv."""

    def __init__(self, blocks: list[nn.Module], resample: nn.Module | None, name: str):
        super().__init__()
        self.block = nn.ModuleList(blocks)
        if resample is not None:
            setattr(self, name, resample)
        self.resample = name if resample is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.block:
            x = block(x)
        return getattr(self, self.resample)(x) if self.resample else x


class Encoder(nn.Module):
    """(B, 1, H, W) -> moments (B, 2·z_channels, H / f, W / f), f = 2 ** (levels - 1)."""

    def __init__(self, channels: int, multipliers: list[int], num_res_blocks: int, z_channels: int, dropout: float):
        super().__init__()
        self.conv_in = nn.Conv2d(1, channels, 3, padding=1)
        self.down = nn.ModuleList()
        ch = channels
        for level, mult in enumerate(multipliers):
            blocks = []
            for _ in range(num_res_blocks):
                blocks.append(ResnetBlock(ch, channels * mult, dropout))
                ch = channels * mult
            last = level == len(multipliers) - 1
            self.down.append(_Level(blocks, None if last else Downsample(ch), "downsample"))
        self.mid = _Middle(ch, dropout)
        self.norm_out = _norm(ch)
        self.conv_out = nn.Conv2d(ch, 2 * z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.down:
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(self.mid(h))))


class Decoder(nn.Module):
    """z: (B, z_channels, H / f, W / f) -> (B, 1, H, W)."""

    def __init__(self, channels: int, multipliers: list[int], num_res_blocks: int, z_channels: int, dropout: float):
        super().__init__()
        ch = channels * multipliers[-1]
        self.conv_in = nn.Conv2d(z_channels, ch, 3, padding=1)
        self.mid = _Middle(ch, dropout)
        up = []
        for level in reversed(range(len(multipliers))):
            blocks = []
            for _ in range(num_res_blocks + 1):
                blocks.append(ResnetBlock(ch, channels * multipliers[level], dropout))
                ch = channels * multipliers[level]
            up.insert(0, _Level(blocks, Upsample(ch) if level else None, "upsample"))
        self.up = nn.ModuleList(up)  # indexed by level, as in the checkpoint; run coarsest first
        self.norm_out = _norm(ch)
        self.conv_out = nn.Conv2d(ch, 1, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class AudioSRVAE(MelAutoencoder):
    """KL autoencoder: mel (B, n_mels, T) <-> latent (B, latent_channels, n_mels / factor, T / factor).

    The same interface as `audiosr.models.vae.VAE`. n_mels and T must be divisible by
    ``factor = 2 ** (len(multipliers) - 1)``; every level's channels must be a multiple of 32.
    """

    def __init__(
        self,
        n_mels: int,
        channels: int,
        multipliers: list[int],
        latent_channels: int,
        num_res_blocks: int,
        z_channels: int,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.n_mels = n_mels
        self.latent_channels = latent_channels
        self.factor = 2 ** (len(multipliers) - 1)
        if n_mels % self.factor or any(channels * m % 32 for m in multipliers):
            raise ValueError(
                f"vae: n_mels ({n_mels}) must be divisible by {self.factor} and every level's channels "
                f"(channels {channels} × multipliers {multipliers}) a multiple of 32"
            )
        self.encoder = Encoder(channels, multipliers, num_res_blocks, z_channels, dropout)
        self.decoder = Decoder(channels, multipliers, num_res_blocks, z_channels, dropout)
        self.quant_conv = nn.Conv2d(2 * z_channels, 2 * latent_channels, 1)
        self.post_quant_conv = nn.Conv2d(latent_channels, z_channels, 1)

    def _moments(self, mel: torch.Tensor) -> torch.Tensor:
        return self.quant_conv(self.encoder(mel.transpose(1, 2).unsqueeze(1))).transpose(2, 3)

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(z.transpose(2, 3))).squeeze(1).transpose(1, 2)
