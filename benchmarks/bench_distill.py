"""Distillation-method costs, measured in one run (device-agnostic: CUDA when present, else CPU).

1. Extra cost per training step of every method, as a ratio to the student's own forward + CE + backward,
   ERFNet student / PSPNet-R101 teacher at full width, n = 37 classes (each image's label of 16 x 16 blocks holds
   ``--classes`` of them, all 37 by default; a genuine ApolloScape label holds 10-12), ApolloScape crop 496 x 1488, batch 8
   on a GPU (``--quick``: the same networks on a 248 x 744 crop = half the crop per side, batch 1, one CPU
   thread; per-pixel costs keep their ratio, the dense pairwise map of skd_pair shrinks 16x). The random
   teacher's BatchNorm statistics are calibrated on the batch (``calibrate_bn``), so its features and logits
   have a trained network's scale. Each method's step is timed interleaved with the plain student step and the
   extra cost is the median of the pairs' ratios (CPU time of this process on a CPU), so load on a shared
   machine cancels. The teacher's forward is excluded (shared by every
   teacher method; printed apart). Goals (issue 14): ``intra`` <= 5 %, ``intrakd`` (IntRA + AT + KD) <= 15 %.
2. IntRA-KD's vectorised moment pooling against the official example's loop form (Python loops over
   positions, classes and channels), same inputs, outputs checked to agree. Goal: at least 1000x faster.
3. Table 4's complexity column as counts: entries of each knowledge form's matched object per image at the
   full ApolloScape crop (shapes only, on the meta device), as the registered method matches them and as the
   supplement's formula at the 1/8 tap.

Usage: python benchmarks/bench_distill.py [--quick] [--reps N] [--batch B] [--width W] [--shape H W] [--classes K]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

import intrakd.models.erfnet  # noqa: F401  (registration)
import intrakd.models.pspnet  # noqa: F401
from intrakd.distill import METHOD_REGISTRY, TABLE4_FORMS, build_method
from intrakd.distill.intrakd import aoi_maps, moment_pool
from intrakd.models.base import build_model

N_CLASSES = 37
FULL_CROP = (496, 1488)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, reps, warmup=2):
    """Median seconds of ``reps`` calls: wall time on a GPU (synchronised), this process's CPU time on a CPU (time the
    shared machine gives to other processes is not counted; the steps run one thread)."""
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        _sync(device)
        t0 = clock()
        fn()
        _sync(device)
        times.append(clock() - t0)
    return statistics.median(times)


def calibrate_bn(model, x, passes=3):
    """Set a randomly initialised network's BatchNorm running statistics to the batch's (cumulative average of a few
    train-mode forwards), as a trained teacher's are: with the init's (0, 1) statistics in eval mode, PSPNet-R101's
    activations grow through its 101 layers to logits of +-5e5, whose softmax underflows into denormals (2.5x slower
    on a CPU) and no trained teacher gives."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(passes):
            model(x)
    model.eval()


