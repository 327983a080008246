# One rule per planned stage. Outputs that are folders are declared as directory(); `snakemake --report`
# picks up the outputs a stage marks for the report.
import shlex


def _outputs(stage):
    result = []
    for path in stage.outputs:
        out = directory(path) if stage.is_directory(path) else path
        if path in stage.report:
            out = report(out, caption=stage.report[path], category=stage.name.split("@")[0])
        result.append(out)
    return result


rule all:
    input: [out for stage in PLAN for out in stage.outputs]
    default_target: True


for _stage in PLAN:
    rule:
        name: _stage.rule_name
        input: _stage.deps
        output: _outputs(_stage)
        params: config=param_values(_stage)
        threads: _stage.threads
        shell: shlex.join(_stage.cmd)
