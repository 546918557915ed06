"""Pixel-level mIoU over label IDs with the cityscapesScripts / ApolloScape dataset-api semantics.

Confusion matrix C[gt_id, pred_id] pooled over all images.  For every label with ignoreInEval False:
TP = C[l, l]; FN = row sum - TP (predictions of any ID count); FP = column l summed over GT rows that are
neither ignored nor l; IoU = TP / (TP + FP + FN), NaN when the denominator is 0; mIoU = mean of non-NaN IoUs.
ApolloScape averages void (ID 0) as the released script does, unless ``exclude_void``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from intrakd.labels import APOLLO_LABELS, CITYSCAPES_LABELS, Label
from intrakd.metrics._png import GREY, PALETTE, read_png8
from intrakd.metrics._pool import map_chunks

TABLES: dict[str, tuple[Label, ...]] = {"apolloscape": APOLLO_LABELS, "cityscapes": CITYSCAPES_LABELS}


class SegEvaluator:
    """Accumulates a pooled 256x256 ID confusion matrix and reports the official per-class IoU and mIoU."""

    def __init__(self, table: str = "apolloscape", exclude_void: bool = False) -> None:
        if table not in TABLES:
            raise ValueError(f"unknown label table {table!r}; expected one of {sorted(TABLES)}")
        self.table = table
        labels = [lab for lab in TABLES[table] if lab.id >= 0]
        self.valid = np.zeros(256, dtype=bool)
        self.valid[[lab.id for lab in labels]] = True
        self.eval_labels = [lab for lab in labels if not lab.ignore_in_eval]
        if exclude_void and table == "apolloscape":
            self.averaged = [lab for lab in self.eval_labels if lab.id != 0]
        else:
            self.averaged = list(self.eval_labels)
        self.confusion = np.zeros((256, 256), dtype=np.int64)
        self.images = 0

    def reset(self) -> None:
        self.confusion[:] = 0
        self.images = 0

    def update(self, pred_ids: np.ndarray, gt_ids: np.ndarray, name: str | None = None) -> None:
        """Add one image (label-ID arrays of equal shape); ``name`` is used in error messages."""
        pred_ids, gt_ids = np.asarray(pred_ids), np.asarray(gt_ids)
        if pred_ids.shape != gt_ids.shape:
            raise ValueError(
                f"size mismatch for {name or 'image'}: prediction {pred_ids.shape} vs ground truth {gt_ids.shape}"
            )
        if pred_ids.ndim != 2:
            raise ValueError(f"{name or 'image'}: expected single-channel label maps, got shape {pred_ids.shape}")
        self.add_counts(self.pair_counts(pred_ids, gt_ids, name))

    def pair_counts(self, pred_ids: np.ndarray, gt_ids: np.ndarray, name: str | None = None) -> np.ndarray:
        """Flat 65536-bin histogram of ``256*gt + pred`` after validation (thread-safe, no state).

        uint8 maps: one pass of cv2.calcHist's joint (2-D) histogram over the two maps, which reads the pairs
        directly (no per-pixel pair index is built); exact while the image has fewer than 2**24 pixels.
        """
        if pred_ids.dtype == np.uint8 and gt_ids.dtype == np.uint8:
            if gt_ids.size < (1 << 24):  # float32 histogram counts are exact below 2**24
                gt_ids, pred_ids = np.ascontiguousarray(gt_ids), np.ascontiguousarray(pred_ids)
                mat = cv2.calcHist([gt_ids, pred_ids], [0, 1], None, [256, 256], [0, 256, 0, 256])
                mat = mat.astype(np.int64)
            else:
                idx = gt_ids.astype(np.uint16) << 8
                idx |= pred_ids
                mat = np.bincount(idx.ravel(), minlength=65536).reshape(256, 256)
            for what, present in (("ground truth", mat.sum(1)), ("prediction", mat.sum(0))):
                bad = np.flatnonzero((present > 0) & ~self.valid)
                if bad.size:
                    raise ValueError(
                        f"{what} of {name or 'image'} contains label ID {int(bad[0])}, not in the {self.table} table"
                    )
            return mat.ravel()
        for what, arr in (("ground truth", gt_ids), ("prediction", pred_ids)):
            lo, hi = int(arr.min()), int(arr.max())
            if lo < 0 or hi > 255:
                raise ValueError(
                    f"{what} of {name or 'image'} contains label ID {lo if lo < 0 else hi}, not in the {self.table} table"
                )
        return self.pair_counts(pred_ids.astype(np.uint8), gt_ids.astype(np.uint8), name)

    def add_counts(self, counts: np.ndarray, images: int = 1) -> None:
        """Add the counts of ``images`` images (one :meth:`pair_counts` result, or a sum of several)."""
        self.confusion += counts.reshape(256, 256)
        self.images += images

    def iou(self) -> dict[int, float]:
        """IoU per evaluated label ID (NaN where TP + FP + FN = 0)."""
        c = self.confusion
        not_ignored = np.array([lab.id for lab in self.eval_labels])
        out = {}
        for lab in self.eval_labels:
            tp = c[lab.id, lab.id]
            fn = c[lab.id].sum() - tp
            fp = c[not_ignored, lab.id].sum() - tp
            denom = tp + fp + fn
            out[lab.id] = float(tp) / float(denom) if denom else float("nan")
        return out

    def result(self) -> dict:
        """``miou`` (0..1, NaN if no class is defined), ``per_class`` {name: IoU or None}, ``images``."""
        if self.images == 0:
            raise ValueError("no images were evaluated (empty list?)")
        ious = self.iou()
        per_class = {lab.name: (None if np.isnan(ious[lab.id]) else ious[lab.id]) for lab in self.averaged}
        valid = [v for v in per_class.values() if v is not None]
        miou = sum(valid) / len(valid) if valid else float("nan")  # summed in table order, as getScoreAverage
        return {"miou": miou, "per_class": per_class, "images": self.images}


def read_ids(path: str | os.PathLike) -> np.ndarray:
    """Read a single-channel label-ID PNG (palette indices for mode P, as PIL and the official tools do).

    8-bit greyscale and palette PNGs with the filters label writers use (the usual label and prediction files) are
    read by :func:`intrakd.metrics._png.read_png8` (libdeflate: 3-4x PIL on the datasets' palette labels, 2.5x
    OpenCV on what ``cv2.imwrite`` writes, OpenCV's speed on PIL's greyscale maps); other files by OpenCV
    (greyscale) or PIL, because OpenCV would expand a palette to colours.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label image not found: {path}")
    data, img = read_png8(path, (GREY, PALETTE))
    if img is not None:
        return img
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[24:26] == b"\x08\x00":  # 8-bit greyscale: OpenCV is faster
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if img is not None and img.ndim == 2:
            return img
    from PIL import Image  # loaded on first need: the common label files never need it

    with Image.open(path) as img:
        if img.mode not in ("L", "P", "I", "I;16", "1"):
            raise ValueError(f"{path}: expected a single-channel label PNG, got mode {img.mode}")
        return np.asarray(img)


