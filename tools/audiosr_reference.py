#!/usr/bin/env python3
"""Parity fixtures from the published AudioSR reference implementation.

What it makes (in ``tests/fixtures/audiosr/`` by default):

* ``full_layout.json``      every key, shape and dtype of ``LatentDiffusion.state_dict()`` at the
                            published configuration (the layout of ``pytorch_model.bin`` of
                            haoheliu/audiosr_basic), plus parameter counts of the sub-networks.
* ``tiny_checkpoint.bin``   ``torch.save({"state_dict": ...})`` with the same key layout (same
                            prefixes, EMA copy, schedule buffers, cond-stage VAE) at tiny widths,
                            seeded random weights.
* ``tiny_config.json``      the exact reference configs used for the tiny networks.
* ``tiny_io.safetensors``   inputs and the reference's outputs for the mel front end, the VAE,
  ``tiny_io.json``          the U-Net, the vocoder and a short DDIM run (scalars and notes in JSON).

Why: our own reimplementation (package ``audiosr`` in this repository) must load the published
checkpoint and compute what the reference computes. The reference package (PyPI ``audiosr==0.0.7``)
is never a dependency of the project: this script installs it into a throwaway virtual environment
and only *runs* it there.

How: the outer invocation creates a venv (``python3 -m venv``), pip-installs torch (pinned, the CPU
build), ``audiosr==0.0.7 --no-deps`` and only what the reference's network modules import, then
re-runs this file with that venv's python and ``--inner``. The reference's ``audiosr/__init__.py``
(which imports torchaudio and the whole inference pipeline) is never executed: an empty module object
named ``audiosr`` whose ``__path__`` is the installed package folder makes its submodules importable.
Imports that only serve training, plotting or data loading (torchvision, torchaudio, PIL, matplotlib,
pandas, progressbar, timm's AudioMAE, the CLAP data pipeline) are stubbed with empty modules; every
network class used below is the reference's real class.

Usage::

    python tools/audiosr_reference.py [--venv DIR] [--out tests/fixtures/audiosr] [--keep-venv]

``--venv DIR`` reuses DIR when it already holds a prepared environment (else creates it there and
keeps it); without it a temporary venv is created and removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "tests" / "fixtures" / "audiosr"

REFERENCE = "audiosr==0.0.7"
# Pinned: an unpinned torch pulls gigabytes of CUDA packages; the CPU build is found locally by pip.
TORCH = "torch==2.13.0"
# The minimum the reference's network modules import (at module level or while being built):
#   einops        attention / U-Net / VAE modules
#   numpy, scipy  schedules, audio utilities, lowpass (scipy.signal)
#   librosa       mel filterbank of the front end (librosa.filters.mel), utilities/audio; brings soundfile
#   tqdm          DDIM sampler
#   transformers  LatentDiffusion always builds a CLAP model (DDPM.clap) whose text branch is RoBERTa;
#                 4.30.2 is the version the reference pins (key names of the RoBERTa buffers depend on it)
#   torchlibrosa  the CLAP audio branch (HTS-AT) front end
#   safetensors   to write tiny_io.safetensors
RUNTIME = ["einops", "numpy", "scipy", "librosa", "tqdm", "transformers==4.30.2", "torchlibrosa", "safetensors"]
READY_MARK = ".audiosr-reference-ready"

SEED = 0
# AudioSR's mel front end (its get_basic_config's preprocessing)
PUBLISHED_MEL = {
    "sampling_rate": 48000,
    "n_fft": 2048,
    "hop_length": 480,
    "win_length": 2048,
    "n_mels": 256,
    "fmin": 20,
    "fmax": 24000,
}


def log(msg: str) -> None:
    print(f"[audiosr-reference] {msg}", flush=True)


# ----------------------------------------------------------------------------------------------
# Outer invocation: prepare the throwaway environment and re-run inside it.
# ----------------------------------------------------------------------------------------------


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def prepare_venv(venv: Path) -> None:
    spec = "\n".join([TORCH, REFERENCE, *RUNTIME])
    mark = venv / READY_MARK
    if mark.is_file() and mark.read_text() == spec and venv_python(venv).exists():
        log(f"reusing prepared venv {venv}")
        return
    if not venv_python(venv).exists():
        log(f"creating venv {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv_python(venv)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    log(f"pip install {TORCH}")
    subprocess.run([*pip, TORCH], check=True)
    log(f"pip install {REFERENCE} --no-deps")
    subprocess.run([*pip, "--no-deps", REFERENCE], check=True)
    log("pip install " + " ".join(RUNTIME))
    subprocess.run([*pip, *RUNTIME], check=True)
    mark.write_text(spec)


def outer(args: argparse.Namespace) -> int:
    t0 = time.time()
    temp = None
    if args.venv:
        venv = Path(args.venv).resolve()
    else:
        temp = Path(tempfile.mkdtemp(prefix="audiosr-reference-"))
        venv = temp / "venv"
    try:
        prepare_venv(venv)
        out = Path(args.out).resolve()
        out.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env.update(PYTHONNOUSERSITE="1", OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "2"), PYTHONHASHSEED="0")
        log("running the reference inside the venv")
        # cwd is a scratch folder so that nothing of this repository (its own `audiosr` package) is importable.
        scratch = Path(tempfile.mkdtemp(prefix="audiosr-reference-run-"))
        try:
            cmd = [str(venv_python(venv)), str(Path(__file__).resolve()), "--inner", "--out", str(out)]
            rc = subprocess.run(cmd, cwd=scratch, env=env).returncode
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        log(f"done in {time.time() - t0:.1f} s (rc={rc})")
        return rc
    finally:
        if temp is not None and not args.keep_venv:
            shutil.rmtree(temp, ignore_errors=True)
        elif temp is not None:
            log(f"kept venv {venv}")


# ----------------------------------------------------------------------------------------------
# Inner invocation: import the reference under a namespace shim and write the fixtures.
# ----------------------------------------------------------------------------------------------


def _stub_module(name: str, **attrs):
    """An empty module; any other attribute it is asked for is an inert placeholder class."""
    import importlib.machinery
    import types

    mod = types.ModuleType(name)
    mod.__path__ = []
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)

    def __getattr__(attr):
        if attr.startswith("__"):
            raise AttributeError(attr)

        def __init__(self, *a, **k):
            pass

        return type(attr, (), {"__init__": __init__, "__module__": name})

    mod.__getattr__ = __getattr__
    for k, v in attrs.items():
        setattr(mod, k, v)
    sys.modules[name] = mod
    return mod


def install_shims():
    """Make the reference's submodules importable without its __init__ and without heavy extras."""
    import importlib.util
    import types

    spec = importlib.util.find_spec("audiosr")  # locates the installed package; executes nothing
    assert spec is not None and spec.submodule_search_locations, "reference package audiosr not installed"
    pkg_dir = Path(list(spec.submodule_search_locations)[0])
    assert str(pkg_dir).startswith(sys.prefix), f"audiosr found outside the venv: {pkg_dir}"

    # Real third-party packages first, before any stub could confuse their availability checks.
    import torchlibrosa.augmentation  # noqa: F401
    import torchlibrosa.stft  # noqa: F401
    import transformers
    import transformers.models.roberta.modeling_roberta  # noqa: F401

    # Heavy imports that only serve training, plotting, data loading or the CLI.
    for name in [
        "torchvision",
        "torchvision.utils",
        "torchvision.transforms",
        "torchvision.ops",
        "torchvision.ops.misc",
        "torchaudio",
        "torchaudio.transforms",
        "torchaudio.functional",
        "torchaudio.compliance",
        "torchaudio.compliance.kaldi",
        "PIL",
        "PIL.Image",
        "PIL.ImageDraw",
        "PIL.ImageFont",
        "matplotlib",
        "matplotlib.pyplot",
        "pandas",
        "progressbar",
    ]:
        _stub_module(name)
    for parent, child in [
        ("torchvision", "utils"),
        ("torchvision", "transforms"),
        ("torchvision", "ops"),
        ("torchvision.ops", "misc"),
        ("torchaudio", "transforms"),
        ("torchaudio", "functional"),
        ("torchaudio", "compliance"),
        ("torchaudio.compliance", "kaldi"),
        ("PIL", "Image"),
        ("PIL", "ImageDraw"),
        ("PIL", "ImageFont"),
        ("matplotlib", "pyplot"),
    ]:
        setattr(sys.modules[parent], child, sys.modules[f"{parent}.{child}"])

    # The namespace shim: `audiosr` and `audiosr.clap.open_clip` without running their __init__.py
    # (open_clip's __init__ pulls sklearn, ftfy and torchvision for training-only code).
    for name, folder in [("audiosr", pkg_dir), ("audiosr.clap.open_clip", pkg_dir / "clap" / "open_clip")]:
        mod = types.ModuleType(name)
        mod.__path__ = [str(folder)]
        mod.__spec__ = importlib.util.spec_from_loader(name, loader=None, is_package=True)
        mod.__spec__.submodule_search_locations = [str(folder)]
        sys.modules[name] = mod
    import audiosr.clap  # noqa: F401  (empty __init__)

    sys.modules["audiosr.clap"].open_clip = sys.modules["audiosr.clap.open_clip"]
    import audiosr.clap.open_clip.factory as factory

    sys.modules["audiosr.clap.open_clip"].create_model = factory.create_model
    # Reference modules that only serve the CLAP data pipeline / AudioMAE conditioning (not built here).
    _stub_module("audiosr.clap.training")
    _stub_module("audiosr.clap.training.data")
    _stub_module("audiosr.latent_diffusion.modules.audiomae.AudioMAE")

    # CLAP asks the hub for roberta-base's config and tokenizer. The config is roberta-base's published
    # config.json; the tokenizer is unused by any network.
    roberta_base = dict(
        vocab_size=50265,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=514,
        type_vocab_size=1,
        initializer_range=0.02,
        layer_norm_eps=1e-05,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    transformers.RobertaConfig.from_pretrained = classmethod(lambda cls, *a, **k: cls(**roberta_base))
    transformers.RobertaTokenizer.from_pretrained = classmethod(lambda cls, *a, **k: None)
    return pkg_dir


def n_params(*modules) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


# ------------------------------------------------------------------ configs


def published_params():
    import copy

    from audiosr.utils import get_basic_config

    config = get_basic_config()
    params = copy.deepcopy(config["model"]["params"])
    params["first_stage_config"]["params"].pop("reload_from_ckpt", None)
    params["device"] = "cpu"
    return config, params


TINY_UNET = dict(
    image_size=64,
    in_channels=8,
    out_channels=4,
    model_channels=32,
    attention_resolutions=[2],
    num_res_blocks=1,
    channel_mult=[1, 2],
    num_head_channels=16,
    extra_sa_layer=True,
    use_spatial_transformer=True,
    transformer_depth=1,
)
TINY_DDCONFIG = dict(
    double_z=True,
    mel_bins=16,
    z_channels=4,
    resolution=256,
    downsample_time=False,
    in_channels=1,
    out_ch=1,
    ch=32,
    ch_mult=[1, 2],
    num_res_blocks=1,
    attn_resolutions=[],
    dropout=0.1,
)
TINY_EMBED_DIM = 4
TINY_VOCODER = dict(
    resblock="1",
    upsample_rates=[6, 5, 4, 2, 2],
    upsample_kernel_sizes=[12, 10, 8, 4, 4],
    upsample_initial_channel=32,
    resblock_kernel_sizes=[3, 7, 11, 15],
    resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5], [1, 3, 5], [1, 3, 5]],
    num_mels=16,
    n_fft=2048,
    hop_size=480,
    win_size=2048,
    sampling_rate=48000,
    fmin=20,
    fmax=24000,
)
TINY_SCALE_FACTOR = 0.75
# HiFi-GAN has no normalisation: a He-like gain keeps the level through the five upsampling stages, a
# small one on conv_post keeps tanh out of saturation.
VOCODER_GAINS = {"ups": 1.2, "conv_post": 0.8}
TINY_LATENT = dict(channels=4, latent_t_size=8, latent_f_size=8)


