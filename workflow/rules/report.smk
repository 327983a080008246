# The comparison tables per dataset and backbone, and the analysis notebooks per dataset (papermill), whose
# figures go into `snakemake --report`.


rule compare:
    input:
        deps("compare"),
    output:
        csv=report(path(layout.COMPARISON, ext="csv"), caption="../report/comparison.rst", category="comparison"),
        md=path(layout.COMPARISON, ext="md"),
        long=path(layout.COMPARISON_LONG),
        scores=path(layout.SCORE_SUMMARIES),
        json=path(layout.COMPARISON, ext="json"),
    params:
        settings=settings("compare"),
    log:
        log_path("compare", "dataset", "backbone"),
    threads: step_threads("compare")
    resources:
        **step_resources("compare"),
    shell:
        "recunlearn {RECUNLEARN} compare --dataset {wildcards.dataset} --backbone {wildcards.backbone}"


# A rule's outputs are fixed, and the notebooks differ in how many figures they draw: one rule per figure
# layout (`plan.notebook_rules`), the first named `notebook`.
for _name, _notebooks, _figures in notebook_rules():

    rule:
        name:
            _name
        input:
            deps("notebook"),
        output:
            ipynb=f"{NOTEBOOK_DIR}/{{notebook}}_{{dataset}}.ipynb",
            html=f"{NOTEBOOK_DIR}/{{notebook}}_{{dataset}}.html",
            figures=[report(f"{FIGURE_DIR}/{figure}", caption="../report/figure.rst", category="notebooks")
                     for figure in _figures],
        wildcard_constraints:
            notebook="|".join(_notebooks),
        params:
            settings=settings("notebook"),
        log:
            log_path("notebook", "dataset", "notebook"),
        threads: step_threads("notebook")
        resources:
            **step_resources("notebook"),
        shell:
            "recunlearn {RECUNLEARN} notebook --dataset {wildcards.dataset} --notebook {wildcards.notebook}"
