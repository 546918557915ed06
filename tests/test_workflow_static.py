"""Static checks of the workflow, notebooks and environment files (no training)."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import papermill
import pytest
import yaml

from intrakd import grid
from intrakd.engine.config import DEMO_DIR, RunConfig, demo_run, recipe_schema

REPO = Path(__file__).resolve().parent.parent
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def _snakemake(*args, cwd=REPO, check=True):
    proc = subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_lint_is_clean():
    proc = _snakemake("--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Lints for" not in proc.stdout + proc.stderr


def _copy_config(tmp_path: Path, config: dict) -> Path:
    (tmp_path / "config").mkdir(parents=True, exist_ok=True)
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def _dry_run_jobs(workdir: Path) -> dict[str, int]:
    proc = _snakemake("-n", "--directory", str(workdir), "--snakefile", str(REPO / "Snakefile"))
    out = proc.stdout + proc.stderr
    counts = {}
    table = re.search(r"Job stats:\n(.*?)\n\n", out, re.S)
    assert table, out
    for line in table.group(1).splitlines()[2:]:
        name, count = line.split()[:2]
        counts[name] = int(count)
    return counts


def test_dry_run_lists_every_job_with_its_reason(tmp_path):
    proc = _snakemake("-n", "--directory", str(REPO), "--quiet", "rules")
    assert proc.returncode == 0
    # the default config in an empty working directory, so runs already built in this checkout do not hide jobs
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    proc = _snakemake("-n", "--directory", str(_copy_config(tmp_path, config)), "--snakefile", str(REPO / "Snakefile"))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "reason:" in out
    runs = {
        (d, s, m, seed)
        for g in config["grid"]
        for d in g["datasets"] for s in g["students"] for m in g["methods"] for seed in config["seeds"]
    }
    for d, s, m, seed in runs:
        assert f"results/runs/{d}/{s}/{m}/seed{seed}/train.ipynb" in out


def test_dry_run_job_counts_follow_the_grid(tmp_path):
    config = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
    config["seeds"] = [0, 1, 2]
    counts = _dry_run_jobs(_copy_config(tmp_path, config))
    # erfnet x {baseline, intrakd} x 3 seeds: the baseline alone, IntRA-KD distilling from the teacher
    assert counts["train_student"] == 3 and counts["distill_student"] == 3
    assert counts["train_teacher"] == 1
    assert counts["synth"] == 1 and counts["kernel"] == 1 and counts["table"] == 1
    assert counts["figures"] == 1 and counts["verdict"] == 1 and counts["report"] == 1


@pytest.mark.parametrize("preset", ["presets/quick", "presets/paper"])
def test_full_grid_presets_list_exactly_the_paper_grid(preset, tmp_path):
    """Every cell of Tables 1-5 and the figures' runs, once per seed, plus one teacher per dataset (dry run in a
    fresh folder, so that results already built in the preset's own folder do not hide jobs)."""
    config = yaml.safe_load((REPO / preset / "config" / "config.yaml").read_text())
    runs = {(d, s, m, seed) for g in config["grid"] for d in g["datasets"] for s in g["students"]
            for m in g["methods"] for seed in config["seeds"]}
    tables_1_3 = {(d, s, m) for d in ("apolloscape", "culane", "llamas") for s in ("enet", "resnet18")
                  for m in ("baseline", "dks", "sad", "kd", "skd", "psn", "irg", "bifpn", "intrakd")}
    table_4 = {("apolloscape", "erfnet", m) for m in ("baseline", "kd", "mimic", "skd_pair", "at", "intra")}
    table_5 = {(d, s, m) for d in ("apolloscape", "culane", "llamas", "cityscapes")
               for s in ("erfnet", "swiftnet_rn18") for m in ("baseline", "intrakd")}
    sweep = {("apolloscape", "erfnet", m) for m in config["methods"] if m.startswith("intra_k")}
    assert len(sweep) >= 4 and max(config["methods"][m]["options"]["kernel"] for m in (x[2] for x in sweep)) >= 100
    expected = tables_1_3 | table_4 | table_5 | sweep | {("apolloscape", "erfnet", "bifpn")}
    assert {r[:3] for r in runs} == expected
    counts = _dry_run_jobs(_copy_config(tmp_path, config))
    assert counts["train_student"] + counts["distill_student"] == len(expected) * len(config["seeds"])
    alone = {r for r in expected if not grid.needs_teacher(config, r[2])}  # baseline, SAD, DKS: no teacher
    assert {"baseline", "sad"} <= {r[2] for r in alone} and "intrakd" not in {r[2] for r in alone}
    assert counts["train_student"] == len(alone) * len(config["seeds"])
    assert counts["train_teacher"] == 4 and counts["table"] == 5 and counts["figures"] == 1
    assert config["teachers"]["cityscapes"]["model"] == "deeplabv3plus_r101"


