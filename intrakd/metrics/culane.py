"""CULane lane F1, equivalent to the SCNN C++ evaluator (``tools/lane_evaluation``), plus prob2lines.

Rasterisation as the official code: float32 points; 2 points -> one segment; >=3 points -> natural cubic
spline parameterised by chord length, 50 samples per segment plus the last point; samples rounded half-to-even
(OpenCV ``cvRound``); consecutive samples joined with 30-pixel ``cv2.line`` (8-connected, round caps) on a
1640x590 canvas.  Each lane is drawn once into its cropped bounding box (``cv2.polylines`` on the rounded
samples draws the same pixels as the official per-segment ``cv2.line`` loop) and pairwise IoUs are taken
from the overlapping crops.  Matching: maximum-IoU-sum assignment; a GT lane is TP iff IoU > threshold.
TP/FP/FN are summed over images.

Documented differences from the C++ tool: consecutive duplicate points (which make its spline divide by zero
and draw NaN garbage) are removed first; a missing ground-truth file raises instead of meaning "no lanes";
F1 is 0 (not -1/NaN) when TP = 0.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from intrakd.metrics._pool import map_chunks

SIZE = (1640, 590)  # (width, height) of the official canvas
SAMPLES_PER_SEGMENT = 50
_COORD_LIMIT = float(1 << 20)  # keeps absurd coordinates inside OpenCV's fixed-point range


# ------------------------------------------------------------------------------------------ files
def parse_lines(text: str) -> list[np.ndarray]:
    """Parse ``.lines.txt`` text: every text line is a lane (even an empty one), ``x y`` pairs as float32."""
    rows = text.split("\n")
    if rows and rows[-1] == "":
        rows.pop()  # a final newline does not start another line (as std::getline)
    lanes = []
    for row in rows:
        vals = []
        for tok in row.split():
            try:
                v = float(tok)
            except ValueError:
                break  # ``>>`` stops at the first token that is not a number
            if not math.isfinite(v):
                break
            vals.append(v)
        n = len(vals) // 2  # a dangling x is dropped
        lanes.append(np.asarray(vals[: 2 * n], dtype=np.float32).reshape(n, 2))
    return lanes


def read_lines(path: str | os.PathLike) -> list[np.ndarray]:
    """Read a CULane ``.lines.txt`` file into a list of (n, 2) float32 arrays (x, y)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return parse_lines(f.read())


def _fmt(v: float) -> str:
    v = float(np.float32(v))
    return str(int(v)) if v.is_integer() else format(v, ".9g")  # 9 digits round-trip float32


