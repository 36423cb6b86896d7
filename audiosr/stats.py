"""Paired comparisons of two systems or experiments on the evaluation's items, with bootstrap intervals.

An item is one (condition, clip) of the fixed protocol, the same for every experiment, so a difference is
taken item by item (paired) and the interval comes from resampling items. Where an experiment was trained
with several seeds, each replicate also resamples its seeds, so the interval carries the training noise
as well as the choice of test items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

ITEM = ["cutoff_hz", "filter", "noise", "clip"]  # the columns that name an item of metrics/eval_items.csv
LEVEL = 0.95


@dataclass(frozen=True)
class Difference:
    delta: float  # mean of `other` minus mean of `base`
    low: float  # the 95 % bootstrap interval of delta
    high: float

    @property
    def significant(self) -> bool:
        """The interval excludes zero."""
        return self.low > 0 or self.high < 0

    def __str__(self) -> str:
        return f"{self.delta:+.3f} [{self.low:+.3f}, {self.high:+.3f}]{' *' if self.significant else ''}"


def item_matrix(tables: list[pd.DataFrame], system: str, metric: str) -> tuple[np.ndarray, pd.MultiIndex]:
    """(seeds, items) values of one system's metric from each seed's eval_items table, items sorted.

    Raises ValueError where the seeds were evaluated on different items."""
    series = [t[t["system"] == system].set_index(ITEM)[metric].sort_index() for t in tables]
    for s in series[1:]:
        if not s.index.equals(series[0].index):
            raise ValueError("the experiments were evaluated on different items; keep the eval block unchanged")
    return np.stack([s.to_numpy(float) for s in series]), series[0].index


def paired_difference(
    base: np.ndarray, other: np.ndarray, n_boot: int = 2000, seed: int = 0, mask: np.ndarray | None = None
) -> Difference:
    """mean(other) - mean(base) over seeds and items ((seeds, items) arrays on the same items), with a
    percentile bootstrap interval: each replicate draws items (the same for both) and, per side, seeds.
    `mask` keeps a subset of the items (one cutoff, say). Items that are NaN on either side are left out."""
    base, other = np.atleast_2d(base), np.atleast_2d(other)
    if base.shape[1] != other.shape[1]:
        raise ValueError(f"{base.shape[1]} items against {other.shape[1]}: the sides must share their items")
    keep = ~(np.isnan(base).any(0) | np.isnan(other).any(0))
    if mask is not None:
        keep &= mask
    base, other = base[:, keep], other[:, keep]
    if base.shape[1] == 0:
        return Difference(float("nan"), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    items = rng.integers(0, base.shape[1], (n_boot, base.shape[1]))

    def resampled(x: np.ndarray) -> np.ndarray:
        seeds = rng.integers(0, len(x), (n_boot, len(x)))
        per_seed_item = x[seeds[:, :, None], items[:, None, :]]  # (n_boot, seeds, items)
        return per_seed_item.mean((1, 2))

    boot = resampled(other) - resampled(base)
    low, high = np.quantile(boot, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return Difference(float(other.mean() - base.mean()), float(low), float(high))
