"""The pipeline's DAG, defined once and rendered for both Snakemake and DVC.

`build_plan(cfg)` returns every job the configuration asks for: its step (the Snakemake rule that runs it), its
wildcards, its command (a call of this package's CLI), inputs, outputs, metrics and the config keys it reads.
The Snakefile's rules take their output patterns from `layout` and ask the plan for each job's inputs, params and
targets (`Plan.job`); `recunlearn dvc-yaml` writes the same jobs as dvc.yaml (`pipeline.dvc`). The DAG-equality
test and `dvc-yaml --check` fail when the two disagree.

Every output path is a template in `layout`, and every setting that changes an output is either in its path
(dataset, backbone, seed, kind, request id, method) or a declared param of its job.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

from recunlearn import report as notebook_report
from recunlearn.components import method_base, needs_preparation
from recunlearn.data.requests import request_ids
from recunlearn.pipeline import layout
from recunlearn.pipeline.deps import closure, schema_files
from recunlearn.pipeline.kinds import adversarial_request_ids, evaluated_request_ids, original_kind, retrain_kind

STEPS = (
    "download",
    "preprocess",
    "requests",
    "popularity",
    "train",
    "adversarial",
    "prepare",
    "unlearn",
    "reference",
    "compare",
    "notebook",
)
WILDCARDS = ("dataset", "backbone", "seed", "kind", "request", "method", "notebook")  # order inside a job name
# Keys that decide which jobs exist: the compare and notebook jobs track them, so a change of any of them
# re-runs a job that can tell a stale dvc.yaml (see `pipeline.dvc.check_fresh`).
GRID_KEYS = ("results_dir", "datasets", "backbones", "seeds", "methods", "requests")


def job_name(step: str, wildcards: dict) -> str:
    """`step@dataset/backbone/seedN/...`: the name of a job in logs, in dvc.yaml and in `recunlearn` log files."""
    parts = [f"seed{wildcards[k]}" if k == "seed" else str(wildcards[k]) for k in WILDCARDS if k in wildcards]
    return f"{step}@{'/'.join(parts)}" if parts else step


@dataclass
class Stage:
    """One job of the DAG: a CLI call with its files and the config keys it reads."""

    step: str
    wildcards: dict[str, str]
    cmd: list[str]
    deps: list[str]
    outs: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    params: list[str] = field(default_factory=list)  # dotted config keys
    threads: int = 1

    def __post_init__(self) -> None:
        self.wildcards = {k: str(self.wildcards[k]) for k in WILDCARDS if k in self.wildcards}

    @property
    def name(self) -> str:
        return job_name(self.step, self.wildcards)

    @property
    def outputs(self) -> list[str]:
        return self.outs + self.metrics + self.plots

    @property
    def rule_name(self) -> str:
        """The DVC stage name: DVC forbids punctuation but `_` and `-`. It starts with `<step>_`."""
        return "".join(c if c.isalnum() else "_" for c in self.name)


class Plan(list):
    """The jobs of one configuration in a topological order, with the look-ups the Snakefile's rules make."""

    def __init__(self, cfg: dict, stages: list[Stage]):
        super().__init__(stages)
        self.cfg = cfg
        self._index = {(s.step, tuple(sorted(s.wildcards.items()))): s for s in stages}

    def job(self, step: str, wildcards) -> Stage:
        """The job of `step` whose wildcards are `wildcards` (a Snakemake Wildcards object or a dict)."""
        items = dict(wildcards.items()) if hasattr(wildcards, "items") else dict(wildcards)
        key = (step, tuple(sorted((k, str(v)) for k, v in items.items())))
        try:
            return self._index[key]
        except KeyError:
            raise KeyError(f"no {step} job for {items} in the plan of {self.cfg.get('_path')}") from None

    def jobs(self, step: str) -> list[Stage]:
        return [s for s in self if s.step == step]

    @property
    def targets(self) -> list[str]:
        """Every output of every job: what `rule all` asks for."""
        return [out for stage in self for out in stage.outputs]

    def param_values(self, step: str, wildcards) -> str:
        """The resolved values of the config keys a job reads, as JSON: a change re-runs it (Snakemake's params
        trigger; DVC tracks the same keys where the config file spells them out)."""
        return json.dumps({p: lookup(self.cfg, p) for p in self.job(step, wildcards).params}, sort_keys=True)

    def resources(self, step: str) -> dict[str, int]:
        """What each job of `step` asks a scheduler for (Snakemake `resources:`), see `step_resources`."""
        return step_resources(self.cfg, step)

    def wildcard_constraints(self) -> dict[str, str]:
        """One regex per wildcard: exactly the values the plan's jobs use (`kind` holds a slash for retrain)."""
        values: dict[str, set[str]] = {}
        for stage in self:
            for k, v in stage.wildcards.items():
                values.setdefault(k, set()).add(v)
        # a wildcard no job uses still needs a constraint that matches nothing real
        return {
            k: "|".join(re.escape(v) for v in sorted(values.get(k, ()), key=lambda v: (-len(v), v))) or "(?!x)x"
            for k in WILDCARDS
        }


