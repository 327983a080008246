"""Where every artifact lives. One function per artifact kind; the path encodes dataset, backbone, seed,
request id and method, and the remaining settings are declared params of the stage that writes it."""
from __future__ import annotations

from .data.split import SPLITS


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
