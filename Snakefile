# Thin Snakefile: the DAG is defined once in recunlearn.pipeline (the same plan dvc.yaml is generated from).
#   snakemake --cores 2                                  the default run (config/config.yaml)
#   snakemake --cores 2 --configfile config/tiny.yaml    another configuration
include: "workflow/rules/common.smk"


rule all:
    input: [out for stage in PLAN for out in stage.outputs]


include: "workflow/rules/stages.smk"
