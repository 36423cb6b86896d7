"""How wide the ablation report's interval is against `eval.clips`, from the experiments already run.

    python studies/eval_clips.py [--experiment noise-tone] [--metric lsd]

For the difference between an experiment and the baseline (seed 0 of each: one training run each side),
the 95 % paired bootstrap interval's width with the evaluation's items cut to 1 clip per condition (each
clip alone, averaged) and with all of them, measured; then the width the same variance components give
for more clips (k clips of a condition share its degradation, so they are correlated: with ρ the
correlation of two clips' differences within a condition and s² the variance of an item's difference,
the mean over 60 conditions × k clips has variance s² (1 + (k - 1) ρ) / (60 k)). Beside it the
between-seed standard deviation of the same difference, where the experiments have several seeds:
the part of the noise more clips cannot remove.
"""

from __future__ import annotations

import argparse

import numpy as np

from audiosr import ablate, stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default="noise-tone")
    ap.add_argument("--metric", default="lsd")
    args = ap.parse_args()
    runs = ablate.groups(ablate.load_items(ablate.experiments_table()))
    if args.experiment not in runs:
        raise SystemExit(f"eval_clips: no experiment {args.experiment!r}; run `make ablations` first")
    base, index = stats.item_matrix([runs[ablate.BASELINE][0]], ablate.SYSTEM, args.metric)
    other, _ = stats.item_matrix([runs[args.experiment][0]], ablate.SYSTEM, args.metric)
    clips = index.get_level_values("clip").to_numpy()
    names = sorted(set(clips))
    width = {}
    for k in (1, len(names)):
        chosen = [names[i : i + k] for i in range(0, len(names), k)] if k == 1 else [names]
        widths = []
        for subset in chosen:
            d = stats.paired_difference(base, other, mask=np.isin(clips, subset), n_boot=4000)
            widths.append(d.high - d.low)
        width[k] = float(np.mean(widths))
    # variance components of the per-item difference: by condition (rows) and clip (columns)
    diff = (other - base)[0].reshape(-1, len(names))  # items are sorted by condition, then clip
    s2 = float(np.var(diff, ddof=1))
    rho = float(np.corrcoef(diff[:, 0], diff[:, 1])[0, 1]) if len(names) > 1 else 0.0
    conditions = diff.shape[0]
    print(f"{args.experiment} - baseline, {ablate.SYSTEM} {args.metric}, seed 0 each, {conditions} conditions")
    print(f"item difference sd {np.sqrt(s2):.3f}, correlation of two clips of a condition ρ = {rho:.2f}")
    print("| eval.clips | items | 95 % interval width | how |")
    print("| ---: | ---: | ---: | --- |")
    for k in (1, 2, 4, 8):
        model = 2 * 1.96 * np.sqrt(s2 * (1 + (k - 1) * rho) / (conditions * k))
        how = f"measured ({'each clip alone, mean' if k == 1 else 'all clips'})" if k in width else "from s², ρ"
        print(f"| {k} | {conditions * k} | {width.get(k, model):.3f} | {how} (model: {model:.3f}) |")
    seeds = sorted(set(runs[ablate.BASELINE]) & set(runs[args.experiment]))
    if len(seeds) > 1:
        deltas = []
        for s in seeds:
            b, _ = stats.item_matrix([runs[ablate.BASELINE][s]], ablate.SYSTEM, args.metric)
            o, _ = stats.item_matrix([runs[args.experiment][s]], ablate.SYSTEM, args.metric)
            deltas.append(float(np.nanmean(o) - np.nanmean(b)))
        print(f"difference per seed: {', '.join(f'{d:+.3f}' for d in deltas)}; sd {np.std(deltas, ddof=1):.3f}")


if __name__ == "__main__":
    main()
