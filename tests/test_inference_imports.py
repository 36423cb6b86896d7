"""Inference stands apart from training: no module under audiosr/inference imports audiosr.train,
directly or through the audiosr modules it imports (the import walk of tests/test_dvc_deps.py:
ast, function-level imports included)."""

from tests.test_dvc_deps import ROOT, project_modules

TRAIN = ROOT / "audiosr/train"


def test_imports_walk_finds_the_training_code() -> None:
    """The walk itself: a training module reaches audiosr.train (through its own package), the inference
    package reaches its networks."""
    assert ROOT / "audiosr/train/loop.py" in project_modules(ROOT / "audiosr/train/vae.py")
    assert ROOT / "audiosr/models/vae.py" in project_modules(ROOT / "audiosr/inference/restore.py")


def test_inference_never_imports_training() -> None:
    files = sorted((ROOT / "audiosr/inference").glob("*.py"))
    assert {f.stem for f in files} >= {"__init__", "model", "restore", "merge", "stream", "cutoff", "spectrogram"}
    for path in files:
        bad = sorted(str(p.relative_to(ROOT)) for p in project_modules(path) if p.is_relative_to(TRAIN))
        assert not bad, f"{path.relative_to(ROOT)} imports the training code: {bad}"
