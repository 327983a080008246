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

from recunlearn.pipeline import layout
from recunlearn.data.requests import request_ids
from recunlearn.pipeline.deps import closure
from recunlearn.pipeline.kinds import adversarial_request_ids, evaluated_request_ids, original_kind, retrain_kind



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
    """The source files a job of these modules depends on (static import closure, see `deps`)."""
    return closure(*(f"recunlearn.{m}" for m in modules))


def _cli(cfg: dict, *args: str) -> list[str]:
    return ["recunlearn", "--config", cfg["_path"], *args]


def _custom(cfg: dict, dataset: str) -> list[str]:
    return [f"custom_datasets.{dataset}"] if dataset in cfg["custom_datasets"] else []


def data_stages(cfg: dict, dataset: str) -> list[Stage]:
    """download -> preprocess -> request sets, for one dataset."""
    raw = layout.raw_dir(cfg, dataset)
    split = layout.split_dir(cfg, dataset)
    download = Stage(
        name=f"download@{dataset}",
        cmd=_cli(cfg, "download", "--dataset", dataset),
        deps=_code("stages.data"),
        outs=[raw],
        directories=[raw],
        params=_custom(cfg, dataset),
    )
    preprocess = Stage(
        name=f"preprocess@{dataset}",
        cmd=_cli(cfg, "preprocess", "--dataset", dataset),
        deps=[raw, *_code("stages.data")],
        outs=layout.split_files(cfg, dataset),
        metrics=[layout.split_stats(cfg, dataset)],
        params=["preprocess", *_custom(cfg, dataset)],
    )
    ids = request_ids(cfg["requests"])
    requests = Stage(
        name=f"requests@{dataset}",
        cmd=_cli(cfg, "requests", "--dataset", dataset),
        deps=[*layout.split_files(cfg, dataset), *_code("stages.data")],
        outs=[layout.request_file(cfg, dataset, rid) for rid in ids],
        metrics=[layout.request_summary(cfg, dataset)],
        params=["requests.seed", "requests.random_edges", "requests.users"],
    )
    return [download, preprocess, requests]


def model_code(backbone: str) -> list[str]:
    """The modules a trained model depends on: changing one of them retrains."""
    return _code("stages.train", f"backbones.{backbone}")


def _train_stage(cfg: dict, dataset: str, backbone: str, seed: int, kind: str, graph_deps: list[str]) -> Stage:
    return Stage(
        name=f"train@{dataset}/{backbone}/seed{seed}/{kind}",
        cmd=_cli(cfg, "train", "--dataset", dataset, "--backbone", backbone, "--seed", str(seed), "--kind", kind),
        deps=[*graph_deps, *model_code(backbone)],
        outs=[layout.checkpoint(cfg, dataset, backbone, seed, kind)],
        metrics=[layout.model_metrics(cfg, dataset, backbone, seed, kind)],
        plots=[layout.training_history(cfg, dataset, backbone, seed, kind)],
        params=[f"backbone_settings.{backbone}", "train"],
        report={layout.training_history(cfg, dataset, backbone, seed, kind): "workflow/report/training.rst"},
        threads=cfg["threads"],
    )


def model_stages(cfg: dict, dataset: str, backbone: str, seed: int) -> list[Stage]:
    """Original training, adversarial injection, training on the attacked graph, Retrain per request set."""
    split = layout.split_files(cfg, dataset)
    stages = [_train_stage(cfg, dataset, backbone, seed, "original", split)]
    for rid in adversarial_request_ids(cfg):
        stages.append(Stage(
            name=f"adversarial@{dataset}/{backbone}/seed{seed}",
            cmd=_cli(cfg, "adversarial", "--dataset", dataset, "--backbone", backbone, "--seed", str(seed)),
            deps=[*split, layout.checkpoint(cfg, dataset, backbone, seed, "original"),
                  *model_code(backbone)],
            outs=[layout.request_path(cfg, dataset, backbone, seed, rid),
                  layout.attacked_train(cfg, dataset, backbone, seed)],
            metrics=[layout.adversarial_summary(cfg, dataset, backbone, seed)],
            params=["requests.adversarial", "requests.seed"],
            threads=cfg["threads"],
        ))
        stages.append(_train_stage(cfg, dataset, backbone, seed, "attacked",
                                   [*split, layout.attacked_train(cfg, dataset, backbone, seed)]))
    for rid in request_ids(cfg["requests"]):
        stages.append(_train_stage(cfg, dataset, backbone, seed, f"retrain/{rid}",
                                   [*split, layout.request_file(cfg, dataset, rid)]))
    return stages


