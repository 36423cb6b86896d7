"""AudioSR's published weights -> a pipeline folder.

AudioSR (Liu et al. 2023) publishes its models as one PyTorch state dict of its ``LatentDiffusion``
(``haoheliu/audiosr_basic`` and ``haoheliu/audiosr_speech``: ``pytorch_model.bin``, ``{"state_dict": ...}``).
The `full` profile is its network layer for layer (audiosr.models.audiosr_vae, audiosr_unet, the
HiFi-GAN of audiosr.models.vocoder), so importing is a matter of names: every tensor is either mapped
onto a part of the pipeline folder or is one of the deliberately unused groups of `UNUSED`, and anything
else — a missing or unexpected key, a wrong shape, a file that is not such a checkpoint — is one
`CheckpointError` line. The file is read with ``torch.load(..., weights_only=True)``: no code in it runs.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import torch

from audiosr import profiles
from audiosr.audio import SAMPLE_RATE, MelConfig
from audiosr.inference.model import ModelError
from audiosr.models.diffusion import Schedule
from audiosr.models.unet import build_unet
from audiosr.models.vae import build_vae
from audiosr.models.vocoder import build_vocoder
from audiosr.packaging import write_pipeline

# AudioSR's mel front end (its get_basic_config: 48 kHz, STFT 2048 / hop 480 / window 2048, 256 bands from
# 20 Hz to 24 kHz, natural log with a 1e-5 floor) and window: 10.24 s, 1024 frames
MEL = {"sample_rate": SAMPLE_RATE, "n_fft": 2048, "hop": 480, "win": 2048, "n_mels": 256, "fmin": 20.0, "fmax": 24000.0}
SEGMENT_FRAMES = 1024
# how AudioSR's command line samples: DDIM at eta 1 (its generate_batch's default), 50 steps, guidance 3.5
SAMPLING = {"sampler": "ddim_eta1", "steps": 50, "guidance": 3.5}
NULL_LATENT = -11.4981  # AudioSR's unconditional condition (VAEFeatureExtract), in unscaled latent units

UNET = "model.diffusion_model."
FIRST_STAGE = "first_stage_model."
VOCODER = "first_stage_model.vocoder."
CONDITION = "cond_stage_models.0.vae."
SCHEDULE_BUFFERS = (
    "betas",
    "alphas_cumprod",
    "alphas_cumprod_prev",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
)
# what is in the checkpoint and deliberately not imported, and why
UNUSED = {
    "clap.": "AudioSR's CLAP audio-text model: built by its training code, not used by super-resolution",
    "model_ema.": "the U-Net's EMA copy: AudioSR samples with model.diffusion_model",
    "schedule buffers": "the diffusion schedule: recomputed (and checked against the checkpoint's alphas_cumprod)",
    "logvar": "the training loss's per-timestep log-variance",
    CONDITION + "decoder.": "the condition VAE's decoder: only its encoder conditions the U-Net",
    CONDITION + "post_quant_conv.": "the condition VAE's decoder",
    CONDITION + "vocoder.": "the condition VAE's copy of the vocoder",
    FIRST_STAGE + "encoder.": "the first stage's encoder: the condition VAE's encodes (the same weights, or AudioSR "
    "conditions on the other)",
    FIRST_STAGE + "quant_conv.": "the first stage's encoder",
}


class CheckpointError(ModelError):
    """A checkpoint that is not AudioSR's (or does not fit the architecture): one line naming the file."""


def full_architecture() -> dict[str, dict]:
    """The `full` profile's architecture of each part: AudioSR's."""
    return {part: profiles.resolve("full", part) for part in ("vae", "ldm", "vocoder")}


