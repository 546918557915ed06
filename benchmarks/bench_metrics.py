"""Speed of the evaluators against the official tools (or faithful ports of them), measured in the same run.

Every peer is timed in this run, on the same files, interleaved with ours (each round runs ours, then the peer);
nothing is compared with remembered figures. The machine is shared, so each section prints the load averages and
the median of the per-round ratios. Results must be identical first (each section prints its identity check). "End to end" is a fresh
``python -m intrakd.cli evaluate ...`` process (interpreter start and imports included) against the peer: for
mIoU a fresh process as well; the LLAMAS and CULane ports run from this process (their worker pools started
there), which spares them an interpreter start. "In-process" times the library call alone.

- mIoU: cityscapesscripts ``evaluateImgLists`` (the PyPI wheel; its optional Cython helper is not in the wheel,
  so the numpy path, printed as CSUPPORT) on Cityscapes-sized label PNGs. Identity: every per-class IoU.
- LLAMAS: the official ``evaluate_segmentation.py`` is not on PyPI, so the peer is a port of its per-image work
  written here from datasets_metrics.md §2.3-2.4: draw the 5-channel label from the JSON, then for each class
  decode the PNG, divide by 255 and run the 101-threshold loop (threshold to int, three logical-and sums), in a
  2-process pool as the script's ProcessPoolExecutor. It reads and draws markers with
  ``intrakd.data.llamas.read_label_json`` / ``draw_lanes`` (the official drawing steps). Identity: every
  per-image, per-class AP (bit-identical) and the means.
- CULane: the SCNN C++ evaluator is not on PyPI either; the peer is a port of its per-image work: every lane on
  its own zeroed 1640x590 canvas with one ``cv2.line`` per pair of spline samples, pairwise IoU on full canvases,
  Kuhn-Munkres matching, over a 2-process pool (the tool's OpenMP threads). It shares with ours only the file
  reader and the spline sampler (``lane_pixels``, checked against the tool's outputs by the tests). A Python port
  is slower than the compiled tool, so the CULane ratio overstates the speed-up against the C++ binary.

    python benchmarks/bench_metrics.py [--quick] [--only culane|miou|llamas] [--repeat R] [--miou-pairs N]
                                       [--llamas-images N] [--culane-images N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from scipy.optimize import linear_sum_assignment

from intrakd.labels import CITYSCAPES_LABELS
from intrakd.metrics import culane as C
from intrakd.metrics import llamas as L
from intrakd.metrics import segmentation as seg

PEER_WORKERS = 2  # the official tools as measured in issue 14: OpenMP 2 threads, a 2-process pool


def loadavg() -> str:
    """The load averages (1, 5, 15 min) as ``uptime`` prints them."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def run_process(argv: list[str]) -> tuple[float, str]:
    """Wall seconds and stdout of a fresh process (fails loudly)."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    t0 = time.perf_counter()
    res = subprocess.run(argv, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t0
    if res.returncode:
        raise RuntimeError(f"{' '.join(argv[:6])} ... failed:\n{res.stderr}")
    return dt, res.stdout


def ours_cli(*args) -> list[str]:
    return [sys.executable, "-m", "intrakd.cli", "evaluate", *map(str, args), "--json"]


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def ratio_line(what: str, peer: list[float], ours: list[float]) -> str:
    """Median times and the median of the per-round ratios peer/ours (rounds interleaved, so each ratio compares
    runs made under the same load)."""
    ratios = [a / b for a, b in zip(peer, ours)]
    return (f"  {what}: peer {statistics.median(peer):.3f} s, ours {statistics.median(ours):.3f} s (medians of "
            f"{len(ratios)} interleaved rounds); ratio median {statistics.median(ratios):.1f}x "
            f"(rounds {', '.join(f'{r:.1f}' for r in ratios)})")


def report(name: str, n: int, unit: str, peer: list[float], ours: list[float], peer_in=None, ours_in=None) -> None:
    print(f"  {n} {unit}")
    print(ratio_line("end to end", peer, ours))
    if peer_in is not None:
        print(ratio_line("in-process", peer_in, ours_in))
    print(f"  {name} load after: {loadavg()}")


# ------------------------------------------------------------------------------------------ mIoU
PEER_MIOU = """
import json, sys
import cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling as ev
preds, gts = json.load(open(sys.argv[1]))
ev.args.evalInstLevelScore, ev.args.quiet, ev.args.JSONOutput = False, True, False
res = ev.evaluateImgLists(preds, gts, ev.args)
print(json.dumps({"miou": res["averageScoreClasses"], "classes": res["classScores"], "csupport": ev.CSUPPORT}))
"""


def _miou_files(tmp: Path, n: int) -> tuple[list[Path], list[Path]]:
    rng = np.random.default_rng(1)
    ids = np.array([lab.id for lab in CITYSCAPES_LABELS if lab.id >= 0], np.uint8)
    preds, gts = [], []
    (tmp / "gt").mkdir()
    (tmp / "pred").mkdir()
    for i in range(n):
        # regions from a coarse random grid, the prediction with whole regions wrong and shifted borders:
        # PNGs of tens of kB, as real label and prediction files
        g = cv2.resize(rng.choice(ids, size=(32, 64)), (2048, 1024), interpolation=cv2.INTER_NEAREST)
        blocks = rng.choice(ids, size=(32, 64))
        wrong = cv2.resize((rng.random((32, 64)) < 0.1).astype(np.uint8), (2048, 1024),
                           interpolation=cv2.INTER_NEAREST).astype(bool)
        p = np.roll(np.where(wrong, cv2.resize(blocks, (2048, 1024), interpolation=cv2.INTER_NEAREST), g), 5, axis=1)
        name = f"city_{i // 100:06d}_{i % 100:06d}"
        gts.append(tmp / "gt" / f"{name}_gtFine_labelIds.png")
        preds.append(tmp / "pred" / f"{name}_leftImg8bit.png")
        Image.fromarray(g).save(gts[-1])  # PIL's default compression, as the dataset's and our writers' files
        Image.fromarray(p).save(preds[-1])
    return preds, gts


def bench_miou(n: int, tmp: Path, repeat: int) -> None:
    import cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling as ev

    preds, gts = _miou_files(tmp, n)
    lists = tmp / "lists.json"
    lists.write_text(json.dumps([[str(p) for p in preds], [str(g) for g in gts]]))
    peer_cmd = [sys.executable, "-c", PEER_MIOU, str(lists)]
    ours_cmd = ours_cli("cityscapes", "--gt-root", tmp / "gt", "--pred-root", tmp / "pred")
    print(f"miou: {n} pairs 2048x1024, cityscapesscripts evaluateImgLists (CSUPPORT={ev.CSUPPORT}) vs "
          f"`intrakd evaluate cityscapes`; load before: {loadavg()}")
    peer_t, ours_t, peer_in, ours_in = [], [], [], []
    for _ in range(repeat):
        t, out = run_process(peer_cmd)
        peer_t.append(t)
        ref = json.loads(out)
        t, out = run_process(ours_cmd)
        ours_t.append(t)
        mine = json.loads(out)
        ev.args.evalInstLevelScore, ev.args.quiet, ev.args.JSONOutput = False, True, False
        t, _ = timed(lambda: ev.evaluateImgLists([str(p) for p in preds], [str(g) for g in gts], ev.args))
        peer_in.append(t)
        t, _ = timed(lambda: seg.evaluate_pairs(list(zip(preds, gts)), "cityscapes"))
        ours_in.append(t)
    same = all((v is None and np.isnan(ref["classes"][k])) or v == ref["classes"][k]
               for k, v in mine["per_class"].items()) and mine["miou"] == ref["miou"]
    print(f"  identity: {len(mine['per_class'])} per-class IoUs and mIoU {mine['miou']:.6f} "
          f"{'bit-identical' if same else 'DIFFER'} to evaluateImgLists")
    assert same, (mine, ref)
    report("miou", n, "pairs", peer_t, ours_t, peer_in, ours_in)
    # where the time goes: counting one pair, ours (joint calcHist) vs a uint16 pair code + np.bincount
    g, p = seg.read_ids(gts[0]), seg.read_ids(preds[0])
    e = seg.SegEvaluator("cityscapes")
    t_new, counts = timed(lambda: [e.pair_counts(p, g) for _ in range(20)])
    t_old, flat = timed(lambda: [np.bincount(((g.astype(np.uint16) << 8) | p).ravel(), minlength=65536)
                                 for _ in range(20)])
    same = np.array_equal(counts[0], flat[0])
    print(f"  counting one 2048x1024 pair: ours {1000 * t_new / 20:.2f} ms, uint16 pair code + np.bincount "
          f"{1000 * t_old / 20:.2f} ms (counts {'identical' if same else 'DIFFER'}); decoding it "
          f"{1000 * timed(lambda: (seg.read_ids(gts[0]), seg.read_ids(preds[0])))[0]:.2f} ms "
          f"({(gts[0].stat().st_size + preds[0].stat().st_size) // 2048} kB per PNG)")
    assert same


# ------------------------------------------------------------------------------------------ LLAMAS
def _port_label(json_path: Path) -> np.ndarray:
    """Official create_multi_class_segmentation_label: the BGR drawing, then 5 channels by exact colour."""
    from intrakd.data.llamas import LANE_COLOURS, SIZE, draw_lanes, read_label_json

    drawing = draw_lanes(read_label_json(json_path), SIZE, json_path)
    lanes = [(drawing == LANE_COLOURS[k]).all(axis=2).astype(np.uint8) for k in ("l1", "l0", "r0", "r1")]
    no_marker = (lanes[0] + lanes[1] + lanes[2] + lanes[3]) == 0
    return np.stack([no_marker, *lanes], axis=2)


def _port_auc(prediction: np.ndarray, label: np.ndarray) -> float:
    """The script's binary_approx_auc: 101 thresholds, each a thresholded int map and three logical-and sums."""
    auc, precisions, recalls = 0.0, [1], [0]
    for i in range(101):
        threshold = (100 - i) / 100
        binary = (prediction >= threshold).astype(int)
        tp = np.sum(np.logical_and(label != 0, binary == label))
        fn = np.sum(np.logical_and(label != 0, binary == 0))
        fp = np.sum(np.logical_and(label == 0, binary != 0))
        precisions.append(0 if tp + fp == 0 else tp / (tp + fp))
        recalls.append(0 if tp + fn == 0 else tp / (tp + fn))
        auc += (recalls[-1] - recalls[-2]) * precisions[-2]
    return auc


