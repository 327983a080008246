"""Load, complete and validate the pipeline configuration.

The JSON schema shipped with the package (`schemas/config.schema.yaml`) is the only place where defaults live.
`load_config` reads a YAML file, fills every missing key from the schema's defaults, and validates the result:
unknown keys, wrong types and out-of-range values stop the run with one message that names the file and the key.
Snakemake, DVC stages and the CLI all load the configuration through this module, so they see the same values.
"""
from __future__ import annotations

import copy
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from recunlearn.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("config/config.yaml")


@lru_cache(maxsize=1)
def schema() -> dict:
    """The configuration schema (parsed once per process)."""
    text = resources.files("recunlearn").joinpath("schemas/config.schema.yaml").read_text()
    return yaml.safe_load(text)


def _fill_defaults(node: Any, sub_schema: dict) -> Any:
    """Return `node` with every missing property that has a schema default filled in, recursively."""
    if sub_schema.get("type") != "object" or not isinstance(node, dict):
        return node
    for key, prop in sub_schema.get("properties", {}).items():
        if key not in node and "default" in prop:
            node[key] = copy.deepcopy(prop["default"])
        if key in node:
            node[key] = _fill_defaults(node[key], prop)
    extra = sub_schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in node:
            if key not in sub_schema.get("properties", {}):
                node[key] = _fill_defaults(node[key], extra)
    return node


def _describe(error: jsonschema.ValidationError) -> str:
    """Turn a jsonschema error into 'key.path: problem' wording a user can act on."""
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        unexpected = sorted(set(error.instance) - set(known))
        prefix = f"{where}." if error.absolute_path else ""
        names = ", ".join(f"'{prefix}{k}'" for k in unexpected)
        return f"unknown key {names} (known keys here: {', '.join(known)})"
    return f"{where}: {error.message}"


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
    from recunlearn.unlearning import build_method

    for method in sorted(set(cfg["methods"]) | set(cfg["method_settings"])):
        # store the resolved settings: what a stage reads, and what Snakemake tracks as its params
        given = cfg["method_settings"].get(method) or {}
        resolved = build_method(method, given).settings
        cfg["method_settings"][method] = {**({"base": given["base"]} if "base" in given else {}), **resolved}
    for name, spec in cfg["custom_datasets"].items():
        if sum(key in spec for key in ("path", "url", "pypi")) != 1:
            raise ConfigError(f"custom_datasets.{name}: give exactly one of 'path', 'url' or 'pypi'")


def validate_config(raw: dict, source: str = "<config>") -> dict:
    """Complete `raw` with defaults and validate it; return the completed copy or raise ConfigError."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the configuration must be a mapping of keys to values")
    cfg = _fill_defaults(copy.deepcopy(raw), schema())
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(cfg), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError(f"{source}: {_describe(errors[0])}")
    try:
        _check_semantics(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return cfg


def load_config(path: str | Path = DEFAULT_CONFIG_PATH) -> dict:
    """Read a YAML configuration file, fill defaults and validate it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: configuration file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    cfg = validate_config(raw, source=str(path))
    cfg["_path"] = str(path)
    return cfg


def default_config() -> dict:
    """The configuration with every key at its default (what an empty config file means)."""
    return validate_config({}, source="<defaults>")
