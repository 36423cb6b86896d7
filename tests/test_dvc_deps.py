"""dvc.yaml's code dependencies, derived from the live tree: each stage must list every project module
its script imports, directly or through other modules (function-level imports included), so that a
change to code a stage runs re-runs the stage. A folder dependency covers every file beneath it."""

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "audiosr"
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def module_file(name: str, root: Path) -> Path | None:
    """The file a dotted module name loads from: a package's __init__.py or a module's .py; None when
    the name is not a module (an attribute imported with `from`)."""
    base = root.joinpath(*name.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_names(path: Path, root: Path) -> set[str]:
    """Dotted names of the project modules (and candidate submodules) one file imports, anywhere in the
    file except under `if TYPE_CHECKING:` (never executed)."""
    names: set[str] = set()
    package = path.relative_to(root).parent.parts if path.is_relative_to(root / PACKAGE) else ()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join(parts + (node.module.split(".") if node.module else []))
            names.add(module)
            # `from audiosr.data import rendered` imports the submodule audiosr/data/rendered.py
            names.update(f"{module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return {n for n in names if n.split(".")[0] == PACKAGE}


def project_modules(script: Path, root: Path = ROOT) -> set[Path]:
    """Every project file that running `script` may execute: its imports, transitively, with the
    __init__.py of each package on the way (importing audiosr.data.store runs audiosr/data/__init__.py)."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        for name in imported_names(todo.pop(), root):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                path = module_file(".".join(parts[:i]), root)
                if path is not None and path not in seen:
                    seen.add(path)
                    todo.append(path)
    return seen


def stage_script(cmd: str) -> Path:
    scripts = [word for word in cmd.split() if word.endswith(".py")]
    assert len(scripts) == 1, f"expected one script in {cmd!r}"
    return ROOT / scripts[0]


def covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(ROOT)
    return any(rel == Path(d) or Path(d) in rel.parents for d in deps)


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_lists_the_code_it_runs(name: str) -> None:
    stage = STAGES[name]
    script = stage_script(stage["cmd"])
    needed = {script} | project_modules(script)
    missing = sorted(str(p.relative_to(ROOT)) for p in needed if not covered(p, stage.get("deps", [])))
    assert not missing, f"dvc.yaml stage {name!r} runs code it does not list in deps: {missing}"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_lists_no_module_it_does_not_run(name: str) -> None:
    """A module file listed but never imported re-runs the stage for nothing (folders may hold more)."""
    stage = STAGES[name]
    script = stage_script(stage["cmd"])
    needed = {script} | project_modules(script)
    files = [d for d in stage.get("deps", []) if d.endswith(".py") and (ROOT / d).is_file()]
    extra = [d for d in files if ROOT / d not in needed]
    assert not extra, f"dvc.yaml stage {name!r} depends on modules it never imports: {extra}"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_code_deps_exist(name: str) -> None:
    """A code dependency left behind by a move or rename (DVC would refuse to run the stage)."""
    code = [d for d in STAGES[name].get("deps", []) if d.split("/")[0] in (PACKAGE, "stages")]
    gone = [d for d in code if not (ROOT / d).exists()]
    assert not gone, f"dvc.yaml stage {name!r} depends on code that is not in the tree: {gone}"


def test_the_walk_follows_every_kind_of_import(tmp_path) -> None:
    """The walk itself, on a made-up package: function-level, submodule (`from pkg import mod`) and
    relative imports count, with each package's __init__.py; names that are not modules and imports
    under `if TYPE_CHECKING:` do not."""
    files = {
        "stages/s.py": "from audiosr.a import f\n",
        "audiosr/__init__.py": "",
        "audiosr/a.py": "def f():\n    from audiosr.sub import b\n",
        "audiosr/sub/__init__.py": "",
        "audiosr/sub/b.py": "from typing import TYPE_CHECKING\nfrom .c import g\nif TYPE_CHECKING:\n"
        "    import audiosr.typing_only\n",
        "audiosr/sub/c.py": "g = 1\n",
        "audiosr/typing_only.py": "",
        "audiosr/unused.py": "",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    found = {str(p.relative_to(tmp_path)) for p in project_modules(tmp_path / "stages/s.py", tmp_path)}
    assert found == {
        "audiosr/__init__.py",
        "audiosr/a.py",
        "audiosr/sub/__init__.py",
        "audiosr/sub/b.py",
        "audiosr/sub/c.py",
    }
