"""Training-step throughput of the engine on this machine: precision, memory format, torch.compile, threads and
data-loader workers, each as a ratio against the plain fp32 step measured in the same run.

    python benchmarks/bench_train_step.py                 # the default preset's three kinds of step
    python benchmarks/bench_train_step.py --quick         # fewer steps, student only
    python benchmarks/bench_train_step.py --compile       # also torch.compile (minutes of compilation)

What is timed is the engine's own training step (``Trainer.train_epoch``: data loading, forward, loss, backward,
SGD/Adam update) on a synthetic ApolloScape-format tree at the default preset's sizes, through ``RunConfig``
switches, so a setting measured here is exactly the setting a preset turns on. Every setting is built and warmed up
once (one epoch: allocations, oneDNN caches, compilation; its seconds are printed), then timed epochs are
interleaved round by round (a shared machine's drift hits all alike) and each setting is summarised by the median
seconds per step over its rounds; the ratio is fp32 / setting, so > 1 is faster. The speed-up says nothing about accuracy: whether a
faster setting moves the final metric is checked by training with it (see the README's "Engine throughput").
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from intrakd.data.synth import generate  # noqa: E402
from intrakd.engine.config import RunConfig  # noqa: E402
from intrakd.engine.train import Trainer  # noqa: E402
from intrakd.models import build_model  # noqa: E402
from intrakd.models.checkpoint import save_weights  # noqa: E402

#: setting name -> RunConfig overrides; "mixed" is bf16 autocast on the CPU (cpu_amp) or AMP on CUDA (amp)
SETTINGS = {
    "fp32": {"mixed": False, "channels_last": False},
    "channels_last": {"mixed": False, "channels_last": True},
    "bf16": {"mixed": True, "channels_last": False},
    "bf16+channels_last": {"mixed": True, "channels_last": True},
    "bf16+channels_last, 1 thread": {"mixed": True, "channels_last": True, "threads": 1},
    "bf16+channels_last, 1 loader worker": {"mixed": True, "channels_last": True, "num_workers": 1},
}
COMPILED = {"bf16+channels_last+compile": {"mixed": True, "channels_last": True, "torch_compile": True}}


def make_config(root: Path, out: Path, role: str, steps: int, **over) -> RunConfig:
    mixed = over.pop("mixed")
    over |= {"amp": mixed, "cpu_amp": mixed}  # only the one of the device in use applies
    base = dict(dataset="apolloscape", data_root=str(root), input_size=[416, 128], batch_size=4,
                max_iters_per_epoch=steps, val_every=0, out_dir=str(out), optimizer="adam", lr=1e-3, threads=2)
    if role == "student":
        base |= dict(model="erfnet", width=0.5)
    elif role == "intrakd":  # the student's step with the teacher's forward pass and the IntRA-KD terms
        base |= dict(model="erfnet", width=0.5, method="intrakd", teacher="pspnet_r101", teacher_width=0.375,
                     teacher_checkpoint=str(root.parent / "teacher.pt"))
    else:
        base |= dict(model="pspnet_r101", width=0.375, role="teacher")
    return RunConfig(**(base | over))


def warmed_trainer(cfg: RunConfig) -> tuple[Trainer, float]:
    """A trainer after one warm-up epoch (allocations, oneDNN primitive caches, compilation) and that epoch's
    seconds. ``cfg.epochs`` must cover the warm-up and every timed round (the poly schedule ends there)."""
    trainer = Trainer(cfg)
    trainer.wrap_student()  # what Trainer.run does before its first epoch (compilation included)
    t0 = time.perf_counter()
    trainer.train_epoch(0)
    return trainer, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="student only, fewer steps")
    ap.add_argument("--compile", action="store_true", help="also measure torch.compile (slow to compile)")
    ap.add_argument("--rounds", type=int, default=None, help="timed rounds per setting")
    ap.add_argument("--steps", type=int, default=None, help="steps per round")
    ap.add_argument("--json", help="write the measurements here")
    args = ap.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 3)
    steps = args.steps or (6 if args.quick else 10)
    roles = ["student"] if args.quick else ["student", "intrakd", "teacher"]
    settings = dict(SETTINGS) | (COMPILED if args.compile else {})
    device = "cuda" if torch.cuda.is_available() else "cpu"
    out: dict = {"device": device, "threads": torch.get_num_threads(), "rounds": rounds, "steps": steps,
                 "results": {}}
    with tempfile.TemporaryDirectory() as tmp:
        root = generate("apolloscape", Path(tmp) / "data", num=48, seed=0, size=(424, 340))
        teacher = build_model("pspnet_r101", 37, width=0.375)  # untrained: its speed is the trained one's
        save_weights(Path(tmp) / "teacher.pt", teacher, name="pspnet_r101", num_classes=37, width=0.375,
                     exist_head=False)
        for role in roles:
            times = {name: [] for name in settings}
            trainers, warm = {}, {}
            for name, over in settings.items():  # every setting built and warmed up once
                cfg = make_config(root, Path(tmp) / name, role, steps, device=device, epochs=rounds + 1, **dict(over))
                trainers[name], warm[name] = warmed_trainer(cfg)
            for r in range(rounds):  # interleaved: one epoch of every setting, then the next round
                for name in settings:
                    row = trainers[name].train_epoch(r + 1)
                    times[name].append(row["train_seconds"] / max(row["steps"], 1))
            del trainers
            base = statistics.median(times["fp32"])
            name = {"student": "ERFNet w0.5", "intrakd": "ERFNet w0.5 + IntRA-KD (PSPNet-ResNet-101 w0.375 teacher)",
                    "teacher": "PSPNet-ResNet-101 w0.375"}[role]
            print(f"\n{role}: {name}, batch 4 at 416x128, Adam; {device}; {rounds} rounds of {steps} steps, "
                  "median s/step")
            print(f"{'setting':<40} {'s/step':>8} {'vs fp32':>8} {'warm-up s':>10}")
            res = {}
            for name in settings:
                med = statistics.median(times[name])
                res[name] = {"seconds_per_step": med, "speedup_vs_fp32": base / med, "first_epoch_seconds": warm[name],
                             "all": times[name]}
                print(f"{name:<40} {med:8.3f} {base / med:7.2f}x {warm[name]:10.1f}")
            out["results"][role] = res
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
