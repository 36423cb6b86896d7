"""The ablation study's plan (which seeds an experiment varies, from the real dvc.yaml) and its statistics
(paired bootstrap intervals, checked against cases where the answer is known)."""

import numpy as np
import pandas as pd
import pytest
import yaml

from audiosr import experiments, stats
from tests.conftest import ROOT


def test_seed_params_are_those_of_the_stages_an_override_reruns() -> None:
    # noise.type re-runs degrade (the `seed` of its draws), train_ldm and distill; never the evaluation's
    assert experiments.seed_params("noise.type=tone", ROOT) == ["distill.seed", "ldm.seed", "seed"]
    assert experiments.seed_params("filter.types=[boxcar]", ROOT) == ["distill.seed", "ldm.seed", "seed"]
    assert experiments.seed_params("ldm.lr=0.001", ROOT) == ["distill.seed", "ldm.seed"]
    assert experiments.seed_params("vocoder.stft_weight=0", ROOT) == ["vocoder.seed"]
    assert experiments.seed_params("eval.clips=4", ROOT) == []


def test_plan_names_every_seed_and_the_baseline_replicates() -> None:
    planned = experiments.plan(["noise-tone"], 3, ROOT)
    assert list(planned) == [
        "noise-tone",
        "baseline-seed1",
        "noise-tone-seed1",
        "baseline-seed2",
        "noise-tone-seed2",
    ]
    assert planned["noise-tone"] == ["noise.type=tone"]  # seed 0: the params as they are
    assert planned["baseline-seed2"] == ["distill.seed=2", "ldm.seed=2", "seed=2"]
    assert planned["noise-tone-seed1"] == ["noise.type=tone", "distill.seed=1", "ldm.seed=1", "seed=1"]
    assert experiments.group_name("noise-tone-seed2") == ("noise-tone", 2)
    assert experiments.group_name("workspace") == ("baseline", 0)
    assert experiments.group_name("noise-tone") == ("noise-tone", 0)


def test_paired_interval_finds_a_shift_hidden_in_item_noise() -> None:
    """Items vary a lot (sd 0.5) but the paired difference is a shift of 0.05 with sd 0.1: the interval
    holds 0.05, excludes zero, and is as wide as the normal approximation says (1.96 · 0.1 / √n)."""
    rng = np.random.default_rng(1)
    n = 400
    base = 1.5 + 0.5 * rng.standard_normal(n)
    other = base + 0.05 + 0.1 * rng.standard_normal(n)
    d = stats.paired_difference(base, other, n_boot=4000)
    assert d.low < 0.05 < d.high and d.significant
    expected = 2 * 1.96 * np.std(other - base, ddof=1) / np.sqrt(n)
    assert (d.high - d.low) == pytest.approx(expected, rel=0.1)
    # no shift: the interval holds zero and nothing is marked
    same = stats.paired_difference(base, base + 0.1 * rng.standard_normal(n))
    assert same.low < 0 < same.high and not same.significant and not str(same).endswith("*")
    # unpaired noise of the same size would hide the shift: pairing is what makes it visible
    assert (d.high - d.low) < 0.5 * 2 * 1.96 * 0.5 * np.sqrt(2 / n)


def test_seed_noise_widens_the_interval() -> None:
    """Three training seeds whose means differ by ±0.1: a difference of 0.05 is no longer resolved."""
    rng = np.random.default_rng(2)
    items = 1.5 + 0.5 * rng.standard_normal(300)
    offsets = np.array([[-0.1], [0.0], [0.1]])
    base = items + offsets + 0.02 * rng.standard_normal((3, 300))
    other = items + 0.05 + offsets[::-1] * 0.9 + 0.02 * rng.standard_normal((3, 300))
    one_seed = stats.paired_difference(base[1], other[1])
    three = stats.paired_difference(base, other)
    assert one_seed.significant and not three.significant
    assert three.high - three.low > 5 * (one_seed.high - one_seed.low)
    # items missing on one side (a metric that was not computed) are left out, not propagated as NaN
    holes = other.copy()
    holes[:, :10] = np.nan
    assert np.isfinite(stats.paired_difference(base, holes).delta)