def test_standard_preset_is_the_apolloscape_half_of_the_paper_on_the_default_world(tmp_path):
    """Tables 1, 4, 5 (ApolloScape column) and Figs. 1-3, 3 seeds, on the default preset's world and recipe."""
    config = yaml.safe_load((REPO / "presets/standard/config/config.yaml").read_text())
    default = yaml.safe_load((REPO / "config/config.yaml").read_text())
    assert config["datasets"]["apolloscape"] == default["datasets"]["apolloscape"]
    assert {k: v for k, v in config["train"].items() if k != "epochs"} == \
        {k: v for k, v in default["train"].items() if k != "epochs"}
    runs = {(d, s, m) for g in config["grid"] for d in g["datasets"] for s in g["students"] for m in g["methods"]}
    table_1 = {("apolloscape", s, m) for s in ("enet", "resnet18")
               for m in ("baseline", "dks", "sad", "kd", "skd", "psn", "irg", "bifpn", "intrakd")}
    table_4 = {("apolloscape", "erfnet", m) for m in ("baseline", "kd", "mimic", "skd_pair", "at", "intra")}
    table_5 = {("apolloscape", s, m) for s in ("erfnet", "swiftnet_rn18") for m in ("baseline", "intrakd")}
    sweep = {("apolloscape", "erfnet", m) for m in config["methods"] if m.startswith("intra_k")}
    assert runs == table_1 | table_4 | table_5 | sweep | {("apolloscape", "erfnet", "bifpn")}
    kernels = {config["methods"][m]["options"]["kernel"] for m in (r[2] for r in sweep)}
    assert config["seeds"] == [0, 1, 2] and 5 in kernels and max(kernels) >= 100
    counts = _dry_run_jobs(_copy_config(tmp_path, config))
    assert counts["train_student"] + counts["distill_student"] == len(runs) * 3
    assert counts["train_teacher"] == 1 and counts["table"] == 3


def test_invalid_config_value_names_the_key(tmp_path):
    config = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
    config["train"]["epochs"] = 0
    proc = _snakemake("-n", "--directory", str(_copy_config(tmp_path, config)), "--snakefile",
                      str(REPO / "Snakefile"), check=False)
    assert proc.returncode != 0
    assert "epochs" in proc.stdout + proc.stderr


