"""SISA: a request retrains exactly the shards it touches, each bit-identical to training that shard from scratch."""

import numpy as np
import pytest
import torch

from recunlearn.errors import ConfigError
from recunlearn.unlearning import METHODS, sisa

N_USERS, N_ITEMS = 30, 20  # the two-block graph of conftest.py


@pytest.fixture(scope="module")
def sisa_prepared(original):
    method = METHODS["sisa"]({"shards": 4})
    state, report = method.prepare(original)
    return method, state, report


def test_sisa_retrains_exactly_the_touched_shards(original, sisa_prepared, task_for):
    method, state, report = sisa_prepared
    assert report["seconds"] > 0 and len(report["shards"]) == 4
    edges, assign = state["edges"].numpy(), state["assignment"].numpy()
    request = np.concatenate([edges[assign == 0][:2], edges[assign == 2][:1]])
    new, info, _ = method.update(task_for(original, request), state)
    assert info["retrained_shards"] == [0, 2]
    for k in (1, 3):
        assert torch.equal(new["shard_final"][k], state["shard_final"][k])
    for k in (0, 2):
        assert not torch.equal(new["shard_final"][k], state["shard_final"][k])
    # exact unlearning: a retrained shard IS the shard model trained from scratch on its remaining edges
    s = method.settings
    fresh, _, _ = sisa.train_shard(
        original,
        new["edges"].numpy()[new["assignment"].numpy() == 0],
        state["seeds"][0],
        s["epochs"],
        s["valid_fraction"],
        s["mask_unseen"],
    )
    assert torch.equal(fresh, new["shard_final"][0])
    keys = new["edges"].numpy() @ np.array([N_ITEMS, 1])
    assert not np.isin(request @ np.array([N_ITEMS, 1]), keys).any()


def test_sisa_request_inside_one_shard_retrains_one_and_scores_are_the_shard_mean(original, sisa_prepared, task_for):
    method, state, _ = sisa_prepared
    edges, assign = state["edges"].numpy(), state["assignment"].numpy()
    out = method.unlearn(task_for(original, edges[assign == 3][:3]), state)["sisa"]
    assert out.info["retrained_shards"] == [3] and out.info["n_retrained"] == 1
    new, _, _ = method.update(task_for(original, edges[assign == 3][:3]), state)
    finals = new["shard_final"]
    mean_score = torch.stack([f[:N_USERS] @ f[N_USERS:].T for f in finals]).mean(0)
    assert torch.allclose(out.user_emb @ out.item_emb.T, mean_score, atol=1e-5)
    # untouched shards enter the output unchanged: the output slices are the prepared tables (scaled)
    d = finals.shape[2]
    assert torch.equal(out.user_emb[:, :d], state["shard_final"][0][:N_USERS] * 0.5)


def test_sisa_early_stopping_on_a_held_out_part(original):
    state, report = METHODS["sisa"]({"shards": 2, "valid_fraction": 0.2}).prepare(original)
    assert [s["edges"] for s in report["shards"]] == np.bincount(state["assignment"].numpy()).tolist()
    assert all(s["best_epoch"] <= s["epochs"] <= original.train_settings["max_epochs"] for s in report["shards"])


def test_registered_and_unknown_settings_refused():
    assert METHODS["sisa"] is sisa.SISA
    with pytest.raises(ConfigError, match="unknown key"):
        sisa.SISA({"no_such_setting": 1})


@pytest.mark.parametrize("settings", [{"shards": 0}])
def test_invalid_values_refused(settings):
    with pytest.raises(ConfigError):
        METHODS["sisa"](settings)