def step_resources(cfg: dict, step: str) -> dict[str, int]:
    """The config's `resources.<step>` (memory in MB, wall time in minutes, GPUs), with no GPU unless `device` is
    a CUDA device: a job asks a scheduler for what it will use, so a CPU run on a cluster never waits for a GPU."""
    wanted = dict(cfg["resources"][step])
    if not cfg["device"].startswith("cuda"):
        wanted["gpu"] = 0
    return wanted


def lookup(cfg: dict, dotted: str):
    """The value at a dotted key path. A key may itself hold dots (a method alias such as `unlearnrec_lu_0.1`):
    at each level the longest key that matches wins; a path that matches no key raises KeyError."""
    node, rest = cfg, dotted
    while rest:
        key = next((k for k in sorted(node, key=len, reverse=True) if rest == k or rest.startswith(f"{k}.")), None)
        if key is None:
            raise KeyError(rest)
        node, rest = node[key], rest[len(key) + 1 :]
    return node


def cli_args(cfg: dict) -> list[str]:
    """The global options every stage command carries: the config file and the overrides given with it."""
    args = ["--config", cfg["_path"]]
    for key, value in (cfg.get("_overrides") or {}).items():
        args += ["--set", f"{key}={json.dumps(value, separators=(',', ':'))}"]
    return args


def _cli(cfg: dict, *args: str) -> list[str]:
    return ["recunlearn", *cli_args(cfg), *args]


def command(stage: Stage) -> str:
    """The stage's command as one shell line (what dvc.yaml and the Snakemake rule run)."""
    return shlex.join(stage.cmd)


def _code(*modules: str) -> list[str]:
    """The source files a job of these modules depends on (static import closure, see `deps`)."""
    return closure(*(f"recunlearn.{m}" for m in modules))


def _custom(cfg: dict, dataset: str) -> list[str]:
    return [f"custom_datasets.{dataset}"] if dataset in cfg["custom_datasets"] else []


def _method_base(cfg: dict, method: str) -> str:
    return method_base(cfg, method)


def _needs_preparation(cfg: dict, method: str) -> bool:
    """Whether `method` has a prepare step (read from its schema fragment: no torch, no method module)."""
    return needs_preparation(cfg, method)


def data_code() -> list[str]:
    return [*_code("stages.data"), *schema_files()]


def data_stages(cfg: dict, dataset: str) -> list[Stage]:
    """download -> preprocess -> request sets, for one dataset."""
    raw = layout.raw_dir(cfg, dataset)
    wc = {"dataset": dataset}
    download = Stage(
        step="download",
        wildcards=wc,
        cmd=_cli(cfg, "download", "--dataset", dataset),
        deps=data_code(),
        outs=[raw],
        params=_custom(cfg, dataset),
    )
    preprocess = Stage(
        step="preprocess",
        wildcards=wc,
        cmd=_cli(cfg, "preprocess", "--dataset", dataset),
        deps=[raw, *data_code()],
        outs=layout.split_files(cfg, dataset),
        metrics=[layout.split_stats(cfg, dataset)],
        params=["preprocess", *_custom(cfg, dataset)],
    )
    requests = Stage(
        step="requests",
        wildcards=wc,
        cmd=_cli(cfg, "requests", "--dataset", dataset),
        deps=[*layout.split_files(cfg, dataset), *data_code()],
        outs=[layout.request_file(cfg, dataset, rid) for rid in request_ids(cfg["requests"])],
        metrics=[layout.request_summary(cfg, dataset)],
        params=["requests.seed", "requests.random_edges", "requests.users"],
    )
    popularity = Stage(
        step="popularity",
        wildcards=wc,
        cmd=_cli(cfg, "popularity", "--dataset", dataset),
        deps=[*layout.split_files(cfg, dataset), *data_code()],
        metrics=[layout.popularity_metrics(cfg, dataset)],
        params=["train.ks"],
    )
    return [download, preprocess, requests, popularity]


