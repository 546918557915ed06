"""Wall time of a whole preset, measured on a part of it and extrapolated: every distinct kind of run of the
preset's grid (teacher, each student with each method) trains a few steps on this machine with the preset's own
settings, and its seconds per step (and per evaluation image) are multiplied by the steps (and evaluations) the
preset asks for.

    python benchmarks/estimate_preset.py --directory presets/standard       # the standard preset
    python benchmarks/estimate_preset.py --directory . --steps 12           # the default preset

Synthetic datasets only (a real dataset's size is not known here): each is rendered small with the preset's size
and world knobs (``--scenes`` images), so the per-step time is the preset's; the step counts come from the preset's
``synth.num`` (2/3 of it train, the rest val, as ``intrakd synth`` splits). What is not measured: the synthetic
data's rendering, the notebooks' start-up (a few seconds per job), tables and figures. Printed per output (table or
figure) and in total, in hours of this machine's time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from intrakd import grid  # noqa: E402


def _run_config(params: dict, root: Path, out: Path, steps: int):
    from intrakd.engine.config import RunConfig

    params = params | {"data_root": str(root), "out_dir": str(out), "epochs": 2, "max_iters_per_epoch": steps,
                       "val_every": 0, "threads": params.get("threads") or 0}
    return RunConfig.from_dict(params)


def measure(params: dict, root: Path, tmp: Path, steps: int, teacher_ckpt: str | None = None) -> dict:
    """Seconds per training step (after a warm-up epoch) and per evaluated image of one kind of run."""
    from intrakd.engine.train import Trainer

    if teacher_ckpt:
        params = params | {"teacher_checkpoint": teacher_ckpt}
    cfg = _run_config(params, root, tmp / "run", steps)
    trainer = Trainer(cfg)
    trainer.wrap_student()
    trainer.train_epoch(0)
    row = trainer.train_epoch(1)
    t0 = time.perf_counter()
    trainer.validate_now()
    per_image = (time.perf_counter() - t0) / len(trainer.eval_set)
    return {"step": row["train_seconds"] / max(row["steps"], 1), "eval_image": per_image}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--directory", default=".", help="preset folder holding config/config.yaml")
    ap.add_argument("--steps", type=int, default=8, help="timed training steps per kind of run")
    ap.add_argument("--scenes", type=int, default=24, help="synthetic scenes rendered for the measurement")
    ap.add_argument("--json", help="write the estimate here")
    args = ap.parse_args(argv)
    config = yaml.safe_load((Path(args.directory) / "config" / "config.yaml").read_text())
    runs = grid.grid_runs(config)
    datasets = sorted({r[0] for r in runs})
    for ds in datasets:
        if config["datasets"][ds]["source"] != "synthetic":
            raise SystemExit(f"datasets.{ds}: source {config['datasets'][ds]['source']!r}; only synthetic data can be "
                             "estimated (the size of a real dataset is not known here)")
    from intrakd.data.synth import generate, split_counts
    from intrakd.models import build_model
    from intrakd.models.checkpoint import save_weights
    from intrakd.data import get_spec

    kinds: dict[tuple, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        roots, teachers = {}, {}
        for ds in datasets:
            s = config["datasets"][ds]["synth"]
            roots[ds] = generate(ds, tmp / "data" / ds, num=args.scenes, seed=s["seed"], size=tuple(s["size"]),
                                 world=s.get("world"))
            if ds in config["teachers"]:
                t = config["teachers"][ds]
                spec = get_spec(ds)
                path = tmp / f"teacher_{ds}.pt"
                save_weights(path, build_model(t["model"], spec.num_classes, width=t["width"], exist_head=spec.has_exist),
                             name=t["model"], num_classes=spec.num_classes, width=t["width"], exist_head=spec.has_exist)
                teachers[ds] = str(path)
                t0 = time.perf_counter()
                kinds[(ds, "teacher")] = measure(grid.run_params(config, *grid.teacher_run(config, ds)), roots[ds], tmp, args.steps)
                print(f"measured {ds} teacher {t['model']}: {kinds[(ds, 'teacher')]['step']:.3f} s/step "
                      f"({time.perf_counter() - t0:.0f} s)", flush=True)
        for ds, st, me, _seed in runs:
            key = (ds, st, grid.base_method(config, me), json.dumps(config["methods"].get(me, {}), sort_keys=True))
            if key in kinds:
                continue
            t0 = time.perf_counter()
            params = grid.run_params(config, ds, st, me, 0)
            kinds[key] = measure(params, roots[ds], tmp, args.steps, teachers.get(ds))
            print(f"measured {ds} {st} {me}: {kinds[key]['step']:.3f} s/step ({time.perf_counter() - t0:.0f} s)",
                  flush=True)

    def hours(params: dict, kind: dict, ds: str) -> float:
        from intrakd.engine.train import iters_per_epoch

        n_train, n_val = split_counts(int(config["datasets"][ds]["synth"]["num"]))
        steps = iters_per_epoch(n_train, params["batch_size"], max_iters=params.get("max_iters_per_epoch"))
        every = params.get("val_every", 1)
        evals = (params["epochs"] // every if every else 0) + (0 if every and params["epochs"] % every == 0 else 1)
        n_eval = min(n_val, params.get("max_eval_images") or n_val)
        return (steps * params["epochs"] * kind["step"] + evals * n_eval * kind["eval_image"]) / 3600

    per_output: dict[str, float] = {}
    total = 0.0
    for ds in datasets:
        if (ds, "teacher") in kinds:
            h = hours(grid.run_params(config, *grid.teacher_run(config, ds)), kinds[(ds, "teacher")], ds)
            per_output[f"teacher {ds}"] = h
            total += h
    seen = set()
    for ds, st, me, seed in runs:
        key = (ds, st, grid.base_method(config, me), json.dumps(config["methods"].get(me, {}), sort_keys=True))
        h = hours(grid.run_params(config, ds, st, me, seed), kinds[key], ds)
        total += h
        outs = [e["tables"] for e in config["grid"] if ds in e["datasets"] and st in e["students"] and me in e["methods"]]
        label = "+".join(sorted({t for ts in outs for t in ts}))
        per_output[label] = per_output.get(label, 0.0) + h
        seen.add((ds, st, me, seed))
    print(f"\npreset {config.get('preset')} ({args.directory}): {len(seen)} student runs "
          f"({len(config['seeds'])} seeds) + {sum(1 for k in kinds if k[1] == 'teacher')} teacher(s)")
    for label, h in per_output.items():
        print(f"  {label:<30} {h:8.2f} h")
    print(f"  {'total':<30} {total:8.2f} h on this machine (training and evaluation only)")
    if args.json:
        Path(args.json).write_text(json.dumps({"hours": per_output, "total_hours": total,
                                               "seconds": {" ".join(map(str, k)): v for k, v in kinds.items()}},
                                              indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
