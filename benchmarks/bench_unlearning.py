"""Retrain and every unlearning method on the same request, side by side in one process: time, utility, forgetting.

The pipeline's tables time each method in its own job, possibly beside other jobs. This benchmark removes that
doubt: one process, the same threads, the same request, the same trained model, every method and Retrain run
`--repeats` times in turn (round-robin, so a change in machine load hits them all), reporting the median and the
spread (min-max) of the seconds each reports (the pipeline's `seconds` column), and, from the first repeat, the
utility and forgetting figures the pipeline's judge gives (`recunlearn.evaluation.protocol`, the forgetting error
against this Retrain). The speed-up is Retrain's median time to its best epoch over the method's median seconds,
as in the tables. One-off preparations (IE pre-training, SISA's shards) run once and are shown apart.

The data, split, recipe and method settings come from the config (default: config/config.yaml), so the figures
are those of the default run's setting; `--dataset ml-1m` gives the ML-1M scale (downloaded from its registry
mirror on first use). Requests: `random-<fraction>`, `users-<core|edge|random>-<fraction>` (drawn as the pipeline
draws them) or `adversarial-<ratio>` (the attack injected into the clean model's graph; Retrain is the clean
model, as in the pipeline). Recorded results: README, section "Performance".

    python benchmarks/bench_unlearning.py                                    # ML-100K, random-0.01, 3 repeats
    python benchmarks/bench_unlearning.py --request adversarial-1 --methods none,unlearnrec,gif
    python benchmarks/bench_unlearning.py --dataset ml-1m --repeats 1
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from recunlearn.config import DEFAULT_CONFIG_PATH, load_config
from recunlearn.data.adversarial import adversarial_edges, attacked_training_set
from recunlearn.data.requests import generate_request
from recunlearn.data.split import load_split
from recunlearn.evaluation.forgetting import forgetting_error
from recunlearn.evaluation.protocol import evaluate_unlearned
from recunlearn.graph.edges import remove_request
from recunlearn.pipeline import layout
from recunlearn.pipeline.kinds import ADVERSARIAL_PREFIX
from recunlearn.stages import data
from recunlearn.stages._runtime import configure_torch
from recunlearn.stages.train import fit
from recunlearn.stages.unlearn import forgetting_reference
from recunlearn.unlearning import build_method
from recunlearn.unlearning.base import OriginalModel, UnlearningTask, final_embeddings

COLUMNS = ["recall@20", "ndcg@20", "rank_ks", "rank_shift", "auc_error", "mia_member_rate"]


def load_data(cfg: dict, dataset: str):
    """The dataset's split, downloaded and preprocessed into the config's results folder on first use."""
    if not all(Path(f).exists() for f in layout.split_files(cfg, dataset)):
        data.download(cfg, dataset)
        data.preprocess(cfg, dataset)
    return load_split(layout.split_dir(cfg, dataset))


class Retrain:
    """Retrain of one request: a fresh backbone trained on the remaining graph with the configured recipe."""

    def __init__(self, cfg, backbone, split, remaining, seed, device):
        """Args:
        cfg: the validated configuration (recipe, backbone settings).
        backbone: backbone registry name.
        split: the dataset's split (validation picks the kept epoch).
        remaining: (E_r, 2) the graph Retrain is trained on.
        seed: training seed.
        device: where to train.
        """
        self.args = (cfg, backbone, split, remaining, seed, device)

    def run(self):
        start = time.perf_counter()
        model, result = fit(*self.args, progress=False)
        wall = time.perf_counter() - start
        return model, {"to_best": result.seconds_to_best, "total": result.seconds_total, "wall": wall}


def setup(cfg: dict, split, backbone: str, request_id: str, seed: int, device):
    """(original model, request, remaining graph, Retrain, first Retrain run or None).

    For an adversarial request the model to unlearn from is trained on the attacked graph and Retrain is the
    clean model, whose first training is also Retrain's first timed run.

    Args:
        cfg: the validated configuration (recipe, `requests.seed`).
        split: the dataset's split.
        backbone: backbone registry name.
        request_id: `random-<f>`, `users-<kind>-<f>` or `adversarial-<ratio>`.
        seed: training seed.
        device: where to train.
    """
    if request_id.startswith(ADVERSARIAL_PREFIX):
        retrain = Retrain(cfg, backbone, split, split.train, seed, device)
        clean, first = retrain.run()
        ratio = float(request_id[len(ADVERSARIAL_PREFIX) :])
        request = adversarial_edges(
            clean, split.train, split.valid, split.test, ratio, seed=cfg["requests"]["seed"] + seed, device=device
        )
        trained_on = attacked_training_set(split.train, request, split.n_items)
        model, _ = fit(cfg, backbone, split, trained_on, seed, device, progress=False)
        done = (clean, first)
    else:
        model, _ = fit(cfg, backbone, split, split.train, seed, device, progress=False)
        trained_on = split.train
        request = generate_request(split, request_id, cfg["requests"]["seed"])
        retrain = Retrain(cfg, backbone, split, remove_request(trained_on, request, split.n_items), seed, device)
        done = None
    model.requires_grad_(False)
    settings = cfg["backbone_settings"][backbone]
    original = OriginalModel(
        model, trained_on, split.n_users, split.n_items, cfg["train"], settings, seed, device, valid=split.valid
    )
    remaining = remove_request(trained_on, request, split.n_items)
    return original, request, remaining, retrain, done


def run(cfg: dict, dataset: str, backbone: str, request_id: str, methods: list[str], repeats: int, seed: int):
    """({row name: {'seconds': [...], 'metrics': {...}, 'prep': seconds}}, split, request), Retrain first.

    Args:
        cfg: the validated configuration.
        dataset: dataset name (its split is prepared on first use).
        backbone: backbone registry name.
        request_id: the request (see `setup`).
        methods: method names (or aliases of the config), in table order.
        repeats: how many times Retrain and every method run, in turn.
        seed: training seed.
    """
    device = configure_torch(cfg)
    split = load_data(cfg, dataset)
    original, request, remaining, retrain, done = setup(cfg, split, backbone, request_id, seed, device)
    ref, _ = forgetting_reference(cfg, split, original, request, remaining, request_id, seed)
    task = UnlearningTask(original, request, remaining)
    runners = {m: build_method(m, cfg["method_settings"].get(m)) for m in methods}
    rows = {"retrain": {"seconds": [], "total": [], "prep": 0.0}}
    states, prep = {}, {}
    for name, runner in runners.items():
        states[name], prep[name] = None, 0.0
        if runner.needs_preparation:
            start = time.perf_counter()
            states[name], _ = runner.prepare(original)
            prep[name] = time.perf_counter() - start
    for repeat in range(repeats):
        model, times = done if (repeat == 0 and done) else retrain.run()
        rows["retrain"]["seconds"].append(times["to_best"])
        rows["retrain"]["total"].append(times["total"])
        if repeat == 0:
            r_users, r_items = final_embeddings(model, model.embedding.detach(), remaining)
            rows["retrain"]["metrics"], retrain_scores = evaluate_unlearned(r_users, r_items, ref)
        for name, runner in runners.items():
            for variant, result in runner.unlearn(task, states[name]).items():
                row_name = variant if variant == name else f"{name}/{variant}"
                row = rows.setdefault(row_name, {"seconds": [], "prep": prep[name]})
                row["seconds"].append(result.seconds)
                if repeat == 0:
                    row["metrics"], scores = evaluate_unlearned(result.user_emb, result.item_emb, ref)
                    row["metrics"].update(
                        forgetting_error(
                            scores["deleted_percentile"],
                            retrain_scores["deleted_percentile"],
                            row["metrics"]["auc_deleted_vs_nonedges"],
                            rows["retrain"]["metrics"]["auc_deleted_vs_nonedges"],
                        )
                    )
        print(f"  repeat {repeat + 1}/{repeats} done", flush=True)
    rows["retrain"]["metrics"].update(rank_ks=0.0, rank_shift=0.0, auc_error=0.0)
    return rows, split, request


def spread(values: list[float]) -> str:
    return f"{min(values):.3g}-{max(values):.3g}"


def table(rows: dict) -> str:
    """The markdown table: Retrain first, then the methods in the order given."""
    retrain = statistics.median(rows["retrain"]["seconds"])
    head = ["model", *COLUMNS, "median s", "spread s", "speed-up", "prep s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in rows.items():
        median = statistics.median(row["seconds"])
        if name == "retrain":
            seconds = f"{median:.3g} to best ({statistics.median(row['total']):.3g} total)"
            speedup = "1 (reference)"
        else:
            seconds = f"{median:.3g}"
            speedup = "-" if name == "none" else f"{retrain / median:.1f}x"
        values = [f"{row['metrics'][c]:.4f}" for c in COLUMNS]
        prep = f"{row['prep']:.3g}" if row["prep"] else "-"
        lines.append("| " + " | ".join([name, *values, seconds, spread(row["seconds"]), speedup, prep]) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", default=str(DEFAULT_CONFIG_PATH))
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--backbone", default="lightgcn")
    parser.add_argument("--request", default="random-0.01")
    parser.add_argument("--methods", help="comma-separated (default: the config's `methods`)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--results-dir", help="where the split is kept (default: the config's results_dir)")
    args = parser.parse_args()
    overrides = {"threads": args.threads, "datasets": [args.dataset], "backbones": [args.backbone]}
    if args.results_dir:
        overrides["results_dir"] = args.results_dir
    if args.methods:
        overrides["methods"] = args.methods.split(",")
    cfg = load_config(args.configfile, overrides)
    start = time.perf_counter()
    rows, split, request = run(cfg, args.dataset, args.backbone, args.request, cfg["methods"], args.repeats, args.seed)
    print(
        f"\n{args.dataset}: {split.n_users:,} users x {split.n_items:,} items, {len(split.train):,} training edges; "
        f"request {args.request}: {len(request):,} edges; {args.backbone}, seed {args.seed}; "
        f"{args.threads} threads, {args.repeats} repeats; torch {torch.__version__}, {platform.processor() or '?'}; "
        f"{time.perf_counter() - start:.0f} s in all\n"
    )
    print(table(rows))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
