"""The GAN discriminators of training (inference never loads them): the VAE's PatchGAN (Isola et al. 2017)
over mel images; the vocoder's HiFi-GAN multi-period (MPD) and multi-scale (MSD) ones and the
Vocos/UnivNet multi-resolution one (MRD) over STFT magnitudes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

from audiosr.models.layers import group_norm
from audiosr.models.vocoder import LRELU_SLOPE

DISCRIMINATOR_KINDS = ("mpd", "msd", "mrd")
Features = list[list[torch.Tensor]]


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


# --------------------------------------------------------------------------------------------------
# Discriminators. Each maps wave: (B, L) -> (logits: list of (B, ...), features: list of lists of maps).


def _scaled(channels: int, scale: float, multiple: int = 16) -> int:
    """Channels times `scale`, rounded to a multiple of `multiple` (grouped convs need it), at least it."""
    return max(multiple, round(channels * scale / multiple) * multiple)


def _conv_stack(convs: nn.ModuleList, post: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Every sub-discriminator's body: LeakyReLU convs, then a post conv; (flattened logits, each layer's output)."""
    feats = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU_SLOPE)
        feats.append(x)
    x = post(x)
    feats.append(x)
    return x.flatten(1), feats


class PeriodDiscriminator(nn.Module):
    """HiFi-GAN's sub-discriminator over the wave folded into (L / period, period) 2-D.

    wave: (B, L) -> (logits: (B, N), features: list of (B, C, H, period))
    """

    def __init__(self, period: int, channels_scale: float = 1.0) -> None:
        super().__init__()
        self.period = period
        chs = [1] + [_scaled(c, channels_scale) for c in (32, 128, 512, 1024, 1024)]
        strides = (3, 3, 3, 3, 1)
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(c_in, c_out, (5, 1), (s, 1), padding=(2, 0)))
            for c_in, c_out, s in zip(chs[:-1], chs[1:], strides, strict=True)
        )
        self.conv_post = weight_norm(nn.Conv2d(chs[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, n = wave.shape
        pad = (-n) % self.period
        x = F.pad(wave.unsqueeze(1), (0, pad), mode="reflect")
        x = x.view(b, 1, (n + pad) // self.period, self.period)
        return _conv_stack(self.convs, self.conv_post, x)


class ScaleDiscriminator(nn.Module):
    """HiFi-GAN's (MelGAN's) sub-discriminator: strided grouped 1-D convs over the raw wave.

    wave: (B, 1, L) -> (logits: (B, N), features: list of (B, C, L'))
    """

    def __init__(self, channels_scale: float = 1.0, use_spectral_norm: bool = False) -> None:
        super().__init__()
        norm = spectral_norm if use_spectral_norm else weight_norm
        c = [_scaled(x, channels_scale) for x in (128, 256, 512, 1024)]
        # (in, out, kernel, stride, groups)
        layers = [
            (1, c[0], 15, 1, 1),
            (c[0], c[0], 41, 2, 4),
            (c[0], c[1], 41, 2, 16),
            (c[1], c[2], 41, 4, 16),
            (c[2], c[3], 41, 4, 16),
            (c[3], c[3], 41, 1, 16),
            (c[3], c[3], 5, 1, 1),
        ]
        self.convs = nn.ModuleList(norm(nn.Conv1d(i, o, k, s, groups=g, padding=k // 2)) for i, o, k, s, g in layers)
        self.conv_post = norm(nn.Conv1d(c[3], 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return _conv_stack(self.convs, self.conv_post, x)


class ResolutionDiscriminator(nn.Module):
    """Vocos/UnivNet sub-discriminator over one STFT magnitude (B, 1, freq, frames), 2-D convs.

    wave: (B, L) -> (logits: (B, N), features: list of (B, C, F', frames))
    """

    def __init__(self, n_fft: int, hop: int, channels: int = 32) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop = hop
        # (in, out, kernel, stride, padding); the strides halve the frequency axis only
        layers = [
            (1, channels, (7, 5), (1, 1), (3, 2)),
            (channels, channels, (5, 3), (2, 1), (2, 1)),
            (channels, channels, (5, 3), (2, 1), (2, 1)),
            (channels, channels, (5, 3), (2, 1), (2, 1)),
            (channels, channels, (3, 3), (1, 1), (1, 1)),
        ]
        self.convs = nn.ModuleList(weight_norm(nn.Conv2d(*layer)) for layer in layers)
        self.conv_post = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spec = torch.stft(wave, self.n_fft, self.hop, window=self.window, center=True, return_complex=True)
        x = spec.abs().unsqueeze(1)
        return _conv_stack(self.convs, self.conv_post, x)


class MultiPeriodDiscriminator(nn.Module):
    """HiFi-GAN's MPD. wave: (B, L) -> (logits, features), one entry per period."""

    def __init__(self, periods: Sequence[int] = (2, 3, 5, 7, 11), channels_scale: float = 1.0) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, channels_scale) for p in periods)

    def forward(self, wave: torch.Tensor) -> tuple[list[torch.Tensor], Features]:
        return _unzip(d(wave) for d in self.discriminators)


class MultiScaleDiscriminator(nn.Module):
    """HiFi-GAN's MSD: the wave, then 2× and 4× average-pooled. wave: (B, L) -> (logits, features)."""

    def __init__(self, scales: int = 3, channels_scale: float = 1.0) -> None:
        super().__init__()
        # the raw scale uses spectral norm, as in HiFi-GAN
        self.discriminators = nn.ModuleList(
            ScaleDiscriminator(channels_scale, use_spectral_norm=i == 0) for i in range(scales)
        )
        self.pool = nn.AvgPool1d(4, 2, padding=2)

    def forward(self, wave: torch.Tensor) -> tuple[list[torch.Tensor], Features]:
        x = wave.unsqueeze(1)
        outs = []
        for i, d in enumerate(self.discriminators):
            if i > 0:
                x = self.pool(x)
            outs.append(d(x))
        return _unzip(outs)


class MultiResolutionDiscriminator(nn.Module):
    """Vocos/UnivNet MRD over STFT magnitudes. wave: (B, L) -> (logits, features), one per resolution."""

    def __init__(
        self,
        resolutions: Sequence[tuple[int, int]] = ((2048, 512), (1024, 256), (512, 128)),
        channels: int = 32,
    ) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(ResolutionDiscriminator(n_fft, hop, channels) for n_fft, hop in resolutions)

    def forward(self, wave: torch.Tensor) -> tuple[list[torch.Tensor], Features]:
        return _unzip(d(wave) for d in self.discriminators)


def _unzip(outs: Iterable[tuple[torch.Tensor, list[torch.Tensor]]]) -> tuple[list[torch.Tensor], Features]:
    logits, feats = zip(*outs, strict=True)
    return list(logits), list(feats)


class Discriminators(nn.Module):
    """A chosen set of discriminators ('mpd', 'msd', 'mrd') as one.

    wave: (B, L) -> (logits, features) concatenated over the kinds, in the order given.
    `channels_scale` thins every kind (MRD's 32 channels too), for CPU training.
    """

    def __init__(self, kinds: Sequence[str] = ("mpd", "mrd"), channels_scale: float = 1.0) -> None:
        super().__init__()
        unknown = [k for k in kinds if k not in DISCRIMINATOR_KINDS]
        if unknown or not kinds:
            raise ValueError(
                f"vocoder discriminators: unknown kinds {unknown}; choose from {list(DISCRIMINATOR_KINDS)}"
            )
        builders = {
            "mpd": lambda: MultiPeriodDiscriminator(channels_scale=channels_scale),
            "msd": lambda: MultiScaleDiscriminator(channels_scale=channels_scale),
            "mrd": lambda: MultiResolutionDiscriminator(channels=_scaled(32, channels_scale, multiple=8)),
        }
        self.kinds = tuple(kinds)
        self.discriminators = nn.ModuleList(builders[k]() for k in kinds)

    def forward(self, wave: torch.Tensor) -> tuple[list[torch.Tensor], Features]:
        logits: list[torch.Tensor] = []
        feats: Features = []
        for d in self.discriminators:
            lg, ft = d(wave)
            logits += lg
            feats += ft
        return logits, feats
