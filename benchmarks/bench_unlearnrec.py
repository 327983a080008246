"""UnlearnRec's per-request cost at MovieLens-1M scale, side by side with the backbone's training cost.

Measured in one process on the same synthetic graph as bench_backbones.py (6,040 users x 3,706 items x 1M edges),
or on a prepared split (`--split results/ml-1m/split`), d = 64 (`--dim`), 3 layers, 2 threads:
- the IE forward pass, its parts apart: the request graph, the encoder (ΔE0 and Ẽ0) and the backbone's
  propagation of Ẽ0 on the remaining graph, which scoring any model needs (targets: the IE, request graph +
  encoder, under 100 ms; all three under 1 s). The request is 1% of the edges, or with `--request every-node` one
  training edge of every user and one of every item, the footprint of the adversarial request with r = 1;
- the whole unlearning call (IE forward + fine-tune with the default stopping rule);
- one backbone training epoch, and Retrain's cost estimated as `--retrain-epochs` such epochs (a LightGCN run at
  lr 1e-3 to convergence takes a few hundred; the default pipeline's measured Retrain times are in its table).
Pre-training is not timed here (a one-off cost, reported by the pipeline). Recorded results: docs/decisions.md,
section "UnlearnRec".

    python benchmarks/bench_unlearnrec.py [--retrain-epochs 100] [--request-fraction 0.01]
    python benchmarks/bench_unlearnrec.py --split results/ml-1m/split --dim 128 --request every-node
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from bench_backbones import N_ITEMS, N_USERS, synthetic_graph

from recunlearn.backbones import build_backbone
from recunlearn.config import method_settings
from recunlearn.data.split import load_split
from recunlearn.graph.adjacency import GraphContext
from recunlearn.graph.sampling import BPRSampler
from recunlearn.unlearning.unlearnrec.encoder import build_encoder
from recunlearn.unlearning.unlearnrec.unlearn import unlearn_request

IE_PARTS = ("request graph", "encoder", "propagation")


def every_node_request(train: np.ndarray, seed: int) -> np.ndarray:
    """One training edge of every user and one of every item (the nodes an r = 1 adversarial request touches)."""
    shuffled = train[np.random.default_rng(seed).permutation(len(train))]
    _, first_of_user = np.unique(shuffled[:, 0], return_index=True)
    _, first_of_item = np.unique(shuffled[:, 1], return_index=True)
    return np.unique(shuffled[np.concatenate([first_of_user, first_of_item])], axis=0)


def time_ie_forward(backbone, train, request, n_users, n_items, repeats=5) -> dict[str, float]:
    """Median seconds of each part of the IE forward (`IE_PARTS`) and of their sum ("total"); one call first,
    untimed, so that the first sparse product's allocations are not counted.

    Args:
        backbone: the (untrained) backbone whose table E0 the encoder changes.
        train: (E, 2) training edges; the propagation runs on their graph.
        request: (R, 2) the request's edges.
        n_users: number of users.
        n_items: number of items.
        repeats: timed calls after the untimed one.
    """
    enc = build_encoder(backbone, method_settings("unlearnrec"))
    with torch.no_grad():
        enc.h0.normal_(0, 0.01)
        ctx = GraphContext.from_edges(train, n_users, n_items)
        ebar = backbone(ctx.adj)
    times = {part: [] for part in (*IE_PARTS, "total")}
    for _ in range(repeats + 1):
        with torch.no_grad():
            t0 = time.perf_counter()
            req = enc.request_graph(request, "cpu")
            t1 = time.perf_counter()
            e0 = enc(backbone.embedding, ebar, req)
            t2 = time.perf_counter()
            backbone.propagate(e0, ctx.adj)
            t3 = time.perf_counter()
        for part, seconds in zip(IE_PARTS, (t1 - t0, t2 - t1, t3 - t2)):
            times[part].append(seconds)
        times["total"].append(t3 - t0)
    return {part: statistics.median(values[1:]) for part, values in times.items()}


def time_training_epoch(backbone, train, n_users, n_items) -> float:
    ctx = GraphContext.from_edges(train, n_users, n_items)
    sampler = BPRSampler(train, n_users, n_items, seed=0, exclude=ctx.user_items)
    opt = torch.optim.Adam([backbone.embedding], lr=1e-3)
    start = time.perf_counter()
    for users, pos, neg in sampler.epoch(4096):
        loss, _ = backbone.loss(backbone.embedding, ctx, users, pos, neg)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retrain-epochs", type=int, default=100)
    parser.add_argument("--request-fraction", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--split", help="a split folder written by `recunlearn preprocess` (default: synthetic)")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--request", choices=["fraction", "every-node"], default="fraction")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)  # its first call is slow: keep it out of timings
    if args.split:
        split = load_split(args.split)
        train, n_users, n_items, graph = split.train, split.n_users, split.n_items, args.split
    else:
        train, _ = synthetic_graph(0)
        n_users, n_items, graph = N_USERS, N_ITEMS, "synthetic graph"
    if args.request == "every-node":
        request = every_node_request(train, seed=1)
    else:
        rng = np.random.default_rng(1)
        request = train[np.sort(rng.choice(len(train), int(args.request_fraction * len(train)), replace=False))]
    backbone = build_backbone("lightgcn", n_users, n_items, {"dim": args.dim, "layers": 3}, seed=0)
    backbone.requires_grad_(False)
    ie = time_ie_forward(backbone, train, request, n_users, n_items)
    state = build_encoder(backbone, method_settings("unlearnrec")).state_dict()
    start = time.perf_counter()
    out = unlearn_request(backbone, state, train, request, n_users, n_items, method_settings("unlearnrec"), seed=0)
    unlearn_total = time.perf_counter() - start
    backbone.requires_grad_(True)
    epoch = time_training_epoch(backbone, train, n_users, n_items)
    retrain = epoch * args.retrain_epochs
    own = ie["request graph"] + ie["encoder"]
    rows = [
        *[(f"IE forward: {part}", f"{1e3 * ie[part]:.1f} ms", "-", None) for part in IE_PARTS],
        ("IE forward without the propagation (request graph + encoder)", f"{1e3 * own:.1f} ms", "< 100 ms", own < 0.1),
        ("IE forward with the propagation", f"{1e3 * ie['total']:.1f} ms", "< 1 s", ie["total"] < 1.0),
        (
            "unlearning call: IE + fine-tune (" + out.stop_reason + ")",
            f"{unlearn_total:.1f} s (fine-tune {out.timings['finetune_s']:.1f} s, {len(out.history)} checks)",
            "-",
            None,
        ),
        ("one backbone training epoch", f"{epoch:.1f} s", "-", None),
        (f"Retrain estimate ({args.retrain_epochs} epochs)", f"{retrain:.0f} s", "-", None),
        (
            "speed-up of unlearning over Retrain",
            f"{retrain / unlearn_total:.1f}x",
            ">= 10x",
            retrain / unlearn_total >= 10,
        ),
    ]
    print(
        f"{graph}: {n_users} x {n_items}, {len(train):,} edges; request ({args.request}) {len(request):,} edges "
        f"on {len(np.unique(request[:, 0]))} users and {len(np.unique(request[:, 1]))} items; "
        f"d={args.dim}, 3 layers, {args.threads} threads\n"
    )
    print("| measure | value | target | result |\n|---|---|---|---|")
    for name, value, target, ok in rows:
        print(f"| {name} | {value} | {target} | {'-' if ok is None else ('PASS' if ok else 'FAIL')} |")


if __name__ == "__main__":
    main()
