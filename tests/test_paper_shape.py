"""benchmarks/paper_shape.py: the jobs it enumerates from the paper preset and the parameters it runs them with
(no training here: the check itself is run by hand, see the README)."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parent.parent
PAPER = REPO / "presets" / "paper" / "config" / "config.yaml"


@pytest.fixture(scope="module")
def paper_shape():
    spec = importlib.util.spec_from_file_location("paper_shape", REPO / "benchmarks" / "paper_shape.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _expected_jobs(config: dict) -> set[str]:
    """Every (dataset, model, method) of the grid, written out from the YAML alone, plus each dataset's teacher."""
    jobs = {f"{d}/{s}/{m}" for e in config["grid"]
            for d, s, m in itertools.product(e["datasets"], e["students"], e["methods"])}
    jobs |= {f"{d}/{config['teachers'][d]['model']}/teacher" for e in config["grid"] for d in e["datasets"]}
    return jobs


def test_list_enumerates_every_distinct_job_of_the_paper_grid_once(paper_shape, capsys, tmp_path):
    config = yaml.safe_load(PAPER.read_text())
    assert paper_shape.main(["--list", "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    listed = [line.split("\t")[0] for line in out.splitlines()]
    assert len(listed) == len(set(listed)) == 89 and err.strip() == "89 distinct jobs"
    assert set(listed) == _expected_jobs(config)
    for ds in ("apolloscape", "culane", "llamas", "cityscapes"):  # a dataset's teacher runs before its students
        mine = [j for j in listed if j.startswith(ds + "/")]
        assert mine[0].endswith("/teacher"), mine[:2]
    line = next(x for x in out.splitlines() if x.startswith("apolloscape/pspnet_r101/teacher"))
    assert "batch 8" in line and "crop 1376x464" in line and "backbone imagenet" in line


def test_list_can_be_partitioned(paper_shape, capsys, tmp_path):
    paper_shape.main(["--list", "--out", str(tmp_path), "--only", "cityscapes"])
    out = capsys.readouterr().out
    assert [x.split("\t")[0] for x in out.splitlines()] == [
        "cityscapes/deeplabv3plus_r101/teacher", "cityscapes/erfnet/baseline", "cityscapes/erfnet/intrakd",
        "cityscapes/swiftnet_rn18/baseline", "cityscapes/swiftnet_rn18/intrakd"]
    paper_shape.main(["--list", "--out", str(tmp_path), "--jobs", "intra_k"])
    assert len(capsys.readouterr().out.splitlines()) == 9  # Fig. 1's kernel sweep


def test_jobs_run_with_the_presets_settings_on_genuine_shapes(paper_shape, tmp_path, monkeypatch):
    import argparse

    config = yaml.safe_load(PAPER.read_text())
    args = argparse.Namespace(batch_size=None, workers=0, device=None, imagenet="random")
    bench = paper_shape.Bench(config, tmp_path, args)
    monkeypatch.setattr(paper_shape.Bench, "data_root", lambda self, ds: tmp_path / "data" / ds)
    job = {j["id"]: j for j in bench.all}
    sad = bench.run_params(job["culane/resnet18/sad"])
    assert sad["method_options"]["start_fraction"] == 0  # SAD's late start moved to the first step: its cost counts
    assert (sad["epochs"], sad["max_iters_per_epoch"], sad["val_every"], sad["max_eval_images"]) == (2, 1, 0, 2)
    assert sad["batch_size"] == 12 and sad["width"] == 1.0
    stand_in = torch.load(sad["backbone_weights"], weights_only=True)
    assert stand_in["layer4.1.conv2.weight"].shape == (512, 512, 3, 3)  # torchvision's ResNet-18 shapes
    kd = bench.run_params(job["apolloscape/erfnet/intrakd"])
    assert kd["teacher_checkpoint"] == str(tmp_path / "results/runs/apolloscape/pspnet_r101/teacher/seed0/model.pt")
    erf = bench.run_params(job["culane/erfnet/baseline"])
    assert erf["backbone_weights"] == str(tmp_path / "results/runs/cityscapes/erfnet/baseline/seed0/model.pt")
    assert paper_shape.producer(job["culane/erfnet/baseline"], bench.by_out)["id"] == "cityscapes/erfnet/baseline"
    swift = bench.run_params(job["cityscapes/swiftnet_rn18/baseline"])
    assert (swift["optimizer"], swift["lr_schedule"], swift["batch_size"]) == ("adam", "cosine", 14)
    teacher = bench.run_params(job["apolloscape/pspnet_r101/teacher"])
    assert teacher["crop"] == [1376, 464] and teacher["head_lr_mult"] == 10
