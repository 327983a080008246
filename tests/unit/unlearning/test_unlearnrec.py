"""The Influence Encoder: exactness at init, a hand-computed forward pass, locality, and a dense reference."""

import numpy as np
import torch

from recunlearn.config import method_settings
from recunlearn.graph.adjacency import normalized_adjacency
from recunlearn.unlearning.unlearnrec.encoder import InfluenceEncoder, RequestGraph


def encoder(n_users, n_items, dim, **overrides) -> InfluenceEncoder:
    """An InfluenceEncoder at UnlearnRec's default settings, with `overrides` of its keyword arguments."""
    s = method_settings("unlearnrec")
    kwargs = {
        "layers": s["ie_layers"],
        "alpha": s["alpha"],
        "eta_init": s["eta_init"],
        "leaky_slope": s["leaky_slope"],
        "freeze_mlp": s["freeze_mlp"],
    }
    return InfluenceEncoder(n_users, n_items, dim, **{**kwargs, **overrides})


E0 = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])  # nodes: u0, u1, i0, i1
EBAR = torch.tensor([[10.0, 0.0], [0.0, 10.0], [1.0, 1.0], [0.0, -20.0]])
REQUEST = np.array([[0, 1]])  # one edge u0 - i1: local Â_del = [[0, 1], [1, 0]] (both degrees 1)


def hand_encoder(layers):
    enc = encoder(2, 2, 2, layers=layers, alpha=0.1, leaky_slope=0.5)
    with torch.no_grad():
        enc.h0.copy_(torch.tensor([[1.0, -1.0], [100.0, 100.0], [100.0, 100.0], [0.5, 0.0]]))
        enc.eta.copy_(torch.tensor([0.5, 9.0, 9.0, 0.25]))  # rows of u1 and i0 must have no effect
    return enc


def test_zero_influence_returns_e0_exactly():
    torch.manual_seed(0)
    e0, ebar = torch.randn(9, 8), torch.randn(9, 8)
    enc = encoder(4, 5, 8, layers=3, eta_init=0.0)
    req = enc.request_graph(np.array([[0, 1], [0, 2], [3, 2], [2, 4]]))
    assert torch.equal(enc(e0, ebar, req), e0)


