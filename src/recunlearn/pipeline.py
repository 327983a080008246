"""The pipeline's DAG, defined once and rendered for both Snakemake and DVC.

`build_plan(cfg)` returns every stage the configuration asks for: its command (a call of this package's CLI),
its inputs, outputs, metrics and the config keys it reads. The Snakefile turns each stage into a rule and
`recunlearn dvc-yaml` writes the same stages as dvc.yaml, so the two tools cannot drift apart; `--check` mode and
the pipeline tests fail when the committed dvc.yaml is stale or the two DAGs disagree.

Every output path is a function in `recunlearn.paths`, and every setting that changes an output is either in its
path (dataset, backbone, seed, request id, method) or a declared param of its stage.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import paths
from .data.requests import request_ids
from .graphs import adversarial_id, is_adversarial, original_kind

CODE = "src/recunlearn"


@dataclass
class Stage:
    """One step of the DAG: a CLI call with its files and the config keys it reads."""

    name: str
    cmd: list[str]
    deps: list[str]
    outs: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    params: list[str] = field(default_factory=list)  # dotted config keys
    threads: int = 1
    report: dict[str, str] = field(default_factory=dict)  # output -> caption, for `snakemake --report`
    directories: list[str] = field(default_factory=list)  # outputs that are folders

    def is_directory(self, path: str) -> bool:
        return path in self.directories

    @property
    def outputs(self) -> list[str]:
        return self.outs + self.metrics + self.plots

    @property
    def rule_name(self) -> str:
        """The name both tools use: Snakemake wants identifiers, DVC forbids punctuation but `_` and `-`."""
        return "".join(c if c.isalnum() else "_" for c in self.name)


def _code(*modules: str) -> list[str]:
    return [f"{CODE}/{m}" for m in modules]


def _cli(cfg: dict, *args: str) -> list[str]:
    return ["recunlearn", "--config", cfg["_path"], *args]


def _custom(cfg: dict, dataset: str) -> list[str]:
    return [f"custom_datasets.{dataset}"] if dataset in cfg["custom_datasets"] else []


def data_stages(cfg: dict, dataset: str) -> list[Stage]:
    """download -> preprocess -> request sets, for one dataset."""
    raw = paths.raw_dir(cfg, dataset)
    split = paths.split_dir(cfg, dataset)
    download = Stage(
        name=f"download@{dataset}",
        cmd=_cli(cfg, "download", "--dataset", dataset),
        deps=_code("data/registry.py"),
        outs=[raw],
        directories=[raw],
        params=_custom(cfg, dataset),
    )
    preprocess = Stage(
        name=f"preprocess@{dataset}",
        cmd=_cli(cfg, "preprocess", "--dataset", dataset),
        deps=[raw, *_code("data/parsers.py", "data/preprocess.py", "data/split.py")],
        outs=paths.split_files(cfg, dataset),
        metrics=[paths.split_stats(cfg, dataset)],
        params=["preprocess", *_custom(cfg, dataset)],
    )
    ids = request_ids(cfg["requests"])
    requests = Stage(
        name=f"requests@{dataset}",
        cmd=_cli(cfg, "requests", "--dataset", dataset),
        deps=[*paths.split_files(cfg, dataset), *_code("data/requests.py")],
        outs=[paths.request_file(cfg, dataset, rid) for rid in ids],
        metrics=[paths.request_summary(cfg, dataset)],
        params=["requests.seed", "requests.random_edges", "requests.users"],
    )
    return [download, preprocess, requests]


def model_code(backbone: str) -> list[str]:
    """The modules a trained model depends on: changing one of them retrains."""
    return _code("models/graph.py", "models/base.py", f"models/{backbone}.py", "models/sampling.py",
                 "models/train.py", "models/checkpoint.py", "evaluation/ranking.py", "training.py", "graphs.py")


def adversarial_request_ids(cfg: dict) -> list[str]:
    adv = cfg["requests"]["adversarial"]
    return [adversarial_id(adv["ratio"])] if adv["enabled"] else []


def evaluated_request_ids(cfg: dict) -> list[str]:
    """Every request the comparison covers: the adversarial one first, then random-edge and user-wise ones."""
    return adversarial_request_ids(cfg) + request_ids(cfg["requests"])


def _train_stage(cfg: dict, dataset: str, backbone: str, seed: int, kind: str, graph_deps: list[str]) -> Stage:
    return Stage(
        name=f"train@{dataset}/{backbone}/seed{seed}/{kind}",
        cmd=_cli(cfg, "train", "--dataset", dataset, "--backbone", backbone, "--seed", str(seed), "--kind", kind),
        deps=[*graph_deps, *model_code(backbone)],
        outs=[paths.checkpoint(cfg, dataset, backbone, seed, kind)],
        metrics=[paths.model_metrics(cfg, dataset, backbone, seed, kind)],
        plots=[paths.training_history(cfg, dataset, backbone, seed, kind)],
        params=[f"backbone_settings.{backbone}", "train"],
        report={paths.training_history(cfg, dataset, backbone, seed, kind): "workflow/report/training.rst"},
        threads=cfg["threads"],
    )


def model_stages(cfg: dict, dataset: str, backbone: str, seed: int) -> list[Stage]:
    """Original training, adversarial injection, training on the attacked graph, Retrain per request set."""
    split = paths.split_files(cfg, dataset)
    stages = [_train_stage(cfg, dataset, backbone, seed, "original", split)]
    for rid in adversarial_request_ids(cfg):
        stages.append(Stage(
            name=f"adversarial@{dataset}/{backbone}/seed{seed}",
            cmd=_cli(cfg, "adversarial", "--dataset", dataset, "--backbone", backbone, "--seed", str(seed)),
            deps=[*split, paths.checkpoint(cfg, dataset, backbone, seed, "original"),
                  *_code("models/adversarial.py")],
            outs=[paths.request_path(cfg, dataset, backbone, seed, rid),
                  paths.attacked_train(cfg, dataset, backbone, seed)],
            metrics=[paths.adversarial_summary(cfg, dataset, backbone, seed)],
            params=["requests.adversarial", "requests.seed"],
            threads=cfg["threads"],
        ))
        stages.append(_train_stage(cfg, dataset, backbone, seed, "attacked",
                                   [*split, paths.attacked_train(cfg, dataset, backbone, seed)]))
    for rid in request_ids(cfg["requests"]):
        stages.append(_train_stage(cfg, dataset, backbone, seed, f"retrain/{rid}",
                                   [*split, paths.request_file(cfg, dataset, rid)]))
    return stages


UNLEARN_CODE = ("unlearning/base.py", "evaluation/unlearning.py", "evaluation/forgetting.py",
                "evaluation/ranking.py", "unlearning_run.py", "graphs.py")


def method_code(cfg: dict, method: str) -> list[str]:
    """The module of a method (plus the modules it names in `code_deps`): editing it re-runs only its stages."""
    from .unlearning.base import method_class

    cls = method_class(method, cfg["method_settings"].get(method))
    module = cls.__module__.split(".", 1)[1].replace(".", "/") + ".py"
    return _code(module, *getattr(cls, "code_deps", ()))


def _graph_deps(cfg: dict, dataset: str, backbone: str, seed: int, kind: str) -> list[str]:
    deps = [*paths.split_files(cfg, dataset), paths.checkpoint(cfg, dataset, backbone, seed, kind)]
    if kind == "attacked":
        deps.append(paths.attacked_train(cfg, dataset, backbone, seed))
    return deps


def _needs_preparation(cfg: dict, method: str) -> bool:
    from .unlearning.base import method_class

    return method_class(method, cfg["method_settings"].get(method)).needs_preparation


def unlearning_stages(cfg: dict, dataset: str, backbone: str, seed: int) -> list[Stage]:
    """Per-method preparation per trained model kind, then every method and the references per request."""
    stages: list[Stage] = []
    rids = evaluated_request_ids(cfg)
    kinds = sorted({original_kind(rid) for rid in rids})
    args = ("--dataset", dataset, "--backbone", backbone, "--seed", str(seed))
    for method in cfg["methods"]:
        if not _needs_preparation(cfg, method):
            continue
        for kind in kinds:
            stages.append(Stage(
                name=f"prepare@{dataset}/{backbone}/seed{seed}/{kind}/{method}",
                cmd=_cli(cfg, "prepare", *args, "--kind", kind, "--method", method),
                deps=[*_graph_deps(cfg, dataset, backbone, seed, kind), *_code("unlearning/base.py",
                      "unlearning_run.py"), *method_code(cfg, method)],
                outs=[paths.prepared_state(cfg, dataset, backbone, seed, kind, method)],
                metrics=[paths.prepared_report(cfg, dataset, backbone, seed, kind, method)],
                params=[f"method_settings.{method}", "train"],
                threads=cfg["threads"],
            ))
    for rid in rids:
        kind = original_kind(rid)
        request = paths.request_path(cfg, dataset, backbone, seed, rid)
        base_deps = [*_graph_deps(cfg, dataset, backbone, seed, kind), request, *_code(*UNLEARN_CODE)]
        retrain_kind = "original" if is_adversarial(rid) else f"retrain/{rid}"
        stages.append(Stage(
            name=f"reference@{dataset}/{backbone}/seed{seed}/{rid}",
            cmd=_cli(cfg, "reference", *args, "--request", rid),
            deps=[*base_deps, paths.checkpoint(cfg, dataset, backbone, seed, retrain_kind),
                  paths.model_metrics(cfg, dataset, backbone, seed, retrain_kind),
                  paths.model_metrics(cfg, dataset, backbone, seed, kind)],
            outs=[paths.unlearn_scores(cfg, dataset, backbone, seed, rid, "reference")],
            metrics=[paths.unlearn_metrics(cfg, dataset, backbone, seed, rid, "reference")],
            params=["requests.seed", "train.ks"],
            threads=cfg["threads"],
        ))
        for method in cfg["methods"]:
            deps = [*base_deps, *method_code(cfg, method)]
            if _needs_preparation(cfg, method):
                deps.append(paths.prepared_state(cfg, dataset, backbone, seed, kind, method))
            stages.append(Stage(
                name=f"unlearn@{dataset}/{backbone}/seed{seed}/{rid}/{method}",
                cmd=_cli(cfg, "unlearn", *args, "--request", rid, "--method", method),
                deps=deps,
                outs=[paths.unlearn_scores(cfg, dataset, backbone, seed, rid, method)],
                metrics=[paths.unlearn_metrics(cfg, dataset, backbone, seed, rid, method)],
                params=[f"method_settings.{method}", "requests.seed", "train"],
                threads=cfg["threads"],
            ))
    return stages


def comparison_stage(cfg: dict, dataset: str, backbone: str) -> Stage:
    """One table per dataset and backbone, over every seed, request and method."""
    deps = []
    for seed in cfg["seeds"]:
        for rid in evaluated_request_ids(cfg):
            deps += [paths.unlearn_metrics(cfg, dataset, backbone, seed, rid, m)
                     for m in ["reference", *cfg["methods"]]]
            deps += [paths.prepared_report(cfg, dataset, backbone, seed, original_kind(rid), m)
                     for m in cfg["methods"] if _needs_preparation(cfg, m)]
    return Stage(
        name=f"compare@{dataset}/{backbone}",
        cmd=_cli(cfg, "compare", "--dataset", dataset, "--backbone", backbone),
        deps=sorted(set(deps), key=deps.index) + _code("comparison.py"),
        outs=[paths.comparison(cfg, dataset, backbone, "csv"), paths.comparison(cfg, dataset, backbone, "md")],
        metrics=[paths.comparison(cfg, dataset, backbone, "json")],
        params=["seeds"],
        report={paths.comparison(cfg, dataset, backbone, "csv"): "workflow/report/comparison.rst"},
    )


def notebook_stages(cfg: dict, dataset: str) -> list[Stage]:
    """The analysis notebooks, executed by papermill: the leaves of the DAG. Their figures are DVC plots and
    Snakemake report items."""
    from .notebooks import NOTEBOOKS, notebook_stage_spec

    stages = []
    for name in NOTEBOOKS:
        spec = notebook_stage_spec(cfg, name, dataset)
        stages.append(Stage(
            name=f"notebook@{dataset}/{name}",
            cmd=_cli(cfg, "notebook", "--dataset", dataset, "--notebook", name),
            deps=spec["deps"],
            outs=spec["outs"],
            plots=spec["figures"],
            params=["seeds", "backbones", "methods"],
            report={fig: "workflow/report/figure.rst" for fig in spec["figures"]},
        ))
    return stages


def build_plan(cfg: dict) -> list[Stage]:
    """All stages for the configuration, in a topological order."""
    stages: list[Stage] = []
    for dataset in cfg["datasets"]:
        stages += data_stages(cfg, dataset)
        stages.append(Stage(
            name=f"popularity@{dataset}",
            cmd=_cli(cfg, "popularity", "--dataset", dataset),
            deps=[*paths.split_files(cfg, dataset), *_code("evaluation/ranking.py")],
            metrics=[paths.popularity_metrics(cfg, dataset)],
            params=["train.ks"],
        ))
        for backbone in cfg["backbones"]:
            for seed in cfg["seeds"]:
                stages += model_stages(cfg, dataset, backbone, seed)
            for seed in cfg["seeds"]:
                stages += unlearning_stages(cfg, dataset, backbone, seed)
            stages.append(comparison_stage(cfg, dataset, backbone))
        stages += notebook_stages(cfg, dataset)
    return stages


# ---------------------------------------------------------------------------------------------------------------
# DVC rendering
# ---------------------------------------------------------------------------------------------------------------

def _present(raw_cfg: dict, dotted: str) -> bool:
    node = raw_cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def dvc_stage(stage: Stage, config_file: str, raw_cfg: dict) -> dict:
    """One DVC stage. Params absent from the config file (left at their schema default) cannot be declared:
    DVC reads params from the file itself. The shipped configs therefore spell out every section."""
    entry: dict = {"cmd": " ".join(stage.cmd), "deps": list(stage.deps)}
    params = [p for p in stage.params if _present(raw_cfg, p)]
    if params:
        entry["params"] = [{config_file: params}]
    if stage.outs:
        entry["outs"] = list(stage.outs)
    if stage.metrics:
        entry["metrics"] = [{m: {"cache": False}} for m in stage.metrics]
    if stage.plots:
        entry["plots"] = [{p: _plot_props(p)} for p in stage.plots]
    return entry


def _plot_props(path: str) -> dict:
    """Images render as they are; training histories as loss and validation curves over epochs."""
    if path.endswith(".csv"):
        return {"cache": False, "x": "epoch", "y": "loss"}
    return {"cache": False}


def render_dvc_yaml(cfg: dict) -> str:
    """dvc.yaml text for the configuration (stages keyed by their names)."""
    config_file = cfg["_path"]
    raw_cfg = yaml.safe_load(Path(config_file).read_text()) or {}
    plan = build_plan(cfg)
    names = [s.rule_name for s in plan]
    if len(set(names)) != len(names):
        raise ValueError("two stages share a name after sanitising; rename a request or method")
    stages = {s.rule_name: dvc_stage(s, config_file, raw_cfg) for s in plan}
    header = (f"# Generated by `recunlearn --config {config_file} dvc-yaml` from the same plan as the Snakefile.\n"
              "# Do not edit by hand: change the config or src/recunlearn/pipeline.py and regenerate.\n")
    return header + yaml.safe_dump({"stages": stages}, sort_keys=False, width=200)


def all_outputs(cfg: dict) -> list[str]:
    return [out for stage in build_plan(cfg) for out in stage.outputs]