def model_code(backbone: str) -> list[str]:
    """What a trained model depends on: the training stage, the backbone and their defaults."""
    return [*_code("stages.train", f"backbones.{backbone}"), *schema_files(("backbones", backbone))]


def _train_stage(cfg: dict, dataset: str, backbone: str, seed: int, kind: str, graph_deps: list[str]) -> Stage:
    """The job that trains one model kind: writes its checkpoint, metrics and training curve.

    Args:
        cfg: the validated configuration (paths, CLI arguments, threads).
        dataset: dataset name.
        backbone: backbone registry name.
        seed: training seed.
        kind: model kind to train, 'original', 'attacked' or 'retrain/<request id>'.
        graph_deps: the files its training graph is read from (split files, plus the attacked set or the request).
    """
    return Stage(
        step="train",
        wildcards={"dataset": dataset, "backbone": backbone, "seed": seed, "kind": kind},
        cmd=_cli(cfg, "train", "--dataset", dataset, "--backbone", backbone, "--seed", str(seed), "--kind", kind),
        deps=[*graph_deps, *model_code(backbone)],
        outs=[layout.checkpoint(cfg, dataset, backbone, seed, kind)],
        metrics=[layout.model_metrics(cfg, dataset, backbone, seed, kind)],
        plots=[layout.training_history(cfg, dataset, backbone, seed, kind)],
        params=[f"backbone_settings.{backbone}", "train"],
        threads=cfg["threads"],
    )


def model_stages(cfg: dict, dataset: str, backbone: str, seed: int) -> list[Stage]:
    """Original training, adversarial injection, training on the attacked graph, Retrain per request set."""
    split = layout.split_files(cfg, dataset)
    stages = [_train_stage(cfg, dataset, backbone, seed, "original", split)]
    for rid in adversarial_request_ids(cfg):
        stages.append(
            Stage(
                step="adversarial",
                wildcards={"dataset": dataset, "backbone": backbone, "seed": seed},
                cmd=_cli(cfg, "adversarial", "--dataset", dataset, "--backbone", backbone, "--seed", str(seed)),
                deps=[*split, layout.checkpoint(cfg, dataset, backbone, seed, "original"), *model_code(backbone)],
                outs=[
                    layout.request_path(cfg, dataset, backbone, seed, rid),
                    layout.attacked_train(cfg, dataset, backbone, seed),
                ],
                metrics=[layout.adversarial_summary(cfg, dataset, backbone, seed)],
                params=["requests.adversarial", "requests.seed"],
                threads=cfg["threads"],
            )
        )
        stages.append(
            _train_stage(
                cfg, dataset, backbone, seed, "attacked", [*split, layout.attacked_train(cfg, dataset, backbone, seed)]
            )
        )
    for rid in request_ids(cfg["requests"]):
        stages.append(
            _train_stage(
                cfg, dataset, backbone, seed, retrain_kind(rid), [*split, layout.request_file(cfg, dataset, rid)]
            )
        )
    return stages


def method_code(cfg: dict, method: str, backbone: str) -> list[str]:
    """What a job running `method` (or an alias of it) depends on: the unlearning stage, the method's module and
    the backbone's, and their defaults. Editing one method re-runs only its jobs."""
    base = _method_base(cfg, method)
    return [
        *_code("stages.unlearn", f"unlearning.{base}", f"backbones.{backbone}"),
        *schema_files(("backbones", backbone), ("methods", base)),
    ]