def _port_llamas_image(job) -> list[float]:
    json_path, pred_root, key = job
    target = _port_label(Path(json_path))
    out = []
    for c in range(5):
        png = cv2.imread(f"{pred_root}/{key}_{c}.png", cv2.IMREAD_GRAYSCALE).astype(float) / 255
        out.append(float(_port_auc(png, target[:, :, c])))
    return out


def _port_llamas(jobs) -> tuple[list, list]:
    with ProcessPoolExecutor(PEER_WORKERS) as pool:
        per_image = list(pool.map(_port_llamas_image, jobs))
    means = []
    for c in range(5):  # the script's reduce step: running sum in list order, then divided
        m = 0
        for aps in per_image:
            m += aps[c]
        means.append(m / len(per_image))
    return per_image, means


def bench_llamas(n: int, tmp: Path, repeat: int) -> None:
    from intrakd.data.llamas import SIZE, multiclass_label
    from intrakd.data.synth import generate

    root = generate("llamas", tmp / "llamas", num=n, seed=3, size=SIZE)
    label_root = root / "labels"
    jsons = sorted(label_root.rglob("*.json"))
    rng = np.random.default_rng(2)
    jobs = []
    for j in jsons:
        key = "/".join(j.relative_to(label_root).parts[-2:])
        lab = multiclass_label(j)
        for c in range(5):  # smooth soft maps as a network's upsampled probabilities: blurred class mask, scaled
            # (some never reach 255), over a low-frequency background of false positives
            soft = cv2.GaussianBlur((lab == c).astype(np.float32), (0, 0), 3) * rng.uniform(0.8, 1.2)
            soft += cv2.resize(rng.random((9, 16), np.float32) * 0.3, lab.shape[::-1], interpolation=cv2.INTER_CUBIC)
            png = np.clip(255 * soft, 0, 255).astype(np.uint8)
            p = tmp / "pred" / f"{key}_{c}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(p), png)
        jobs.append((str(j), str(tmp / "pred"), key))
    n = len(jobs)
    print(f"llamas: {n} images x 5 classes {SIZE[0]}x{SIZE[1]}, port of evaluate_segmentation.py "
          f"({PEER_WORKERS} processes) vs `intrakd evaluate llamas`; load before: {loadavg()}")
    ours_cmd = ours_cli("llamas", "--label-root", label_root, "--pred-root", tmp / "pred")
    peer_t, ours_t = [], []
    for _ in range(repeat):  # interleaved rounds: ours, then the peer
        t, out = run_process(ours_cmd)
        ours_t.append(t)
        mine = json.loads(out)
        t, (per_image, means) = timed(lambda: _port_llamas(jobs))
        peer_t.append(t)
    mine_per_image = L._score_chunk(str(tmp / "pred"), [(key, Path(j)) for j, _, key in jobs])
    same_images = all(list(a) == b for a, b in zip(mine_per_image, per_image))
    same_means = (mine["ap_background"] == means[0]
                  and [mine["ap"][k] for k in L.LANE_CLASSES] == means[1:])
    print(f"  identity: {5 * n} per-image APs {'bit-identical' if same_images else 'DIFFER'}, class means "
          f"{'bit-identical' if same_means else 'DIFFER'} (mAP {mine['map']:.6f})")
    assert same_images and same_means
    report("llamas", n, "images", peer_t, ours_t)
    print(f"  peer CPU per image-class ~{PEER_WORKERS * statistics.median(peer_t) / (5 * n):.2f} s")


