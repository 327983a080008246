# One rule per planned stage. Outputs that are folders are declared as directory(); `snakemake --report`
# picks up the outputs a stage marks for the report.
import shlex


def _outputs(stage):
    result = []
    for path in stage.outputs:
        out = directory(path) if stage.is_directory(path) else path
        if path in stage.report:
            out = report(out, caption=f"{workflow.basedir}/{stage.report[path]}", category=stage.name.split("@")[0])
        result.append(out)
    return result


for _stage in PLAN:
    rule:
        name: _stage.rule_name
        input: _stage.deps
        output: _outputs(_stage)
        # Directive values are bound now, but a `shell:` expression would be evaluated when the job runs (and
        # would then see the loop's last stage): so the command travels in params and the shell string is fixed.
        params: config=param_values(_stage), cmd=shlex.join(_stage.cmd)
        threads: _stage.threads
        shell: "{params.cmd}"
