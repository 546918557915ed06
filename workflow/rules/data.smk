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


# Renders a synthetic dataset into its configured `root` (any relative path: SYNTH_ROOTS in common.smk).
rule synth:
    output:
        directory("{synth_root}"),
    log:
        "results/logs/synth/{synth_root}.log",
    threads: 1
    conda:
        "../../environment.yml"
    params:
        python=sys.executable,
        synth=synth_params,
    shell:
        "{params.python:q} -m intrakd.cli synth {params.synth[dataset]} {output:q} --num {params.synth[num]} "
        "--seed {params.synth[seed]} --size {params.synth[size]}{params.synth[world]} &> {log:q}"
