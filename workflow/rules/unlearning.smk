# Unlearning per dataset, backbone and seed: one-off preparation of the methods that need it (per trained model
# kind), every method on every request, and the Original/Retrain reference rows of each request.


rule prepare:
    input:
        deps("prepare"),
    output:
        state=path(layout.PREPARED_STATE),
        report=path(layout.PREPARED_REPORT),
    params:
        settings=settings("prepare"),
    log:
        log_path("prepare", "dataset", "backbone", "seed", "kind", "method"),
    threads: step_threads("prepare")
    resources:
        **step_resources("prepare"),
    shell:
        "recunlearn {RECUNLEARN} prepare --dataset {wildcards.dataset} --backbone {wildcards.backbone}"
        " --seed {wildcards.seed} --kind {wildcards.kind} --method {wildcards.method}"


rule unlearn:
    input:
        deps("unlearn"),
    output:
        scores=path(layout.UNLEARN_SCORES),
        metrics=path(layout.UNLEARN_METRICS),
    params:
        settings=settings("unlearn"),
    log:
        log_path("unlearn", "dataset", "backbone", "seed", "request", "method"),
    threads: step_threads("unlearn")
    resources:
        **step_resources("unlearn"),
    shell:
        "recunlearn {RECUNLEARN} unlearn --dataset {wildcards.dataset} --backbone {wildcards.backbone}"
        " --seed {wildcards.seed} --request {wildcards.request} --method {wildcards.method}"


rule reference:
    input:
        deps("reference"),
    output:
        scores=path(layout.UNLEARN_SCORES, method="reference"),
        metrics=path(layout.UNLEARN_METRICS, method="reference"),
    params:
        settings=settings("reference"),
    log:
        log_path("reference", "dataset", "backbone", "seed", "request"),
    threads: step_threads("reference")
    resources:
        **step_resources("reference"),
    shell:
        "recunlearn {RECUNLEARN} reference --dataset {wildcards.dataset} --backbone {wildcards.backbone}"
        " --seed {wildcards.seed} --request {wildcards.request}"
