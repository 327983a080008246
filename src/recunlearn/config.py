"""Load, complete and validate the pipeline configuration.

The schemas shipped with the package are the only place where defaults live: `schemas/config.schema.yaml` for
the pipeline's own sections, and one fragment per backbone and per method (`schemas/backbones/<name>.yaml`,
`schemas/methods/<name>.yaml`, read by `recunlearn.components`) for `backbone_settings` and `method_settings`.
`load_config` reads a YAML file of overrides, fills every missing key from those defaults (every backbone, and
every method of `methods` or `method_settings`, gets its complete settings) and validates the result: unknown
keys, wrong types, out-of-range values and unknown methods stop the run with one line naming the file and the
key, before any work. Why one loader: Snakemake, DVC stages and the CLI all see the same values, and loading
imports neither torch nor any method module.

`method_settings`, `backbone_settings`, `method_base` and `needs_preparation` are `recunlearn.components`'
torch-free helpers, re-exported here for the stages, the plan and the tests.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from recunlearn import components
from recunlearn.components import backbone_settings, method_base, method_settings, needs_preparation
from recunlearn.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "backbone_settings",
    "default_config",
    "load_config",
    "method_base",
    "method_settings",
    "needs_preparation",
    "schema",
    "validate_config",
]

DEFAULT_CONFIG_PATH = Path("config/config.yaml")


@lru_cache(maxsize=1)
def _schema() -> dict:
    text = resources.files("recunlearn").joinpath("schemas/config.schema.yaml").read_text()
    full = yaml.safe_load(text)
    props = full["properties"]
    backbones = components.names("backbones")
    props["backbones"]["items"]["enum"] = list(backbones)
    for name in backbones:
        frag = {k: v for k, v in components.fragment("backbones", name).items() if not k.startswith(("$", "x-"))}
        props["backbone_settings"]["properties"][name] = {**frag, "default": {}}
    return full


def schema() -> dict:
    """The configuration schema with the backbone fragments in place (a copy; parsed once per process)."""
    return copy.deepcopy(_schema())


def _fill_defaults(node: Any, sub_schema: dict) -> Any:
    """Return `node` with every missing property that has a schema default filled in, recursively.

    Known keys come in the schema's order, then any others in the file's: the resolved configuration does not
    depend on which keys a file happens to list.
    """
    if sub_schema.get("type") != "object" or not isinstance(node, dict):
        return node
    props = sub_schema.get("properties", {})
    for key, prop in props.items():
        if key not in node and "default" in prop:
            node[key] = copy.deepcopy(prop["default"])
        if key in node:
            node[key] = _fill_defaults(node[key], prop)
    extra = sub_schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in node:
            if key not in props:
                node[key] = _fill_defaults(node[key], extra)
    return {**{key: node[key] for key in props if key in node}, **{k: v for k, v in node.items() if k not in props}}


def _check_semantics(cfg: dict) -> None:
    """Checks a schema cannot express: ratios summing to one, every dataset known."""
    ratios = cfg["preprocess"]["ratios"]
    total = ratios["train"] + ratios["valid"] + ratios["test"]
    if abs(total - 1.0) > 1e-9:
        raise ConfigError(f"preprocess.ratios: train + valid + test must sum to 1, got {total:g}")
    from recunlearn.data.registry import DATASETS  # local import: keeps start-up light

    known = set(DATASETS) | set(cfg["custom_datasets"])
    for name in cfg["datasets"]:
        if name not in known:
            raise ConfigError(f"datasets: unknown dataset '{name}' (known: {', '.join(sorted(known))})")
    for name, settings in cfg["backbone_settings"].items():
        components.coerce(settings, components.fragment("backbones", name))
    _resolve_methods(cfg)
    for name, spec in cfg["custom_datasets"].items():
        if sum(key in spec for key in ("path", "url", "pypi")) != 1:
            raise ConfigError(f"custom_datasets.{name}: give exactly one of 'path', 'url' or 'pypi'")


def _resolve_methods(cfg: dict) -> None:
    """Replace each entry of `method_settings` by its complete settings, and add every method of `methods`.

    An alias keeps its `base` first; its settings are its base's defaults with the alias's own overrides (not the
    base's entry in this config). Entries keep their order; added methods follow in name order. What is stored is
    what a stage reads and what Snakemake and DVC track as the job's params.
    """
    given = cfg["method_settings"]
    for name in cfg["methods"]:
        method_base(cfg, name)  # "methods: unknown unlearning method ..." before anything else
    for name in [*given, *sorted(set(cfg["methods"]) - set(given))]:
        own = dict(given.get(name) or {})
        if name not in components.names("methods") and "base" not in own:
            raise ConfigError(
                f"method_settings.{name}: unknown unlearning method '{name}' "
                f"(known: {', '.join(components.names('methods'))}; an alias needs a `base`)"
            )
        base = method_base(cfg, name)
        alias = {"base": own.pop("base")} if name != base else {}
        given[name] = {**alias, **components.complete("methods", base, own, where=f"method_settings.{name}")}


def validate_config(raw: dict, source: str = "<config>") -> dict:
    """Complete `raw` with defaults and validate it; return the completed copy or raise ConfigError."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the configuration must be a mapping of keys to values")
    cfg = _fill_defaults(copy.deepcopy(raw), _schema())
    errors = sorted(components.Validator(_schema()).iter_errors(cfg), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        raise ConfigError(f"{source}: {components.describe(errors[0])}")
    try:
        _check_semantics(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return cfg


def merge_overrides(raw: Any, overrides: dict | None) -> Any:
    """`raw` with `overrides` merged in: mappings merge key by key, any other value replaces (the rule of
    Snakemake's `--config`, so a Snakemake run and its stage commands see the same settings)."""
    if not overrides:
        return raw
    merged = copy.deepcopy(raw) if isinstance(raw, dict) else {}
    for key, value in overrides.items():
        old = merged.get(key)
        merged[key] = (
            merge_overrides(old, value) if isinstance(value, dict) and isinstance(old, dict) else copy.deepcopy(value)
        )
    return merged


def load_config(path: str | Path = DEFAULT_CONFIG_PATH, overrides: dict | None = None) -> dict:
    """Read a YAML configuration file, apply `overrides` (see `merge_overrides`), fill defaults and validate it.
    The result records the file as `_path` and the overrides as `_overrides` (stage commands carry both)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: configuration file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    cfg = validate_config(merge_overrides(raw, overrides), source=str(path))
    cfg["_path"] = str(path)
    cfg["_overrides"] = copy.deepcopy(dict(overrides or {}))
    return cfg


def default_config() -> dict:
    """The configuration with every key at its default (what an empty config file means)."""
    return validate_config({}, source="<defaults>")
