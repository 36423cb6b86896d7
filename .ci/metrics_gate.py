"""Fail CI when the model's LSD got significantly and materially worse than the committed baseline: the
teacher's (`model_lfr`) and the one-step student's (`model_fast_lfr`), where the run has them; or when
either test set (the rendered songs, `metrics/eval.json`; the real recordings, `metrics/eval_real.json`)
has significantly more items that come out worse than the unprocessed input than the committed run had.

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

The items worse than the input are paired the same way: an item that turned worse against one that turned
better. A machine that trains other models turns a few items either way (the CPU with AVX2 alone: 2 worse,
0 better, of 84 real recordings), so a grown count alone would fail a correct run; the gate fails when the
one-sided exact sign test of those two numbers is under SIGN_LEVEL (with none turned better: 5 or more
turned worse), which a regression of the kind the merge once had (one item in five) fails by far.
"""

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd

from audiosr import stats
from audiosr.evaluate import worse_than

TOLERANCE = 0.1
SYSTEMS, METRIC = ("model_lfr", "model_fast_lfr"), "lsd"
# worse_than_input per set: its headline, and the items it counts
COUNTED = {
    "rendered": ("metrics/eval.json", "metrics/eval_items.csv"),
    "real": ("metrics/eval_real.json", "metrics/eval_real_items.csv"),
}
SIGN_LEVEL = 0.05


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
    """How many of SYSTEMS, per set, turn significantly more items worse than the unprocessed input than
    the committed run: paired item by item (`flips`), the sign test of the items that turned worse against
    those that turned better is under SIGN_LEVEL. Without the committed items, any growth of the count fails."""
    failed = 0
    for name, (path, items) in COUNTED.items():
        base, base_items = committed(path), committed(items)
        if base is None or not Path(path).exists():
            print(f"metrics gate: {name} set: no committed and new {path} to compare; skipped")
            continue
        baseline, current = json.loads(base), json.loads(Path(path).read_text())
        for system in SYSTEMS:
            was, now = (side.get(system, {}).get("worse_than_input") for side in (baseline, current))
            if was is None or now is None:
                continue
            turned = flips(base_items, items, system)
            if turned is None:
                worse, rule = now > was, "no common items to pair: fails when it grows"
            else:
                p = sign_test(*turned)
                worse = p < SIGN_LEVEL
                rule = f"{turned[0]} turned worse, {turned[1]} better, sign test p = {p:.2g} (fails under {SIGN_LEVEL})"
            failed += worse
            print(
                f"metrics gate: {name} set, {system}: {now} items worse than the unprocessed input, committed "
                f"{was}; {rule}: {'WORSE' if worse else 'ok'}"
            )
    return failed


def sign_test(more: int, fewer: int) -> float:
    """The one-sided exact sign test: with `more` items turned one way and `fewer` the other, the chance of
    at least `more` of the more + fewer going that way if each went either way at even odds (1 for none)."""
    n = more + fewer
    return sum(math.comb(n, k) for k in range(more, n + 1)) / 2**n


def flips(base_items: str | None, path: str, system: str) -> tuple[int, int] | None:
    """(items worse than the unprocessed input now and not in the committed run, the reverse), or None
    where the two runs do not share their items."""
    if base_items is None or not Path(path).exists():
        return None
    was, now = (
        worse_than(t, system, "unprocessed", "lsd") if system in set(t["system"]) else None
        for t in (pd.read_csv(io.StringIO(base_items)), pd.read_csv(path))
    )
    if was is None or now is None:
        return None
    was, now = was.sort_index(), now.sort_index()
    if not was.index.equals(now.index):
        return None
    return int((now & ~was).sum()), int((was & ~now).sum())


if __name__ == "__main__":
    sys.exit(main())
