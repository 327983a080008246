"""Where every artifact lives: one path template per artifact kind, and a thin function per template.

The templates are the single table both renderers read: Snakemake rules use them as output patterns (with
`pattern`, which fills in the results folder and leaves the other fields as wildcards), the plan and the stages
format them through the functions below. A path encodes dataset, backbone, seed, model kind, request id and
method; every other setting that changes an output is a declared param of the stage that writes it.

Template fields: results, dataset, backbone, seed, kind ('original', 'attacked' or 'retrain/<request id>', so
it holds a slash), request, method, name (a split file), ext, step and job (log files), notebook.
"""

from __future__ import annotations

import string

from recunlearn.data.split import SPLITS

SPLIT_NAMES = (*SPLITS, "users", "items")  # the files a split consists of

RAW_DIR = "{results}/raw/{dataset}"
SPLIT_DIR = "{results}/{dataset}/split"
SPLIT_FILE = SPLIT_DIR + "/{name}.tsv"
SPLIT_STATS = SPLIT_DIR + "/stats.json"
REQUESTS_DIR = "{results}/{dataset}/requests"
REQUEST_FILE = REQUESTS_DIR + "/{request}.tsv"
REQUEST_SUMMARY = REQUESTS_DIR + "/summary.json"
POPULARITY = "{results}/{dataset}/popularity.json"
LOG = "{results}/logs/{step}/{job}.log"

RUN_DIR = "{results}/{dataset}/{backbone}/seed{seed}"
MODEL_DIR = RUN_DIR + "/{kind}"
CHECKPOINT = MODEL_DIR + "/model.pt"
MODEL_METRICS = MODEL_DIR + "/metrics.json"
TRAINING_HISTORY = MODEL_DIR + "/history.csv"

ADVERSARIAL_DIR = RUN_DIR + "/adversarial"
ADVERSARIAL_REQUEST = ADVERSARIAL_DIR + "/{request}.tsv"
ATTACKED_TRAIN = ADVERSARIAL_DIR + "/attacked_train.tsv"
ADVERSARIAL_SUMMARY = ADVERSARIAL_DIR + "/summary.json"

PREPARED_DIR = MODEL_DIR + "/prepared/{method}"
PREPARED_STATE = PREPARED_DIR + "/state.pt"
PREPARED_REPORT = PREPARED_DIR + "/report.json"

UNLEARN_DIR = RUN_DIR + "/unlearn/{request}/{method}"
UNLEARN_METRICS = UNLEARN_DIR + "/metrics.json"
UNLEARN_SCORES = UNLEARN_DIR + "/scores.npz"

COMPARISON = "{results}/{dataset}/{backbone}/comparison.{ext}"
COMPARISON_LONG = "{results}/{dataset}/{backbone}/comparison_long.csv"
SCORE_SUMMARIES = "{results}/{dataset}/{backbone}/scores.json"


