"""Fail CI when the model's LSD got significantly and materially worse than the committed baseline: the
teacher's (`model_lfr`) and the one-step student's (`model_fast_lfr`), where the run has them; or when
either test set (the rendered songs, `metrics/eval.json`; the real recordings, `metrics/eval_real.json`)
has more items that come out worse than the unprocessed input than the committed run had.

Compares metrics/eval_items.csv in the workspace (just made by `dvc repro`) with the committed one, item by
item (the same conditions and clips), with a 95 % paired bootstrap interval over conditions and clips
(audiosr.stats). A system fails when both hold:
- the interval lies above zero (the worsening is not the luck of a few items), and
- the difference is over TOLERANCE.
Why both: a re-run on another machine is not bit-identical (torch's CPU kernels and thread counts change
float summation order), so it differs from the committed run the way another training seed does (about a
hundredth, docs/studies.md: Ablations), and such a difference can be consistent over every condition and clip.
TOLERANCE (0.1) is above the baseline's seed spread and well below the gap that matters (the
model sits over 0.5 below `unprocessed` at most cutoffs). Without a committed items file (an older
commit, or another eval block) the gate compares eval.json's means against TOLERANCE alone.
"""

import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from audiosr import stats

TOLERANCE = 0.1
SYSTEMS, METRIC = ("model_lfr", "model_fast_lfr"), "lsd"
COUNTED = {"rendered": "metrics/eval.json", "real": "metrics/eval_real.json"}  # worse_than_input, per set


def committed(path: str) -> str | None:
    out = subprocess.run(["git", "show", f"HEAD:{path}"], capture_output=True, text=True)
    return out.stdout if out.returncode == 0 else None


def main() -> int:
    base_items, base_json = committed("metrics/eval_items.csv"), committed("metrics/eval.json")
    if base_json is None:
        print("metrics gate: no committed metrics/eval.json to compare with; passing")
        return 0
    baseline, current = json.loads(base_json), json.load(open("metrics/eval.json"))
    now_items = pd.read_csv("metrics/eval_items.csv")
    failed = 0
    for system in SYSTEMS:
        if system not in baseline or system not in current:
            print(f"metrics gate: {system} is not in both the committed and the new metrics/eval.json; skipped")
            continue
        pair = None
        if base_items is not None:
            try:
                pair, index = stats.item_matrix([pd.read_csv(io.StringIO(base_items)), now_items], system, METRIC)
            except ValueError:  # the eval block changed: the items are not the same
                pass
        if pair is not None:
            base, now = pair
            d = stats.paired_difference(base, now, *stats.crossed(index))
            worse = bool(d.low > 0 and d.delta > TOLERANCE)
            shown = f"Δ {d} over {len(base)} items"
        else:
            delta = current[system][METRIC] - baseline[system][METRIC]
            worse, shown = delta > TOLERANCE, f"Δ {delta:+.4f} (no common items to pair: means only)"
        failed += worse
        print(
            f"metrics gate: {system} {METRIC} {current[system][METRIC]:.4f} vs committed "
            f"{baseline[system][METRIC]:.4f}, {shown} (fails when significant and over {TOLERANCE}): "
            f"{'WORSE' if worse else 'ok'}"
        )
    return 1 if failed + worse_counts() else 0


def worse_counts() -> int:
    """How many of SYSTEMS have more items worse than the unprocessed input than the committed run, per set."""
    failed = 0
    for name, path in COUNTED.items():
        base = committed(path)
        if base is None or not Path(path).exists():
            print(f"metrics gate: {name} set: no committed and new {path} to compare; skipped")
            continue
        baseline, current = json.loads(base), json.loads(Path(path).read_text())
        for system in SYSTEMS:
            was, now = (side.get(system, {}).get("worse_than_input") for side in (baseline, current))
            if was is None or now is None:
                continue
            worse = now > was
            failed += worse
            print(
                f"metrics gate: {name} set, {system}: {now} items worse than the unprocessed input, committed "
                f"{was} (fails when it grows): {'WORSE' if worse else 'ok'}"
            )
    return failed


if __name__ == "__main__":
    sys.exit(main())
