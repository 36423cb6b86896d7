"""The mel VAE: a 2-D convolutional KL autoencoder over (mel × time), plus its PatchGAN discriminator.

Stable-Diffusion / AudioLDM style: ResNet blocks (GroupNorm + SiLU), stride-2 convolutions between
levels, an optional single-head self-attention in the middle block. A log-mel (B, n_mels, T) is seen
as a one-channel image (B, 1, n_mels, T) and compressed by ``factor = 2 ** (len(multipliers) - 1)``
along both axes into a (B, latent_channels, n_mels / factor, T / factor) Gaussian.

The building blocks (``ResBlock``, ``SelfAttention``, ``Downsample``, ``Upsample``) are shared with
the diffusion U-Net, whose ResNet blocks add a timestep embedding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from audiosr.models.audiosr_vae import AudioSRVAE


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
    """x: (B, C, H, W) -> (B, C, 2H, 2W): nearest-neighbour doubling, then a 3x3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def _middle(channels: int, attention: bool) -> nn.Sequential:
    return nn.Sequential(
        ResBlock(channels, channels),
        SelfAttention(channels) if attention else nn.Identity(),
        ResBlock(channels, channels),
    )


class VAE(nn.Module):
    """KL autoencoder: mel (B, n_mels, T) <-> latent (B, latent_channels, n_mels / factor, T / factor).

    n_mels and T must be divisible by ``factor = 2 ** (len(multipliers) - 1)``.
    """

    def __init__(
        self,
        n_mels: int,
        channels: int,
        multipliers: list[int],
        latent_channels: int,
        num_res_blocks: int,
        attention: bool,
    ):
        super().__init__()
        self.n_mels = n_mels
        self.latent_channels = latent_channels
        self._factor = 2 ** (len(multipliers) - 1)
        if n_mels % self._factor:
            raise ValueError(
                f"VAE: n_mels ({n_mels}) must be divisible by the downsampling factor {self._factor} "
                f"(multipliers {multipliers})"
            )
        widths = [channels * m for m in multipliers]

        encoder: list[nn.Module] = [nn.Conv2d(1, widths[0], 3, padding=1)]
        ch = widths[0]
        for level, width in enumerate(widths):
            for _ in range(num_res_blocks):
                encoder.append(ResBlock(ch, width))
                ch = width
            if level < len(widths) - 1:
                encoder.append(Downsample(ch))
        encoder += [
            _middle(ch, attention),
            group_norm(ch),
            nn.SiLU(),
            nn.Conv2d(ch, 2 * latent_channels, 3, padding=1),
        ]
        self.encoder = nn.Sequential(*encoder)

        decoder: list[nn.Module] = [nn.Conv2d(latent_channels, ch, 3, padding=1), _middle(ch, attention)]
        for level in reversed(range(len(widths))):
            for _ in range(num_res_blocks + 1):
                decoder.append(ResBlock(ch, widths[level]))
                ch = widths[level]
            if level > 0:
                decoder.append(Upsample(ch))
        decoder += [group_norm(ch), nn.SiLU(), nn.Conv2d(ch, 1, 3, padding=1)]
        self.decoder = nn.Sequential(*decoder)

    @property
    def factor(self) -> int:
        """How many mel bins (and frames) one latent position covers, per axis."""
        return self._factor

    def encode(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """mel: (B, n_mels, T) -> (mean, logvar), each (B, latent_channels, n_mels / factor, T / factor)."""
        if mel.ndim != 3 or mel.shape[1] != self.n_mels or mel.shape[2] % self.factor:
            raise ValueError(
                f"VAE.encode: expected mel (B, {self.n_mels}, T) with T divisible by {self.factor}, "
                f"got {tuple(mel.shape)}"
            )
        mean, logvar = self.encoder(mel.unsqueeze(1)).chunk(2, dim=1)
        # Same clamp as Stable Diffusion's DiagonalGaussianDistribution: keeps exp(logvar) finite.
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, latent_channels, n_mels / factor, T / factor) -> mel: (B, n_mels, T)."""
        expected = (self.latent_channels, self.n_mels // self.factor)
        if z.ndim != 4 or tuple(z.shape[1:3]) != expected:
            raise ValueError(
                f"VAE.decode: expected z (B, {expected[0]}, {expected[1]}, T / {self.factor}), got {tuple(z.shape)}"
            )
        return self.decoder(z).squeeze(1)

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """mel: (B, n_mels, T) -> (recon (B, n_mels, T), mean, logvar), decoding a sample of q(z | mel)."""
        mean, logvar = self.encode(mel)
        # reparameterisation trick, Kingma & Welling 2014, §2.4
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        return self.decode(z), mean, logvar


def kl_loss(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)), averaged over all elements (Kingma & Welling 2014, App. B)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean()


class PatchDiscriminator(nn.Module):
    """PatchGAN (Isola et al. 2017): mel image (B, 1, n_mels, T) -> logits (B, 1, h, w), one per patch.

    `layers` stride-2 4x4 convs (h, w ≈ n_mels / 2**layers - 2, T / 2**layers - 2); needs at least
    2**layers * 3 bins and frames per axis. A (B, n_mels, T) mel is accepted too.
    """

    def __init__(self, channels: int = 64, layers: int = 3):
        super().__init__()
        body: list[nn.Module] = [nn.Conv2d(1, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        ch = channels
        for n in range(1, layers + 1):
            out = channels * min(2**n, 8)
            stride = 2 if n < layers else 1
            body += [nn.Conv2d(ch, out, 4, stride=stride, padding=1), group_norm(out), nn.LeakyReLU(0.2)]
            ch = out
        body.append(nn.Conv2d(ch, 1, 4, padding=1))
        self.body = nn.Sequential(*body)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.body(mel.unsqueeze(1) if mel.ndim == 3 else mel)


def d_hinge_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss (Lim & Ye 2017), halved as in taming-transformers."""
    return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())


def g_hinge_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss: -E[D(fake)]."""
    return -fake_logits.mean()


def build_vae(cfg: dict, n_mels: int) -> nn.Module:
    """The VAE for `cfg` = profiles.resolve(profile, "vae", overrides). ``design: audiosr`` is AudioSR's
    network (audiosr.models.audiosr_vae), else this module's."""
    if cfg.get("design") == "audiosr":
        return AudioSRVAE(
            n_mels=n_mels,
            channels=cfg["channels"],
            multipliers=list(cfg["multipliers"]),
            latent_channels=cfg["latent_channels"],
            num_res_blocks=cfg["num_res_blocks"],
            z_channels=cfg["z_channels"],
            dropout=cfg["dropout"],
        )
    return VAE(
        n_mels=n_mels,
        channels=cfg["channels"],
        multipliers=list(cfg["multipliers"]),
        latent_channels=cfg["latent_channels"],
        num_res_blocks=cfg["num_res_blocks"],
        attention=bool(cfg["attention"]),
    )
