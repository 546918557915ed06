"""SAD's schedule in fractions of the run (the engine gives every method the run's total_steps) and IRG over the
global batch under DDP (2 gloo processes on the CPU against one process on the same global batch)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from intrakd.distill import build_method
from intrakd.distill.toy import ToySegModel

torch.set_num_threads(1)


def test_sad_switches_on_inside_the_paper_presets_culane_run():
    """The paper preset's CULane budget (12 epochs, batch 12) on CULane's 88,880 training images
    (datasets_metrics.md §1.1): 7,406 iterations an epoch (88,880 / 12 = 7,406.7, the partial last batch of 8 dropped
    by the loader), 88,872 in all; 2/3 of them is 59,248 = 8 x 7,406, the first step of the 9th epoch (epoch index 8
    of 0-11)."""
    from intrakd.distill.sad import START_FRACTION
    from intrakd.grid import optim_settings
    from intrakd.yamlio import load_file

    config = load_file(Path(__file__).resolve().parents[1] / "presets/paper/config/config.yaml")
    culane = optim_settings(config, "train", "culane")
    assert (culane["epochs"], culane["batch_size"]) == (12, 12)
    assert config["methods"]["sad"].get("options", {}).get("start_fraction", START_FRACTION) == START_FRACTION
    per_epoch = 88_880 // culane["batch_size"]
    total = per_epoch * culane["epochs"]
    assert (per_epoch, total) == (7_406, 88_872)
    m = build_method("sad", ToySegModel(3, width=4), None, 3, total_steps=total)
    assert START_FRACTION == pytest.approx(40_000 / 60_000) == pytest.approx(1_200 / 1_800)
    assert m.switch_step == 59_248 == 8 * per_epoch  # on inside the run, 4 of its 12 epochs with SAD
    assert not m.active(59_247) and m.active(59_248) and m.active(total - 1)


@pytest.mark.parametrize("options, fragment", [
    ({"start_fraction": 1.5}, "start_fraction=1.5: expected a number in [0, 1]"),
    ({"start_fraction": True}, "start_fraction=True"),
    ({"start_fraction": 0.5, "total_steps": None}, "needs the run's total_steps"),
    ({"start_epoch": 12}, "has no option(s) ['start_epoch']"),
    ({"total_steps": 0}, "total_steps must be a positive integer"),
])
def test_sad_schedule_bad_input_has_one_clear_error(options, fragment):
    with pytest.raises(ValueError) as err:
        build_method("sad", ToySegModel(3, width=4), None, 3, **({"total_steps": 10} | options))
    assert fragment in str(err.value)


def test_the_engine_gives_the_method_the_runs_total_steps(tmp_path_factory, tmp_path):
    """A SAD run's switch step is ``start_fraction`` of the Trainer's own iteration count (4 training images,
    batch 2, 3 epochs: 2 x 3 = 6 steps, on from ceil(0.5 x 6) = 3)."""
    from helpers import tiny_apollo, tiny_cfg

    from intrakd.engine.train import Trainer

    root = tiny_apollo(tmp_path_factory, num=6)  # 2/3 of 6 = 4 training images
    trainer = Trainer(tiny_cfg(root, tmp_path / "sad", method="sad", epochs=3,
                               method_options={"start_fraction": 0.5}))
    assert (len(trainer.train_set), trainer.iters_per_epoch, trainer.total_iters) == (4, 2, 6)
    assert trainer.method.total_steps == 6 and trainer.method.switch_step == 3


# ---------------------------------------------------------------------- IRG under DDP
C = 4


def _irg_setup():
    """Student, teacher, IRG and the global batch of 4 images, the same in every process."""
    torch.manual_seed(0)
    student = ToySegModel(C, width=4).eval()  # BatchNorm on running statistics: one process and two agree
    torch.manual_seed(1)
    teacher = ToySegModel(C, width=6).eval()
    method = build_method("irg", student, teacher, C)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    return student, teacher, method, x


def _irg_losses(student_forward, teacher, method, x):
    s_out = student_forward(x)
    with torch.no_grad():
        t_out = teacher(x)
    terms = method(s_out, t_out, {})
    sum(terms.values()).backward()
    return {k: float(v.detach()) for k, v in terms.items()}, s_out


def _irg_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist

    from intrakd.distill.irg import edge_matrix

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        student, teacher, method, x = _irg_setup()
        ddp = torch.nn.parallel.DistributedDataParallel(student)  # averages the gradients, as in the engine
        local = x[rank * 2:(rank + 1) * 2]
        terms, s_out = _irg_losses(ddp, teacher, method, local)
        with torch.no_grad():  # what the edge term of the logits alone would see without the gather
            t_logits = teacher(local)["logits"]
            local_edge = float(torch.nn.functional.mse_loss(edge_matrix(s_out["logits"]), edge_matrix(t_logits)))
        grads = {n: p.grad.clone() for n, p in student.named_parameters()}
        torch.save({"terms": terms, "grads": grads, "local_logit_edge": local_edge}, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_irg_under_ddp_sees_the_global_batch(tmp_path):
    """2 gloo processes x 2 images: the edge and transformation terms equal one process's on the 4 images, the
    vertex term's mean over processes equals it too, and the DDP-averaged gradients equal one process's."""
    from intrakd.distill.irg import edge_matrix

    mp.spawn(_irg_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]

    student, teacher, method, x = _irg_setup()
    single, s_out = _irg_losses(student, teacher, method, x)
    single_grads = {n: p.grad for n, p in student.named_parameters()}

    for r in ranks:
        assert r["terms"]["edge"] == pytest.approx(single["edge"], rel=1e-5)
        assert r["terms"]["transform"] == pytest.approx(single["transform"], rel=1e-5)
    assert (ranks[0]["terms"]["vertex"] + ranks[1]["terms"]["vertex"]) / 2 == pytest.approx(single["vertex"], rel=1e-5)
    assert single["edge"] > 0 and single["transform"] > 0
    for name, g in single_grads.items():
        assert g.abs().sum() > 0 or name.endswith("bias")
        for r in ranks:
            scale = float(g.abs().max())
            assert float((r["grads"][name] - g).abs().max()) <= 1e-4 * scale + 1e-8, name
    # without the gather, a process's 2 images give the constant edge matrix [[0, 1], [1, 0]] on both sides
    with torch.no_grad():
        t = teacher(x[:2])["logits"]
        assert torch.equal(edge_matrix(t), torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    assert ranks[0]["local_logit_edge"] == 0.0