def tiny_params(published):
    import copy

    params = copy.deepcopy(published)
    params["unet_config"]["params"] = copy.deepcopy(TINY_UNET)
    for vae_cfg in (
        params["first_stage_config"],
        params["cond_stage_config"]["concat_lowpass_cond"]["params"]["first_stage_config"],
    ):
        vae_cfg["params"]["ddconfig"] = copy.deepcopy(TINY_DDCONFIG)
        vae_cfg["params"]["embed_dim"] = TINY_EMBED_DIM
    params.update(TINY_LATENT)
    params["scale_factor"] = TINY_SCALE_FACTOR  # scale_by_std=True registers it as the buffer `scale_factor`
    return params


# ------------------------------------------------------------------ building


def build_latent_diffusion(params, tiny_vocoder=None, with_clap=True):
    import audiosr.latent_diffusion.models.ddpm as ddpm
    import audiosr.utilities.model as umodel
    import torch

    class NoClap(torch.nn.Module):
        """Stands in for DDPM.clap (a full-size CLAP, unused at inference) in the tiny model."""

        def __init__(self, *a, **k):
            super().__init__()

    saved_clap, saved_voc = ddpm.CLAPAudioEmbeddingClassifierFreev2, umodel.get_vocoder_config_48k
    try:
        if not with_clap:
            ddpm.CLAPAudioEmbeddingClassifierFreev2 = NoClap
        if tiny_vocoder is not None:
            # get_vocoder() ignores its config argument and always uses get_vocoder_config_48k() for
            # mel_bins != 64; the tiny vocoder goes in through that function.
            published = umodel.get_vocoder_config_48k()

            def tiny_config():
                cfg = dict(published)
                cfg.update(tiny_vocoder)
                return cfg

            umodel.get_vocoder_config_48k = tiny_config
        model = ddpm.LatentDiffusion(**params)
    finally:
        ddpm.CLAPAudioEmbeddingClassifierFreev2, umodel.get_vocoder_config_48k = saved_clap, saved_voc
    return model.eval()


