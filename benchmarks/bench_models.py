"""Forward latency of every network at each dataset's paper input size (the data behind a runtime and
parameter table like the paper's). Ratios are against the dataset's teacher measured in the same run.

    python benchmarks/bench_models.py            # CUDA: full set; CPU: the reduced --quick set
    python benchmarks/bench_models.py --full     # force the full set on CPU (minutes per teacher)
    python benchmarks/bench_models.py --quick --json results.json

Input sizes (H x W): ApolloScape 480x1440 (the official ERFNet test crop), CULane 208x976 and LLAMAS
288x960 (the lane recipes' test resize, with the lane-existence head), Cityscapes 1024x2048.
--quick: every model once at 128x256 (19 classes), 1 warm-up + 3 timed runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from intrakd.models import build_model, count_params  # noqa: E402
from intrakd.models.summary import count_flops, meta_model  # noqa: E402

# dataset -> (H, W), classes, exist head, teacher, students
DATASETS = {
    "apolloscape": ((480, 1440), 37, False, "pspnet_r101", ["erfnet", "enet", "resnet18"]),
    "culane": ((208, 976), 5, True, "pspnet_r101", ["erfnet", "enet", "resnet18"]),
    "llamas": ((288, 960), 5, True, "pspnet_r101", ["erfnet", "enet", "resnet18"]),
    "cityscapes": ((1024, 2048), 19, False, "deeplabv3plus_r101", ["erfnet", "swiftnet_rn18"]),
}
QUICK = {"quick": ((128, 256), 19, False, "pspnet_r101",
                   ["deeplabv3plus_r101", "erfnet", "enet", "resnet18", "swiftnet_rn18"])}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_forward(model, x, warmup: int, reps: int) -> float:
    """Median forward latency in milliseconds (inference mode, device synchronised)."""
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        _sync(x.device)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            model(x)
            _sync(x.device)
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def bench(datasets: dict, device, warmup: int, reps: int, channels_last: bool) -> list[dict]:
    rows = []
    for ds, ((h, w), classes, exist, teacher, students) in datasets.items():
        base = None
        for name in [teacher, *students]:
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            model = build_model(name, classes, exist_head=exist).eval().to(device, memory_format=fmt)
            x = torch.randn(1, 3, h, w, device=device).to(memory_format=fmt)
            ms = time_forward(model, x, warmup, reps)
            base = base or ms
            flops = count_flops(meta_model(name, classes, 1.0, exist), (h, w))
            rows.append({"dataset": ds, "model": name, "input": [h, w], "classes": classes, "exist_head": exist,
                         "params": count_params(model), "gflops": flops / 1e9, "ms": ms,
                         "speedup_vs_teacher": base / ms, "device": str(device)})
            print(f"{ds:<12}{name:<20}{h}x{w:<6}{rows[-1]['params'] / 1e6:>8.2f}M{flops / 1e9:>9.1f} GFLOPs"
                  f"{ms:>10.1f} ms   x{base / ms:.2f} vs {teacher}", flush=True)
            del model, x
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="reduced set (default on CPU)")
    p.add_argument("--full", action="store_true", help="paper input sizes even on CPU")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--reps", type=int, default=None)
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    quick = args.quick or (device.type == "cpu" and not args.full)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    reps = args.reps or (3 if quick else (20 if device.type == "cuda" else 3))
    warmup = 1 if device.type == "cpu" else 5
    print(f"device={device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}), "
          f"threads={torch.get_num_threads()}, reps={reps}, {'quick' if quick else 'full'}")
    rows = bench(QUICK if quick else DATASETS, device, warmup, reps, args.channels_last)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