def test_mlp_initialised_to_identity_and_frozen_by_default():
    enc = encoder(3, 3, 4, leaky_slope=0.99)
    linears = [m for m in enc.mlp if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 2
    for lin in linears:
        assert torch.equal(lin.weight, torch.eye(4)) and torch.equal(lin.bias, torch.zeros(4))
        assert not lin.weight.requires_grad
    x = torch.tensor([[1.0, -2.0, 0.0, 3.0]])
    assert torch.allclose(enc.mlp(x), torch.tensor([[1.0, -2.0 * 0.99**2, 0.0, 3.0]]))
    enc.freeze_mlp = False
    assert all(p.requires_grad for p in enc.mlp.parameters())
    assert enc.h0.requires_grad and enc.eta.requires_grad
    assert torch.equal(enc.h0, torch.zeros(6, 4)) and torch.allclose(enc.eta, torch.full((6,), 0.002))


def test_forward_by_hand_two_layers():
    # a = H0[u0] = (1, -1), b = H0[i1] = (0.5, 0). Â_del swaps u0 and i1, so with L = 2:
    #   H̄[u0] = a + b + a = (2.5, -2),   H̄[i1] = b + a + b = (2, -1)
    #   W̄ = Â² diag(η) Ē = diag(η) Ē:   W̄[u0] = 0.5 * (10, 0) = (5, 0),   W̄[i1] = 0.25 * (0, -20) = (0, -5)
    #   ΔE0[u0] = (2.5 - 0.5, -2 - 0) = (2, -2),   ΔE0[i1] = (2 - 0, -1 + 0.5) = (2, -0.5)
    #   MLP (identity, LeakyReLU 0.5 twice): negatives times 0.25 -> (2, -0.5) and (2, -0.125)
    enc = hand_encoder(layers=2)
    out = enc(E0, EBAR, enc.request_graph(REQUEST))
    expected = torch.tensor([[3.0, 1.5], [3.0, 4.0], [5.0, 6.0], [9.0, 7.875]])
    assert torch.equal(out, expected)


def test_forward_by_hand_one_layer():
    # L = 1: H̄[u0] = a + b = (1.5, -1) = H̄[i1];  W̄ = Â diag(η) Ē: W̄[u0] = 0.25 * (0, -20) = (0, -5),
    # W̄[i1] = 0.5 * (10, 0) = (5, 0);  ΔE0[u0] = (1.5, -0.5), ΔE0[i1] = (1, -1);  MLP -> (1.5, -0.125), (1, -0.25)
    enc = hand_encoder(layers=1)
    out = enc(E0, EBAR, enc.request_graph(REQUEST))
    expected = torch.tensor([[2.5, 1.875], [3.0, 4.0], [5.0, 6.0], [8.0, 7.75]])
    assert torch.equal(out, expected)


def test_only_request_nodes_change():
    torch.manual_seed(1)
    n_users, n_items, d = 6, 5, 4
    enc = encoder(n_users, n_items, d, layers=3, eta_init=0.3)
    with torch.no_grad():
        enc.h0.normal_()
    e0, ebar = torch.randn(11, d), torch.randn(11, d)
    request = np.array([[1, 0], [1, 3], [4, 3]])
    out = enc(e0, ebar, enc.request_graph(request))
    touched = torch.zeros(11, dtype=torch.bool)
    touched[[1, 4, n_users + 0, n_users + 3]] = True
    assert torch.equal(out[~touched], e0[~touched])
    assert (out[touched] != e0[touched]).any(dim=1).all()


def test_matches_dense_global_reference():
    """The local (request-nodes-only) computation equals the definition written with dense N x N matrices."""
    torch.manual_seed(2)
    n_users, n_items, d, L, alpha = 7, 6, 3, 3, 0.3
    n = n_users + n_items
    enc = encoder(n_users, n_items, d, layers=L, alpha=alpha, leaky_slope=0.7)
    with torch.no_grad():
        enc.h0.normal_()
        enc.eta.uniform_(0.0, 1.0)
        for m in enc.mlp:
            if isinstance(m, torch.nn.Linear):
                m.weight.normal_()
                m.bias.zero_()
    e0, ebar = torch.randn(n, d), torch.randn(n, d)
    request = np.array([[0, 0], [0, 2], [3, 2], [5, 5], [6, 5], [3, 0]])
    a = normalized_adjacency(request, n_users, n_items).to_dense().double()
    touched = (a.abs().sum(1) > 0).double()[:, None]
    h = enc.h0.detach().double() * touched
    hbar, x = h.clone(), h
    for _ in range(L):
        x = a @ x
        hbar += x
    w = enc.eta.detach().double()[:, None] * ebar.double()
    for _ in range(L):
        w = a @ w
    delta = (hbar - alpha * w).float()
    expected = e0 + touched.float() * enc.mlp(delta).detach()
    out = enc(e0, ebar, enc.request_graph(request))
    assert torch.allclose(out, expected, atol=1e-5)


def test_request_graph_local_ids_and_dropped_view():
    req = RequestGraph.build(np.array([[4, 2], [1, 2], [4, 0], [4, 2]]), n_users=5)  # duplicate collapses
    assert req.nodes.tolist() == [1, 4, 5 + 0, 5 + 2]
    assert len(req.local_edges) == 3
    assert req.to_local(torch.tensor([0, 4, 7, 6, 1])).tolist() == [1, 3, 0]  # 0 and 6 are untouched
    dense = req.adj.to_dense()
    assert torch.allclose(dense, dense.T)
    full = req.dropped_adjacency(1.0, torch.Generator().manual_seed(0)).to_dense()
    assert torch.allclose(full, dense)


def test_gradients_reach_h0_and_eta_of_touched_nodes_only():
    enc = encoder(3, 3, 2, layers=2)
    with torch.no_grad():
        enc.h0.fill_(0.1)
    e0, ebar = torch.randn(6, 2), torch.randn(6, 2)
    out = enc(e0, ebar, enc.request_graph(np.array([[0, 1], [2, 1]])))
    out.pow(2).sum().backward()
    touched = torch.tensor([True, False, True, False, True, False])
    assert (enc.h0.grad[~touched] == 0).all() and (enc.h0.grad[touched] != 0).any(dim=1).all()
    assert (enc.eta.grad[~touched] == 0).all() and (enc.eta.grad[touched] != 0).all()
    assert enc.mlp[0].weight.grad is None  # frozen MLP


# ---- pre-training and unlearning a request (unlearnrec.py) -------------------------------------------------
import inspect  # noqa: E402

import pytest  # noqa: E402

from recunlearn.backbones import build_backbone  # noqa: E402
from recunlearn.backbones.trainer import train_backbone  # noqa: E402
from recunlearn.errors import ConfigError  # noqa: E402
from recunlearn.evaluation.forgetting import score_pairs  # noqa: E402
from recunlearn.unlearning.unlearnrec.pretrain import keeps, pretrain_influence_encoder  # noqa: E402
from recunlearn.unlearning.unlearnrec.unlearn import unlearn_request  # noqa: E402

N_USERS, N_ITEMS = 30, 20


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny graphs: thread start-up and contention cost more than they save (10x slower on a busy 2-core box)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(0)
    edges = np.unique(np.stack([rng.integers(0, N_USERS, 320), rng.integers(0, N_ITEMS, 320)], 1), axis=0)
    bb = build_backbone("lightgcn", N_USERS, N_ITEMS, {"dim": 16, "layers": 2}, seed=0)
    train_backbone(
        bb,
        edges,
        None,
        N_USERS,
        N_ITEMS,
        lr=0.05,
        batch_size=512,
        epochs=30,
        patience=1,
        eval_every=1,
        ks=(20,),
        progress=False,
    )
    request = edges[rng.choice(len(edges), 15, replace=False)]
    return bb, edges, request


FAST = method_settings(
    "unlearnrec", {"epochs": 12, "batch_size": 512, "lr": 0.01, "u_batch_size": 64, "heldout_every": 3}
)
BUDGET = {**FAST, "select": "budget", "resample_every": 100}  # one simulated request: comparable epochs


@pytest.fixture(scope="module")
def pretrained(tiny):
    bb, edges, _ = tiny
    before = bb.embedding.detach().clone()
    state, report = pretrain_influence_encoder(bb, edges, N_USERS, N_ITEMS, BUDGET, seed=0)
    assert torch.equal(bb.embedding.detach(), before)  # the backbone is frozen
    return state, report


def test_settings_defaults_and_validation():
    assert method_settings("unlearnrec")["select"] == "guard"
    assert method_settings("unlearnrec", {"alpha": 0.5})["alpha"] == 0.5
    with pytest.raises(ConfigError, match="unknown key 'method_settings.unlearnrec.alhpa'"):
        method_settings("unlearnrec", {"alhpa": 0.5})
    with pytest.raises(ConfigError, match=r"method_settings.unlearnrec.select: 'test_request' is not one of"):
        method_settings("unlearnrec", {"select": "test_request"})


def test_pretraining_api_cannot_take_the_evaluated_request(tiny):
    params = inspect.signature(pretrain_influence_encoder).parameters
    assert not any("request" in p or "test" in p for p in params)
    bb, edges, request = tiny
    with pytest.raises(TypeError):
        pretrain_influence_encoder(bb, edges, N_USERS, N_ITEMS, FAST, 0, request_edges=request)


def test_pretraining_lowers_the_loss_and_moves_the_state(tiny, pretrained):
    bb, edges, _ = tiny
    state, report = pretrained
    losses = [row["loss"] for row in report["history"]]
    assert len(losses) == 12 and losses[-1] < losses[0]
    assert all(k in report["history"][0] for k in ("l_m", "l_u", "l_p", "l_c", "bpr"))
    assert report["selected_epoch"] == 12 and report["n_simulated_requests"] == 1
    assert state["h0"].abs().sum() > 0 and not torch.allclose(state["eta"], torch.full_like(state["eta"], 0.002))
    assert torch.equal(state["mlp.0.weight"], torch.eye(16))  # frozen MLP by default
    again, _ = pretrain_influence_encoder(bb, edges, N_USERS, N_ITEMS, BUDGET, seed=0)
    assert all(torch.equal(state[k], again[k]) for k in state)  # same seed, same state


def _select(rule: str, rows: list[dict], tolerance: float = 0.25) -> int:
    """The epoch the online rule ends with, replaying the checks in order as pre-training does."""
    best = rows[0]
    for row in rows[1:]:
        if keeps(rule, row, rows[0], best, tolerance):
            best = row
    return best["epoch"]


def _checks(gaps, bprs, w=1.0):
    return [
        {"epoch": 5 * i, "gap": g, "bpr": b, "criterion": max(g, 0) + w * b} for i, (g, b) in enumerate(zip(gaps, bprs))
    ]


def test_the_guard_keeps_the_trained_encoder_when_training_costs_a_little_utility():
    # the review's measured shape: on a random held-out request the gap barely moves while training raises the
    # held-out BPR by 10-20%; the encoder forgets the real request better with every epoch
    rows = _checks(gaps=[0.382, 0.394, 0.390, 0.388, 0.385], bprs=[0.129, 0.150, 0.152, 0.148, 0.145])
    assert _select("guard", rows) == 20
    assert _select("heldout", rows) == 0  # the earlier rule throws that encoder away


def test_the_guard_refuses_states_that_cost_too_much_utility_and_keeps_the_latest_that_do_not():
    rows = _checks(gaps=[0.4, 0.3, 0.2, 0.1], bprs=[0.10, 0.11, 0.20, 0.35])  # x1.1 kept, then x2 and x3.5 refused
    assert _select("guard", rows) == 5
    assert _select("guard", rows, tolerance=1.0) == 10
    assert _select("guard", _checks([0.4, 0.1], [0.10, 0.27])) == 0  # every trained state too costly


def test_pretraining_with_the_guard_records_the_trajectory_and_keeps_the_latest_passing_check(tiny):
    bb, edges, _ = tiny
    settings = {**FAST, "select": "guard", "guard_tolerance": 1e6}
    _, report = pretrain_influence_encoder(bb, edges, N_USERS, N_ITEMS, settings, seed=1)
    assert [row["epoch"] for row in report["selection"]] == [0, 3, 6, 9, 12]
    assert all(row["kept"] for row in report["selection"])
    assert report["selected_epoch"] == 12 and report["untrained_selected"] is False


@pytest.mark.parametrize("guard_stop", [True, False])
def test_pretraining_ends_at_the_first_check_the_guard_rejects_unless_told_to_run_every_epoch(
    tiny, monkeypatch, guard_stop
):
    from recunlearn.unlearning.unlearnrec import pretrain

    bb, edges, _ = tiny
    monkeypatch.setattr(pretrain, "keeps", lambda rule, row, *rest: row["epoch"] < 6)  # epoch 6 on is too costly
    settings = {**FAST, "select": "guard", "guard_stop": guard_stop}
    _, report = pretrain_influence_encoder(bb, edges, N_USERS, N_ITEMS, settings, seed=1)
    assert report["selected_epoch"] == 3
    if guard_stop:
        assert report["stop_reason"] == "guard" and report["epochs_run"] == 6 and len(report["history"]) == 6
        assert [row["epoch"] for row in report["selection"]] == [0, 3, 6]
    else:
        assert report["stop_reason"] == "budget" and report["epochs_run"] == 12
        assert [row["epoch"] for row in report["selection"]] == [0, 3, 6, 9, 12]


def test_keeping_the_untrained_encoder_is_warned_about_and_reported(tiny, monkeypatch):
    from recunlearn.unlearning.unlearnrec import pretrain

    bb, edges, _ = tiny
    monkeypatch.setattr(pretrain, "keeps", lambda *args: False)
    with pytest.warns(UserWarning, match="UNTRAINED Influence Encoder"):
        state, report = pretrain_influence_encoder(bb, edges, N_USERS, N_ITEMS, FAST, seed=1)
    assert report["selected_epoch"] == 0 and report["untrained_selected"] is True
    assert state["h0"].abs().sum() == 0  # the initial state, as it was before any step


def test_no_preparation_job_reads_a_request_file(tmp_path, tiny_project):
    from recunlearn.config import load_config
    from recunlearn.data.requests import request_ids
    from recunlearn.pipeline import layout
    from recunlearn.pipeline.kinds import evaluated_request_ids
    from recunlearn.pipeline.plan import build_plan

    cfg = load_config(tiny_project(tmp_path))
    plan = build_plan(cfg)
    requests = {
        layout.request_path(cfg, d, b, seed, rid)
        for d in cfg["datasets"]
        for b in cfg["backbones"]
        for seed in cfg["seeds"]
        for rid in evaluated_request_ids(cfg)
    }
    requests |= {layout.request_file(cfg, d, rid) for d in cfg["datasets"] for rid in request_ids(cfg["requests"])}
    prepare = plan.jobs("prepare")
    assert prepare and requests
    # the attacked model's graph contains the injected edges, but no job's input names the request to forget
    assert all(not requests & set(job.deps) for job in prepare)
    assert all(requests & set(job.deps) for job in plan.jobs("unlearn"))  # the check can see a request file


def test_pretraining_heldout_selection(tiny):
    bb, edges, _ = tiny
    settings = {**FAST, "resample_every": 4, "select": "heldout"}
    state, report = pretrain_influence_encoder(bb, edges, N_USERS, N_ITEMS, settings, seed=1)
    sel = report["selection"]
    assert [row["epoch"] for row in sel] == [0, 3, 6, 9, 12]
    assert report["n_simulated_requests"] == 3 and report["heldout_edges"] > 0
    best = min(sel, key=lambda row: row["criterion"])
    assert report["selected_epoch"] == best["epoch"]
    assert all(row["criterion"] == pytest.approx(max(row["gap"], 0) + row["bpr"]) for row in sel)
    assert set(state) == {"h0", "eta", "mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"}


def test_unlearn_request_lowers_deleted_scores(tiny, pretrained):
    bb, edges, request = tiny
    before = bb.embedding.detach().clone()
    state, _ = pretrained
    out = unlearn_request(
        bb,
        state,
        edges,
        request,
        N_USERS,
        N_ITEMS,
        method_settings("unlearnrec", {"ft_batch_size": 128, "ft_check_every": 1, "ft_u_batch_size": 8, "ft_lr": 0.01}),
        seed=0,
    )
    with torch.no_grad():
        original = bb.split(bb(normalized_adjacency(edges, N_USERS, N_ITEMS)))
        no_ie = bb.split(bb(normalized_adjacency(out.remaining_edges, N_USERS, N_ITEMS)))
    s_orig = score_pairs(*original, request).mean()
    s_no_ie = score_pairs(*no_ie, request).mean()  # backbone on the remaining graph, no IE (method.md 10)
    s_ie = score_pairs(*bb.split(out.final_ie), request).mean()
    s_ft = score_pairs(*bb.split(out.final_ft), request).mean()
    assert s_orig > s_no_ie > s_ie > s_ft  # the pre-trained IE adds forgetting; the fine-tune adds more
    assert set(out.timings) >= {"ie_forward_s", "ie_encode_s", "ie_propagate_s", "finetune_s", "total_s"}
    assert all(v >= 0 for v in out.timings.values())
    t = out.timings
    assert t["ie_forward_s"] == pytest.approx(t["ie_encode_s"] + t["ie_propagate_s"])  # the IE's own share apart
    assert out.timings["total_s"] >= out.timings["ie_forward_s"] + out.timings["finetune_s"]
    assert out.e0_ie.shape == out.e0_ft.shape == out.final_ie.shape == out.final_ft.shape == (50, 16)
    assert not torch.equal(out.e0_ie, out.e0_ft) and out.history and out.stop_reason in ("criteria", "max_epochs")
    assert {"deleted_mean", "nonedge_mean", "forgetting_ok", "utility_ok"} <= set(out.history[0])
    keys = set((out.remaining_edges[:, 0] * N_ITEMS + out.remaining_edges[:, 1]).tolist())
    assert len(out.remaining_edges) == len(edges) - len(request)
    assert not keys & set((request[:, 0] * N_ITEMS + request[:, 1]).tolist())
    assert torch.equal(bb.embedding.detach(), before)
    # no fine-tune: ie_ft is ie_only; the IE forward alone equals the pre-trained encoder applied by hand
    no_ft = method_settings("unlearnrec", {"ft_max_epochs": 0})
    plain = unlearn_request(bb, state, edges, request, N_USERS, N_ITEMS, no_ft, seed=0)
    assert torch.equal(plain.e0_ft, plain.e0_ie) and torch.equal(plain.e0_ie, out.e0_ie)


def test_the_fine_tune_runs_its_fixed_budget_by_default(tiny, pretrained):
    bb, edges, request = tiny
    state, _ = pretrained
    settings = method_settings("unlearnrec", {"ft_batch_size": 64, "ft_check_every": 1, "ft_max_epochs": 2})
    assert settings["ft_stop"] == "max_epochs"
    out = unlearn_request(bb, state, edges, request, N_USERS, N_ITEMS, settings, seed=0)
    assert out.stop_reason == "max_epochs" and out.history[-1]["epoch"] == 2


def test_unlearn_request_stops_on_criteria(tiny, pretrained):
    bb, edges, request = tiny
    state, _ = pretrained
    settings = method_settings(
        "unlearnrec",
        {
            "ft_batch_size": 64,
            "ft_check_every": 1,
            "ft_lambda_u": 5.0,
            "ft_lr": 0.05,
            "ft_tol": 1.0,
            "ft_max_epochs": 50,
            "ft_stop": "criteria",
        },
    )
    out = unlearn_request(bb, state, edges, request, N_USERS, N_ITEMS, settings, seed=0)
    assert out.stop_reason == "criteria"
    last = out.history[-1]
    assert last["forgetting_ok"] and last["utility_ok"] and last["epoch"] < 50
    full = unlearn_request(
        bb, state, edges, request, N_USERS, N_ITEMS, {**settings, "ft_stop": "max_epochs", "ft_max_epochs": 2}, seed=0
    )
    assert full.stop_reason == "max_epochs" and full.history[-1]["epoch"] == 2


def test_unlearn_request_rejects_unknown_pairs(tiny):
    from recunlearn.errors import RequestError

    bb, edges, _ = tiny
    keys = set((edges[:, 0] * N_ITEMS + edges[:, 1]).tolist())
    missing = next(np.array([[u, i]]) for u in range(N_USERS) for i in range(N_ITEMS) if u * N_ITEMS + i not in keys)
    with pytest.raises(RequestError):
        unlearn_request(bb, {}, edges, missing, N_USERS, N_ITEMS, {}, seed=0)
    with pytest.raises(RequestError):
        unlearn_request(bb, {}, edges, np.empty((0, 2), dtype=np.int64), N_USERS, N_ITEMS, {}, seed=0)


def test_unfrozen_mlp_learns_during_pretraining(tiny):
    bb, edges, _ = tiny
    state, _ = pretrain_influence_encoder(
        bb, edges, N_USERS, N_ITEMS, {**BUDGET, "epochs": 3, "freeze_mlp": False}, seed=0
    )
    assert not torch.equal(state["mlp.0.weight"], torch.eye(16))


@pytest.mark.parametrize("name", ["sgl", "simgcl"])
def test_ssl_backbones_run_end_to_end(tiny, name):
    _, edges, request = tiny
    bb = build_backbone(name, N_USERS, N_ITEMS, {"dim": 8, "layers": 2}, seed=0)
    train_backbone(
        bb,
        edges,
        None,
        N_USERS,
        N_ITEMS,
        lr=0.05,
        batch_size=512,
        epochs=5,
        patience=1,
        eval_every=1,
        ks=(20,),
        progress=False,
    )
    state, report = pretrain_influence_encoder(bb, edges, N_USERS, N_ITEMS, {**FAST, "epochs": 2}, seed=0)
    assert "ssl" in report["history"][0]
    one_epoch = method_settings("unlearnrec", {"ft_max_epochs": 1})
    out = unlearn_request(bb, state, edges, request, N_USERS, N_ITEMS, one_epoch, seed=0)
    assert torch.isfinite(out.final_ft).all() and torch.isfinite(out.final_ie).all()
