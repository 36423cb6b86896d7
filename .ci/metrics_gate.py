"""Fail CI when the model's LSD got worse than the committed baseline by more than TOLERANCE: the teacher's
(`model_lfr`) and the one-step student's (`model_fast_lfr`, what `audiosr upsample` outputs by default).

Compares metrics/eval.json in the workspace (just made by `dvc repro`) with the committed one.
TOLERANCE lives here and nowhere else. Why 0.1: the small profile trains for a few CPU minutes, and a
re-run on another machine is not bit-identical (torch's CPU kernels and thread counts change float
summation order), so its LSD moves by a few hundredths between runs; 0.1 is above that noise and well
below the gap that matters (the model sits well over 0.5 below `unprocessed` at most cutoffs).
"""

import json
import subprocess
import sys

TOLERANCE = 0.1
SYSTEMS, METRIC = ("model_lfr", "model_fast_lfr"), "lsd"


def main() -> int:
    current = json.load(open("metrics/eval.json"))
    committed = subprocess.run(["git", "show", "HEAD:metrics/eval.json"], capture_output=True, text=True)
    if committed.returncode != 0:
        print("metrics gate: no committed metrics/eval.json to compare with; passing")
        return 0
    baseline, failed = json.loads(committed.stdout), 0
    for system in SYSTEMS:
        if system not in baseline:
            print(f"metrics gate: {system} is not in the committed metrics/eval.json; skipped")
            continue
        base, now = baseline[system][METRIC], current[system][METRIC]
        verdict = "ok" if now <= base + TOLERANCE else "WORSE"
        failed += verdict != "ok"
        print(f"metrics gate: {system} {METRIC} {now:.4f} vs committed {base:.4f} (tolerance {TOLERANCE}): {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
