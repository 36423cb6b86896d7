"""48 kHz neural vocoders (log-mel -> waveform).

Two generators map a log-mel ``(B, n_mels, T)`` to a wave ``(B, T * hop)``, hop being the mel's
(params `mel.hop`, 480 = 100 frames/s at 48 kHz):

- `HiFiGAN`: the HiFi-GAN V1 generator (Kong et al., 2020), transposed-conv upsampling by 6·5·4·2·2
  with multi-receptive-field residual blocks; AudioSR's vocoder.
- `ISTFTVocoder`: a Vocos-style generator (Siuzdak, 2023), ConvNeXt blocks at frame rate and a head
  predicting the STFT's log-magnitude and phase, synthesised by an inverse STFT; far cheaper on a CPU.

`build_vocoder` picks one from a resolved ``vocoder`` architecture (the profile's, with the params'
overrides and the mel hop as ``hop``: `audiosr.config.VocoderConfig.arch`). Their discriminators and
losses are training's: audiosr.train.discriminators, audiosr.train.losses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

LRELU_SLOPE = 0.1
ARCHS = ("hifigan", "istft")


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
