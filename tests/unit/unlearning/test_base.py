"""The unlearning-method registry, settings from the fragments, config aliases and the comparison table's arithmetic."""

import math

import numpy as np
import pandas as pd
import pytest

from recunlearn import components
from recunlearn.config import method_settings, validate_config
from recunlearn.errors import ConfigError
from recunlearn.stages.compare import _break_even, label, metric_columns, summarise
from recunlearn.unlearning import METHODS, build_method, method_class


def test_registry_and_fragments_name_the_same_methods():
    assert set(METHODS) == set(components.names("methods"))
    assert all(cls.name == name for name, cls in METHODS.items())


def test_every_registered_method_builds_with_its_fragment_defaults():
    build_method("none")
    assert {"none", "unlearnrec", "finetune", "reverse_bpr", "gif"} <= set(METHODS)
    for name, cls in METHODS.items():
        assert build_method(name).settings == method_settings(name) == components.defaults("methods", name)
        assert list(build_method(name).settings) == list(components.defaults("methods", name))  # fragment order
        assert not hasattr(cls, "defaults")  # the fragment is the only place


def test_needs_preparation_comes_from_the_fragment():
    prepared = {name for name, cls in METHODS.items() if cls.needs_preparation}
    assert prepared == {"unlearnrec", "sisa", "receraser"}
    assert prepared == {name for name in components.names("methods") if components.prepared(name)}
    assert all(build_method(name).needs_preparation == (name in prepared) for name in METHODS)


def test_settings_override_and_reject_unknown_or_mistyped():
    assert build_method("unlearnrec", {"lambda_u": 0.2}).settings["lambda_u"] == 0.2
    with pytest.raises(ConfigError, match=r"unknown key 'method_settings.unlearnrec.lambda_uu'"):
        build_method("unlearnrec", {"lambda_uu": 1})
    with pytest.raises(ConfigError, match=r"method_settings.unlearnrec.freeze_mlp: 'yes' is not of type 'boolean'"):
        build_method("unlearnrec", {"freeze_mlp": "yes"})
    with pytest.raises(ConfigError, match=r"method_settings.unlearnrec.epochs: 2.0 is not of type 'integer'"):
        build_method("unlearnrec", {"epochs": 2.0})


def test_integers_for_float_settings_become_floats_and_null_budgets_stay():
    s = method_settings("unlearnrec", {"lambda_u": 1, "epochs": 2})
    assert type(s["lambda_u"]) is float and s["lambda_u"] == 1.0 and type(s["epochs"]) is int
    assert method_settings("finetune") == {"epochs": 3, "lr": None, "batch_size": None}
    assert type(method_settings("finetune", {"lr": 1})["lr"]) is int  # a nullable default is not a float default


def test_method_base_and_needs_preparation_of_aliases():
    cfg = {"method_settings": {"abl": {"base": "sisa"}, "bad": {"base": "nope"}}}
    assert components.method_base(cfg, "gif") == "gif" and components.method_base(cfg, "abl") == "sisa"
    assert components.needs_preparation(cfg, "abl") and not components.needs_preparation(cfg, "gif")
    with pytest.raises(ConfigError, match=r"method_settings.bad.base: unknown unlearning method 'nope'"):
        components.needs_preparation(cfg, "bad")
    with pytest.raises(ConfigError, match=r"methods: unknown unlearning method 'typo'"):
        components.method_base(cfg, "typo")


def test_alias_uses_base_class_and_names_itself_in_errors():
    method = build_method("unlearnrec_no_lu", {"base": "unlearnrec", "lambda_u": 0.0})
    assert method_class("unlearnrec_no_lu", {"base": "unlearnrec"}) is METHODS["unlearnrec"]
    assert method.settings["lambda_u"] == 0.0
    with pytest.raises(ConfigError, match=r"unknown key 'method_settings.unlearnrec_no_lu.bogus'"):
        build_method("unlearnrec_no_lu", {"base": "unlearnrec", "bogus": 1})
    with pytest.raises(ConfigError, match=r"unknown unlearning method 'mystery'"):
        build_method("mystery", {})
    with pytest.raises(ConfigError, match=r"method_settings.x.base: unknown unlearning method 'nope'"):
        build_method("x", {"base": "nope"})


