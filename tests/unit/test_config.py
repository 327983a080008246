"""Configuration: defaults come from the schema, and every invalid input names the key."""
import pytest
import yaml

from recunlearn.config import default_config, load_config, schema, validate_config
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


def test_shipped_configs_are_valid_and_spell_out_every_default_section():
    """DVC can only track params present in the file, so the shipped configs list every section."""
    for path in ("config/config.yaml", "config/tiny.yaml"):
        raw = yaml.safe_load(open(path))
        load_config(path)
        assert set(schema()["properties"]) <= set(raw), path


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
