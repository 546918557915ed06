"""Multi-process training (DDP, gloo on CPU): launcher, replica agreement, exact resume, parameter checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml

from intrakd.engine import RunConfig, train
from intrakd.engine import distributed, launch
from intrakd.engine.config import ConfigTypeError
from intrakd.engine.errors import DistributedRunError, NonFiniteLossError

from helpers import history_without_timings, same_weights, tiny_apollo, tiny_cfg


@pytest.fixture(scope="module")
def apollo_root(tmp_path_factory) -> Path:
    return tiny_apollo(tmp_path_factory, num=6)


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory) -> Path:
    """An (untrained) ERFNet teacher checkpoint: SKD only needs something to read."""
    from intrakd.models import build_model
    from intrakd.models.checkpoint import save_weights

    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("teacher") / "model.pt"
    save_weights(path, build_model("erfnet", 37, width=0.125), name="erfnet", num_classes=37, width=0.125,
                 exist_head=False)
    return path


def _cfg(root: Path, out: Path, **kw) -> RunConfig:
    return tiny_cfg(root, out, **({"nproc": 2} | kw))


def _skd_adv(root: Path, out: Path, teacher: Path) -> RunConfig:
    """SKD with its WGAN discriminator: an extra optimiser the method steps itself (synced by the hook)."""
    return _cfg(root, out, method="skd", teacher="erfnet", teacher_width=0.125, teacher_checkpoint=str(teacher),
                method_options={"adversarial": True, "conv_dim": 8})


@pytest.fixture(scope="module")
def skd_run(apollo_root, teacher_ckpt, tmp_path_factory) -> tuple[RunConfig, dict]:
    cfg = _skd_adv(apollo_root, tmp_path_factory.mktemp("ddp") / "skd", teacher_ckpt)
    return cfg, train(cfg)


def _assert_replicas_identical(metrics: dict) -> None:
    digests = metrics["distributed"]["replica_param_sha256"]
    assert len(digests) == 2 and len(set(digests)) == 1 and metrics["distributed"]["replicas_identical"]


# ---------------------------------------------------------------------- runs (2 gloo processes each)
def test_two_process_run_keeps_replicas_identical_with_trainable_method_extras(apollo_root, tmp_path):
    # DKS: auxiliary heads (BatchNorm inside) are method parameters, averaged before the main optimiser's step
    out = tmp_path / "dks"
    metrics = train(_cfg(apollo_root, out, method="dks"))
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(metrics))
    assert on_disk["world_size"] == 2 and on_disk["effective_batch_size"] == 2
    assert on_disk["distributed"]["batch_size_per_process"] == 1 and on_disk["distributed"]["backend"] == "gloo"
    assert on_disk["extra_params_train_only"] > 0
    _assert_replicas_identical(on_disk)
    history = pd.read_csv(out / "history.csv")
    assert list(history["epoch"]) == [1, 2] and (history["steps"] == 2).all()  # 4 images, global batch 2
    assert yaml.safe_load((out / launch.CONFIG_NAME).read_text())["nproc"] == 2
    log = (out / launch.LOG_NAME).read_text()
    assert log.count("epoch 2/2 |") == 1  # process 0 alone logs
    assert not list(out.glob("*.tmp")) and (out / "model.pt").is_file()


def test_method_with_its_own_optimiser_stays_in_step(skd_run):
    _, metrics = skd_run
    assert metrics["world_size"] == 2 and metrics["extra_params_train_only"] > 0  # the discriminator
    _assert_replicas_identical(metrics)


@pytest.mark.slow  # three 2-process runs: ~35 s alone, more on a busy machine
def test_interrupted_two_process_run_resumes_exactly(skd_run, tmp_path):
    ref_cfg, reference = skd_run
    cfg = RunConfig.from_dict(ref_cfg.to_dict() | {"out_dir": str(tmp_path / "cut")})
    cfg.out.mkdir(parents=True)
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(json.loads(json.dumps(cfg.to_dict()))))
    # both processes stop at the start of their second epoch, as a kill between epochs would
    (tmp_path / "crash.py").write_text(textwrap.dedent("""
        import importlib, sys
        module = importlib.import_module("intrakd.engine.train")
        original = module.Trainer.train_epoch
        def crash(self, epoch):
            if epoch == 1:
                raise KeyboardInterrupt("simulated kill")
            return original(self, epoch)
        module.Trainer.train_epoch = crash
        from intrakd.cli import main
        sys.exit(main(["train", sys.argv[1]]))
    """))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cut = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          str(tmp_path / "crash.py"), str(tmp_path / "run.yaml")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert cut.returncode != 0 and "simulated kill" in cut.stdout + cut.stderr
    assert torch.load(cfg.out / "ckpt/last.pt", weights_only=True)["epoch"] == 1
    assert not (cfg.out / "metrics.json").exists()

    resumed = train(cfg)
    assert "resumed from" in (cfg.out / launch.LOG_NAME).read_text()
    assert resumed["value"] == reference["value"]
    _assert_replicas_identical(resumed)
    assert resumed["distributed"]["replica_param_sha256"] == reference["distributed"]["replica_param_sha256"]
    assert same_weights(ref_cfg.out, cfg.out)
    pd.testing.assert_frame_equal(history_without_timings(ref_cfg.out), history_without_timings(cfg.out))


@pytest.mark.slow  # ~15 s of process start-up for one error message
def test_failing_processes_raise_one_error_naming_the_log(apollo_root, tmp_path):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")  # exists (the launcher's check passes), unreadable in the workers
    cfg = _cfg(apollo_root, tmp_path / "run", method="kd", teacher="erfnet", teacher_width=0.125,
               teacher_checkpoint=str(broken))
    with pytest.raises(DistributedRunError) as err:
        train(cfg)
    log = tmp_path / "run" / launch.LOG_NAME
    assert str(log) in str(err.value) and "is unreadable" in str(err.value)
    assert isinstance(err.value, ValueError)  # the workers' own error type (intrakd.models.checkpoint)
    assert "is unreadable" in log.read_text()


@pytest.mark.slow  # ~15 s of process start-up for one error
def test_a_worker_config_error_comes_back_as_that_error_through_its_report_not_its_output(apollo_root, tmp_path,
                                                                                            monkeypatch):
    """The launcher validates the run and writes ddp_config.yaml; here that file carries lr: -1, which each worker
    refuses in its own RunConfig.validate(). The workers' output is thrown away: the error, its type and its
    traceback reach the launcher through the per-rank JSON reports alone."""
    to_dict = RunConfig.to_dict
    monkeypatch.setattr(RunConfig, "to_dict", lambda self: to_dict(self) | {"lr": -1.0})  # the launcher's copy only

    def silent(cmd, env, log):  # torchrun with its output discarded: nothing to parse
        return subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode

    monkeypatch.setattr(launch, "_stream", silent)
    with pytest.raises(ValueError, match=r"lr must be > 0, got -1\.0") as err:
        train(_cfg(apollo_root, tmp_path / "run"))
    assert isinstance(err.value, DistributedRunError) and type(err.value).__name__ == "WorkerValueError"
    assert f"full log: {tmp_path / 'run' / launch.LOG_NAME}" in str(err.value)
    assert "[rank0] ValueError: lr must be > 0" in str(err.value) or "[rank1] ValueError: lr" in str(err.value)
    assert "in validate" in "\n".join(err.value.__notes__)  # the worker's traceback, from its report
    log = (tmp_path / "run" / launch.LOG_NAME).read_text()
    assert "=== traceback of rank" in log and "intrakd train: error" not in log  # output discarded, reports kept


# ---------------------------------------------------------------------- failure reports (no processes)
def _report(tmp_path, rank, err, monkeypatch):
    monkeypatch.setenv(launch.ERROR_DIR_ENV, str(tmp_path))
    with pytest.raises(type(err)):
        with launch.reporting_failure(rank):
            raise err


def test_failure_reports_raise_the_first_workers_error_type_with_its_message(tmp_path, monkeypatch):
    _report(tmp_path, 1, NonFiniteLossError("loss is nan at epoch 2"), monkeypatch)
    _report(tmp_path, 0, RuntimeError("Connection closed by peer"), monkeypatch)  # later: a peer losing rank 1
    reports = launch.read_reports(tmp_path)
    assert [r["rank"] for r in reports] == [1, 0]
    assert reports[0]["types"][:2] == ["intrakd.engine.errors.NonFiniteLossError", "builtins.FloatingPointError"]
    err = launch.failure(reports, "2-process run failed")
    assert isinstance(err, NonFiniteLossError) and isinstance(err, DistributedRunError)
    assert str(err) == ("2-process run failed\n[rank1] NonFiniteLossError: loss is nan at epoch 2\n"
                        "[rank0] RuntimeError: Connection closed by peer")
    assert "raise err" in err.__notes__[0] and err.__notes__[0].startswith("traceback of rank 1:")


@pytest.mark.parametrize("raised, expected", [
    (FileNotFoundError("data_root 'x': no such directory"), FileNotFoundError),
    (ConfigTypeError("epochs='2': expected an integer"), TypeError),  # its module's class: the nearest built-in one
    (NotImplementedError("no"), NotImplementedError),  # a RuntimeError itself
    (KeyboardInterrupt("simulated kill"), None),  # not an Exception: a plain DistributedRunError, never an interrupt
])
def test_failure_types_are_the_nearest_known_class_of_the_workers_error(tmp_path, monkeypatch, raised, expected):
    _report(tmp_path, 0, raised, monkeypatch)
    err = launch.failure(launch.read_reports(tmp_path), "run failed")
    assert isinstance(err, DistributedRunError) and str(raised) in str(err)
    if expected is None:
        assert type(err) is DistributedRunError
    else:
        assert isinstance(err, expected)


def test_no_report_is_a_plain_distributed_run_error_and_a_hand_started_torchrun_writes_none(tmp_path, monkeypatch):
    err = launch.failure([], "run failed")
    assert type(err) is DistributedRunError and "no process reported an error" in str(err)
    monkeypatch.delenv(launch.ERROR_DIR_ENV, raising=False)
    with pytest.raises(ValueError):
        with launch.reporting_failure(0):
            raise ValueError("x")
    assert not list(tmp_path.iterdir())


def test_train_in_process_never_launches(apollo_root, tmp_path):
    from intrakd.engine.train import train_in_process

    with pytest.raises(ValueError, match="nproc=2 outside torchrun: train this run with intrakd.engine.train"):
        train_in_process(_cfg(apollo_root, tmp_path / "run"))


# ---------------------------------------------------------------------- parameters (no processes)
@pytest.mark.parametrize(
    "kw, fragment",
    [
        (dict(nproc=0), "nproc must be >= 1"),
        (dict(nproc="2"), "nproc='2': expected an integer"),
        (dict(nproc=True), "nproc=True: expected an integer"),
        (dict(nproc=2, batch_size=3), "batch_size 3 is not divisible by nproc 2"),
        (dict(nproc=2, device="cuda:1"), "device 'cuda:1' with nproc 2"),
        (dict(sync_bn="yes"), "sync_bn='yes': expected true or false"),
    ],
)
def test_bad_process_settings_are_rejected(apollo_root, tmp_path, kw, fragment):
    with pytest.raises(ValueError, match=fragment):
        _cfg(apollo_root, tmp_path, **kw).validate()


def test_from_dict_accepts_the_new_keys():
    cfg = RunConfig.from_dict({"nproc": 4, "sync_bn": False, "batch_size": 8})
    assert (cfg.nproc, cfg.sync_bn) == (4, False)


def test_world_size_from_the_launcher_must_match_nproc(apollo_root, tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(ValueError, match="nproc=2 but this process was started with WORLD_SIZE=3"):
        train(_cfg(apollo_root, tmp_path / "run", batch_size=4))
    monkeypatch.setenv("WORLD_SIZE", "x")
    with pytest.raises(ValueError, match="WORLD_SIZE='x': expected an integer"):
        distributed.launcher_env()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match="0 <= RANK < WORLD_SIZE"):
        distributed.launcher_env()


def test_single_process_group_is_a_no_op():
    group = distributed.ProcessGroup()
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.full((3,), 2.0)
    group.average_gradients([p])
    group.barrier()
    module = torch.nn.BatchNorm2d(3)
    assert group.wrap(module) is module and group.convert_sync_batchnorm(module, True) is module
    assert group.mean([1.0, 2.0]) == [1.0, 2.0] and group.any(True) and not group.any(False)
    assert group.gather("x") == ["x"] and group.broadcast({"a": 1}) == {"a": 1}
    assert torch.equal(p.grad, torch.full((3,), 2.0))


def test_parameter_digest_sees_a_one_ulp_change():
    a = torch.nn.Linear(3, 2)
    before = distributed.parameter_digest(a)
    with torch.no_grad():
        a.weight[0, 0] = torch.nextafter(a.weight[0, 0], torch.tensor(2.0))
    assert distributed.parameter_digest(a) != before


def test_every_student_parameter_gets_a_gradient_from_the_engine_losses():
    """Why DDP runs without find_unused_parameters: whatever a method reads from the taps, the segmentation
    (and lane-existence) loss alone already reaches every parameter of every registered student."""
    from intrakd.models import MODEL_REGISTRY, build_model

    for name in sorted(MODEL_REGISTRY):
        for exist in (False, True):
            model = build_model(name, 5, width=0.125, exist_head=exist).train()
            out = model(torch.randn(2, 3, 64, 64))
            loss = F.cross_entropy(out["logits"], torch.randint(0, 5, (2, 64, 64)))
            if exist:
                loss = loss + out["exist"].sum()
            loss.backward()
            unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
            assert not unused, f"{name} (exist_head={exist}): no gradient for {unused[:5]}"
