"""The losses of training: the VAE's KL term and hinge GAN losses, the vocoder's LSGAN losses (summed over
sub-discriminators as in HiFi-GAN), feature matching and mel L1. Their weights are the tasks' (the params).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from audiosr.audio import MelConfig, log_mel
from audiosr.train.discriminators import Features


def kl_loss(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)), averaged over all elements (Kingma & Welling 2014, App. B)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean()


def d_hinge_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss (Lim & Ye 2017), halved as in taming-transformers."""
    return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())


def g_hinge_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss: -E[D(fake)]."""
    return -fake_logits.mean()


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
