"""The documentation in docs/ stays connected to the code: pointers resolve, named modules exist, long
signatures are documented, and no citation of a file outside the repository comes back."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
METHOD_SECTIONS = [
    "The task",
    "Backbones (all three are in scope)",
    "The Influence Encoder (IE)",
    "Pre-training the IE (once per trained backbone, before any real request)",
    "Unlearning a real request",
    "Requests used in evaluation",
    "Metrics",
    "Baselines (each a row of the comparison)",
    "Datasets used by the paper",
    "Pitfalls seen when the authors' code was run here (avoid them)",
]
DECISION_AREAS = [
    "Graph utilities and data",
    "Evaluation",
    "Stages and runtime",
    "Backbones",
    "Unlearning methods",
    "UnlearnRec",
    "Pipeline",
]
# Files whose docstrings follow the documentation rules: every module of the package, and the benchmarks.
DOCUMENTED = sorted([*ROOT.glob("src/recunlearn/**/*.py"), *ROOT.glob("benchmarks/*.py")])
POINTER = re.compile(r'docs/(method|decisions)\.md,\s+(?:sections?\s+)?((?:"[^"]+"(?:\s*(?:,|and)\s*)?)+)')


def headings(path: Path) -> set[str]:
    """Titles of the '## ' headings, with and without their number and with and without a trailing (...)."""
    titles = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            title = re.sub(r"^\d+\.\s+", "", line[3:].strip())
            titles |= {title, re.sub(r"\s+\(.*\)$", "", title)}
    return titles


def pointers(text: str) -> list[tuple[str, str]]:
    """(file, section title) for every `docs/<file>.md, [section] "Title"` pointer in `text`."""
    found = []
    for match in POINTER.finditer(text):
        for title in re.findall(r'"([^"]+)"', match.group(2)):
            found.append((match.group(1), " ".join(title.replace("#", " ").split())))
    return found


def test_method_keeps_its_numbered_sections():
    numbered = [
        line[3:]
        for line in (DOCS / "method.md").read_text(encoding="utf-8").splitlines()
        if re.match(r"## \d+\. ", line)
    ]
    assert numbered == [f"{n}. {title}" for n, title in enumerate(METHOD_SECTIONS, 1)]


def test_decisions_has_a_section_per_area():
    assert set(DECISION_AREAS) <= headings(DOCS / "decisions.md")


def test_every_pointer_names_an_existing_section():
    titles = {name: headings(DOCS / f"{name}.md") for name in ("method", "decisions")}
    sources = [
        *ROOT.glob("src/recunlearn/**/*.py"),
        *ROOT.glob("src/recunlearn/**/*.yaml"),
        *ROOT.glob("benchmarks/*.py"),
        *DOCS.glob("*.md"),
        ROOT / "results/README.md",
    ]
    seen = []
    for path in sources:
        for name, title in pointers(path.read_text(encoding="utf-8")):
            seen.append(title)
            assert title in titles[name], f"{path.relative_to(ROOT)}: docs/{name}.md has no section {title!r}"
    assert len(seen) >= 10  # the documented modules point into docs/: a broken regex must not pass silently


def test_pointer_regex_reads_wrapped_and_listed_titles():
    text = (
        'see docs/method.md, section "Requests used in\n    evaluation"; docs/decisions.md, sections "A", "B" '
        'and "C"; # docs/method.md, "Metrics"'
    )
    assert pointers(text) == [
        ("method", "Requests used in evaluation"),
        ("decisions", "A"),
        ("decisions", "B"),
        ("decisions", "C"),
        ("method", "Metrics"),
    ]


def test_method_names_only_existing_modules():
    """Every module a "Where in the code" line names exists (bare names live in a folder named on that line)."""
    text = (DOCS / "method.md").read_text(encoding="utf-8")
    paragraphs = re.findall(r"Where in the code:(.*?)(?:\n\n|\Z)", text, flags=re.S)
    assert len(paragraphs) == len(METHOD_SECTIONS)
    for paragraph in paragraphs:
        names = re.findall(r"`([^`]+\.py)`", paragraph)
        folders = [ROOT / f for f in re.findall(r"`([^`]+/)`", paragraph)]
        assert names
        for name in names:
            if "/" in name:
                assert (ROOT / name).is_file(), name
            else:
                assert any((folder / name).is_file() for folder in folders), name


CITING = sorted(
    [*ROOT.glob("src/recunlearn/**/*.py"), *ROOT.glob("src/recunlearn/**/*.yaml"), *ROOT.glob("benchmarks/*.py")]
)


@pytest.mark.parametrize("path", CITING, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_citation_of_files_outside_the_repository(path):
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"method\.md,? (section )?\d", text), "cite docs/method.md by section title"
    assert "design.md" not in text, "design notes live in docs/method.md and docs/decisions.md"


def undocumented_long_signatures(source: str) -> list[str]:
    """The functions of `source` with more than four parameters (self, cls and ctx aside) and no Args: section;
    an __init__ may have it in its class's docstring instead."""
    tree = ast.parse(source)
    classes = {id(f): c for c in ast.walk(tree) if isinstance(c, ast.ClassDef) for f in c.body}
    missing = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        a = node.args
        params = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs if p.arg not in ("self", "cls", "ctx")]
        params += [p.arg for p in (a.vararg, a.kwarg) if p is not None]
        if len(params) <= 4:
            continue
        doc = ast.get_docstring(node) or ""
        if node.name == "__init__" and id(node) in classes:
            doc += ast.get_docstring(classes[id(node)]) or ""
        if "Args:" not in doc:
            missing.append(f"{node.name} (line {node.lineno})")
    return missing


def test_documented_files_cover_the_package():
    package = set((ROOT / "src/recunlearn").rglob("*.py"))
    assert len(package) >= 40 and package <= set(DOCUMENTED)


def test_long_signature_check_flags_a_missing_args_section():
    source = """
def bare(a, b, c, d, e):
    'No section.'

def short(self, a, b, c, d, ctx):
    pass

def documented(a, b, c, d, e):
    '''Sum.

    Args:
        a: first.
    '''

class K:
    '''Args:
        a: first.
    '''

    def __init__(self, a, b, c, d, e):
        pass

    def method(self, a, b, c, d, *rest):
        pass
"""
    assert undocumented_long_signatures(source) == ["bare (line 2)", "method (line 23)"]


@pytest.mark.parametrize("path", DOCUMENTED, ids=lambda p: str(p.relative_to(ROOT)))
def test_long_signatures_have_args_sections(path):
    missing = undocumented_long_signatures(path.read_text(encoding="utf-8"))
    assert not missing, f"functions with more than four parameters need an Args: section: {missing}"
