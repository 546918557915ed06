"""The CPU-to-GPU factor that ``paper_shape.py --gpu-factor`` divides this machine's hours by, measured on one side.

No GPU can be timed here, so the factor compares a published GPU training throughput with the same workload timed
on this machine: torchvision's ResNet-50 (v1.5) trained on 224 x 224 images, batch 32, SGD with momentum, cross
entropy, with the engine's CPU settings (float32, channels-last, every core of this process's affinity). The GPU
side is NVIDIA's DeepLearningExamples ResNet-50 v1.5 PyTorch README, "Training performance: NVIDIA DGX A100 (8x A100
80GB)", 1 GPU, mixed precision: 2470 img/s (pytorch-21.03 container, batch 256, DALI loader); the engine trains with
AMP and channels-last on CUDA, the nearest match. ``--gpu-img-per-s`` takes another card's published number.

What the factor means: a convolution-bound network runs this many times faster there. The students here (ENet,
ERFNet) are lighter and more memory-bound than ResNet-50, so a GPU gains less on them than the factor says and
their GPU hours come out optimistic; the ResNet-101 teachers, whose forward pass dominates every distillation job,
are close to the measured workload. Data loading (JPEG decoding of 3384 x 2710 ApolloScape frames) is not in it.

    python benchmarks/cpu_gpu_factor.py [--steps 3] [--gpu-img-per-s 2470]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_metrics import loadavg  # noqa: E402  (this folder is on sys.path when a benchmark runs)
from intrakd.metrics._pool import cpu_count  # noqa: E402

#: DeepLearningExamples/PyTorch/Classification/ConvNets/resnet50v1.5/README.md, DGX A100 (A100 80GB), 1 GPU, AMP
A100_RESNET50_AMP_IMG_PER_S = 2470.0


def measure(batch: int, steps: int) -> list[float]:
    """Seconds per training step of ResNet-50 at 224 x 224 (one warm-up step first, not counted)."""
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    images = torch.randn(batch, 3, 224, 224).contiguous(memory_format=torch.channels_last)
    target = torch.randint(0, 1000, (batch,))
    times = []
    for step in range(steps + 1):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(images), target).backward()
        opt.step()
        if step:
            times.append(time.perf_counter() - t0)
    return times


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step (default 3)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--gpu-img-per-s", type=float, default=A100_RESNET50_AMP_IMG_PER_S,
                    help="published GPU training throughput of the same workload (default: A100 80GB, AMP)")
    args = ap.parse_args(argv)
    import torch

    threads = cpu_count()
    torch.set_num_threads(threads)
    print(f"cpu_gpu_factor: ResNet-50 training, batch {args.batch} at 224x224, float32 channels-last, "
          f"{threads} threads; load before {loadavg()}")
    times = measure(args.batch, args.steps)
    per_s = args.batch / statistics.median(times)
    print(f"  steps {', '.join(f'{t:.2f}' for t in times)} s; median {statistics.median(times):.2f} s -> "
          f"{per_s:.2f} img/s here; load after {loadavg()}")
    print(f"  factor = {args.gpu_img_per_s:g} / {per_s:.2f} = {args.gpu_img_per_s / per_s:.0f} "
          f"(pass to paper_shape.py as --gpu-factor)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