# ------------------------------------------------------------------------------------------ CULane
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


def _port_canvas(points: np.ndarray) -> np.ndarray:
    canvas = np.zeros((590, 1640), np.uint8)
    ipts = C.lane_pixels(points)
    if ipts is not None:
        for p, q in zip(ipts[:-1], ipts[1:]):  # one cv2.line per consecutive pair of samples, as the tool
            cv2.line(canvas, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), 1, thickness=30)
    return canvas


def _port_culane_image(job) -> tuple[int, int, int]:
    gt_path, pred_path = job
    gt = C.read_lines(gt_path)
    pred = C.read_lines(pred_path) if os.path.isfile(pred_path) else []
    if not gt:
        return 0, len(pred), 0
    if not pred:
        return 0, 0, len(gt)
    gm = [_port_canvas(g) for g in gt]
    pm = [_port_canvas(p) for p in pred]
    iou = np.zeros((len(gm), len(pm)))
    for i, a in enumerate(gm):
        for j, b in enumerate(pm):
            inter = cv2.countNonZero(cv2.bitwise_and(a, b))
            union = cv2.countNonZero(cv2.bitwise_or(a, b))
            iou[i, j] = inter / union if union else 0.0
    r, c = linear_sum_assignment(-iou)
    t = int(np.count_nonzero(iou[r, c] > 0.5))
    return t, len(pm) - t, len(gm) - t


