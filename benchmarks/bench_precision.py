"""Time per network of one batch of restore windows in each precision the restore path can run: fp32 as
trained (torch's default layout, nearest-neighbour upsampling), fp32 in the restore path's form
(`inference_form`: channels-last, transposed-conv upsampling), bf16 autocast in that form and its 8-bit
copy (`audiosr.inference.int8`, where this torch has oneDNN's quantized kernels), with bf16's and int8's
largest error against fp32 as a fraction of fp32's peak. It shows whether bf16 or int8 pays on this CPU
(`auto` picks bf16 on a GPU or a CPU with AMX, fp32 elsewhere; int8 is asked for).

    python benchmarks/bench_precision.py [--profile small|full] [--batch 4] [--frames 512] [--rounds 3]
                                         [--threads 2] [--publish]

Random weights of a profile (the cost does not depend on the weights), the VAE's encoder and decoder,
the U-Net (one pass) and the vocoder on a batch of `--frames` mel frames each (512: one 5.12 s window);
the best of `--rounds` rounds of three calls each.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from audiosr import docpages
from audiosr.inference import int8
from audiosr.inference.restore import bf16_native, inference_form
from audiosr.models.unet import build_unet
from audiosr.models.vae import build_vae
from audiosr.models.vocoder import build_vocoder
from audiosr.profiles import resolve

MODES = ("fp32, training form", "fp32, inference form", "bf16, inference form", "int8, inference form")


def networks(profile: str, batch: int, frames: int) -> dict:
    """{name: (module, its call on one input batch)} of random weights of `profile`."""
    n_mels = 64 if profile == "small" else 256
    vae = build_vae(resolve(profile, "vae"), n_mels).eval()
    unet = build_unet(resolve(profile, "ldm"), vae.latent_channels).eval()
    arch = {**resolve(profile, "vocoder"), "hop": 480}
    vocoder = build_vocoder(arch, n_mels).eval()
    if hasattr(vocoder, "remove_weight_norm"):
        vocoder.remove_weight_norm()
    for net in (vae, unet, vocoder):
        for p in net.parameters():
            p.data.normal_(0.0, 0.05)
    mel = torch.randn(batch, n_mels, frames)
    z = torch.randn(batch, vae.latent_channels, n_mels // vae.factor, frames // vae.factor)
    t = torch.full((batch,), 999.0)
    return {
        "VAE encoder": (vae, lambda m: m.encode(mel)[0]),
        "VAE decoder": (vae, lambda m: m.decode(z)),
        "U-Net": (unet, lambda m: m(torch.cat([z, z], 1), t)),
        "vocoder": (vocoder, lambda m: m(mel)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=["small", "full"], default="small")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--frames", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's, one per core)")
    ap.add_argument("--publish", action="store_true", help="write the table into docs/performance.md")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    modes = MODES if int8.available() else MODES[:3]
    rows = []
    for name, (net, call) in networks(args.profile, args.batch, args.frames).items():
        fast = copy.deepcopy(net)
        inference_form(fast)
        variants = {MODES[0]: (net, False), MODES[1]: (fast, False), MODES[2]: (fast, True)}
        if MODES[3] in modes:
            variants[MODES[3]] = (int8.int8_form(fast), False)
        with torch.no_grad():
            ref = call(net).float()
            times, errors = {}, {}
            for _ in range(args.rounds):
                for mode, (m, bf16) in variants.items():
                    with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                        errors[mode] = float((call(m).float() - ref).abs().max() / ref.abs().max())
                        start = time.perf_counter()
                        for _ in range(3):
                            call(m)
                        took = (time.perf_counter() - start) / 3
                    times[mode] = min(times.get(mode, took), took)
        rows.append((name, times, errors))
    cpu = "AMX" if bf16_native(torch.device("cpu")) else "no AMX"
    lines = [
        f"profile {args.profile}, batch {args.batch} x {args.frames} frames, {torch.get_num_threads()} threads, "
        f"CPU: {cpu} (auto: {'bf16' if cpu == 'AMX' else 'fp32'})",
        "",
        "| network | "
        + " | ".join(f"{m} (ms)" for m in modes)
        + " | "
        + " | ".join(f"{m.split(',')[0]} error" for m in modes[2:])
        + " |",
        "| --- |" + " ---: |" * (2 * len(modes) - 2),
    ]
    for name, times, errors in rows:
        cells = " | ".join(f"{1000 * times[m]:.0f}" for m in modes)
        errs = " | ".join(f"{errors[m]:.3f}" for m in modes[2:])
        lines.append(f"| {name} | {cells} | {errs} |")
    print("\n".join(lines))
    if args.publish:
        docpages.publish("bench_precision", "\n".join(lines))


if __name__ == "__main__":
    main()
