"""Proof that the ``paper`` preset runs: every distinct (model, dataset, method) job of its grid, at full width and
the preset's genuine input sizes, trains for 2 iterations on synthetic data of the genuine image size, is evaluated
on 2 images, and the tables are aggregated from the results; a table of each job's seconds per iteration and peak
memory comes out, with the preset's cost extrapolated from them.

    python benchmarks/paper_shape.py --list                       # the distinct jobs, one a line
    python benchmarks/paper_shape.py --only apolloscape --limit 2 # the first 2 pending jobs of one dataset
    python benchmarks/paper_shape.py --gpu-factor 40              # all the rest; GPU hours at 40x this machine
    python benchmarks/paper_shape.py --table                      # only print the table of what has been measured

Jobs: one teacher per dataset (its own recipe: crop, multipliers), then every distinct (dataset, student, method)
of the grid, seed 0 (seeds do not change a job's shape); a method variant (Fig. 1's ``intra_k*``) is its own job.
Each job runs the engine (``intrakd train``) in its own process, so its peak memory is its own (resident set on
the CPU, ``torch.cuda.max_memory_allocated`` on a GPU), with the preset's settings and these changes: the data are
``intrakd synth`` scenes rendered at the genuine image size (ApolloScape 3384 x 2710, CULane 1640 x 590, LLAMAS
1276 x 717, Cityscapes 2048 x 1024; enough for one batch of the largest batch size); 2 epochs of 1 iteration (the
second iteration is the steady-state one reported; the first includes allocation and warm-up); validation only at
the end, on 2 images; late-starting methods (SAD) start at once, so their cost is measured; distillation runs use
the 2-iteration teacher of their dataset; ``backbone_weights: imagenet`` loads a state dict of torchvision's
constructor (same shapes, random values) unless ``--imagenet cache`` (then torch's hub cache must hold the files);
a path inside ``results/runs`` (ERFNet on CULane from the Cityscapes ERFNet) points at that job's output here,
which then runs first. ``--batch-size`` overrides the preset's batch (the table says which was used).

Resumable and partitionable: each finished job leaves ``<out>/results/<job>.json``; a rerun skips those
(``--force`` reruns), ``--only`` keeps some datasets, ``--jobs`` keeps job ids containing a text, ``--limit N``
runs at most N pending jobs. The table (``<out>/paper_shape.{md,csv}``) covers every finished job; the aggregation
(``intrakd tables`` over the finished runs) runs once every job of the grid has finished, or with ``--aggregate``.

The cost extrapolation: per job, iterations of the real dataset (train images / batch, times epochs) times the
measured seconds per iteration, plus validations (``val_every``) times the real evaluation split's images times
the measured seconds per evaluated image, times the preset's seeds for students (one teacher per dataset).
``--gpu-factor F`` divides this machine's hours by F (a stated CPU-to-GPU speed ratio); on a GPU the hours are
GPU hours as measured.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from intrakd import grid  # noqa: E402

#: Genuine image sizes (W, H) the synthetic scenes are rendered at (intrakd.data.spec.DATASETS[...].genuine_size).
#: Real training-split sizes and evaluation-split sizes, for the extrapolation (datasets_metrics.md §1 CULane
#: train 88,880 / test 34,680, §2 LLAMAS train 58,269 / valid 20,844, §3 ApolloScape 103,653 train [mem] and
#: intrakd_method.md §2.3 its 1,000-image list/val.txt, §4 Cityscapes train 2,975 / val 500).
REAL_SPLITS = {"apolloscape": {"train": 103_653, "val": 1_000},
               "culane": {"train": 88_880, "val": 9_675, "test": 34_680},
               "llamas": {"train": 58_269, "val": 20_844},
               "cityscapes": {"train": 2_975, "val": 500}}
EVAL_IMAGES = 2
RUNS_PREFIX = "results/runs/"


def load_config(path: Path) -> dict:
    return yaml.safe_load(Path(path).read_text())


def job_id(dataset: str, model: str, method: str) -> str:
    return f"{dataset}/{model}/{method}"


def jobs(config: dict) -> list[dict]:
    """Every distinct job of the grid, in run order: per dataset (grid order) its teacher, then its students
    (sorted); each ``{"id", "dataset", "model", "method", "params"}`` with the preset's parameters of seed 0."""
    runs = grid.grid_runs(config)
    datasets = list(dict.fromkeys(ds for entry in config["grid"] for ds in entry["datasets"]))
    out = []
    for ds in datasets:
        students = sorted({(st, me) for d, st, me, _ in runs if d == ds})
        if ds in config["teachers"] and any(grid.needs_teacher(config, me) for _, me in students):
            t = config["teachers"][ds]["model"]
            out.append({"id": job_id(ds, t, "teacher"), "dataset": ds, "model": t, "method": "teacher",
                        "params": grid.run_params(config, *grid.teacher_run(config, ds))})
        for st, me in students:
            out.append({"id": job_id(ds, st, me), "dataset": ds, "model": st, "method": me,
                        "params": grid.run_params(config, ds, st, me, 0)})
    return out


