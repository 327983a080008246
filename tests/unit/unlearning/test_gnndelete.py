"""GNNDelete: locality (nodes beyond L hops keep the original model's embeddings), the layer-0 operator, the
pairwise neighbourhood term, deleted edges moved towards non-edges, and checkpoint selection on validation."""

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recunlearn.backbones import build_backbone
from recunlearn.backbones.trainer import train_backbone
from recunlearn.errors import ConfigError
from recunlearn.evaluation.forgetting import score_pairs
from recunlearn.graph.adjacency import user_item_csr
from recunlearn.graph.edges import remove_edges
from recunlearn.graph.sampling import sample_non_edges
from recunlearn.unlearning import METHODS, gnndelete
from recunlearn.unlearning.base import OriginalModel, UnlearningTask, final_embeddings

N_USERS, N_ITEMS = 30, 20  # the two-block graph of conftest.py
FAST = {"epochs": 60, "lr": 0.01}  # a few dozen steps move the operators on these tiny graphs


def run(task, settings=None):
    return METHODS["gnndelete"]({**FAST, **(settings or {})}).unlearn(task, None)["gnndelete"]


def hop_distance(edges, sources, n_users, n_items):
    """Shortest-path hops from the nearest of `sources` (node ids) to every node of the bipartite graph."""
    r = user_item_csr(edges, n_users, n_items)
    adj = sp.bmat([[None, r], [r.T, None]], format="csr")
    return sp.csgraph.shortest_path(adj, unweighted=True, indices=sources).min(axis=0)


def random_task(seed, n_users=25, n_items=25, n_edges=45, n_request=2):
    """A sparse random graph (long paths, several components) and a request of `n_request` of its edges."""
    rng = np.random.default_rng(seed)
    edges = np.unique(np.stack([rng.integers(0, n_users, n_edges), rng.integers(0, n_items, n_edges)], 1), axis=0)
    bb = build_backbone("lightgcn", n_users, n_items, {"dim": 8, "layers": 2}, seed=seed)
    bb.requires_grad_(False)
    original = OriginalModel(bb, edges, n_users, n_items, {}, {}, seed, torch.device("cpu"))
    request = edges[rng.choice(len(edges), n_request, replace=False)]
    return UnlearningTask(original, request, remove_edges(edges, request, n_items))


def test_identity_operators_give_the_frozen_backbone_on_the_remaining_graph(original, task_for, block_a_request):
    task = task_for(original, block_a_request(original))
    out = METHODS["gnndelete"]({"epochs": 0}).unlearn(task, None)["gnndelete"]
    users, items = final_embeddings(original.backbone, original.backbone.embedding, task.remaining)
    assert torch.equal(out.user_emb, users) and torch.equal(out.item_emb, items)
    assert out.info["selected_epoch"] == 0 and "no validation" in out.info["selection"]


@pytest.mark.parametrize("seed", range(6))
def test_nodes_beyond_l_hops_of_the_request_keep_the_original_models_final_embeddings(seed):
    """The paper's locality property: only S_Df changes. Far nodes equal the ORIGINAL model (on the training
    graph, deleted edges included) bit for bit, while trained operators changed the near ones."""
    task = random_task(seed)
    o = task.original
    out = run(task)
    after = torch.cat([out.user_emb, out.item_emb])
    before = torch.cat(final_embeddings(o.backbone, o.backbone.embedding, o.trained_on))
    ends = np.unique(np.r_[task.request[:, 0], o.n_users + task.request[:, 1]])
    far = hop_distance(o.trained_on, ends, o.n_users, o.n_items) > o.backbone.layers
    assert far.any() and (~far).any()
    assert torch.equal(after[far], before[far])
    assert not torch.allclose(after[ends], before[ends])


def test_the_layer_0_operator_rewrites_the_endpoints_initial_rows_only():
    e0 = torch.randn(6, 3)
    adj = torch.eye(6).to_sparse_csr()
    w0 = torch.randn(3, 3)
    local = [torch.tensor([1, 4]), torch.arange(6)]
    stack = gnndelete.operated_stack(e0, adj, [w0, torch.eye(3)], local)
    assert torch.allclose(stack[0][[1, 4]], e0[[1, 4]] @ w0)
    assert torch.equal(stack[0][[0, 2, 3, 5]], e0[[0, 2, 3, 5]])
    assert torch.allclose(stack[1], stack[0])  # the operated layer 0 is what layer 1 propagates


def test_a_user_whose_every_edge_is_deleted_no_longer_keeps_its_trained_row(original, task_for):
    """Under LightGCN's sum readout an isolated user's final embedding is its E0 row: without an operator on
    layer 0 (the old behaviour) no training could change it, and its deleted items would keep their scores."""
    user = 3
    task = task_for(original, original.trained_on[original.trained_on[:, 0] == user])
    out = run(task)
    e0_row = original.backbone.embedding[user]
    none_users, none_items = final_embeddings(original.backbone, original.backbone.embedding, task.remaining)
    assert torch.equal(none_users[user], e0_row)  # the "none" row passes the trained row through
    assert not torch.allclose(out.user_emb[user], e0_row)
    deleted = score_pairs(out.user_emb, out.item_emb, task.request).mean()
    assert deleted < score_pairs(none_users, none_items, task.request).mean()


