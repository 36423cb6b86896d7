"""Training: checkpoints, resume after a kill, the NaN guard, and the stages themselves (one process and
two through torchrun) on tiny data made in the test."""

import json
import os
import shutil
import sqlite3
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from audiosr.config import LoopConfig, Params
from audiosr.data.store import SegmentSet
from audiosr.train import loop
from audiosr.train.checkpoint import code_fingerprint, load_checkpoint, load_model, save_checkpoint, save_model
from audiosr.train.distributed import Dist
from audiosr.train.ldm import LDMTask
from audiosr.train.vae import VAETask
from audiosr.train.vocoder import VocoderTask
from tests.conftest import ROOT, copy_project, run_stage, stage


class Toy:
    """A minimal Task: linear regression on batches drawn from (seed, step)."""

    name = "toy"
    samples_per_step = 4

    def __init__(self, fail_at: int | None = None, nan_at: int | None = None):
        torch.manual_seed(0)
        self.net = torch.nn.Linear(3, 1)
        self.modules = {"net": self.net}
        self.optimizers = {"net": torch.optim.AdamW(self.net.parameters(), 0.1)}
        self.fail_at, self.nan_at = fail_at, nan_at

    def step(self, step: int, batch=None) -> dict[str, float]:
        if step == self.fail_at:
            raise KeyboardInterrupt("killed")
        x = torch.from_numpy(loop.batch_rng(0, step).standard_normal((4, 3))).float()
        x = x + 0.01 * torch.randn(4, 3)  # uses the loop's per-step torch seed
        loss = ((self.net(x)[:, 0] - x.sum(1)) ** 2).mean()
        loss.backward()
        loop.clip_and_step(self.optimizers["net"], self.net.parameters(), 1.0)
        return {"loss": float("nan") if step == self.nan_at else float(loss.detach())}

    def validate(self) -> dict[str, float]:
        return {"val/w": float(self.net.weight.detach().sum())}

    def log_examples(self, mlflow, step: int) -> None:
        pass


def loop_config(**values) -> LoopConfig:
    base = dict(steps=9, batch=4, lr=0.1, warmup=2, betas=(0.9, 0.999), weight_decay=0.0, grad_clip=1.0)
    return LoopConfig(**{**base, "validate_every": 3, "seed": 0, **values})


SETTINGS = loop_config()


def test_checkpoint_round_trip(tmp_path) -> None:
    a = Toy()
    a.step(0)
    save_checkpoint(tmp_path / "ck", 1, a.modules, a.optimizers, "run-a")
    b = Toy()
    assert load_checkpoint(tmp_path / "ck", b.modules, b.optimizers, "run-b") == 0  # another run's state
    assert load_checkpoint(tmp_path / "ck", b.modules, b.optimizers, "run-a") == 1
    assert torch.equal(a.net.weight, b.net.weight)
    sa, sb = a.optimizers["net"].state_dict(), b.optimizers["net"].state_dict()
    assert torch.equal(sa["state"][0]["exp_avg"], sb["state"][0]["exp_avg"])
    assert sa["param_groups"] == sb["param_groups"]
    assert set(p.name for p in (tmp_path / "ck").iterdir()) == {"state.safetensors", "state.json"}


def test_the_code_fingerprint_follows_the_python_sources(tmp_path) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "loop.py").write_text("STEPS = 1\n")
    (tmp_path / "README.md").write_text("notes")
    base = code_fingerprint(tmp_path)
    assert code_fingerprint(tmp_path) == base
    (tmp_path / "README.md").write_text("other notes")  # not code
    assert code_fingerprint(tmp_path) == base
    (tmp_path / "train" / "loop.py").write_text("STEPS = 2\n")
    changed = code_fingerprint(tmp_path)
    assert changed != base
    (tmp_path / "train" / "loop.py").rename(tmp_path / "loop.py")  # the same bytes elsewhere
    assert code_fingerprint(tmp_path) not in (base, changed)
    assert len(code_fingerprint()) == 16  # the package's own