def full_layout(out: Path):
    import json

    import torch

    config, params = published_params()
    log("building LatentDiffusion at the published configuration (CPU, ~6 GB; takes a while)")
    t0 = time.time()
    torch.manual_seed(SEED)
    model = build_latent_diffusion(params)
    log(f"  built in {time.time() - t0:.0f} s")
    sd = model.state_dict()
    keys = {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")} for k, v in sd.items()}
    prefixes = {}
    for k, v in sd.items():
        parts = k.split(".")
        p = (
            ".".join(parts[:2])
            if parts[0] in ("model", "first_stage_model", "clap")
            else (".".join(parts[:3]) if parts[0] == "cond_stage_models" else parts[0])
        )
        e = prefixes.setdefault(p, {"tensors": 0, "elements": 0})
        e["tensors"] += 1
        e["elements"] += v.numel()
    fs, cs = model.first_stage_model, model.cond_stage_models[0].vae
    unet = model.model.diffusion_model
    counts = {
        "unet": n_params(unet),
        "vae_encoder": n_params(fs.encoder, fs.quant_conv),
        "vae_decoder": n_params(fs.decoder, fs.post_quant_conv),
        "vocoder": n_params(fs.vocoder),
        "cond_stage_vae_encoder": n_params(cs.encoder, cs.quant_conv),
        "cond_stage_vae_decoder": n_params(cs.decoder, cs.post_quant_conv),
        "cond_stage_vocoder": n_params(cs.vocoder),
        "clap": n_params(model.clap),
        "model_ema_elements": sum(
            b.numel() for n, b in model.model_ema.named_buffers() if n not in ("decay", "num_updates")
        ),
        "state_dict_tensors": len(sd),
        "state_dict_elements": sum(v.numel() for v in sd.values()),
        "state_dict_fp32_bytes": sum(v.numel() * v.element_size() for v in sd.values()),
    }
    counts_m = {k: round(v / 1e6, 2) for k, v in counts.items() if k not in ("state_dict_tensors",)}
    ema_names = model.model_ema.m_name2s_name
    layout = {
        "how": "instantiated audiosr==0.0.7 LatentDiffusion(**get_basic_config()['model']['params']) on CPU "
        "(reload_from_ckpt removed, device='cpu') and dumped state_dict() names, shapes and dtypes",
        "reference": REFERENCE,
        "transformers": __import__("transformers").__version__,
        "counts": counts,
        "counts_millions": counts_m,
        "expected_millions": {"unet": 258.2, "vae_encoder": 90.0, "vae_decoder": 133.5, "vocoder": 190.3},
        "prefixes": prefixes,
        "notes": {
            "model_ema": "LitEma of model (the DiffusionWrapper): buffer name = parameter name of `model` with "
            "the dots removed, e.g. model.diffusion_model.input_blocks.0.0.weight -> "
            "model_ema.diffusion_modelinput_blocks00weight; plus model_ema.decay (0.9999) and "
            "model_ema.num_updates (int32)",
            "model_ema_example": dict(list(ema_names.items())[:3]),
            "cond_stage": "cond_stage_models.0 is VAEFeatureExtract; its AutoencoderKL is cond_stage_models.0.vae.* "
            "(encoder, decoder, quant_conv, post_quant_conv AND a full vocoder, like first_stage_model)",
            "vocoder": "first_stage_model.vocoder is hifigan.models.Generator (Generator_old) built by "
            "utilities/model.get_vocoder, which calls remove_weight_norm() right away: the state "
            "dict holds plain `weight`/`bias`, no weight_g/weight_v",
            "scale_factor": "scale_by_std=True: scale_factor is a registered 0-d buffer (1.0 at init; the "
            "checkpoint's value is the trained one)",
            "logvar": "DDPM.logvar is an nn.Parameter (requires_grad=False) of shape (timesteps,), zeros",
            "clap": "DDPM.__init__ always builds self.clap = CLAPAudioEmbeddingClassifierFreev2 (HTSAT-base "
            "audio branch + RoBERTa text branch); it is unused by super-resolution. Whether the "
            "published file carries clap.* could not be checked offline. Keys not enumerated here: "
            "the torchaudio MelSpectrogram (stubbed) buffers clap.mel_transform.spectrogram.window "
            "(1024,) and clap.mel_transform.mel_scale.fb (513, 64). "
            "clap.model.text_branch.embeddings.position_ids is persistent with transformers 4.30.2 "
            "(non-persistent from 4.31 on).",
            "lvlb_weights": "registered with persistent=False: not in the state dict",
        },
        "keys": keys,
    }
    keys_json = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in keys.items())
    body = json.dumps({k: v for k, v in layout.items() if k != "keys"}, indent=1)
    (out / "full_layout.json").write_text(body[:-2] + ',\n "keys": {\n' + keys_json + "\n }\n}\n")
    assert json.loads((out / "full_layout.json").read_text())["keys"] == keys
    log(f"  {len(keys)} keys; counts (M): " + ", ".join(f"{k}={v}" for k, v in counts_m.items()))
    del model, sd
    return counts