def write_lines(path: str | os.PathLike, lanes: Sequence[np.ndarray]) -> None:
    """Write lanes in the CULane format: one lane per line, ``x y x y ... `` with a trailing space."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for lane in lanes:
        pts = np.asarray(lane, dtype=np.float64).reshape(-1, 2)
        out.append("".join(f"{_fmt(x)} {_fmt(y)} " for x, y in pts) + "\n")
    path.write_text("".join(out))


# ------------------------------------------------------------------------------------------ geometry
def spline_samples(points: np.ndarray, times: int = SAMPLES_PER_SEGMENT) -> np.ndarray:
    """Natural chord-length cubic spline through >= 3 points: ``times`` samples per segment + the last point."""
    p = np.asarray(points, dtype=np.float32).astype(np.float64)
    n = len(p)
    d = np.diff(p, axis=0)
    h = np.hypot(d[:, 0], d[:, 1])
    slope = d / h[:, None]
    # Tridiagonal system for the interior second derivatives (M_0 = M_{n-1} = 0).
    a = np.zeros((n - 2, n - 2))
    idx = np.arange(n - 2)
    a[idx, idx] = 2.0 * (h[:-1] + h[1:])
    a[idx[1:], idx[:-1]] = h[1:-1]
    a[idx[:-1], idx[1:]] = h[1:-1]
    m = np.zeros((n, 2))
    m[1:-1] = np.linalg.solve(a, 6.0 * (slope[1:] - slope[:-1]))
    b = slope - h[:, None] * (2.0 * m[:-1] + m[1:]) / 6.0
    c = m[:-1] / 2.0
    dd = (m[1:] - m[:-1]) / (6.0 * h[:, None])
    t = (h[:, None] / times) * np.arange(times)[None, :]  # (n-1, times)
    t = t[..., None]
    s = p[:-1, None] + b[:, None] * t + c[:, None] * t**2 + dd[:, None] * t**3
    return np.concatenate([s.reshape(-1, 2), p[-1:]]).astype(np.float32)


def lane_pixels(points: np.ndarray) -> np.ndarray | None:
    """Integer vertices the official evaluator draws for one lane (None if it has < 2 points)."""
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    if len(pts) >= 3:
        keep = np.ones(len(pts), dtype=bool)
        keep[1:] = np.any(pts[1:] != pts[:-1], axis=1)
        pts = pts[keep]
        if len(pts) >= 3:
            pts = spline_samples(pts)
        elif len(pts) == 1:
            pts = np.repeat(pts, 2, axis=0)
    if len(pts) < 2:
        return None
    ipts = np.rint(np.clip(pts, -_COORD_LIMIT, _COORD_LIMIT)).astype(np.int32)  # half-to-even, as cvRound
    keep = np.ones(len(ipts), dtype=bool)
    keep[1:] = np.any(ipts[1:] != ipts[:-1], axis=1)  # a repeated vertex adds no pixels
    ipts = ipts[keep]
    return ipts if len(ipts) >= 2 else np.repeat(ipts, 2, axis=0)


class LaneMask:
    """A lane's pixels as a cropped boolean mask at offset (x0, y0)."""

    __slots__ = ("x0", "y0", "mask", "area")

    def __init__(self, x0: int, y0: int, mask: np.ndarray) -> None:
        self.x0, self.y0, self.mask = x0, y0, mask
        self.area = int(np.count_nonzero(mask))


def rasterise(points: np.ndarray, width: int = 30, size: tuple[int, int] = SIZE) -> LaneMask | None:
    """Draw one lane as the official evaluator does, into its bounding box clipped to the canvas."""
    ipts = lane_pixels(points)
    if ipts is None:
        return None
    r = width // 2 + 2
    x0 = max(int(ipts[:, 0].min()) - r, 0)
    y0 = max(int(ipts[:, 1].min()) - r, 0)
    x1 = min(int(ipts[:, 0].max()) + r + 1, size[0])
    y1 = min(int(ipts[:, 1].max()) + r + 1, size[1])
    if x1 <= x0 or y1 <= y0:
        return LaneMask(0, 0, np.zeros((0, 0), dtype=bool))
    canvas = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    cv2.polylines(canvas, [(ipts - np.array([x0, y0], dtype=np.int32)).reshape(-1, 1, 2)], False, 1,
                  thickness=width, lineType=cv2.LINE_8)
    return LaneMask(x0, y0, canvas.view(bool))


def full_mask(points: np.ndarray, width: int = 30, size: tuple[int, int] = SIZE) -> np.ndarray:
    """The official full-canvas rendering with one ``cv2.line`` per consecutive sample pair (reference form)."""
    canvas = np.zeros((size[1], size[0]), dtype=np.uint8)
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    if len(pts) < 2:
        return canvas.view(bool)
    ipts = lane_pixels(pts)
    for p, q in zip(ipts[:-1], ipts[1:]):
        cv2.line(canvas, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), 1, thickness=width)
    return canvas.view(bool)


def _intersection(a: LaneMask, b: LaneMask) -> int:
    ha, wa = a.mask.shape
    hb, wb = b.mask.shape
    x0, y0 = max(a.x0, b.x0), max(a.y0, b.y0)
    x1, y1 = min(a.x0 + wa, b.x0 + wb), min(a.y0 + ha, b.y0 + hb)
    if x1 <= x0 or y1 <= y0:
        return 0
    sa = a.mask[y0 - a.y0 : y1 - a.y0, x0 - a.x0 : x1 - a.x0]
    sb = b.mask[y0 - b.y0 : y1 - b.y0, x0 - b.x0 : x1 - b.x0]
    return int(np.count_nonzero(sa & sb))