def _graph_deps(cfg: dict, dataset: str, backbone: str, seed: int, kind: str) -> list[str]:
    """The files a job using a trained model kind reads: the split, its checkpoint and, if attacked, the attacked set.

    Args:
        cfg: the validated configuration (for the paths).
        dataset: dataset name.
        backbone: backbone registry name.
        seed: training seed of the run.
        kind: trained model kind, 'original', 'attacked' or 'retrain/<request id>'.
    """
    deps = [*layout.split_files(cfg, dataset), layout.checkpoint(cfg, dataset, backbone, seed, kind)]
    if kind == "attacked":
        deps.append(layout.attacked_train(cfg, dataset, backbone, seed))
    return deps


def unlearning_stages(cfg: dict, dataset: str, backbone: str, seed: int) -> list[Stage]:
    """Per-method preparation per trained model kind, then every method and the references per request."""
    stages: list[Stage] = []
    rids = evaluated_request_ids(cfg)
    kinds = sorted({original_kind(rid) for rid in rids})
    run = {"dataset": dataset, "backbone": backbone, "seed": seed}
    args = ("--dataset", dataset, "--backbone", backbone, "--seed", str(seed))
    for method in cfg["methods"]:
        if not _needs_preparation(cfg, method):
            continue
        for kind in kinds:
            stages.append(
                Stage(
                    step="prepare",
                    wildcards={**run, "kind": kind, "method": method},
                    cmd=_cli(cfg, "prepare", *args, "--kind", kind, "--method", method),
                    deps=[*_graph_deps(cfg, dataset, backbone, seed, kind), *method_code(cfg, method, backbone)],
                    outs=[layout.prepared_state(cfg, dataset, backbone, seed, kind, method)],
                    metrics=[layout.prepared_report(cfg, dataset, backbone, seed, kind, method)],
                    params=[f"method_settings.{method}", "train"],
                    threads=cfg["threads"],
                )
            )
    for rid in rids:
        kind = original_kind(rid)
        request = layout.request_path(cfg, dataset, backbone, seed, rid)
        base_deps = [*_graph_deps(cfg, dataset, backbone, seed, kind), request]
        stages.append(
            Stage(
                step="reference",
                wildcards={**run, "request": rid},
                cmd=_cli(cfg, "reference", *args, "--request", rid),
                deps=[
                    *base_deps,
                    *_code("stages.unlearn", f"backbones.{backbone}"),
                    *schema_files(("backbones", backbone)),
                    layout.checkpoint(cfg, dataset, backbone, seed, retrain_kind(rid)),
                    layout.model_metrics(cfg, dataset, backbone, seed, retrain_kind(rid)),
                    layout.model_metrics(cfg, dataset, backbone, seed, kind),
                ],
                outs=[layout.unlearn_scores(cfg, dataset, backbone, seed, rid, "reference")],
                metrics=[layout.unlearn_metrics(cfg, dataset, backbone, seed, rid, "reference")],
                params=["requests.seed", "train.ks"],
                threads=cfg["threads"],
            )
        )
        for method in cfg["methods"]:
            deps = [*base_deps, *method_code(cfg, method, backbone)]
            if _needs_preparation(cfg, method):
                deps.append(layout.prepared_state(cfg, dataset, backbone, seed, kind, method))
            stages.append(
                Stage(
                    step="unlearn",
                    wildcards={**run, "request": rid, "method": method},
                    cmd=_cli(cfg, "unlearn", *args, "--request", rid, "--method", method),
                    deps=deps,
                    outs=[layout.unlearn_scores(cfg, dataset, backbone, seed, rid, method)],
                    metrics=[layout.unlearn_metrics(cfg, dataset, backbone, seed, rid, method)],
                    params=[f"method_settings.{method}", "requests.seed", "train"],
                    threads=cfg["threads"],
                )
            )
    return stages


