# Training jobs: the full papermill log goes to the job's log file; its per-epoch lines ("epoch 3/25 | ... | val
# miou 12.3 | 40.1s") also reach the console, prefixed with the run, so a long job shows its progress.
rule teacher:
    input:
        unpack(teacher_inputs),
    output:
        notebook="results/runs/{dataset}/{teacher}/teacher/seed{seed}/train.ipynb",
        metrics="results/runs/{dataset}/{teacher}/teacher/seed{seed}/metrics.json",
        history="results/runs/{dataset}/{teacher}/teacher/seed{seed}/history.csv",
        model="results/runs/{dataset}/{teacher}/teacher/seed{seed}/model.pt",
    log:
        "results/logs/runs/{dataset}/{teacher}/teacher/seed{seed}/papermill.log",
    benchmark:
        "results/benchmarks/runs/{dataset}/{teacher}/teacher/seed{seed}.tsv"
    threads: 2
    resources:
        gpu=gpus("teacher_train"),
    conda:
        "../../environment.yml"
    params:
        python=sys.executable,
        run=teacher_params,
        failed=failed_notebook,
    shell:
        "{params.python:q} -m papermill {input.notebook:q} {output.notebook:q} -k intrakd --no-progress-bar "
        "--log-output -y {params.run:q} -p threads {threads} 2>&1 | tee {log:q} "
        "| {{ grep --line-buffered '^epoch ' || true; }} "
        "| sed -u 's|^|  {wildcards.dataset} {wildcards.teacher} teacher seed{wildcards.seed}: |' "
        "|| {{ cp {output.notebook:q} {params.failed:q} 2>/dev/null; exit 1; }}"


rule train:
    input:
        unpack(train_inputs),
    output:
        notebook="results/runs/{dataset}/{student}/{method}/seed{seed}/train.ipynb",
        metrics="results/runs/{dataset}/{student}/{method}/seed{seed}/metrics.json",
        history="results/runs/{dataset}/{student}/{method}/seed{seed}/history.csv",
        model="results/runs/{dataset}/{student}/{method}/seed{seed}/model.pt",
    log:
        "results/logs/runs/{dataset}/{student}/{method}/seed{seed}/papermill.log",
    benchmark:
        "results/benchmarks/runs/{dataset}/{student}/{method}/seed{seed}.tsv"
    threads: 2
    resources:
        gpu=gpus("train"),
    conda:
        "../../environment.yml"
    params:
        python=sys.executable,
        run=student_params,
        failed=failed_notebook,
    shell:
        "{params.python:q} -m papermill {input.notebook:q} {output.notebook:q} -k intrakd --no-progress-bar "
        "--log-output -y {params.run:q} -p threads {threads} 2>&1 | tee {log:q} "
        "| {{ grep --line-buffered '^epoch ' || true; }} "
        "| sed -u 's|^|  {wildcards.dataset} {wildcards.student} {wildcards.method} seed{wildcards.seed}: |' "
        "|| {{ cp {output.notebook:q} {params.failed:q} 2>/dev/null; exit 1; }}"
