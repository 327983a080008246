"""SISA, RecEraser, GNNDelete and D2DGN: each one's defining behaviour on a tiny two-block graph.

The graph has two disconnected blocks (users 0-14 x items 0-9, users 15-29 x items 10-19), so "far from the
request" has an exact meaning: a request inside block A cannot reach block B.
"""
import numpy as np
import pytest
import torch

from recunlearn.errors import ConfigError
from recunlearn.evaluation.forgetting import sample_non_edges, score_pairs
from recunlearn.backbones import build_backbone
from recunlearn.backbones.trainer import train_backbone
from recunlearn.unlearning import METHODS, d2dgn, gnndelete, receraser, sisa
from recunlearn.unlearning.base import OriginalModel, UnlearningTask, final_embeddings
from recunlearn.graph.edges import unique_edges
from recunlearn.unlearning.sharding import greedy_balanced_assignment, random_partition, receraser_partition

N_USERS, N_ITEMS = 30, 20
TRAIN = {"lr": 0.05, "batch_size": 64, "max_epochs": 20, "patience": 2, "eval_every": 5, "ks": [5]}


def two_blocks(seed=0):
    rng = np.random.default_rng(seed)
    edges = []
    for u in range(N_USERS):
        pool = np.arange(10) if u < 15 else np.arange(10, 20)
        edges += [(u, i) for i in rng.choice(pool, rng.integers(3, 7), replace=False)]
    return np.array(edges, dtype=np.int64)


@pytest.fixture(scope="module")
def original():
    edges = two_blocks()
    bb = build_backbone("lightgcn", N_USERS, N_ITEMS, {"dim": 8, "layers": 3}, seed=0)
    train_backbone(bb, edges, None, N_USERS, N_ITEMS, lr=0.05, batch_size=64, epochs=30, seed=0, progress=False)
    bb.requires_grad_(False)
    return OriginalModel(bb, edges, N_USERS, N_ITEMS, TRAIN, {"dim": 8, "layers": 3}, 0, torch.device("cpu"))


def task_for(original, request):
    request = np.asarray(request, dtype=np.int64).reshape(-1, 2)
    keys = original.trained_on[:, 0] * N_ITEMS + original.trained_on[:, 1]
    remaining = original.trained_on[~np.isin(keys, request[:, 0] * N_ITEMS + request[:, 1])]
    return UnlearningTask(original, request, remaining)


def block_a_request(original, n=6, seed=1):
    edges = original.trained_on[original.trained_on[:, 0] < 15]
    return edges[np.random.default_rng(seed).choice(len(edges), n, replace=False)]


# ---- partitions ---------------------------------------------------------------------------------------------

def test_random_partition_is_balanced_and_seeded():
    a = random_partition(103, 4, seed=3)
    assert sorted(np.bincount(a).tolist()) == [25, 26, 26, 26]
    assert np.array_equal(a, random_partition(103, 4, seed=3))
    assert not np.array_equal(a, random_partition(103, 4, seed=4))


def test_greedy_assignment_equals_the_pairwise_greedy_pass():
    def naive(dist, cap):  # the paper's loop: visit (unit, shard) pairs by distance, join if both free
        out, room = np.full(len(dist), -1), np.full(dist.shape[1], cap)
        for flat in np.argsort(dist, axis=None, kind="stable"):
            u, s = divmod(int(flat), dist.shape[1])
            if out[u] < 0 and room[s] > 0:
                out[u], room[s] = s, room[s] - 1
        return out

    rng = np.random.default_rng(0)
    for case in range(60):
        n, k = int(rng.integers(1, 40)), int(rng.integers(1, 6))
        cap = int(np.ceil(rng.uniform(1.0, 1.5) * n / k))
        dist = rng.random((n, k)).round(1 if case % 2 else 6)  # rounded: many ties
        got = greedy_balanced_assignment(dist, cap)
        assert np.array_equal(got, naive(dist, cap))
        assert np.bincount(got, minlength=k).max() <= cap


@pytest.mark.parametrize("mode", ["user", "item", "interaction"])
def test_receraser_partition_is_balanced_and_deterministic(original, mode):
    edges = unique_edges(original.trained_on, N_ITEMS)
    users, items = (t.numpy() for t in final_embeddings(original.backbone, original.backbone.embedding,
                                                         edges))
    a, report = receraser_partition(edges, users, items, 4, mode, seed=5)
    b, _ = receraser_partition(edges, users, items, 4, mode, seed=5)
    assert np.array_equal(a, b)
    assert max(report["unit_sizes"]) <= report["capacity"] == int(np.ceil(1.2 * report["units"] / 4))
    assert sum(report["unit_sizes"]) == report["units"] and sum(report["edge_sizes"]) == len(edges)
    if mode != "interaction":  # every user (item) lives in exactly one shard
        col = 0 if mode == "user" else 1
        for node in np.unique(edges[:, col]):
            assert len(np.unique(a[edges[:, col] == node])) == 1


# ---- SISA ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sisa_prepared(original):
    method = METHODS["sisa"]({"shards": 4})
    state, report = method.prepare(original)
    return method, state, report


