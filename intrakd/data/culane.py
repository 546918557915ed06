"""CULane lane detection (datasets_metrics.md §1; intrakd_method.md §2.4, ERFNet-CULane-PyTorch recipe).

Tree layout::

    driver_XX_30frame/<clip>.MP4/<frame>.jpg (+ <frame>.lines.txt)   1640x590 frames and lane key points
    laneseg_label_w16/driver_XX_30frame/<clip>.MP4/<frame>.png       8-bit, 0 = background, 1..4 = lane slot
    list/train_gt.txt, val_gt.txt   '<img> <seg png> e1 e2 e3 e4' (paths start with '/')
    list/train.txt, val.txt, test.txt                 '<img>' (leading '/')
    list/test_split/test0_normal.txt ... test8_night.txt  '<img>' (no leading '/')

Splits: ``train`` (train_gt.txt), ``val`` (val_gt.txt, else val.txt), ``test`` (test.txt) and the nine
scenarios, by file stem (``test0_normal``) or by scenario name (``normal``). Items: recipe geometry (top 240
rows dropped, resized to 976x208 at genuine size), per-pixel slot labels, the four existence flags of the list
(derived from the label when the list has none). ``lanes(i)`` gives the ``.lines.txt`` ground truth that the
F1 metric scores; ``restore_prediction`` returns the slot map at full size (lines are made from probabilities
with :func:`intrakd.metrics.culane.prob2lines`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from intrakd.data import io
from intrakd.data.base import Record, SegDataset
from intrakd.data.spec import DATASETS
from intrakd.data.transforms import paste_rows
from intrakd.metrics.culane import read_lines

SPEC = DATASETS["culane"]
LIST_FILES = {"train": ("train_gt.txt",), "val": ("val_gt.txt", "val.txt"), "test": ("test.txt",)}
SCENARIOS = ("normal", "crowd", "hlight", "shadow", "noline", "arrow", "curve", "cross", "night")
TEST_SPLITS = tuple(f"test{k}_{s}" for k, s in enumerate(SCENARIOS))
GENUINE_W, GENUINE_H = SPEC.genuine_size
LABEL_WIDTH = 16  # laneseg_label_w16: lanes drawn 16 px wide at 1640x590
METRIC_WIDTH = 30  # the official evaluator draws lanes 30 px wide
PROB2LINES_STEP = 20  # prob2lines samples every 20 rows at 590 rows
NUM_SLOTS = SPEC.num_lanes
VALID_VALUES = np.arange(NUM_SLOTS + 1)


def list_file(root: Path, split: str) -> Path:
    """The list file of ``split`` (FileNotFoundError naming what was looked for)."""
    if split in LIST_FILES:
        candidates = [root / "list" / f for f in LIST_FILES[split]]
    else:
        stem = split.removeprefix("test_split/")
        if stem in SCENARIOS:
            stem = TEST_SPLITS[SCENARIOS.index(stem)]
        if stem not in TEST_SPLITS:
            raise ValueError(f"CULane split {split!r} is not one of {', '.join(LIST_FILES)}, "
                             f"{', '.join(TEST_SPLITS)} (or a scenario name: {', '.join(SCENARIOS)})")
        candidates = [root / "list" / "test_split" / f"{stem}.txt"]
    for c in candidates:
        if c.is_file():
            return c
    raise FileNotFoundError(f"CULane split {split!r}: expected the list file "
                            f"{' or '.join(str(c) for c in candidates)}, which does not exist")


def read_list(path) -> list[io.ListEntry]:
    """Parse a CULane list: '<img>', '<img> <seg png>' or '<img> <seg png> e1 e2 e3 e4' per line.

    Leading slashes are kept in the entries (resolved by :func:`intrakd.data.io.resolve`); the existence flags
    must be four values in {0, 1}. ValueError names the file and line otherwise; empty lists are errors.
    """
    entries = io.read_list(path, num_flags=NUM_SLOTS)
    for e in entries:
        if e.flags is not None and (e.label is None or not set(e.flags) <= {0, 1}):
            raise ValueError(f"{path}:{e.line}: existence flags {list(e.flags)} need a label path before them "
                             "and values in {0, 1}; expected '<img> <seg png> e1 e2 e3 e4'")
    return entries


def lines_path(image: Path) -> Path:
    """``<frame>.jpg`` -> the sibling ``<frame>.lines.txt``."""
    return image.with_suffix(".lines.txt")


def read_records(root: Path, split: str) -> list[Record]:
    io.require_dir(root, "CULane root")
    lst = list_file(root, split)
    records = []
    for e in read_list(lst):
        image, label = io.listed_paths(root, lst, e)
        records.append(Record(image=image, label=label, name=e.image.lstrip("/"), exist=e.flags,
                              extra={"lines": lines_path(image)}))
    return records


def read_label(path) -> np.ndarray:
    """uint8 slot map (0..4) of a ``laneseg_label_w16`` PNG; ValueError naming the file for other values."""
    im = io.open_label_image(path)
    if im.mode not in ("L", "P"):
        raise ValueError(f"{path}: unsupported lane label PNG mode {im.mode!r}; expected 8-bit single-channel "
                         "values 0..4")
    lab = np.asarray(im, dtype=np.uint8)
    io.check_values(lab, VALID_VALUES, path, "CULane lane slot")
    return lab


def lanes_to_label(lanes: Sequence[np.ndarray | None], size: tuple[int, int], width: int = LABEL_WIDTH) -> np.ndarray:
    """Slot map as ``seg_label_generate`` draws it: lane k (0-based) -> value k+1, consecutive points joined with
    ``cv2.line`` of thickness ``width`` in slot order (later slots overwrite). ``None`` or <2 points: absent."""
    w, h = size
    label = np.zeros((h, w), np.uint8)
    for k, lane in enumerate(lanes):
        if lane is None or len(lane) < 2:
            continue
        pts = np.rint(np.asarray(lane, np.float64)).astype(np.int64)
        for p, q in zip(pts[:-1], pts[1:]):
            cv2.line(label, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), k + 1, thickness=max(1, int(width)))
    return label


class CULane(SegDataset):
    spec = SPEC
    read_records = staticmethod(read_records)

    def raw_label(self, i: int) -> np.ndarray:
        rec = self.records[i]
        if rec.label is None:
            raise ValueError(f"CULane split {self.split!r} has no per-pixel labels for {rec.image} "
                             f"(its list has no '<seg png>' column); the lane ground truth is lanes({i})")
        return read_label(rec.label)

    def train_label(self, i: int) -> np.ndarray:
        return self.raw_label(i)

    def lanes(self, i: int) -> list[np.ndarray]:
        """Ground-truth lanes of record ``i`` from its ``.lines.txt`` ((n, 2) float32 x, y per lane)."""
        path = self.records[i].extra["lines"]
        if not path.is_file():
            raise FileNotFoundError(f"CULane lane annotation {path} (for {self.records[i].image}) does not exist")
        return read_lines(path)

    def prob2lines_kwargs(self) -> dict:
        """Keyword arguments of :func:`intrakd.metrics.culane.prob2lines` for this tree's geometry (the row step
        of 20 px at 590 rows scaled to the tree height; maps cover rows ``crop_top..H-1``)."""
        w, h = self.orig_size
        return {"crop_top": self.crop_top, "orig_size": (w, h), "step": PROB2LINES_STEP * h / GENUINE_H}

    def metric_kwargs(self) -> dict:
        """Keyword arguments of the F1 functions of :mod:`intrakd.metrics.culane` for this tree: the official
        30-px lane width scaled to the tree width and the tree's canvas size."""
        w, h = self.orig_size
        return {"width": max(1, int(round(METRIC_WIDTH * w / GENUINE_W))), "size": (w, h)}

    def restore_prediction(self, i: int, pred_train_ids: np.ndarray) -> np.ndarray:
        """Slot map (0..4, any size of the kept rows) -> uint8 map at full size, dropped top rows = 0."""
        pred = np.asarray(pred_train_ids)
        if pred.ndim != 2:
            raise ValueError(f"expected a 2-D slot map for {self.records[i].image}, got shape {pred.shape}")
        if pred.size and (pred.min() < 0 or pred.max() > NUM_SLOTS):
            raise ValueError(f"prediction for {self.records[i].image}: values {pred.min()}..{pred.max()} "
                             f"outside 0..{NUM_SLOTS}")
        w, h = self.full_size(i)
        return paste_rows(pred.astype(np.uint8), (w, h), self.top_rows(h), fill=0)


def build(root, split: str, *, train: bool = False, input_size=None, crop=None, rotate_deg=None) -> CULane:
    return CULane(root, split, train=train, input_size=input_size, crop=crop, rotate_deg=rotate_deg)
