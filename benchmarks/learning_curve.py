"""LightGCN's learning curve on a prepared split: validation Recall@20 and test Recall/NDCG with the field's mask.

Prints one JSON line per check (epoch, training seconds without the checks, validation Recall@20 with training
items masked, test Recall@10/20 and NDCG@20 with training + validation masked) and, at the end, the check that
validation picks. Used to choose the default recipe (docs/decisions.md, section "Backbone recipe"):

    recunlearn download --dataset ml-100k && recunlearn preprocess --dataset ml-100k
    python benchmarks/learning_curve.py results/ml-100k/split --lr 5e-3 --l2 2e-2 --batch 2048 --epochs 250
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from recunlearn.backbones import build_backbone
from recunlearn.data.split import load_split
from recunlearn.evaluation.ranking import evaluate_ranking, test_mask_edges
from recunlearn.graph.adjacency import GraphContext
from recunlearn.graph.sampling import BPRSampler


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("split", help="a split folder written by `recunlearn preprocess`")
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--l2", type=float, required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--readout", default="sum")
    p.add_argument("--every", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    s = load_split(args.split)
    settings = {"dim": args.dim, "layers": args.layers, "l2": args.l2, "readout": args.readout}
    model = build_backbone("lightgcn", s.n_users, s.n_items, settings, seed=0)
    ctx = GraphContext.from_edges(s.train, s.n_users, s.n_items, "cpu")
    sampler = BPRSampler(ctx.edges, s.n_users, s.n_items, seed=0, exclude=ctx.user_items)
    opt = torch.optim.Adam([model.embedding], lr=args.lr)
    known = test_mask_edges(s.train, s.valid, s.test, s.n_items, "known")
    trained, best = 0.0, None
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        for users, pos, neg in sampler.epoch(args.batch):
            loss, _ = model.loss(model.embedding, ctx, users, pos, neg)
            opt.zero_grad()
            loss.backward()
            opt.step()
        trained += time.perf_counter() - t0
        if epoch % args.every:
            continue
        with torch.no_grad():
            u, i = model.split(model(ctx.adj))
            valid = evaluate_ranking(u, i, s.train, s.valid, ks=(20,))["recall@20"]
            test = evaluate_ranking(u, i, known, s.test, ks=(10, 20))
        row = {"epoch": epoch, "seconds": round(trained, 1), "valid_recall@20": round(valid, 4)}
        row.update({k: round(v, 4) for k, v in test.items() if "@" in k})
        print(json.dumps(row), flush=True)
        if best is None or valid > best["valid_recall@20"]:
            best = row
    print("picked by validation:", json.dumps(best))


if __name__ == "__main__":
    main()
