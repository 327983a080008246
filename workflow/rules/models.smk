# Trained models per dataset, backbone and seed: the original, the attacked one (after adversarial noise
# injection) and a Retrain model per random-edge or user-wise request (kind `retrain/<request>`).


rule train:
    input:
        deps("train"),
    output:
        checkpoint=path(layout.CHECKPOINT),
        metrics=path(layout.MODEL_METRICS),
        history=report(path(layout.TRAINING_HISTORY), caption="../report/training.rst", category="training"),
    params:
        settings=settings("train"),
    log:
        log_path("train", "dataset", "backbone", "seed", "kind"),
    threads: step_threads("train")
    resources:
        **step_resources("train"),
    shell:
        "recunlearn {RECUNLEARN} train --dataset {wildcards.dataset} --backbone {wildcards.backbone}"
        " --seed {wildcards.seed} --kind {wildcards.kind}"


rule adversarial:
    input:
        deps("adversarial"),
    output:
        request=path(layout.ADVERSARIAL_REQUEST, request=ADVERSARIAL_ID),
        attacked_train=path(layout.ATTACKED_TRAIN),
        summary=path(layout.ADVERSARIAL_SUMMARY),
    params:
        settings=settings("adversarial"),
    log:
        log_path("adversarial", "dataset", "backbone", "seed"),
    threads: step_threads("adversarial")
    resources:
        **step_resources("adversarial"),
    shell:
        "recunlearn {RECUNLEARN} adversarial --dataset {wildcards.dataset} --backbone {wildcards.backbone}"
        " --seed {wildcards.seed}"
