# Helpers for the rules: config validation, the run grid, per-job parameters and inputs.
# Python helpers live here only (rule files hold rules only).
import itertools
import os
import re
import sys
from pathlib import Path

import yaml

from intrakd import grid
from intrakd.report.common import FIGURE_FILES, SCORE_FILES, paper_results
from intrakd.vcs import git_commit

# Building the DAG imports neither torch nor the plotting libraries (tests/test_workflow_static.py checks it):
# what the workflow needs of the package's registries and of torch comes from a child process (grid.catalogue).
grid.validate_config(config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml")
CATALOGUE = grid.catalogue()
MODELS = CATALOGUE["models"]
METHODS = CATALOGUE["methods"]  # {registry method: needs a teacher}
NOTEBOOKS = Path(workflow.basedir) / "notebooks"
# Local runs: rules ask for one GPU each when CUDA is present, so `--resources gpu=N` bounds them.
GPUS_PER_JOB = 1 if CATALOGUE["cuda"] else 0


def base_method(name):
    """The registry method behind a method name of the config (intrakd.grid.base_method)."""
    return grid.base_method(config, name)


def needs_teacher(method):
    return grid.needs_teacher(config, method)


def _check_config():
    """Cross-key checks the JSON schema cannot express; each error names the key and the valid values."""
    for name, m in config["methods"].items():
        if base_method(name) not in METHODS:
            raise ValueError(f"config methods.{name}.method: unknown method {base_method(name)!r}; "
                             f"valid: {sorted(METHODS)}")
    for name, t in config["teachers"].items():
        if t["model"] not in MODELS:
            raise ValueError(f"config teachers.{name}.model: unknown model {t['model']!r}; valid: {sorted(MODELS)}")
    for i, entry in enumerate(config["grid"]):
        for key, valid in (("datasets", config["datasets"]), ("students", MODELS), ("methods", METHOD_NAMES)):
            for value in entry[key]:
                if value not in valid:
                    raise ValueError(
                        f"config grid[{i}].{key}: unknown {key[:-1]} {value!r}; valid: {sorted(valid)}"
                    )
        for ds, method in itertools.product(entry["datasets"], entry["methods"]):
            if needs_teacher(method) and ds not in config["teachers"]:
                raise ValueError(
                    f"config grid[{i}]: method {method!r} needs a teacher but teachers.{ds} is not set"
                )
    jobs = [(f"teacher_train on {ds}", grid.optim_settings(config, "teacher_train", ds), ds)
            for ds in config["datasets"]]
    jobs += [(f"train of {st} on {ds}", grid.student_optim(config, ds, st), ds)
             for ds, st in itertools.product(config["datasets"], config["students"])]
    for where, settings, ds in jobs:
        scales = settings.get("eval_scales", "single")
        if scales != "single" and ds != "apolloscape":
            raise ValueError(f"config eval_scales ({where}): {scales!r} is ApolloScape's multi-scale test; dataset "
                             f"{ds!r} has none (set it under datasets.apolloscape.train / teacher_train)")
    _check_backbones()


def _check_backbones():
    """`backbone_weights: imagenet` on a network without an ImageNet backbone (or not at width 1.0) stops the
    workflow before any job; a student's per-dataset entry must name a dataset of the config."""
    entries = [(f"teachers.{ds}", t["model"], t["width"], t) for ds, t in config["teachers"].items()]
    for name, s in config["students"].items():
        s = s or {}
        entries.append((f"students.{name}", name, s.get("width", 1.0), s))
        for ds, per in s.get("datasets", {}).items():
            if ds not in config["datasets"]:
                raise ValueError(f"config students.{name}.datasets.{ds}: unknown dataset; valid: "
                                 f"{sorted(config['datasets'])}")
            entries.append((f"students.{name}.datasets.{ds}", name, s.get("width", 1.0), per))
    errors = grid.backbone_errors([(key, entry.get("backbone_weights", "none"), model, width)
                                   for key, model, width, entry in entries])
    if errors:
        raise ValueError(errors[0])


def _synth_roots():
    """{root: dataset} of the synthetic datasets: the `synth` rule renders each into its own `root`. A root must be a
    relative path inside the working directory (its log goes to results/logs/synth/<root>.log) and belong to one
    dataset; it is normalised (`./data/x/` is `data/x`)."""
    roots = {}
    for name, d in config["datasets"].items():
        if d["source"] != "synthetic":
            continue
        root = os.path.normpath(d["root"])
        if os.path.isabs(root) or root.split(os.sep)[0] in ("..", ".") or "{" in root:
            raise ValueError(f"config datasets.{name}.root: {d['root']!r} cannot hold a synthetic dataset; expected "
                             "a relative path inside the working directory (absolute paths and '..' are for "
                             "source: real)")
        if root in roots:
            raise ValueError(f"config datasets.{name}.root: {d['root']!r} is also the root of {roots[root]}; "
                             "expected one folder per synthetic dataset")
        roots[root] = name
        d["root"] = root
    return roots


METHOD_NAMES = sorted(set(METHODS) | set(config["methods"]))
_check_config()
SYNTH_ROOTS = _synth_roots()

def grid_runs(*outputs):
    """(dataset, student, method, seed) of every grid entry feeding any of ``outputs`` (all entries when none)."""
    return grid.grid_runs(config, *outputs)


RUNS = grid_runs()
OUTPUTS = sorted({t for entry in config["grid"] for t in entry["tables"]})
TABLES = [t for t in OUTPUTS if t.startswith("table")]
FIGURES = [t for t in OUTPUTS if t.startswith("fig")]
FIGURE_JOBS = [*FIGURES, "curves"]  # what the `figures` job draws: the grid's figures and the training curves


# The student methods of the grid, split by whether they distil from a teacher: `train_student` trains the ones
# that do not, `distill_student` the ones that do (so each rule sits at one level of the rule graph).
TEACHERLESS = sorted(m for m in METHOD_NAMES if not needs_teacher(m))
DISTILLING = sorted(m for m in METHOD_NAMES if needs_teacher(m))


def _alternatives(names):
    return "|".join(re.escape(n) for n in names) or "(?!)"


wildcard_constraints:
    dataset=_alternatives(config["datasets"]),
    model=_alternatives(MODELS),
    seed=r"\d+",
    table=r"table[1-5]",
    synth_root=_alternatives(SYNTH_ROOTS),


# One run's folder, log folder and benchmark file: the single RUN pattern (intrakd.grid.RUN) for every training rule
RUN_DIR = f"{grid.RUNS_DIR}/{grid.RUN}"
RUN_LOG_DIR = f"results/logs/runs/{grid.RUN}"
RUN_BENCHMARK = f"results/benchmarks/runs/{grid.RUN}.tsv"
RUN_OUTPUTS = {"notebook": "train.ipynb", "metrics": "metrics.json", "history": "history.csv", "model": "model.pt"}


def run_outputs():
    """The named outputs of a training rule: RUN_OUTPUTS in RUN_DIR."""
    return {key: f"{RUN_DIR}/{name}" for key, name in RUN_OUTPUTS.items()}


def run_dir(*run):
    return grid.run_dir(*run)


def teacher_dir(dataset):
    return grid.teacher_dir(config, dataset)


def run_files(runs, name):
    """``name`` (metrics.json, model.pt) of each run and of the teachers of their datasets."""
    paths = {f"{run_dir(*r)}/{name}" for r in runs}
    paths |= {f"{teacher_dir(r[0])}/{name}" for r in runs if r[0] in config["teachers"]}
    return sorted(paths)


def optim_settings(kind, ds):
    """`train` or `teacher_train` with the dataset's overrides: the optimiser settings of one job."""
    return grid.optim_settings(config, kind, ds)


def _yaml(params):
    return yaml.safe_dump(params, default_flow_style=True, width=10_000).strip()


def _run(wildcards):
    return grid.run_params(config, wildcards.dataset, wildcards.model, wildcards.method, wildcards.seed)


def run_settings(wildcards):
    """The run of a training job (intrakd.grid.run_params), as YAML: Snakemake records this param, so a changed
    setting reruns exactly the jobs it changes."""
    return _yaml(_run(wildcards))


def notebook_run(wildcards, threads):
    """The train notebook's one parameter: ``run``, the run with the job's threads (a param that reads
    ``threads`` is one Snakemake does not record: threads do not change a result)."""
    return _yaml({"run": _run(wildcards) | {"threads": threads}})


def papermill(progress=False):
    """The shell line of a notebook job: papermill executes ``input.notebook`` into ``output.notebook`` with the
    parameters ``params.notebook`` (YAML) and logs to ``log``. ``progress`` (a training job): the per-epoch lines
    also reach the console, prefixed with the run, and a failed job's partly executed notebook is kept in its log
    folder as failed.ipynb (Snakemake deletes failed outputs, never logs)."""
    run = ("{params.python:q} -m papermill {input.notebook:q} {output.notebook:q} -k intrakd --no-progress-bar "
           "--log-output -y {params.notebook:q}")
    if not progress:
        return f"{run} &> {{log:q}}"
    return (f"{run} 2>&1 | tee {{log:q}} | {{{{ grep --line-buffered '^epoch ' || true; }}}} "
            "| sed -u 's|^|  {wildcards.dataset} {wildcards.model} {wildcards.method} seed{wildcards.seed}: |' "
            "|| {{ cp {output.notebook:q} \"$(dirname {log:q})/failed.ipynb\" 2>/dev/null; exit 1; }}")


def data_input(dataset):
    """The generated dataset folder for synthetic sources; nothing for real ones (they live outside the DAG)."""
    if config["datasets"][dataset]["source"] == "synthetic":
        return config["datasets"][dataset]["root"]
    return []


def _backbone_input(params):
    """A `backbone_weights` file as a job input (a run of this grid that Snakemake builds first, or a file of yours);
    nothing for `none` and `imagenet`."""
    path = grid.backbone_file(params)
    return {"backbone": path} if path else {}


def train_inputs(wildcards):
    """The notebook, the kernel, the data and, for a student that distils, its teacher's weights."""
    inputs = {"notebook": str(NOTEBOOKS / "train.ipynb"), "kernel": "resources/kernel/intrakd.flag",
              "data": data_input(wildcards.dataset)}
    if wildcards.method != grid.TEACHER and needs_teacher(wildcards.method):
        inputs["teacher"] = f"{teacher_dir(wildcards.dataset)}/model.pt"
    return inputs | _backbone_input(_run(wildcards))


def synth_params(wildcards):
    dataset = SYNTH_ROOTS[wildcards.synth_root]
    s = config["datasets"][dataset]["synth"]
    world = s.get("world", {})
    return {"dataset": dataset, "num": s["num"], "seed": s["seed"], "size": f"{s['size'][0]}x{s['size'][1]}",
            "world": "".join(f" --{k.replace('_', '-')} {v}" for k, v in sorted(world.items()))}


def table_metrics(wildcards):
    """metrics.json of every run that lands in this table, plus the teachers of its datasets."""
    return run_files(grid_runs(wildcards.table), "metrics.json")


def table_params(wildcards):
    return _yaml({"metrics": table_metrics(wildcards), "tables": [wildcards.table], "out_tables": "results/tables",
                  "out_figures": "results/figures"})


def all_metrics():
    """metrics.json of every run of the grid and of the teachers it uses (the verdict and the curves read all)."""
    return run_files(RUNS, "metrics.json")


def figure_outputs():
    """What the `figures` job writes -- the grid's fig1/fig2/fig3 plus the training curves, and the per-image scores
    of Fig. 2 / Fig. 3 that the verdict tests those figures' claims on."""
    return [f"results/figures/{FIGURE_FILES[f]}" for f in FIGURE_JOBS] + score_outputs()


def score_outputs():
    """The per-image scores of Fig. 2 / Fig. 3 that the figures job writes (those of the grid's figures)."""
    return [f"results/figures/{SCORE_FILES[f]}" for f in FIGURES if f in SCORE_FILES]


def figure_reports():
    """The figures of `figure_outputs`, each flagged for the report with its own caption
    (workflow/report/<figure>.rst), keyed by figure id; the per-image scores are plain outputs."""
    outputs = {f: report(f"results/figures/{FIGURE_FILES[f]}", caption=f"../report/{f}.rst", category="Figures",
                         labels={"figure": f}) for f in FIGURE_JOBS}
    outputs |= {f"{f}_scores": f"results/figures/{SCORE_FILES[f]}" for f in FIGURES if f in SCORE_FILES}
    return outputs


def table_caption_params(wildcards):
    """What a table's report caption names: the paper's title and the data its datasets were trained on."""
    datasets = sorted({r[0] for r in grid_runs(wildcards.table)})
    return {"title": paper_results()["tables"][wildcards.table]["title"],
            "data": "; ".join(grid.data_params(config, ds)["data_source"] for ds in datasets)}


def _provenance():
    """Commit of the code building the results and the data of every dataset: the report's front page."""
    return {"commit": git_commit(workflow.basedir),
            "data": {ds: grid.data_params(config, ds)["data_source"] for ds in config["datasets"]}}


# read by workflow/report/workflow.rst (the global caption sees only the config); set after validation
config["_provenance"] = _provenance()


def where_to_look():
    """The closing note of a finished build: where the tables, figures, report and notebooks are."""
    here = Path.cwd()
    return "\n".join([
        "",
        f"Done. Results of preset {config['preset']!r} in {here / 'results'}:",
        f"  tables (Markdown, HTML, CSV): {here / 'results/tables'}   ({', '.join(TABLES + ['verdict'])})",
        f"  figures (PNG):                {here / 'results/figures'}",
        f"  executed notebooks:           {here / 'results/notebooks'} and results/runs/*/*/*/*/train.ipynb",
        f"  report:                       {here / 'results/report.html'}",
    ])


def figure_models(wildcards):
    """Weights Fig. 2 and Fig. 3 load: the runs of those grid entries and their teachers."""
    return run_files(grid_runs("fig2", "fig3"), "model.pt")


def figures_params(wildcards):
    return _yaml({"runs_dir": all_metrics(), "out_figures": "results/figures", "which": ",".join(FIGURE_JOBS)})


def gpus():
    """GPUs a training job asks for: one per process (its run's own `nproc`, dataset and student overrides
    included) when CUDA is present."""
    return lambda wildcards: GPUS_PER_JOB * int(_run(wildcards).get("nproc", 1))
