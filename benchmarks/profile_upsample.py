"""Where the time of `audiosr upsample`'s default path goes: cProfile of `Pipeline.upsample_file` on a
stereo 44.1 kHz file (bench_upsample's content), the cumulative time of each part as a share of the whole.

    python benchmarks/profile_upsample.py [--model PATH] [--seconds 30] [--precision auto] [--threads 2]
                                          [--top 25] [--clock wall|cpu]

The parts are the functions that own them: the band merge (`merge_bands`), the crossfade, the input's
analysis (`analyse`), resampling, the mel front end, the VAE encoder and decoder, the U-Net and the
vocoder; what is left is reading, writing and the glue between them.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# (label, file suffix, function name): cumulative time of that function
PARTS = [
    ("band merge", "inference/merge.py", "merge_bands"),
    ("crossfade", "inference/merge.py", "add"),
    ("analysis (cutoff, band)", "inference/cutoff.py", "analyse"),
    ("resampling (soxr)", "soxr/__init__.py", "resample_chunk"),
    ("log-mel", "audiosr/audio.py", "log_mel"),
    ("VAE encoder", "models/layers.py", "encode"),
    ("VAE decoder", "models/layers.py", "decode"),
    ("U-Net", "models/unet.py", "_run"),
    ("vocoder", "models/vocoder.py", "forward"),
    ("level lift", "inference/restore.py", "level_lift"),
    ("file writes", "soundfile.py", "write"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="pipeline folder (default: the repo's models/pipeline)")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--top", type=int, default=0, help="also print the top N functions by own time")
    ap.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="cpu: the process's CPU time (less noisy on a busy machine)",
    )
    args = ap.parse_args()

    import torch
    from bench_upsample import make_input

    from audiosr.inference.model import default_models
    from audiosr.inference.restore import Pipeline

    torch.set_num_threads(args.threads)
    pipe = Pipeline.load(args.model or default_models()[0], "cpu", args.precision)
    with tempfile.TemporaryDirectory(prefix="profile-upsample-") as tmp:
        src, warm = Path(tmp) / "in.wav", Path(tmp) / "warm.wav"
        make_input(src, args.seconds)
        make_input(warm, 1.0)
        pipe.upsample_file(warm, Path(tmp) / "warm_out.wav", copy_full_band=False)
        profiler = cProfile.Profile(time.process_time) if args.clock == "cpu" else cProfile.Profile()
        start = time.perf_counter()
        profiler.enable()
        pipe.upsample_file(src, Path(tmp) / "out.wav", copy_full_band=False)
        profiler.disable()
        wall = time.perf_counter() - start
    stats = pstats.Stats(profiler)
    total = max(v[3] for v in stats.stats.values())
    print(f"{args.seconds:g} s stereo, {args.precision} (bf16 {pipe.bf16}), {torch.get_num_threads()} threads: ")
    print(f"{wall:.2f} s wall, RTF {wall / args.seconds:.4f} (profiled); shares of {total:.2f} s {args.clock} time:")
    for label, suffix, name in PARTS:
        # the outermost of the functions of that name in that file (a module's forward holds its blocks')
        cums = [v[3] for (file, _, func), v in stats.stats.items() if file.endswith(suffix) and func == name]
        cum = max(cums, default=0.0)
        print(f"  {label:26s} {cum:7.2f} s  {100 * cum / total:5.1f} %")
    if args.top:
        stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
