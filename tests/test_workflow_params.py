"""The paper preset's jobs by their parameters (one dry run with the shell commands printed), and runs left in the
runs folder that are not in the grid (another seed, a variant, a dataset) reaching no table, figure or verdict."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
#: Runs of no grid of the paper preset, planted in its runs folder before the dry run: a fourth seed (the preset has
#: 0-2), a kernel variant it does not define, a dataset it does not have.
STRAYS = ("results/runs/culane/enet/baseline/seed3", "results/runs/apolloscape/erfnet/intra_k7/seed0",
          "results/runs/kitti/erfnet/baseline/seed0")


def _jobs(out: str) -> list[dict]:
    """Every job of a ``snakemake -n -p`` output: rule, its ``key: value`` lines, and the train notebook's ``run``."""
    jobs = []
    for block in re.split(r"\n\s*\n", out):
        rule = re.search(r"^(?:local)?rule (\w+):$", block, re.M)
        if not rule:
            continue
        job = {"rule": rule.group(1)}
        for key, value in re.findall(r"^    (\w+): (.*)$", block, re.M):
            job[key] = value
        run = re.search(r" -y '(\{run: .*?\}\})'", block)
        if run:
            job["run"] = yaml.safe_load(run.group(1))["run"]
        job["inputs"] = set(job.get("input", "").split(", "))
        jobs.append(job)
    return jobs


@pytest.fixture(scope="module")
def paper_jobs(tmp_path_factory):
    work = tmp_path_factory.mktemp("paper")
    (work / "config").mkdir()
    shutil.copy(REPO / "presets/paper/config/config.yaml", work / "config/config.yaml")
    for stray in STRAYS:
        (work / stray).mkdir(parents=True)
        (work / stray / "metrics.json").write_text("{}")
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-p", "--directory", str(work),
                           "--snakefile", str(REPO / "Snakefile")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return _jobs(proc.stdout + proc.stderr)


#: (epochs, batch size, lr) of every training job of the paper preset, from its recipes (presets/paper/config/
#: config.yaml, after intrakd_method.md §2): ApolloScape 24 epochs of 8 (the released vanilla scripts), CULane 12 of
#: 12, LLAMAS 20 of 12 (~100k iterations of ENet-SAD-Simple), Cityscapes 200 of 8 (no published recipe); the teachers
#: at lr 0.005 on ApolloScape (Codes-for-IntRA-KD's PSPNet), SwiftNet on Cityscapes its own 250 epochs of 14 at 4e-4.
STUDENT = {"apolloscape": (24, 8, 0.01), "culane": (12, 12, 0.01), "llamas": (20, 12, 0.01),
           "cityscapes": (200, 8, 0.01)}
TEACHER = {"apolloscape": (24, 8, 0.005), "culane": (12, 12, 0.01), "llamas": (20, 12, 0.01),
           "cityscapes": (200, 8, 0.01)}
SWIFTNET_CITYSCAPES = (250, 14, 4e-4)


def test_paper_preset_training_jobs_carry_their_datasets_recipe_and_resource_requests(paper_jobs):
    import torch

    train = [j for j in paper_jobs if j["rule"] in ("train_teacher", "train_student", "distill_student")]
    # 4 teachers + 3 seeds x (Tables 1-3: 3 datasets x 2 students x 9 methods; Table 4: 6 ERFNet methods; Table 5:
    # 4 x 2 x 2 less ERFNet's ApolloScape baseline, already in Table 4; 9 kernel variants; Fig. 2-3's ERFNet BiFPN)
    assert len(train) == 4 + 3 * (3 * 2 * 9 + 6 + 4 * 2 * 2 - 1 + 9 + 1)
    gpus = 1 if torch.cuda.is_available() else 0  # one GPU per process where CUDA is present (common.smk)
    for job in train:
        run, wc = job["run"], dict(kv.split("=") for kv in job["wildcards"].split(", "))
        assert (run["dataset"], run["model"], run["seed"]) == (wc["dataset"], wc["model"], int(wc["seed"]))
        if job["rule"] == "train_teacher":
            want = TEACHER[run["dataset"]]
        elif (run["dataset"], run["model"]) == ("cityscapes", "swiftnet_rn18"):
            want = SWIFTNET_CITYSCAPES
        else:
            want = STUDENT[run["dataset"]]
        assert (run["epochs"], run["batch_size"], run["lr"]) == want, job["wildcards"]
        assert job["threads"] == "2" and run["threads"] == 2, job["wildcards"]
        assert f"gpu={gpus * run.get('nproc', 1)}" in job["resources"], job["wildcards"]
        assert (job["rule"] == "distill_student") == ("teacher_checkpoint" in run), job["wildcards"]
        if "teacher_checkpoint" in run:
            assert run["teacher_checkpoint"] in job["inputs"]
            assert run["teacher"] == ("deeplabv3plus_r101" if run["dataset"] == "cityscapes" else "pspnet_r101")


