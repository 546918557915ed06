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
