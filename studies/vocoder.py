"""The vocoder's ceiling: LSD of a trained vocoder on the clean mels of the evaluation's test clips
(the `gt_vocoder` system, without the rest of the evaluation), with LSD-HF above 8 kHz.

    dvc exp run train_vocoder -S vocoder.stft_weight=45    # trains only the vocoder (and its data)
    python studies/vocoder.py [--vocoder models/vocoder] [--clips 8]
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
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocoder", default="models/vocoder")
    ap.add_argument("--clips", type=int, default=8, help="test clips, spread over the test split (evaluation: 2)")
    args = ap.parse_args()
    state, config = load_model(args.vocoder)
    vocoder, mel = load_vocoder(state, config, torch.device("cpu")), MelConfig(**config["mel"])
    test = SegmentSet.open("data/segments/test")
    scores = []
    for clip in pick_clips(test, args.clips):
        clean = test.audio(clip)
        wave = vocoder(log_mel(torch.from_numpy(clean)[None], mel))[0].numpy()[: len(clean)]
        scores.append((metrics.lsd(clean, wave), metrics.lsd(clean, wave, lo_hz=8000.0)))
    lsd, hf = np.mean(scores, axis=0)
    name = f"{args.vocoder} ({config['steps']} steps)"
    print(f"{name}: gt_vocoder LSD {lsd:.3f}, above 8 kHz {hf:.3f} ({len(scores)} clips)")


if __name__ == "__main__":
    main()
