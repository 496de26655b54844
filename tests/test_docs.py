"""The README is a front page and docs/ holds the rest: at most 150 lines, the two commands first (right after the
title and a short intro), the same test command as `.ci/run`, every docs/*.md page linked from the README and
every README link into docs/ pointing at a file that exists."""

from __future__ import annotations

import re
import shlex

from conftest import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
CI = ROOT / ".ci" / "run"

INSTALL = 'pip install torch==2.13.0 && pip install -e ".[test]" && sog compress data/sample.ply sample.sog --force'
TEST = "python -m pytest"
MAX_LINES = 150
MAX_INTRO_LINES = 4

#: a Markdown link or image target: ](target) or ](target#anchor)
LINK = re.compile(r"\]\(([^)\s#]*)(#[^)\s]*)?\)")


def readme_lines() -> list[str]:
    return README.read_text(encoding="utf-8").splitlines()


def code_blocks(lines: list[str]) -> list[tuple[int, list[str]]]:
    """``[(line index of the opening fence, body lines), ...]`` of the fenced blocks in ``lines``."""
    blocks, start, body = [], None, []
    for i, line in enumerate(lines):
        if line.startswith("```"):
            if start is None:
                start, body = i, []
            else:
                blocks.append((start, body))
                start = None
        elif start is not None:
            body.append(line)
    return blocks


def readme_doc_links() -> set[str]:
    """The docs/ paths (relative to the repository root) that the README links to."""
    targets = {m.group(1) for m in LINK.finditer(README.read_text(encoding="utf-8"))}
    return {t.removeprefix("./") for t in targets if t.removeprefix("./").startswith("docs/")}


def test_readme_is_at_most_150_lines():
    assert len(readme_lines()) <= MAX_LINES, f"README.md has {len(readme_lines())} lines (at most {MAX_LINES})"


def test_readme_starts_with_the_two_commands():
    lines = readme_lines()
    assert lines[0].startswith("# "), "the README starts with its title"
    blocks = code_blocks(lines)
    assert len(blocks) >= 2
    (first_at, first), (second_at, second) = blocks[:2]
    intro = [line for line in lines[1:first_at] if line.strip()]
    assert 1 <= len(intro) <= MAX_INTRO_LINES, f"{len(intro)} intro lines before the first command"
    assert not any(line.startswith("#") for line in intro), "no heading between the title and the commands"
    assert [line for line in first if line.strip()] == [INSTALL]
    assert [line for line in second if line.strip()] == [TEST]
    assert not any(line.strip() for line in lines[first_at + len(first) + 2:second_at]), \
        "the two commands follow each other"


def test_ci_runs_the_readme_test_command():
    commands = [line.strip() for line in CI.read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    tests = [c for c in commands if shlex.split(c)[:3] == ["python", "-m", "pytest"]]
    assert tests == [TEST], f".ci/run runs {tests}, the README {TEST!r}"
    assert commands[-1] == TEST, ".ci/run ends with the README's test command"


def test_every_docs_page_is_linked_from_the_readme():
    pages = {f"docs/{p.name}" for p in DOCS.glob("*.md")}
    assert pages, "docs/ holds the reference pages"
    missing = sorted(pages - readme_doc_links())
    assert not missing, f"docs pages not linked from README.md: {missing}"


def test_every_readme_link_into_docs_exists():
    broken = sorted(t for t in readme_doc_links() if not (ROOT / t).is_file())
    assert not broken, f"README.md links to missing files: {broken}"


def anchors(page) -> set[str]:
    """GitHub's anchors of ``page``'s headings: lower case, punctuation dropped, spaces as hyphens."""
    heads = [line.lstrip("#").strip() for line in page.read_text(encoding="utf-8").splitlines()
             if re.match(r"#{1,6} ", line)]
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in heads}


def test_links_of_the_readme_and_docs_pages_exist_with_their_anchors():
    broken = []
    for page in [README, *DOCS.glob("*.md")]:
        for m in LINK.finditer(page.read_text(encoding="utf-8")):
            target, anchor = m.group(1), m.group(2)
            if re.match(r"[a-z]+:", target):
                continue
            file = (page.parent / target).resolve() if target else page
            if not file.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and file.suffix == ".md" and anchor[1:] not in anchors(file):
                broken.append(f"{page.name}: {target}{anchor}")
    assert not broken, f"links to missing files or headings: {broken}"


def layout_block() -> str:
    """The fenced block under the README's ``## Layout`` heading."""
    lines = readme_lines()
    start = lines.index("## Layout")
    return "\n".join(next(body for at, body in code_blocks(lines) if at > start))


def test_the_layout_names_every_room_and_each_room_says_what_it_owns():
    import ast

    layout = layout_block()
    rooms = [p / "__init__.py" for p in sorted((ROOT / "sog").iterdir()) if (p / "__init__.py").is_file()]
    rooms += [p for p in sorted((ROOT / "sog").glob("*.py")) if p.name != "__init__.py"]
    unnamed = [r.parent.name + "/" if r.name == "__init__.py" else r.name for r in rooms]
    unnamed = [name for name in unnamed if name not in layout]
    assert not unnamed, f"rooms of sog/ missing from the README's layout: {unnamed}"
    silent = [str(r.relative_to(ROOT)) for r in rooms
              if not (ast.get_docstring(ast.parse(r.read_text(encoding="utf-8"))) or "").strip()]
    assert not silent, f"rooms without a docstring saying what they own: {silent}"