def test_paper_preset_culane_erfnet_starts_from_the_cityscapes_erfnet_of_the_grid(paper_jobs):
    culane_erfnet = [j for j in paper_jobs if j.get("run", {}).get("dataset") == "culane"
                     and j["run"]["model"] == "erfnet"]
    assert len(culane_erfnet) == 6  # baseline and IntRA-KD, 3 seeds
    weights = "results/runs/cityscapes/erfnet/baseline/seed0/model.pt"
    assert all(j["run"]["backbone_weights"] == weights and weights in j["inputs"] for j in culane_erfnet)


def test_stray_runs_in_the_runs_folder_reach_no_table_figure_or_verdict(paper_jobs):
    """The tables, figures and verdict jobs read the metrics of their grid's runs (and teachers) only."""
    readers = [j for j in paper_jobs if j["rule"] in ("table", "figures", "verdict")]
    assert {j["rule"] for j in readers} == {"table", "figures", "verdict"}
    for job in readers:
        assert not any(stray in path for stray in STRAYS for path in job["inputs"]), job["rule"]
    table2 = next(j for j in paper_jobs if j["rule"] == "table" and j["wildcards"] == "table=table2")
    metrics = {p for p in table2["inputs"] if p.endswith("metrics.json")}
    # Table 2: CULane x (ENet, ResNet-18) x 9 methods x 3 seeds, and the CULane teacher
    assert len(metrics) == 2 * 9 * 3 + 1
    assert "results/runs/culane/pspnet_r101/teacher/seed0/metrics.json" in metrics
    assert all(p.startswith("results/runs/culane/") for p in metrics)


def test_a_table_takes_its_rows_from_its_runs_only(tmp_path):
    """Table 5 from the metrics a job is given, the folder also holding a stray seed, variant and dataset: each cell
    is the mean (sample sd, n) of its own seeds' values, by hand."""
    from intrakd.report.tables import collect_runs, paper_table

    def write(dataset, student, method, seed, value, base=None):
        path = tmp_path / dataset / student / method / f"seed{seed}" / "metrics.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"dataset": dataset, "student": student, "method": method, "seed": seed,
                                    "base_method": base or method, "metric": "miou", "value": value,
                                    "data_source": "synthetic", "floor": {"value": 5.0}}))
        return path

    given = [write("apolloscape", "erfnet", "baseline", s, v) for s, v in ((0, 10.0), (1, 12.0), (2, 17.0))]
    given += [write("apolloscape", "erfnet", "intrakd", s, v) for s, v in ((0, 20.0), (1, 21.0), (2, 25.0))]
    write("apolloscape", "erfnet", "baseline", 3, 90.0)  # the strays: seed 3, a kernel variant, another dataset
    write("apolloscape", "erfnet", "intra_k7", 0, 91.0, base="intra")
    write("kitti", "erfnet", "baseline", 0, 92.0)
    df = paper_table("table5", collect_runs(given)).set_index(["dataset", "model", "method"])
    assert set(df.index) == {("apolloscape", "erfnet", "baseline"), ("apolloscape", "erfnet", "intrakd")}
    base, ikd = df.loc[("apolloscape", "erfnet", "baseline")], df.loc[("apolloscape", "erfnet", "intrakd")]
    assert (base["ours"], base["n"]) == (13.0, 3) and base["sd"] == pytest.approx(13 ** 0.5)  # (9 + 1 + 16) / 2
    assert (ikd["ours"], ikd["n"]) == (22.0, 3) and ikd["sd"] == pytest.approx(7 ** 0.5)  # (4 + 1 + 9) / 2
    assert base["paper"] == pytest.approx(40.4)  # Table 5, ERFNet on ApolloScape (paper_results.yaml)
