"""How wide the ablation report's interval is against the evaluation's clips, from the experiments run.

    python -m studies.eval_clips [--experiment noise-tone] [--metric lsd]

For the difference between an experiment and the baseline (seed 0 of each: one training run a side):
the difference and the 95 % paired bootstrap interval's width on each clip's 60 conditions alone, and on
all of them (what the report uses). The evaluation's clips are the same few test segments under every
condition, so the interval speaks for those clips; how far apart the clips' own differences are shows
what more clips (`eval.clips`) would add. Beside it, where the experiments have several training seeds,
the difference per seed: the noise that neither more clips nor more items remove.
"""

from __future__ import annotations

import argparse

import numpy as np

from audiosr import experiments, stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default="noise-tone")
    ap.add_argument("--metric", default="lsd")
    args = ap.parse_args()
    runs = experiments.groups(experiments.load_items(experiments.experiments_table()))
    if args.experiment not in runs:
        raise SystemExit(f"eval_clips: no experiment {args.experiment!r}; run `make ablations` first")
    base, index = stats.item_matrix([runs[experiments.BASELINE][0]], experiments.SYSTEM, args.metric)
    other, _ = stats.item_matrix([runs[args.experiment][0]], experiments.SYSTEM, args.metric)
    clips = index.get_level_values("clip").to_numpy()
    print(f"{args.experiment} - baseline, {experiments.SYSTEM} {args.metric}, seed 0 each")
    print("| clips | items | difference [95 % interval] | width |")
    print("| --- | ---: | ---: | ---: |")
    for name in [*sorted(set(clips)), "all"]:
        mask = np.ones(len(clips), bool) if name == "all" else clips == name
        d = stats.paired_difference(base, other, *stats.crossed(index), mask=mask, n_boot=4000)
        print(f"| {'all' if name == 'all' else f'clip {name} alone'} | {mask.sum()} | {d} | {d.high - d.low:.3f} |")
    seeds = sorted(set(runs[experiments.BASELINE]) & set(runs[args.experiment]))
    if len(seeds) > 1:
        deltas = []
        for s in seeds:
            b, _ = stats.item_matrix([runs[experiments.BASELINE][s]], experiments.SYSTEM, args.metric)
            o, _ = stats.item_matrix([runs[args.experiment][s]], experiments.SYSTEM, args.metric)
            deltas.append(float(np.nanmean(o) - np.nanmean(b)))
        print(f"difference per seed: {', '.join(f'{d:+.3f}' for d in deltas)}; sd {np.std(deltas, ddof=1):.3f}")


if __name__ == "__main__":
    main()
