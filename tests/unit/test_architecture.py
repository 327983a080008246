"""The package's shape, read statically from its source: no import circle, one-way layers, no stage glue beside a
library folder, and the `forget`/`validate-request` commands need only the core dependencies.

Every import counts, at module level or inside a function, relative ones resolved. `from pkg import name` is an
import of `pkg.name` when that is a module and of `pkg` (its `__init__`) otherwise; the parent packages Python
runs on the way are not edges, so a package `__init__` may import its own submodules as long as none of them
imports the `__init__` back.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
PACKAGE = "recunlearn"
LIBRARY = ("graph", "data", "backbones", "unlearning", "evaluation")
NOT_FOR_LIBRARY = ("stages", "pipeline", "cli", "config", "report")
# top-level modules: helpers every layer may use, the CLI and config, the notebooks' report helper, and the
# component schema loader. Stage glue lives in stages/, orchestration in pipeline/.
TOP_LEVEL_MODULES = {"__init__", "cli", "config", "errors", "io", "report", "components"}
TOP_LEVEL_PACKAGES = {*LIBRARY, "stages", "pipeline"}
NOTEBOOK_MAY_IMPORT = (*LIBRARY, "report", "errors", "io")
STAGES_MAY_IMPORT_FROM_PIPELINE = ("pipeline.layout", "pipeline.kinds")
WORKFLOW_PACKAGES = ("snakemake", "dvc", "papermill", "ipykernel", "nbconvert", "nbclient", "jupytext", "matplotlib")
IMPORT_NAME = {"pyyaml": "yaml"}  # distribution name -> import name, where they differ


def module_file(module: str) -> Path | None:
    base = SRC.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def package_modules() -> list[str]:
    out = []
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        out.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


def imports_of(path: Path, module: str | None, top_level_only: bool = False) -> list[tuple[str, int]]:
    """(imported module, line) of every import in a file; `module` (None for a script) resolves relative ones."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    own_package = module if is_package else (module or "").rpartition(".")[0]
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = own_package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append((sub if module_file(sub) else target, node.lineno))
    return found


