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
        run=table_params,
        caption=table_caption_params,
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
        **figure_reports(),
        verdict_csv="results/tables/verdict.csv",
        verdict_html=report(
            "results/tables/verdict.html",
            caption="../report/verdict.rst",
            category="Tables",
            labels={"table": "verdict"},
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