def test_the_neighbourhood_term_keeps_the_endpoints_other_pairs():
    """Every node an endpoint (as on an adversarial request, where the old node-level term, which left out every
    endpoint, was empty): the pairwise term still holds every user-item pair but the deleted ones, and keeps
    their scores closer to the original model's than training without it."""
    rng = np.random.default_rng(0)
    n = 8
    request = np.stack([np.arange(n), np.arange(n)], 1)  # a matching: every user and every item is an endpoint
    others = np.stack([rng.integers(0, n, 30), rng.integers(0, n, 30)], 1)
    edges = np.unique(np.r_[request, others], axis=0)
    bb = build_backbone("lightgcn", n, n, {"dim": 8, "layers": 2}, seed=0)
    bb.requires_grad_(False)
    original = OriginalModel(bb, edges, n, n, {}, {}, 0, torch.device("cpu"))
    task = UnlearningTask(original, request, remove_edges(edges, request, n))
    with_ni = run(task, {"ni_space": "score"})
    assert with_ni.info["local_nodes"][0] == 2 * n
    assert with_ni.info["ni_pairs"] == n * n - n and with_ni.info["last"]["ni"] > 0
    kept = remove_edges(np.argwhere(np.ones((n, n), dtype=bool)), request, n)
    ref = final_embeddings(bb, bb.embedding, edges)

    def drift(out):
        return np.abs(score_pairs(out.user_emb, out.item_emb, kept) - score_pairs(*ref, kept)).mean()

    assert drift(with_ni) < 0.8 * drift(run(task, {"ni_space": "score", "lambda_dec": 1.0}))


def test_the_sampled_block_estimates_the_exact_neighbourhood_term():
    torch.manual_seed(0)
    final, ref = torch.randn(30, 4), torch.randn(30, 4)
    local, request = torch.arange(30), torch.tensor([[0, 0], [3, 5]])

    def pairs(limit):
        return gnndelete.NeighbourhoodPairs(local, request, ref, 10, limit, "score", torch.Generator().manual_seed(0))

    exact = pairs(10_000)
    assert exact.exact and exact.n_pairs == 10 * 20 - 2
    keep = torch.ones(10, 20, dtype=torch.bool)
    keep[request[:, 0], request[:, 1]] = False  # every user-item pair but the deleted ones
    brute = ((final[:10] @ final[10:].T - ref[:10] @ ref[10:].T)[keep]).pow(2).mean()
    assert torch.isclose(exact.loss(final), brute)
    sampled = pairs(50)
    assert not sampled.exact and sampled.n_pairs == exact.n_pairs
    mean = torch.stack([sampled.loss(final) for _ in range(3000)]).mean()
    assert torch.isclose(mean, exact.loss(final), rtol=0.05)


def test_deleted_edges_move_towards_non_edges_and_the_other_block_is_untouched(original, task_for, block_a_request):
    task = task_for(original, block_a_request(original))
    before = torch.cat(final_embeddings(original.backbone, original.backbone.embedding, task.remaining))
    out = run(task)
    after = torch.cat([out.user_emb, out.item_emb])
    non_edges = sample_non_edges(N_USERS, N_ITEMS, [original.trained_on], 200, seed=3)

    def gap(emb):
        u, i = emb[:N_USERS], emb[N_USERS:]
        return abs(score_pairs(u, i, task.request).mean() - score_pairs(u, i, non_edges).mean())

    assert gap(after) < 0.5 * gap(before)
    block_b = np.r_[15:30, N_USERS + 10 : N_USERS + 20]
    assert torch.equal(after[block_b], before[block_b])


CHECKS = [  # constructed validation checks: epoch, Recall@20, the three AUCs
    {"epoch": 0, "recall@20": 0.30, "dt_auc": 0.95, "df_auc": 0.50, "nonedge_auc": 0.90},
    {"epoch": 10, "recall@20": 0.29, "dt_auc": 0.94, "df_auc": 0.70, "nonedge_auc": 0.80},
    {"epoch": 20, "recall@20": 0.25, "dt_auc": 0.93, "df_auc": 0.85, "nonedge_auc": 0.60},
    {"epoch": 30, "recall@20": 0.287, "dt_auc": 0.90, "df_auc": 0.92, "nonedge_auc": 0.70},
    {"epoch": 40, "recall@20": 0.28, "dt_auc": 0.80, "df_auc": 0.99, "nonedge_auc": 0.70},
    {"epoch": 50, "recall@20": 0.20, "dt_auc": 0.70, "df_auc": 1.00, "nonedge_auc": 0.40},
]