def iou_matrix(gt_lanes, pred_lanes, width: int = 30, size: tuple[int, int] = SIZE) -> np.ndarray:
    """Pairwise pixel IoU (len(gt) x len(pred)); 0 where a lane has < 2 points or the union is empty."""
    gm = [rasterise(g, width, size) for g in gt_lanes]
    pm = [rasterise(p, width, size) for p in pred_lanes]
    iou = np.zeros((len(gm), len(pm)))
    for i, a in enumerate(gm):
        if a is None or a.area == 0:
            continue
        for j, b in enumerate(pm):
            if b is None or b.area == 0:
                continue
            inter = _intersection(a, b)
            if inter:
                iou[i, j] = inter / (a.area + b.area - inter)
    return iou


def image_counts(gt_lanes, pred_lanes, width: int = 30, iou: float = 0.5,
                 size: tuple[int, int] = SIZE) -> tuple[int, int, int]:
    """(TP, FP, FN) of one image, as the official evaluator counts them."""
    ng, npred = len(gt_lanes), len(pred_lanes)
    if ng == 0:
        return 0, npred, 0
    if npred == 0:
        return 0, 0, ng
    m = iou_matrix(gt_lanes, pred_lanes, width, size)
    positive = m > 0
    if iou >= 0 and positive.sum(0).max() <= 1 and positive.sum(1).max() <= 1:
        # The positive IoUs lie in distinct rows and columns: every maximum-sum assignment (the tool's
        # Kuhn-Munkres, scipy's) contains all of them and only zeros besides, so TP is the count above threshold.
        tp = int(np.count_nonzero(m > iou))
    else:  # overlapping candidates: enumerate small cases, else solve (scipy.optimize loads then, ~0.3 s)
        tp = enumerated_tp(m, iou)
        if tp is None:
            from scipy.optimize import linear_sum_assignment

            rows, cols = linear_sum_assignment(m, maximize=True)
            tp = int(np.count_nonzero(m[rows, cols] > iou))
    return tp, npred - tp, ng - tp


MAX_ENUMERATED = 5040  # injective row -> column maps enumerated at most (7 x 7); larger matrices go to the solver
_NEAR_MAX = 1e-9  # sums this close to the maximum count as ties: far above rounding (sums of <= 7 IoUs <= 1)


@functools.lru_cache(maxsize=None)
def _injections(rows: int, cols: int) -> np.ndarray:
    """Every injective map of ``rows`` rows into ``cols`` columns, one per row of a (maps, rows) array."""
    return np.array(list(itertools.permutations(range(cols), rows)), dtype=np.intp).reshape(-1, rows)


def enumerated_tp(m: np.ndarray, iou: float) -> int | None:
    """TP (matched entries > ``iou``) of a maximum-sum assignment on ``m``, by enumerating all assignments.

    An exact solver (the tool's Kuhn-Munkres, scipy's) may return any assignment whose sum is maximal up to
    rounding, so the answer is given only when every assignment within ``_NEAR_MAX`` of the maximum has the same
    TP; None when they differ or when there are more than ``MAX_ENUMERATED`` assignments (then solve instead).
    """
    m = m if m.shape[0] <= m.shape[1] else m.T  # rows into columns, the smaller side as rows
    rows, cols = m.shape
    if rows == 0:
        return 0
    if math.perm(cols, rows) > MAX_ENUMERATED:
        return None
    picked = m[np.arange(rows), _injections(rows, cols)]  # (maps, rows)
    sums = picked.sum(axis=1)
    tps = np.count_nonzero(picked[sums >= sums.max() - _NEAR_MAX] > iou, axis=1)
    return int(tps[0]) if (tps == tps[0]).all() else None


# ------------------------------------------------------------------------------------------ scores
def scores(tp: int, fp: int, fn: int) -> dict:
    """tp/fp/fn with precision, recall and F1 (each 0 when undefined; F1 = 0 when TP = 0)."""
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if tp else 0.0
    return {"tp": int(tp), "fp": int(fp), "fn": int(fn), "precision": p, "recall": r, "f1": f1}


def official_scores(tp: int, fp: int, fn: int) -> dict:
    """Precision/recall/F as the C++ ``counter`` prints them: -1 where undefined, F from those values."""
    p = tp / (tp + fp) if tp + fp else -1.0
    r = tp / (tp + fn) if tp + fn else -1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"tp": int(tp), "fp": int(fp), "fn": int(fn), "precision": p, "recall": r, "f1": f + 0.0}


