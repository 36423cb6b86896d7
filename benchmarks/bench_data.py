"""Throughput of the data stages: seconds of audio per second of wall time for segment and degrade.

    python benchmarks/bench_data.py [--minutes 5] [--workers N] [--n-mels 64 256]

Makes `--minutes` of synthetic 44.1 kHz stereo music, then times segment (read, mono, resample to
48 kHz, cut, mel) and degrade (draw, filter, noise, quantise, mel) through the package's own
functions with the worker count of a real run, and prints a table.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from audiosr import docpages
from audiosr.audio import MelConfig
from audiosr.data import synthetic
from audiosr.data.segments import degrade_split, segment_split
from audiosr.params import workers as default_workers

FILTER = {"types": ["chebyshev", "elliptic", "butterworth", "boxcar"], "order": [2, 10], "cutoff_hz": [2000, 16000]}
NOISE = {"type": "mixed", "tone_amplitude": [0.001, 0.2], "tone_hz": [100, 15000], "gaussian_amplitude": [0.001, 0.1]}
AUDIO = {"segment_seconds": 5.12, "silence_db": -50.0, "peak": 0.5, "train_stems": []}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--workers", type=int, default=default_workers())
    ap.add_argument("--n-mels", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--publish", action="store_true", help="write the table into docs/performance.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        seconds = 30.0
        n_tracks = max(1, round(args.minutes * 60 / seconds))
        synthetic.generate(root / "raw", tracks=n_tracks, seconds=seconds, seed=0, workers=args.workers)
        paths = sorted((root / "raw").glob("*/*/mixture.wav"))
        tracks = pd.DataFrame({"track": [p.parent.name for p in paths], "path": [str(p) for p in paths]})
        rows = []
        for n_mels in args.n_mels:
            mel = MelConfig(n_mels=n_mels)
            t0 = time.perf_counter()
            counts = segment_split(tracks, root / f"seg{n_mels}", root, AUDIO, mel, args.workers)
            t_seg = time.perf_counter() - t0
            t0 = time.perf_counter()
            degrade_split(root / f"seg{n_mels}", root / f"pairs{n_mels}", "train", FILTER, NOISE, 0, mel, args.workers)
            t_deg = time.perf_counter() - t0
            audio_s = counts["seconds"]
            both = audio_s / (t_seg + t_deg)
            rows.append((n_mels, audio_s, audio_s / t_seg, audio_s / t_deg, both))
    lines = [
        f"data stages, {args.workers} workers, {n_tracks} tracks of {seconds:g} s (x real time)",
        "",
        "| n_mels | audio (s) | segment | degrade | both |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for n_mels, audio_s, seg, dg, both in rows:
        lines.append(f"| {n_mels} | {audio_s:.0f} | {seg:.0f}x | {dg:.0f}x | {both:.0f}x |")
    print("\n" + "\n".join(lines))
    if args.publish:
        docpages.publish("bench_data", "\n".join(lines))


if __name__ == "__main__":
    main()
