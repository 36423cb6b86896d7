"""Two evaluations (or two systems of one) side by side on both test sets, paired item by item.

    python -m studies.compare BEFORE AFTER                     # model_lfr of two runs' metrics/ folders
    python -m studies.compare RUN RUN --systems model_lfr model_fast_lfr   # two systems of one run

BEFORE and AFTER are folders holding an evaluation's eval_items.csv and eval_real_items.csv (a checkout's
metrics/, or a copy of it). Per set and cutoff: the mean LSD of each side, their difference with its 95 %
paired bootstrap interval (over conditions and clips, audiosr.stats), the items worse than the unprocessed
input on each side, and the restored band's level error (mean over items and octaves, and mean absolute).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from audiosr import stats
from audiosr.evaluate import worse_than

SETS = {"rendered": "eval_items.csv", "real": "eval_real_items.csv"}


def side(table: pd.DataFrame, system: str) -> pd.DataFrame:
    """One system's items, indexed by stats.ITEM, with whether each is worse than the unprocessed input."""
    rows = table[table.system == system].set_index(stats.ITEM).sort_index()
    return rows.assign(worse=worse_than(table, system, "unprocessed", "lsd").reindex(rows.index))


def level(rows: pd.DataFrame) -> tuple[float, float]:
    octaves = rows[[c for c in rows.columns if c.startswith("level_oct")]].to_numpy(float)
    if not np.isfinite(octaves).any():  # an evaluation from before the level was measured
        return float("nan"), float("nan")
    return float(np.nanmean(octaves)), float(np.nanmean(np.abs(octaves)))


def compare(a: pd.DataFrame, b: pd.DataFrame) -> list[dict]:
    """Per cutoff and over all: the two sides (same items) compared."""
    if not a.index.equals(b.index):
        raise SystemExit("compare: the two sides were evaluated on different items (another eval block)")
    conditions, clips = stats.crossed(a.index)
    cutoffs = a.index.get_level_values("cutoff_hz").to_numpy(float)
    out = []
    for cutoff in [*sorted(set(cutoffs)), None]:
        mask = np.ones(len(a), bool) if cutoff is None else cutoffs == cutoff
        d = stats.paired_difference(a.lsd.to_numpy(), b.lsd.to_numpy(), conditions, clips, mask)
        la, lb = level(a[mask]), level(b[mask])
        out.append(
            {
                "cutoff": "all" if cutoff is None else f"{cutoff / 1000:g} kHz",
                "items": int(mask.sum()),
                "LSD A": round(float(a.lsd[mask].mean()), 3),
                "LSD B": round(float(b.lsd[mask].mean()), 3),
                "B - A [95 %]": str(d),
                "worse A": int(a.worse[mask].sum()),
                "worse B": int(b.worse[mask].sum()),
                "level A (dB, abs)": f"{la[0]:+.1f} ({la[1]:.1f})",
                "level B (dB, abs)": f"{lb[0]:+.1f} ({lb[1]:.1f})",
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path, help="the first evaluation's metrics folder")
    parser.add_argument("b", type=Path, help="the second evaluation's metrics folder")
    parser.add_argument("--systems", nargs=2, default=["model_lfr", "model_lfr"], metavar=("A", "B"))
    args = parser.parse_args()
    for name, file in SETS.items():
        if not (args.a / file).is_file() or not (args.b / file).is_file():
            print(f"{name} set: no {file} in both folders; skipped\n")
            continue
        a = side(pd.read_csv(args.a / file), args.systems[0])
        b = side(pd.read_csv(args.b / file), args.systems[1])
        print(f"{name} set: A = {args.a} {args.systems[0]}, B = {args.b} {args.systems[1]}")
        print(pd.DataFrame(compare(a, b)).to_markdown(index=False), "\n")


if __name__ == "__main__":
    main()
