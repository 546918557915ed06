"""End-to-end: the smoke preset runs the whole Table 5 ApolloScape slice through Snakemake + papermill."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import torch
import yaml
from helpers import history_without_timings

REPO = Path(__file__).resolve().parent.parent
SNAKEFILE = str(REPO / "Snakefile")


def _snakemake(workdir: Path, *args, check=True):
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", SNAKEFILE, "--directory", str(workdir), "--cores", "2",
         *args],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


def _smoke_config() -> dict:
    return yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())


def _write_config(workdir: Path, config: dict) -> None:
    (workdir / "config").mkdir(parents=True, exist_ok=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config))


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("smoke")
    _write_config(workdir, _smoke_config())
    proc = _snakemake(workdir)
    (workdir / "console.txt").write_text(proc.stdout + proc.stderr)  # what the terminal showed
    return workdir


def test_smoke_run_builds_table_figure_notebooks_and_sidecars(smoke_run):
    w = smoke_run
    md = (w / "results/tables/table5.md").read_text()
    assert "paper" in md and "synthetic" in md and "erfnet" in md
    table = pd.read_csv(w / "results/tables/table5.csv")
    assert set(table["method"]) == {"baseline", "intrakd", "teacher"}
    cells = table[table["method"] != "teacher"]
    assert cells["paper"].notna().all() and table["ours"].notna().all()  # our teacher: context row
    assert (table["delta"] - (table["ours"] - table["paper"])).abs().max() < 1e-9
    assert (w / "results/figures/table5.png").stat().st_size > 1000
    for method in ("baseline", "intrakd"):
        run = w / f"results/runs/apolloscape/erfnet/{method}/seed0"
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["method"] == method and metrics["metric"] == "miou"
        assert 0.0 <= metrics["value"] <= 100.0
        for key in ("seed", "wall_seconds", "peak_rss_mb", "params", "versions", "git_commit"):
            assert key in metrics
        history = pd.read_csv(run / "history.csv")
        assert list(history["epoch"]) == [1, 2]
        nb = nbformat.read(run / "train.ipynb", as_version=4)
        assert nb.metadata.papermill.parameters["run"]["method"] == method  # the notebook's one parameter
        assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code")
    teacher = json.loads((w / "results/runs/apolloscape/pspnet_r101/teacher/seed0/metrics.json").read_text())
    assert teacher["role"] == "teacher"
    assert (w / "results/figures/training_curves.png").stat().st_size > 1000
    verdict = pd.read_csv(w / "results/tables/verdict.csv")
    assert set(verdict["verdict"]) <= {"agree", "disagree", "inconclusive", "not learned", "not run"}
    # two epochs on four images learn nothing: the smoke runs sit on their floor and the verdict says so
    t5 = verdict[(verdict.claim == "T5.improves") & (verdict.dataset == "apolloscape") & (verdict.n_a > 0)]
    assert list(t5.verdict) == ["not learned"] and t5.floor_b.notna().all()
    assert "**not learned**" in md
    assert "synthetic" in (w / "results/tables/verdict.md").read_text()


def test_the_build_ends_with_a_report_whose_rule_graph_names_each_rule_once(smoke_run):
    html = (smoke_run / "results/report.html").read_text(errors="replace")
    nodes = re.search(r'"node-data", "values": (\[.*?\])', html)
    rules = [n["rule"] for n in json.loads(nodes.group(1))]
    assert len(rules) == len(set(rules)), rules  # teacher, teacher-less and distilling students: distinct rules
    assert {"train_teacher", "train_student", "distill_student", "verdict", "report"} <= set(rules)


def test_rebuilding_tables_and_figures_rebuilds_the_report(smoke_run):
    out = _snakemake(smoke_run, "-n", "--forcerun", "table", "figures").stdout
    for rule in ("table", "figures", "report"):
        assert f"rule {rule}:" in out, rule
    # the smoke grid draws no Fig. 2 / Fig. 3, whose per-image scores alone feed the verdict from the figures job
    assert "rule verdict:" not in out
    assert "rule train_student:" not in out and "rule distill_student:" not in out


def test_second_run_does_nothing(smoke_run):
    out = _snakemake(smoke_run, "-n").stdout
    assert "Nothing to be done" in out


def test_changing_one_setting_reruns_only_its_jobs(smoke_run, tmp_path):
    config = _smoke_config()
    config["methods"]["intrakd"]["options"] = {"kernel": 3}
    _write_config(smoke_run, config)
    try:
        out = _snakemake(smoke_run, "-n").stdout
    finally:
        _write_config(smoke_run, _smoke_config())
    assert "results/runs/apolloscape/erfnet/intrakd/seed0/train.ipynb" in out
    # only the IntRA-KD student and what aggregates it (table, figures) rerun; no baseline, teacher or data job
    assert "erfnet/baseline/seed0/train.ipynb" not in out and "pspnet_r101/teacher/seed0/train.ipynb" not in out
    assert "rule synth" not in out and "rule train_teacher" not in out and "rule train_student" not in out


def test_report_renders(smoke_run):
    _snakemake(smoke_run, "--report", "results/report.html")
    html = (smoke_run / "results/report.html").read_text(errors="replace")
    assert "table5" in html
    # the tables are HTML pages shown inside the report, not CSV downloads; every figure has its own caption
    assert "table5.html" in html and "verdict.html" in html and "table5.csv" not in html
    for caption in ("Training curves", "as a dot plot", "Verdict"):  # the smoke grid draws no Fig. 1-3
        assert caption in html, caption
    assert "Provenance" in html  # commit and data on the front page
    table = (smoke_run / "results/tables/table5.html").read_text()
    assert "<table>" in table and "<th>ours</th>" in table


def test_training_jobs_print_their_epochs_and_the_build_says_where_to_look(smoke_run):
    out = (smoke_run / "console.txt").read_text()
    assert "apolloscape erfnet baseline seed0: epoch 1/2 |" in out  # a job's progress reaches the console
    assert "Done. Results of preset" in out and "results/report.html" in out
    assert not list((smoke_run / "results/runs").rglob("ckpt"))  # finished runs drop their resume state


def test_failed_job_keeps_its_notebook_in_the_log_folder(tmp_path):
    config = _smoke_config()
    config["grid"][0]["methods"] = ["baseline"]
    config["methods"]["baseline"] = {"options": {"no_such_option": 1}}
    _write_config(tmp_path, config)
    proc = _snakemake(tmp_path, "results/runs/apolloscape/erfnet/baseline/seed0/metrics.json", check=False)
    assert proc.returncode != 0
    logdir = tmp_path / "results/logs/runs/apolloscape/erfnet/baseline/seed0"
    failed = nbformat.read(logdir / "failed.ipynb", as_version=4)
    assert "no_such_option" in json.dumps(failed)
    assert not (tmp_path / "results/runs/apolloscape/erfnet/baseline/seed0/metrics.json").exists()


def test_forced_rerun_of_a_finished_job_reproduces_it(smoke_run):
    """Issue 13's stuck run, with issue 15's clean-up: a finished run has dropped ckpt/, so a forced rerun (Snakemake
    deletes the job's outputs first) trains again and ends with the first run's weights, history and value. (A job
    killed after its last checkpoint, before its sidecars, finishes from the checkpoint: tests/test_reliability.py.)"""
    run = smoke_run / "results/runs/apolloscape/erfnet/baseline/seed0"
    assert not (run / "ckpt").exists()
    before = history_without_timings(run)
    weights = torch.load(run / "model.pt", weights_only=True)["state_dict"]
    value = json.loads((run / "metrics.json").read_text())["value"]
    _snakemake(smoke_run, "--forcerun", str(run.relative_to(smoke_run) / "metrics.json"))
    log = (smoke_run / "results/logs/runs/apolloscape/erfnet/baseline/seed0/papermill.log").read_text()
    assert "epoch 1/2 |" in log  # trained again from scratch
    pd.testing.assert_frame_equal(history_without_timings(run), before)
    again = torch.load(run / "model.pt", weights_only=True)["state_dict"]
    assert again.keys() == weights.keys() and all(torch.equal(again[k], weights[k]) for k in weights)
    assert json.loads((run / "metrics.json").read_text())["value"] == value