@cache
def graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (static, all levels)."""
    return {
        m: {t for t, _ in imports_of(module_file(m), m) if t.split(".")[0] == PACKAGE and module_file(t)}
        for m in package_modules()
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module, or a module importing itself (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges.get(v, ()):
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def under(module: str, prefixes) -> bool:
    return any(module == f"{PACKAGE}.{p}" or module.startswith(f"{PACKAGE}.{p}.") for p in prefixes)


def offending_imports(modules, forbidden) -> list[str]:
    return [
        f"{m} imports {t} (line {line})"
        for m in modules
        for t, line in imports_of(module_file(m), m)
        if under(t, forbidden)
    ]


# ---- (a) no import circle -------------------------------------------------------------------------------------


def test_the_cycle_finder_finds_a_circle_through_a_package_init():
    assert cycles({"p": {"p.a"}, "p.a": {"p.b"}, "p.b": {"p"}}) == [["p", "p.a", "p.b"]]
    assert cycles({"p": {"p.a", "p.b"}, "p.a": {"p.b"}, "p.b": set()}) == []
    assert cycles({"m": {"m"}}) == [["m"]]


def test_the_scan_resolves_relative_and_function_level_imports(tmp_path):
    source = tmp_path / "mod.py"
    source.write_text(
        "from . import edges\nfrom .adjacency import propagate\n\ndef f():\n"
        "    from recunlearn.unlearning import METHODS\n    import recunlearn.io\n"
    )
    got = {t for t, _ in imports_of(source, "recunlearn.graph.mod")}
    assert got == {"recunlearn.graph.edges", "recunlearn.graph.adjacency", "recunlearn.unlearning", "recunlearn.io"}


def test_the_package_has_no_import_circle():
    assert cycles(graph()) == []


# ---- (b) one-way layers ----------------------------------------------------------------------------------------


def test_library_imports_no_stage_pipeline_cli_config_or_report():
    library = [m for m in package_modules() if under(m, LIBRARY)]
    assert library, "no library modules found"
    assert offending_imports(library, NOT_FOR_LIBRARY) == []


def test_pipeline_imports_no_stage():
    pipeline = [m for m in package_modules() if under(m, ("pipeline",))]
    assert pipeline and offending_imports(pipeline, ("stages", "cli")) == []


def test_stages_use_only_the_pipeline_layout_and_kinds():
    stages = [m for m in package_modules() if under(m, ("stages",))]

    def allowed(target):
        if under(target, ("cli",)):
            return False
        return (
            not under(target, ("pipeline",))
            or under(target, STAGES_MAY_IMPORT_FROM_PIPELINE)
            or target == f"{PACKAGE}.pipeline"
        )

    wrong = [
        f"{m} imports {t} (line {line})" for m in stages for t, line in imports_of(module_file(m), m) if not allowed(t)
    ]
    assert stages and wrong == []


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("*.py")), ids=lambda p: p.name)
def test_notebooks_import_only_the_library_and_the_report_helper(notebook):
    ours = [(t, line) for t, line in imports_of(notebook, None) if t.split(".")[0] == PACKAGE]
    wrong = [f"{t} (line {line})" for t, line in ours if not under(t, NOTEBOOK_MAY_IMPORT)]
    assert wrong == []


# ---- (c) no stage glue beside a library folder ----------------------------------------------------------------


def test_the_top_level_holds_only_the_allowed_modules_and_folders():
    top = SRC / PACKAGE
    modules = {p.stem for p in top.glob("*.py")}
    packages = {p.name for p in top.iterdir() if (p / "__init__.py").is_file()}
    assert modules - TOP_LEVEL_MODULES == set(), "stage glue belongs in stages/, orchestration in pipeline/"
    assert {"__init__", "cli", "config", "errors", "io"} <= modules
    assert packages == TOP_LEVEL_PACKAGES


def test_no_module_is_named_like_a_sibling_folder():
    """`graphs.py` beside `graph/`, `unlearning_run.py` beside `unlearning/`: one name, two roles."""
    clashes = []
    for folder in [SRC / PACKAGE, *(p for p in (SRC / PACKAGE).rglob("*") if (p / "__init__.py").is_file())]:
        subpackages = {p.name for p in folder.iterdir() if (p / "__init__.py").is_file()}
        for path in folder.glob("*.py"):
            stem = path.stem.lstrip("_")
            clashes += [
                f"{path.relative_to(SRC)} beside {name}/"
                for name in subpackages
                if stem != name and (stem.startswith(name) or name.startswith(stem))
            ]
    assert clashes == []


# ---- packaging: the core commands need only the core dependencies ----------------------------------------------


def core_import_names() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {dep.split("==")[0].split(">=")[0].split("[")[0].strip().lower() for dep in project["dependencies"]}
    return {IMPORT_NAME.get(n, n.replace("-", "_")) for n in names}


def third_party_imports(entries: dict[str, bool]) -> dict[str, str]:
    """import root -> the package module that imports it, over the closure of `entries` (module -> top level only)."""
    seen, todo, found = set(), list(entries), {}
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        todo += [".".join(parts[:n]) for n in range(1, len(parts))]
        for target, _ in imports_of(module_file(module), module, top_level_only=entries.get(module, False)):
            root = target.split(".")[0]
            if root == PACKAGE:
                if module_file(target):
                    todo.append(target)
            elif root not in sys.stdlib_module_names and root != "__future__":
                found.setdefault(root, module)
    return found


def test_forget_and_validate_request_need_only_core_dependencies():
    core = core_import_names()
    assert {"torch", "numpy", "yaml"} <= core
    assert not core & set(WORKFLOW_PACKAGES), "workflow tools belong in the [workflow] extra"
    used = third_party_imports(
        {
            f"{PACKAGE}.cli": True,
            f"{PACKAGE}.config": False,
            f"{PACKAGE}.pipeline.layout": False,
            f"{PACKAGE}.stages.forget": False,
            f"{PACKAGE}.stages.data": False,
        }
    )
    assert {root: module for root, module in used.items() if root not in core} == {}


BLOCK_WORKFLOW = f"""
import importlib.abc, sys
class NoWorkflow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {WORKFLOW_PACKAGES!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (workflow extra not installed)")
sys.meta_path.insert(0, NoWorkflow())
"""


def test_help_forget_and_validate_request_import_without_the_workflow_extra():
    """As after `pip install recunlearn`: the workflow packages cannot be imported at all."""
    code = BLOCK_WORKFLOW + (
        "from recunlearn.cli import main\n"
        "for argv in (['--help'], ['forget', '--help'], ['validate-request', '--help']):\n"
        "    try:\n        main(argv)\n    except SystemExit as exc:\n        assert exc.code == 0, argv\n"
        "import recunlearn.stages.forget, recunlearn.stages.data\n"
        "import matplotlib\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert "--request-file" in proc.stdout and "usage: recunlearn validate-request" in proc.stdout
    # the blocker works: the last line, and only it, fails
    assert (
        proc.stderr.strip().splitlines()[-1]
        == "ModuleNotFoundError: No module named 'matplotlib' (workflow extra not installed)"
    ), proc.stderr
    assert proc.stderr.count("Traceback") == 1 and f"line {len(code.splitlines())}" in proc.stderr, proc.stderr


# `user * n_items + item` written out (any spelling of the item count), outside the one module that owns it
EDGE_KEY = r"\*\s*(np\.int64\()?\s*[\w.]*n_items\)?\s*\+"


def _edge_key_sites(text: str) -> list[str]:
    import re

    code = [line.split("#", 1)[0] for line in text.splitlines()]
    return [line.strip() for line in code if re.search(EDGE_KEY, line) and '"' not in line and "`" not in line]


def test_the_edge_key_scan_finds_a_written_out_key():
    assert _edge_key_sites("    keys = edges[:, 0] * np.int64(o.n_items) + edges[:, 1]\n")
    assert _edge_key_sites("    q = users * split.n_items + items\n")
    assert not _edge_key_sites("    keys = edge_keys(edges, n_items)\n")


def test_only_graph_edges_writes_the_edge_key_formula():
    owner = SRC / PACKAGE / "graph" / "edges.py"
    sites = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        if path != owner:
            found = _edge_key_sites(_without_docstrings(path.read_text()))
            if found:
                sites[str(path.relative_to(ROOT))] = found
    assert sites == {}


def _without_docstrings(text: str) -> str:
    tree = ast.parse(text)
    lines = text.splitlines()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                for n in range(body[0].lineno - 1, body[0].end_lineno):
                    lines[n] = ""
    return "\n".join(lines)


def test_a_model_stage_process_loads_neither_the_compiler_stack_nor_scipy_stats():
    """Each pipeline job is a process: these imports cost seconds each and the eager code needs neither."""
    code = (
        "import sys, torch\n"
        "from recunlearn.stages import unlearn, train\n"
        "from recunlearn.stages._runtime import configure_torch\n"
        "configure_torch({'threads': 1, 'device': 'cpu'})\n"
        "assert torch.are_deterministic_algorithms_enabled()\n"
        "assert torch.is_deterministic_algorithms_warn_only_enabled()\n"
        "print(sorted(m for m in ('torch._inductor', 'torch._dynamo', 'scipy.stats') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
