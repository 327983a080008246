# Thin Snakefile: the DAG is defined once in recunlearn.pipeline (the same plan dvc.yaml is generated from).
#   snakemake --cores 2                                  the default run (config/config.yaml)
#   snakemake --cores 2 --configfile config/tiny.yaml    another configuration
include: "workflow/rules/common.smk"
include: "workflow/rules/stages.smk"