# ------------------------------------------------------------------ tiny weights


def reinit_(module, gen, gains=None):
    """Seeded re-initialisation of every parameter below `module` (no zero-initialised layers left)."""
    import math

    import torch
    from torch import nn

    gains = gains or {}
    with torch.no_grad():
        for name, m in module.named_modules():
            gain = 1.0
            for pattern, g in gains.items():
                if pattern in name:
                    gain = g
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
                w = m.weight
                fan_in = w[0].numel()
                w.copy_(torch.randn(w.shape, generator=gen) * (gain / math.sqrt(fan_in)))
            elif isinstance(m, (nn.ConvTranspose1d, nn.ConvTranspose2d)):
                w = m.weight  # (in, out, k...): each output sample sums in * k / stride products
                fan_in = w.shape[0] * w[0, 0].numel() / math.prod(m.stride)
                w.copy_(torch.randn(w.shape, generator=gen) * (gain / math.sqrt(fan_in)))
            elif isinstance(m, (nn.GroupNorm, nn.LayerNorm)):
                m.weight.copy_(1.0 + 0.1 * torch.randn(m.weight.shape, generator=gen))
            else:
                for pn, _ in m.named_parameters(recurse=False):
                    raise RuntimeError(f"unexpected parameter {name}.{pn} in {type(m).__name__}")
                continue
            if getattr(m, "bias", None) is not None:
                m.bias.copy_(0.05 * torch.randn(m.bias.shape, generator=gen))


def tiny_model():
    import torch

    _, published = published_params()
    params = tiny_params(published)
    torch.manual_seed(SEED)
    model = build_latent_diffusion(params, tiny_vocoder=TINY_VOCODER, with_clap=False)
    gen = torch.Generator().manual_seed(SEED)
    reinit_(model.model.diffusion_model, gen)
    reinit_(model.first_stage_model.encoder, gen)
    reinit_(model.first_stage_model.quant_conv, gen)
    reinit_(model.first_stage_model.post_quant_conv, gen)
    reinit_(model.first_stage_model.decoder, gen)
    # HiFi-GAN has no normalisation: He-like gains keep the level through five upsampling stages.
    reinit_(model.first_stage_model.vocoder, gen, gains=VOCODER_GAINS)
    with torch.no_grad():
        # The EMA copy holds the same tensors as the U-Net; the cond-stage VAE the same as the first stage.
        named = dict(model.model.named_parameters())
        buffers = dict(model.model_ema.named_buffers())
        for pname, sname in model.model_ema.m_name2s_name.items():
            buffers[sname].copy_(named[pname])
        model.cond_stage_models[0].vae.load_state_dict(model.first_stage_model.state_dict())
    for name, p in model.named_parameters():
        if p.requires_grad or name.startswith(("first_stage_model.", "cond_stage_models.")):
            assert p.numel() == 1 or p.std() > 0, f"{name} was left constant"
    return model, params


