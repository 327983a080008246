"""UnlearnRec settings swept over the default run's trained models and requests: what each setting selects, forgets
and costs, judged as the pipeline judges (forgetting error against the run's own Retrain).

Reads a finished default run (`make run`, or `snakemake --cores 2`): its trained original and attacked models,
its requests, and its reference jobs (Retrain's deleted-edge percentiles and AUC). For every variant (overrides of
`method_settings.unlearnrec`) it pre-trains the Influence Encoder once per trained model, exactly as the prepare
stage does (once for variants that differ only in `ft_*` settings), then unlearns every request and prints, per
request, the selected pre-training epoch and, for "IE only" and "IE + fine-tune", Recall@20, the forgetting error
(`rank_ks`, `rank_shift`), MI-NG, the deleted and non-edge mean scores and the seconds. The evaluated requests
reach only the unlearning step, never the pre-training or its checkpoint rule. Recorded results:
docs/decisions.md, section "UnlearnRec".

    python benchmarks/sweep_unlearnrec.py --results-dir results \\
        --variant base: --variant sum:preservation_reduction=sum --variant lu1:preservation_reduction=sum,lambda_u=1
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import yaml

from recunlearn.config import DEFAULT_CONFIG_PATH, load_config
from recunlearn.data.split import load_split, read_edges
from recunlearn.evaluation.forgetting import forgetting_error
from recunlearn.evaluation.protocol import evaluate_unlearned
from recunlearn.io import read_json
from recunlearn.pipeline import layout
from recunlearn.pipeline.kinds import evaluated_request_ids, original_kind
from recunlearn.stages.unlearn import load_original, request_task
from recunlearn.unlearning import build_method
from recunlearn.unlearning.base import UnlearningTask


def parse_variant(text: str) -> tuple[str, dict]:
    """'name:key=value,key=value' -> (name, overrides); values are read as YAML (numbers, booleans, strings)."""
    name, _, pairs = text.partition(":")
    overrides = {}
    for pair in filter(None, pairs.split(",")):
        key, _, value = pair.partition("=")
        overrides[key.strip()] = yaml.safe_load(value)
    return name, overrides


def retrain_reference(cfg: dict, dataset: str, backbone: str, seed: int, request_id: str) -> tuple[np.ndarray, float]:
    """Retrain's deleted-edge percentiles and auc_deleted_vs_nonedges on a request, from the run's reference job.

    Args:
        cfg: the run's validated configuration (for the paths).
        dataset, backbone, seed: the run.
        request_id: the request.
    """
    with np.load(layout.unlearn_scores(cfg, dataset, backbone, seed, request_id, "reference")) as npz:
        percentiles = npz["retrain__deleted_percentile"]
    metrics = read_json(layout.unlearn_metrics(cfg, dataset, backbone, seed, request_id, "reference"))
    return percentiles, metrics["variants"]["retrain"]["auc_deleted_vs_nonedges"]


def sweep(cfg: dict, dataset: str, backbone: str, seed: int, variants: list[tuple[str, dict]], request_ids: list[str]):
    """One row per (variant, request, UnlearnRec variant); Retrain's Recall@20 per request beside them.

    Args:
        cfg: the run's validated configuration.
        dataset, backbone, seed: the run whose models and requests are used.
        variants: (name, overrides of method_settings.unlearnrec).
        request_ids: the run's requests to unlearn.
    """
    split = load_split(layout.split_dir(cfg, dataset))
    tasks = {}
    for rid in request_ids:
        request = read_edges(layout.request_path(cfg, dataset, backbone, seed, rid))
        original, task, ref, _ = request_task(cfg, dataset, backbone, seed, rid, split, request)
        tasks[rid] = (task, ref, retrain_reference(cfg, dataset, backbone, seed, rid))
    rows, cache = [], {}
    for name, overrides in variants:
        settings = {**cfg["method_settings"].get("unlearnrec", {}), **overrides}
        runner = build_method("unlearnrec", settings)
        # variants that differ only in the fine-tune (`ft_*`) share one pre-training
        key = json.dumps({k: v for k, v in runner.settings.items() if not k.startswith("ft_")}, sort_keys=True)
        if key not in cache:
            cache[key] = {}
            for kind in sorted({original_kind(rid) for rid in request_ids}):
                start = time.perf_counter()
                cache[key][kind] = runner.prepare(load_original(cfg, dataset, backbone, seed, kind))
                print(f"{name} {kind}: pre-training {time.perf_counter() - start:.1f} s", flush=True)
        prepared = cache[key]
        for rid in request_ids:
            task, ref, (retrain_pct, retrain_auc) = tasks[rid]
            state, report = prepared[original_kind(rid)]
            for variant, result in runner.unlearn(
                UnlearningTask(task.original, task.request, task.remaining), state
            ).items():
                metrics, scores = evaluate_unlearned(result.user_emb, result.item_emb, ref)
                error = forgetting_error(
                    scores["deleted_percentile"], retrain_pct, metrics["auc_deleted_vs_nonedges"], retrain_auc
                )
                rows.append(
                    {
                        "variant": name,
                        "request": rid,
                        "model": variant,
                        "selected_epoch": report["selected_epoch"],
                        "recall@20": metrics["recall@20"],
                        **error,
                        "mi_ng": metrics["mi_ng"],
                        "deleted_mean": metrics["deleted_after"]["mean"],
                        "nonedge_mean": metrics["nonedges_after"]["mean"],
                        "seconds": result.seconds,
                        "prep_seconds": report["seconds"],
                        "stop": result.info.get("stop_reason", ""),
                        "selection": report.get("selection", []),
                    }
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", default=str(DEFAULT_CONFIG_PATH))
    parser.add_argument("--results-dir", required=True, help="the finished run's results folder")
    parser.add_argument("--variant", action="append", required=True, help="name:key=value,key=value")
    parser.add_argument("--requests", help="comma-separated request ids (default: every request of the run)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    cfg = load_config(args.configfile, {"results_dir": args.results_dir, "threads": args.threads})
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    dataset, backbone, seed = cfg["datasets"][0], cfg["backbones"][0], cfg["seeds"][0]
    rids = args.requests.split(",") if args.requests else evaluated_request_ids(cfg)
    rows = sweep(cfg, dataset, backbone, seed, [parse_variant(v) for v in args.variant], rids)
    retrain = {rid: read_json(layout.unlearn_metrics(cfg, dataset, backbone, seed, rid, "reference")) for rid in rids}
    print(
        "\nRetrain Recall@20: "
        + ", ".join(f"{r} {m['variants']['retrain']['recall@20']:.4f}" for r, m in retrain.items())
    )
    head = ["variant", "request", "model", "selected_epoch", "recall@20", "rank_ks", "rank_shift", "mi_ng",
            "deleted_mean", "nonedge_mean", "seconds", "prep_seconds", "stop"]  # fmt: skip
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for row in rows:
        cells = [f"{row[h]:.4g}" if isinstance(row[h], float) else str(row[h]) for h in head]
        print("| " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
