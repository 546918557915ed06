"""The training engine: sidecars, parameter validation, exact resume, non-finite loss handling."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

import importlib

from intrakd.engine import NonFiniteLossError, RunConfig, train
from intrakd.models.checkpoint import load_weights

from helpers import history_without_timings, poison_second_epoch, same_weights, tiny_apollo, tiny_cfg

train_module = importlib.import_module("intrakd.engine.train")  # the package re-exports train()


@pytest.fixture(scope="module")
def apollo_root(tmp_path_factory) -> Path:
    return tiny_apollo(tmp_path_factory, num=4)


_cfg = tiny_cfg


def _crash_in_second_epoch(monkeypatch):
    """Make the next run die like a killed process at the start of its second epoch; returns the original."""
    original = train_module.Trainer.train_epoch

    def crash(self, epoch):
        if epoch == 1:
            raise KeyboardInterrupt("simulated kill")
        return original(self, epoch)

    monkeypatch.setattr(train_module.Trainer, "train_epoch", crash)
    return original


def test_run_writes_complete_sidecars(apollo_root, tmp_path):
    metrics = train(_cfg(apollo_root, tmp_path / "run"))
    out = tmp_path / "run"
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["value"] == metrics["value"] and 0 <= metrics["value"] <= 100
    assert on_disk["metric"] == "miou" and set(on_disk["result"]["per_class"])  # official class names
    for key in ("seed", "wall_seconds", "peak_rss_mb", "params", "versions", "git_commit", "config"):
        assert key in on_disk
    assert on_disk["versions"]["torch"] == torch.__version__.split("+")[0]
    history = pd.read_csv(out / "history.csv")
    assert list(history["epoch"]) == [1, 2] and history["loss_seg"].notna().all()
    model, _meta = load_weights(out / "model.pt", name="erfnet", num_classes=37, width=0.125)
    assert sum(p.numel() for p in model.parameters()) == on_disk["params"]
    assert not (out / "ckpt").exists()  # a finished run drops its resume state


def test_keep_checkpoints_keeps_the_finished_runs_resume_state(apollo_root, tmp_path):
    train(_cfg(apollo_root, tmp_path / "run", epochs=1, keep_checkpoints=True))
    assert torch.load(tmp_path / "run/ckpt/last.pt", weights_only=True)["epoch"] == 1


def test_notebook_demo_paths_are_inside_the_clone_whatever_the_working_directory(tmp_path, monkeypatch):
    from intrakd.engine.config import DEMO_DIR, demo_path, repo_root

    monkeypatch.chdir(tmp_path)
    clone = Path(__file__).resolve().parent.parent
    assert repo_root() == clone
    assert Path(demo_path("apolloscape")) == clone / DEMO_DIR / "apolloscape"
    assert not (clone / DEMO_DIR).is_relative_to(clone / "results")  # never pooled with a preset's runs


@pytest.mark.parametrize(
    "key, value, fragment",
    [("dataset", "kitti", "valid: apolloscape"), ("model", "vgg", "valid:"), ("method", "magic", "valid:")],
)
def test_unknown_names_list_the_valid_ones(apollo_root, tmp_path, key, value, fragment):
    with pytest.raises(ValueError, match=fragment):
        _cfg(apollo_root, tmp_path, **{key: value}).validate()


def test_a_run_recorded_before_the_rename_reads_its_model():
    assert RunConfig.from_dict({"student": "enet", "role": "teacher"}).model == "enet"
    with pytest.raises(ValueError, match="'student' is the old name of 'model'"):
        RunConfig.from_dict({"student": "enet", "model": "erfnet"})


def test_bounds_come_from_the_field_declarations(apollo_root, tmp_path):
    for key, value, fragment in [("momentum", 1.5, "momentum must be <= 1, got 1.5"),
                                 ("optimizer", "rmsprop", "optimizer must be one of sgd, adam, adamw"),
                                 ("max_eval_images", 0, "max_eval_images must be >= 1, got 0")]:
        with pytest.raises(ValueError, match=fragment):
            _cfg(apollo_root, tmp_path, **{key: value}).validate()
    _cfg(apollo_root, tmp_path, max_eval_images=None).validate()  # None: an optional field unset


def test_unknown_parameter_is_rejected():
    with pytest.raises(KeyError, match="learning_rate"):
        RunConfig.from_dict({"learning_rate": 0.1})


def test_method_needing_a_teacher_without_one_is_rejected(apollo_root, tmp_path):
    with pytest.raises(ValueError, match="needs a teacher"):
        _cfg(apollo_root, tmp_path, method="intrakd").validate()


def test_interrupted_run_resumes_exactly(apollo_root, tmp_path, monkeypatch):
    reference = train(_cfg(apollo_root, tmp_path / "ref"))
    original = _crash_in_second_epoch(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(apollo_root, tmp_path / "cut"))
    assert (tmp_path / "cut/ckpt/last.pt").is_file() and not (tmp_path / "cut/metrics.json").exists()
    monkeypatch.setattr(train_module.Trainer, "train_epoch", original)
    resumed = train(_cfg(apollo_root, tmp_path / "cut"))
    assert resumed["value"] == reference["value"]
    assert same_weights(tmp_path / "ref", tmp_path / "cut")
    pd.testing.assert_frame_equal(history_without_timings(tmp_path / "ref"), history_without_timings(tmp_path / "cut"))


def test_non_finite_loss_stops_with_a_clear_message_and_keeps_the_checkpoint(apollo_root, tmp_path, monkeypatch):
    poison_second_epoch(monkeypatch)
    with pytest.raises(NonFiniteLossError, match="epoch 2.*last good checkpoint"):
        train(_cfg(apollo_root, tmp_path / "nan"))
    state = torch.load(tmp_path / "nan/ckpt/last.pt", weights_only=True)
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["student"].values() if v.is_floating_point())
    assert not (tmp_path / "nan/metrics.json").exists()


@pytest.mark.slow
def test_kill_minus_nine_then_resume_matches_an_uninterrupted_run(apollo_root, tmp_path):
    cfg = _cfg(apollo_root, tmp_path / "killed", epochs=4)
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    cmd = [sys.executable, "-m", "intrakd.cli", "train", str(tmp_path / "run.yaml")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    ckpt = tmp_path / "killed/ckpt/last.pt"
    deadline = time.time() + 600
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed/metrics.json").exists()
    subprocess.run(cmd, check=True, capture_output=True)
    reference = train(_cfg(apollo_root, tmp_path / "ref", epochs=4))
    assert json.loads((tmp_path / "killed/metrics.json").read_text())["value"] == reference["value"]


def test_stale_checkpoint_from_other_settings_is_ignored(apollo_root, tmp_path, monkeypatch):
    original = _crash_in_second_epoch(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(apollo_root, tmp_path / "run"))
    monkeypatch.setattr(train_module.Trainer, "train_epoch", original)
    # the job is rerun with another learning rate: the old checkpoint must not be resumed
    fresh = train(_cfg(apollo_root, tmp_path / "run", lr=0.02))
    reference = train(_cfg(apollo_root, tmp_path / "ref", lr=0.02))
    assert fresh["value"] == reference["value"]
    assert len(pd.read_csv(tmp_path / "run/history.csv")) == 2


@pytest.mark.parametrize("student", ["enet", "erfnet", "resnet18", "swiftnet_rn18"])
def test_cpu_training_is_bitwise_deterministic(apollo_root, tmp_path, student):
    """Same seed, same settings -> identical weights, for every student, and torch reports no operation without a
    deterministic implementation except ENet's max-unpooling: torch flags it because colliding indices would race,
    but 2x2/2 max-pool indices never collide, so each output is written once (the weights check confirms it)."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = [train(_cfg(apollo_root, tmp_path / f"run{i}", model=student, epochs=1)) for i in range(2)]
    assert runs[0]["value"] == runs[1]["value"]
    assert same_weights(tmp_path / "run0", tmp_path / "run1")
    flagged = {str(w.message).split(" ")[0] for w in caught if "deterministic implementation" in str(w.message)}
    assert flagged <= ({"max_unpooling2d_forward_out"} if student == "enet" else set())
