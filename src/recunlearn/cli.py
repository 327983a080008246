"""Command-line interface: every pipeline step is one subcommand, called by Snakemake rules and DVC stages.

Each subcommand loads and validates the configuration, does one step, and writes its outputs atomically.
Input problems (`RecUnlearnError`) end with one line on stderr naming the file or key, and exit status 2.
Heavy imports (torch, pandas) happen inside the subcommands so that `recunlearn --help` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from recunlearn.config import DEFAULT_CONFIG_PATH, load_config
from recunlearn.errors import RecUnlearnError

log = logging.getLogger("recunlearn")


def _setup_logging(cfg: dict, stage_name: str) -> None:
    """Log to stderr and to results/logs/<stage>.log, so every run leaves a readable trace."""
    from recunlearn.pipeline import layout

    log_path = Path(layout.log_file(cfg, stage_name))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers = [logging.StreamHandler(sys.stderr), logging.FileHandler(log_path, mode="w")]
    root = logging.getLogger()
    root.handlers.clear()
    for handler in handlers:
        handler.setFormatter(fmt)
        root.addHandler(handler)
    root.setLevel(logging.INFO)


def _stage_name(args: argparse.Namespace) -> str:
    """The same `step@detail` name the plan gives the job (`plan.job_name`), so each job has its own log file:
    the one its Snakemake rule declares as `log:`."""
    from recunlearn.pipeline.plan import WILDCARDS, job_name

    values = {k: getattr(args, k) for k in WILDCARDS if getattr(args, k, None) is not None}
    return job_name(args.command, values)


def _parse_set(text: str) -> dict:
    """`KEY=VALUE` -> {KEY: VALUE}: VALUE is YAML (JSON is YAML too), a dotted KEY names a nested key."""
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise RecUnlearnError(f"--set {text}: expected KEY=VALUE, e.g. --set seeds=[0,1]")
    try:
        node = yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise RecUnlearnError(f"--set {text}: the value is not valid YAML ({str(exc).splitlines()[0]})") from None
    for part in reversed(key.split(".")):
        node = {part: node}
    return node


def _overrides(items: list[str]) -> dict:
    """The --set options merged into one override mapping, later ones winning."""
    from recunlearn.config import merge_overrides

    merged: dict = {}
    for text in items:
        merged = merge_overrides(merged, _parse_set(text))
    return merged


def _check_dvc_yaml(cfg: dict, command: str) -> None:
    """Under `dvc repro` / `dvc exp run` (DVC sets DVC_STAGE), stop a stage whose dvc.yaml no longer matches the
    configuration, e.g. after `dvc exp run -S seeds=[0,1]`: one line saying how to regenerate it."""
    import os

    from recunlearn.pipeline.plan import STEPS  # the commands that are pipeline stages

    if command in STEPS and os.environ.get("DVC_STAGE"):
        from recunlearn.pipeline.dvc import check_fresh

        check_fresh(cfg, os.path.relpath(Path(os.environ.get("DVC_ROOT", ".")) / "dvc.yaml"))


# ---------------------------------------------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------------------------------------------


def cmd_download(cfg: dict, args: argparse.Namespace) -> None:
    from recunlearn.stages.data import download

    log.info("raw files of %s in %s", args.dataset, download(cfg, args.dataset))


def cmd_preprocess(cfg: dict, args: argparse.Namespace) -> None:
    from recunlearn.stages.data import preprocess

    stats = preprocess(cfg, args.dataset)
    log.info(
        "%s: %d users, %d items, %d train / %d valid / %d test",
        args.dataset,
        stats["users"],
        stats["items"],
        stats["train"]["interactions"],
        stats["valid"]["interactions"],
        stats["test"]["interactions"],
    )


def cmd_requests(cfg: dict, args: argparse.Namespace) -> None:
    from recunlearn.stages.data import requests

    requests(cfg, args.dataset)


def cmd_validate_request(cfg: dict, args: argparse.Namespace) -> None:
    from recunlearn.stages.data import validate_request

    print(validate_request(cfg, args.dataset, args.request))


def cmd_popularity(cfg: dict, args: argparse.Namespace) -> None:
    from recunlearn.stages.data import popularity

    log.info("popularity baseline on %s: %s", args.dataset, popularity(cfg, args.dataset))


def cmd_train(cfg: dict, args: argparse.Namespace) -> None:
    from recunlearn.stages.train import train_model

    train_model(cfg, args.dataset, args.backbone, args.seed, args.kind)


def cmd_adversarial(cfg: dict, args: argparse.Namespace) -> None:
    from recunlearn.stages.train import make_adversarial

    log.info("adversarial request: %s", make_adversarial(cfg, args.dataset, args.backbone, args.seed))


def cmd_prepare(cfg: dict, args: argparse.Namespace) -> None:
    from recunlearn.stages.unlearn import prepare

    report = prepare(cfg, args.dataset, args.backbone, args.seed, args.kind, args.method)
    log.info("prepared %s for %s in %.1f s", args.method, args.kind, report["seconds"])


def cmd_unlearn(cfg: dict, args: argparse.Namespace) -> None:
    from recunlearn.stages.unlearn import unlearn

    unlearn(cfg, args.dataset, args.backbone, args.seed, args.request, args.method)


def cmd_reference(cfg: dict, args: argparse.Namespace) -> None:
    from recunlearn.stages.unlearn import references

    references(cfg, args.dataset, args.backbone, args.seed, args.request)


def cmd_compare(cfg: dict, args: argparse.Namespace) -> None:
    from recunlearn.components import needs_preparation
    from recunlearn.pipeline.kinds import evaluated_request_ids
    from recunlearn.stages.compare import write_comparison

    prepared = {m for m in cfg["methods"] if needs_preparation(cfg, m)}
    table = write_comparison(cfg, args.dataset, args.backbone, evaluated_request_ids(cfg), cfg["methods"], prepared)
    log.info("comparison of %d rows written", len(table))


def cmd_forget(cfg: dict, args: argparse.Namespace) -> None:
    import json

    from recunlearn.stages.forget import forget

    report = forget(cfg, args.dataset, args.backbone, args.seed, args.request_file, args.out, args.method, args.variant)
    print(json.dumps(report, indent=2))


def cmd_notebook(cfg: dict, args: argparse.Namespace) -> None:
    from recunlearn.stages.notebook import execute_notebook

    execute_notebook(cfg, args.notebook, args.dataset)
    log.info("executed notebook %s for %s", args.notebook, args.dataset)


def cmd_dvc_yaml(cfg: dict, args: argparse.Namespace) -> None:
    from recunlearn.io import atomic_path
    from recunlearn.pipeline.dvc import check_fresh, render_dvc_yaml

    target = Path(args.output)
    if args.check:
        check_fresh(cfg, target)
        print(f"{target} is up to date")
        return
    text = render_dvc_yaml(cfg)
    with atomic_path(target) as tmp:
        tmp.write_text(text)
    print(f"wrote {target}")


def cmd_outputs(cfg: dict, args: argparse.Namespace) -> None:
    from recunlearn.pipeline.plan import all_outputs

    print("\n".join(all_outputs(cfg)))


# ---------------------------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------------------------

COMMANDS = {
    "download": (cmd_download, "fetch a dataset's raw files (URL, then registry mirror), verify checksums"),
    "preprocess": (cmd_preprocess, "raw files -> binarised, deduplicated, split interactions with id maps"),
    "requests": (cmd_requests, "write the configured random-edge and user-wise request sets"),
    "popularity": (cmd_popularity, "Recall/NDCG of a popularity ranking (the floor for trained models)"),
    "train": (cmd_train, "train a backbone on the original, attacked or a remaining (retrain/<request>) graph"),
    "adversarial": (cmd_adversarial, "inject adversarial noise edges chosen by the original model"),
    "prepare": (cmd_prepare, "one-off preparation of a method (IE pre-training, shards) for a trained model"),
    "unlearn": (cmd_unlearn, "run one unlearning method on one request and evaluate it"),
    "reference": (cmd_reference, "evaluate the Original and Retrain models on one request"),
    "compare": (cmd_compare, "gather the comparison table of a dataset and backbone"),
    "forget": (cmd_forget, "unlearn YOUR request file from a trained model; writes the model and a report"),
    "notebook": (cmd_notebook, "execute an analysis notebook with papermill (ipynb + HTML + figures)"),
    "validate-request": (cmd_validate_request, "check a request file (raw or internal ids) against a split"),
    "dvc-yaml": (cmd_dvc_yaml, "write dvc.yaml from the plan (or --check that it is up to date)"),
    "outputs": (cmd_outputs, "list every output the plan produces"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recunlearn", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(DEFAULT_CONFIG_PATH), help="pipeline configuration (YAML)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (dotted for nested keys, YAML value), e.g. --set seeds=[0,1];"
        " repeatable. Snakemake passes its --config overrides on this way",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if name not in ("dvc-yaml", "outputs"):
            p.add_argument("--dataset", required=True)
        if name in ("train", "adversarial", "prepare", "unlearn", "reference", "compare", "forget"):
            p.add_argument("--backbone", required=True)
        if name in ("train", "adversarial", "prepare", "unlearn", "reference", "forget"):
            p.add_argument("--seed", type=int, required=True)
        if name == "forget":
            p.add_argument(
                "--request-file", required=True, help="TSV: user<TAB>item (raw ids) or user_idx<TAB>item_idx"
            )
            p.add_argument("--out", required=True, help="folder for model.pt, remaining_train.tsv, report.json")
            p.add_argument("--method", default="unlearnrec")
            p.add_argument("--variant", default=None, help="default: the method's last variant (ie_ft)")
        if name in ("train", "prepare"):
            p.add_argument("--kind", required=True, help="original | attacked | retrain/<request id>")
        if name == "notebook":
            p.add_argument("--notebook", required=True, help="comparison | efficiency | forgetting | ablation")
        if name in ("unlearn", "reference"):
            p.add_argument("--request", required=True, help="request id, e.g. random-0.01 or adversarial-1")
        if name in ("prepare", "unlearn"):
            p.add_argument("--method", required=True)
        if name == "validate-request":
            p.add_argument("request", help="TSV with header user<TAB>item (raw ids) or user_idx<TAB>item_idx")
        if name == "dvc-yaml":
            p.add_argument("--output", default="dvc.yaml")
            p.add_argument("--check", action="store_true", help="fail if the file differs from the plan")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func, _ = COMMANDS[args.command]
    try:
        cfg = load_config(args.config, _overrides(args.set))
        _check_dvc_yaml(cfg, args.command)
        if args.command not in ("dvc-yaml", "outputs", "validate-request"):
            _setup_logging(cfg, _stage_name(args))
        func(cfg, args)
    except RecUnlearnError as exc:
        print(f"recunlearn: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
