"""Reverse BPR (MMRecUn): gradient ascent on the deleted pairs against non-edges, stopping once they are forgotten."""

import pytest
import torch

from recunlearn.config import method_settings
from recunlearn.errors import ConfigError
from recunlearn.unlearning import METHODS, build_method, reverse_bpr


def test_registered_and_unknown_keys_refused():
    assert METHODS["reverse_bpr"] is reverse_bpr.ReverseBPR
    assert isinstance(build_method("reverse_bpr"), reverse_bpr.ReverseBPR)
    assert build_method("reverse_bpr").settings == method_settings("reverse_bpr")
    with pytest.raises(ConfigError, match="unknown key 'method_settings.reverse_bpr.epoch'"):
        build_method("reverse_bpr", {"epoch": 3})


@pytest.mark.parametrize("settings", [{"reverse_form": "up"}, {"lambda_reverse": -1}, {"stop_when_forgotten": 1}])
def test_bad_setting_values_refused(settings):
    with pytest.raises(ConfigError, match="method_settings.reverse_bpr"):
        build_method("reverse_bpr", settings)


def test_reverse_bpr_lowers_deleted_scores_more_than_none(clustered):
    none = clustered.run("none")["none"]
    rev = clustered.run("reverse_bpr", {"stop_when_forgotten": False, "lr": 0.01})["reverse_bpr"]
    assert rev.info["stop_reason"] == "max_epochs"
    d_none = clustered.deleted_mean(none.user_emb, none.item_emb)
    d_rev = clustered.deleted_mean(rev.user_emb, rev.item_emb)
    assert d_rev < d_none < clustered.original_deleted_mean()
    assert d_none - d_rev > 1.0


def test_reverse_bpr_stops_once_deleted_edges_score_like_non_edges(clustered):
    rev = clustered.run("reverse_bpr", {"lr": 0.01, "epochs": 50})["reverse_bpr"]
    assert rev.info["stop_reason"] == "forgotten"
    last = rev.info["checks"][-1]
    assert last["deleted_mean"] <= last["nonedge_mean"]
    # the returned model is exactly the one that met the criterion
    assert clustered.deleted_mean(rev.user_emb, rev.item_emb) == pytest.approx(last["deleted_mean"], rel=1e-5, abs=1e-5)


def test_reverse_bpr_loss_forms():
    s_del, s_neg = torch.tensor([3.0, -2.0]), torch.tensor([0.0, 0.0])
    swapped = reverse_bpr.reverse_bpr_loss(s_del, s_neg, "swapped")  # saturates once deleted < negative
    assert swapped == pytest.approx(float(torch.nn.functional.softplus(torch.tensor([3.0, -2.0])).mean()))
    ascent = reverse_bpr.reverse_bpr_loss(s_del, s_neg, "ascent")  # = mean log σ(s_del - s_neg), unbounded below
    assert ascent == pytest.approx(float(torch.nn.functional.logsigmoid(torch.tensor([3.0, -2.0])).mean()))
