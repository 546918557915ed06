rule table:
    input:
        notebook=NOTEBOOKS / "tables.ipynb",
        kernel="resources/kernel/intrakd.flag",
        metrics=table_metrics,
    output:
        csv="results/tables/{table}.csv",
        html=report(
            "results/tables/{table}.html",
            caption="../report/table.rst",
            category="Tables",
            labels={"table": "{table}"},
        ),
        md="results/tables/{table}.md",
        figure=report(
            "results/figures/{table}.png",
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "{table}"},
        ),
        notebook="results/notebooks/{table}.ipynb",
    log:
        "results/logs/tables/{table}.log",
    threads: 1
    localrule: True
    conda:
        "../../environment.yml"
    params:
        python=sys.executable,
        notebook=table_params,
        caption=table_caption_params,
    shell:
        papermill()


rule figures:
    input:
        notebook=NOTEBOOKS / "figures.ipynb",
        kernel="resources/kernel/intrakd.flag",
        metrics=all_metrics(),
        models=figure_models,
    output:
        **figure_reports(),
        notebook="results/notebooks/figures.ipynb",
    log:
        "results/logs/figures.log",
    threads: 1
    localrule: True
    conda:
        "../../environment.yml"
    params:
        python=sys.executable,
        notebook=figures_params,
    shell:
        papermill()


# The claims verdict (intrakd verdict): every run's metrics and the per-image scores the figures job wrote.
rule verdict:
    input:
        metrics=all_metrics(),
        scores=score_outputs(),
    output:
        csv="results/tables/verdict.csv",
        html=report(
            "results/tables/verdict.html",
            caption="../report/verdict.rst",
            category="Tables",
            labels={"table": "verdict"},
        ),
        md="results/tables/verdict.md",
    log:
        "results/logs/verdict.log",
    threads: 1
    localrule: True
    conda:
        "../../environment.yml"
    params:
        python=sys.executable,
    shell:
        "{params.python:q} -m intrakd.cli verdict {input.metrics:q} --out \"$(dirname {output.csv:q})\" "
        "--figures results/figures &> {log:q}"


# The Snakemake report of everything above, rebuilt whenever a table, a figure or the verdict is (a nested
# `snakemake --report`, which reads the metadata of the finished jobs; --nolock: this build holds the lock).
rule report:
    input:
        expand("results/tables/{table}.html", table=TABLES),
        expand("results/figures/{table}.png", table=TABLES),
        figure_outputs(),
        rules.verdict.output,
    output:
        "results/report.html",
    log:
        "results/logs/report.log",
    threads: 1
    localrule: True
    conda:
        "../../environment.yml"
    params:
        python=sys.executable,
        snakefile=workflow.main_snakefile,
    shell:
        "{params.python:q} -m snakemake --snakefile {params.snakefile:q} --directory . --nolock "
        "--report {output:q} &> {log:q}"
