"""Named architecture sizes (`profile: small | full` in params.yaml).

A profile gives the keyword arguments of each model's constructor. Any key can be overridden in
params.yaml under the model's own block (`vae.channels: 48`); `resolve` merges the two, and
audiosr.config checks the overrides (an unknown key or a value of another type is an error). The
vocoder's hop is not a profile key: it is the mel's (`mel.hop`), added by audiosr.config.
`small` trains on a 2-core CPU in minutes; `full` is AudioSR's network (design "audiosr": its VAE,
U-Net and HiFi-GAN layer for layer, its schedule and null condition), for a GPU (pair it with
`mel.n_mels: 256`, which lives in the `mel` block because the data stages depend on it). The small
profile keeps this project's own compact blocks: it is what trains on a CPU, and its committed results
come from it.
"""

from __future__ import annotations

import copy

PROFILES: dict[str, dict[str, dict]] = {
    "small": {
        "vae": {
            "channels": 32,
            "multipliers": [1, 2, 4],
            "latent_channels": 8,
            "num_res_blocks": 1,
            "attention": False,
        },
        "ldm": {
            "width": 64,
            "multipliers": [1, 2, 3],
            "attention_levels": [2],
            "num_res_blocks": 1,
            "heads": 4,
        },
        "vocoder": {
            "arch": "istft",
            "hifigan": {
                "upsample_rates": [6, 5, 4, 2, 2],
                "upsample_kernel_sizes": [12, 10, 8, 4, 4],
                "upsample_initial_channel": 128,
                "resblock_kernel_sizes": [3, 7],
                "resblock_dilation_sizes": [[1, 3], [1, 3]],
            },
            "istft": {"dim": 256, "intermediate_dim": 768, "num_layers": 6, "n_fft": 1920},
        },
    },
    "full": {
        # AudioSR's networks, layer for layer (audiosr/utils.py get_basic_config and
        # utilities/model.py get_vocoder_config_48k of its reference implementation), so its published
        # weights load (audiosr.published); the parity tests check them against that implementation
        "vae": {
            "design": "audiosr",
            "channels": 128,
            "multipliers": [1, 2, 4, 8],
            "latent_channels": 16,
            "z_channels": 16,
            "num_res_blocks": 2,
            "dropout": 0.1,
        },
        "ldm": {
            "design": "audiosr",
            "width": 128,
            "multipliers": [1, 2, 3, 5],
            "attention_levels": [1, 2, 3],
            "num_res_blocks": 2,
            "head_channels": 32,
            "transformer_depth": 1,
            "schedule": "cosine",
            "null_latent": -11.4981,
        },
        "vocoder": {
            "arch": "hifigan",
            "hifigan": {
                "upsample_rates": [6, 5, 4, 2, 2],
                "upsample_kernel_sizes": [12, 10, 8, 4, 4],
                "upsample_initial_channel": 1536,
                "resblock_kernel_sizes": [3, 7, 11, 15],
                "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5], [1, 3, 5]],
            },
            "istft": {"dim": 768, "intermediate_dim": 2304, "num_layers": 12, "n_fft": 1920},
        },
    },
}


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve(profile: str, section: str, overrides: dict | None = None) -> dict:
    """The architecture of `section` ('vae', 'ldm', 'vocoder') for `profile`, with overrides.

    Only keys the profile defines are taken from `overrides`, so training settings that live in the
    same params block (lr, steps...) do not leak into a constructor (audiosr.config has already refused
    any key that is neither).
    """
    if profile not in PROFILES:
        raise ValueError(f"profile: unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    base = PROFILES[profile][section]
    picked = {k: v for k, v in (overrides or {}).items() if k in base}
    return _merge(base, picked)
