"""VAE, U-Net, schedule and samplers: shapes for both profiles, exactness against oracle denoisers,
and a tiny VAE that learns."""

from __future__ import annotations

import pytest
import torch

from audiosr.models.diffusion import SAMPLERS, Schedule, guided, sample_ddim, sample_dpmpp_2m
from audiosr.models.layers import Upsample
from audiosr.models.unet import build_unet
from audiosr.models.vae import VAE, build_vae
from audiosr.profiles import PROFILES
from audiosr.train.discriminators import PatchDiscriminator
from audiosr.train.losses import d_hinge_loss, g_hinge_loss, kl_loss

N_MELS = {"small": 64, "full": 256}


def _grads_finite(module: torch.nn.Module) -> bool:
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    return bool(grads) and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("profile", ["small", "full"])
def test_vae_shapes_and_backward(profile):
    torch.manual_seed(0)
    cfg = PROFILES[profile]["vae"]
    vae = build_vae(cfg, N_MELS[profile])
    f = vae.factor
    assert f == 2 ** (len(cfg["multipliers"]) - 1)
    mel = torch.randn(1, N_MELS[profile], 2 * f)
    mean, logvar = vae.encode(mel)
    assert mean.shape == logvar.shape == (1, cfg["latent_channels"], N_MELS[profile] // f, 2)
    recon, mean, logvar = vae(mel)
    assert recon.shape == mel.shape
    assert vae.decode(mean).shape == mel.shape
    loss = (recon - mel).abs().mean() + kl_loss(mean, logvar)
    loss.backward()
    assert torch.isfinite(loss) and _grads_finite(vae)


def test_vae_rejects_indivisible_shapes():
    sizes = dict(channels=8, multipliers=[1, 2, 2], latent_channels=2, num_res_blocks=1, attention=True)
    vae = VAE(n_mels=16, **sizes)
    with pytest.raises(ValueError, match=r"\(1, 16, 30\)"):
        vae.encode(torch.randn(1, 16, 30))
    with pytest.raises(ValueError, match=r"\(1, 12, 32\)"):
        vae.encode(torch.randn(1, 12, 32))
    with pytest.raises(ValueError, match="n_mels"):
        VAE(n_mels=18, **sizes)


def test_kl_loss_zero_for_standard_normal():
    assert kl_loss(torch.zeros(2, 3), torch.zeros(2, 3)).item() == 0.0
    assert kl_loss(torch.ones(2, 3), torch.zeros(2, 3)).item() == pytest.approx(0.5)


def test_discriminator_and_hinge_losses():
    disc = PatchDiscriminator(channels=8, layers=3)
    logits = disc(torch.randn(2, 64, 32))
    assert logits.shape == (2, 1, 6, 2)
    real, fake = torch.full((2, 1, 3, 3), 2.0), torch.full((2, 1, 3, 3), -2.0)
    assert d_hinge_loss(real, fake).item() == 0.0  # both beyond the margin
    assert d_hinge_loss(fake, real).item() == pytest.approx(3.0)
    assert g_hinge_loss(fake).item() == pytest.approx(2.0)


@pytest.mark.parametrize("profile", ["small", "full"])
def test_unet_shapes_and_backward(profile):
    torch.manual_seed(0)
    cfg = PROFILES[profile]["ldm"]
    latent = PROFILES[profile]["vae"]["latent_channels"]
    unet = build_unet(cfg, latent)
    f = 2 ** (len(cfg["multipliers"]) - 1)
    x = torch.randn(2, 2 * latent, f, 2 * f)
    t = torch.tensor([0.0, 999.0])
    out = unet(x, t)
    assert out.shape == (2, latent, f, 2 * f)
    assert torch.count_nonzero(out) == 0  # zero-initialised output conv
    (out - 1.0).pow(2).mean().backward()
    assert _grads_finite(unet)
    with pytest.raises(ValueError, match="divisible"):
        unet(torch.randn(1, 2 * latent, f + 1, f), t[:1])


@pytest.mark.parametrize("shape", [(2, 8, 5, 7), (1, 16, 1, 3), (3, 4, 16, 128)])
def test_upsample_as_a_transposed_conv_is_nearest_doubling_then_the_conv(shape):
    """Upsample's inference form (one stride-2 transposed conv) against its training form (nearest doubling,
    then the 3x3 conv) on random weights and inputs, odd and single-row sizes included; with a gradient taken
    the training form runs, so training's gradients are the conv's own."""
    torch.manual_seed(0)
    up = Upsample(shape[1])
    torch.nn.init.normal_(up.conv.weight)
    torch.nn.init.normal_(up.conv.bias)
    x = torch.randn(shape)
    with torch.no_grad():
        ref = up(x)
        up.transposed = True
        fast = up(x)
    assert fast.shape == ref.shape == (shape[0], shape[1], 2 * shape[2], 2 * shape[3])
    torch.testing.assert_close(fast, ref, atol=1e-4, rtol=1e-5)
    up(x).sum().backward()  # gradients on: the training form
    expected = torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
    torch.testing.assert_close(up.conv.bias.grad, torch.full_like(up.conv.bias, expected[0, 0].numel() * shape[0]))
    assert up.conv.weight.grad is not None


def test_schedule():
    s = Schedule()
    ac = s.alphas_cumprod
    assert ac.shape == (1000,)
    assert (ac[1:] < ac[:-1]).all()
    assert ac[-1].item() == 0.0  # zero terminal SNR
    assert ac[0].item() > 0.999
    t = torch.arange(1000)
    torch.testing.assert_close(s.alpha(t) ** 2 + s.sigma(t) ** 2, torch.ones(1000, dtype=torch.float64))
    assert s.timesteps(10) == [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]
    assert s.timesteps(1000) == list(range(999, -1, -1))
    with pytest.raises(ValueError):
        s.timesteps(0)


def test_v_round_trip():
    torch.manual_seed(0)
    s = Schedule()
    x0, noise = torch.randn(2, 4, 8, 8, dtype=torch.float64).unbind(0)
    x0, noise = x0.unsqueeze(1).expand(4, 4, 8, 8), noise.unsqueeze(1).expand(4, 4, 8, 8)
    t = torch.tensor([0, 250, 700, 999])
    x_t = s.q_sample(x0, t, noise)
    v = s.v_target(x0, t, noise)
    torch.testing.assert_close(s.x0_from_v(x_t, t, v), x0, rtol=0, atol=1e-12)
    torch.testing.assert_close(s.eps_from_v(x_t, t, v), noise, rtol=0, atol=1e-12)


def _coefs(s: Schedule, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    shape = (-1,) + (1,) * (x.ndim - 1)
    return s.alpha(t.long()).to(x).reshape(shape), s.sigma(t.long()).to(x).reshape(shape)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_samplers_recover_point_mass(name):
    """With the exact v of a point-mass data distribution, sampling returns that point."""
    torch.manual_seed(0)
    s = Schedule()
    x0 = torch.randn(3, 4, 8, 8, dtype=torch.float64)

    def oracle(x_t, t):
        a, sigma = _coefs(s, x_t, t)
        eps = (x_t - a * x0) / sigma
        return a * eps - sigma * x0

    calls = []
    out = SAMPLERS[name](oracle, torch.randn_like(x0), s.timesteps(10), s, lambda i, n: calls.append(i))
    torch.testing.assert_close(out, x0, rtol=0, atol=1e-10)
    assert calls == list(range(1, 11))


def _gaussian_oracle(s: Schedule, std: float):
    """The optimal v for data ~ N(0, std²): E[x0 | x_t] = alpha·std² / (alpha²·std² + sigma²) · x_t."""

    def fn(x_t, t):
        a, sigma = _coefs(s, x_t, t)
        x0 = a * std**2 / (a**2 * std**2 + sigma**2) * x_t
        return (a * x_t - x0) / sigma

    return fn


def test_samplers_match_gaussian_std():
    s = Schedule()
    std = 0.5
    oracle = _gaussian_oracle(s, std)

    def rel_std(sampler, steps):
        x = torch.randn(20_000, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        return sampler(oracle, x, s.timesteps(steps), s).std().item() / std

    # DPM-Solver++(2M) is second order: close in 20 steps. DDIM is first order and under-disperses a
    # Gaussian at coarse steps (a chord of the ODE's arc), converging as the steps grow.
    assert rel_std(sample_dpmpp_2m, 20) == pytest.approx(1.0, abs=0.02)
    ddim = [rel_std(sample_ddim, n) for n in (20, 50, 200)]
    assert ddim[0] < ddim[1] < ddim[2]
    assert ddim[2] == pytest.approx(1.0, abs=0.02)
    assert abs(1 - rel_std(sample_dpmpp_2m, 20)) < abs(1 - ddim[0])


def test_guided():
    torch.manual_seed(0)
    net = torch.nn.Conv2d(4, 2, 1)
    x, cond = torch.randn(3, 2, 4, 4), torch.randn(3, 2, 4, 4)
    null = torch.zeros(1, 2, 1, 1)
    t = torch.full((3,), 500.0)
    with torch.no_grad():
        v_cond = net(torch.cat([x, cond], 1))
        v_uncond = net(torch.cat([x, null.expand_as(cond)], 1))
        model = lambda x_t, t: net(x_t)  # noqa: E731
        torch.testing.assert_close(guided(model, cond, null, 1.0)(x, t), v_cond)
        torch.testing.assert_close(guided(model, cond, null, 0.0)(x, t), v_uncond)
        torch.testing.assert_close(guided(model, cond, null, 3.0)(x, t), v_uncond + 3.0 * (v_cond - v_uncond))


def test_tiny_vae_overfits_one_mel():
    torch.manual_seed(0)
    n_mels, frames = 16, 32
    f = torch.linspace(0, 1, n_mels)[:, None]
    t = torch.linspace(0, 1, frames)[None]
    # A mel-like image: a sloping floor with a wandering harmonic ridge, plus a little noise.
    mel = -6 - 3 * f + 4 * torch.exp(-((f - 0.2 - 0.1 * torch.sin(6 * t)) ** 2) / 0.01)
    mel = (mel + 0.3 * torch.randn(n_mels, frames)).unsqueeze(0)
    vae = VAE(n_mels, channels=16, multipliers=[1, 2], latent_channels=4, num_res_blocks=1, attention=False)
    opt = torch.optim.Adam(vae.parameters(), lr=2e-3)
    losses = []
    for _ in range(100):
        recon, mean, logvar = vae(mel)
        recon_loss = (recon - mel).abs().mean()
        opt.zero_grad()
        (recon_loss + 1e-4 * kl_loss(mean, logvar)).backward()
        opt.step()
        losses.append(recon_loss.item())
    assert losses[-1] < losses[0] / 5
    # better than the best constant: it has learned the image's structure, not just its level
    assert losses[-1] < 0.5 * (mel - mel.median()).abs().mean().item()
