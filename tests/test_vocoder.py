"""Vocoders, discriminators and GAN losses: shapes, one training step per profile, and that it learns."""

from __future__ import annotations

import math

import pytest
import torch

from audiosr.audio import SAMPLE_RATE, MelConfig, log_mel
from audiosr.models.vocoder import HiFiGAN, ISTFTVocoder, build_vocoder
from audiosr.profiles import resolve
from audiosr.train.discriminators import Discriminators
from audiosr.train.losses import discriminator_loss, feature_matching_loss, generator_adversarial_loss, mel_l1_loss

HOP = 480
N_MELS = {"small": 64, "full": 256}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def chord(frames: int, batch: int = 1, seed: int = 0) -> torch.Tensor:
    """(batch, frames * HOP): an A-minor chord of harmonic tones plus a little white noise, at 48 kHz."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(frames * HOP) / SAMPLE_RATE
    tones = sum(0.1 / k * torch.sin(2 * math.pi * f0 * k * t) for f0 in (220.0, 261.63, 329.63) for k in range(1, 6))
    return tones + 0.005 * torch.randn(batch, frames * HOP, generator=gen)


@pytest.mark.parametrize("profile", ["small", "full"])
@pytest.mark.parametrize("arch", ["hifigan", "istft"])
def test_profile_vocoder_shape_and_gan_step(profile: str, arch: str) -> None:
    torch.manual_seed(0)
    n_mels = N_MELS[profile]
    mel_cfg = MelConfig(n_mels=n_mels)
    vocoder = build_vocoder(resolve(profile, "vocoder", {"arch": arch}), n_mels, HOP)
    assert vocoder.hop == HOP
    wave = chord(frames=8, batch=2)
    mel = log_mel(wave, mel_cfg)
    assert mel.shape == (2, n_mels, 8)

    wave_hat = vocoder(mel)
    assert wave_hat.shape == (2, 8 * HOP)

    # thin discriminators of all three kinds keep the step cheap; their structure is the same
    discs = Discriminators(("mpd", "msd", "mrd"), channels_scale=0.125)
    real_logits, real_feats = discs(wave)
    fake_logits, fake_feats = discs(wave_hat)
    loss = (
        mel_l1_loss(wave_hat, wave, mel_cfg)
        + generator_adversarial_loss(fake_logits)
        + feature_matching_loss(real_feats, fake_feats)
    )
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in vocoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_discriminators_outputs_line_up() -> None:
    discs = Discriminators(("mpd", "msd", "mrd"))
    logits, feats = discs(chord(frames=4, batch=2))
    assert len(logits) == len(feats) == 5 + 3 + 3
    assert all(lg.shape[0] == 2 and lg.ndim == 2 for lg in logits)
    assert all(f.shape[0] == 2 for fs in feats for f in fs)


def test_discriminator_step_has_finite_grads() -> None:
    discs = Discriminators(("mpd", "mrd"), channels_scale=0.25)
    real = chord(frames=4, batch=2)
    fake = 0.1 * torch.randn_like(real)
    loss = discriminator_loss(discs(real)[0], discs(fake)[0])
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in discs.parameters())


def test_remove_weight_norm_keeps_output() -> None:
    torch.manual_seed(0)
    vocoder = build_vocoder(resolve("small", "vocoder", {"arch": "hifigan"}), 64, HOP).eval()
    mel = log_mel(chord(frames=4), MelConfig(n_mels=64))
    with torch.no_grad():
        before = vocoder(mel)
        vocoder.remove_weight_norm()
        after = vocoder(mel)
    assert not any(hasattr(m, "parametrizations") for m in vocoder.modules())
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-4)


def test_bad_upsample_rates_raise() -> None:
    cfg = resolve("small", "vocoder", {"hifigan": {"upsample_rates": [8, 5, 4, 2, 2]}})["hifigan"]
    with pytest.raises(ValueError, match="upsample_rates"):
        HiFiGAN(64, **cfg, hop=HOP)


def test_unknown_arch_raises() -> None:
    cfg = resolve("small", "vocoder", {"arch": "wavenet"})
    with pytest.raises(ValueError, match=r"vocoder\.arch.*hifigan.*istft"):
        build_vocoder(cfg, 64, HOP)


def test_unknown_discriminator_raises() -> None:
    with pytest.raises(ValueError, match="mpd"):
        Discriminators(("mpd", "wavegan"))


def test_feature_matching_of_identical_features_is_zero() -> None:
    feats = [[torch.randn(2, 4, 10), torch.randn(2, 1, 5)], [torch.randn(2, 3, 7, 2)]]
    assert feature_matching_loss(feats, feats).item() == 0.0
    assert feature_matching_loss(feats, [[f + 1 for f in fs] for fs in feats]).item() > 0.0


def test_discriminator_loss_prefers_real_high_fake_low() -> None:
    ones, zeros = [torch.ones(2, 5)] * 3, [torch.zeros(2, 5)] * 3
    good = discriminator_loss(real_logits=ones, fake_logits=zeros)
    bad = discriminator_loss(real_logits=zeros, fake_logits=ones)
    assert good.item() < bad.item()
    assert generator_adversarial_loss(ones).item() < generator_adversarial_loss(zeros).item()


def test_mel_l1_loss_zero_on_identity_positive_on_lowpass() -> None:
    mel_cfg = MelConfig(n_mels=64)
    wave = chord(frames=8) + 0.05 * torch.randn(1, 8 * HOP, generator=torch.Generator().manual_seed(1))
    spec = torch.fft.rfft(wave)
    freqs = torch.fft.rfftfreq(wave.shape[-1], 1 / SAMPLE_RATE)
    lowpassed = torch.fft.irfft(spec * (freqs < 4000), n=wave.shape[-1])
    assert mel_l1_loss(wave, wave, mel_cfg).item() == 0.0
    assert mel_l1_loss(lowpassed, wave, mel_cfg).item() > 0.5


def test_istft_vocoder_learns_one_signal() -> None:
    torch.manual_seed(0)
    mel_cfg = MelConfig(n_mels=64)
    wave = chord(frames=32)  # 0.32 s
    mel = log_mel(wave, mel_cfg)
    vocoder = ISTFTVocoder(64, dim=64, intermediate_dim=192, num_layers=2, n_fft=1920, hop=HOP)
    opt = torch.optim.Adam(vocoder.parameters(), lr=1e-3)
    losses = []
    for _ in range(150):
        loss = mel_l1_loss(vocoder(mel), wave, mel_cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 2, (losses[0], losses[-1])
