"""How the vocoder's ceiling moves with training length: the default recipe trained for a multiple of
its steps (the adversarial phase kept at the last `steps - adv_start` steps), each as a DVC experiment
of train_vocoder alone, scored by `studies/vocoder.py` on the test clips; a table and a PNG.

    python -m studies.vocoder_length [--multiples 1 0.5 2] [--png studies/vocoder_length.png]

Run it in a checkout where `dvc repro` has run (it needs data/segments); each experiment leaves its
vocoder in the workspace, so restore the default one afterwards (`git checkout params.yaml dvc.lock
metrics && dvc checkout`). The multiple 1 is the default run itself (DVC finds it cached).
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

from vocoder import score

from audiosr.config import Params
from studies.grid import length_curve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # 1 first: the workspace's own run, nothing to train
    ap.add_argument("--multiples", type=float, nargs="+", default=[1.0, 0.5, 2.0])
    ap.add_argument("--png", default="studies/vocoder_length.png")
    ap.add_argument("--clips", type=int, default=8)
    args = ap.parse_args()
    cfg = Params.load().vocoder
    adversarial = cfg.steps - cfg.adv_start
    rows = []
    for m in args.multiples:
        steps = round(cfg.steps * m)
        overrides = [f"vocoder.steps={steps}", f"vocoder.adv_start={steps - adversarial}"]
        subprocess.run(
            ["dvc", "exp", "run", "train_vocoder", *(a for o in overrides for a in ("-S", o))],
            check=True,
            capture_output=True,
        )
        minutes = json.loads(Path("metrics/stats/train_vocoder.json").read_text())["seconds"] / 60  # its training loop
        lsd, hf, n = score(clips=args.clips)
        rows.append((steps, minutes, lsd, hf))
        print(f"{steps} steps: gt_vocoder LSD {lsd:.3f}, above 8 kHz {hf:.3f} ({n} clips), {minutes:.1f} min")
    rows.sort()
    print("\n| steps | training (min, 2 cores) | gt_vocoder LSD | above 8 kHz |\n| ---: | ---: | ---: | ---: |")
    for steps, minutes, lsd, hf in rows:
        print(f"| {steps} | {minutes:.1f} | {lsd:.3f} | {hf:.3f} |")
    length_curve(
        args.png,
        [r[0] for r in rows],
        [f"{r[0]}\n{r[1]:.0f} min" for r in rows],
        {"gt_vocoder LSD": [r[2] for r in rows], "above 8 kHz": [r[3] for r in rows]},
        "vocoder training steps (2 cores)",
    )


if __name__ == "__main__":
    main()
