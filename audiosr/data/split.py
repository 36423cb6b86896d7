"""Train / valid / test split of the manifest's tracks (`split` params).

Sources with an official split (MUSDB18, the built-in sets): its test tracks are the test set, and
validation tracks are drawn with `split.seed` from its training tracks, as many as keep MUSDB18's
proportion: `split.proportions` (90 / 10 / 50) makes validation valid / (train + valid) = 10 % of the
official training tracks, rounded half up, at least 1 when there are 2 or more, at most
`split.valid_tracks`. MUSDB18's 100 training tracks give 90 / 10; a set of 10 gives 9 / 1 (not 0 / 10).
Other sources: tracks are shuffled with `split.seed` and divided by `split.proportions`.
Skipped tracks (status not "ok") are in no split.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from audiosr.config import SplitConfig, block

SPLITS = ("train", "valid", "test")


def valid_count(train_tracks: int, cfg: SplitConfig) -> int:
    """How many of a source's official training tracks become validation tracks (see the module doc)."""
    share = cfg.proportions[1] / (cfg.proportions[0] + cfg.proportions[1])
    n = math.floor(train_tracks * share + 0.5)  # half up: Python's round() would round 0.5 to 0
    if train_tracks >= 2 and share > 0:
        n = max(n, 1)
    return max(0, min(n, cfg.valid_tracks, train_tracks - 1))


def make_split(manifest: pd.DataFrame, params: SplitConfig | dict) -> dict[str, list[str]]:
    cfg = block(SplitConfig, params, "split")
    ok = manifest[manifest["status"] == "ok"]
    if ok.empty:
        raise ValueError("manifest: no usable tracks (every track was skipped); check data.root")
    rng = np.random.default_rng(cfg.seed)
    subsets = set(ok["subset"].fillna("").astype(str))
    if subsets & {"train", "test"}:
        train = sorted(ok.loc[ok["subset"] == "train", "track"])
        test = sorted(ok.loc[ok["subset"] == "test", "track"])
        n_valid = valid_count(len(train), cfg)
        picked = set(rng.choice(train, size=n_valid, replace=False)) if n_valid else set()
        split = {"train": [t for t in train if t not in picked], "valid": sorted(picked), "test": test}
    else:
        tracks = sorted(ok["track"])
        order = [tracks[i] for i in rng.permutation(len(tracks))]
        props = np.asarray(cfg.proportions, dtype=float)
        n_valid, n_test = (np.floor(len(order) * props[1:] / props.sum())).astype(int)
        if len(order) >= 3:  # a folder of a few files still gets one track in each split
            n_valid, n_test = max(n_valid, int(props[1] > 0)), max(n_test, int(props[2] > 0))
        split = {
            "train": sorted(order[n_valid + n_test :]),
            "valid": sorted(order[:n_valid]),
            "test": sorted(order[n_valid : n_valid + n_test]),
        }
    if not split["train"]:
        raise ValueError("split: no training tracks; the source has too few tracks")
    return split