def _port_culane(root: Path, names: list[str]) -> tuple[int, int, int]:
    jobs = [(str(root / "gt" / f"{s[:-4]}.lines.txt"), str(root / "pred" / f"{s[:-4]}.lines.txt")) for s in names]
    with ProcessPoolExecutor(PEER_WORKERS) as pool:
        counts = list(pool.map(_port_culane_image, jobs, chunksize=16))
    return tuple(int(v) for v in np.sum(counts, axis=0))


def bench_culane(n: int, tmp: Path, repeat: int) -> None:
    lst = _synthetic_culane(tmp / "culane", n, np.random.default_rng(0))
    names = C.read_list(lst)
    print(f"culane: {n} images 1640x590, port of the SCNN evaluator ({PEER_WORKERS} processes) vs "
          f"`intrakd evaluate culane`; load before: {loadavg()}")
    ours_cmd = ours_cli("culane", "--gt-root", tmp / "culane/gt", "--pred-root", tmp / "culane/pred", "--list", lst)
    peer_t, ours_t, ours_in = [], [], []
    for _ in range(repeat):  # interleaved rounds: ours (fresh process), the port, ours in-process
        t, out = run_process(ours_cmd)
        ours_t.append(t)
        mine = json.loads(out)
        t, peer = timed(lambda: _port_culane(tmp / "culane", names))
        peer_t.append(t)
        t, _ = timed(lambda: C.evaluate(tmp / "culane/gt", tmp / "culane/pred", lst))
        ours_in.append(t)
    same = (mine["tp"], mine["fp"], mine["fn"]) == peer
    print(f"  identity: tp {mine['tp']} fp {mine['fp']} fn {mine['fn']} (f1 {mine['f1']:.4f}) "
          f"{'identical' if same else 'DIFFER: ' + str(peer)} to the port")
    assert same
    report("culane", n, "images", peer_t, ours_t, peer_t, ours_in)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a minute or two)")
    ap.add_argument("--only", choices=["culane", "miou", "llamas"])
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds (ours, then the peer) per section")
    ap.add_argument("--miou-pairs", type=int, default=None, help="mIoU pairs (default 100, quick 20; the "
                    "Cityscapes val split has 500)")
    ap.add_argument("--llamas-images", type=int, default=None, help="LLAMAS images (default 30, quick 8)")
    ap.add_argument("--culane-images", type=int, default=None, help="CULane images (default 2000, quick 200)")
    args = ap.parse_args()
    print(f"bench_metrics: {os.cpu_count()} CPUs, load {loadavg()}, python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if args.only in (None, "miou"):
            (tmp / "miou").mkdir()
            bench_miou(args.miou_pairs or (20 if args.quick else 100), tmp / "miou", args.repeat)
        if args.only in (None, "llamas"):
            bench_llamas(args.llamas_images or (8 if args.quick else 30), tmp, args.repeat)
        if args.only in (None, "culane"):
            bench_culane(args.culane_images or (200 if args.quick else 2000), tmp, args.repeat)


if __name__ == "__main__":
    main()