def test_exponent_numbers_are_numbers_and_yaml_errors_name_file_and_line(tmp_path):
    text = (REPO / ".test" / "config" / "config.yaml").read_text()
    (tmp_path / "ok" / "config").mkdir(parents=True)
    (tmp_path / "ok" / "config" / "config.yaml").write_text(re.sub(r"(?m)^  lr: .*$", "  lr: 1e-3", text))
    proc = _snakemake("-n", "--directory", str(tmp_path / "ok"), "--snakefile", str(REPO / "Snakefile"),
                      check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (tmp_path / "bad" / "config").mkdir(parents=True)
    lines = text.splitlines()
    lines[4] += ": [oops"
    (tmp_path / "bad" / "config" / "config.yaml").write_text("\n".join(lines) + "\n")
    proc = _snakemake("-n", "--directory", str(tmp_path / "bad"), "--snakefile", str(REPO / "Snakefile"),
                      check=False)
    assert proc.returncode != 0 and "config/config.yaml:5:" in proc.stdout + proc.stderr


def test_synthetic_data_is_rendered_into_the_configured_root(tmp_path):
    config = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
    config["datasets"]["apolloscape"]["root"] = "./data/synthetic/apollo/"
    proc = _snakemake("-n", "--directory", str(_copy_config(tmp_path, config)), "--snakefile",
                      str(REPO / "Snakefile"))
    out = proc.stdout + proc.stderr
    synth = re.search(r"rule synth:\n(.*?)\n\n", out, re.S)
    assert synth and "output: data/synthetic/apollo\n" in synth.group(1), out
    assert "log: results/logs/synth/data/synthetic/apollo.log" in synth.group(1)
    assert "MissingInputException" not in out


@pytest.mark.parametrize("root, fragment", [("/abs/apollo", "relative path"), ("../apollo", "relative path")])
def test_synthetic_root_outside_the_working_directory_is_refused(tmp_path, root, fragment):
    config = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
    config["datasets"]["apolloscape"]["root"] = root
    proc = _snakemake("-n", "--directory", str(_copy_config(tmp_path, config)), "--snakefile",
                      str(REPO / "Snakefile"), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"datasets.apolloscape.root: {root!r}" in out and fragment in out


def test_unknown_method_in_grid_lists_valid_names(tmp_path):
    config = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
    config["grid"][0]["methods"] = ["baseline", "nonsense"]
    proc = _snakemake("-n", "--directory", str(_copy_config(tmp_path, config)), "--snakefile",
                      str(REPO / "Snakefile"), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "grid[0].methods" in out and "'nonsense'" in out and "'intrakd'" in out


@pytest.mark.parametrize("name", ["train.ipynb", "tables.ipynb", "figures.ipynb"])
def test_notebooks_are_clean_parameterised_and_use_the_intrakd_kernel(name):
    path = REPO / "notebooks" / name
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "intrakd"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{name} has outputs committed"


def test_train_notebook_takes_the_run_as_its_one_parameter():
    declared = papermill.inspect_notebook(str(REPO / "notebooks" / "train.ipynb"))
    assert set(declared) == {"run"} and declared["run"]["default"] == "None"
    demo = RunConfig.from_dict(demo_run())  # what the notebook trains without a run
    assert demo.model == "erfnet" and Path(demo.out_dir).is_relative_to(REPO / DEMO_DIR)


def _recipe_fields() -> set[str]:
    return {f.name for f in dataclasses.fields(RunConfig) if f.metadata["scope"] == "recipe"}


def test_schema_run_keys_come_from_the_run_config():
    """The train / teacher_train keys are the RunConfig fields of scope "recipe", with their types and bounds; the
    schema file holds no list of its own."""
    schema_file = REPO / "workflow/schemas/config.schema.yaml"
    assert set(yaml.safe_load(schema_file.read_text())["definitions"]["recipe"]) <= {"description", "type"}
    recipe = recipe_schema()
    assert set(recipe["properties"]) == _recipe_fields()
    assert {"epochs", "lr", "optimizer", "nproc", "amp"} <= _recipe_fields()
    assert not {"dataset", "model", "method", "seed", "out_dir", "threads"} & _recipe_fields()
    assert recipe["properties"]["epochs"] == {"type": "integer", "minimum": 1}
    assert recipe["properties"]["max_eval_images"] == {"type": ["integer", "null"], "minimum": 1}
    config = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
    grid.validate_config(config, schema_file)  # the smoke preset passes, defaults filled in
    assert config["teacher_seed"] == 0 and config["keep_checkpoints"] is False
    for key, value, fragment in [("momentum", 2, "config train.momentum: 2 is greater than the maximum of 1"),
                                 ("no_such_key", 1, "'no_such_key' was unexpected"),
                                 ("amp", 1, "config train.amp: 1 is not of type 'boolean'")]:
        bad = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
        bad["train"][key] = value
        with pytest.raises(ValueError, match=re.escape(fragment)):
            grid.validate_config(bad, schema_file)


def test_building_the_dag_imports_neither_torch_nor_the_plotting_libraries():
    """What common.smk imports, and the calls it makes on the smoke preset, leave torch, seaborn and matplotlib
    out of Snakemake's process (the registries are read in a child process)."""
    common = (REPO / "workflow/rules/common.smk").read_text()
    imports = [line for line in common.splitlines() if re.match(r"(from \S+ )?import \S", line)]
    assert "from intrakd import grid" in imports
    code = "\n".join([
        "import sys, yaml", *imports,
        f"config = yaml.safe_load(open({str(REPO / '.test/config/config.yaml')!r}))",
        f"grid.validate_config(config, {str(REPO / 'workflow/schemas/config.schema.yaml')!r})",
        "grid.run_params(config, 'apolloscape', 'erfnet', 'intrakd', 0)",
        "grid.run_params(config, *grid.teacher_run(config, 'apolloscape'))",
        "paper_results(); git_commit()",
        "print(sorted(m for m in ('torch', 'seaborn', 'matplotlib') if m in sys.modules))",
    ])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_teacher_runs_name_their_model_and_share_the_run_layout():
    config = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
    config["teacher_seed"] = 0
    run = grid.teacher_run(config, "apolloscape")
    params = grid.run_params(config, *run)
    assert params["role"] == "teacher" and params["model"] == "pspnet_r101" and "student" not in params
    assert params["out_dir"] == grid.run_dir(*run) == "results/runs/apolloscape/pspnet_r101/teacher/seed0"
    student = grid.run_params(config, "apolloscape", "erfnet", "intrakd", 0)
    assert student["teacher_checkpoint"] == f"{params['out_dir']}/model.pt"
    with pytest.raises(ValueError, match="the teacher of apolloscape is results/runs/apolloscape/pspnet_r101"):
        grid.run_params(config, "apolloscape", "erfnet", grid.TEACHER, 0)


def _requirement_names(reqs) -> set[str]:
    return {re.split(r"[<>=!\[ ]", r.strip(), maxsplit=1)[0].lower() for r in reqs if not r.strip().startswith("-e")}


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pip_deps = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    env_pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(env_pip) - {"-e ."} == pip_deps


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert "python3 tasks.py test" in readme and "python3 tasks.py test" in ci
    assert "python3 tasks.py reproduce" in readme


@pytest.mark.skipif(shutil.which("git") is None, reason="git not available")
def test_no_real_samples_or_checkpoints_are_tracked():
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout.split()
    assert not [f for f in files if f.endswith((".pt", ".pth"))]
    assert not [f for f in files if re.search(r"frankfurt_000000_000294|171206_0257|1419287247_0942030000", f)]
