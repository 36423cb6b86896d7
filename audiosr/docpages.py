"""The generated tables of the manual (docs/): each lives in its page between two markers and is written
there by the code that measures it, from a committed source, so a page never holds a table by hand.

    <!-- generated: bench_data (python benchmarks/bench_data.py) -->
    ...the table...
    <!-- end: bench_data -->

`python -m audiosr.docpages` rewrites every block from its source; `--check` lists the stale ones and
exits 1 (CI and tests/test_docs.py run it).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path("benchmarks/results")  # the benchmarks' tables as they measured them, one file each


def _instruments() -> str:
    import pandas as pd

    from audiosr.data.instruments import markdown_table

    return markdown_table(pd.read_csv(ROOT / "docs/data/instruments.csv"))


def _results() -> str:
    """The headline results table: every system on both held-out test sets, from the committed metrics."""
    import json

    rendered = json.loads((ROOT / "metrics/eval.json").read_text())
    real = json.loads((ROOT / "metrics/eval_real.json").read_text())
    what = {
        "unprocessed": "the degraded input",
        "gt_vocoder": "the vocoder on the clean mel (the ceiling)",
        "gt_vae": "VAE round trip + vocoder",
        "model": "the model alone",
        "model_lfr": "**`audiosr upsample`** (model + band merge)",
        "model_fast": "the one-step student",
        "model_fast_lfr": "`audiosr upsample --student`",
    }
    lines = [
        "| system | | rendered: LSD | ViSQOL | worse than input | real: LSD | worse than input |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for system, values in rendered.items():
        other = real.get(system, {})
        cells = [
            f"{values['lsd']:.3f}",
            f"{values['visqol']:.2f}",
            str(values.get("worse_than_input", "")),
            f"{other['lsd']:.3f}" if other else "",
            str(other.get("worse_than_input", "")),
        ]
        lines.append(f"| `{system}` | {what.get(system, '')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _file(path: str) -> Callable[[], str]:
    return lambda: (ROOT / path).read_text()


# block name -> (page, command that measures it, its source rendered as the block's text)
BLOCKS: dict[str, tuple[str, str, Callable[[], str]]] = {
    "results": ("README.md", "dvc repro, then python -m audiosr.docpages", _results),
    "instruments": (
        "docs/data.md",
        "python -m audiosr.docpages --instruments data/raw/rendered/instruments.csv",
        _instruments,
    ),
    "ablations": ("docs/studies.md", "make ablations", _file("metrics/ablations.md")),
    "bench_data": ("docs/performance.md", "python benchmarks/bench_data.py", _file(f"{RESULTS}/bench_data.md")),
    "bench_train": ("docs/performance.md", "python benchmarks/bench_train.py", _file(f"{RESULTS}/bench_train.md")),
    "bench_upsample": (
        "docs/performance.md",
        "python benchmarks/bench_upsample.py",
        _file(f"{RESULTS}/bench_upsample.md"),
    ),
    "bench_precision": (
        "docs/performance.md",
        "python benchmarks/bench_precision.py",
        _file(f"{RESULTS}/bench_precision.md"),
    ),
    "stage_times": ("docs/performance.md", "python benchmarks/stage_times.py", _file(f"{RESULTS}/stage_times.md")),
}


def _pattern(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- generated: {re.escape(name)} [^\n]*-->\n)(.*?)(<!-- end: {re.escape(name)} -->)", re.S)


def read_block(page: Path, name: str) -> str | None:
    m = _pattern(name).search(page.read_text()) if page.exists() else None
    return m.group(2) if m else None


def write_block(page: Path, name: str, text: str, command: str) -> None:
    """Put `text` between the block's markers in `page` (appended with new markers where it has none)."""
    body = text.strip("\n") + "\n"
    old = page.read_text() if page.exists() else ""
    head = f"<!-- generated: {name} ({command}) -->\n"
    if _pattern(name).search(old):
        new = _pattern(name).sub(lambda m: head + body + m.group(3), old)
    else:
        new = old.rstrip("\n") + f"\n\n{head}{body}<!-- end: {name} -->\n"
    page.write_text(new)


def publish(name: str, text: str) -> None:
    """A benchmark's table: saved as its source (benchmarks/results/<name>.md) and written into its page."""
    (ROOT / RESULTS).mkdir(parents=True, exist_ok=True)
    (ROOT / RESULTS / f"{name}.md").write_text(text.strip("\n") + "\n")
    page, command, _ = BLOCKS[name]
    write_block(ROOT / page, name, text, command)


def stale() -> list[str]:
    """The blocks whose page does not hold what their source renders to."""
    out = []
    for name, (page, _, render) in BLOCKS.items():
        if read_block(ROOT / page, name) != render().strip("\n") + "\n":
            out.append(f"{page}: {name}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="list the stale blocks and exit 1 if there are any")
    ap.add_argument("--instruments", type=Path, help="the fetch stage's instruments.csv to publish first")
    args = ap.parse_args(argv)
    if args.check:
        found = stale()
        for line in found:
            print(f"stale generated table: {line}; run `python -m audiosr.docpages`", file=sys.stderr)
        return 1 if found else 0
    if args.instruments:
        (ROOT / "docs/data").mkdir(parents=True, exist_ok=True)
        (ROOT / "docs/data/instruments.csv").write_bytes(args.instruments.read_bytes())
    for name, (page, command, render) in BLOCKS.items():
        write_block(ROOT / page, name, render(), command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
