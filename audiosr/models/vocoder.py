"""48 kHz neural vocoders (log-mel -> waveform), their GAN discriminators and losses.

Two generators map a log-mel ``(B, n_mels, T)`` to a wave ``(B, T * hop)``, hop being the mel's
(params `mel.hop`, 480 = 100 frames/s at 48 kHz):

- `HiFiGAN`: the HiFi-GAN V1 generator (Kong et al., 2020), transposed-conv upsampling by 6·5·4·2·2
  with multi-receptive-field residual blocks; AudioSR's vocoder.
- `ISTFTVocoder`: a Vocos-style generator (Siuzdak, 2023), ConvNeXt blocks at frame rate and a head
  predicting the STFT's log-magnitude and phase, synthesised by an inverse STFT; far cheaper on a CPU.

`build_vocoder` picks one from a resolved ``vocoder`` architecture (the profile's, with the params'
overrides and the mel hop as ``hop``: `audiosr.config.VocoderConfig.arch`). The discriminators are HiFi-GAN's
multi-period (MPD) and multi-scale (MSD) ones and the Vocos/UnivNet multi-resolution one (MRD) over STFT
magnitudes; the losses are LSGAN's, summed over sub-discriminators as HiFi-GAN does. Loss weights are
the training loop's business, not this module's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

from audiosr.audio import MelConfig, log_mel

LRELU_SLOPE = 0.1
ARCHS = ("hifigan", "istft")
DISCRIMINATOR_KINDS = ("mpd", "msd", "mrd")

Features = list[list[torch.Tensor]]


# --------------------------------------------------------------------------------------------------
# HiFi-GAN generator


def _init_conv(conv: nn.Module) -> nn.Module:
    """HiFi-GAN's N(0, 0.01) initialisation, then weight norm."""
    nn.init.normal_(conv.weight, 0.0, 0.01)
    return weight_norm(conv)


def _remove_weight_norm(module: nn.Module) -> None:
    for m in module.modules():
        if parametrize.is_parametrized(m, "weight"):
            parametrize.remove_parametrizations(m, "weight")


class ResBlock(nn.Module):
    """HiFi-GAN's ResBlock1: per dilation, LReLU -> dilated conv -> LReLU -> conv, plus a skip.

    x: (B, C, L) -> (B, C, L)
    """

    def __init__(self, channels: int, kernel_size: int, dilations: Sequence[int]) -> None:
        super().__init__()

        def conv(d: int) -> nn.Module:
            pad = d * (kernel_size - 1) // 2
            return _init_conv(nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=pad))

        self.convs1 = nn.ModuleList(conv(d) for d in dilations)
        self.convs2 = nn.ModuleList(conv(1) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2, strict=True):
            x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
        return x


