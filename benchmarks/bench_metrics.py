"""Speed of the evaluators against peers run in the same process, identical results required first.

CULane: ``culane.evaluate`` (cropped masks, threads) vs the official algorithm's form (full 1640x590 canvas per
lane, one cv2.line per sample pair, IoU per pair on full canvases, one thread).  mIoU: ``evaluate_pairs`` vs
cityscapesscripts ``evaluateImgLists`` on the same PNGs.  LLAMAS: ``image_ap`` (one histogram) vs the
per-threshold loop.  Reference figures (2-core machine): official C++ CULane ~30 images/s; evaluateImgLists
~49 ms per 2048x1024 image; official LLAMAS script ~0.6 s per image and class.

    python benchmarks/bench_metrics.py [--quick] [--only culane|miou|llamas]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.optimize import linear_sum_assignment

from intrakd.labels import CITYSCAPES_LABELS
from intrakd.metrics import culane as C
from intrakd.metrics import llamas as L
from intrakd.metrics import segmentation as seg


def _synthetic_culane(root: Path, n: int, rng) -> Path:
    names = []
    ys = np.arange(590, 240, -10, dtype=np.float32)
    for i in range(n):
        name = f"driver_x/{i // 100:03d}.MP4/{i % 100:05d}"
        base = rng.uniform(150, 1500, 4)
        slope = rng.uniform(-1.5, 1.5, 4)
        curve = rng.uniform(-1e-3, 1e-3, 4)
        gt = [np.stack([b + s * (590 - ys) + c * (590 - ys) ** 2, ys], 1) for b, s, c in zip(base, slope, curve)]
        pred = [g + np.float32([rng.normal(0, 12), 0]) for g in gt if rng.random() < 0.9]
        if rng.random() < 0.5:
            pred.append(np.stack([rng.uniform(0, 1640) + 0 * ys, ys], 1))
        C.write_lines(root / "gt" / f"{name}.lines.txt", gt)
        C.write_lines(root / "pred" / f"{name}.lines.txt", pred)
        names.append(f"/{name}.jpg")
    (root / "list.txt").write_text("\n".join(names) + "\n")
    return root / "list.txt"


def _official_form(root: Path, list_file: Path) -> tuple[int, int, int]:
    tp = fp = fn = 0
    for name in C.read_list(list_file):
        stem = name[:-4]
        gt = C.read_lines(root / "gt" / f"{stem}.lines.txt")
        pred = C.read_lines(root / "pred" / f"{stem}.lines.txt")
        gm = [C.full_mask(g) for g in gt]
        pm = [C.full_mask(p) for p in pred]
        iou = np.zeros((len(gm), len(pm)))
        for i, a in enumerate(gm):
            for j, b in enumerate(pm):
                union = np.count_nonzero(a | b)
                iou[i, j] = np.count_nonzero(a & b) / union if union else 0.0
        r, c = linear_sum_assignment(-iou)
        t = int(np.count_nonzero(iou[r, c] > 0.5))
        tp, fp, fn = tp + t, fp + len(pm) - t, fn + len(gm) - t
    return tp, fp, fn


def bench_culane(n: int, tmp: Path) -> None:
    rng = np.random.default_rng(0)
    lst = _synthetic_culane(tmp / "culane", n, rng)
    n_peer = min(n, 100)
    peer_list = tmp / "culane/peer.txt"
    peer_list.write_text("\n".join(C.read_list(lst)[:n_peer]) + "\n")
    t0 = time.perf_counter()
    peer = _official_form(tmp / "culane", peer_list)
    t_peer = (time.perf_counter() - t0) / n_peer
    ours_sub = C.evaluate(tmp / "culane/gt", tmp / "culane/pred", peer_list)
    assert (ours_sub["tp"], ours_sub["fp"], ours_sub["fn"]) == peer, (ours_sub, peer)
    t0 = time.perf_counter()
    ours = C.evaluate(tmp / "culane/gt", tmp / "culane/pred", lst)
    t_ours = (time.perf_counter() - t0) / n
    print(f"culane: {n} images, tp {ours['tp']} fp {ours['fp']} fn {ours['fn']} f1 {ours['f1']:.4f} "
          f"(identical to the official form on {n_peer} images)")
    print(f"  ours {1 / t_ours:.1f} img/s, official form in Python {1 / t_peer:.1f} img/s: ratio "
          f"{t_peer / t_ours:.1f}x; vs the C++ tool's ~30 img/s reference: {1 / t_ours / 30:.1f}x")


def bench_miou(n: int, tmp: Path) -> None:
    import cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling as ev

    rng = np.random.default_rng(1)
    ids = np.array([lab.id for lab in CITYSCAPES_LABELS if lab.id >= 0], np.uint8)
    pairs = []
    for i in range(n):
        # blocky maps (realistic PNG sizes) from a coarse random grid
        g = np.kron(rng.choice(ids, size=(64, 128)), np.ones((16, 16), np.uint8)).astype(np.uint8)
        p = g.copy()
        p[rng.random(g.shape) < 0.02] = rng.choice(ids)
        gp, pp = tmp / f"g{i}_gtFine_labelIds.png", tmp / f"p{i}.png"
        Image.fromarray(g).save(gp)
        Image.fromarray(p).save(pp)
        pairs.append((pp, gp))
    ev.args.evalInstLevelScore, ev.args.quiet, ev.args.JSONOutput = False, True, False
    t0 = time.perf_counter()
    ref = ev.evaluateImgLists([str(p) for p, _ in pairs], [str(g) for _, g in pairs], ev.args)
    t_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = seg.evaluate_pairs(pairs, "cityscapes")
    t_ours = time.perf_counter() - t0
    assert abs(ours["miou"] - ref["averageScoreClasses"]) < 1e-12
    print(f"miou: {n} images 2048x1024, miou {ours['miou']:.6f} (identical to evaluateImgLists; "
          f"CSUPPORT={ev.CSUPPORT})")
    print(f"  ours {1000 * t_ours / n:.1f} ms/img, evaluateImgLists {1000 * t_ref / n:.1f} ms/img: "
          f"ratio {t_ref / t_ours:.1f}x")


def bench_llamas(n: int) -> None:
    rng = np.random.default_rng(2)
    t_ours = t_ref = 0.0
    for _ in range(n):
        gt = np.zeros((717, 1276), bool)
        gt[300:, 600:615] = True
        pred = np.clip(rng.normal(40, 40, gt.shape) + gt * 150, 0, 255).astype(np.uint8)
        t0 = time.perf_counter()
        a = L.image_ap(pred, gt)
        t_ours += time.perf_counter() - t0
        t0 = time.perf_counter()
        b = L.image_ap_reference(pred, gt)
        t_ref += time.perf_counter() - t0
        assert a == b
    print(f"llamas: {n} image-classes 1276x717 (identical AP to the per-threshold loop)")
    print(f"  ours {1000 * t_ours / n:.2f} ms, per-threshold loop {1000 * t_ref / n:.1f} ms: ratio "
          f"{t_ref / t_ours:.0f}x; vs the script's ~0.6 s reference: {0.6 / (t_ours / n):.0f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (about half a minute)")
    ap.add_argument("--only", choices=["culane", "miou", "llamas"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if args.only in (None, "culane"):
            bench_culane(200 if args.quick else 2000, tmp)
        if args.only in (None, "miou"):
            bench_miou(6 if args.quick else 40, tmp)
        if args.only in (None, "llamas"):
            bench_llamas(5 if args.quick else 40)


if __name__ == "__main__":
    main()
