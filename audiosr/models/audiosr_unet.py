"""AudioSR's latent-diffusion U-Net, layer for layer (the `full` profile; design "audiosr").

The network of Liu et al. 2023 (AudioSR), itself the ADM U-Net (Dhariwal & Nichol 2021) as Latent
Diffusion uses it: ResNet blocks that add a projected timestep embedding, and at the chosen levels and in
the middle two spatial transformers (Rombach et al. 2022, §3.3) — both self-attention here, as there is no
cross-attention context — each a GEGLU feed-forward transformer block over the H·W positions.

The module names are those of AudioSR's checkpoint (``model.diffusion_model.*``), so its weights load
unchanged (`audiosr.published`). AudioSR lays a latent out as (B, C, time, mel); this pipeline's latents are
(B, C, mel, time), so `forward` transposes on the way in and out (the network has no positional terms,
so the rest is the same computation).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from audiosr.models.layers import (  # Upsample: its conv named as AudioSR names it
    LatentUNet,
    Upsample,
    timestep_embedding,
)


def _norm(channels: int) -> nn.GroupNorm:
    """The U-Net's GroupNorm: 32 groups, PyTorch's eps (channels must be a multiple of 32)."""
    return nn.GroupNorm(32, channels)


class ResBlock(nn.Module):
    """x: (B, in, H, W), emb: (B, emb_dim) -> (B, out, H, W): norm, SiLU, conv, + emb, norm, SiLU, conv."""

    def __init__(self, in_channels: int, out_channels: int, emb_dim: int, dropout: float = 0.0):
        super().__init__()
        self.in_layers = nn.Sequential(
            _norm(in_channels), nn.SiLU(), nn.Conv2d(in_channels, out_channels, 3, padding=1)
        )
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, out_channels))
        self.out_layers = nn.Sequential(
            _norm(out_channels), nn.SiLU(), nn.Dropout(dropout), nn.Conv2d(out_channels, out_channels, 3, padding=1)
        )
        nn.init.zeros_(self.out_layers[-1].weight)
        nn.init.zeros_(self.out_layers[-1].bias)
        same = in_channels == out_channels
        self.skip_connection = nn.Identity() if same else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x) + self.emb_layers(emb)[:, :, None, None]
        return self.skip_connection(x) + self.out_layers(h)


class Attention(nn.Module):
    """x: (B, N, dim) -> (B, N, dim): multi-head self-attention, no biases on q, k, v."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.to_out = nn.Sequential(nn.Linear(dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = (
            f(x).reshape(b, n, self.heads, d // self.heads).transpose(1, 2) for f in (self.to_q, self.to_k, self.to_v)
        )
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).reshape(b, n, d))