class HiFiGAN(nn.Module):
    """HiFi-GAN V1-style generator. mel: (B, n_mels, T) -> wave: (B, T * hop) in [-1, 1].

    Each upsampling stage halves the channels; its transposed conv is padded by (kernel - rate) // 2
    as in HiFi-GAN's and AudioSR's code, so a stage whose kernel - rate is odd (AudioSR's 10 / 5) gives a
    sample more than rate × its input, and the wave is cut to T * hop at the end (AudioSR's weights
    then give AudioSR's samples).
    """

    def __init__(
        self,
        n_mels: int,
        upsample_rates: Sequence[int],
        upsample_kernel_sizes: Sequence[int],
        upsample_initial_channel: int,
        resblock_kernel_sizes: Sequence[int],
        resblock_dilation_sizes: Sequence[Sequence[int]],
        *,
        hop: int,
    ) -> None:
        super().__init__()
        if math.prod(upsample_rates) != hop:
            raise ValueError(
                f"vocoder.hifigan.upsample_rates: {list(upsample_rates)} multiply to "
                f"{math.prod(upsample_rates)}, but must multiply to the mel hop {hop} (e.g. [6, 5, 4, 2, 2])"
            )
        if len(upsample_kernel_sizes) != len(upsample_rates):
            raise ValueError("vocoder.hifigan.upsample_kernel_sizes: needs one kernel size per upsample rate")
        if any(k < u for k, u in zip(upsample_kernel_sizes, upsample_rates, strict=True)):
            raise ValueError("vocoder.hifigan.upsample_kernel_sizes: each kernel must be >= its rate")
        if len(resblock_dilation_sizes) != len(resblock_kernel_sizes):
            raise ValueError("vocoder.hifigan.resblock_dilation_sizes: needs one list per resblock kernel size")
        self.hop = hop
        self.num_kernels = len(resblock_kernel_sizes)
        self.conv_pre = weight_norm(nn.Conv1d(n_mels, upsample_initial_channel, 7, padding=3))
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        ch = upsample_initial_channel
        for u, k in zip(upsample_rates, upsample_kernel_sizes, strict=True):
            # output length (L - 1) * u - 2 * pad + k: L * u, or L * u + 1 where k - u is odd
            self.ups.append(_init_conv(nn.ConvTranspose1d(ch, ch // 2, k, u, padding=(k - u) // 2)))
            ch //= 2
            for rk, rd in zip(resblock_kernel_sizes, resblock_dilation_sizes, strict=True):
                self.resblocks.append(ResBlock(ch, rk, rd))
        self.conv_post = weight_norm(nn.Conv1d(ch, 1, 7, padding=3))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel: (B, n_mels, T) -> wave: (B, T * hop)"""
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            x = sum(block(x) for block in blocks) / self.num_kernels
        # the final LReLU uses PyTorch's default slope, as HiFi-GAN's reference code does
        x = self.conv_post(F.leaky_relu(x))
        return torch.tanh(x).squeeze(1)[:, : mel.shape[-1] * self.hop]

    def remove_weight_norm(self) -> None:
        """Fold the weight-norm parametrisations into plain weights, for inference."""
        _remove_weight_norm(self)


# --------------------------------------------------------------------------------------------------
# Vocos-style iSTFT generator


class ConvNeXtBlock(nn.Module):
    """Vocos' 1-D ConvNeXt block: depthwise conv k=7, LayerNorm, Linear-GELU-Linear, layer scale, skip.

    x: (B, dim, T) -> (B, dim, T)
    """

    def __init__(self, dim: int, intermediate_dim: int, layer_scale: float) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.dwconv(x).transpose(1, 2))
        y = self.gamma * self.pwconv2(F.gelu(self.pwconv1(y)))
        return x + y.transpose(1, 2)


class ISTFTVocoder(nn.Module):
    """Vocos-style vocoder. mel: (B, n_mels, T) -> wave: (B, T * hop).

    The head predicts, per frame, log-magnitude and phase (an angle, used through cos / sin) for
    n_fft // 2 + 1 bins; torch.istft (Hann, centred) turns them into T * hop samples. Synthesis frame k
    is centred on sample k * hop, half a hop before mel frame k's centre; the learned phase absorbs
    that constant shift.
    """

    max_magnitude = 1e2  # Vocos' clip: exp() of an untrained head must not overflow

    def __init__(self, n_mels: int, dim: int, intermediate_dim: int, num_layers: int, n_fft: int, *, hop: int) -> None:
        super().__init__()
        if n_fft < hop:
            raise ValueError(f"vocoder.istft.n_fft: must be >= hop ({hop}), got {n_fft}")
        self.hop = hop
        self.n_fft = n_fft
        self.embed = nn.Conv1d(n_mels, dim, 7, padding=3)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(dim, intermediate_dim, layer_scale=1.0 / num_layers) for _ in range(num_layers)
        )
        self.final_norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, n_fft + 2)  # (n_fft // 2 + 1) log-magnitudes and as many phases
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel: (B, n_mels, T) -> wave: (B, T * hop)"""
        x = self.norm(self.embed(mel).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        x = self.head(self.final_norm(x.transpose(1, 2))).transpose(1, 2)  # (B, n_fft + 2, T)
        log_mag, phase = x.chunk(2, dim=1)
        mag = torch.exp(log_mag).clamp(max=self.max_magnitude)
        spec = torch.polar(mag, phase)  # (B, n_fft // 2 + 1, T) complex
        return torch.istft(
            spec,
            self.n_fft,
            hop_length=self.hop,
            window=self.window,
            center=True,
            length=mel.shape[-1] * self.hop,
        )


def build_vocoder(cfg: dict, n_mels: int, hop: int | None = None) -> nn.Module:
    """The vocoder of a resolved ``vocoder`` architecture at the mel hop `hop`; None takes ``cfg["hop"]``
    (a trained model's config records it; configs written before it did name it in their istft block, and
    a HiFi-GAN's is the product of its upsample rates)."""
    arch = cfg["arch"]
    if arch not in ARCHS:
        raise ValueError(f"vocoder.arch: unknown architecture {arch!r}; choose one of {list(ARCHS)}")
    block = {k: v for k, v in cfg[arch].items() if k != "hop"}
    if hop is None:
        hop = cfg.get("hop", cfg[arch].get("hop"))
    if hop is None:
        if arch != "hifigan":
            raise ValueError("vocoder: the architecture names no hop; pass the mel hop")
        hop = math.prod(block["upsample_rates"])
    return HiFiGAN(n_mels, **block, hop=hop) if arch == "hifigan" else ISTFTVocoder(n_mels, **block, hop=hop)


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


# --------------------------------------------------------------------------------------------------
# Losses (LSGAN, Mao et al. 2017, summed over sub-discriminators as in HiFi-GAN)


def discriminator_loss(real_logits: list[torch.Tensor], fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """sum_k mean((1 - D_k(x))^2) + mean(D_k(G(s))^2); pass fake logits of a detached generator output."""
    return sum(torch.mean((1 - r) ** 2) + torch.mean(f**2) for r, f in zip(real_logits, fake_logits, strict=True))


def generator_adversarial_loss(fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """sum_k mean((1 - D_k(G(s)))^2)"""
    return sum(torch.mean((1 - f) ** 2) for f in fake_logits)


def feature_matching_loss(real_feats: Features, fake_feats: Features) -> torch.Tensor:
    """sum over sub-discriminators and layers of mean |D(x) - D(G(s))|; the real maps are constants."""
    return sum(
        torch.mean(torch.abs(r.detach() - g))
        for real, fake in zip(real_feats, fake_feats, strict=True)
        for r, g in zip(real, fake, strict=True)
    )


def mel_l1_loss(wave_hat: torch.Tensor, wave: torch.Tensor, mel_cfg: MelConfig) -> torch.Tensor:
    """mean |log_mel(wave_hat) - log_mel(wave)|; waves (B, L), L a multiple of the hop."""
    return F.l1_loss(log_mel(wave_hat, mel_cfg), log_mel(wave, mel_cfg))
