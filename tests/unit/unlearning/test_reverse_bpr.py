"""Reverse BPR (MMRecUn): forward BPR on the retain set plus reverse BPR on the forget set, the forget term weighted
by |E_f| / |E_r| (the sum over both sets), for a fixed budget that always runs."""

import copy

import numpy as np
import pytest
import torch

from recunlearn.config import method_settings
from recunlearn.errors import ConfigError
from recunlearn.graph.edges import remove_edges
from recunlearn.unlearning import METHODS, build_method, reverse_bpr
from recunlearn.unlearning.base import OriginalModel, UnlearningTask, final_embeddings


def test_registered_and_unknown_keys_refused():
    assert METHODS["reverse_bpr"] is reverse_bpr.ReverseBPR
    assert isinstance(build_method("reverse_bpr"), reverse_bpr.ReverseBPR)
    assert build_method("reverse_bpr").settings == method_settings("reverse_bpr")
    with pytest.raises(ConfigError, match="unknown key 'method_settings.reverse_bpr.epoch'"):
        build_method("reverse_bpr", {"epoch": 3})


@pytest.mark.parametrize(
    "settings",
    [{"reverse_form": "up"}, {"lambda_reverse": -1}, {"stop_when_forgotten": 1}, {"weighting": "mean"}],
)
def test_bad_setting_values_refused(settings):
    with pytest.raises(ConfigError, match="method_settings.reverse_bpr"):
        build_method("reverse_bpr", settings)


def test_defaults_are_the_set_size_weight_and_a_fixed_budget():
    s = method_settings("reverse_bpr")
    assert (s["weighting"], s["lambda_reverse"], s["stop_when_forgotten"]) == ("set_size", 1.0, False)


def test_forget_weight_scales_with_the_forget_to_retain_size_ratio():
    w = reverse_bpr.forget_weight
    assert w(800, 80_000, "set_size", 1.0) == pytest.approx(0.01)
    assert w(1_600, 80_000, "set_size", 1.0) == pytest.approx(2 * w(800, 80_000, "set_size", 1.0))
    assert w(800, 40_000, "set_size", 1.0) == pytest.approx(2 * w(800, 80_000, "set_size", 1.0))
    assert w(800, 80_000, "set_size", 3.0) == pytest.approx(0.03)
    assert w(800, 80_000, "constant", 0.5) == w(8, 80_000, "constant", 0.5) == 0.5
    with pytest.raises(ValueError, match="weighting"):
        w(1, 1, "mean", 1.0)


def test_a_run_weights_its_forget_term_by_the_size_ratio(clustered):
    """The weight the loss used is |E_f|/|E_r|: the run equals one with that ratio as a constant weight, and a
    request twice as large gets twice the weight."""
    task = clustered.task
    ratio = len(task.request) / len(task.remaining)
    auto = clustered.run("reverse_bpr", {"lr": 0.01})["reverse_bpr"]
    fixed = clustered.run("reverse_bpr", {"lr": 0.01, "weighting": "constant", "lambda_reverse": ratio})
    assert auto.info["forget_weight"] == pytest.approx(ratio)
    assert torch.allclose(auto.user_emb, fixed["reverse_bpr"].user_emb, atol=1e-6)
    assert torch.allclose(auto.item_emb, fixed["reverse_bpr"].item_emb, atol=1e-6)
    unit = clustered.run("reverse_bpr", {"lr": 0.01, "weighting": "constant"})["reverse_bpr"]
    assert not torch.allclose(auto.item_emb, unit.item_emb, atol=1e-3)  # the weight reaches the loss

    o = task.original
    half = UnlearningTask(o, task.request[:6], remove_edges(o.trained_on, task.request[:6], o.n_items))
    small = METHODS["reverse_bpr"]({"epochs": 0}).unlearn(half, None)["reverse_bpr"]
    assert auto.info["forget_weight"] / small.info["forget_weight"] == pytest.approx(
        2 * len(half.remaining) / len(task.remaining)
    )


def test_reverse_bpr_lowers_deleted_scores_more_than_none(clustered):
    none = clustered.run("none")["none"]
    rev = clustered.run("reverse_bpr", {"lr": 0.01})["reverse_bpr"]
    assert rev.info["stop_reason"] == "budget"
    d_none = clustered.deleted_mean(none.user_emb, none.item_emb)
    d_rev = clustered.deleted_mean(rev.user_emb, rev.item_emb)
    assert d_rev < d_none < clustered.original_deleted_mean()
    assert d_none - d_rev > 1.0


def _already_forgotten_user_request(clustered) -> UnlearningTask:
    """Users 0-5 deleted whole from a copy of the model whose E0 rows for them are negated: on the remaining graph
    a deleted user is isolated and keeps only its E0 row, so every deleted pair scores below the non-edges before
    any step (what a large user-wise request on ML-100K did to the old early stop)."""
    o = clustered.task.original
    backbone = copy.deepcopy(o.backbone)
    with torch.no_grad():
        backbone.embedding[:6] *= -1
    original = OriginalModel(
        backbone, o.trained_on, o.n_users, o.n_items, o.train_settings, o.backbone_settings, o.seed, o.device
    )
    gone = np.isin(o.trained_on[:, 0], np.arange(6))
    return UnlearningTask(original, o.trained_on[gone], o.trained_on[~gone])


def test_the_fixed_budget_runs_every_step_even_when_deleted_pairs_already_score_below_non_edges(clustered):
    task = _already_forgotten_user_request(clustered)
    old_rule = METHODS["reverse_bpr"]({"stop_when_forgotten": True}).unlearn(task, None)["reverse_bpr"]
    assert (old_rule.info["steps"], old_rule.info["stop_reason"]) == (0, "forgotten")  # the zero-step exit
    out = METHODS["reverse_bpr"]({"epochs": 2}).unlearn(task, None)["reverse_bpr"]
    assert out.info["stop_reason"] == "budget"
    assert out.info["steps"] == out.info["planned_steps"] == 2 * -(-len(task.remaining) // 64) > 0
    bb = task.original.backbone
    before = final_embeddings(bb, bb.embedding.detach(), task.remaining)
    assert not torch.allclose(out.item_emb, before[1])  # it trained


def test_opt_in_early_stop_returns_the_model_that_met_it(clustered):
    rev = clustered.run("reverse_bpr", {"lr": 0.01, "epochs": 50, "stop_when_forgotten": True})["reverse_bpr"]
    assert rev.info["stop_reason"] == "forgotten"
    assert 0 < rev.info["steps"] < rev.info["planned_steps"]
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