def test_sisa_retrains_exactly_the_touched_shards(original, sisa_prepared):
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
    fresh, _, _ = sisa.train_shard(original, new["edges"].numpy()[new["assignment"].numpy() == 0],
                                   state["seeds"][0], s["epochs"], s["valid_fraction"], s["mask_unseen"])
    assert torch.equal(fresh, new["shard_final"][0])
    keys = new["edges"].numpy() @ np.array([N_ITEMS, 1])
    assert not np.isin(request @ np.array([N_ITEMS, 1]), keys).any()


def test_sisa_request_inside_one_shard_retrains_one_and_scores_are_the_shard_mean(original, sisa_prepared):
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
    assert all(s["best_epoch"] <= s["epochs"] <= TRAIN["max_epochs"] for s in report["shards"])


# ---- RecEraser ----------------------------------------------------------------------------------------------

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


def test_receraser_user_request_retrains_one_shard(original, receraser_prepared):
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


# ---- GNNDelete ----------------------------------------------------------------------------------------------

def test_gnndelete_identity_operators_give_the_frozen_backbone_on_the_remaining_graph(original):
    task = task_for(original, block_a_request(original))
    out = METHODS["gnndelete"]({"epochs": 0}).unlearn(task, None)["gnndelete"]
    users, items = final_embeddings(original.backbone, original.backbone.embedding, task.remaining)
    assert torch.equal(out.user_emb, users) and torch.equal(out.item_emb, items)


def test_gnndelete_moves_deleted_edges_to_non_edges_and_leaves_far_nodes(original):
    task = task_for(original, block_a_request(original))
    before = torch.cat(final_embeddings(original.backbone, original.backbone.embedding, task.remaining))
    out = METHODS["gnndelete"]().unlearn(task, None)["gnndelete"]
    after = torch.cat([out.user_emb, out.item_emb])
    non_edges = sample_non_edges(N_USERS, N_ITEMS, [original.trained_on], 200, seed=3)

    def gap(emb):
        u, i = emb[:N_USERS], emb[N_USERS:]
        return abs(score_pairs(u, i, task.request).mean() - score_pairs(u, i, non_edges).mean())

    assert gap(after) < 0.5 * gap(before)
    block_b = np.r_[15:30, N_USERS + 10:N_USERS + 20]
    assert torch.equal(after[block_b], before[block_b])  # beyond L hops of the request: untouched
    # inside the neighbourhood, L_NI is what holds the non-endpoint nodes in place: without it they move more
    ends = np.unique(np.r_[task.request[:, 0], N_USERS + task.request[:, 1]])
    others = np.setdiff1d(np.r_[0:15, N_USERS:N_USERS + 10], ends)
    no_ni = METHODS["gnndelete"]({"lambda_dec": 1.0}).unlearn(task, None)["gnndelete"]
    moved = (torch.cat([no_ni.user_emb, no_ni.item_emb]) - before).norm(dim=1)[others].mean()
    assert (after - before).norm(dim=1)[others].mean() < 0.8 * moved


# ---- D2DGN --------------------------------------------------------------------------------------------------

def test_d2dgn_lowers_deleted_scores_and_keeps_remaining_ones(original):
    task = task_for(original, block_a_request(original, n=3))
    bb = original.backbone
    orig_u, orig_i = final_embeddings(bb, bb.embedding, original.trained_on)
    none_u, none_i = final_embeddings(bb, bb.embedding, task.remaining)
    settings = {"epochs": 10, "batch_size": 32, "lr": 0.02, "lambda_emb": 100.0}
    out = METHODS["d2dgn"](settings).unlearn(task, None)["d2dgn"]
    deleted = score_pairs(out.user_emb, out.item_emb, task.request).mean()
    assert deleted < score_pairs(none_u, none_i, task.request).mean() - 1.0
    assert deleted < score_pairs(orig_u, orig_i, task.request).mean() - 2.0
    kept, kept_orig = (score_pairs(out.user_emb, out.item_emb, task.remaining),
                       score_pairs(orig_u, orig_i, task.remaining))
    assert np.abs(kept - kept_orig).mean() < 0.1 * np.abs(kept_orig).mean()
    assert np.corrcoef(kept, kept_orig)[0, 1] > 0.9


# ---- registry and settings ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, cls", [("sisa", sisa.SISA), ("receraser", receraser.RecEraser),
                                       ("gnndelete", gnndelete.GNNDelete), ("d2dgn", d2dgn.D2DGN)])
def test_registered_and_unknown_settings_refused(name, cls):
    assert METHODS[name] is cls
    with pytest.raises(ConfigError, match="unknown key"):
        cls({"no_such_setting": 1})


@pytest.mark.parametrize("name, settings", [("sisa", {"shards": 0}), ("receraser", {"partition": "random"}),
                                            ("receraser", {"capacity_factor": 0.5}),
                                            ("gnndelete", {"lambda_dec": 2.0}), ("d2dgn", {"tau": 0.0})])
def test_invalid_values_refused(name, settings):
    with pytest.raises(ConfigError):
        METHODS[name](settings)
