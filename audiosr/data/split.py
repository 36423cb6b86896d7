"""Train / valid / test split of the manifest's tracks (`split` params).

Sources with an official split (MUSDB18, the synthetic set): its test tracks are the test set and
`split.valid_tracks` of its training tracks, drawn with `split.seed`, are validation. Other sources:
tracks are shuffled with `split.seed` and divided by `split.proportions` (90 / 10 / 50 by default).
Skipped tracks (status not "ok") are in no split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SPLITS = ("train", "valid", "test")


def make_split(manifest: pd.DataFrame, params: dict) -> dict[str, list[str]]:
    ok = manifest[manifest["status"] == "ok"]
    if ok.empty:
        raise ValueError("manifest: no usable tracks (every track was skipped); check data.root")
    rng = np.random.default_rng(int(params.get("seed", 0)))
    subsets = set(ok["subset"].fillna("").astype(str))
    if subsets & {"train", "test"}:
        train = sorted(ok.loc[ok["subset"] == "train", "track"])
        test = sorted(ok.loc[ok["subset"] == "test", "track"])
        n_valid = min(int(params.get("valid_tracks", 10)), max(0, len(train) - 1))
        picked = set(rng.choice(train, size=n_valid, replace=False)) if n_valid else set()
        split = {"train": [t for t in train if t not in picked], "valid": sorted(picked), "test": test}
    else:
        tracks = sorted(ok["track"])
        order = [tracks[i] for i in rng.permutation(len(tracks))]
        props = np.asarray(params.get("proportions", [90, 10, 50]), dtype=float)
        if props.shape != (3,) or (props < 0).any() or props.sum() <= 0:
            raise ValueError(f"split.proportions: {props.tolist()} must be three non-negative numbers")
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
