# Configuration, plan and the helpers the rule files use (rna-seq-star-deseq2's common.smk is the model).
# The package validates the configuration (its schemas hold the defaults). `--config KEY=VALUE` overrides are
# applied the same way and reach every stage command as `--set KEY=VALUE`, so each job sees what the plan saw.
# Output patterns are the path templates of recunlearn.pipeline.layout; inputs, params and targets come from the
# plan, the same one dvc.yaml is generated from.
import os
import shlex
import shutil
import sys

import yaml

from recunlearn.config import load_config
from recunlearn.data.requests import request_ids
from recunlearn.errors import RecUnlearnError
from recunlearn.pipeline import layout
from recunlearn.pipeline.kinds import adversarial_id
from recunlearn.pipeline.plan import build_plan, cli_args, job_name, notebook_rules
from recunlearn import report as notebook_report

# relative to the working directory, so stage commands are the same text as in dvc.yaml
CONFIG_FILE = (os.path.relpath(workflow.overwrite_configfiles[-1]) if workflow.overwrite_configfiles
               else "config/config.yaml")


def typed(value):
    """Snakemake parses nested `--config` values with YAML's base loader, which keeps every scalar a string
    (`seeds=[0,1]` gives ['0', '1']): type them the way the config file's YAML would."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return yaml.safe_load(value) if isinstance(value, str) else value


try:
    CFG = load_config(CONFIG_FILE, typed(dict(workflow.config_settings.config)))
except RecUnlearnError as exc:
    sys.exit(f"recunlearn: error: {exc}")
PLAN = build_plan(CFG)
if shutil.which("recunlearn") is None:
    sys.exit("recunlearn: error: the `recunlearn` command is not on PATH; activate the venv (source .venv/bin/activate)")

# what follows `recunlearn` in every stage command: the config file and the overrides, quoted for the shell
RECUNLEARN = shlex.join(cli_args(CFG))
REQUEST_IDS = request_ids(CFG["requests"])  # random-edge and user-wise request sets, written by `requests`
ADVERSARIAL_ID = adversarial_id(CFG["requests"]["adversarial"]["ratio"])
NOTEBOOK_DIR = notebook_report.notebook_dir(CFG)
FIGURE_DIR = notebook_report.figure_dir(CFG)


wildcard_constraints:
    **PLAN.wildcard_constraints(),


def path(template, **fixed):
    """An output pattern: the layout template with the results folder filled in, other fields as wildcards."""
    return layout.pattern(template, CFG, **fixed)


def log_path(step, *wildcards):
    """The log file a stage command writes (results/logs/<step>/<job>.log), as a pattern."""
    return layout.log_file(CFG, job_name(step, {w: "{" + w + "}" for w in wildcards}))


def deps(step):
    """Input function: the planned job's dependencies (data, upstream outputs, code and schema files)."""
    return lambda wildcards: PLAN.job(step, wildcards).deps


def settings(step):
    """Params function: the resolved config values the job reads, so a change re-runs it."""
    return lambda wildcards: PLAN.param_values(step, wildcards)


def step_resources(step):
    """mem_mb, runtime (minutes) and gpu of the step's jobs, from the config (`resources`; a GPU only on cuda)."""
    return PLAN.resources(step)


def step_threads(step):
    return max((job.threads for job in PLAN.jobs(step)), default=1)