def architecture(unet: dict, vae: dict, embed_dim: int, vocoder: dict) -> dict[str, dict]:
    """The architecture of each part, in this project's keys, from AudioSR's own configuration: its
    UNetModel params, its first stage's ddconfig and embed_dim, its HiFi-GAN config (the full profile is
    this of AudioSR's get_basic_config and get_vocoder_config_48k)."""
    base = full_architecture()
    return {
        "vae": {
            **base["vae"],
            "channels": vae["ch"],
            "multipliers": list(vae["ch_mult"]),
            "latent_channels": embed_dim,
            "z_channels": vae["z_channels"],
            "num_res_blocks": vae["num_res_blocks"],
            "dropout": vae.get("dropout", 0.0),
        },
        "ldm": {
            **base["ldm"],
            "width": unet["model_channels"],
            "multipliers": list(unet["channel_mult"]),
            "attention_levels": [i for i in range(len(unet["channel_mult"])) if 2**i in unet["attention_resolutions"]],
            "num_res_blocks": unet["num_res_blocks"],
            "head_channels": unet["num_head_channels"],
            "transformer_depth": unet.get("transformer_depth", 1),
        },
        "vocoder": {
            **base["vocoder"],
            "hifigan": {
                k: vocoder[k]
                for k in (
                    "upsample_rates",
                    "upsample_kernel_sizes",
                    "upsample_initial_channel",
                    "resblock_kernel_sizes",
                    "resblock_dilation_sizes",
                )
            },
        },
    }


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The state dict of an AudioSR checkpoint file (``{"state_dict": ...}`` or the bare dict)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; download pytorch_model.bin of haoheliu/audiosr_basic first")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except Exception as exc:  # torch raises many kinds for a file that is not a torch save (or hides code)
        raise CheckpointError(
            f"{path}: not a PyTorch checkpoint that loads without running code ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:160] if str(exc) else 'no detail'})"
        ) from exc
    state = data.get("state_dict", data) if isinstance(data, dict) else None
    if not isinstance(state, dict) or not any(isinstance(k, str) and k.startswith(UNET) for k in state):
        raise CheckpointError(f"{path}: not an AudioSR checkpoint (no {UNET}* weights)")
    return state


def _group(key: str) -> str | None:
    if key in SCHEDULE_BUFFERS:
        return "schedule buffers"
    for prefix in UNUSED:
        if key == prefix or key.startswith(prefix):
            return prefix
    return None


