"""Training throughput: samples per second and peak memory of each model's real training step.

    python benchmarks/bench_train.py [--profiles small full] [--models vae vocoder ldm] [--steps 5]

Each (model, profile) runs in a fresh process: the model's Task (the code the training stages run)
on random segments of the training shapes, `--steps` timed steps after one warm-up step. On a GPU the
U-Net step runs under bf16 autocast, as in training. Peak memory is the process's peak resident set
on a CPU and torch's peak allocation on a GPU. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from audiosr import docpages
from audiosr.audio import MelConfig
from audiosr.config import model_block
from audiosr.data.store import SegmentSet
from audiosr.profiles import resolve
from audiosr.train import loop
from audiosr.train.distributed import Dist, pick_device

N_MELS = {"small": 64, "full": 256}
# AudioSR's training batch and example length in mel frames (its get_basic_config: the LDM's 16 and the
# VAE's 4 of 10.24 s; get_vocoder_config_48k: 128 over 8 GPUs of 0.32 s), and the throughput a GPU sustains
# on these networks, for the projection
AUDIOSR_BATCH = {"vae": 4, "ldm": 16, "vocoder": 128}
AUDIOSR_FRAMES = {"vae": 1024, "ldm": 1024, "vocoder": 32}
SUSTAINED_TFLOPS = 300.0


def fake_set(n: int, mel: MelConfig, frames: int = 512) -> SegmentSet:
    rng = np.random.default_rng(0)
    wave = (rng.standard_normal((n, frames * mel.hop)) * 3000).astype(np.int16)
    mels = rng.normal(-4, 2, (n, mel.n_mels, frames)).astype(np.float16)
    meta = {"mel": mel.to_dict(), "segments": n}
    return SegmentSet(Path("."), wave, mels, pd.DataFrame({"track": ["t"] * n, "start": 0.0}), meta)


def make_task(model: str, profile: str, block: dict, d: Dist):
    from audiosr.models.vae import build_vae
    from audiosr.train.ldm import LDMTask
    from audiosr.train.vae import VAETask
    from audiosr.train.vocoder import VocoderTask

    mel = MelConfig(n_mels=N_MELS[profile])
    data = fake_set(8, mel)
    cfg = model_block(model, block, profile, mel.hop)
    if model == "vae":
        return VAETask(cfg, mel, data, data, d)
    if model == "vocoder":
        return VocoderTask(cfg, mel, data, data, d)
    arch = resolve(profile, "vae", {})
    vae = build_vae(arch, mel.n_mels)
    vae_cfg = {
        "arch": arch,
        "n_mels": mel.n_mels,
        "scale": 1.0,
        "factor": vae.factor,
        "latent_channels": arch["latent_channels"],
    }
    return LDMTask(cfg, vae.state_dict(), vae_cfg, data, data, data, data, d)


def child(model: str, profile: str, steps: int) -> dict:
    import yaml

    block = dict(yaml.safe_load(open("params.yaml"))[model])
    block["steps"] = 10_000
    if "adv_start" in block:  # time the full (adversarial) step where there is one
        block["adv_start"] = 0
    d = Dist(device=pick_device())
    task = make_task(model, profile, block, d)
    draws = loop.batches(task, range(steps + 1), d)  # the task's own batches, as the training loop gets them
    with FlopCounterMode(display=False) as flops:  # the warm-up step, counted: forward and backward
        task.step(0, next(draws))
    if d.device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for i in range(steps):
        task.step(i + 1, next(draws))
    if d.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / steps
    peak = (
        torch.cuda.max_memory_allocated()
        if d.device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    params = sum(p.numel() for name, m in task.modules.items() if name not in ("disc", "ema") for p in m.parameters())
    return {
        "model": model,
        "profile": profile,
        "device": str(d.device),
        "batch": task.samples_per_step,
        "s_per_step": seconds,
        "samples_per_s": task.samples_per_step / seconds,
        "peak_gb": peak / 2**30,
        "params_m": params / 1e6,
        "tflop_per_sample": flops.get_total_flops() / task.samples_per_step / 1e12,
        "frames": block["crop_frames"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profiles", nargs="+", default=["small"])
    ap.add_argument("--models", nargs="+", default=["vae", "vocoder", "ldm"])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--publish", action="store_true", help="write the table into docs/performance.md")
    ap.add_argument("--child", nargs=2, metavar=("MODEL", "PROFILE"))
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args.steps)))
        return
    rows = []
    for profile in args.profiles:
        for model in args.models:
            out = subprocess.run(
                [sys.executable, __file__, "--child", model, profile, "--steps", str(args.steps)],
                capture_output=True,
                text=True,
            )
            if out.returncode:
                print(f"{model}/{profile} failed:\n{out.stderr[-2000:]}", file=sys.stderr)
                continue
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    lines = [
        f"training step throughput, torch {torch.__version__}, {torch.get_num_threads()} threads",
        "",
        "| model | profile | device | params (M) | batch | s/step | samples/s | peak memory (GB) | TFLOP/sample |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['profile']} | {r['device']} | {r['params_m']:.1f} | {r['batch']} | "
            f"{r['s_per_step']:.3f} | {r['samples_per_s']:.1f} | {r['peak_gb']:.2f} | {r['tflop_per_sample']:.3f} |"
        )
    full = [r for r in rows if r["profile"] == "full"]
    if full:
        lines += [
            "",
            "A projection, not a measurement: GPU-hours per 100 k training steps of the full profile at AudioSR's "
            "batch sizes and example lengths, from the FLOPs counted above (one step, forward and backward, "
            "discriminators included) scaled by frames (the networks are convolutional), at a sustained "
            f"{SUSTAINED_TFLOPS:g} TFLOP/s (about 30 % of an H100's or H200's dense bf16 peak).",
            "",
            "| model | AudioSR's batch | example | TFLOP/step | GPU-hours per 100 k steps |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for r in full:
            batch, frames = AUDIOSR_BATCH[r["model"]], AUDIOSR_FRAMES[r["model"]]
            step = r["tflop_per_sample"] * frames / r["frames"] * batch
            hours = 1e5 * step / SUSTAINED_TFLOPS / 3600
            lines.append(f"| {r['model']} | {batch} | {frames / 100:g} s | {step:.1f} | {hours:.1f} |")
    print("\n" + "\n".join(lines))
    if args.publish:
        docpages.publish("bench_train", "\n".join(lines))


if __name__ == "__main__":
    main()