def block_label(batch, shape, classes, g):
    """B x H x W label of 16 x 16 blocks, each image drawing its blocks from ``classes`` of the 37 class IDs
    (void always among them; ``classes`` = 37: every class in every image)."""
    out = []
    for _ in range(batch):
        ids = torch.cat([torch.zeros(1, dtype=torch.long), 1 + torch.randperm(N_CLASSES - 1, generator=g)[: classes - 1]])
        pick = torch.randint(0, classes, (1, 1, shape[0] // 16, shape[1] // 16), generator=g)
        out.append(F.interpolate(ids[pick].float(), size=shape, mode="nearest")[:, 0].long())
    return torch.cat(out)


def bench_methods(device, width, shape, batch, reps, names=None, classes=N_CLASSES):
    student = build_model("erfnet", N_CLASSES, width=width).to(device).train()
    teacher = build_model("pspnet_r101", N_CLASSES, width=width).to(device).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, *shape, generator=g).to(device)
    label = block_label(batch, shape, classes, g).to(device)
    data = {"image": x, "label": label}

    calibrate_bn(teacher, x)

    def teacher_forward():
        with torch.no_grad():
            return teacher(x)

    t_out = teacher_forward()

    def step(method=None):
        s_out = student(x)
        loss = F.cross_entropy(s_out["logits"], label, ignore_index=255)
        if method is not None:
            terms = method(s_out, t_out if method.needs_teacher else None, data, step=0, epoch=0)
            loss = loss + sum(terms.values())
        loss.backward()
        student.zero_grad(set_to_none=True)
        if method is not None:
            method.zero_grad(set_to_none=True)
            method.after_student_step(s_out, t_out, data)  # SKD's discriminator update when adversarial

    t_teacher = timed(teacher_forward, device, max(1, reps // 2), warmup=1)
    rows = [(n, {}) for n in sorted(METHOD_REGISTRY) if n != "baseline"] + [("skd", {"adversarial": True})]
    if names:
        rows = [r for r in rows if r[0] + ("+adv" if r[1] else "") in names]
    results, bases = [], []
    for name, extra in rows:
        opts = {"start_fraction": 0} if name == "sad" else {}
        cls = METHOD_REGISTRY[name]
        method = build_method(name, student, teacher if cls.needs_teacher else None, N_CLASSES, **opts, **extra).to(device)
        step(method)  # warm-up (allocations, lazy optimiser)
        t_base, t_method = [], []
        for _ in range(reps):  # interleaved pairs: drift of a shared machine hits both steps of a pair alike
            t_base.append(timed(step, device, 1, warmup=0))
            t_method.append(timed(lambda: step(method), device, 1, warmup=0))
        ratio = statistics.median(m / b for m, b in zip(t_method, t_base))
        bases.append(min(t_base))
        results.append((name + ("+adv" if extra else ""), statistics.median(t_method), ratio))
    base = min(bases)
    print(f"student fwd+CE+bwd {base * 1e3:.1f} ms (ERFNet w={width}, {batch}x3x{shape[0]}x{shape[1]}, n={N_CLASSES}, "
          f"{device.type}, {torch.get_num_threads()} thread(s), {classes} classes an image); teacher forward {t_teacher * 1e3:.1f} ms "
          f"({t_teacher / base:.2f}x, excluded below)")
    print(f"{'method':<10} {'step ms':>9} {'extra':>8}   (extra: median over the {reps} interleaved pairs of "
          f"method step / plain step, minus 1)")
    for name, t, ratio in results:
        print(f"{name:<10} {t * 1e3:9.1f} {100 * (ratio - 1):7.1f}%")
    return base


def loop_moments(feat: np.ndarray, aoi: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """The official example's form: plain loops over positions, classes and channels (mass normaliser)."""
    c, h, w = feat.shape
    n = aoi.shape[0]
    mom = np.zeros((3, n, c))
    mass = np.zeros(n)
    for i in range(h):
        for j in range(w):
            for k in range(n):
                mass[k] += aoi[k, i, j]
    for i in range(h):
        for j in range(w):
            for k in range(n):
                for ch in range(c):
                    mom[0, k, ch] += aoi[k, i, j] * feat[ch, i, j]
    for k in range(n):
        for ch in range(c):
            mom[0, k, ch] = mom[0, k, ch] / mass[k] if mass[k] > 0 else 0.0
    for i in range(h):
        for j in range(w):
            for k in range(n):
                for ch in range(c):
                    d = feat[ch, i, j] - mom[0, k, ch]
                    mom[1, k, ch] += aoi[k, i, j] * d * d
                    mom[2, k, ch] += aoi[k, i, j] * d * d * d
    for k in range(n):
        for ch in range(c):
            if mass[k] > 0:
                var = mom[1, k, ch] / mass[k]
                mom[1, k, ch] = var
                mom[2, k, ch] = mom[2, k, ch] / mass[k] / (max(var, 0.0) + eps) ** 1.5
            else:
                mom[1, k, ch] = mom[2, k, ch] = 0.0
    return mom


def bench_moments(device, quick):
    c, h, w = (16, 16, 48) if quick else (32, 31, 93)  # the full crop's 1/8 map is 62 x 186 with c = 128
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(1, c, h, w, generator=g).relu()
    label = torch.randint(0, N_CLASSES, (1, h * 8, w * 8), generator=g)
    aoi = aoi_maps(label, N_CLASSES, (h, w), kernel=5)
    f_np, a_np = feat[0].double().numpy().tolist(), aoi[0].double().numpy().tolist()
    t0 = time.perf_counter()
    ref = loop_moments(np.array(f_np, dtype=object), np.array(a_np, dtype=object))
    t_loop = time.perf_counter() - t0
    feat_d, aoi_d = feat.to(device), aoi.to(device)
    vec = moment_pool(feat_d, aoi_d)[0][0].cpu().double().numpy()
    err = np.abs(vec - ref.astype(np.float64)).max()
    t_vec = timed(lambda: moment_pool(feat_d, aoi_d), device, reps=50)
    print(f"moment pooling n={N_CLASSES} c={c} {h}x{w}: loop {t_loop * 1e3:.0f} ms, vectorised {t_vec * 1e6:.0f} us "
          f"({device.type}) -> {t_loop / t_vec:.0f}x faster (goal >= 1000x); max |diff| {err:.1e}")


def table4_counts():
    student = build_model("erfnet", N_CLASSES, width=1.0)
    teacher = build_model("pspnet_r101", N_CLASSES, width=1.0)
    h, w = FULL_CROP

    def fake(model):
        feats = {t.name: torch.empty(1, t.channels, h // t.stride, w // t.stride, device="meta") for t in model.feature_info}
        return {"logits": torch.empty(1, N_CLASSES, h, w, device="meta"), "feats": feats}

    so, to = fake(student), fake(teacher)
    hf, wf, c = h // 8, w // 8, teacher.tap("high").channels  # mimicking matches the teacher's features
    formula = {"probability map": ("h w n", h * w * N_CLASSES), "feature map": ("h_f w_f c", hf * wf * c),
               "pairwise similarity map": ("(h_f w_f)^2", (hf * wf) ** 2), "attention map": ("h_f w_f", hf * wf),
               "inter-region affinity graph": ("n^2", N_CLASSES**2)}
    print(f"Table 4 complexity as counts (entries matched per image, crop {h}x{w}, n={N_CLASSES}; "
          f"formula at the 1/8 tap h_f x w_f = {hf}x{wf}, c = {c} teacher channels):")
    print(f"  {'knowledge form':<28} {'method':<9} {'as matched':>14}   {'formula':<12} {'value':>14}")
    for form, name in TABLE4_FORMS.items():
        size = build_method(name, student, teacher, N_CLASSES).matched_size(so, to)
        expr, value = formula[form]
        print(f"  {form:<28} {name:<9} {size:>14,d}   {expr:<12} {value:>14,d}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="CPU-sized run: 248 x 744 crop, batch 1, 1 thread")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--width", type=float, default=1.0, help="model width multiplier (default 1 = published nets)")
    ap.add_argument("--shape", type=int, nargs=2, default=None, help="crop H W (default 496 1488, quick 248 744)")
    ap.add_argument("--skip-loop", action="store_true", help="skip the moment-pooling loop comparison")
    ap.add_argument("--methods", nargs="+", default=None, help="only these methods (e.g. intra intrakd skd+adv)")
    ap.add_argument("--classes", type=int, default=N_CLASSES, choices=range(1, N_CLASSES + 1), metavar="K",
                    help="classes in each image's label, void included (default 37: every class in every image; "
                         "a genuine ApolloScape label holds 10-12 train IDs)")
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu" or args.quick:
        torch.set_num_threads(1)  # the CPU is shared
    shape = tuple(args.shape) if args.shape else ((248, 744) if args.quick else FULL_CROP)
    if any(s % 8 for s in shape):
        raise ValueError(f"--shape must be divisible by 8, got {shape}")
    batch = args.batch or (1 if args.quick or device.type == "cpu" else 8)
    reps = args.reps or (12 if args.quick else 10)
    if not args.skip_loop:
        bench_moments(device, args.quick)
    table4_counts()
    bench_methods(device, args.width, shape, batch, reps, args.methods, args.classes)


if __name__ == "__main__":
    main()
