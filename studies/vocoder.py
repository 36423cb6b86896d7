"""The vocoder's ceiling: LSD of a trained vocoder on the clean mels of the evaluation's test clips
(the `gt_vocoder` system, without the rest of the evaluation), with LSD-HF above 8 kHz.

    dvc exp run train_vocoder -S vocoder.stft_weight=45    # trains only the vocoder (and its data)
    python -m studies.vocoder [--vocoder models/vocoder] [--clips 8]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from audiosr import metrics
from audiosr.audio import MelConfig, log_mel
from audiosr.data.store import SegmentSet
from audiosr.evaluate import pick_clips
from audiosr.models.load import load_model, load_vocoder


@torch.no_grad()
def score(folder: str = "models/vocoder", clips: int = 8) -> tuple[float, float, int]:
    """(LSD, LSD above 8 kHz, clips) of the vocoder in `folder` on the clean mels of `clips` test clips."""
    state, config = load_model(folder)
    vocoder, mel = load_vocoder(state, config, torch.device("cpu")), MelConfig(**config["mel"])
    test = SegmentSet.open("data/segments/test")
    scores = []
    for clip in pick_clips(test, clips):
        clean = test.audio(clip)
        wave = vocoder(log_mel(torch.from_numpy(clean)[None], mel))[0].numpy()[: len(clean)]
        scores.append((metrics.lsd(clean, wave), metrics.lsd(clean, wave, lo_hz=8000.0)))
    lsd, hf = np.mean(scores, axis=0)
    return float(lsd), float(hf), len(scores)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocoder", default="models/vocoder")
    ap.add_argument("--clips", type=int, default=8, help="test clips, spread over the test split (evaluation: 2)")
    args = ap.parse_args()
    lsd, hf, n = score(args.vocoder, args.clips)
    steps = load_model(args.vocoder)[1]["steps"]
    print(f"{args.vocoder} ({steps} steps): gt_vocoder LSD {lsd:.3f}, above 8 kHz {hf:.3f} ({n} clips)")


if __name__ == "__main__":
    main()