def test_item_matrix_refuses_different_items() -> None:
    table = pd.DataFrame(
        {"system": "model_lfr", "cutoff_hz": [4000.0, 8000.0], "filter": "boxcar", "noise": "none", "clip": 0}
    ).assign(lsd=[1.0, 2.0])
    values, index = stats.item_matrix([table, table.iloc[::-1]], "model_lfr", "lsd")
    assert values.tolist() == [[1.0, 2.0], [1.0, 2.0]] and len(index) == 2  # order does not matter
    with pytest.raises(ValueError, match="different items"):
        stats.item_matrix([table, table.assign(clip=1)], "model_lfr", "lsd")


def test_clips_that_disagree_are_not_a_finding() -> None:
    """The measured case (docs/studies.md): a change that helps one clip (-0.06) and hurts the other (+0.11) under
    every condition. Items alone call the mean (+0.025) significant; drawing clips too does not."""
    rng = np.random.default_rng(3)
    index = pd.MultiIndex.from_product(
        [
            [2e3, 4e3, 8e3, 12e3, 16e3],
            ["boxcar", "elliptic", "butterworth", "chebyshev"],
            ["none", "tone", "gaussian"],
            [0, 199],
        ],
        names=stats.ITEM,
    )
    clip = index.get_level_values("clip").to_numpy()
    base = 1.5 + 0.3 * rng.standard_normal(len(index))
    other = base + np.where(clip == 0, -0.06, 0.11) + 0.02 * rng.standard_normal(len(index))
    by_items = stats.paired_difference(base, other)
    by_design = stats.paired_difference(base, other, *stats.crossed(index))
    assert by_items.significant and not by_design.significant
    assert by_design.low < -0.05 and by_design.high > 0.1  # the two clips' own differences bound it
    conditions, clips = stats.crossed(index)  # 60 conditions of 2 clips
    assert conditions.max() + 1 == 60 and sorted(set(clips)) == [0, 1]


def test_protocol_tells_experiments_evaluated_by_other_code_or_params() -> None:
    """An experiment's own model may differ (that is the ablation); the evaluation code, test data and
    eval params may not, or its items are not comparable with the workspace's."""
    lock = (ROOT / "dvc.lock").read_text()
    base = experiments.protocol(lock)
    assert base is not None and experiments.protocol(None) is None

    def changed(edit) -> str | None:
        data = yaml.safe_load(lock)
        edit(data["stages"]["evaluate"])
        return experiments.protocol(yaml.safe_dump(data))

    def dep(stage: dict, path: str) -> dict:
        return next(d for d in stage["deps"] if d["path"] == path)

    assert changed(lambda s: dep(s, "models/pipeline").update(md5="0" * 32 + ".dir")) == base
    assert changed(lambda s: dep(s, "audiosr/inference").update(md5="1" * 32 + ".dir")) != base
    assert changed(lambda s: s["params"]["params.yaml"]["eval"].update(steps=20)) != base


def test_the_queue_is_watched_not_the_workers_output(tmp_path, monkeypatch) -> None:
    """A worker that `dvc queue start` leaves running holds its stdout and stderr (DVC's can hang on its way
    out after the queue has emptied): the ablations still return once the queue says every experiment is
    done, and a failed start is one clear error."""
    import os
    import signal
    import time

    fake = tmp_path / "dvc"
    fake.write_text(
        "#!/bin/sh\n"
        'if [ "$1 $2" = "queue start" ]; then\n'
        '  [ -n "$FAIL" ] && { echo "no broker" >&2; exit 1; }\n'
        '  sleep 300 & echo $! >> "$0.pids"\n'  # a worker: inherits stdout and stderr, outlives this command
        "  exit 0\n"
        "fi\n"
        'if [ "$1 $2" = "queue status" ]; then\n'
        '  printf "Task Name Created Status\\nabc one 11:14 AM Success\\n"\n'
        "fi\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    start = time.monotonic()
    experiments.run_experiments({"one": []}, jobs=1)
    assert time.monotonic() - start < 60
    monkeypatch.setenv("FAIL", "1")
    with pytest.raises(SystemExit, match="(?s)dvc queue start.*no broker"):
        experiments.run_experiments({"one": []}, jobs=1)
    for pid in (tmp_path / "dvc.pids").read_text().split():
        os.kill(int(pid), signal.SIGTERM)
