"""SISA: a request retrains exactly the shards it touches, each bit-identical to training that shard from scratch
on its remaining edges; untouched shards are reused bit for bit; shards early-stop on validation when given."""

import dataclasses

import numpy as np
import pytest
import torch

from recunlearn.errors import ConfigError, RequestError
from recunlearn.unlearning import METHODS, sisa

N_USERS, N_ITEMS = 30, 20  # the two-block graph of conftest.py


def valid_pairs(original, seed=0):
    """One held-out pair per user: an item of its own block it has no training edge with."""
    rng, trained = np.random.default_rng(seed), set(map(tuple, original.trained_on.tolist()))
    pairs = []
    for u in range(N_USERS):
        pool = [i for i in (range(10) if u < 15 else range(10, 20)) if (u, i) not in trained]
        pairs.append((u, int(rng.choice(pool))))
    return np.array(pairs, dtype=np.int64)


@pytest.fixture(scope="module")
def with_valid(original):
    """The original model with validation pairs and a budget where early stopping must act (cap 200 epochs)."""
    train = {**original.train_settings, "max_epochs": 200, "patience": 1, "eval_every": 1}
    return dataclasses.replace(original, valid=valid_pairs(original), train_settings=train)


@pytest.fixture(scope="module")
def sisa_prepared(original):
    method = METHODS["sisa"]({"shards": 4})
    state, report = method.prepare(original)
    return method, state, report


def fresh(method, original, state, shard):
    """Shard `shard` trained from scratch on its edges in `state`, with its seed: what exact unlearning must give."""
    s = method.settings
    edges = state["edges"].numpy()[state["assignment"].numpy() == shard]
    return sisa.train_shard(original, edges, state["seeds"][shard], s["epochs"], s["early_stop"], s["mask_unseen"])


def test_a_request_retrains_only_its_shards_each_equal_to_training_it_from_scratch(
    original, sisa_prepared, task_for, count_trainings
):
    method, state, _ = sisa_prepared
    edges, assign = state["edges"].numpy(), state["assignment"].numpy()
    request = np.concatenate([edges[assign == 0][:2], edges[assign == 2][:1]])
    new, info, timings = method.update(task_for(original, request), state)
    assert (info["shards_retrained"], info["shards"], info["retrained"]) == (2, 4, [0, 2])
    assert sorted(count_trainings) == sorted([int((assign == 0).sum()) - 2, int((assign == 2).sum()) - 1])
    for k in (1, 3):  # untouched: the prepared tensors themselves
        for key in ("shard_initial", "shard_final", "present"):
            assert torch.equal(new[key][k], state[key][k])
    for k in (0, 2):  # retrained: exactly the shard model trained from scratch without the deleted edges
        shard = fresh(method, original, new, k)
        assert torch.equal(shard.final, new["shard_final"][k]) and torch.equal(shard.initial, new["shard_initial"][k])
        assert not torch.equal(new["shard_final"][k], state["shard_final"][k])
    keys = new["edges"].numpy() @ np.array([N_ITEMS, 1])
    assert not np.isin(request @ np.array([N_ITEMS, 1]), keys).any()
    assert set(timings) == {"shards"}


def test_a_request_inside_one_shard_retrains_one_and_scores_are_the_shard_mean(original, sisa_prepared, task_for):
    method, state, _ = sisa_prepared
    edges, assign = state["edges"].numpy(), state["assignment"].numpy()
    task = task_for(original, edges[assign == 3][:3])
    out = method.unlearn(task, state)["sisa"]
    assert out.info["retrained"] == [3] and out.info["shards_retrained"] == 1 and out.info["shards"] == 4
    assert set(out.timings) == {"shards", "combine"} and out.timings["shards"] <= out.seconds
    new, _, _ = method.update(task, state)
    finals = new["shard_final"]
    mean_score = torch.stack([f[:N_USERS] @ f[N_USERS:].T for f in finals]).mean(0)
    assert torch.allclose(out.user_emb @ out.item_emb.T, mean_score, atol=1e-5)
    # untouched shards enter the output unchanged: the output slices are the prepared tables (scaled)
    d = finals.shape[2]
    assert torch.equal(out.user_emb[:, :d], state["shard_final"][0][:N_USERS] * 0.5)


