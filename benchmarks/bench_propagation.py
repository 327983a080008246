"""How close LightGCN's propagation is to what this machine's memory allows, at d = 64 and d = 128 on ML-1M.

One sparse product Â X (Â the normalised bipartite adjacency, X an N x d table) reads the CSR arrays once
(8-byte column index + 4-byte value per non-zero, from DRAM: 19 MB on ML-1M) and gathers one row of X per
non-zero (nnz x d x 4 bytes: 0.4-0.8 GB). X itself is 2.5-5 MB, so the gathered rows come from the CPU's caches,
not from DRAM. The bound that matters is therefore the cache-resident copy rate, measured here on a buffer of
X's size; the DRAM copy rate (a 512 MB buffer) is printed beside it. The table gives, per d:
- the time of one product (best of `--repeats`), the rate at which it gathers rows, and that rate as a share of
  the cache-resident copy rate (a copy reads and writes each byte: its rate counts both);
- one training step of the pipeline's trainer (3 products forward, 3 backward, BPR + L2, Adam) at `--batch`,
  and the epoch that step count implies.
The figures are quoted in docs/decisions.md, section "ML-1M".

    recunlearn download --dataset ml-1m && recunlearn preprocess --dataset ml-1m   (or any prepared split)
    python benchmarks/bench_propagation.py results/ml-1m/split --threads 2
"""

from __future__ import annotations

import argparse
import time

import torch

from recunlearn.backbones import build_backbone
from recunlearn.data.split import load_split
from recunlearn.graph.adjacency import GraphContext, propagate
from recunlearn.graph.sampling import BPRSampler


def best_of(fn, repeats: int) -> float:
    """Minimum wall seconds of `fn()` over `repeats` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def copy_rate(n_bytes: int, repeats: int) -> float:
    """GB/s of `dst.copy_(src)` on float32 buffers of `n_bytes` each, counting the read and the write."""
    src = torch.rand(n_bytes // 4)
    dst = torch.empty_like(src)
    return 2 * n_bytes / best_of(lambda: dst.copy_(src), repeats) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("split", help="a split folder written by `recunlearn preprocess`")
    ap.add_argument("--dims", default="64,128")
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16384)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    s = load_split(args.split)
    ctx = GraphContext.from_edges(s.train, s.n_users, s.n_items, "cpu")
    n, nnz = s.n_users + s.n_items, ctx.adj.values().numel()
    sampler = BPRSampler(ctx.edges, s.n_users, s.n_items, seed=0, exclude=ctx.user_items)
    steps = sampler.n_batches(args.batch)
    dram = copy_rate(512 * 2**20, 3)
    print(
        f"{args.split}: {n:,} nodes, {nnz:,} non-zeros; {args.threads} threads; DRAM copy {dram:.1f} GB/s; "
        f"{steps} steps per epoch at batch {args.batch}"
    )
    print(
        "\n| d | one Â X | rows gathered | cache copy (X's size) | share | training step | epoch |"
        "\n|---|---|---|---|---|---|---|"
    )
    for dim in map(int, args.dims.split(",")):
        spmm, cache, t_step = measure(ctx, s.n_users, s.n_items, sampler, dim, args)
        gathered = nnz * dim * 4 / spmm / 1e9
        print(
            f"| {dim} | {spmm * 1e3:.1f} ms | {gathered:.1f} GB/s | {cache:.1f} GB/s | {gathered / cache:.0%} "
            f"| {t_step * 1e3:.0f} ms | {t_step * steps:.1f} s |"
        )


def measure(ctx, n_users, n_items, sampler, dim, args) -> tuple[float, float, float]:
    """(seconds of one Â X, cache-resident copy GB/s on X's size, seconds of one training step) at `dim`.

    Args:
        ctx: the training graph (its normalised adjacency is propagated over).
        n_users: number of users.
        n_items: number of items.
        sampler: BPR sampler over the training edges (one batch of `args.batch` is timed).
        dim: embedding dimension.
        args: the parsed command line (`layers`, `batch`, `repeats`).
    """
    x = torch.rand(n_users + n_items, dim)
    spmm = best_of(lambda: propagate(ctx.adj, x), args.repeats)
    cache = copy_rate(x.numel() * 4, args.repeats * 10)
    model = build_backbone("lightgcn", n_users, n_items, {"dim": dim, "layers": args.layers}, seed=0)
    opt = torch.optim.Adam([model.embedding], lr=1e-3)
    users, pos, neg = next(iter(sampler.epoch(args.batch)))

    def step():
        loss, _ = model.loss(model.embedding, ctx, users, pos, neg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return spmm, cache, best_of(step, args.repeats)


if __name__ == "__main__":
    main()