def self_check(out: Path, params, tensors) -> None:
    """A fresh tiny model loading tiny_checkpoint.bin strictly reproduces the stored outputs exactly."""
    import torch

    model = build_latent_diffusion(params, tiny_vocoder=TINY_VOCODER, with_clap=False)
    ckpt = torch.load(out / "tiny_checkpoint.bin", map_location="cpu", weights_only=True)
    model.load_state_dict(ckpt["state_dict"], strict=True)
    assert set(ckpt["state_dict"]) == set(model.state_dict())
    with torch.no_grad():
        t = torch.full((2,), 500, dtype=torch.long)
        checks = {
            "unet_out_t500": model.model.diffusion_model(
                tensors["unet_x"], t, context_list=[], context_attn_mask_list=[]
            ),
            "vae_mean": model.first_stage_model.encode(tensors["vae_input"]).mean,
            "vae_decoded": model.cond_stage_models[0].vae.decode(tensors["vae_mean"]),
            "vocoder_waveform": model.first_stage_model.vocoder(tensors["vocoder_mel"]),
        }
    for k, v in checks.items():
        assert torch.equal(v, tensors[k]), f"self-check failed for {k}"
    log("  self-check: a fresh model loading tiny_checkpoint.bin (strict) reproduces " + ", ".join(checks))


# ------------------------------------------------------------------ fixtures


def test_waveform():
    import numpy as np
    from audiosr.utils import normalize_wav

    sr = 48000
    t = np.arange(sr, dtype=np.float64) / sr
    rng = np.random.default_rng(SEED)
    x = (
        0.30 * np.sin(2 * np.pi * 440 * t)
        + 0.20 * np.sin(2 * np.pi * 1000 * t + 0.3)
        + 0.10 * np.sin(2 * np.pi * 3500 * t + 1.1)
        + 0.05 * np.sin(2 * np.pi * 9000 * t + 2.0)
        + 0.02 * rng.standard_normal(sr)
    )
    return normalize_wav(x.astype(np.float32)).astype(np.float32)  # the reference's: mean removed, peak 0.5


def summarise(name, x):
    import torch

    x = torch.as_tensor(x)
    finite = bool(torch.isfinite(x).all())
    log(
        f"  {name}: shape {tuple(x.shape)} min {x.min().item():.4g} max {x.max().item():.4g} "
        f"std {x.float().std().item():.4g}"
    )
    assert finite, f"{name} is not finite"
    return {"shape": list(x.shape), "min": x.min().item(), "max": x.max().item(), "std": x.float().std().item()}


def ddim_run(sampler, eta, cond, uncond, x_T):
    """The reference DDIMSampler, recording each step's output and the noise it draws."""
    import audiosr.latent_diffusion.models.ddim as ddim_mod
    import torch

    drawn, steps, pred_x0s, visited = [], [], [], []
    real_noise_like, real_step = ddim_mod.noise_like, sampler.p_sample_ddim

    def noise_like(shape, device, repeat=False):
        n = real_noise_like(shape, device, repeat)
        drawn.append(n.clone())
        return n

    def step(x, c, t, index, **kw):
        visited.append(int(t[0]))
        out = real_step(x, c, t, index, **kw)
        steps.append(out[0].clone())
        pred_x0s.append(out[1].clone())
        return out

    ddim_mod.noise_like, sampler.p_sample_ddim = noise_like, step
    torch.manual_seed(SEED + 3)
    try:
        with torch.no_grad():
            samples, _ = sampler.sample(
                5,
                1,
                tuple(x_T.shape[1:]),
                cond,
                verbose=False,
                eta=eta,
                x_T=x_T.clone(),
                unconditional_guidance_scale=3.5,
                unconditional_conditioning=uncond,
            )
    finally:
        ddim_mod.noise_like = real_noise_like
        del sampler.p_sample_ddim
    return samples, torch.stack(steps), torch.stack(pred_x0s), torch.stack(drawn), visited