def read_list(list_file: str | os.PathLike) -> list[str]:
    """Image paths (first column, leading '/' removed) of a CULane list file."""
    list_file = Path(list_file)
    if not list_file.is_file():
        raise FileNotFoundError(f"list file not found: {list_file}")
    names = [ln.split()[0].lstrip("/") for ln in list_file.read_text().splitlines() if ln.strip()]
    if not names:
        raise ValueError(f"list file {list_file} is empty")
    return names


def _lines_path(root: Path, name: str) -> Path:
    stem = name[:-4] if name.lower().endswith((".jpg", ".png")) else name
    return root / f"{stem}.lines.txt"


def _count_chunk(gt_root: Path, pred_root: Path, list_file, width: int, iou: float, size, names) -> list:
    """(TP, FP, FN) of each listed image of a chunk: the unit of work of one worker process."""
    out = []
    for name in names:
        gt_path = _lines_path(gt_root, name)
        if not gt_path.is_file():
            raise FileNotFoundError(f"ground-truth lane file not found: {gt_path} (listed in {list_file})")
        pred_path = _lines_path(pred_root, name)
        pred = read_lines(pred_path) if pred_path.is_file() else []
        out.append(image_counts(read_lines(gt_path), pred, width, iou, size))
    return out


def evaluate(gt_root, pred_root, list_file, width: int = 30, iou: float = 0.5,
             size: tuple[int, int] = SIZE, workers: int | None = None, per_image: bool = False) -> dict:
    """Evaluate every image of a list; a missing prediction file means "no lanes" (as the official tool).

    Images are counted in ``workers`` processes (default: the CPUs), contiguous chunks of the list each.
    """
    gt_root, pred_root = Path(gt_root), Path(pred_root)
    if not pred_root.is_dir():
        raise FileNotFoundError(f"prediction root not found: {pred_root}")
    names = read_list(list_file)
    one_chunk = partial(_count_chunk, gt_root, pred_root, str(list_file), width, iou, tuple(size))
    counts = [c for chunk in map_chunks(one_chunk, names, workers) for c in chunk]
    tot = np.asarray(counts, dtype=np.int64).sum(axis=0)
    out = scores(*tot)
    out["images"] = len(names)
    if per_image:
        out["per_image"] = {n: dict(zip(("tp", "fp", "fn"), c)) for n, c in zip(names, counts)}
    return out


def evaluate_splits(gt_root, pred_root, split_dir, **kw) -> dict:
    """Evaluate every ``*.txt`` list in ``split_dir``; totals are summed over the splits (as ``calTotal.m``)."""
    split_dir = Path(split_dir)
    lists = sorted(split_dir.glob("*.txt"))
    if not lists:
        raise ValueError(f"no *.txt split lists in {split_dir}")
    splits = {p.stem: evaluate(gt_root, pred_root, p, **kw) for p in lists}
    tot = [sum(s[k] for s in splits.values()) for k in ("tp", "fp", "fn")]
    out = scores(*tot)
    out["splits"] = splits
    return out


# ------------------------------------------------------------------------------------------ official output
def format_official(tp: int, fp: int, fn: int, file_label: str) -> str:
    """One block of the C++ evaluator's output file (numbers printed as C++ streams do, 6 significant digits)."""
    s = official_scores(tp, fp, fn)
    g = lambda v: "%g" % v  # noqa: E731
    return (f"file: {file_label}\ntp: {tp} fp: {fp} fn: {fn}\nprecision: {g(s['precision'])}\n"
            f"recall: {g(s['recall'])}\nFmeasure: {g(s['f1'])}\n\n")


