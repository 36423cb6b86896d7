"""8-bit inference (audiosr.inference.int8): each quantized layer computes exactly the float layer's map of
its dequantized operands (so the scales and zero points are wired right), the copy leaves the float
network alone and its narrow layers in float (a restore in int8: tests/test_upsample.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from audiosr.inference import int8
from audiosr.models.layers import Upsample
from audiosr.models.vae import build_vae

pytestmark = pytest.mark.skipif(not int8.available(), reason="this torch has no oneDNN quantized kernels")
TOP = 255 if int8.native() else 127


def dequantized(x: torch.Tensor) -> torch.Tensor:
    codes, scale, zero = int8.quantize(x, TOP)
    return scale * (codes.float() - zero)


def dequantized_weight(layer: nn.Module) -> torch.Tensor:
    codes, scale = int8._weights(layer.weight)
    return codes.float() * scale.view(-1, *[1] * (codes.dim() - 1))


def test_quantize_keeps_zero_exact_and_rounds_within_half_a_step() -> None:
    x = torch.randn(2, 16, 8, 12).contiguous(memory_format=torch.channels_last) * 3 + 1
    x[0, :, 0, 0] = 0.0
    codes, scale, zero = int8.quantize(x, TOP)
    assert codes.dtype == torch.uint8 and codes.shape == x.shape
    assert codes.is_contiguous(memory_format=torch.channels_last)
    back = scale * (codes.float() - zero)
    assert (back - x).abs().max() <= scale / 2 * 1.0001
    assert torch.all(back[0, :, 0, 0] == 0)
    assert int(codes.max()) <= TOP
    codes, scale, zero = int8.quantize(torch.zeros(3, 5), TOP)  # silence: no division by a zero range
    assert torch.all(codes == zero)


@pytest.mark.parametrize("stride, kernel", [(1, 3), (2, 3), (1, 1)])
def test_a_quantized_conv_is_the_conv_of_its_dequantized_operands(stride: int, kernel: int) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(32, 48, kernel, stride=stride, padding=kernel // 2).eval()
    x = torch.randn(2, 32, 16, 20).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        got = int8.Int8Conv2d(conv, TOP)(x)
        want = nn.functional.conv2d(dequantized(x), dequantized_weight(conv), conv.bias, stride, kernel // 2)
        plain = conv(x)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert (got - plain).abs().max() < 0.02 * plain.abs().max()  # and 8 bits are close to float


def test_a_quantized_upsample_doubles_then_convolves() -> None:
    torch.manual_seed(1)
    up = Upsample(32).eval()
    x = torch.randn(2, 32, 8, 10)
    with torch.no_grad():
        got = int8.Int8Conv2d(up.conv, TOP, double=True)(x)
        doubled = nn.functional.interpolate(dequantized(x), scale_factor=2.0, mode="nearest")
        want = nn.functional.conv2d(doubled, dequantized_weight(up.conv), up.conv.bias, padding=1)
    assert got.shape == (2, 32, 16, 20)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_a_quantized_linear_is_the_linear_of_its_dequantized_operands() -> None:
    torch.manual_seed(2)
    linear = nn.Linear(64, 96)
    x = torch.randn(3, 7, 64)
    with torch.no_grad():
        got = int8.Int8Linear(linear, TOP)(x)
        want = nn.functional.linear(dequantized(x), dequantized_weight(linear), linear.bias)
    assert got.shape == (3, 7, 96)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_the_8_bit_copy_keeps_the_float_network_and_its_narrow_layers() -> None:
    vae = build_vae(
        {"channels": 32, "multipliers": [1, 2, 4], "latent_channels": 8, "num_res_blocks": 1, "attention": False}, 64
    )
    vae.eval()
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    fast = int8.int8_form(vae)
    assert all(torch.equal(vae.state_dict()[k], v) for k, v in before.items())
    assert not any(isinstance(m, int8.Int8Conv2d) for m in vae.modules())
    assert isinstance(fast.encoder[0], nn.Conv2d) and isinstance(fast.encoder[-1], nn.Conv2d)  # 1 -> 32, 128 -> 16
    assert isinstance(fast.decoder[0], nn.Conv2d) and isinstance(fast.decoder[-1], nn.Conv2d)  # 8 -> 128, 32 -> 1
    quantized = [m for m in fast.modules() if isinstance(m, int8.Int8Conv2d)]
    assert sum(m.double for m in quantized) == 2 and len(quantized) > 20
    mel = torch.randn(2, 64, 128)
    with torch.no_grad():
        ref, out = vae.decode(vae.encode(mel)[0]), fast.decode(fast.encode(mel)[0])
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()
