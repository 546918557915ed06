rule table:
    input:
        notebook=NOTEBOOKS / "tables.ipynb",
        kernel="resources/kernel/intrakd.flag",
        metrics=table_metrics,
    output:
        csv=report(
            "results/tables/{table}.csv",
            caption="../report/table.rst",
            category="Tables",
            labels={"table": "{table}", "format": "csv"},
        ),
        md="results/tables/{table}.md",
        figure=report(
            "results/figures/{table}.png",
            caption="../report/figure.rst",
            category="Figures",
            labels={"table": "{table}"},
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
        run=table_params,
    shell:
        "{params.python:q} -m papermill {input.notebook:q} {output.notebook:q} -k intrakd --no-progress-bar "
        "--log-output -y {params.run:q} &> {log:q}"


rule figures:
    input:
        notebook=NOTEBOOKS / "figures.ipynb",
        kernel="resources/kernel/intrakd.flag",
        metrics=all_metrics(),
        models=figure_models,
    output:
        figures=report(
            figure_outputs(),
            caption="../report/paper_figures.rst",
            category="Figures",
        ),
        verdict_csv=report(
            "results/tables/verdict.csv",
            caption="../report/verdict.rst",
            category="Tables",
            labels={"table": "verdict", "format": "csv"},
        ),
        verdict_md="results/tables/verdict.md",
        notebook="results/notebooks/figures.ipynb",
    log:
        "results/logs/figures.log",
    threads: 1
    localrule: True
    conda:
        "../../environment.yml"
    params:
        python=sys.executable,
        run=figures_params,
    shell:
        "{params.python:q} -m papermill {input.notebook:q} {output.notebook:q} -k intrakd --no-progress-bar "
        "--log-output -y {params.run:q} &> {log:q}"
