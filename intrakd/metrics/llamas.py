"""LLAMAS segmentation AP, equivalent to ``unsupervised_llamas/evaluation/evaluate_segmentation.py``.

Per image and class, for the 101 thresholds t = (100 - i)/100 (1.00 down to 0.00): positive iff pred >= t;
P = TP/(TP+FP) (0 if nothing is positive), R = TP/(TP+FN) (0 if the target is empty);
AP = sum_i (R_i - R_{i-1}) * P_{i-1} with P_{-1} = 1, R_{-1} = 0 (the official left-endpoint recurrence,
quirks kept: an absent class scores 0; recall first gained below t = 1.0 is weighted by precision 0).
AP is averaged over images per class; mAP = mean over l1, l0, r0, r1 (background excluded).

:func:`image_ap` takes one histogram pass (thresholds from a bincount of quantised predictions split by GT)
and gives the same numbers as the official per-threshold loop, kept as :func:`image_ap_reference`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from intrakd.metrics._png import read_png8
from intrakd.metrics._pool import map_chunks

CLASSES = ("background", "l1", "l0", "r0", "r1")
LANE_CLASSES = CLASSES[1:]
SIZE = (1276, 717)  # (width, height)
THRESHOLDS = np.array([(100 - i) / 100 for i in range(101)])  # same float64 expressions as the script
_ASCENDING = THRESHOLDS[::-1].copy()
# For a uint8 value k the official script compares k / 255 against each threshold (float64).
_U8_PASSES = np.searchsorted(_ASCENDING, np.arange(256) / 255, side="right")


def _as_prob(pred: np.ndarray) -> np.ndarray:
    pred = np.asarray(pred)
    if pred.dtype == np.uint8:
        return pred / 255
    return pred.astype(np.float64, copy=False)


def image_ap_reference(pred: np.ndarray, gt: np.ndarray) -> float:
    """The official per-threshold loop (101 passes); the in-run peer of :func:`image_ap`."""
    prob, target = _as_prob(pred), np.asarray(gt).astype(bool)
    prev_p, prev_r, ap = 1.0, 0.0, 0.0
    for t in THRESHOLDS:
        pos = prob >= t
        tp = int(np.sum(pos & target))
        fp = int(np.sum(pos & ~target))
        fn = int(np.sum(~pos & target))
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        ap += (r - prev_r) * prev_p
        prev_p, prev_r = p, r
    return ap


def _passes(pred: np.ndarray) -> tuple[np.ndarray, int]:
    """Per pixel: how many of the ascending thresholds it reaches (0..101)."""
    pred = np.asarray(pred)
    if pred.dtype == np.uint8:
        return pred, 256  # quantised value; mapped through _U8_PASSES after the histogram
    prob = pred.astype(np.float64, copy=False)
    if np.isnan(prob).any():
        raise ValueError("prediction contains NaN")
    return np.searchsorted(_ASCENDING, prob, side="right"), 102


def _mask_u8(gt: np.ndarray) -> np.ndarray:
    """A C-contiguous uint8 mask (non-zero = target) of a boolean or integer target map."""
    gt = np.asarray(gt)
    if gt.dtype == bool:
        return np.ascontiguousarray(gt).view(np.uint8)
    if gt.dtype == np.uint8:
        return np.ascontiguousarray(gt)
    return (gt != 0).view(np.uint8)


def _counts_from_hist(hist: np.ndarray, nbins: int) -> tuple[np.ndarray, np.ndarray]:
    """TP and FP at each of the 101 thresholds (official order, t = 1.00 first) from a (2, nbins) histogram of
    non-target (row 0) and target (row 1) pixels over uint8 values (nbins 256) or threshold levels (nbins 102)."""
    if nbins == 256:  # fold uint8 values into "number of thresholds reached"
        hist = np.stack([np.bincount(_U8_PASSES, weights=h, minlength=102) for h in hist]).astype(np.int64)
    at_least = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1]  # at_least[:, k] = #pixels reaching >= k thresholds
    # pixel passes ascending threshold j iff it reaches >= j+1 thresholds; official i -> ascending j = 100 - i
    i = np.arange(101)
    pos = at_least[:, 101 - i]
    return pos[1], pos[0]


def threshold_counts(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """TP and FP at each of the 101 thresholds (in official order, t = 1.00 first) from one histogram pass.

    ``gt``: boolean, or any integer map whose non-zero pixels are the target. A uint8 prediction takes two
    256-bin cv2.calcHist passes (all pixels, target pixels); other predictions a bincount of threshold levels.
    """
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"size mismatch: prediction {pred.shape} vs ground truth {gt.shape}")
    q, nbins = _passes(pred)
    if nbins == 256 and q.size < (1 << 24):  # float32 histogram counts are exact below 2**24
        q, mask = np.ascontiguousarray(q), _mask_u8(gt)
        pos = cv2.calcHist([q], [0], mask, [256], [0, 256]).ravel().astype(np.int64)
        allv = cv2.calcHist([q], [0], None, [256], [0, 256]).ravel().astype(np.int64)
        hist = np.stack([allv - pos, pos])
    else:
        g = _mask_u8(gt).ravel() != 0
        idx = q.ravel().astype(np.int64) + g.astype(np.int64) * nbins
        hist = np.bincount(idx, minlength=2 * nbins).reshape(2, nbins)
    return _counts_from_hist(hist, nbins)


def _ap(tp: np.ndarray, fp: np.ndarray, npos: int) -> float:
    """The official left-endpoint AP from TP and FP at the 101 thresholds and the number of target pixels."""
    p = np.divide(tp, tp + fp, out=np.zeros(101), where=(tp + fp) > 0)
    r = tp / npos if npos else np.zeros(101)
    ap = 0.0
    prev_p, prev_r = 1.0, 0.0
    for k in range(101):  # same accumulation order as the script
        ap += (float(r[k]) - prev_r) * prev_p
        prev_p, prev_r = float(p[k]), float(r[k])
    return ap


def image_ap(pred: np.ndarray, gt: np.ndarray) -> float:
    """Official AP of one image and class: ``pred`` uint8 0..255 (as the PNG) or float 0..1, ``gt`` boolean
    (or an integer map, non-zero = target)."""
    tp, fp = threshold_counts(pred, gt)
    return _ap(tp, fp, int(np.count_nonzero(_mask_u8(gt))))


def _joint_aps(probs: list[np.ndarray], label: np.ndarray) -> np.ndarray:
    """Every class's AP of one image whose five maps are uint8 and whose label holds only 0..4: one joint
    (value, label) calcHist per class gives both its target and its all-pixel histogram (same counts as
    :func:`threshold_counts` on ``label == c``, without building the mask)."""
    label = np.ascontiguousarray(label)
    out = np.zeros(len(CLASSES))
    for c, pred in enumerate(probs):
        joint = cv2.calcHist([np.ascontiguousarray(pred), label], [0, 1], None, [256, len(CLASSES)],
                             [0, 256, 0, len(CLASSES)]).astype(np.int64)  # exact below 2**24 pixels
        pos = joint[:, c]
        tp, fp = _counts_from_hist(np.stack([joint.sum(1) - pos, pos]), 256)
        out[c] = _ap(tp, fp, int(pos.sum()))
    return out


class LlamasEvaluator:
    """Mean over images of each class's AP; ``update(probs, label)`` with per-class maps and a 0..4 label map."""

    def __init__(self) -> None:
        self.sums = np.zeros(len(CLASSES))
        self.images = 0

    def image_aps(self, probs, label: np.ndarray, name: str | None = None) -> np.ndarray:
        label = np.asarray(label)
        if len(probs) != len(CLASSES):
            raise ValueError(f"{name or 'image'}: expected {len(CLASSES)} class maps, got {len(probs)}")
        probs = [np.asarray(pred) for pred in probs]
        for c, pred in enumerate(probs):
            if pred.shape != label.shape:
                raise ValueError(f"size mismatch for {name or 'image'} class {CLASSES[c]}: prediction "
                                 f"{pred.shape} vs label {label.shape}")
        if (label.dtype == np.uint8 and label.size < (1 << 24) and all(p.dtype == np.uint8 for p in probs)
                and int(label.max(initial=0)) < len(CLASSES)):
            return _joint_aps(probs, label)
        return np.array([image_ap(pred, label == c) for c, pred in enumerate(probs)])

    def add(self, aps: np.ndarray) -> None:
        self.sums += aps
        self.images += 1

    def update(self, probs, label: np.ndarray, name: str | None = None) -> None:
        self.add(self.image_aps(probs, label, name))

    def result(self) -> dict:
        if self.images == 0:
            raise ValueError("no images were evaluated (empty list?)")
        ap = self.sums / self.images
        return {"map": float(ap[1:].mean()), "ap": {c: float(a) for c, a in zip(LANE_CLASSES, ap[1:])},
                "ap_background": float(ap[0]), "images": self.images}


