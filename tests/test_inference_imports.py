"""Inference stands apart from training: no module under audiosr/inference imports audiosr.train,
directly or through the audiosr modules it imports (walked with ast, function-level imports included)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_path(name: str) -> Path | None:
    """The file of an audiosr module or package; None for a name that is not one (an imported attribute)."""
    base = ROOT.joinpath(*name.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def imports(path: Path) -> set[str]:
    """The audiosr modules one file imports (`from audiosr.x import y` may name the submodule audiosr.x.y),
    with the packages on the way (importing audiosr.a.b runs audiosr/a/__init__.py)."""
    names: set[str] = set()
    package = path.relative_to(ROOT).parent.parts
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join(base + (node.module.split(".") if node.module else []))
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    parents = {".".join(n.split(".")[:i]) for n in names for i in range(1, n.count(".") + 1)}
    return {n for n in names | parents if n.split(".")[0] == "audiosr"}


def reachable(start: Path) -> dict[str, str]:
    """Every audiosr module that importing `start` may run -> the module that first imports it."""
    seen: dict[str, str] = {}
    todo = [(start, str(start.relative_to(ROOT)))]
    while todo:
        path, via = todo.pop()
        for name in sorted(imports(path)):
            target = module_path(name)
            if target is not None and name not in seen:
                seen[name] = via
                todo.append((target, name))
    return seen


def test_imports_walk_finds_the_training_code() -> None:
    """The walk itself: a training module reaches audiosr.train (through its own package), the inference
    package reaches its networks."""
    assert "audiosr.train.loop" in reachable(ROOT / "audiosr/train/vae.py")
    assert "audiosr.models.vae" in reachable(ROOT / "audiosr/inference/restore.py")


def test_inference_never_imports_training() -> None:
    files = sorted((ROOT / "audiosr/inference").glob("*.py"))
    assert {f.stem for f in files} >= {"__init__", "model", "restore", "merge", "stream", "cutoff", "spectrogram"}
    for path in files:
        bad = {name: via for name, via in reachable(path).items() if name.split(".")[:2] == ["audiosr", "train"]}
        assert not bad, f"{path.relative_to(ROOT)} imports the training code: {bad}"
