"""The one-step student: the distill stage trains it towards the teacher's samples, resumes to the same
weights as an uninterrupted run, is packaged with the teacher, and is what `audiosr upsample` runs
by default (one U-Net pass per window, deterministic for a seed)."""

import dataclasses
import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from safetensors.torch import load_file

from audiosr import results
from audiosr.audio import SAMPLE_RATE
from audiosr.config import Params
from audiosr.data.store import SegmentSet
from audiosr.inference.model import ModelError
from audiosr.inference.restore import DEFAULT_STEPS, Pipeline
from audiosr.models.load import load_model
from audiosr.train import loop, runner
from audiosr.train.distill import DistillTask
from audiosr.train.distributed import Dist
from tests.conftest import copy_project, run_stage, stage
from tests.test_upsample import run


def task_of(wd, cfg, cls=DistillTask, d: Dist | None = None) -> DistillTask:
    vae, ldm = load_model(wd / "models/vae"), load_model(wd / "models/ldm")
    pairs = [SegmentSet.open(wd / f"data/pairs/{s}") for s in ("train", "valid")]
    return cls(cfg, *vae, *ldm, *pairs, d or Dist())


def test_student_starts_as_the_one_step_teacher_and_learns_the_teacher(project) -> None:
    wd, _ = project
    cfg = Params.load(wd / "params.yaml").distill
    task = task_of(wd, cfg)
    first = task.validate()
    # untrained, the student is the teacher sampled in one step
    assert first["val/x0_mse"] == pytest.approx(first["val/one_step_mse"], rel=1e-5)
    assert first["val/one_step_mse"] > 0  # the teacher's 2-step sample is not its 1-step one
    short = dataclasses.replace(cfg, steps=40, batch=4, lr=1e-3, warmup=0, validate_every=40)
    loop.run(task, short, wd / "unused", {"test": 1}, Dist())
    # trained on the teacher's samples of the training crops, it is closer to the teacher on held-out crops
    assert task.validate()["val/x0_mse"] < 0.8 * first["val/x0_mse"]


def test_stage_output_is_packaged_and_described(project) -> None:
    wd, env = project
    summary = results.training_summary(wd, "distill")
    assert summary["steps"] == 4 and {"val/x0_mse", "val/one_step_mse"} <= set(summary)
    student = load_file(str(wd / "models/pipeline/student.safetensors"))
    teacher = load_file(str(wd / "models/pipeline/ldm.safetensors"))
    assert student.keys() == teacher.keys()  # the teacher's architecture
    assert any(not torch.equal(student[k], teacher[k]) for k in student)  # and trained away from it
    config = json.loads((wd / "models/pipeline/config.json").read_text())
    assert config["student"]["sampling_steps"] == 1 and config["student"]["teacher"]["steps"] == 2
    r = run("info", wd / "models/pipeline")
    assert r.exit_code == 0, r.output
    assert "student" in r.output and "--student: the one-step student" in r.output


def test_resumed_distillation_matches_an_uninterrupted_one(project, tmp_path, monkeypatch) -> None:
    wd, env = copy_project(project, tmp_path)
    monkeypatch.chdir(wd)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", env["MLFLOW_TRACKING_URI"])
    monkeypatch.setattr(loop, "CHECKPOINT_EVERY", 2)
    params = Params.load()
    uninterrupted = load_file(str(wd / "models/distill/model.safetensors"))  # the stage's own run

    class Interrupted(DistillTask):
        def step(self, step: int, batch=None) -> dict[str, float]:
            if step == 3:
                raise KeyboardInterrupt("killed")
            return super().step(step, batch)

    def stage_with(cls: type[DistillTask]) -> dict:
        make = lambda d: task_of(wd, params.distill, cls, d)  # noqa: E731
        return runner.train_stage("distill", params.distill, params.profile, make, {"resume-test": 1}, {})

    with pytest.raises(KeyboardInterrupt):
        stage_with(Interrupted)
    assert json.loads((wd / "checkpoints/distill/last/state.json").read_text())["step"] == 2
    summary = stage_with(DistillTask)
    assert summary["invocations"] == 2 and summary["steps"] == params.distill.steps
    resumed = load_file(str(wd / "models/distill/model.safetensors"))
    for k in uninterrupted:
        torch.testing.assert_close(resumed[k], uninterrupted[k], rtol=1e-5, atol=1e-6)


