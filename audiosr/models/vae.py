"""The mel VAE: a 2-D convolutional KL autoencoder over (mel × time) (its discriminator and losses are
training's: audiosr.train.discriminators, audiosr.train.losses).

Stable-Diffusion / AudioLDM style: ResNet blocks (GroupNorm + SiLU), stride-2 convolutions between
levels, an optional single-head self-attention in the middle block. A log-mel (B, n_mels, T) is seen
as a one-channel image (B, 1, n_mels, T) and compressed by ``factor = 2 ** (len(multipliers) - 1)``
along both axes into a (B, latent_channels, n_mels / factor, T / factor) Gaussian.

The building blocks (audiosr.models.layers) are shared with the diffusion U-Net, whose ResNet blocks add
a timestep embedding.
"""

from __future__ import annotations

import torch
from torch import nn

from audiosr.models.audiosr_vae import AudioSRVAE
from audiosr.models.layers import Downsample, MelAutoencoder, ResBlock, SelfAttention, Upsample, group_norm


def _middle(channels: int, attention: bool) -> nn.Sequential:
    return nn.Sequential(
        ResBlock(channels, channels),
        SelfAttention(channels) if attention else nn.Identity(),
        ResBlock(channels, channels),
    )


class VAE(MelAutoencoder):
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
        self.factor = 2 ** (len(multipliers) - 1)
        if n_mels % self.factor:
            raise ValueError(
                f"VAE: n_mels ({n_mels}) must be divisible by the downsampling factor {self.factor} "
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

    def _moments(self, mel: torch.Tensor) -> torch.Tensor:
        return self.encoder(mel.unsqueeze(1))

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).squeeze(1)


def build_vae(cfg: dict, n_mels: int) -> nn.Module:
    """The VAE for `cfg` = profiles.resolve(profile, "vae", overrides). ``design: audiosr`` is AudioSR's
    network (audiosr.models.audiosr_vae), else this module's."""
    sizes = {k: cfg[k] for k in ("channels", "latent_channels", "num_res_blocks")}
    sizes["multipliers"] = list(cfg["multipliers"])
    if cfg.get("design") == "audiosr":
        return AudioSRVAE(n_mels, **sizes, z_channels=cfg["z_channels"], dropout=cfg["dropout"])
    return VAE(n_mels, **sizes, attention=bool(cfg["attention"]))
