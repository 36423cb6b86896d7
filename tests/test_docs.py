"""The manual: README.md and docs/ stay true to the code and to each other. Every generated table holds
what its committed source gives (`audiosr.docpages`), every link and anchor resolves, the README stays a
short manual with a table of contents, and CI runs the README's test command."""

import re
from pathlib import Path

import pytest

from audiosr import docpages

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
OWN_PAGES = [p for p in PAGES if p.name != "audiosr_weights.md"]  # that page is the importer's own


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, flags=re.M)}


def test_every_generated_table_is_current() -> None:
    assert docpages.stale() == []


def test_a_table_edited_by_hand_is_stale(tmp_path, monkeypatch) -> None:
    page, source = tmp_path / "page.md", tmp_path / "source.md"
    source.write_text("| a |\n| --- |\n| 1 |\n")
    page.write_text("# A page\n\nText.\n")
    monkeypatch.setattr(docpages, "ROOT", tmp_path)
    monkeypatch.setattr(docpages, "BLOCKS", {"t": ("page.md", "make t", lambda: source.read_text())})
    assert docpages.main([]) == 0  # written (appended with its markers)
    assert docpages.stale() == [] and "<!-- generated: t (make t) -->\n| a |" in page.read_text()
    page.write_text(page.read_text().replace("| 1 |", "| 2 |"))
    assert docpages.stale() == ["page.md: t"] and docpages.main(["--check"]) == 1
    assert docpages.main([]) == 0 and docpages.stale() == [] and page.read_text().startswith("# A page\n\nText.")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_and_anchors_resolve(page: Path) -> None:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if file.name == "audiosr_weights.md" and not file.exists():
            continue  # written with the importer of AudioSR's weights
        assert file.exists(), f"{page.name}: link to a missing file {target}"
        if anchor and file.suffix == ".md":
            assert anchor in anchors(file), f"{page.name}: no heading {anchor!r} in {file.name}"


def test_the_readme_is_a_short_manual() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 300
    contents = re.findall(r"^- \[[^\]]+\]\(#([^)]+)\)$", readme, flags=re.M)
    assert len(contents) >= 8 and set(contents) <= anchors(ROOT / "README.md")
    for topic in ("restore-your-own-files", "an-ablation-and-comparing-it", "results"):
        assert topic in contents
    assert "make run" in readme and "make test" in readme and "Pipeline.load(" in readme
    assert "make test" in (ROOT / ".ci/run").read_text()  # CI runs the README's test command


@pytest.mark.parametrize("page", OWN_PAGES, ids=lambda p: p.name)
def test_a_user_reads_no_development_log(page: Path) -> None:
    text = page.read_text()
    for pattern in (r"#\d+\b", r"\bsessions?\b", r"\bbudget\b", r"this change", r"the issue"):
        assert not re.search(pattern, text, flags=re.I), f"{page.name}: {pattern!r}"
