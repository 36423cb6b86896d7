"""The structure, from the code's imports (the import walk of tests/test_dvc_deps.py: ast, function-level
imports included, `if TYPE_CHECKING:` blocks left out):

- inference stands apart: no module under audiosr/inference imports the training code (the training loops,
  the discriminators and the losses, all under audiosr/train), nor what writes or logs model folders
  (audiosr.packaging, audiosr.registry), directly or through the audiosr modules it imports;
- the networks (audiosr/models) import nothing of training or inference;
- no import circles between the package's modules (a package's __init__ re-exporting its modules aside).
"""

from pathlib import Path

from tests.test_dvc_deps import ROOT, imported_names, module_file, project_modules

TRAIN = ROOT / "audiosr/train"
WRITERS = {ROOT / "audiosr/packaging.py", ROOT / "audiosr/registry.py"}


def test_imports_walk_finds_the_training_code() -> None:
    """The walk itself: a training module reaches audiosr.train (through its own package), the inference
    package reaches its networks."""
    assert ROOT / "audiosr/train/loop.py" in project_modules(ROOT / "audiosr/train/vae.py")
    assert ROOT / "audiosr/models/vae.py" in project_modules(ROOT / "audiosr/inference/restore.py")
    assert ROOT / "audiosr/train/discriminators.py" in project_modules(ROOT / "audiosr/train/vocoder.py")


def test_inference_never_imports_training_or_packaging() -> None:
    files = sorted((ROOT / "audiosr/inference").glob("*.py"))
    assert {f.stem for f in files} >= {"__init__", "model", "restore", "merge", "stream", "cutoff", "spectrogram"}
    for path in files:
        reached = project_modules(path)
        bad = sorted(str(p.relative_to(ROOT)) for p in reached if p.is_relative_to(TRAIN) or p in WRITERS)
        assert not bad, f"{path.relative_to(ROOT)} imports the training or packaging code: {bad}"


def test_the_networks_import_neither_training_nor_inference() -> None:
    for path in sorted((ROOT / "audiosr/models").glob("*.py")):
        reached = project_modules(path)
        bad = sorted(str(p.relative_to(ROOT)) for p in reached if p.is_relative_to(TRAIN) or "inference" in p.parts)
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def direct_imports(path: Path) -> set[Path]:
    """The package's modules `path` imports itself (not the __init__ of the packages on the way)."""
    found = {module_file(name, ROOT) for name in imported_names(path, ROOT)}
    return {p for p in found if p is not None and p.name != "__init__.py" and p != path}


def test_no_import_circles() -> None:
    modules = [p for p in sorted((ROOT / "audiosr").rglob("*.py")) if p.name != "__init__.py"]
    graph = {p: direct_imports(p) for p in modules}
    state: dict[Path, int] = {}  # 1: on the current path, 2: done

    def visit(p: Path, path: list[Path]) -> None:
        state[p] = 1
        for q in sorted(graph.get(p, set())):
            if state.get(q) == 1:
                circle = [str(m.relative_to(ROOT)) for m in path[path.index(q) :] + [q]]
                raise AssertionError(f"import circle: {' -> '.join(circle)}")
            if q not in state:
                visit(q, [*path, q])
        state[p] = 2

    for p in modules:
        if p not in state:
            visit(p, [p])