class GEGLU(nn.Module):
    """x: (B, N, dim) -> (B, N, inner): a linear map to 2·inner, one half gated by GELU of the other
    (Shazeer 2020)."""

    def __init__(self, dim: int, inner: int):
        super().__init__()
        self.proj = nn.Linear(dim, 2 * inner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = self.proj(x).chunk(2, dim=-1)
        return x * F.gelu(gate)


class TransformerBlock(nn.Module):
    """x: (B, N, dim) -> (B, N, dim): two pre-norm self-attentions, then a GEGLU feed-forward (4·dim)."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.attn1 = Attention(dim, heads)
        self.ff = nn.Module()
        self.ff.net = nn.Sequential(GEGLU(dim, 4 * dim), nn.Dropout(dropout), nn.Linear(4 * dim, dim))
        self.attn2 = Attention(dim, heads)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x)) + x
        return self.ff.net(self.norm3(x)) + x


class SpatialTransformer(nn.Module):
    """x: (B, C, H, W) -> (B, C, H, W): norm, 1x1 in, transformer blocks over H·W, 1x1 out, residual."""

    def __init__(self, channels: int, heads: int, depth: int):
        super().__init__()
        self.norm = nn.GroupNorm(32, channels, eps=1e-6)
        self.proj_in = nn.Conv2d(channels, channels, 1)
        self.transformer_blocks = nn.ModuleList(TransformerBlock(channels, heads) for _ in range(depth))
        self.proj_out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        y = self.proj_in(self.norm(x)).reshape(b, c, h * w).transpose(1, 2)
        for block in self.transformer_blocks:
            y = block(y)
        return x + self.proj_out(y.transpose(1, 2).reshape(b, c, h, w))


class Downsample(nn.Module):
    """(B, C, H, W) -> (B, C, ceil(H / 2), ceil(W / 2)): a stride-2 3x3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Step(nn.ModuleList):
    """One entry of the U-Net's block lists: layers applied in turn, the ResNet blocks with the embedding."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for layer in self:
            x = layer(x, emb) if isinstance(layer, ResBlock) else layer(x)
        return x


class AudioSRUNet(LatentUNet):
    """x: (B, in_channels, mel, time), t: (B,) timesteps in [0, 1000) -> v: (B, out_channels, mel, time).

    Level ``i`` has ``width * multipliers[i]`` channels at 1 / 2**i of the resolution; at the
    ``attention_levels`` (0-based) and in the middle, each ResNet block is followed by two spatial
    transformers with ``head_channels`` channels per head. Both axes must be divisible by
    ``2 ** (len(multipliers) - 1)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int,
        multipliers: list[int],
        attention_levels: list[int],
        num_res_blocks: int,
        head_channels: int,
        transformer_depth: int = 1,
        dropout: float = 0.0,
    ):
        super().__init__()
        if any(width * m % head_channels or width * m % 32 for m in multipliers):
            raise ValueError(
                f"ldm: every level's channels (width {width} × multipliers {multipliers}) must be a multiple "
                f"of 32 (GroupNorm) and of head_channels {head_channels}"
            )
        self.width = width
        self.factor = 2 ** (len(multipliers) - 1)
        emb_dim = 4 * width
        self.time_embed = nn.Sequential(nn.Linear(width, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))

        def attention(ch: int) -> list[nn.Module]:
            return [SpatialTransformer(ch, ch // head_channels, transformer_depth) for _ in range(2)]

        self.input_blocks = nn.ModuleList([Step([nn.Conv2d(in_channels, width, 3, padding=1)])])
        skips, ch = [width], width
        for level, mult in enumerate(multipliers):
            for _ in range(num_res_blocks):
                layers = [ResBlock(ch, width * mult, emb_dim, dropout)]
                ch = width * mult
                if level in attention_levels:
                    layers += attention(ch)
                self.input_blocks.append(Step(layers))
                skips.append(ch)
            if level < len(multipliers) - 1:
                self.input_blocks.append(Step([Downsample(ch)]))
                skips.append(ch)

        self.middle_block = Step(
            [ResBlock(ch, ch, emb_dim, dropout), *attention(ch), ResBlock(ch, ch, emb_dim, dropout)]
        )

        self.output_blocks = nn.ModuleList()
        for level in reversed(range(len(multipliers))):
            for i in range(num_res_blocks + 1):
                layers = [ResBlock(ch + skips.pop(), width * multipliers[level], emb_dim, dropout)]
                ch = width * multipliers[level]
                if level in attention_levels:
                    layers += attention(ch)
                if level and i == num_res_blocks:
                    layers.append(Upsample(ch))
                self.output_blocks.append(Step(layers))

        self.out = nn.Sequential(_norm(ch), nn.SiLU(), nn.Conv2d(ch, out_channels, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def _run(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.time_embed(timestep_embedding(t, self.width))
        h = x.transpose(2, 3)  # AudioSR's layout: (B, C, time, mel)
        skips = []
        for block in self.input_blocks:
            h = block(h, emb)
            skips.append(h)
        h = self.middle_block(h, emb)
        for block in self.output_blocks:
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        return self.out(h).transpose(2, 3)
