"""Each default lives in one file: its component's schema fragment, never also in the code.

A static scan of every module under src/recunlearn looks, for every setting of every backbone and method
fragment, for the three ways a second default creeps back in: a `"key": <literal>` dict entry (a defaults dict),
a `key=<literal>` parameter default, and a `.get("key", ...)` fallback. The scan is checked on a planted
example, so it cannot pass by finding nothing.
"""

import ast
from pathlib import Path

import pytest
import yaml

from recunlearn import components

SRC = Path(__file__).resolve().parents[2] / "src" / "recunlearn"
SCHEMAS = SRC / "schemas"


def fragment_keys() -> set[str]:
    keys = set()
    for kind in components.KINDS:
        for path in (SCHEMAS / kind).glob("*.yaml"):
            keys |= set(yaml.safe_load(path.read_text()).get("properties") or {})
    return keys


def _literal(node: ast.AST) -> bool:
    """A value written out in the code: a constant, a signed constant, or a tuple/list/dict/set of literals."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return _literal(node.operand)
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return all(_literal(e) for e in node.elts)
    return False


def _parameters_with_defaults(args: ast.arguments):
    positional = [*args.posonlyargs, *args.args]
    yield from zip(positional[len(positional) - len(args.defaults) :], args.defaults)
    yield from ((a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None)


def scan(source: str, keys: set[str], filename: str = "<source>") -> list[str]:
    """'file:line: what' for every default of a fragment key found in `source`."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value in keys and _literal(value):
                    found.append(f"{filename}:{key.lineno}: dict entry {key.value!r}: <literal>")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            for arg, default in _parameters_with_defaults(node.args):
                if arg.arg in keys and _literal(default):
                    found.append(f"{filename}:{arg.lineno}: parameter default {arg.arg}=<literal>")
        elif isinstance(node, ast.Call):
            func = node.func
            if (
                isinstance(func, ast.Attribute)
                and func.attr == "get"
                and len(node.args) >= 2
                and isinstance(node.args[0], ast.Constant)
                and node.args[0].value in keys
            ):
                found.append(f"{filename}:{node.lineno}: fallback .get({node.args[0].value!r}, ...)")
            if isinstance(func, ast.Name) and func.id == "dict":
                found += [
                    f"{filename}:{node.lineno}: dict({k.arg}=<literal>)"
                    for k in node.keywords
                    if k.arg in keys and _literal(k.value)
                ]
    return found


def test_the_scan_finds_each_kind_of_second_default():
    planted = """
DEFAULTS = {"epochs": 3, "lr": None}
def train(model, epochs=200, *, tau=0.1, seed=0):
    return settings.get("batch_size", 4096), settings.get("name", "x"), dict(keep=0.8)
"""
    found = scan(planted, {"epochs", "lr", "tau", "batch_size", "keep"})
    assert len(found) == 6, found
    assert any("dict entry 'epochs'" in f for f in found) and any("dict entry 'lr'" in f for f in found)
    assert any("epochs=<literal>" in f for f in found) and any("tau=<literal>" in f for f in found)
    assert any(".get('batch_size'" in f for f in found) and any("dict(keep=" in f for f in found)
    assert not scan("x = {'epochs': settings['epochs']}\ndef f(epochs, seed=0): ...\n", {"epochs"})


def test_fragment_keys_are_what_the_scan_looks_for():
    keys = fragment_keys()
    assert {
        "dim",
        "layers",
        "l2",
        "readout",
        "keep",
        "eps",
        "tau",
        "epochs",
        "lr",
        "batch_size",
        "select",
        "shards",
        "partition",
        "damping",
        "lambda_dec",
        "candidates",
    } <= keys


# Hits that are not settings but share a setting's name; each must still be found (no stale entry).
NOT_SETTINGS = {
    "recunlearn/evaluation/forgetting.py": ("parameter default l2=", "the membership attack's own regulariser"),
    "recunlearn/unlearning/sisa.py": ("dict entry 'epochs'", "the report of an empty shard: it ran 0 epochs"),
}


def test_no_module_under_src_carries_a_default_of_a_fragment_key():
    keys = fragment_keys()
    found = []
    for path in sorted(SRC.rglob("*.py")):
        found += scan(path.read_text(), keys, str(path.relative_to(SRC.parent)))
    excused = {f for f in found for where, (what, _) in NOT_SETTINGS.items() if f.startswith(where) and what in f}
    assert len(excused) == len(NOT_SETTINGS), f"stale NOT_SETTINGS entries: found only {sorted(excused)}"
    rest = sorted(set(found) - excused)
    assert not rest, "defaults belong in src/recunlearn/schemas/ only:\n" + "\n".join(rest)


@pytest.mark.parametrize("kind", sorted(components.KINDS))
def test_no_fragment_restates_a_default_of_the_fragment_it_extends(kind):
    for path in sorted((SCHEMAS / kind).glob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        parent = raw.get("x-extends")
        if parent is None:
            continue
        inherited = set(components.fragment(kind, parent)["properties"])
        restated = inherited & set(raw.get("properties") or {})
        assert not restated, f"{path.name} restates {sorted(restated)} of {parent}.yaml"


@pytest.mark.parametrize("kind", sorted(components.KINDS))
def test_every_fragment_default_is_valid_and_described(kind):
    for name in components.names(kind):
        frag = components.fragment(kind, name)
        for key, prop in frag["properties"].items():
            assert "default" in prop and prop.get("description") and "type" in prop, f"{kind}/{name}.{key}"
        assert components.complete(kind, name) == components.defaults(kind, name)