def make_io(model, params):
    import numpy as np
    import torch
    from audiosr.latent_diffusion.models.ddim import DDIMSampler
    from audiosr.utils import mel_spectrogram_train, wav_feature_extraction

    tensors, notes, stats = {}, {}, {}
    gen = torch.Generator().manual_seed(SEED + 1)

    # --- mel front end at the published settings
    log("mel front end (published settings)")
    wav = test_waveform()
    mel, _stft = wav_feature_extraction(wav[None, :], target_frame=100)
    raw_mel, _ = mel_spectrogram_train(torch.from_numpy(wav)[None, :])
    assert torch.equal(raw_mel.T, mel), "wav_feature_extraction should only transpose at target_frame=100"
    # the pipeline's own padding (read_wav_file): 1 s -> 5.12 s of zeros, target_frame 512
    padded = np.zeros((1, int(48000 * 5.12)), dtype=np.float32)
    padded[:, : wav.shape[0]] = wav
    raw_padded, _ = mel_spectrogram_train(torch.from_numpy(padded))
    mel_padded, _ = wav_feature_extraction(padded, target_frame=512)
    same = torch.isclose(mel_padded[:100], mel, rtol=0, atol=0).all(dim=1).tolist() + [False]
    leading_equal = same.index(False)
    tensors["mel_waveform"] = torch.from_numpy(wav)
    tensors["mel_log_mel"] = mel
    stats["mel_log_mel"] = summarise("log-mel", mel)
    notes["mel"] = {
        "function": "audiosr.utils.wav_feature_extraction(waveform (1, N), target_frame) -> mel_spectrogram_train; "
        "pipeline.make_batch_for_super_resolution -> utils.read_audio_file -> read_wav_file "
        "(resample to 48 kHz, normalize_wav, zero-pad to a multiple of 5.12 s) -> wav_feature_extraction",
        "settings": {
            **PUBLISHED_MEL,
            "mel_basis": "librosa.filters.mel(sr=48000, n_fft=2048, n_mels=256, fmin=20, fmax=24000) "
            "(slaney scale and norm)",
            "window": "torch.hann_window(2048) (periodic)",
        },
        "padding": "reflect-pad (n_fft - hop) / 2 = 784 samples on both sides, then torch.stft(center=False, "
        "onesided, return_complex) and abs (magnitude, power 1)",
        "log": "log(clamp(mel_basis @ |STFT|, min=1e-5)) (natural log, floor -11.5129)",
        "orientation": "(T, F): time frames first, 256 mel bins last",
        "waveform": "1 s at 48 kHz: sines 440/1000/3500/9000 Hz + seeded noise, passed through the reference's "
        "normalize_wav (mean removed, peak 0.5)",
        "frames_for_1s": int(mel.shape[0]),
        "frames_formula": "1 + (N + 2 * 784 - 2048) // 480 = N // 480 for N samples",
        "pipeline_padding_for_1s": {
            "padded_samples": int(padded.shape[1]),
            "stft_frames": int(raw_padded.shape[-1]),
            "target_frame": 512,
            "note": "read_wav_file zero-pads the waveform to 5.12 s, so the STFT gives exactly target_frame "
            "frames and pad_spec neither pads nor cuts; frames of the silent tail are the log floor. "
            "(pad_spec itself fills missing frames with 0.0, not the floor, and drops the last mel bin "
            "if their number is odd.)",
            "leading_frames_equal_to_unpadded": leading_equal,
            "tail_value": float(mel_padded[-1, 0]),
        },
    }

    # --- VAE
    log("VAE encode / decode")
    fs = model.first_stage_model
    tt = torch.linspace(0, 1, 16)[:, None]
    ff = torch.linspace(0, 1, 16)[None, :]
    image = (-4.5 + 4.0 * torch.cos(3.0 * tt + 2.0 * ff) - 5.0 * ff + 0.8 * torch.randn(16, 16, generator=gen)).clamp(
        -11.0, 2.0
    )[None, None]
    with torch.no_grad():
        post = fs.encode(image)
        dec = fs.decode(post.mean)
    tensors.update(vae_input=image, vae_mean=post.mean, vae_logvar=post.logvar, vae_decoded=dec)
    for k in ("vae_input", "vae_mean", "vae_logvar", "vae_decoded"):
        stats[k] = summarise(k, tensors[k])
    notes["vae"] = {
        "orientation": "image (B, 1, T, F); latents (B, embed_dim, T/2, F/2)",
        "encode": "moments = quant_conv(encoder(x)); mean, logvar = chunk(moments, 2, dim=1); "
        "logvar clamped to [-30, 20] (DiagonalGaussianDistribution)",
        "decode": "decoder(post_quant_conv(z)) with z = vae_mean",
    }

    # --- U-Net
    log("U-Net")
    unet = model.model.diffusion_model
    x = torch.randn(2, 8, 8, 8, generator=gen)
    tensors["unet_x"] = x
    for t in (1, 500, 999):
        with torch.no_grad():
            y = unet(x, torch.full((2,), t, dtype=torch.long), context_list=[], context_attn_mask_list=[])
        tensors[f"unet_out_t{t}"] = y
        stats[f"unet_out_t{t}"] = summarise(f"unet t={t}", y)
    notes["unet"] = {
        "call": "diffusion_model(x, timesteps (B,) long, context_list=[], context_attn_mask_list=[])",
        "orientation": "(B, C, T, F); input = cat([noisy latent (4), scaled condition latent (4)])",
    }

    # --- vocoder
    log("vocoder")
    voc = fs.vocoder
    vmel = (-5.0 + 2.0 * torch.randn(1, 16, 10, generator=gen)).clamp(-11.5, 2.0)
    with torch.no_grad():
        wav_out = voc(vmel)
    tensors.update(vocoder_mel=vmel, vocoder_waveform=wav_out)
    stats["vocoder_waveform"] = summarise("vocoder waveform", wav_out)
    notes["vocoder"] = {
        "input_orientation": "(B, n_mels, T): LatentDiffusion.mel_spectrogram_to_waveform squeezes (B, 1, T, F) "
        "and permutes to (B, F, T) before Generator",
        "output": "(B, 1, samples), tanh; raw, before any int16 scaling",
        "frames": int(vmel.shape[-1]),
        "samples": int(wav_out.shape[-1]),
        "samples_formula_check": int(wav_out.shape[-1]) == 480 * int(vmel.shape[-1]) + 16,
        "samples_per_frame_nominal": 480,
        "length_rule": "ConvTranspose1d(k, u, padding=(k-u)//2): L -> (L-1)*u - 2*((k-u)//2) + k; with the "
        "published rates/kernels 6L, 5L+1, 4L, 2L, 2L, so samples = 480 * frames + 16",
        "final_activation": "leaky_relu with the default slope 0.01 before conv_post (the inner ones use 0.1)",
    }

    # --- DDIM
    log("DDIM (5 steps, v-parameterisation, CFG 3.5)")
    cond_model = model.cond_stage_models[0]
    torch.manual_seed(SEED + 2)
    with torch.no_grad():
        c = cond_model(image[:, 0])  # VAEFeatureExtract: vae.encode(mel.unsqueeze(1)).sample(): raw latent units
        uc = cond_model.get_unconditional_condition(1)
    x_T = torch.randn(1, 4, 8, 8, generator=gen)
    key = "concat_lowpass_cond"
    sampler = DDIMSampler(model, device=torch.device("cpu"))
    runs = {}
    for eta in (0.0, 1.0):
        samples, steps, pred_x0s, drawn, visited = ddim_run(sampler, eta, {key: c}, {key: uc}, x_T)
        tag = f"ddim_eta{int(eta)}"
        tensors[f"{tag}_sample"] = samples
        tensors[f"{tag}_steps"] = steps
        tensors[f"{tag}_pred_x0"] = pred_x0s
        if eta:
            tensors[f"{tag}_noise"] = drawn
        stats[f"{tag}_sample"] = summarise(f"{tag} sample", samples)
        runs[tag] = {
            "eta": eta,
            "visited_timesteps": visited,
            "ddim_timesteps": [int(v) for v in sampler.ddim_timesteps],
            "ddim_alphas": [float(v) for v in sampler.ddim_alphas],
            "ddim_alphas_prev": [float(v) for v in sampler.ddim_alphas_prev],
            "ddim_sigmas": [float(v) for v in sampler.ddim_sigmas],
        }
        if eta == 0.0:
            with torch.no_grad():
                mel0 = model.decode_first_stage(samples.clone())
                wav0 = model.mel_spectrogram_to_waveform(mel0.clone(), save=False)
            tensors["ddim_eta0_decoded_mel"] = mel0
            tensors["ddim_eta0_waveform"] = torch.from_numpy(np.ascontiguousarray(wav0))
    tensors.update(ddim_c=c, ddim_uc=uc, ddim_x_T=x_T)
    stats["ddim_c"] = summarise("ddim c", c)
    ac = model.alphas_cumprod
    notes["ddim"] = {
        "sampler": "audiosr.latent_diffusion.models.ddim.DDIMSampler(LatentDiffusion).sample(S=5, batch_size=1, "
        "shape=(4, 8, 8), conditioning={'concat_lowpass_cond': c}, eta, x_T, "
        "unconditional_guidance_scale=3.5, unconditional_conditioning={'concat_lowpass_cond': uc})",
        "discretisation": "uniform: range(0, 1000, 1000 // S) + 1; visited in reverse",
        "guidance": "out = uncond + 3.5 * (cond - uncond) on the v prediction; e_t = sqrt(ac[t]) * v + "
        "sqrt(1 - ac[t]) * x; pred_x0 = sqrt(ac[t]) * x - sqrt(1 - ac[t]) * v (model buffers at t); "
        "x_prev = sqrt(a_prev) * pred_x0 + sqrt(1 - a_prev - sigma^2) * e_t + sigma * noise",
        "condition": "the U-Net input is cat([x, scale_factor * c], dim=1) (DiffusionWrapper multiplies the concat "
        "condition by scale_factor); c is in raw VAE latent units",
        "c": "VAEFeatureExtract(vae_input[:, 0]) = cond VAE encode(...).sample() (posterior sample, seeded)",
        "uc": "VAEFeatureExtract.get_unconditional_condition: -11.4981 everywhere (raw latent units), scaled "
        "by scale_factor like c",
        "final_step_alpha_prev": float(ac[0]),
        "final_step_alpha_prev_note": "the last DDIM step (t=1) goes to alphas_cumprod[0], not to 1.0",
        "noise": "ddim_eta1_noise[i] is the standard normal noise drawn at step i (multiplied by sigma); eta=0 "
        "draws noise too but multiplies it by 0",
        "sample": "ddim_eta*_sample is the latent before 1/scale_factor and decoding; ddim_eta0_decoded_mel = "
        "decode_first_stage(sample) (divides by scale_factor), (B, 1, T, F); ddim_eta0_waveform = "
        "mel_spectrogram_to_waveform(mel) raw vocoder output (B, 1, samples)",
        "steps": "ddim_eta*_steps[i] / ddim_eta*_pred_x0[i]: x_prev and pred_x0 after step i",
        "runs": runs,
    }
    return tensors, notes, stats


