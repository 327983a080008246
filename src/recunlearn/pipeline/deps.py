"""Code dependencies of a job, computed from the static import graph of the package (no module is imported).

A job depends on the source files its stage module can reach through `import` statements, at any depth and
inside functions too, plus every package `__init__.py` on the way (Python runs those first). Two registries
are cut: `recunlearn.backbones` and `recunlearn.unlearning` import every backbone and every method, but a job
runs one of each, so the closure stops at those modules and the plan adds the closure of the job's own backbone
and method. Editing one method then re-runs only its jobs.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE = "recunlearn"
SRC = Path(__file__).resolve().parents[2]  # the folder holding the package (src/)
REGISTRIES = ("recunlearn.backbones", "recunlearn.unlearning")
SCHEMAS = SRC / PACKAGE / "schemas"


def module_path(module: str) -> Path | None:
    """The file of a package module (a package's `__init__.py`), or None if it is not one."""
    base = SRC.joinpath(*module.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _is_package(module: str) -> bool:
    return (SRC.joinpath(*module.split(".")) / "__init__.py").is_file()


@cache
def direct_imports(module: str) -> frozenset[str]:
    """Package modules that `module` imports anywhere in its body (relative imports resolved)."""
    path = module_path(module)
    tree = ast.parse(path.read_text(), filename=str(path))
    own_package = module if _is_package(module) else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = own_package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
    return frozenset(m for m in found if m.split(".")[0] == PACKAGE and module_path(m) is not None)


def _with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:n]) for n in range(1, len(parts) + 1)]


def closure(*entries: str) -> list[str]:
    """Source files (relative to the project root, sorted) that the entry modules reach.

    Imports made by a registry module are not followed unless the module imported lives outside the
    registry's own package (so `recunlearn.unlearning` still brings in `errors`, but no method)."""
    seen: set[str] = set()
    todo = [p for entry in entries for p in _with_parents(entry)]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        for imported in direct_imports(module):
            if (
                module in REGISTRIES
                and imported.startswith(module + ".")
                and imported.rsplit(".", 1)[0] == module
                and imported != f"{module}.base"
            ):
                continue
            todo.extend(p for p in _with_parents(imported) if p not in seen)
    root = SRC.parent
    return sorted(str(module_path(m).relative_to(root)) for m in seen)


def schema_files(*components: tuple[str, str]) -> list[str]:
    """The schema files (relative to the project root) a job reads: the top-level schema and the fragment of
    each (kind, name) component, e.g. ("methods", "unlearnrec"), that exists as schemas/<kind>/<name>.yaml."""
    candidates = [SCHEMAS / "config.schema.yaml", *(SCHEMAS / kind / f"{name}.yaml" for kind, name in components)]
    root = SRC.parent
    return [str(p.relative_to(root)) for p in dict.fromkeys(candidates) if p.is_file()]
