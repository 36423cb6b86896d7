"""The latent-diffusion U-Net: predicts v for a noisy VAE latent, conditioned by channel concatenation.

ADM-style (Dhariwal & Nichol 2021): a sinusoidal timestep embedding and MLP, ResNet blocks with
scale/shift timestep conditioning, multi-head self-attention at chosen levels and in the middle,
skip connections between mirrored levels, resolution halved / doubled between levels. In AudioSR the
input is the noisy latent ⊕ the degraded input's latent (2 × latent channels) and the output is v.
"""

from __future__ import annotations

import torch
from torch import nn

from audiosr.models.audiosr_unet import AudioSRUNet
from audiosr.models.layers import (
    Downsample,
    LatentUNet,
    ResBlock,
    SelfAttention,
    Upsample,
    group_norm,
    timestep_embedding,
)


class _Block(nn.Module):
    """(B, in, H, W), emb -> (B, out, H, W): a ResNet block, then self-attention where asked."""

    def __init__(self, in_channels: int, out_channels: int, emb_dim: int, attention: bool, heads: int):
        super().__init__()
        self.res = ResBlock(in_channels, out_channels, emb_dim)
        self.attn = SelfAttention(out_channels, heads) if attention else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return self.attn(self.res(x, emb))


class UNet(LatentUNet):
    """x: (B, in_channels, H, W), t: (B,) timesteps in [0, 1000) -> (B, out_channels, H, W).

    Level ``i`` has ``width * multipliers[i]`` channels at resolution H / 2**i; H and W must be
    divisible by ``2 ** (len(multipliers) - 1)``. ``attention_levels`` are 0-based level indices.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int,
        multipliers: list[int],
        attention_levels: list[int],
        num_res_blocks: int,
        heads: int,
    ):
        super().__init__()
        if any(not 0 <= level < len(multipliers) for level in attention_levels):
            raise ValueError(
                f"UNet: attention_levels {attention_levels} must index the {len(multipliers)} levels "
                f"(0-based) of multipliers {multipliers}"
            )
        self.width = width
        self.factor = 2 ** (len(multipliers) - 1)
        emb_dim = 4 * width
        self.time_mlp = nn.Sequential(nn.Linear(width, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.conv_in = nn.Conv2d(in_channels, width, 3, padding=1)

        ch = width
        skip_channels = [ch]
        self.down = nn.ModuleList()
        self.downsamplers = nn.ModuleList()
        for level, mult in enumerate(multipliers):
            blocks = nn.ModuleList()
            for _ in range(num_res_blocks):
                blocks.append(_Block(ch, width * mult, emb_dim, level in attention_levels, heads))
                ch = width * mult
                skip_channels.append(ch)
            self.down.append(blocks)
            if level < len(multipliers) - 1:
                self.downsamplers.append(Downsample(ch))
                skip_channels.append(ch)

        self.middle = nn.ModuleList([_Block(ch, ch, emb_dim, attn, heads) for attn in (True, False)])

        self.up = nn.ModuleList()
        self.upsamplers = nn.ModuleList()
        for level in reversed(range(len(multipliers))):
            blocks = nn.ModuleList()
            out, attn = width * multipliers[level], level in attention_levels
            for _ in range(num_res_blocks + 1):
                blocks.append(_Block(ch + skip_channels.pop(), out, emb_dim, attn, heads))
                ch = out
            self.up.append(blocks)
            if level > 0:
                self.upsamplers.append(Upsample(ch))

        self.out = nn.Sequential(group_norm(ch), nn.SiLU(), nn.Conv2d(ch, out_channels, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def _run(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.time_mlp(timestep_embedding(t, self.width))
        h = self.conv_in(x)
        skips = [h]
        for level, blocks in enumerate(self.down):
            for block in blocks:
                h = block(h, emb)
                skips.append(h)
            if level < len(self.downsamplers):
                h = self.downsamplers[level](h)
                skips.append(h)
        for block in self.middle:
            h = block(h, emb)
        for i, blocks in enumerate(self.up):  # coarsest level first
            for block in blocks:
                h = block(torch.cat([h, skips.pop()], dim=1), emb)
            if i < len(self.upsamplers):
                h = self.upsamplers[i](h)
        return self.out(h)


def build_unet(cfg: dict, latent_channels: int) -> nn.Module:
    """The U-Net for `cfg` = profiles.resolve(profile, "ldm", overrides): in = noisy ⊕ condition latent.
    ``design: audiosr`` is AudioSR's network (audiosr.models.audiosr_unet), else this module's."""
    sizes = {"width": cfg["width"], "num_res_blocks": cfg["num_res_blocks"]}
    sizes |= {"multipliers": list(cfg["multipliers"]), "attention_levels": list(cfg["attention_levels"])}
    if cfg.get("design") == "audiosr":
        heads = {"head_channels": cfg["head_channels"], "transformer_depth": cfg["transformer_depth"]}
        return AudioSRUNet(2 * latent_channels, latent_channels, **sizes, **heads)
    return UNet(2 * latent_channels, latent_channels, **sizes, heads=cfg["heads"])
