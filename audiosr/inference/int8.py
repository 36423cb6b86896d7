"""8-bit inference on a CPU: the networks' wide convolutions and linear layers with int8 weights and uint8
activations, run by oneDNN's quantized kernels, which multiply in 8 bits, add in 32 and return float32.

Weights get one symmetric scale per output channel (the channel's largest magnitude is 127). Activations
get one affine scale per tensor and call, from that tensor's own range (0 included), so nothing is
calibrated and nothing saturates. Everything between the layers (GroupNorm, SiLU, attention, the skips,
the sampler) stays float32, and so do the narrow layers into and out of the mel and the latent (fewer
than MIN_CHANNELS channels in or out), where the signal's precision matters most and the work is small.

On a CPU with VNNI (AVX-512 or AVX-VNNI) a quantized convolution is about 4x faster than its float32 one;
without VNNI oneDNN's 8-bit products saturate above 7-bit activations, so they get 0..127. `int8_form`
makes the quantized copy of a network; the float32 one is left as it is.
"""

from __future__ import annotations

import copy
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from audiosr.models.layers import Upsample

MIN_CHANNELS = 32


def available() -> bool:
    """Whether this torch has oneDNN's quantized kernels for the CPU."""
    return hasattr(torch.ops.onednn, "qconv_pointwise") and "onednn" in torch.backends.quantized.supported_engines


def native() -> bool:
    """Whether 8-bit products run at full range here: a CPU with VNNI."""
    vnni = getattr(torch.cpu, "_is_vnni_supported", None)
    return available() and vnni is not None and bool(vnni())


def quantize(x: torch.Tensor, top: int) -> tuple[torch.Tensor, float, int]:
    """x: a dense float32 tensor -> (its uint8 codes in x's memory layout, scale, zero point), affine over
    x's range with 0 included (so 0 is exact): x ~ scale * (code - zero_point), codes in 0..top."""
    flat = x.as_strided((x.numel(),), (1,), x.storage_offset())  # any dense layout: the same elements
    lo, hi = (float(v) for v in torch.aminmax(flat))
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max(hi - lo, 1e-30) / top
    zero = min(top, max(0, round(-lo / scale)))
    with warnings.catch_warnings():  # torch's quantized dtypes are deprecated; only their kernel is used
        warnings.simplefilter("ignore", UserWarning)
        q = torch.quantize_per_tensor(x, scale, zero, torch.quint8)
    codes = torch.empty(0, dtype=torch.uint8).set_(q.untyped_storage(), 0, q.shape, q.stride())
    return codes, scale, zero


def _weights(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """weight: (out, ...) float -> (int8 codes, float32 scales (out,)): symmetric, per output channel."""
    w = weight.detach().float()
    scale = w.abs().amax(dim=tuple(range(1, w.dim()))).clamp_min(1e-30) / 127
    codes = torch.round(w / scale.view(-1, *[1] * (w.dim() - 1))).clamp(-127, 127).to(torch.int8)
    return codes, scale


class Int8Conv2d(nn.Module):
    """A Conv2d's map in 8 bits. With `double`, the input is first doubled along both axes by nearest
    neighbour (an `Upsample`'s map), on its uint8 codes, which is the same as doubling it first."""

    def __init__(self, conv: nn.Conv2d, top: int, double: bool = False):
        super().__init__()
        codes, self.w_scale = _weights(conv.weight)
        self.w_zero = torch.zeros(len(self.w_scale), dtype=torch.int64)
        self.args = (list(conv.stride), list(conv.padding), list(conv.dilation), conv.groups)
        self.packed = torch.ops.onednn.qconv_prepack(
            codes.contiguous(memory_format=torch.channels_last), self.w_scale, 1.0, 0, *self.args, None
        )
        self.bias = None if conv.bias is None else conv.bias.detach().float()
        self.top, self.double = top, double

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        codes, scale, zero = quantize(x.float().contiguous(memory_format=torch.channels_last), self.top)
        if self.double:
            codes = F.interpolate(codes, scale_factor=2.0, mode="nearest")
        return torch.ops.onednn.qconv_pointwise(
            codes, scale, zero, self.packed, self.w_scale, self.w_zero, self.bias, *self.args,
            1.0, 0, torch.float32, "none", [], "",
        )  # fmt: skip


class Int8Linear(nn.Module):
    """A Linear's map in 8 bits, over the input's last axis."""

    def __init__(self, linear: nn.Linear, top: int):
        super().__init__()
        codes, self.w_scale = _weights(linear.weight)
        self.w_zero = torch.zeros(len(self.w_scale), dtype=torch.int64)
        self.packed = torch.ops.onednn.qlinear_prepack(codes, None)
        self.bias = None if linear.bias is None else linear.bias.detach().float()
        self.top = top

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        codes, scale, zero = quantize(x.float().contiguous(), self.top)
        out = torch.ops.onednn.qlinear_pointwise(
            codes.reshape(-1, x.shape[-1]), scale, zero, self.packed, self.w_scale, self.w_zero, self.bias,
            1.0, 0, torch.float32, "none", [], "",
        )  # fmt: skip
        return out.reshape(*x.shape[:-1], -1)


def _wide(layer: nn.Module) -> bool:
    if isinstance(layer, nn.Conv2d):
        return min(layer.in_channels, layer.out_channels) >= MIN_CHANNELS
    return isinstance(layer, nn.Linear) and min(layer.in_features, layer.out_features) >= MIN_CHANNELS


def int8_form(net: nn.Module | None) -> nn.Module | None:
    """A copy of `net` (eval, no gradients) whose wide Conv2d and Linear layers run in 8 bits; an `Upsample`
    becomes one quantized conv of its doubled input."""
    if net is None:
        return None
    if not available():
        raise RuntimeError("precision int8: this torch build has no oneDNN quantized kernels; use fp32")
    top = 255 if native() else 127
    net = copy.deepcopy(net).eval().requires_grad_(False)
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, Upsample) and _wide(child.conv):
                setattr(parent, name, Int8Conv2d(child.conv, top, double=True))
            elif isinstance(child, nn.Conv2d) and _wide(child):
                setattr(parent, name, Int8Conv2d(child, top))
            elif isinstance(child, nn.Linear) and _wide(child):
                setattr(parent, name, Int8Linear(child, top))
    return net
