# intrakd: rebuild the tables and figures of IntRA-KD (Hou et al., CVPR 2020) from scratch.
# Rules live in workflow/rules/, the configuration in config/config.yaml (documented in config/README.md).
from snakemake.utils import min_version

from intrakd import yamlio

min_version("9.0")

yamlio.load_file("config/config.yaml")  # a syntax error names the file, line and column (Snakemake's does not)


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/aggregate.smk"


onsuccess:
    print(where_to_look())


rule all:
    default_target: True
    message:
        "all tables, figures, executed notebooks and runs of the grid are up to date"
    input:
        expand("results/tables/{table}.md", table=TABLES),
        expand("results/figures/{table}.png", table=TABLES),
        figure_outputs(),
        "results/tables/verdict.md",
        "results/report.html",
        # the runs themselves: the committed tables alone must not make a fresh clone look finished
        all_metrics(),