def prediction_paths(pred_root: str | os.PathLike, key: str) -> list[Path]:
    """``<pred_root>/<rec>/<ts>.json_<c>.png`` for c = 0..4, ``key`` being ``<rec>/<ts>.json``."""
    return [Path(pred_root) / f"{key}_{c}.png" for c in range(len(CLASSES))]


def read_prediction(pred_root, key: str) -> list[np.ndarray]:
    """The five probability PNGs of one image as uint8 (grayscale, as the script's ``cv2.IMREAD_GRAYSCALE``)."""
    out = []
    for p in prediction_paths(pred_root, key):
        if not p.is_file():
            raise FileNotFoundError(f"missing LLAMAS prediction {p} (all five <ts>.json_<c>.png are required)")
        data, img = read_png8(p)  # 8-bit grey PNGs through libdeflate, the samples OpenCV's; else OpenCV
        if img is None:
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise ValueError(f"cannot decode prediction PNG {p}")
        out.append(img)
    return out


def _score_chunk(pred_root: str, chunk) -> list[np.ndarray]:
    """Per-image class APs of a chunk of (key, label) items; a label given as a path is a label JSON, drawn here
    with the official procedure (:func:`intrakd.data.llamas.multiclass_label`)."""
    ev = LlamasEvaluator()
    out = []
    for key, label in chunk:
        if isinstance(label, (str, os.PathLike)):
            from intrakd.data.llamas import multiclass_label  # the data package draws labels (no torch needed)

            label = multiclass_label(label)
        out.append(ev.image_aps(read_prediction(pred_root, key), label, name=key))
    return out


def evaluate(pred_root, items: Iterable[tuple[str, np.ndarray | str | os.PathLike]], workers: int | None = None) -> dict:
    """Score predictions under ``pred_root`` against (key, label) items, key = ``<rec>/<ts>.json``; the label is
    a 0..4 map or the path of the label JSON. Labels are drawn, PNGs decoded and APs computed in ``workers``
    processes (default: the CPUs); the per-image APs are averaged here in list order, as the script does."""
    items = list(items)
    if not items:
        raise ValueError("no LLAMAS labels to evaluate (empty list)")
    ev = LlamasEvaluator()
    for aps in map_chunks(partial(_score_chunk, str(pred_root)), items, workers):
        for a in aps:
            ev.add(a)
    return ev.result()