def inner(args: argparse.Namespace) -> int:
    import hashlib
    import json
    import warnings

    import torch

    warnings.filterwarnings("ignore", message=".*weight_norm.* is deprecated", category=FutureWarning)
    torch.use_deterministic_algorithms(True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    log(f"step 1/5: namespace shim over {install_shims()}")

    log("step 2/5: full layout at the published configuration")
    torch.set_num_threads(2)  # only speeds up the random init of the full-size model
    counts = {} if args.skip_full else full_layout(out)
    torch.set_num_threads(1)  # the fixtures' numbers: one thread, the same summation order everywhere

    log("step 3/5: tiny LatentDiffusion with seeded random weights")
    model, params = tiny_model()
    sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    # The EMA copy and the cond-stage VAE hold the same values as the U-Net / the first-stage VAE: store
    # them as the same tensors, so that torch.save writes each storage once (half the file size).
    for pname, sname in model.model_ema.m_name2s_name.items():
        assert torch.equal(sd[f"model_ema.{sname}"], sd[f"model.{pname}"])
        sd[f"model_ema.{sname}"] = sd[f"model.{pname}"]
    for k in model.first_stage_model.state_dict():
        assert torch.equal(sd[f"cond_stage_models.0.vae.{k}"], sd[f"first_stage_model.{k}"])
        sd[f"cond_stage_models.0.vae.{k}"] = sd[f"first_stage_model.{k}"]
    torch.save({"state_dict": sd}, out / "tiny_checkpoint.bin")
    log(f"  {len(sd)} tensors, {sum(v.numel() for v in sd.values())} elements")

    from audiosr.utilities.model import get_vocoder_config_48k

    vocoder_cfg = dict(get_vocoder_config_48k())
    vocoder_cfg.update(TINY_VOCODER)
    fs = model.first_stage_model
    tiny_cfg = {
        "reference": REFERENCE,
        "seed": SEED,
        "latent_diffusion_params": {k: v for k, v in params.items() if k not in ("device",)},
        "unet": TINY_UNET,
        "ddconfig": TINY_DDCONFIG,
        "embed_dim": TINY_EMBED_DIM,
        "vocoder": vocoder_cfg,
        "scale_factor": TINY_SCALE_FACTOR,
        "schedule": {
            k: params[k] for k in ("beta_schedule", "timesteps", "linear_start", "linear_end", "parameterization")
        }
        | {"cosine_s": 0.008, "v_posterior": 0.0},
        "latent": TINY_LATENT,
        "published_mel": PUBLISHED_MEL,
        "counts": {
            "unet": n_params(model.model.diffusion_model),
            "vae_encoder": n_params(fs.encoder, fs.quant_conv),
            "vae_decoder": n_params(fs.decoder, fs.post_quant_conv),
            "vocoder": n_params(fs.vocoder),
        },
        "weights": "torch.manual_seed(0) for construction, then every parameter of the U-Net, the VAE and the "
        "vocoder redrawn from torch.Generator().manual_seed(0): conv/linear weights "
        "~ N(0, (g/sqrt(fan_in))^2) "
        f"with g = 1 (vocoder: {VOCODER_GAINS}; fan_in of a transposed conv = in*k/stride), "
        "biases ~ N(0, 0.05^2), GroupNorm/LayerNorm weight ~ 1 + N(0, 0.1^2) and bias ~ N(0, 0.05^2); "
        "model_ema.* = the U-Net's tensors; cond_stage_models.0.vae.* = first_stage_model.*",
        "shared_storage": "in tiny_checkpoint.bin, model_ema.<name> is the same tensor as model.<dotted name> and "
        "cond_stage_models.0.vae.<k> the same tensor as first_stage_model.<k> (each storage is "
        "written once); torch.load returns them as aliases",
        "not_in_tiny_checkpoint": "clap.* (DDPM.clap, a fixed-size CLAP unused at inference; see full_layout.json)",
        "vocoder_construction_note": "utilities/model.get_vocoder uses get_vocoder_config_48k() for any mel_bins "
        "!= 64; the tiny vocoder config was substituted for that function's result",
    }
    (out / "tiny_config.json").write_text(json.dumps(tiny_cfg, indent=1) + "\n")

    log("step 4/5: inputs and reference outputs")
    tensors, notes, stats = make_io(model, params)
    from safetensors.torch import save_file

    tensors = {k: v.detach().to(torch.float32).contiguous() for k, v in sorted(tensors.items())}
    save_file(tensors, str(out / "tiny_io.safetensors"))
    os.chmod(out / "tiny_io.safetensors", 0o644)
    io_json = {
        "reference": REFERENCE,
        "checkpoint": "tiny_checkpoint.bin (config: tiny_config.json)",
        "orientation": "all tensors in the REFERENCE's orientation: mel (B, T, F) time first, mel bins last "
        "(the 1 s front-end mel is (T, F) without batch); VAE image (B, 1, T, F); latents "
        "(B, C, T/f, F/f); vocoder input (B, n_mels, T) and output (B, 1, samples)",
        "dtype": "float32",
        "scale_factor": TINY_SCALE_FACTOR,
        "tensors": {k: list(v.shape) for k, v in tensors.items()},
        "stats": stats,
        "notes": notes,
    }
    (out / "tiny_io.json").write_text(json.dumps(io_json, indent=1) + "\n")
    self_check(out, params, tensors)

    log("step 5/5: README and digests")
    write_readme(out)
    for f in sorted(out.iterdir()):
        digest = hashlib.sha256(f.read_bytes()).hexdigest()[:16]
        log(f"  {f.name:24s} {f.stat().st_size:>10d} bytes  sha256 {digest}")
    if counts:
        exp = {"unet": 258.2, "vae_encoder": 90.0, "vae_decoder": 133.5, "vocoder": 190.3}
        for k, v in exp.items():
            log(f"  count {k}: {counts[k] / 1e6:.2f} M (expected about {v} M)")
    log(f"inner done in {time.time() - t0:.1f} s")
    return 0


README = """\
# AudioSR reference fixtures

Written by `python tools/audiosr_reference.py` (reference: PyPI `audiosr==0.0.7`, run in a throwaway
venv; never a dependency of this project). Regenerate with

    python tools/audiosr_reference.py --out tests/fixtures/audiosr

(`--venv DIR` keeps/reuses the environment; the run is deterministic: same bytes every time.)

- `full_layout.json`: every key, shape and dtype of the reference `LatentDiffusion.state_dict()` at the
  published configuration (the layout of `pytorch_model.bin` of haoheliu/audiosr_basic), sub-network
  parameter counts (`counts`) and notes on the prefixes (EMA naming, cond-stage VAE, vocoder, CLAP).
- `tiny_checkpoint.bin`: `{"state_dict": ...}` with that layout (without `clap.*`) at tiny widths, seeded
  random weights; `model_ema.*` equals the U-Net, `cond_stage_models.0.vae.*` equals `first_stage_model.*`.
- `tiny_config.json`: the reference configs of the tiny networks, the schedule, `scale_factor`, the
  published mel settings and how the weights were drawn.
- `tiny_io.safetensors` + `tiny_io.json`: inputs and the reference's outputs (fp32, the reference's
  orientation: mel (T, F) / (B, T, F), VAE image (B, 1, T, F), latents (B, C, T/2, F/2)): the published mel
  front end on a 1 s waveform, VAE encode/decode, U-Net at t = 1, 500, 999, the vocoder, and a 5-step DDIM run
  (eta 0 and eta 1 with the recorded noise, CFG 3.5). `tiny_io.json` holds the notes and scalars.
"""


def write_readme(out: Path) -> None:
    (out / "README.md").write_text(README)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venv", help="virtual environment to create or reuse (default: a temporary one)")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="fixture folder (default: tests/fixtures/audiosr)")
    ap.add_argument("--keep-venv", action="store_true", help="keep the temporary venv")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--skip-full", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    return inner(args) if args.inner else outer(args)


if __name__ == "__main__":
    sys.exit(main())