class Counted(torch.nn.Module):
    """A U-Net that counts its forward passes (with the U-Net's downsampling factor, as the pipeline reads it)."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net, self.calls, self.factor = net, 0, net.factor

    def forward(self, x, t):
        self.calls += 1
        return self.net(x, t)


def test_a_loaded_student_restores_by_default_and_the_teacher_for_more_steps(project) -> None:
    wd, _ = project
    assert Pipeline.load(wd / "models/pipeline").student is None  # the teacher unless the student is asked for
    pipe = Pipeline.load(wd / "models/pipeline", student=True)
    pipe.student, pipe.unet = Counted(pipe.student), Counted(pipe.unet)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 2500 * t)).astype(np.float32)
    a = pipe.upsample(x, SAMPLE_RATE, seed=3, batch=16).wave
    windows = pipe.student.calls
    assert windows >= 1 and pipe.unet.calls == 0  # one pass per batch of windows, no teacher
    assert np.array_equal(a, pipe.upsample(x, SAMPLE_RATE, seed=3, batch=16).wave)  # deterministic for a seed
    assert not np.array_equal(a, pipe.upsample(x, SAMPLE_RATE, seed=4, batch=16).wave)  # the seed is the noise
    pipe.student.calls = 0
    teacher = pipe.upsample(x, SAMPLE_RATE, steps=2, seed=3, batch=16).wave
    assert pipe.student.calls == 0 and pipe.unet.calls == 2 * windows  # 2 steps, guidance in one batch
    assert not np.allclose(a, teacher)
    # teacher_only (the evaluation's `model`): one step is the teacher's own, one pass unguided
    pipe.unet.calls = 0
    single = pipe.teacher_only().upsample(x, SAMPLE_RATE, steps=1, guidance=1.0, seed=3, batch=16).wave
    assert pipe.student.calls == 0 and pipe.unet.calls == windows
    assert not np.allclose(a, single)


def test_cli_samples_one_teacher_step_by_default_and_the_student_on_request(project, tmp_path) -> None:
    """`audiosr upsample` writes what the teacher's single unguided step gives, `--student` the student's."""
    wd, _ = project
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    x = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    src = tmp_path / "in.wav"
    sf.write(str(src), x, SAMPLE_RATE, subtype="FLOAT")
    model = wd / "models/pipeline"
    outs = {}
    for name, flags in {"student": ["--student"], "teacher": []}.items():
        r = run("upsample", src, "-o", tmp_path / f"{name}.wav", "--model", model, "--precision", "fp32", *flags)
        assert r.exit_code == 0, r.output
        outs[name] = sf.read(str(tmp_path / f"{name}.wav"), dtype="float32")[0]
    expected = Pipeline.load(model).teacher_only().upsample(x, SAMPLE_RATE, steps=1, guidance=1.0).wave[0]
    np.testing.assert_allclose(outs["teacher"], expected, atol=2e-4)  # the 24-bit file's rounding
    assert not np.allclose(outs["student"], outs["teacher"], atol=1e-3)


def test_a_model_without_student_samples_with_the_teacher(project, tmp_path) -> None:
    wd, _ = project
    folder = tmp_path / "pipeline"
    folder.mkdir()
    config = json.loads((wd / "models/pipeline/config.json").read_text())
    del config["student"]
    (folder / "config.json").write_text(json.dumps(config))
    for part in ("vae", "ldm", "vocoder"):
        (folder / f"{part}.safetensors").write_bytes((wd / f"models/pipeline/{part}.safetensors").read_bytes())
    pipe = Pipeline.load(folder, student=True)
    assert pipe.student is None and pipe.steps_for(None) == DEFAULT_STEPS and not pipe.uses_student(None)
    src = tmp_path / "in.wav"
    sf.write(str(src), np.zeros(SAMPLE_RATE, np.float32) + 0.1, SAMPLE_RATE)
    r = run("upsample", src, "--model", folder, "--student")
    assert r.exit_code == 1 and "has no one-step student" in r.output and "distill.steps" in r.output
    assert not (tmp_path / "in_48k.wav").exists()


def test_distill_refuses_a_crop_the_vae_cannot_encode(project, tmp_path) -> None:
    wd, env = copy_project(project, tmp_path)
    params = yaml.safe_load((wd / "params.yaml").read_text())
    params["distill"]["crop_frames"] = 30  # not a multiple of the VAE's downsampling (4)
    (wd / "params.yaml").write_text(yaml.safe_dump(params))
    out = run_stage(stage("distill"), wd, env, ok=False)
    assert out.returncode != 0 and "distill.crop_frames: 30 must be a multiple" in out.stderr


def test_a_model_missing_its_student_file_is_one_clear_error(project, tmp_path) -> None:
    wd, _ = project
    folder = tmp_path / "pipeline"
    shutil.copytree(wd / "models/pipeline", folder)
    (folder / "student.safetensors").unlink()
    with pytest.raises(ModelError, match=r"incomplete model folder, missing student\.safetensors"):
        Pipeline.load(folder)


def test_no_student_with_zero_steps(project, tmp_path) -> None:
    """distill.steps 0: the stage writes a folder that holds no student, and package leaves it out."""
    wd, env = copy_project(project, tmp_path)
    params = yaml.safe_load((wd / "params.yaml").read_text())
    params["distill"]["steps"] = 0
    (wd / "params.yaml").write_text(yaml.safe_dump(params))
    assert "no student" in run_stage(stage("distill"), wd, env).stdout
    assert not (wd / "models/distill/model.safetensors").exists()
    assert json.loads((wd / "metrics/train_distill.json").read_text()) == {}  # no quality to measure
    assert json.loads((wd / "metrics/stats/train_distill.json").read_text()) == {"steps": 0}
    run_stage(stage("package"), wd, env)
    assert not (wd / "models/pipeline/student.safetensors").exists()
    assert "student" not in json.loads((wd / "models/pipeline/config.json").read_text())