def producer(job: dict, by_out: dict) -> dict | None:
    """The job whose ``model.pt`` this job's ``backbone_weights`` names (a run of the grid), if any."""
    path = grid.backbone_file(job["params"])
    if path and path.startswith(RUNS_PREFIX):
        return by_out.get(str(Path(path).parent))
    return None


def _safe(job: dict) -> str:
    return job["id"].replace("/", "__")


class Bench:
    def __init__(self, config: dict, out: Path, args):
        self.config, self.out, self.args = config, out, args
        self.all = jobs(config)
        self.by_out = {j["params"]["out_dir"]: j for j in self.all}
        (out / "measured").mkdir(parents=True, exist_ok=True)

    def result_path(self, job: dict) -> Path:
        return self.out / "measured" / f"{_safe(job)}.json"

    def done(self, job: dict) -> bool:
        return self.result_path(job).is_file()

    # ---------------------------------------------------------------- inputs
    def batch(self, job: dict) -> int:
        return int(self.args.batch_size or job["params"]["batch_size"])

    def data_root(self, dataset: str) -> Path:
        """Synthetic scenes at the genuine size, enough train images for one batch of every job of the dataset."""
        from intrakd.data import get_spec
        from intrakd.data.synth import generate, split_counts

        root = self.out / "data" / dataset
        # the preset's largest batch (or a larger override): one tree serves every run, overridden or not
        need = max(max(j["params"]["batch_size"], self.args.batch_size or 0) for j in self.all if j["dataset"] == dataset)
        num = next(n for n in range(3, 1000) if split_counts(n)[0] >= need and split_counts(n)[1] >= EVAL_IMAGES)
        stamp = root / ".paper_shape.json"
        size = list(get_spec(dataset).genuine_size)
        want = {"num": num, "size": size}
        if not (stamp.is_file() and json.loads(stamp.read_text()) == want):
            t0 = time.perf_counter()
            generate(dataset, root, num=num, seed=0, size=tuple(size), overwrite=root.exists())  # our own tree
            stamp.write_text(json.dumps(want))
            print(f"rendered {num} synthetic {dataset} scenes at {size[0]}x{size[1]} in "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
        return root

    def imagenet_stand_in(self, arch: str) -> str:
        """A torchvision-constructor state dict of ``arch`` (ImageNet's shapes, random values), saved once."""
        import torch
        import torchvision

        path = self.out / "backbones" / f"{arch}.pth"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(getattr(torchvision.models, arch)(weights=None).state_dict(), path)
        return str(path)

    def run_params(self, job: dict) -> dict:
        from intrakd.distill import METHOD_REGISTRY
        from intrakd.models.summary import meta_model

        p = dict(job["params"])
        ds = job["dataset"]
        p |= {"data_root": str(self.data_root(ds)), "data_source": f"synthetic {ds} scenes at the genuine size "
              "(benchmarks/paper_shape.py)", "out_dir": str(self.out / p["out_dir"]), "epochs": 2,
              "max_iters_per_epoch": 1, "val_every": 0, "max_eval_images": EVAL_IMAGES,
              "num_workers": int(self.args.workers), "batch_size": self.batch(job)}
        if self.args.device:
            p["device"] = self.args.device
        if p.get("teacher_checkpoint"):
            p["teacher_checkpoint"] = str(self.out / p["teacher_checkpoint"])
        weights = p.get("backbone_weights", "none")
        if weights == "imagenet" and self.args.imagenet == "random":
            p["backbone_weights"] = self.imagenet_stand_in(type(meta_model(p["model"], 2)).imagenet_backbone)
        elif weights.startswith(RUNS_PREFIX):
            p["backbone_weights"] = str(self.out / weights)
        if job["method"] != "teacher":  # a late start (SAD) at once: its cost is what is measured
            defaults = METHOD_REGISTRY[p["method"]].default_options
            late = {"start_fraction": 0.0}
            p["method_options"] = {**p.get("method_options", {}), **{k: v for k, v in late.items() if k in defaults}}
        return p

    @staticmethod
    def sizes(params: dict) -> tuple[list[int], list[int]]:
        """(input size, training crop) the engine's loader uses for these parameters, [W, H] each."""
        from intrakd.data import build_dataset

        d = build_dataset(params["dataset"], params["data_root"], params.get("train_split", "train"), train=True,
                          crop=tuple(params["crop"]) if params.get("crop") else None,
                          input_size=tuple(params["input_size"]) if params.get("input_size") else None)
        return list(d.input_size), list(d.crop)

    # ---------------------------------------------------------------- one job
    def run(self, job: dict) -> dict:
        params = self.run_params(job)
        run_dir = Path(params["out_dir"])
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "metrics.json").unlink(missing_ok=True)
        shutil.rmtree(run_dir / "ckpt", ignore_errors=True)  # a killed attempt's checkpoint would skip an iteration
        cfg_file = run_dir / "paper_shape_run.yaml"
        cfg_file.write_text(yaml.safe_dump(params))
        cmd = [sys.executable, "-m", "intrakd.cli", "train", str(cfg_file)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise SystemExit(f"paper-shape job {job['id']} failed (exit {proc.returncode}): {' | '.join(tail)}")
        metrics = json.loads((run_dir / "metrics.json").read_text())
        with open(run_dir / "history.csv", newline="") as f:
            history = list(csv.DictReader(f))
        first, second = (float(r["train_seconds"]) for r in history)
        eval_s = float(history[-1]["epoch_seconds"]) - second
        input_size, crop = self.sizes(params)
        result = {
            "id": job["id"], "dataset": job["dataset"], "model": job["model"], "method": job["method"],
            "batch_size": params["batch_size"], "preset_batch_size": job["params"]["batch_size"],
            "input_size": input_size, "train_crop": crop,
            "s_per_iter": round(second, 3), "s_first_iter": round(first, 3),
            "eval_s_per_image": round(eval_s / EVAL_IMAGES, 3),
            "peak_rss_mb": metrics.get("peak_rss_mb"), "peak_gpu_mb": metrics.get("peak_gpu_mb"),
            "device": metrics.get("device"), "params": metrics.get("params"),
            "backbone_weights": metrics.get("backbone_weights"), "job_wall_s": round(wall, 1),
            "git_commit": metrics.get("git_commit"),
        }
        self.result_path(job).write_text(json.dumps(result, indent=1) + "\n")
        return result

    def run_with_prerequisites(self, job: dict, ran: list) -> None:
        needs = []
        if job["params"].get("teacher_checkpoint"):
            needs.append(self.by_out[str(Path(job["params"]["teacher_checkpoint"]).parent)])
        if (p := producer(job, self.by_out)) is not None:
            needs.append(p)
        for need in needs:
            if not (self.out / need["params"]["out_dir"] / "model.pt").is_file():
                print(f"{job['id']} needs {need['id']} first", flush=True)
                self.run_with_prerequisites(need, ran)
        print(f"running {job['id']} ...", flush=True)
        r = self.run(job)
        ran.append(job["id"])
        print(f"  {r['s_per_iter']:.2f} s/iter (first {r['s_first_iter']:.2f}), batch {r['batch_size']}, "
              f"eval {r['eval_s_per_image']:.2f} s/image, peak {_peak(r)}, job {r['job_wall_s']:.0f} s", flush=True)

    # ---------------------------------------------------------------- table
    def hours(self, job: dict, r: dict) -> float:
        """Hours of one run of the preset at the measured speed, times the seeds for a student."""
        from intrakd.engine.train import iters_per_epoch

        p = job["params"]
        ds = job["dataset"]
        n_train = REAL_SPLITS[ds]["train"]
        iters = iters_per_epoch(n_train, p["batch_size"], max_iters=p.get("max_iters_per_epoch")) * p["epochs"]
        every = p.get("val_every", 1)
        evals = (p["epochs"] // every if every else 0) + (0 if every and p["epochs"] % every == 0 else 1)
        n_eval = REAL_SPLITS[ds].get(p.get("eval_split", "val"), REAL_SPLITS[ds]["val"])
        n_eval = min(n_eval, p.get("max_eval_images") or n_eval)
        # a smaller measured batch scales the step linearly to the preset's (an approximation, said in the table)
        per_iter = r["s_per_iter"] * p["batch_size"] / r["batch_size"]
        seeds = 1 if job["method"] == "teacher" else len(self.config["seeds"])
        return seeds * (iters * per_iter + evals * n_eval * r["eval_s_per_image"]) / 3600

    def table(self, aggregate: dict | None = None) -> str:
        rows, total, missing = [], 0.0, []
        for job in self.all:
            if not self.done(job):
                missing.append(job["id"])
                continue
            r = json.loads(self.result_path(job).read_text())
            h = self.hours(job, r)
            total += h
            rows.append((job, r, h))
        factor = self.args.gpu_factor
        cuda = any("cuda" in str(r.get("device", "")).lower() or r.get("peak_gpu_mb") for _, r, _ in rows)
        unit = "GPU h" if cuda else "h here"
        head = ["job", "batch", "input / crop", "s/iter", "1st iter s", "eval s/img", "peak MB", f"preset {unit}"]
        if factor and not cuda:
            head.append(f"GPU h (/{factor:g})")
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for job, r, h in rows:
            batch = f"{r['batch_size']}" + ("" if r["batch_size"] == r["preset_batch_size"]
                                            else f" (preset {r['preset_batch_size']})")
            sizes = f"{'x'.join(map(str, r['input_size']))} / {'x'.join(map(str, r['train_crop']))}"
            cells = [job["id"], batch, sizes, f"{r['s_per_iter']:.2f}", f"{r['s_first_iter']:.2f}",
                     f"{r['eval_s_per_image']:.2f}", _peak(r), f"{h:,.1f}"]
            if factor and not cuda:
                cells.append(f"{h / factor:,.1f}")
            lines.append("| " + " | ".join(cells) + " |")
        commits = sorted({r.get("git_commit") for _, r, _ in rows} - {None})
        devices = sorted({r.get("device") for _, r, _ in rows} - {None})
        lines.append("")
        lines.append(f"{len(rows)} of {len(self.all)} distinct jobs measured (commit {', '.join(commits) or '?'}; "
                     f"{'; '.join(devices) or '?'}); the preset's cost over the measured jobs: {total:,.1f} {unit}"
                     + (f", {total / factor:,.1f} GPU h at a CPU-to-GPU factor of {factor:g}" if factor and not cuda
                        else "") + ".")
        per_ds: dict[str, float] = {}
        for job, _, h in rows:
            per_ds[job["dataset"]] = per_ds.get(job["dataset"], 0.0) + h
        if len(per_ds) > 1:
            lines.append("By dataset: " + ", ".join(
                f"{ds} {h:,.0f} {unit}" + (f" ({h / factor:,.0f} GPU h)" if factor and not cuda else "")
                for ds, h in per_ds.items()) + ".")
        if missing:
            per = {}
            for m in missing:
                per[m.split("/")[0]] = per.get(m.split("/")[0], 0) + 1
            lines.append(f"Not yet measured: {len(missing)} jobs ("
                         + ", ".join(f"{ds} {n}" for ds, n in per.items()) + "; `--list` names them).")
        if aggregate is not None:
            lines.append(f"Aggregation ({aggregate['command']}): {aggregate['status']} "
                         f"in {aggregate['seconds']:.1f} s.")
        return "\n".join(lines) + "\n"

    def write_table(self, aggregate: dict | None = None) -> str:
        text = self.table(aggregate)
        (self.out / "paper_shape.md").write_text(text)
        with open(self.out / "paper_shape.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["job", "batch_size", "preset_batch_size", "s_per_iter", "s_first_iter", "eval_s_per_image",
                        "peak_rss_mb", "peak_gpu_mb", "preset_hours", "device", "git_commit"])
            for job in self.all:
                if self.done(job):
                    r = json.loads(self.result_path(job).read_text())
                    w.writerow([job["id"], r["batch_size"], r["preset_batch_size"], r["s_per_iter"],
                                r["s_first_iter"], r["eval_s_per_image"], r.get("peak_rss_mb"), r.get("peak_gpu_mb"),
                                round(self.hours(job, r), 3), r.get("device"), r.get("git_commit")])
        return text

    def aggregate(self) -> dict:
        """``intrakd tables`` over the finished runs (the workflow's `table` step), for every table they feed."""
        done = {(j["dataset"], j["model"], j["method"]) for j in self.all if self.done(j)}
        tables = sorted({t for e in self.config["grid"] for t in e["tables"] if t.startswith("table")
                         and any((d, s, m) in done for d in e["datasets"] for s in e["students"]
                                 for m in e["methods"])})
        if not tables:
            return {"command": "intrakd tables", "status": "nothing to aggregate yet", "seconds": 0.0}
        cmd = [sys.executable, "-m", "intrakd.cli", "tables", str(self.out / "results" / "runs"),
               *[a for t in tables for a in ("--table", t)], "--out-tables", str(self.out / "tables"),
               "--out-figures", str(self.out / "figures")]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        status = "ok" if proc.returncode == 0 else f"failed: {(proc.stderr or proc.stdout).strip()[-300:]}"
        return {"command": "intrakd tables " + " ".join(f"--table {t}" for t in tables), "status": status,
                "seconds": time.perf_counter() - t0}


def _peak(r: dict) -> str:
    if r.get("peak_gpu_mb"):
        return f"{r['peak_gpu_mb']:,.0f} GPU"
    return f"{r['peak_rss_mb']:,.0f} RSS" if r.get("peak_rss_mb") is not None else "?"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--directory", type=Path, default=REPO / "presets" / "paper",
                    help="preset folder holding config/config.yaml (default: presets/paper)")
    ap.add_argument("--out", type=Path, default=REPO / "data" / "paper-shape",
                    help="where data, runs and results go (default: data/paper-shape, git-ignored)")
    ap.add_argument("--list", action="store_true", help="list the distinct jobs (id, batch, crop) and exit")
    ap.add_argument("--only", action="append", default=[], metavar="DATASET", help="keep these datasets (repeatable)")
    ap.add_argument("--jobs", action="append", default=[], metavar="TEXT", help="keep job ids containing TEXT")
    ap.add_argument("--limit", type=int, default=None, help="run at most N pending jobs")
    ap.add_argument("--force", action="store_true", help="rerun jobs that already have a result")
    ap.add_argument("--table", action="store_true", help="only write and print the table of finished jobs")
    ap.add_argument("--aggregate", action="store_true", help="aggregate the finished runs (done by itself once all "
                    "jobs have finished)")
    ap.add_argument("--batch-size", type=int, default=None, help="override the preset's batch size (memory)")
    ap.add_argument("--workers", type=int, default=0, help="data-loader workers per job (default 0)")
    ap.add_argument("--device", default=None, help="engine device (default: the preset's, i.e. auto)")
    ap.add_argument("--imagenet", choices=("random", "cache"), default="random",
                    help="imagenet backbones: a torchvision-constructor state dict (random) or torch's hub cache")
    ap.add_argument("--gpu-factor", type=float, default=None,
                    help="CPU-to-GPU speed ratio stated for the GPU-hour column (CPU runs only)")
    args = ap.parse_args(argv)
    config = load_config(args.directory / "config" / "config.yaml")
    bench = Bench(config, args.out, args)
    selected = [j for j in bench.all if (not args.only or j["dataset"] in args.only)
                and (not args.jobs or any(t in j["id"] for t in args.jobs))]
    if args.list:
        for j in selected:
            p = j["params"]
            crop = "x".join(map(str, p["crop"])) if p.get("crop") else "recipe"
            print(f"{j['id']}\tbatch {p['batch_size']}\tcrop {crop}\tbackbone {p.get('backbone_weights', 'none')}"
                  + ("\tdone" if bench.done(j) else ""))
        print(f"{len(selected)} distinct jobs", file=sys.stderr)
        return 0
    aggregate = None
    if not args.table:
        pending = [j for j in selected if args.force or not bench.done(j)]
        ran: list[str] = []
        for job in pending[: args.limit]:
            if job["id"] in ran:
                continue
            bench.run_with_prerequisites(job, ran)
    if args.aggregate or (not args.table and all(bench.done(j) for j in bench.all)):
        aggregate = bench.aggregate()
    print(bench.write_table(aggregate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