def comparison_stage(cfg: dict, dataset: str, backbone: str) -> Stage:
    """One table per dataset and backbone, over every seed, request and method, with the long per-seed table
    and the per-request score summaries the notebooks read."""
    deps = []
    for seed in cfg["seeds"]:
        for rid in evaluated_request_ids(cfg):
            for m in ["reference", *cfg["methods"]]:
                deps += [
                    layout.unlearn_metrics(cfg, dataset, backbone, seed, rid, m),
                    layout.unlearn_scores(cfg, dataset, backbone, seed, rid, m),
                ]
            deps += [
                layout.prepared_report(cfg, dataset, backbone, seed, original_kind(rid), m)
                for m in cfg["methods"]
                if _needs_preparation(cfg, m)
            ]
    return Stage(
        step="compare",
        wildcards={"dataset": dataset, "backbone": backbone},
        cmd=_cli(cfg, "compare", "--dataset", dataset, "--backbone", backbone),
        deps=[*dict.fromkeys(deps), *_code("stages.compare"), *schema_files()],
        outs=[
            layout.comparison(cfg, dataset, backbone, "csv"),
            layout.comparison(cfg, dataset, backbone, "md"),
            layout.comparison_long(cfg, dataset, backbone),
            layout.score_summaries(cfg, dataset, backbone),
        ],
        metrics=[layout.comparison(cfg, dataset, backbone, "json")],
        params=list(GRID_KEYS),
    )


def notebook_code() -> list[str]:
    """The notebook stage and the report helper the notebooks import."""
    return _code("report", "stages.notebook")


def notebook_outputs(cfg: dict, name: str, dataset: str) -> tuple[list[str], list[str]]:
    """(executed notebook and its HTML, figures) of notebook `name` on `dataset`."""
    stem = f"{notebook_report.notebook_dir(cfg)}/{name}_{dataset}"
    figures = [f"{notebook_report.figure_dir(cfg)}/{f}" for f in notebook_report.figure_names(name, dataset)]
    return [f"{stem}.ipynb", f"{stem}.html"], figures


def notebook_stages(cfg: dict, dataset: str) -> list[Stage]:
    """The analysis notebooks, executed by papermill: the leaves of the DAG. They read only what the compare
    jobs write; their figures are DVC plots and Snakemake report items."""
    stages = []
    for name in notebook_report.NOTEBOOKS:
        outs, figures = notebook_outputs(cfg, name, dataset)
        stages.append(
            Stage(
                step="notebook",
                wildcards={"dataset": dataset, "notebook": name},
                cmd=_cli(cfg, "notebook", "--dataset", dataset, "--notebook", name),
                deps=[*notebook_report.notebook_inputs(cfg, dataset), f"notebooks/{name}.py", *notebook_code()],
                outs=outs,
                plots=figures,
                params=list(GRID_KEYS),
            )
        )
    return stages


def notebook_rules() -> list[tuple[str, list[str], list[str]]]:
    """Notebooks grouped by the shape of their figure names, one Snakemake rule per group:
    (rule name, notebooks, figure patterns with `{notebook}` and `{dataset}` wildcards). A rule's outputs are
    fixed, so notebooks with a different number of figures need their own rule; the first group is `notebook`."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for name in notebook_report.NOTEBOOKS:
        shape = tuple(f.replace(name, "{notebook}", 1) for f in notebook_report.figure_names(name, "{dataset}"))
        groups.setdefault(shape, []).append(name)
    rules = []
    for i, (shape, names) in enumerate(groups.items()):
        rules.append(("notebook" if i == 0 else "notebook_" + "_".join(names), names, list(shape)))
    return rules


def build_plan(cfg: dict) -> Plan:
    """All jobs for the configuration, in a topological order."""
    stages: list[Stage] = []
    for dataset in cfg["datasets"]:
        stages += data_stages(cfg, dataset)
        for backbone in cfg["backbones"]:
            for seed in cfg["seeds"]:
                stages += model_stages(cfg, dataset, backbone, seed)
            for seed in cfg["seeds"]:
                stages += unlearning_stages(cfg, dataset, backbone, seed)
            stages.append(comparison_stage(cfg, dataset, backbone))
        stages += notebook_stages(cfg, dataset)
    return Plan(cfg, stages)


def all_outputs(cfg: dict) -> list[str]:
    return build_plan(cfg).targets