def _pair_counts(ev: SegEvaluator, pair) -> np.ndarray:
    pred_path, gt_path = pair
    pred, gt = read_ids(pred_path), read_ids(gt_path)
    if pred.shape != gt.shape:
        raise ValueError(f"size mismatch: prediction {pred_path} is {pred.shape[::-1]} (WxH) but ground truth "
                         f"{gt_path} is {gt.shape[::-1]}")
    return ev.pair_counts(pred, gt, name=str(pred_path))


def _count_chunk(table: str, pairs) -> tuple[np.ndarray, np.ndarray, int]:
    """(flat indices, values) of the non-zero summed pair counts, and the number of images, of a chunk of
    (prediction, GT) paths: the unit of work of one worker (a few hundred pairs travel back, not 65,536 bins)."""
    ev = SegEvaluator(table)
    total = _pair_counts(ev, pairs[0])
    for pair in pairs[1:]:
        total += _pair_counts(ev, pair)
    nonzero = np.flatnonzero(total)
    return nonzero, total[nonzero], len(pairs)


def evaluate_pairs(
    pairs: Sequence[tuple[str | os.PathLike, str | os.PathLike]],
    table: str,
    exclude_void: bool = False,
    workers: int | None = None,
) -> dict:
    """Evaluate (prediction PNG, ground-truth PNG) pairs; decoding and counting run in ``workers`` processes
    (default: the CPUs this process may use), each summing the counts of contiguous chunks of the list."""
    if not pairs:
        raise ValueError("empty list of image pairs: nothing to evaluate")
    pairs = [(str(p), str(g)) for p, g in pairs]
    ev = SegEvaluator(table, exclude_void=exclude_void)
    for nonzero, values, images in map_chunks(partial(_count_chunk, table), pairs, workers):
        counts = np.zeros(65536, np.int64)
        counts[nonzero] = values
        ev.add_counts(counts, images)
    return ev.result()