def method_code(cfg: dict, method: str, backbone: str) -> list[str]:
    """What a job running `method` (or an alias of it) depends on: the unlearning stage, the method's module and
    the backbone's. Editing one method re-runs only its jobs."""
    base = (cfg["method_settings"].get(method) or {}).get("base", method)
    return _code("stages.unlearn", f"unlearning.{base}", f"backbones.{backbone}")


def _graph_deps(cfg: dict, dataset: str, backbone: str, seed: int, kind: str) -> list[str]:
    deps = [*layout.split_files(cfg, dataset), layout.checkpoint(cfg, dataset, backbone, seed, kind)]
    if kind == "attacked":
        deps.append(layout.attacked_train(cfg, dataset, backbone, seed))
    return deps


def _needs_preparation(cfg: dict, method: str) -> bool:
    from recunlearn.unlearning import method_class

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
                deps=[*_graph_deps(cfg, dataset, backbone, seed, kind), *method_code(cfg, method, backbone)],
                outs=[layout.prepared_state(cfg, dataset, backbone, seed, kind, method)],
                metrics=[layout.prepared_report(cfg, dataset, backbone, seed, kind, method)],
                params=[f"method_settings.{method}", "train"],
                threads=cfg["threads"],
            ))
    for rid in rids:
        kind = original_kind(rid)
        request = layout.request_path(cfg, dataset, backbone, seed, rid)
        base_deps = [*_graph_deps(cfg, dataset, backbone, seed, kind), request]
        stages.append(Stage(
            name=f"reference@{dataset}/{backbone}/seed{seed}/{rid}",
            cmd=_cli(cfg, "reference", *args, "--request", rid),
            deps=[*base_deps, *_code("stages.unlearn", f"backbones.{backbone}"), layout.checkpoint(cfg, dataset, backbone, seed, retrain_kind(rid)),
                  layout.model_metrics(cfg, dataset, backbone, seed, retrain_kind(rid)),
                  layout.model_metrics(cfg, dataset, backbone, seed, kind)],
            outs=[layout.unlearn_scores(cfg, dataset, backbone, seed, rid, "reference")],
            metrics=[layout.unlearn_metrics(cfg, dataset, backbone, seed, rid, "reference")],
            params=["requests.seed", "train.ks"],
            threads=cfg["threads"],
        ))
        for method in cfg["methods"]:
            deps = [*base_deps, *method_code(cfg, method, backbone)]
            if _needs_preparation(cfg, method):
                deps.append(layout.prepared_state(cfg, dataset, backbone, seed, kind, method))
            stages.append(Stage(
                name=f"unlearn@{dataset}/{backbone}/seed{seed}/{rid}/{method}",
                cmd=_cli(cfg, "unlearn", *args, "--request", rid, "--method", method),
                deps=deps,
                outs=[layout.unlearn_scores(cfg, dataset, backbone, seed, rid, method)],
                metrics=[layout.unlearn_metrics(cfg, dataset, backbone, seed, rid, method)],
                params=[f"method_settings.{method}", "requests.seed", "train"],
                threads=cfg["threads"],
            ))
    return stages


def comparison_stage(cfg: dict, dataset: str, backbone: str) -> Stage:
    """One table per dataset and backbone, over every seed, request and method."""
    deps = []
    for seed in cfg["seeds"]:
        for rid in evaluated_request_ids(cfg):
            deps += [layout.unlearn_metrics(cfg, dataset, backbone, seed, rid, m)
                     for m in ["reference", *cfg["methods"]]]
            deps += [layout.prepared_report(cfg, dataset, backbone, seed, original_kind(rid), m)
                     for m in cfg["methods"] if _needs_preparation(cfg, m)]
    return Stage(
        name=f"compare@{dataset}/{backbone}",
        cmd=_cli(cfg, "compare", "--dataset", dataset, "--backbone", backbone),
        deps=sorted(set(deps), key=deps.index) + _code("stages.compare"),
        outs=[layout.comparison(cfg, dataset, backbone, "csv"), layout.comparison(cfg, dataset, backbone, "md")],
        metrics=[layout.comparison(cfg, dataset, backbone, "json")],
        params=["seeds"],
        report={layout.comparison(cfg, dataset, backbone, "csv"): "workflow/report/comparison.rst"},
    )


def notebook_stages(cfg: dict, dataset: str) -> list[Stage]:
    """The analysis notebooks, executed by papermill: the leaves of the DAG. Their figures are DVC plots and
    Snakemake report items."""
    from recunlearn.stages.notebook import NOTEBOOKS, notebook_stage_spec

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
            deps=[*layout.split_files(cfg, dataset), *_code("stages.data")],
            metrics=[layout.popularity_metrics(cfg, dataset)],
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
