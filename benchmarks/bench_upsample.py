"""Real-time factor and peak memory of `audiosr upsample` on stereo 44.1 kHz files of several lengths,
for the teacher (`--steps` DPM-Solver++ steps with `--guidance`; by default its own single step, what
`audiosr upsample` runs) and, with `--systems teacher student`, the one-step student, per precision.

    python benchmarks/bench_upsample.py [--model PATH | --profile small|full] [--seconds 10 60 600]
                                        [--systems teacher student] [--precisions fp32 bf16 int8 auto]
                                        [--steps 1] [--guidance 1] [--batch 4] [--device cpu|cuda]

Writes a stereo 44.1 kHz PCM file per length (band-limited music-like content, low-passed at 8 kHz),
then for each one starts a fresh process that loads the model, warms it up on one second of audio and
runs `Pipeline.upsample_file` (read, resample, restore, write: what the command does). The RTF is the
processing time per second of audio, model loading and warm-up excluded (the CPU seconds per audio
second beside it are what a busy machine cannot inflate). The first file of a length also pays for
building the kernels of its window shapes (oneDNN's: on a CPU about 0.1 s for a batch of whole windows and
0.04 s for the last, shorter ones), which the warm-up's short windows did not need; the next file of that
length (the same file restored again in the same process: what each further file of a folder costs) does
not. Peak memory is the process's peak resident set (ru_maxrss), so it includes Python, torch and the
model. `--profile` times randomly initialised weights of a profile instead of a trained model (the cost
does not depend on the weights; its student is a copy of its U-Net). A precision the device does not run
natively (bf16 on a CPU without AMX or AVX-512 BF16) is emulated and slow: `auto` picks for the device.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from audiosr import docpages
from audiosr.names import PRECISIONS

RATE = 44_100
PATTERN_S = 10.0  # the content is a 10 s stereo pattern, repeated


def make_input(path: Path, seconds: float) -> None:
    """A stereo 44.1 kHz 16-bit file of `seconds`, written block by block."""
    from audiosr.degrade import lowpass

    rng = np.random.default_rng(0)
    t = np.arange(int(PATTERN_S * RATE)) / RATE
    channels = []
    for _ in range(2):
        partials = sum(
            rng.uniform(0.02, 0.08) * np.sin(2 * np.pi * rng.uniform(60, 6000) * t + rng.uniform(0, 6))
            for _ in range(24)
        )
        hits = rng.standard_normal(len(t)) * np.exp(-((t * 4) % 1) * 12) * 0.1  # a noise burst every 0.25 s
        channels.append(lowpass((partials + hits).astype(np.float32), RATE, "chebyshev", 8, 8000.0))
    pattern = np.stack(channels, axis=1)
    pattern *= 0.7 / np.abs(pattern).max()
    total = int(seconds * RATE)
    with sf.SoundFile(str(path), "w", RATE, 2, "PCM_16") as f:
        for start in range(0, total, len(pattern)):
            f.write(pattern[: total - start])


def random_pipeline(profile: str, out: Path) -> Path:
    """A pipeline folder of randomly initialised `profile` models, configured as the training stages
    export them (n_mels 64 for small, 256 for full)."""
    import torch
    from safetensors.torch import load_file

    from audiosr.audio import MelConfig
    from audiosr.models.unet import build_unet
    from audiosr.models.vae import build_vae
    from audiosr.models.vocoder import build_vocoder
    from audiosr.packaging import package
    from audiosr.profiles import resolve
    from audiosr.train.checkpoint import save_model

    torch.manual_seed(0)
    n_mels = 64 if profile == "small" else 256
    mel = MelConfig(n_mels=n_mels).to_dict()
    arch = {part: resolve(profile, part) for part in ("vae", "ldm", "vocoder")}
    arch["vocoder"]["hop"] = mel["hop"]  # the vocoder's hop is the mel's (audiosr.config)
    vae = build_vae(arch["vae"], n_mels)
    common = {"version": 1, "profile": profile, "n_mels": n_mels, "steps": 0}
    save_model(
        out / "vae",
        vae.state_dict(),
        {
            **common,
            "arch": arch["vae"],
            "mel": mel,
            "scale": 1.0,
            "factor": vae.factor,
            "latent_channels": vae.latent_channels,
        },
    )
    save_model(
        out / "ldm",
        build_unet(arch["ldm"], vae.latent_channels).state_dict(),
        {**common, "arch": arch["ldm"], "latent_channels": vae.latent_channels},
    )
    save_model(
        out / "vocoder",
        build_vocoder(arch["vocoder"], n_mels).state_dict(),
        {**common, "arch": arch["vocoder"], "mel": mel},
    )
    student = {"sampling_steps": 1, "teacher": {"steps": 20, "guidance": 2.0}, "schedule": {}}
    save_model(
        out / "distill",
        load_file(str(out / "ldm" / "model.safetensors")),
        {**common, "arch": arch["ldm"], "latent_channels": vae.latent_channels, **student},
    )
    package(out, out / "pipeline", extra={"segment_frames": 512})
    return out / "pipeline"


def child(args: argparse.Namespace) -> None:
    """Time one file in this (fresh) process; print one JSON line."""
    import time

    import torch

    from audiosr.inference.restore import Pipeline

    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    pipe = Pipeline.load(args.model, args.device, args.precisions[0], student=args.systems == ["student"])
    load_s = time.perf_counter() - start
    steps = args.steps if args.systems == ["teacher"] else None  # None: the student
    if steps is None and pipe.student is None:
        sys.exit(f"{args.model}: no one-step student in this model (re-run `dvc repro distill package`)")

    def restore(src: Path, name: str):
        return pipe.upsample_file(
            src, src.with_name(name), steps, args.guidance, batch=args.batch, copy_full_band=False
        )

    warm = Path(args.input).with_name("warm.wav")
    make_input(warm, 1.0)
    restore(warm, "warm_48k.wav")
    before = resource.getrusage(resource.RUSAGE_SELF)
    result = restore(Path(args.input), "out.wav")
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    again = restore(Path(args.input), "out2.wav")  # the next such file: its shapes' kernels are built
    print(
        json.dumps(
            {
                "seconds": result.seconds,
                "elapsed": result.elapsed_s,
                "rtf": result.rtf,
                "rtf_again": again.rtf,
                "load_s": load_s,
                "cpu_rtf": cpu_s / result.seconds,
                "peak_mib": after.ru_maxrss / 1024,  # KiB on Linux
                "before_mib": before.ru_maxrss / 1024,
                "threads": torch.get_num_threads(),
                "bf16": pipe.bf16,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="pipeline folder (default: the repo's models/pipeline)")
    ap.add_argument("--profile", choices=["small", "full"], help="time random weights of this profile instead")
    ap.add_argument("--seconds", type=float, nargs="+", default=[10.0, 60.0, 600.0])
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--guidance", type=float, default=None)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's, one per core)")
    ap.add_argument("--systems", nargs="+", default=["teacher"], choices=["teacher", "student"])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=PRECISIONS)
    ap.add_argument("--publish", action="store_true", help="write the table into docs/performance.md")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--input", help=argparse.SUPPRESS)
    args = ap.parse_args()
    from audiosr.inference.model import default_models
    from audiosr.inference.restore import DEFAULT_GUIDANCE, DEFAULT_STEPS

    args.steps = DEFAULT_STEPS if args.steps is None else args.steps
    args.guidance = DEFAULT_GUIDANCE if args.guidance is None else args.guidance
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory(prefix="bench-upsample-") as tmp:
        root = Path(tmp)
        if args.profile:
            args.model = str(random_pipeline(args.profile, root / "models"))
        args.model = args.model or str(default_models()[0])
        if not Path(args.model).is_dir():
            sys.exit(f"{args.model}: no model; train one (make run), pass --model, or time --profile small")
        rows = []
        for seconds in args.seconds:
            work = root / f"{seconds:g}s"
            work.mkdir()
            make_input(work / "in.wav", seconds)
            for system in args.systems:
                for precision in args.precisions:
                    cmd = [
                        *(sys.executable, __file__, "--child", "--input", str(work / "in.wav"), "--model", args.model),
                        *("--steps", str(args.steps), "--guidance", str(args.guidance), "--batch", str(args.batch)),
                        *("--device", args.device, "--threads", str(args.threads), "--systems", system),
                        *("--precisions", precision),
                    ]
                    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "CI": "1"})
                    if out.returncode:
                        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr}")
                    row = {"system": system, "precision": precision, **json.loads(out.stdout.strip().splitlines()[-1])}
                    rows.append(row)
                    print(
                        f"{seconds:g} s, {system}, {precision}: RTF {row['rtf']:.3f}, peak {row['peak_mib']:.0f} MiB",
                        file=sys.stderr,
                    )
    what = f"profile {args.profile} (random weights)" if args.profile else args.model
    student = "; student 1 step" if "student" in args.systems else ""
    lines = [
        f"upsample: {what}; teacher {args.steps} steps, guidance {args.guidance:g}{student}; "
        f"batch {args.batch}, {args.device}, {rows[0]['threads']} threads; stereo 44.1 kHz in, 48 kHz out",
        "",
        "| system | precision | input | processing (s) | RTF | RTF, the next such file | CPU s per audio s "
        "| peak memory (MiB) | before the file (MiB) | peak vs 60 s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in sorted(rows, key=lambda r: (args.systems.index(r["system"]), args.precisions.index(r["precision"]))):
        same = [q for q in rows if (q["system"], q["precision"]) == (r["system"], r["precision"])]
        ref = next((q for q in same if q["seconds"] == 60.0), same[0])
        label = f"{r['seconds'] / 60:g} min" if r["seconds"] >= 60 else f"{r['seconds']:g} s"
        precision = (
            f"{r['precision']} ({'bf16' if r['bf16'] else 'fp32'})" if r["precision"] == "auto" else r["precision"]
        )
        lines.append(
            f"| {r['system']} | {precision} | {label} | {r['elapsed']:.1f} | {r['rtf']:.3f} | {r['rtf_again']:.3f} | "
            f"{r['cpu_rtf']:.3f} | "
            f"{r['peak_mib']:.0f} | {r['before_mib']:.0f} | {r['peak_mib'] / ref['peak_mib']:.2f}x |"
        )
    print("\n" + "\n".join(lines))
    if args.publish:
        docpages.publish("bench_upsample", "\n".join(lines))


if __name__ == "__main__":
    main()
