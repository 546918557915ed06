"""Prediction writers producing exactly the files the official evaluators read."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from intrakd.labels import APOLLO_LABELS, APOLLO_TRAIN_TO_ID, CITYSCAPES_TRAIN_TO_ID, palette
from intrakd.metrics import culane

APOLLO_FULL_SIZE = (3384, 2710)  # (width, height)
APOLLO_CROP_TOP = 1700


def _save_png(path: str | os.PathLike, img: Image.Image) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG")
    return path


def apollo_submission(train_ids: np.ndarray, full_size: tuple[int, int] = APOLLO_FULL_SIZE,
                      crop_top: int = APOLLO_CROP_TOP) -> np.ndarray:
    """trainIds (0..36, any size) -> label-ID image of ``full_size`` (W, H): IDs via the table order (36 -> 249),
    nearest resize to (W, H - crop_top), pasted into rows ``crop_top..H-1`` of a void (0) image."""
    t = np.asarray(train_ids)
    if t.ndim != 2:
        raise ValueError(f"expected a 2-D trainId map, got shape {t.shape}")
    if t.size and (t.min() < 0 or t.max() >= len(APOLLO_TRAIN_TO_ID)):
        bad = int(t.min()) if t.min() < 0 else int(t.max())
        raise ValueError(f"trainId {bad} outside 0..{len(APOLLO_TRAIN_TO_ID) - 1}")
    w, h = full_size
    if not 0 <= crop_top < h:
        raise ValueError(f"crop_top {crop_top} outside the image height {h}")
    ids = APOLLO_TRAIN_TO_ID[t]
    ids = cv2.resize(ids, (w, h - crop_top), interpolation=cv2.INTER_NEAREST)
    out = np.zeros((h, w), dtype=np.uint8)
    out[crop_top:] = ids
    return out


def write_apollo_submission(path, train_ids: np.ndarray, full_size=APOLLO_FULL_SIZE,
                            crop_top=APOLLO_CROP_TOP) -> Path:
    """Write the server's PNG (palette image: index = label ID, palette = table colours)."""
    img = Image.fromarray(apollo_submission(train_ids, full_size, crop_top))
    img.putpalette(palette(APOLLO_LABELS))  # mode L -> P, indices kept
    return _save_png(path, img)


def cityscapes_label_ids(train_ids: np.ndarray) -> np.ndarray:
    """Cityscapes trainIds (0..18) -> label IDs (what ``evalPixelLevelSemanticLabeling`` reads)."""
    t = np.asarray(train_ids)
    if t.size and (t.min() < 0 or t.max() > 18):
        bad = int(t.min()) if t.min() < 0 else int(t.max())
        raise ValueError(f"Cityscapes trainId {bad} outside 0..18")
    return CITYSCAPES_TRAIN_TO_ID[t]


def write_cityscapes_label_ids(path, train_ids: np.ndarray) -> Path:
    """Write a single-channel (mode L) labelIds PNG, e.g. ``{city}_{seq}_{frame}_pred_labelIds.png``."""
    return _save_png(path, Image.fromarray(cityscapes_label_ids(train_ids).astype(np.uint8)))


def write_culane_lines(path, prob_maps: np.ndarray, exist: Sequence[float], **prob2lines_kw) -> list[np.ndarray]:
    """prob2lines (see :func:`intrakd.metrics.culane.prob2lines`) then write ``.lines.txt``; returns the lanes."""
    lanes = culane.prob2lines(prob_maps, exist, **prob2lines_kw)
    culane.write_lines(path, lanes)
    return lanes


def culane_prob_maps(probs: np.ndarray) -> np.ndarray:
    """Softmax output (5, h, w) float -> the 4 lane maps as uint8 ``int(p * 255)`` (the saved PNGs)."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 3 or p.shape[0] != 5:
        raise ValueError(f"expected (5, h, w) softmax probabilities, got shape {p.shape}")
    return np.clip(p[1:] * 255.0, 0, 255).astype(np.uint8)


def write_llamas_probs(pred_root, key: str, probs: np.ndarray) -> list[Path]:
    """Write ``<pred_root>/<key>_<c>.png`` (key = ``<rec>/<ts>.json``) for the 5 classes, value = prob*255.

    ``probs``: (5, H, W) float 0..1 (scaled, rounded and clipped) or uint8; full size 1276x717 for the server.
    """
    p = np.asarray(probs)
    if p.ndim != 3 or p.shape[0] != 5:
        raise ValueError(f"expected (5, H, W) class probabilities, got shape {p.shape}")
    if p.dtype != np.uint8:
        p = np.clip(np.rint(p.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    paths = []
    for c in range(5):
        path = Path(pred_root) / f"{key}_{c}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), p[c]):
            raise ValueError(f"could not write {path}")
        paths.append(path)
    return paths
