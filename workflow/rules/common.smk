# Load and validate the configuration with the package's schema (defaults live there), and build the plan.
import json
import shutil
import sys

from recunlearn.config import load_config
from recunlearn.errors import RecUnlearnError
from recunlearn.pipeline.plan import build_plan

if config and not workflow.overwrite_configfiles:
    sys.exit("recunlearn: error: pass settings with --configfile FILE, not --config KEY=VALUE "
             "(stage commands read the config file, so overrides on the command line would not reach them)")
import os

# relative to the working directory, so stage commands are the same text as in dvc.yaml
CONFIG_FILE = (os.path.relpath(workflow.overwrite_configfiles[-1]) if workflow.overwrite_configfiles
               else "config/config.yaml")
try:
    CFG = load_config(CONFIG_FILE)
except RecUnlearnError as exc:
    sys.exit(f"recunlearn: error: {exc}")
PLAN = build_plan(CFG)
if shutil.which("recunlearn") is None:
    sys.exit("recunlearn: error: the `recunlearn` command is not on PATH; activate the venv (source .venv/bin/activate)")


def param_values(stage):
    """The resolved values of the config keys a stage reads: a change re-runs it (Snakemake's params trigger)."""
    values = {}
    for dotted in stage.params:
        node = CFG
        for part in dotted.split("."):
            node = node[part]
        values[dotted] = node
    return json.dumps(values, sort_keys=True)