def test_config_resolves_method_settings_and_keeps_alias_base():
    cfg = validate_config({"methods": ["none", "abl"], "method_settings": {"abl": {"base": "unlearnrec", "epochs": 0}}})
    assert cfg["method_settings"]["abl"]["base"] == "unlearnrec"
    assert cfg["method_settings"]["abl"]["epochs"] == 0 and "lambda_u" in cfg["method_settings"]["abl"]
    with pytest.raises(ConfigError, match="methods: unknown unlearning method 'typo'"):
        validate_config({"methods": ["typo"]})


def test_break_even_counts_requests_until_preparation_pays_off():
    assert _break_even(prep=10.0, per_request=1.0, retrain=3.0) == 6  # 10 + 6*1 < 6*3 but 10 + 5 == 15 == 5*3
    assert _break_even(prep=0.0, per_request=1.0, retrain=3.0) == 1
    assert math.isinf(_break_even(prep=5.0, per_request=4.0, retrain=3.0))


def test_summary_means_over_seeds_and_speedup_against_retrain():
    rows = []
    for seed, (r, s) in enumerate([(0.30, 2.0), (0.32, 4.0)]):
        base = {**dict.fromkeys(metric_columns([20]), 0.0), "request": "random-0.01", "seed": seed}
        retrain_seconds = 10.0 * (seed + 1)
        rows.append(
            {
                **base,
                "model": "retrain",
                "recall@20": r,
                "seconds": retrain_seconds,
                "seconds_total": 2 * retrain_seconds,
            }
        )
        rows.append({**base, "model": "unlearnrec/ie_ft", "recall@20": r - 0.01, "seconds": s, "prep_seconds": 6.0})
    long = pd.DataFrame(rows)
    table = summarise(long, [20]).set_index("model")
    assert table.loc["unlearnrec/ie_ft", "recall@20"] == pytest.approx(0.30)
    assert table.loc["unlearnrec/ie_ft", "recall@20_std"] == pytest.approx(np.std([0.29, 0.31], ddof=1))
    assert table.loc["unlearnrec/ie_ft", "speedup"] == pytest.approx(15.0 / 3.0)
    assert table.loc["unlearnrec/ie_ft", "break_even_requests"] == 1  # 6 + 3 < 15
    assert math.isnan(table.loc["retrain", "speedup"])
    assert table.loc["unlearnrec/ie_ft", "retrain_seconds_total"] == pytest.approx(30.0)


def test_labels():
    assert label("unlearnrec/ie_ft") == "UnlearnRec (IE + fine-tune)"
    assert label("none") == "No unlearning (remaining graph)"
    assert label("unlearnrec_no_lu/ie_ft") == "unlearnrec_no_lu (IE + fine-tune)"


def test_paired_test_marks_a_consistent_gap_to_retrain():
    from recunlearn.stages.compare import paired_tests

    rows = []
    for seed in range(4):
        rows.append(
            {
                "request": "r",
                "model": "retrain",
                "seed": seed,
                "recall@20": 0.30 + 0.01 * seed,
                "ndcg@20": 0.2,
                "mi_bf": 1.0,
                "mi_ng": 1.0,
            }
        )
        rows.append(
            {
                "request": "r",
                "model": "m",
                "seed": seed,
                "recall@20": 0.20 + 0.01 * seed + 0.001 * seed**2,
                "ndcg@20": 0.2,
                "mi_bf": 1.0,
                "mi_ng": 1.0,
            }
        )
    frame = pd.DataFrame(rows).assign(auc_deleted_vs_nonedges=0.5, mia_member_rate=0.0)
    tests = paired_tests(frame, [20]).set_index("model")
    assert tests.loc["m", "recall@20_p"] < 1e-3
    assert math.isnan(tests.loc["m", "ndcg@20_p"])  # identical values: nothing to test
    assert math.isnan(tests.loc["retrain", "recall@20_p"])
    one_seed = paired_tests(frame[frame["seed"] == 0], [20]).set_index("model")
    assert math.isnan(one_seed.loc["m", "recall@20_p"])
