"""Where every artifact lives. One function per artifact kind; the path encodes dataset, backbone, seed,
request id and method, and the remaining settings are declared params of the stage that writes it."""
from __future__ import annotations

from recunlearn.data.split import SPLITS


def _root(cfg: dict) -> str:
    return cfg["results_dir"].rstrip("/")


def raw_dir(cfg: dict, dataset: str) -> str:
    return f"{_root(cfg)}/raw/{dataset}"


def split_dir(cfg: dict, dataset: str) -> str:
    return f"{_root(cfg)}/{dataset}/split"


def split_files(cfg: dict, dataset: str) -> list[str]:
    folder = split_dir(cfg, dataset)
    return [f"{folder}/{name}.tsv" for name in (*SPLITS, "users", "items")]


def split_stats(cfg: dict, dataset: str) -> str:
    return f"{split_dir(cfg, dataset)}/stats.json"


def requests_dir(cfg: dict, dataset: str) -> str:
    return f"{_root(cfg)}/{dataset}/requests"


def request_file(cfg: dict, dataset: str, request_id: str) -> str:
    return f"{requests_dir(cfg, dataset)}/{request_id}.tsv"


def request_summary(cfg: dict, dataset: str) -> str:
    return f"{requests_dir(cfg, dataset)}/summary.json"


def log_file(cfg: dict, stage_name: str) -> str:
    safe = stage_name.replace("@", "/").replace(":", "_")
    return f"{_root(cfg)}/logs/{safe}.log"


def run_dir(cfg: dict, dataset: str, backbone: str, seed: int) -> str:
    return f"{_root(cfg)}/{dataset}/{backbone}/seed{seed}"


def model_dir(cfg: dict, dataset: str, backbone: str, seed: int, kind: str) -> str:
    """kind: 'original', 'attacked' or 'retrain/<request id>'."""
    return f"{run_dir(cfg, dataset, backbone, seed)}/{kind}"


def checkpoint(cfg: dict, dataset: str, backbone: str, seed: int, kind: str) -> str:
    return f"{model_dir(cfg, dataset, backbone, seed, kind)}/model.pt"


def model_metrics(cfg: dict, dataset: str, backbone: str, seed: int, kind: str) -> str:
    return f"{model_dir(cfg, dataset, backbone, seed, kind)}/metrics.json"


def training_history(cfg: dict, dataset: str, backbone: str, seed: int, kind: str) -> str:
    return f"{model_dir(cfg, dataset, backbone, seed, kind)}/history.csv"


def adversarial_dir(cfg: dict, dataset: str, backbone: str, seed: int) -> str:
    return f"{run_dir(cfg, dataset, backbone, seed)}/adversarial"


def attacked_train(cfg: dict, dataset: str, backbone: str, seed: int) -> str:
    return f"{adversarial_dir(cfg, dataset, backbone, seed)}/attacked_train.tsv"


def request_path(cfg: dict, dataset: str, backbone: str, seed: int, request_id: str) -> str:
    """Adversarial requests depend on the trained model; the others only on the split."""
    if request_id.startswith("adversarial-"):
        return f"{adversarial_dir(cfg, dataset, backbone, seed)}/{request_id}.tsv"
    return request_file(cfg, dataset, request_id)


def adversarial_summary(cfg: dict, dataset: str, backbone: str, seed: int) -> str:
    return f"{adversarial_dir(cfg, dataset, backbone, seed)}/summary.json"


def popularity_metrics(cfg: dict, dataset: str) -> str:
    return f"{_root(cfg)}/{dataset}/popularity.json"


def prepared_dir(cfg: dict, dataset: str, backbone: str, seed: int, kind: str, method: str) -> str:
    """One-off preparation of a method (IE pre-training, SISA shards) for a trained model kind."""
    return f"{model_dir(cfg, dataset, backbone, seed, kind)}/prepared/{method}"


def prepared_state(cfg: dict, dataset: str, backbone: str, seed: int, kind: str, method: str) -> str:
    return f"{prepared_dir(cfg, dataset, backbone, seed, kind, method)}/state.pt"


def prepared_report(cfg: dict, dataset: str, backbone: str, seed: int, kind: str, method: str) -> str:
    return f"{prepared_dir(cfg, dataset, backbone, seed, kind, method)}/report.json"


def unlearn_dir(cfg: dict, dataset: str, backbone: str, seed: int, request_id: str, method: str) -> str:
    """method: a registered unlearning method, or 'reference' for the Original and Retrain rows."""
    return f"{run_dir(cfg, dataset, backbone, seed)}/unlearn/{request_id}/{method}"


def unlearn_metrics(cfg: dict, dataset: str, backbone: str, seed: int, request_id: str, method: str) -> str:
    return f"{unlearn_dir(cfg, dataset, backbone, seed, request_id, method)}/metrics.json"


def unlearn_scores(cfg: dict, dataset: str, backbone: str, seed: int, request_id: str, method: str) -> str:
    return f"{unlearn_dir(cfg, dataset, backbone, seed, request_id, method)}/scores.npz"


def comparison(cfg: dict, dataset: str, backbone: str, ext: str) -> str:
    """The comparison table of every method x request for a dataset and backbone (csv, md or json)."""
    return f"{_root(cfg)}/{dataset}/{backbone}/comparison.{ext}"


def comparison_long(cfg: dict, dataset: str, backbone: str) -> str:
    """The long table behind the comparison: one row per (request, model, seed), every metric."""
    return f"{_root(cfg)}/{dataset}/{backbone}/comparison_long.csv"


def score_summaries(cfg: dict, dataset: str, backbone: str) -> str:
    """Per-request score distributions (deleted edges, non-edges, remaining edges) of every model, as JSON."""
    return f"{_root(cfg)}/{dataset}/{backbone}/scores.json"