class _KeepMissing(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def pattern(template: str, cfg: dict, **fixed) -> str:
    """`template` with the results folder (and any `fixed` field) filled in and every other field left as a
    `{wildcard}`: the form Snakemake output patterns take."""
    return string.Formatter().vformat(template, (), _KeepMissing(results=_root(cfg), **fixed))


def fields(template: str) -> list[str]:
    """The field names of a template, in order of first appearance."""
    names = [name for _, name, _, _ in string.Formatter().parse(template) if name]
    return list(dict.fromkeys(names))


def _root(cfg: dict) -> str:
    return cfg["results_dir"].rstrip("/")


def _fill(template: str, cfg: dict, **values) -> str:
    return template.format(results=_root(cfg), **values)


def raw_dir(cfg: dict, dataset: str) -> str:
    return _fill(RAW_DIR, cfg, dataset=dataset)


def split_dir(cfg: dict, dataset: str) -> str:
    return _fill(SPLIT_DIR, cfg, dataset=dataset)


def split_files(cfg: dict, dataset: str) -> list[str]:
    return [_fill(SPLIT_FILE, cfg, dataset=dataset, name=name) for name in SPLIT_NAMES]


def split_stats(cfg: dict, dataset: str) -> str:
    return _fill(SPLIT_STATS, cfg, dataset=dataset)


def requests_dir(cfg: dict, dataset: str) -> str:
    return _fill(REQUESTS_DIR, cfg, dataset=dataset)


def request_file(cfg: dict, dataset: str, request_id: str) -> str:
    return _fill(REQUEST_FILE, cfg, dataset=dataset, request=request_id)


def request_summary(cfg: dict, dataset: str) -> str:
    return _fill(REQUEST_SUMMARY, cfg, dataset=dataset)


def log_file(cfg: dict, stage_name: str) -> str:
    """The log of the stage named `step@job` (see `plan.Stage.name`): <results>/logs/<step>/<job>.log."""
    step, _, job = stage_name.partition("@")
    return (
        _fill(LOG, cfg, step=step, job=job.replace(":", "_"))
        if job
        else f"{_root(cfg)}/logs/{step.replace(':', '_')}.log"
    )


def run_dir(cfg: dict, dataset: str, backbone: str, seed: int) -> str:
    return _fill(RUN_DIR, cfg, dataset=dataset, backbone=backbone, seed=seed)


def model_dir(cfg: dict, dataset: str, backbone: str, seed: int, kind: str) -> str:
    """Folder of one trained model: <results>/<dataset>/<backbone>/seed<seed>/<kind>.

    Args:
        cfg: the validated configuration; only its `results_dir` (the results folder) is read.
        dataset: dataset name.
        backbone: backbone registry name.
        seed: training seed of the run (the `seed<seed>` folder).
        kind: trained model, 'original', 'attacked' or 'retrain/<request id>' (holds a slash).
    """
    return _fill(MODEL_DIR, cfg, dataset=dataset, backbone=backbone, seed=seed, kind=kind)


def checkpoint(cfg: dict, dataset: str, backbone: str, seed: int, kind: str) -> str:
    """The saved weights of a trained model: <model_dir>/model.pt.

    Args:
        cfg: the validated configuration; only its `results_dir` (the results folder) is read.
        dataset: dataset name.
        backbone: backbone registry name.
        seed: training seed of the run (the `seed<seed>` folder).
        kind: trained model, 'original', 'attacked' or 'retrain/<request id>' (holds a slash).
    """
    return _fill(CHECKPOINT, cfg, dataset=dataset, backbone=backbone, seed=seed, kind=kind)


def model_metrics(cfg: dict, dataset: str, backbone: str, seed: int, kind: str) -> str:
    """The test metrics of a trained model: <model_dir>/metrics.json.

    Args:
        cfg: the validated configuration; only its `results_dir` (the results folder) is read.
        dataset: dataset name.
        backbone: backbone registry name.
        seed: training seed of the run (the `seed<seed>` folder).
        kind: trained model, 'original', 'attacked' or 'retrain/<request id>' (holds a slash).
    """
    return _fill(MODEL_METRICS, cfg, dataset=dataset, backbone=backbone, seed=seed, kind=kind)


def training_history(cfg: dict, dataset: str, backbone: str, seed: int, kind: str) -> str:
    """The per-epoch training curve of a trained model: <model_dir>/history.csv.

    Args:
        cfg: the validated configuration; only its `results_dir` (the results folder) is read.
        dataset: dataset name.
        backbone: backbone registry name.
        seed: training seed of the run (the `seed<seed>` folder).
        kind: trained model, 'original', 'attacked' or 'retrain/<request id>' (holds a slash).
    """
    return _fill(TRAINING_HISTORY, cfg, dataset=dataset, backbone=backbone, seed=seed, kind=kind)


def adversarial_dir(cfg: dict, dataset: str, backbone: str, seed: int) -> str:
    return _fill(ADVERSARIAL_DIR, cfg, dataset=dataset, backbone=backbone, seed=seed)


def attacked_train(cfg: dict, dataset: str, backbone: str, seed: int) -> str:
    return _fill(ATTACKED_TRAIN, cfg, dataset=dataset, backbone=backbone, seed=seed)


def request_path(cfg: dict, dataset: str, backbone: str, seed: int, request_id: str) -> str:
    """Adversarial requests depend on the trained model; the others only on the split.

    Args:
        cfg: the validated configuration; only its `results_dir` (the results folder) is read.
        dataset: dataset name.
        backbone: backbone registry name (used only for adversarial requests).
        seed: training seed of the run (used only for adversarial requests).
        request_id: id of the deletion request; an 'adversarial-' prefix selects the run's adversarial folder.
    """
    if request_id.startswith("adversarial-"):
        return _fill(ADVERSARIAL_REQUEST, cfg, dataset=dataset, backbone=backbone, seed=seed, request=request_id)
    return request_file(cfg, dataset, request_id)


def adversarial_summary(cfg: dict, dataset: str, backbone: str, seed: int) -> str:
    return _fill(ADVERSARIAL_SUMMARY, cfg, dataset=dataset, backbone=backbone, seed=seed)


def popularity_metrics(cfg: dict, dataset: str) -> str:
    return _fill(POPULARITY, cfg, dataset=dataset)


def prepared_dir(cfg: dict, dataset: str, backbone: str, seed: int, kind: str, method: str) -> str:
    """One-off preparation of a method (IE pre-training, SISA shards) for a trained model kind.

    Args:
        cfg: the validated configuration; only its `results_dir` (the results folder) is read.
        dataset: dataset name.
        backbone: backbone registry name.
        seed: training seed of the run (the `seed<seed>` folder).
        kind: the trained model prepared for, 'original', 'attacked' or 'retrain/<request id>'.
        method: registered unlearning method name.
    """
    return _fill(PREPARED_DIR, cfg, dataset=dataset, backbone=backbone, seed=seed, kind=kind, method=method)


def prepared_state(cfg: dict, dataset: str, backbone: str, seed: int, kind: str, method: str) -> str:
    """The saved state of a method's preparation: <prepared_dir>/state.pt.

    Args:
        cfg: the validated configuration; only its `results_dir` (the results folder) is read.
        dataset: dataset name.
        backbone: backbone registry name.
        seed: training seed of the run (the `seed<seed>` folder).
        kind: trained model, 'original', 'attacked' or 'retrain/<request id>' (holds a slash).
        method: registered unlearning method name.
    """
    return _fill(PREPARED_STATE, cfg, dataset=dataset, backbone=backbone, seed=seed, kind=kind, method=method)


def prepared_report(cfg: dict, dataset: str, backbone: str, seed: int, kind: str, method: str) -> str:
    """The report of a method's preparation (its cost in 'seconds', ...): <prepared_dir>/report.json.

    Args:
        cfg: the validated configuration; only its `results_dir` (the results folder) is read.
        dataset: dataset name.
        backbone: backbone registry name.
        seed: training seed of the run (the `seed<seed>` folder).
        kind: trained model, 'original', 'attacked' or 'retrain/<request id>' (holds a slash).
        method: registered unlearning method name.
    """
    return _fill(PREPARED_REPORT, cfg, dataset=dataset, backbone=backbone, seed=seed, kind=kind, method=method)


def unlearn_dir(cfg: dict, dataset: str, backbone: str, seed: int, request_id: str, method: str) -> str:
    """Folder of one unlearning run: <run_dir>/unlearn/<request id>/<method>.

    Args:
        cfg: the validated configuration; only its `results_dir` (the results folder) is read.
        dataset: dataset name.
        backbone: backbone registry name.
        seed: training seed of the run (the `seed<seed>` folder).
        request_id: id of the deletion request (an 'adversarial-' prefix marks a model-dependent one).
        method: registered unlearning method name, or 'reference' for the Original and Retrain rows.
    """
    return _fill(UNLEARN_DIR, cfg, dataset=dataset, backbone=backbone, seed=seed, request=request_id, method=method)


def unlearn_metrics(cfg: dict, dataset: str, backbone: str, seed: int, request_id: str, method: str) -> str:
    """The metrics of one unlearning run: <unlearn_dir>/metrics.json.

    Args:
        cfg: the validated configuration; only its `results_dir` (the results folder) is read.
        dataset: dataset name.
        backbone: backbone registry name.
        seed: training seed of the run (the `seed<seed>` folder).
        request_id: id of the deletion request (an 'adversarial-' prefix marks a model-dependent one).
        method: registered unlearning method name, or 'reference' for the Original and Retrain rows.
    """
    return _fill(UNLEARN_METRICS, cfg, dataset=dataset, backbone=backbone, seed=seed, request=request_id, method=method)


def unlearn_scores(cfg: dict, dataset: str, backbone: str, seed: int, request_id: str, method: str) -> str:
    """The saved scores of one unlearning run: <unlearn_dir>/scores.npz.

    Args:
        cfg: the validated configuration; only its `results_dir` (the results folder) is read.
        dataset: dataset name.
        backbone: backbone registry name.
        seed: training seed of the run (the `seed<seed>` folder).
        request_id: id of the deletion request (an 'adversarial-' prefix marks a model-dependent one).
        method: registered unlearning method name, or 'reference' for the Original and Retrain rows.
    """
    return _fill(UNLEARN_SCORES, cfg, dataset=dataset, backbone=backbone, seed=seed, request=request_id, method=method)


def comparison(cfg: dict, dataset: str, backbone: str, ext: str) -> str:
    """The comparison table of every method x request for a dataset and backbone (csv, md or json)."""
    return _fill(COMPARISON, cfg, dataset=dataset, backbone=backbone, ext=ext)


def comparison_long(cfg: dict, dataset: str, backbone: str) -> str:
    """The long table behind the comparison: one row per (request, model, seed), every metric."""
    return _fill(COMPARISON_LONG, cfg, dataset=dataset, backbone=backbone)


def score_summaries(cfg: dict, dataset: str, backbone: str) -> str:
    """Per-request score distributions (deleted edges, non-edges, remaining edges) of every model, as JSON."""
    return _fill(SCORE_SUMMARIES, cfg, dataset=dataset, backbone=backbone)
