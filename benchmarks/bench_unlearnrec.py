"""UnlearnRec's per-request cost at MovieLens-1M scale, side by side with the backbone's training cost.

Measured in one process on the same synthetic graph as bench_backbones.py (6,040 users x 3,706 items x 1M edges),
d = 64, 3 layers, 2 threads:
- the IE forward pass for a request of 1% of the edges (target: under 1 s);
- the whole unlearning call (IE forward + fine-tune with the default stopping rule);
- one backbone training epoch, and Retrain's cost estimated as `--retrain-epochs` such epochs (a LightGCN run at
  lr 1e-3 to convergence takes a few hundred; the default pipeline's measured Retrain times are in its table).
Pre-training is not timed here (a one-off cost, reported by the pipeline). Recorded results: docs/decisions.md,
section "UnlearnRec".

    python benchmarks/bench_unlearnrec.py [--retrain-epochs 100] [--request-fraction 0.01]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from bench_backbones import synthetic_graph

from recunlearn.backbones import build_backbone
from recunlearn.config import method_settings
from recunlearn.graph.adjacency import GraphContext
from recunlearn.graph.sampling import BPRSampler
from recunlearn.unlearning.unlearnrec.encoder import build_encoder
from recunlearn.unlearning.unlearnrec.unlearn import unlearn_request

N_USERS, N_ITEMS = 6040, 3706


def time_ie_forward(backbone, train, request, repeats=5) -> float:
    """Median seconds of: request graph + IE forward (Ẽ0) + one propagation on the remaining graph."""
    enc = build_encoder(backbone, method_settings("unlearnrec"))
    with torch.no_grad():
        enc.h0.normal_(0, 0.01)
        ctx = GraphContext.from_edges(train, N_USERS, N_ITEMS)
        ebar = backbone(ctx.adj)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        with torch.no_grad():
            req = enc.request_graph(request, "cpu")
            e0 = enc(backbone.embedding, ebar, req)
            backbone.propagate(e0, ctx.adj)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_training_epoch(backbone, train) -> float:
    ctx = GraphContext.from_edges(train, N_USERS, N_ITEMS)
    sampler = BPRSampler(train, N_USERS, N_ITEMS, seed=0, exclude=ctx.user_items)
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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)  # its first call is slow: keep it out of timings
    train, _ = synthetic_graph(0)
    rng = np.random.default_rng(1)
    request = train[np.sort(rng.choice(len(train), int(args.request_fraction * len(train)), replace=False))]
    backbone = build_backbone("lightgcn", N_USERS, N_ITEMS, {"dim": 64, "layers": 3}, seed=0)
    backbone.requires_grad_(False)
    ie = time_ie_forward(backbone, train, request)
    state = build_encoder(backbone, method_settings("unlearnrec")).state_dict()
    start = time.perf_counter()
    out = unlearn_request(backbone, state, train, request, N_USERS, N_ITEMS, method_settings("unlearnrec"), seed=0)
    unlearn_total = time.perf_counter() - start
    backbone.requires_grad_(True)
    epoch = time_training_epoch(backbone, train)
    retrain = epoch * args.retrain_epochs
    rows = [
        ("IE forward (request graph + IE + one propagation)", f"{ie:.3f} s", "< 1 s", ie < 1.0),
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
        f"synthetic graph {N_USERS} x {N_ITEMS}, {len(train):,} edges; request {len(request):,} edges; "
        f"d=64, 3 layers, {args.threads} threads\n"
    )
    print("| measure | value | target | result |\n|---|---|---|---|")
    for name, value, target, ok in rows:
        print(f"| {name} | {value} | {target} | {'-' if ok is None else ('PASS' if ok else 'FAIL')} |")


if __name__ == "__main__":
    main()
