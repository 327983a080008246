# Data steps, once per dataset: raw files, the split, the request sets, the popularity floor.


rule download:
    input:
        deps("download"),
    output:
        directory(path(layout.RAW_DIR)),
    params:
        settings=settings("download"),
    log:
        log_path("download", "dataset"),
    threads: step_threads("download")
    resources:
        **step_resources("download"),
    shell:
        "recunlearn {RECUNLEARN} download --dataset {wildcards.dataset}"


rule preprocess:
    input:
        deps("preprocess"),
    output:
        [path(layout.SPLIT_FILE, name=name) for name in layout.SPLIT_NAMES],
        stats=path(layout.SPLIT_STATS),
    params:
        settings=settings("preprocess"),
    log:
        log_path("preprocess", "dataset"),
    threads: step_threads("preprocess")
    resources:
        **step_resources("preprocess"),
    shell:
        "recunlearn {RECUNLEARN} preprocess --dataset {wildcards.dataset}"


rule requests:
    input:
        deps("requests"),
    output:
        [path(layout.REQUEST_FILE, request=rid) for rid in REQUEST_IDS],
        summary=path(layout.REQUEST_SUMMARY),
    params:
        settings=settings("requests"),
    log:
        log_path("requests", "dataset"),
    threads: step_threads("requests")
    resources:
        **step_resources("requests"),
    shell:
        "recunlearn {RECUNLEARN} requests --dataset {wildcards.dataset}"


rule popularity:
    input:
        deps("popularity"),
    output:
        path(layout.POPULARITY),
    params:
        settings=settings("popularity"),
    log:
        log_path("popularity", "dataset"),
    threads: step_threads("popularity")
    resources:
        **step_resources("popularity"),
    shell:
        "recunlearn {RECUNLEARN} popularity --dataset {wildcards.dataset}"
