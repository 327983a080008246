"""The settings of every backbone and unlearning method, read from its schema fragment without importing torch.

Each component has one fragment, `schemas/backbones/<name>.yaml` or `schemas/methods/<name>.yaml`: a JSON schema
whose properties give each setting's `default`, `type`, range or `enum` and `description`. Keys starting with
`x-` state facts about the component itself:

- `x-extends: <fragment>`: the settings of another fragment come first (e.g. SISA and RecEraser extend
  `_sharding`; a name starting with "_" is a shared fragment that is not a component);
- `x-needs-preparation: true`: the method does one-off work per trained model before any request;
- `x-ordered: [[low, high], ...]`: pairs of settings that must satisfy low <= high.

Why a module of its own: the configuration (`recunlearn.config`) and the library classes both read these facts,
and the library must not depend on the configuration layer nor pay for importing torch to learn them.
"""

from __future__ import annotations

import copy
from functools import cache
from importlib import resources

import jsonschema
import yaml

from recunlearn.errors import ConfigError

__all__ = [
    "KINDS",
    "Validator",
    "backbone_settings",
    "check_extras",
    "coerce",
    "complete",
    "defaults",
    "describe",
    "fragment",
    "method_base",
    "method_settings",
    "names",
    "needs_preparation",
    "prepared",
]

KINDS = {"backbones": "backbone_settings", "methods": "method_settings"}  # fragment folder -> config section


def _strict_integer(checker, instance) -> bool:
    """JSON schema calls 3.0 an integer; the code needs a Python int (range(3.0) fails), and a bool is no int."""
    return isinstance(instance, int) and not isinstance(instance, bool)


Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer),
)


@cache
def _load(kind: str, name: str) -> dict:
    """The fragment `schemas/<kind>/<name>.yaml` with its `x-extends` chain merged in (base settings first)."""
    path = resources.files("recunlearn").joinpath(f"schemas/{kind}/{name}.yaml")
    if not path.is_file():
        raise ConfigError(f"{KINDS[kind]}: no schema fragment for '{name}' (known: {', '.join(names(kind))})")
    frag = yaml.safe_load(path.read_text())
    parent = frag.pop("x-extends", None)
    if parent is None:
        return frag
    base = _load(kind, parent)
    return {
        **base,
        **frag,
        "properties": {**base["properties"], **frag.get("properties", {})},
        "x-ordered": [*base.get("x-ordered", []), *frag.get("x-ordered", [])],
    }


@cache
def names(kind: str) -> tuple[str, ...]:
    """The components of `kind` ("backbones" or "methods"): one per fragment file, shared fragments aside."""
    folder = resources.files("recunlearn").joinpath(f"schemas/{kind}")
    return tuple(sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml") and p.name[0] != "_"))


def fragment(kind: str, name: str) -> dict:
    """The complete JSON schema of one component's settings (a copy: callers may change it)."""
    return copy.deepcopy(_load(kind, name))


def defaults(kind: str, name: str) -> dict:
    """Every setting of the component at its default, in the fragment's order."""
    return {key: copy.deepcopy(prop["default"]) for key, prop in _load(kind, name)["properties"].items()}


def describe(error: jsonschema.ValidationError, where: str = "") -> str:
    """A jsonschema error as 'key.path: problem', the key path prefixed by `where` (the instance's own place)."""
    parts = [where] if where else []
    parts += [str(p) for p in error.absolute_path]
    at = ".".join(parts) or "(top level)"
    if error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        unexpected = sorted(set(error.instance) - set(known))
        prefix = f"{at}." if parts else ""
        listed = ", ".join(f"'{prefix}{k}'" for k in unexpected)
        return f"unknown key {listed} (known keys here: {', '.join(known) or 'none'})"
    return f"{at}: {error.message}"


def check_extras(settings: dict, schema: dict, where: str) -> None:
    """The rules a JSON schema cannot state: `x-ordered` pairs (low <= high). Raises ConfigError naming the key."""
    for low, high in schema.get("x-ordered", []):
        if settings[low] > settings[high]:
            raise ConfigError(f"{where}.{low}: {settings[low]!r} is greater than {high} ({settings[high]!r})")


def coerce(settings: dict, schema: dict) -> dict:
    """Store an integer given for a setting whose default is a float as a float (2 -> 2.0), in place."""
    for key, prop in schema["properties"].items():
        value = settings.get(key)
        if isinstance(prop.get("default"), float) and isinstance(value, int) and not isinstance(value, bool):
            settings[key] = float(value)
    return settings


def complete(kind: str, name: str, given: dict | None = None, where: str | None = None) -> dict:
    """`given` over the component's defaults, validated: the complete settings, or one ConfigError naming the key.

    `where` is the key path named in errors (default `method_settings.<name>` or `backbone_settings.<name>`).
    """
    where = where or f"{KINDS[kind]}.{name}"
    schema = _load(kind, name)
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ConfigError(f"{where}: expected a mapping of settings, got {given!r}")
    settings = {**defaults(kind, name), **copy.deepcopy(given)}
    errors = sorted(Validator(schema).iter_errors(settings), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        raise ConfigError(describe(errors[0], where))
    check_extras(settings, schema, where)
    return coerce(settings, schema)


def method_settings(name: str, overrides: dict | None = None) -> dict:
    """The complete settings of method `name` with `overrides` applied (what the config resolves it to)."""
    return complete("methods", name, overrides)


def backbone_settings(name: str, overrides: dict | None = None) -> dict:
    """The complete settings of backbone `name` with `overrides` applied (what the config resolves it to)."""
    return complete("backbones", name, overrides)


def prepared(method: str) -> bool:
    """Whether the registered method `method` does one-off work per trained model (`x-needs-preparation`)."""
    return bool(_load("methods", method).get("x-needs-preparation", False))


def method_base(cfg: dict, name: str) -> str:
    """The registered method behind `name`: itself, or the `base` of an alias in `method_settings.<name>`."""
    known = names("methods")
    if name in known:
        return name
    base = ((cfg.get("method_settings") or {}).get(name) or {}).get("base")
    if base is None:
        raise ConfigError(
            f"methods: unknown unlearning method '{name}' (known: {', '.join(known)}; "
            f"an alias needs method_settings.{name}.base)"
        )
    if base not in known:
        raise ConfigError(
            f"method_settings.{name}.base: unknown unlearning method '{base}' (known: {', '.join(known)})"
        )
    return base


def needs_preparation(cfg: dict, name: str) -> bool:
    """Whether method (or alias) `name` of the configuration needs a prepare job before its requests."""
    return prepared(method_base(cfg, name))
