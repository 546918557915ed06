# Training jobs, one rule per kind so that each sits at one level of the rule graph: `train_teacher` (a teacher, a
# plain supervised run), `train_student` (a student without a teacher), `distill_student` (a student distilling from
# its dataset's teacher). All three write the same RUN layout (common.smk); the full papermill log goes to the job's
# log file, and its per-epoch lines ("epoch 3/25 | ... | val miou 12.3 | 40.1s") also reach the console, prefixed
# with the run, so a long job shows its progress.
rule train_teacher:
    input:
        unpack(train_inputs),
    output:
        **run_outputs(),
    log:
        f"{RUN_LOG_DIR}/papermill.log",
    benchmark:
        RUN_BENCHMARK
    wildcard_constraints:
        method=grid.TEACHER,
    threads: 2
    resources:
        gpu=gpus(),
    conda:
        "../../environment.yml"
    params:
        python=sys.executable,
        run=run_settings,
        notebook=notebook_run,
    shell:
        papermill(progress=True)


use rule train_teacher as train_student with:
    wildcard_constraints:
        method=_alternatives(TEACHERLESS),


use rule train_teacher as distill_student with:
    wildcard_constraints:
        method=_alternatives(DISTILLING),
