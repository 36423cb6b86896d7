"""Paired comparisons of two systems or experiments on the evaluation's items, with bootstrap intervals.

An item is one (condition, clip) of the fixed protocol, the same for every experiment, so a difference is
taken item by item (paired). The evaluation plays the same few clips under every condition, and a model
change can help one clip and hurt another (measured: docs/studies.md, Ablations), so items are not
exchangeable: each bootstrap replicate draws the conditions and, apart, the clips (a crossed design; the
items of a replicate are every drawn condition × every drawn clip). Where an experiment was trained with
several seeds, each replicate also draws each side's seeds, so the interval carries the training noise too.
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


def crossed(index: pd.MultiIndex) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of each item's condition and clip, for `paired_difference`."""
    frame = index.to_frame(index=False)
    condition = frame[ITEM[:-1]].astype(str).agg("|".join, axis=1)
    return pd.factorize(condition)[0], pd.factorize(frame["clip"])[0]


def paired_difference(
    base: np.ndarray,
    other: np.ndarray,
    conditions: np.ndarray | None = None,
    clips: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> Difference:
    """mean(other) - mean(base) over seeds and items ((seeds, items) arrays on the same items), with a
    percentile bootstrap interval. Each replicate draws the conditions and the clips (codes per item, from
    `crossed`; without them every item is its own condition and there is one clip), the same for both
    sides, and each side's seeds. `mask` keeps a subset of the items (one cutoff, say). Items that are NaN
    on either side are left out."""
    base, other = np.atleast_2d(base), np.atleast_2d(other)
    n = base.shape[1]
    if other.shape[1] != n:
        raise ValueError(f"{n} items against {other.shape[1]}: the sides must share their items")
    conditions = np.arange(n) if conditions is None else np.asarray(conditions)
    clips = np.zeros(n, int) if clips is None else np.asarray(clips)
    keep = ~(np.isnan(base).any(0) | np.isnan(other).any(0))
    if mask is not None:
        keep &= mask
    if not keep.any():
        return Difference(float("nan"), float("nan"), float("nan"))
    base, other = base[:, keep], other[:, keep]
    conditions, clips = pd.factorize(conditions[keep])[0], pd.factorize(clips[keep])[0]
    rng = np.random.default_rng(seed)

    def counts(k: int) -> np.ndarray:  # (n_boot, k): how often each of k units is drawn in a replicate
        return rng.multinomial(k, np.full(k, 1 / k), size=n_boot).astype(float)

    weight = counts(conditions.max() + 1)[:, conditions] * counts(clips.max() + 1)[:, clips]  # (n_boot, items)
    per_item = (counts(len(other)) @ other) / len(other) - (counts(len(base)) @ base) / len(base)
    total = weight.sum(1)
    boot = (weight * per_item).sum(1)[total > 0] / total[total > 0]
    low, high = np.quantile(boot, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return Difference(float(other.mean() - base.mean()), float(low), float(high))