def read_list(path: str | os.PathLike) -> list[str]:
    """Non-empty lines of a list file (paths may contain spaces, as ApolloScape's ``Camera 5``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"list file not found: {path}")
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise ValueError(f"list file {path} is empty")
    return lines


def evaluate_apolloscape(gt_root, pred_root, gt_list, pred_list, exclude_void=False, workers=None) -> dict:
    """The dataset-api call: two list files of paths relative to two roots, paired in order."""
    gts, preds = read_list(gt_list), read_list(pred_list)
    if len(gts) != len(preds):
        raise ValueError(f"list lengths differ: {gt_list} has {len(gts)} lines, {pred_list} has {len(preds)}")
    pairs = [(Path(pred_root) / p, Path(gt_root) / g) for p, g in zip(preds, gts)]
    return evaluate_pairs(pairs, "apolloscape", exclude_void=exclude_void, workers=workers)


def cityscapes_pairs(gt_root, pred_root) -> list[tuple[Path, Path]]:
    """Pair ``*_gtFine_labelIds.png`` under gt_root with the one prediction named ``{city}_{seq}_{frame}*.png``."""
    gt_root, pred_root = Path(gt_root), Path(pred_root)
    if not gt_root.is_dir():
        raise FileNotFoundError(f"ground-truth root not found: {gt_root}")
    if not pred_root.is_dir():
        raise FileNotFoundError(f"prediction root not found: {pred_root}")
    gts = sorted(gt_root.rglob("*_gtFine_labelIds.png"))
    if not gts:
        raise ValueError(f"no *_gtFine_labelIds.png files under {gt_root}")
    preds: dict[str, list[Path]] = {}
    for p in pred_root.rglob("*.png"):
        parts = p.stem.split("_")  # the stem: a file named exactly {city}_{seq}_{frame}.png pairs too
        if len(parts) >= 3:
            preds.setdefault("_".join(parts[:3]), []).append(p)
    pairs = []
    for g in gts:
        key = "_".join(g.name.split("_")[:3])
        found = preds.get(key, [])
        if len(found) != 1:
            what = "no prediction" if not found else f"{len(found)} predictions"
            raise (FileNotFoundError if not found else ValueError)(
                f"{what} named {key}*.png under {pred_root} for ground truth {g}")
        pairs.append((found[0], g))
    return pairs


def evaluate_cityscapes(gt_root, pred_root, workers=None) -> dict:
    return evaluate_pairs(cityscapes_pairs(gt_root, pred_root), "cityscapes", workers=workers)


def evaluate_arrays(pairs: Iterable[tuple[np.ndarray, np.ndarray]], table: str, exclude_void=False) -> dict:
    """Evaluate in-memory (prediction IDs, GT IDs) pairs."""
    ev = SegEvaluator(table, exclude_void=exclude_void)
    for i, (pred, gt) in enumerate(pairs):
        ev.update(pred, gt, name=f"image {i}")
    return ev.result()