def _weight_normed(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A HiFi-GAN state dict with plain conv weights (AudioSR folds its weight norm away when it builds the
    vocoder) -> the weight-norm parametrisation `module` trains with: g = the norm of each output slice
    (dim 0, torch's weight_norm), v = the weight itself, so g·v/|v| is the same weight."""
    out = dict(state)
    for key in module.state_dict():
        if key.endswith(".parametrizations.weight.original0"):
            base = key[: -len(".parametrizations.weight.original0")]
            weight = out.pop(f"{base}.weight", None)
            if weight is not None:
                norm = weight.flatten(1).norm(dim=1).reshape(-1, *([1] * (weight.ndim - 1)))
                out[key], out[f"{base}.parametrizations.weight.original1"] = norm, weight
    return out


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a is b or torch.equal(a, b)


def _few(keys: list[str]) -> str:
    return f"{len(keys)} ({', '.join(keys[:3])}{'...' if len(keys) > 3 else ''})"


def _fit(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str, path: Path) -> dict[str, torch.Tensor]:
    """`state` checked against `module`'s own: the same names and shapes, float32; CheckpointError otherwise."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        parts = (
            [f"missing {len(missing)} ({', '.join(missing[:3])}{'...' if len(missing) > 3 else ''})"] if missing else []
        )
        if unexpected:
            parts.append(
                f"unexpected {len(unexpected)} ({', '.join(unexpected[:3])}{'...' if len(unexpected) > 3 else ''})"
            )
        raise CheckpointError(f"{path}: the {what} is not AudioSR's layout: {'; '.join(parts)}")
    for key, value in own.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise CheckpointError(
                f"{path}: {what} tensor {key} has shape {tuple(state[key].shape)}, AudioSR's is {tuple(value.shape)}"
            )
    return {k: v.detach().to(torch.float32).contiguous() for k, v in state.items()}


def convert(
    state: dict[str, torch.Tensor], path: Path, arch: dict[str, dict] | None = None, n_mels: int = MEL["n_mels"]
) -> tuple[dict[str, tuple[dict, dict]], dict, list[str]]:
    """An AudioSR state dict -> ({part: (state, config)}, the pipeline's config, notes). `arch` is the
    architecture of each part (default: the full profile's, AudioSR's published layout)."""
    arch = arch or full_architecture()
    tensors = {"vae": {}, "ldm": {}, "vocoder": {}}
    unknown, skipped, condition = [], {}, {}
    for key, value in state.items():
        if key.startswith(UNET):
            tensors["ldm"][key[len(UNET) :]] = value
        elif key.startswith(VOCODER):
            tensors["vocoder"][key[len(VOCODER) :]] = value
        elif key.startswith(CONDITION + "encoder.") or key.startswith(CONDITION + "quant_conv."):
            condition[key[len(CONDITION) :]] = value
        elif key.startswith(FIRST_STAGE + "decoder.") or key.startswith(FIRST_STAGE + "post_quant_conv."):
            tensors["vae"][key[len(FIRST_STAGE) :]] = value
        elif key == "scale_factor":
            continue
        elif (group := _group(key)) is not None:
            skipped[group] = skipped.get(group, 0) + 1
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointError(
            f"{path}: {len(unknown)} tensors this importer does not know ({', '.join(sorted(unknown)[:4])}"
            f"{'...' if len(unknown) > 4 else ''}): not AudioSR's basic or speech model"
        )
    notes = []
    first = {
        k[len(FIRST_STAGE) :]: v
        for k, v in state.items()
        if k.startswith((FIRST_STAGE + "encoder.", FIRST_STAGE + "quant_conv."))
    }
    if not condition:  # a checkpoint without the condition VAE conditions with the first stage's encoder
        condition = first
    elif first and (set(first) != set(condition) or any(not _same(first[k], condition[k]) for k in first)):
        notes.append("the first stage's encoder differs from the condition VAE's; kept the condition VAE's")
    tensors["vae"].update(condition)
    if "scale_factor" not in state:
        raise CheckpointError(f"{path}: no scale_factor (AudioSR's latent scale): not an AudioSR checkpoint")
    scale = float(state["scale_factor"])
    if not math.isfinite(scale) or scale <= 0:
        raise CheckpointError(f"{path}: scale_factor is {scale}, not a positive number")

    schedule = Schedule(kind="cosine")
    if "alphas_cumprod" in state:
        theirs = state["alphas_cumprod"].double()
        if theirs.shape != schedule.alphas_cumprod.shape or not torch.allclose(
            theirs, schedule.alphas_cumprod, atol=1e-6
        ):
            raise CheckpointError(f"{path}: its diffusion schedule is not AudioSR's 1000-step cosine one")

    mel = MelConfig(**{**MEL, "n_mels": n_mels})
    with torch.device("meta"):
        nets = {
            "vae": build_vae(arch["vae"], n_mels),
            "ldm": build_unet(arch["ldm"], arch["vae"]["latent_channels"]),
            "vocoder": build_vocoder(arch["vocoder"], n_mels, mel.hop),
        }
    tensors["vocoder"] = _weight_normed(nets["vocoder"], tensors["vocoder"])
    names = {"vae": "VAE", "ldm": "U-Net", "vocoder": "vocoder"}
    fitted = {part: _fit(nets[part], tensors[part], names[part], path) for part in nets}
    factor = nets["vae"].factor
    common = {"profile": "full", "n_mels": n_mels, "version": 1, "source": "AudioSR checkpoint"}
    parts = {
        "vae": (
            fitted["vae"],
            {
                **common,
                "kind": "vae",
                "arch": arch["vae"],
                "mel": mel.to_dict(),
                "scale": scale,
                "factor": factor,
                "latent_channels": arch["vae"]["latent_channels"],
            },
        ),
        "ldm": (
            fitted["ldm"],
            {
                **common,
                "kind": "ldm",
                "arch": arch["ldm"],
                "latent_channels": arch["vae"]["latent_channels"],
                "schedule": {"num_steps": schedule.num_steps, "kind": schedule.kind, "prediction": "v"},
                "null_latent": NULL_LATENT,
            },
        ),
        "vocoder": (
            fitted["vocoder"],
            {**common, "kind": "vocoder", "arch": {**arch["vocoder"], "hop": mel.hop}, "mel": mel.to_dict()},
        ),
    }
    config = {
        "profile": "full",
        "n_mels": n_mels,
        "mel": mel.to_dict(),
        "latent_scale": scale,
        "segment_frames": SEGMENT_FRAMES,
        "peak": 0.5,  # AudioSR normalises its input to a peak of 0.5
        "full_band_hz": 16_000.0,  # its training cutoffs: 2 to 16 kHz
        "sampling": dict(SAMPLING),
        "imported": {"from": str(path), "unused": {g: n for g, n in sorted(skipped.items())}, "notes": notes},
    }
    return parts, config, notes


def import_checkpoint(path: Path, out: Path, arch: dict[str, dict] | None = None, n_mels: int = MEL["n_mels"]) -> dict:
    """AudioSR checkpoint file `path` -> pipeline folder `out` (written atomically); returns its config."""
    parts, config, _ = convert(read_checkpoint(path), Path(path), arch, n_mels)
    write_pipeline(Path(out), parts, config)
    return config
