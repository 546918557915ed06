rule kernel:
    output:
        "resources/kernel/intrakd.flag",
    log:
        "results/logs/kernel.log",
    threads: 1
    conda:
        "../../environment.yml"
    params:
        python=sys.executable,
    shell:
        "{params.python:q} -m ipykernel install --sys-prefix --name intrakd --display-name 'Python (intrakd)' "
        "&> {log:q} && date -u > {output:q}"


rule synth:
    output:
        directory("resources/data/{dataset}"),
    log:
        "results/logs/synth/{dataset}.log",
    threads: 1
    conda:
        "../../environment.yml"
    params:
        python=sys.executable,
        synth=synth_params,
    shell:
        "{params.python:q} -m intrakd.cli synth {wildcards.dataset} {output:q} --num {params.synth[num]} "
        "--seed {params.synth[seed]} --size {params.synth[size]}{params.synth[world]} &> {log:q}"
