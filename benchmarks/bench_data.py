"""Loader throughput (items/s) vs a plain cv2 read + crop + resize + normalise peer, and dataset generation speed vs
rendering the same number of scenes alone (the peer: the gap is the JPEG/PNG writes and the list files).

The peer does only the minimum an evaluation loader must do (cv2.imread of the JPEG, PIL read of the label
PNG, row crop, resize, mean subtraction); the gap to ``ApolloScape.__getitem__`` is the cost of the checks
(trailer check, label-table validation, ID -> train-id lookup) and of the tensor conversion.

    python benchmarks/bench_data.py [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from intrakd.data import DATASETS, build_dataset
from intrakd.data.synth import generate, scene_rng
from intrakd.data.synth.apolloscape import HORIZON
from intrakd.data.synth.world import render_scene


def _rate(fn, n: int) -> float:
    fn(0)  # warm-up
    t = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    num = 6 if args.quick else 24
    size = (846, 678)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        root = generate("apolloscape", Path(tmp) / "apollo", num=num, seed=0, size=size)
        gen_s = time.perf_counter() - t
        print(f"generate: {num + max(1, num // 8)} scenes at {size[0]}x{size[1]} in {gen_s:.2f} s "
              f"({gen_s / (num + max(1, num // 8)):.3f} s/scene incl. JPEG+PNG writes)")
        t = time.perf_counter()
        for k in range(3 if args.quick else 10):
            render_scene(scene_rng(1, k), size, horizon=HORIZON)
        render_s = (time.perf_counter() - t) / (3 if args.quick else 10)
        per_scene = gen_s / (num + max(1, num // 8))
        print(f"render_scene only: {render_s:.3f} s/scene   generate / render ratio {per_scene / render_s:.2f}   "
              f"(the default preset's 480 scenes: ~{480 * per_scene:.0f} s)")

        ds = build_dataset("apolloscape", root, "train", input_size=(416, 128))
        n = len(ds)
        mean = np.float32(DATASETS["apolloscape"].mean)

        def peer(i):
            rec = ds.records[i % n]
            img = cv2.imread(str(rec.image))[ds.crop_top :]
            lab = np.asarray(Image.open(rec.label))[ds.crop_top :]
            img = cv2.resize(img, ds.input_size, interpolation=cv2.INTER_LINEAR).astype(np.float32) - mean
            lab = cv2.resize(lab, ds.input_size, interpolation=cv2.INTER_NEAREST)
            return torch.from_numpy(img.transpose(2, 0, 1).copy()), torch.from_numpy(lab.astype(np.int64))

        reps = 2 * n if args.quick else 5 * n
        ours = _rate(lambda i: ds[i % n], reps)
        base = _rate(peer, reps)
        print(f"eval items   : intrakd {ours:7.1f} items/s   plain cv2 peer {base:7.1f} items/s   "
              f"ratio {ours / base:.2f}")
        tr = build_dataset("apolloscape", root, "train", train=True, input_size=(416, 128))
        print(f"train items  : intrakd {_rate(lambda i: tr[i % n], reps):7.1f} items/s (crop {tr.crop}, rotation)")


if __name__ == "__main__":
    main()