def write_official_output(path: str | os.PathLike, tp: int, fp: int, fn: int, file_label: str | None = None) -> None:
    """Write the C++ evaluator's output file; ``file_label`` defaults to ``path`` (what the tool prints)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_official(int(tp), int(fp), int(fn), str(path) if file_label is None else file_label))


def read_official_output(path: str | os.PathLike) -> dict:
    """Parse a C++ evaluator output file (one block, or several concatenated as ``*_split.txt``).

    Returns summed ``tp fp fn`` with ``precision recall f1`` recomputed by :func:`scores`, and ``blocks``:
    one dict per block with its ``file`` label, counts and the printed ``precision recall f1`` values.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"evaluator output file not found: {path}")
    blocks, cur = [], None
    for ln in path.read_text().splitlines():
        ln = ln.strip()
        if not ln:
            continue
        key, _, rest = ln.partition(":")
        try:
            if key == "file":
                cur = {"file": rest.strip()}
                blocks.append(cur)
            elif cur is None:
                raise ValueError
            elif key == "tp":
                tok = ln.replace(":", " ").split()
                vals = dict(zip(tok[0::2], tok[1::2]))
                cur.update(tp=int(vals["tp"]), fp=int(vals["fp"]), fn=int(vals["fn"]))
            elif key in ("precision", "recall", "Fmeasure"):
                cur["f1" if key == "Fmeasure" else key] = float(rest)
            else:
                raise ValueError
        except (ValueError, KeyError):
            raise ValueError(f"{path}: unexpected line {ln!r}; expected the CULane evaluator's "
                             "'file:', 'tp: fp: fn:', 'precision:', 'recall:', 'Fmeasure:' lines") from None
    need = ("tp", "fp", "fn", "precision", "recall", "f1")
    if not blocks or any(k not in b for b in blocks for k in need):
        raise ValueError(f"{path}: not a complete CULane evaluator output (need {', '.join(need)} per block)")
    out = scores(*(sum(b[k] for b in blocks) for k in ("tp", "fp", "fn")))
    out["blocks"] = blocks
    return out


# ------------------------------------------------------------------------------------------ prob2lines
def _matlab_round(v):
    return np.floor(np.asarray(v, dtype=np.float64) + 0.5).astype(np.int64)  # half away from zero (v >= 0)


def prob2lines(prob_maps: np.ndarray, exist: Sequence[float], *, crop_top: int = 240,
               orig_size: tuple[int, int] = SIZE, rows: int = 18, step: int = 20, thresh: float = 0.3,
               exist_thresh: float = 0.5, blur: int = 9) -> list[np.ndarray]:
    """Lane points from per-lane probability maps, as ERFNet-CULane ``tools/prob2lines`` (``getLane.m``).

    ``prob_maps``: (4, h, w) float in 0..1 (scaled by 255 and truncated, as the saved PNGs) or uint8 0..255,
    covering original rows ``crop_top..H-1`` resized to h x w.  For lanes with ``exist > exist_thresh``: box
    blur ``blur`` x ``blur``; for i in 0..rows-1 sample map row ``round(h - i*step/(H-crop_top)*h)`` (1-based),
    keep the arg-max column if its value/255 > ``thresh``; x = round(col*W/w) - 1, y = H - step*i - 1.
    Lanes with fewer than 2 points are dropped.  SCNN's variant is ``crop_top=0`` on 800x288 maps.
    """
    maps = np.asarray(prob_maps)
    if maps.ndim != 3:
        raise ValueError(f"prob_maps must be (lanes, h, w), got shape {maps.shape}")
    if len(exist) != maps.shape[0]:
        raise ValueError(f"exist has {len(exist)} entries but prob_maps has {maps.shape[0]} lanes")
    if maps.dtype != np.uint8:
        maps = np.clip(maps.astype(np.float64) * 255.0, 0, 255).astype(np.uint8)  # int() truncation
    W, H = orig_size
    h, w = maps.shape[1:]
    lanes = []
    for k in range(maps.shape[0]):
        if not float(exist[k]) > exist_thresh:
            continue
        m = cv2.blur(maps[k], (blur, blur)) if blur > 1 else maps[k]
        pts = []
        for i in range(rows):
            r = int(_matlab_round(h - i * step / (H - crop_top) * h)) - 1
            if not 0 <= r < h:
                continue
            row = m[r]
            col = int(np.argmax(row))
            if row[col] / 255.0 > thresh:
                pts.append((int(_matlab_round((col + 1) * W / w)) - 1, H - step * i - 1))
        if len(pts) >= 2:
            lanes.append(np.asarray(pts, dtype=np.float32))
    return lanes