def test_without_validation_pairs_a_shard_trains_the_fixed_budget_and_says_so(original, sisa_prepared):
    _, state, report = sisa_prepared
    assert report["seconds"] > 0 and set(report["timings"]) == {"partition", "shards"}
    assert [s["edges"] for s in report["shards"]] == np.bincount(state["assignment"].numpy()).tolist()
    for shard in report["shards"]:
        assert shard["epochs"] == original.train_settings["max_epochs"] == shard["best_epoch"]
        assert shard["stop"] == "fixed budget (no validation pairs)"


def test_shards_early_stop_on_the_validation_pairs_of_their_users(with_valid, task_for):
    method = METHODS["sisa"]({"shards": 2})
    state, report = method.prepare(with_valid)
    for k, shard in enumerate(report["shards"]):
        users = np.unique(state["edges"].numpy()[state["assignment"].numpy() == k][:, 0])
        assert shard["valid_pairs"] == int(np.isin(with_valid.valid[:, 0], users).sum()) > 0
        # patience 1, checked every epoch: the run stops one epoch after its best, far below the 200-epoch cap
        assert shard["stop"] == "early stop on validation" and shard["best_epoch"] == shard["epochs"] - 1 < 199
    edges, assign = state["edges"].numpy(), state["assignment"].numpy()
    new, info, _ = method.update(task_for(with_valid, edges[assign == 1][:2]), state)
    assert info["shards_retrained"] == 1 and info["shard_training"]["1"]["stop"] == "early stop on validation"
    assert torch.equal(fresh(method, with_valid, new, 1).final, new["shard_final"][1])  # still exact
    assert torch.equal(new["shard_final"][0], state["shard_final"][0])


def test_early_stop_off_trains_the_given_epochs(with_valid):
    _, report = METHODS["sisa"]({"shards": 2, "epochs": 3, "early_stop": False}).prepare(with_valid)
    assert all(s["epochs"] == 3 and s["stop"] == "fixed budget (early_stop off)" for s in report["shards"])


@pytest.mark.parametrize("partition", ["user", "interaction"])
def test_deleting_one_user_retrains_one_shard_under_the_user_partition_and_several_otherwise(
    original, task_for, partition
):
    method = METHODS["sisa"]({"shards": 4, "partition": partition})
    state, report = method.prepare(original)
    assert report["partition"]["mode"] == f"random {partition}"
    edges, assign = state["edges"].numpy(), state["assignment"].numpy()
    user = int(np.bincount(edges[:, 0]).argmax())  # the most active user: several edges to spread
    mine = edges[edges[:, 0] == user]
    assert len(mine) >= 4
    new, info, _ = method.update(task_for(original, mine), state)
    assert (info["shards_retrained"] == 1) == (partition == "user")
    assert info["retrained"] == sorted(set(assign[edges[:, 0] == user].tolist()))
    if partition == "user":  # the retrained shard lost exactly that user, and equals training it from scratch
        (k,) = info["retrained"]
        assert not new["present"][k][user] and state["present"][k][user]
        shard = fresh(method, original, new, k)
        assert torch.equal(shard.final, new["shard_final"][k])


def test_a_request_edge_outside_the_prepared_edges_is_refused(original, sisa_prepared, task_for):
    method, state, _ = sisa_prepared
    task = task_for(original, state["edges"].numpy()[:1])
    task.request = np.array([[0, 19]])  # block A user, block B item: never a training edge
    with pytest.raises(RequestError, match="not in the prepared training edges"):
        method.update(task, state)


def test_registered_and_unknown_settings_refused():
    assert METHODS["sisa"] is sisa.SISA
    with pytest.raises(ConfigError, match="unknown key"):
        sisa.SISA({"no_such_setting": 1})
    with pytest.raises(ConfigError, match="unknown key"):  # replaced by early stopping on the split's pairs
        sisa.SISA({"valid_fraction": 0.1})


@pytest.mark.parametrize(
    "settings",
    [{"shards": 0}, {"epochs": -1}, {"early_stop": "yes"}, {"partition": "item"}],  # item: RecEraser's
)
def test_invalid_values_refused(settings):
    with pytest.raises(ConfigError):
        METHODS["sisa"](settings)