@pytest.mark.parametrize(
    ("rule", "tolerance", "checks", "kept"),
    [
        ("guard", 0.05, CHECKS, 30),  # floor 0.285: 0, 10, 30 pass; 30 forgets most (40 ties it but is below)
        ("guard", 0.10, CHECKS, 30),  # floor 0.27: 40 passes too and ties 30 on nonedge_auc: the earlier stays
        ("guard", 0.20, CHECKS, 20),  # floor 0.24: 20 passes and forgets most
        ("guard", 0.01, CHECKS, 0),  # no trained step keeps 99% of the utility: the identity (the "none" row)
        ("official", 0.05, CHECKS, 30),  # largest Dt-AUC + Df-AUC: 1.82
    ],
)
def test_selection_keeps_the_check_its_rule_names(rule, tolerance, checks, kept):
    assert checks[gnndelete.select_check(checks, rule, tolerance)]["epoch"] == kept


def test_the_guard_keeps_a_step_that_raises_deleted_edges_already_below_non_edges_towards_them():
    # an adversarial request: its injected edges start below random non-edges (AUC 0.39) and L_DEC lifts them
    checks = [
        {"epoch": 0, "recall@20": 0.77, "dt_auc": 0.8, "df_auc": 0.97, "nonedge_auc": 0.39},
        {"epoch": 10, "recall@20": 0.78, "dt_auc": 0.8, "df_auc": 0.96, "nonedge_auc": 0.43},
        {"epoch": 20, "recall@20": 0.78, "dt_auc": 0.8, "df_auc": 0.95, "nonedge_auc": 0.62},
    ]
    assert checks[gnndelete.select_check(checks, "guard", 0.05)]["epoch"] == 10


@pytest.fixture(scope="module")
def ranked():
    """Clustered tastes over 60 items (so Recall@20 can fall), LightGCN trained briefly; 12 edges to delete,
    which also serve as the validation pairs: forgetting them lowers their recall, so the guard binds."""
    n_users, n_items = 40, 60
    rng = np.random.default_rng(0)
    own = [rng.choice(np.flatnonzero(np.arange(n_items) % 3 == u % 3), 5, replace=False) for u in range(n_users)]
    edges = np.unique([(u, int(i)) for u in range(n_users) for i in [*own[u], rng.integers(n_items)]], axis=0)
    bb = build_backbone("lightgcn", n_users, n_items, {"dim": 8, "layers": 2}, seed=0)
    train_backbone(
        bb,
        edges,
        None,
        n_users,
        n_items,
        lr=0.05,
        batch_size=64,
        epochs=10,
        patience=1,
        eval_every=1,
        ks=(20,),
        seed=0,
        progress=False,
    )
    bb.requires_grad_(False)
    request = edges[rng.choice(len(edges), 12, replace=False)]
    original = OriginalModel(bb, edges, n_users, n_items, {}, {}, 0, torch.device("cpu"), valid=request)
    return UnlearningTask(original, request, remove_edges(edges, request, n_items))


@pytest.mark.parametrize(("rule", "tolerance"), [("guard", 0.01), ("official", 0.05)])
def test_the_kept_step_is_the_selected_check_and_its_embeddings_are_those_of_that_step(ranked, rule, tolerance):
    settings = {"select": rule, "guard_tolerance": tolerance, "valid_every": 5, "patience": 0}
    out = run(ranked, settings)
    info = out.info
    assert [c["epoch"] for c in info["checks"]] == list(range(0, FAST["epochs"] + 1, 5))
    picked = info["checks"][gnndelete.select_check(info["checks"], rule, tolerance)]
    assert info["selected_epoch"] == picked["epoch"] and info["selected"] == picked
    assert 0 < picked["epoch"] < FAST["epochs"]  # a trained step, not the last: selection did something
    assert info["selection"] == gnndelete.describe(rule, tolerance)
    # the same run without validation pairs, stopped at the kept step, ends with the embeddings the selection kept
    plain = UnlearningTask(dataclasses.replace(ranked.original, valid=None), ranked.request, ranked.remaining)
    plain = run(plain, {**settings, "epochs": picked["epoch"]})
    assert torch.equal(out.user_emb, plain.user_emb) and torch.equal(out.item_emb, plain.item_emb)
    assert plain.info["selection"] == gnndelete.NO_VALID and plain.info["selected_epoch"] == picked["epoch"]


def test_patience_ends_the_run_after_that_many_checks_without_a_better_one(original, task_for, block_a_request):
    valid = sample_non_edges(N_USERS, N_ITEMS, [original.trained_on], 40, seed=1)
    task = task_for(dataclasses.replace(original, valid=valid), block_a_request(original))
    info = run(task, {"epochs": 400, "valid_every": 5, "patience": 3}).info
    assert info["stop"] == "patience" and info["epochs_run"] < 400
    epochs = [c["epoch"] for c in info["checks"]]
    assert epochs[-1] == info["epochs_run"] and len(epochs) - 1 - epochs.index(info["selected_epoch"]) == 3


def test_registered_and_unknown_settings_refused():
    assert METHODS["gnndelete"] is gnndelete.GNNDelete
    with pytest.raises(ConfigError, match="unknown key"):
        gnndelete.GNNDelete({"no_such_setting": 1})


@pytest.mark.parametrize(
    "settings", [{"lambda_dec": 2.0}, {"select": "recall"}, {"ni_space": "logit"}, {"guard_tolerance": -0.1}]
)
def test_invalid_values_refused(settings):
    with pytest.raises(ConfigError):
        METHODS["gnndelete"](settings)