def test_resume_after_kill_matches_uninterrupted(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(loop, "CHECKPOINT_EVERY", 3)
    monkeypatch.setattr(loop, "LOG_EVERY", 1)
    whole = Toy()
    loop.run(whole, SETTINGS, tmp_path / "a", {"id": 1}, Dist(), log_csv=tmp_path / "a.csv")
    killed = Toy(fail_at=7)
    with pytest.raises(KeyboardInterrupt):
        loop.run(killed, SETTINGS, tmp_path / "b", {"id": 1}, Dist())
    resumed = Toy()
    loop.run(resumed, SETTINGS, tmp_path / "b", {"id": 1}, Dist(), log_csv=tmp_path / "b.csv")
    assert torch.allclose(whole.net.weight, resumed.net.weight, atol=1e-7)
    assert (tmp_path / "a.csv").read_text().splitlines()[0] == (tmp_path / "b.csv").read_text().splitlines()[0]
    steps = [int(r.split(",")[0]) for r in (tmp_path / "b.csv").read_text().splitlines()[1:]]
    assert steps == list(range(1, 10))  # the rows after the last checkpoint are not duplicated


def test_nan_loss_stops_with_the_step_and_keeps_the_checkpoint(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(loop, "CHECKPOINT_EVERY", 3)
    with pytest.raises(loop.TrainingDiverged, match=r"step 4: loss loss=nan.*checkpoint \(step 3\)"):
        loop.run(Toy(nan_at=4), SETTINGS, tmp_path, {"id": 1}, Dist())
    assert json.loads((tmp_path / "last" / "state.json").read_text())["step"] == 3


def test_learning_rate_warms_up_then_decays() -> None:
    cfg = loop_config(steps=100, batch=1, lr=1.0, warmup=10)
    lrs = [loop.lr_at(cfg, i) for i in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False)) and lrs[-1] >= 0.1


# --- the stages on tiny data (the `project` fixture in conftest.py) ------------------------------


@pytest.mark.slow
def test_stages_write_models_metrics_and_plots(project) -> None:
    wd, env = project
    for name in ("vae", "vocoder", "ldm"):
        state, config = load_model(wd / "models" / name)
        assert config["kind"] == name and config["profile"] == "small" and state
        # quality (the DVC metrics) apart from how the training ran (steps, timings, counts: not metrics)
        quality = json.loads((wd / "metrics" / f"train_{name}.json").read_text())
        stats = json.loads((wd / "metrics" / "stats" / f"train_{name}.json").read_text())
        assert quality and all(k.startswith("val/") and np.isfinite(v) for k, v in quality.items())
        assert stats["steps"] > 0 and stats["seconds"] > 0 and any(k.startswith("params/") for k in stats)
        assert not set(quality) & set(stats)
        assert (wd / "plots" / f"train_{name}_loss.png").read_bytes()[:4] == b"\x89PNG"
        log = (wd / "metrics" / f"train_{name}_log.csv").read_text().splitlines()
        assert log[0].startswith("step,loss") and len(log) >= 2
    assert 0 < load_model(wd / "models/vae")[1]["scale"] < 1e3
    vocoder_log = (wd / "metrics" / "train_vocoder_log.csv").read_text().splitlines()[0].split(",")
    assert "stft/l1" in vocoder_log  # the log-STFT term is trained and logged when its weight is set
    db = sqlite3.connect(wd / "mlflow.db")
    names = {r[0] for r in db.execute("select name from runs where status='FINISHED'")}
    assert {"workspace/train_vae", "workspace/train_vocoder", "workspace/train_ldm"} <= names


@pytest.mark.slow
def test_torchrun_two_processes_match_one(project, tmp_path) -> None:
    wd, env = copy_project(project, tmp_path)
    one = load_file(str(wd / "models/ldm/model.safetensors"))
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517"]
    shutil.rmtree(wd / "checkpoints" / "ldm")  # train from scratch, not from the finished checkpoint
    out = run_stage([*torchrun, str(ROOT / "stages" / "train_ldm.py")], wd, env).stderr
    two = load_file(str(wd / "models/ldm/model.safetensors"))
    init = initial_ldm(wd)
    assert one.keys() == two.keys() == init.keys()
    moved = max(float((one[k] - init[k]).abs().max()) for k in one)
    worst = max(float((one[k] - two[k]).abs().max()) for k in one)
    # the tiny training (6 warm-up steps at a small lr, then EMA) moves the weights by about 1e-4, so the
    # runs must agree to a hundredth of that: an absolute 1e-4 would pass had neither run trained at all
    assert moved > 1e-5, moved
    assert worst < 1e-2 * moved, (worst, moved, out)


def initial_ldm(wd: Path) -> dict[str, torch.Tensor]:
    """The exported U-Net of the ldm stage before its first step: the task built as the stage builds it
    (same params, VAE, data and seed)."""
    params = Params.load(wd / "params.yaml")
    vae_state, vae_cfg = load_model(wd / "models/vae")
    sets = [
        SegmentSet.open(wd / "data" / name)
        for name in ("pairs/train", "segments/train", "pairs/valid", "segments/valid")
    ]
    state, _ = LDMTask(params.ldm, vae_state, vae_cfg, *sets, Dist()).export()
    return {k: v.detach().cpu() for k, v in state.items()}


@pytest.mark.slow
def test_ldm_refuses_a_vae_with_other_mels(project, tmp_path) -> None:
    wd, env = project
    state, config = load_model(wd / "models/vae")
    other = tmp_path / "w"
    (other / "models").mkdir(parents=True)
    for d in ("data", "params.yaml"):
        os.symlink(wd / d, other / d)
    save_model(other / "models/vae", state, {**config, "n_mels": 64})
    out = run_stage(stage("train_ldm"), other, env, ok=False)
    assert out.returncode != 0 and "n_mels=64" in out.stderr and "n_mels=32" in out.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vae", "vocoder"])
def test_loader_workers_do_not_change_the_training(project, tmp_path, monkeypatch, name) -> None:
    """The batches that DataLoader worker processes draw ahead ($AUDIOSR_LOADER_WORKERS, the GPU's
    default) train exactly what the loop's own process draws (the CPU's default)."""
    wd, _ = project
    monkeypatch.chdir(wd)
    params = Params.load()
    cfg = replace(getattr(params, name), steps=5, validate_every=5)
    train, valid = SegmentSet.open("data/segments/train"), SegmentSet.open("data/segments/valid")
    trained = []
    for workers in ("0", "2"):
        monkeypatch.setenv("AUDIOSR_LOADER_WORKERS", workers)
        task = {"vae": VAETask, "vocoder": VocoderTask}[name](cfg, params.mel, train, valid, Dist())
        loop.run(task, cfg, tmp_path / workers, {"workers": workers}, Dist())
        trained.append({k: v.clone() for m in task.modules.values() for k, v in m.state_dict().items()})
    initial = {"vae": VAETask, "vocoder": VocoderTask}[name](cfg, params.mel, train, valid, Dist())
    start = {k: v for m in initial.modules.values() for k, v in m.state_dict().items()}
    assert any(not torch.equal(trained[0][k], start[k]) for k in start)  # it trained
    assert all(torch.equal(trained[0][k], trained[1][k]) for k in start)
