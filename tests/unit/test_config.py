"""Configuration: defaults come from the schemas (one fragment per backbone and method), configs hold only
overrides, and every invalid input is one line naming the file and the key, before any work."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from recunlearn import components
from recunlearn.config import default_config, load_config, method_base, method_settings, validate_config
from recunlearn.errors import ConfigError


def write(tmp_path, obj, name="c.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(obj) if not isinstance(obj, str) else obj)
    return path


def test_empty_file_gets_every_schema_default(tmp_path):
    cfg = load_config(write(tmp_path, ""))
    assert cfg["datasets"] == ["ml-100k"]
    assert cfg["preprocess"]["ratios"] == {"train": 0.8, "valid": 0.1, "test": 0.1}
    assert cfg["backbone_settings"]["sgl"]["keep"] == 0.8
    assert cfg["_path"] == str(tmp_path / "c.yaml")


SHIPPED = ("config/config.yaml", "config/tiny.yaml", "config/ablation.yaml", "config/paper.yaml")
GRID = {"results_dir", "datasets", "requests", "backbones", "seeds", "methods"}  # listed even when at the default


def _repeated_defaults(raw, resolved, path=""):
    """Keys of `raw` whose value equals (value and type) what the defaults alone would give."""
    found = []
    for key, value in raw.items():
        default = resolved.get(key) if isinstance(resolved, dict) else None
        if isinstance(value, dict) and isinstance(default, dict) and value:
            found += _repeated_defaults(value, default, f"{path}{key}.")
        elif type(value) is type(default) and value == default:
            found.append(f"{path}{key}")
    return found


@pytest.mark.parametrize("path", SHIPPED)
def test_shipped_configs_are_valid_and_hold_only_overrides(path):
    """Configs list the grid and what differs from the defaults; the schemas hold everything else."""
    raw = yaml.safe_load(open(path))
    load_config(path)
    defaults = default_config()
    repeated = _repeated_defaults({k: v for k, v in raw.items() if k not in GRID | {"method_settings"}}, defaults)
    for name, given in raw.get("method_settings", {}).items():
        base = method_base(raw, name)
        repeated += _repeated_defaults(
            {k: v for k, v in given.items() if k != "base"},
            components.defaults("methods", base),
            f"method_settings.{name}.",
        )
    assert not repeated, f"{path} repeats defaults: {repeated}"


def test_every_backbone_and_listed_method_gets_complete_settings():
    cfg = validate_config(
        {
            "methods": ["none", "gif", "abl"],
            "backbone_settings": {"sgl": {"keep": 0.5}},
            "method_settings": {"abl": {"base": "sisa", "shards": 2}, "unlearnrec": {"epochs": 5}},
        }
    )
    assert cfg["backbone_settings"]["sgl"] == {**components.defaults("backbones", "sgl"), "keep": 0.5}
    assert cfg["backbone_settings"]["lightgcn"] == components.defaults("backbones", "lightgcn")
    assert cfg["method_settings"]["gif"] == method_settings("gif")
    assert cfg["method_settings"]["none"] == {}
    assert cfg["method_settings"]["unlearnrec"] == method_settings("unlearnrec", {"epochs": 5})
    assert cfg["method_settings"]["abl"] == {"base": "sisa", **method_settings("sisa", {"shards": 2})}
    assert list(cfg["method_settings"]["abl"]) == ["base", *components.defaults("methods", "sisa")]
    assert set(cfg["method_settings"]) == {"none", "gif", "abl", "unlearnrec"}


def test_the_issue_example_fails_at_start_up_in_one_line(tmp_path):
    path = write(tmp_path, {"method_settings": {"unlearnrec": {"select": "foo"}}}, "x.yaml")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    expected = "method_settings.unlearnrec.select: 'foo' is not one of ['guard', 'heldout', 'budget']"
    assert str(err.value) == f"{path}: {expected}"


def _bad_values(prop: dict) -> list[tuple[str, object]]:
    """(what, value) pairs that `prop` must refuse: one wrong type, one out of range, one not in the enum."""
    types = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
    wrong = {"integer": "many", "number": "many", "boolean": 1, "string": 3}[types[0]]
    bad = [("type", wrong)]
    if "integer" in types:
        bad.append(("type", 1.5))
    if "minimum" in prop:
        bad.append(("range", prop["minimum"] - (1 if "integer" in types else 0.5)))
    if "exclusiveMinimum" in prop:
        bad.append(("range", prop["exclusiveMinimum"]))
    if "maximum" in prop:
        bad.append(("range", prop["maximum"] + 1))
    if "exclusiveMaximum" in prop:
        bad.append(("range", prop["exclusiveMaximum"]))
    if "enum" in prop:
        bad.append(("enum", "no-such-choice"))
    return bad


def _cases(kind):
    return [
        pytest.param(name, key, value, id=f"{name}.{key}-{what}-{value!r}")
        for name in components.names(kind)
        for key, prop in components.fragment(kind, name)["properties"].items()
        for what, value in _bad_values(prop)
    ]


def _one_line_naming(err, source, key_path):
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{source}: {key_path}"), message


@pytest.mark.parametrize("method, key, value", _cases("methods"))
def test_every_bad_method_setting_names_its_key(method, key, value):
    with pytest.raises(ConfigError) as err:
        validate_config({"methods": [method], "method_settings": {method: {key: value}}}, source="config/x.yaml")
    _one_line_naming(err, "config/x.yaml", f"method_settings.{method}.{key}: ")


@pytest.mark.parametrize("method, key, value", _cases("methods"))
def test_a_bad_setting_of_an_alias_names_the_alias(method, key, value):
    with pytest.raises(ConfigError) as err:
        validate_config({"methods": ["abl"], "method_settings": {"abl": {"base": method, key: value}}}, "c.yaml")
    _one_line_naming(err, "c.yaml", f"method_settings.abl.{key}: ")


@pytest.mark.parametrize("backbone, key, value", _cases("backbones"))
def test_every_bad_backbone_setting_names_its_key(backbone, key, value):
    with pytest.raises(ConfigError) as err:
        validate_config({"backbone_settings": {backbone: {key: value}}}, source="config/x.yaml")
    _one_line_naming(err, "config/x.yaml", f"backbone_settings.{backbone}.{key}: ")


def test_every_method_has_bad_value_cases_of_each_kind_it_can_have():
    """The parametrisation above covers a wrong type for every setting, and a range or enum wherever one exists."""
    kinds = {}
    for name in components.names("methods"):
        for prop in components.fragment("methods", name)["properties"].values():
            kinds.setdefault(name, set()).update(what for what, _ in _bad_values(prop))
    assert all({"type", "range"} <= kinds[name] for name in kinds if name != "none")
    assert {"unlearnrec", "reverse_bpr", "gif", "receraser"} <= {name for name in kinds if "enum" in kinds[name]}


def test_unknown_keys_methods_and_aliases(tmp_path):
    with pytest.raises(ConfigError, match=r"c.yaml: unknown key 'method_settings.gif.dampin'"):
        validate_config({"method_settings": {"gif": {"dampin": 0.1}}}, "c.yaml")
    with pytest.raises(ConfigError, match=r"unknown key 'backbone_settings.gcn'"):
        validate_config({"backbone_settings": {"gcn": {}}})
    with pytest.raises(ConfigError, match=r"methods: unknown unlearning method 'typo'"):
        validate_config({"methods": ["typo"]})
    with pytest.raises(ConfigError, match=r"method_settings.typo: unknown unlearning method 'typo'"):
        validate_config({"method_settings": {"typo": {"epochs": 1}}})
    with pytest.raises(ConfigError, match=r"method_settings.abl.base: unknown unlearning method 'nope'"):
        validate_config({"methods": ["abl"], "method_settings": {"abl": {"base": "nope"}}})
    with pytest.raises(ConfigError, match=r"method_settings.unlearnrec.drop_min: 0.3 is greater than drop_max"):
        validate_config({"method_settings": {"unlearnrec": {"drop_min": 0.3}}})


def test_float_settings_keep_their_type_and_integers_stay_strict():
    cfg = validate_config({"backbone_settings": {"sgl": {"keep": 1}}, "method_settings": {"gif": {"damping": 1}}})
    assert type(cfg["backbone_settings"]["sgl"]["keep"]) is float
    assert type(cfg["method_settings"]["gif"]["damping"]) is float
    with pytest.raises(ConfigError, match=r"backbone_settings.lightgcn.dim: 16.0 is not of type 'integer'"):
        validate_config({"backbone_settings": {"lightgcn": {"dim": 16.0}}})


def test_loading_a_config_imports_neither_torch_nor_any_method():
    """Start-up is light: Snakemake parses, plans and light stages load the config without torch."""
    code = (
        "import sys; from recunlearn.config import load_config, needs_preparation; "
        "cfg = load_config('config/tiny.yaml'); "
        "assert [m for m in cfg['methods'] if needs_preparation(cfg, m)] == ['unlearnrec', 'sisa', 'receraser']; "
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith(('torch.', 'recunlearn.unlearning', "
        "'recunlearn.backbones'))]; "
        "assert not bad, bad; print('ok')"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_unknown_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"c.yaml: unknown key 'preprocess.kcor'"):
        load_config(write(tmp_path, {"preprocess": {"kcor": 5}}))


def test_unknown_top_level_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'dataset'"):
        load_config(write(tmp_path, {"dataset": ["ml-100k"]}))


def test_wrong_type_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"train.batch_size: 'big' is not of type 'integer'"):
        load_config(write(tmp_path, {"train": {"batch_size": "big"}}))


def test_out_of_range_and_enum(tmp_path):
    with pytest.raises(ConfigError, match=r"preprocess.kcore"):
        load_config(write(tmp_path, {"preprocess": {"kcore": -1}}))
    with pytest.raises(ConfigError, match=r"backbones.0: 'gcn' is not one of"):
        load_config(write(tmp_path, {"backbones": ["gcn"]}))


def test_ratios_must_sum_to_one(tmp_path):
    with pytest.raises(ConfigError, match=r"preprocess.ratios: train \+ valid \+ test must sum to 1"):
        load_config(write(tmp_path, {"preprocess": {"ratios": {"train": 0.9, "valid": 0.1, "test": 0.1}}}))


def test_unknown_dataset(tmp_path):
    with pytest.raises(ConfigError, match=r"datasets: unknown dataset 'netflix'"):
        load_config(write(tmp_path, {"datasets": ["netflix"]}))


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: configuration file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "a: [1, 2"))


def test_defaults_do_not_leak_between_calls():
    first = default_config()
    first["requests"]["random_edges"].append(0.5)
    assert default_config()["requests"]["random_edges"] == [0.01]
    assert validate_config({"seeds": [1, 2]})["seeds"] == [1, 2]
