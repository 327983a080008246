"""RecEraser: balanced interaction shards by default, a request touching one shard retrains only that shard, the
aggregator is re-fitted from its initial weights (so the output equals a from-scratch build on the remaining
edges) and timed apart, its attention spreads over the shards that saw a node, and it early-stops on validation."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from recunlearn.errors import ConfigError
from recunlearn.graph.adjacency import GraphContext
from recunlearn.unlearning import METHODS, receraser, sisa

N_USERS, N_ITEMS = 30, 20  # the two-block graph of conftest.py
SETTINGS = {"shards": 3, "agg_epochs": 4}


@pytest.fixture(scope="module")
def receraser_prepared(original):
    method = METHODS["receraser"](SETTINGS)
    state, report = method.prepare(original)
    return method, state, report


def from_scratch(method, original, edges, assignment, seeds):
    """Prepare on `edges` with a given partition: shards trained afresh, aggregator fitted, output combined."""
    k = method.settings["shards"]
    shards = method.train_shards(original, edges, assignment, seeds, range(k))
    state = sisa.shard_state(original, edges, assignment, seeds, shards)
    state["aggregator"], _ = method.fit_aggregator(original, state)
    return method.combine(original, state)


def test_the_default_partition_is_by_interaction_and_within_the_papers_bound(original, receraser_prepared):
    method, state, report = receraser_prepared
    part, n_edges = report["partition"], len(state["edges"])
    assert method.settings["partition"] == "interaction" and part["mode"] == "interaction"
    assert part["capacity"] == math.ceil(1.2 * n_edges / 3)
    sizes = np.bincount(state["assignment"].numpy(), minlength=3)
    assert sizes.sum() == n_edges and sizes.max() <= part["capacity"] and sizes.min() > 0
    again, _ = method.partition(original, state["edges"].numpy())
    assert np.array_equal(again, state["assignment"].numpy())


def test_a_request_in_one_shard_retrains_only_it_and_times_the_aggregator_apart(
    original, receraser_prepared, task_for, count_trainings
):
    method, state, _ = receraser_prepared
    edges, assign = state["edges"].numpy(), state["assignment"].numpy()
    out = method.unlearn(task_for(original, edges[assign == 1][:3]), state)["receraser"]
    assert (out.info["shards_retrained"], out.info["shards"], out.info["retrained"]) == (1, 3, [1])
    assert count_trainings == [int((assign == 1).sum()) - 3]
    assert set(out.timings) == {"shards", "aggregator", "combine"}
    assert out.timings["aggregator"] > 0 and out.timings["shards"] + out.timings["aggregator"] <= out.seconds
    agg = out.info["aggregator"]
    assert agg["epochs"] == 4 and agg["stop"] == "fixed budget (no validation pairs)" and agg["seconds"] > 0


def test_untouched_shards_are_reused_and_the_output_equals_a_from_scratch_build(original, receraser_prepared, task_for):
    method, state, _ = receraser_prepared
    edges, assign = state["edges"].numpy(), state["assignment"].numpy()
    task = task_for(original, edges[assign == 2][:2])
    new, _, _ = method.update(task, state)
    for k in (0, 1):
        assert torch.equal(new["shard_initial"][k], state["shard_initial"][k])
    assert not torch.equal(new["shard_initial"][2], state["shard_initial"][2])
    # exact: shards and aggregator as a preparation on the remaining edges (same partition, seeds) gives them
    users, items = method.combine(original, new)
    ref_users, ref_items = from_scratch(
        method, original, new["edges"].numpy(), new["assignment"].numpy(), state["seeds"]
    )
    assert torch.equal(users, ref_users) and torch.equal(items, ref_items)
    # the aggregator was re-fitted: its weights differ from the prepared ones
    prepared, refit = state["aggregator"]["weights"], new["aggregator"]["weights"]
    assert not torch.equal(prepared["trans_w"], refit["trans_w"])


def test_initial_tables_are_aggregated_then_propagated_on_the_current_graph(original, receraser_prepared):
    method, state, _ = receraser_prepared
    agg = method.aggregator(state, "cpu")
    x = state["shard_initial"].permute(1, 0, 2)
    adj = GraphContext.from_edges(state["edges"].numpy(), N_USERS, N_ITEMS).adj
    with torch.no_grad():
        expected = original.backbone.propagate(agg.aggregate(x, state["present"].T, N_USERS), adj)
    users, items = method.combine(original, state)
    assert torch.allclose(torch.cat([users, items]), expected, atol=1e-6)


def test_final_input_aggregates_the_shards_final_embeddings_without_propagation(original):
    method = METHODS["receraser"]({**SETTINGS, "agg_input": "final"})
    state, _ = method.prepare(original)
    agg = method.aggregator(state, "cpu")
    with torch.no_grad():
        expected = agg.aggregate(state["shard_final"].permute(1, 0, 2), state["present"].T, N_USERS)
    users, items = method.combine(original, state)
    assert torch.equal(torch.cat([users, items]), expected)


def test_attention_sums_to_one_over_the_shards_that_saw_a_node(receraser_prepared):
    method, state, _ = receraser_prepared
    users, items = method.attention(state)
    for weights, present in ((users, state["present"][:, :N_USERS].T), (items, state["present"][:, N_USERS:].T)):
        seen = present.any(1)
        assert torch.allclose(weights[seen].sum(1), torch.ones(int(seen.sum())), atol=1e-6)
        assert torch.all(weights[~present] == 0)


def test_the_aggregator_starts_from_the_official_initialisation():
    agg = receraser.AttentionAggregator(4, 64, seed=0).requires_grad_(False)
    assert abs(float(agg.trans_w.std()) - 0.01) < 1e-3 and abs(float(agg.trans_b.std()) - 0.01) < 3e-3
    assert torch.all(agg.att_h == 0.01) and torch.all(agg.att_b == 0)
    std = math.sqrt(2.0 / (32 + 64))
    assert float(agg.att_w.abs().max()) <= 2 * std
    x = torch.randn(5, 4, 64)
    weights = agg.weights(agg.transfer(x), torch.ones(5, 4, dtype=torch.bool), "user")
    assert torch.allclose(weights, torch.full((5, 4), 0.25), atol=5e-3)  # near-uniform at the start


def test_the_user_partition_is_kept_as_a_setting(original, task_for):
    method = METHODS["receraser"]({**SETTINGS, "partition": "user"})
    state, report = method.prepare(original)
    assert report["partition"]["mode"] == "user"
    edges, assign = state["edges"].numpy(), state["assignment"].numpy()
    user = 4
    out = method.unlearn(task_for(original, edges[edges[:, 0] == user]), state)["receraser"]
    (shard,) = np.unique(assign[edges[:, 0] == user])
    assert out.info["retrained"] == [int(shard)] and out.info["shards_retrained"] == 1
    users, _ = method.attention(state)
    assert torch.all(users.max(1).values == 1)  # each user lives in one shard: all its attention is there
    assert torch.all(out.user_emb[user] == 0)  # no shard, and no edge of the remaining graph, has the user


def test_the_aggregator_early_stops_on_validation_pairs(original):
    rng, trained = np.random.default_rng(0), set(map(tuple, original.trained_on.tolist()))
    valid = np.array(
        [(u, i) for u in range(N_USERS) for i in rng.permutation(N_ITEMS)[:3] if (u, int(i)) not in trained]
    )
    with_valid = dataclasses.replace(original, valid=valid)
    method = METHODS["receraser"]({"shards": 2, "epochs": 5, "agg_epochs": 200, "agg_patience": 2})
    _, report = method.prepare(with_valid)
    agg = report["aggregator"]
    assert agg["stop"] == "early stop on validation" and agg["epochs"] < 200
    assert agg["best_epoch"] == agg["epochs"] - 2 and agg["best_valid"] == max(agg["valid"])


def test_registered_and_unknown_settings_refused():
    assert METHODS["receraser"] is receraser.RecEraser
    with pytest.raises(ConfigError, match="unknown key"):
        receraser.RecEraser({"no_such_setting": 1})


@pytest.mark.parametrize(
    "settings", [{"partition": "random"}, {"capacity_factor": 0.5}, {"agg_keep": 0}, {"agg_input": "both"}]
)
def test_invalid_values_refused(settings):
    with pytest.raises(ConfigError):
        METHODS["receraser"](settings)
