"""RecEraser: balanced shards, attention over the shards that saw a node, a user request retrains one shard."""

import numpy as np
import pytest
import torch

from recunlearn.errors import ConfigError
from recunlearn.unlearning import METHODS, receraser

N_USERS, N_ITEMS = 30, 20  # the two-block graph of conftest.py


@pytest.fixture(scope="module")
def receraser_prepared(original):
    method = METHODS["receraser"]({"shards": 3, "agg_epochs": 5, "agg_lr": 0.01})
    state, report = method.prepare(original)
    return method, state, report


def test_receraser_partition_in_prepare_is_balanced_and_seeded(original, receraser_prepared):
    method, state, report = receraser_prepared
    part = report["partition"]
    assert part["mode"] == "user" and max(part["unit_sizes"]) <= part["capacity"]
    again, _ = method.partition(original, state["edges"].numpy())
    assert np.array_equal(again, state["assignment"].numpy())


def test_receraser_attention_sums_to_one_over_the_shards_that_saw_a_node(receraser_prepared):
    method, state, _ = receraser_prepared
    users, items = method.attention(state)
    for weights, present in ((users, state["present"][:, :N_USERS].T), (items, state["present"][:, N_USERS:].T)):
        seen = present.any(1)
        assert torch.allclose(weights[seen].sum(1), torch.ones(int(seen.sum())), atol=1e-6)
        assert torch.all(weights[~present] == 0)
    # user partition: each user is in one shard, so all of its attention is on that shard
    assert torch.all(users.max(1).values == 1)


def test_receraser_user_request_retrains_one_shard(original, receraser_prepared, task_for):
    method, state, _ = receraser_prepared
    edges, assign = state["edges"].numpy(), state["assignment"].numpy()
    user = 4
    request = edges[edges[:, 0] == user]
    out = method.unlearn(task_for(original, request), state)["receraser"]
    (shard,) = np.unique(assign[edges[:, 0] == user])
    assert out.info["retrained_shards"] == [int(shard)]
    new, _, _ = method.update(task_for(original, request), state)
    for k in range(3):
        assert torch.equal(new["shard_final"][k], state["shard_final"][k]) == (k != shard)
    assert torch.all(out.user_emb[user] == 0)  # no shard has the forgotten user any more
    assert out.user_emb.shape == (N_USERS, 8) and torch.isfinite(out.item_emb).all()


def test_registered_and_unknown_settings_refused():
    assert METHODS["receraser"] is receraser.RecEraser
    with pytest.raises(ConfigError, match="unknown key"):
        receraser.RecEraser({"no_such_setting": 1})


@pytest.mark.parametrize("settings", [{"partition": "random"}, {"capacity_factor": 0.5}])
def test_invalid_values_refused(settings):
    with pytest.raises(ConfigError):
        METHODS["receraser"](settings)
