"""Synthetic CULane tree (datasets_metrics.md §1.1-§1.3, checklist §1.8).

Frames ``driver_XX_30frame/<MMDDhhmm_NNNN>.MP4/<NNNNN>.jpg`` (frame numbers step 30, or 90 in the
``*_90frame`` drivers) with a sibling ``.lines.txt``: the scene's four ego-relative lane boundaries (slots l1 l0
r0 r1 -> CULane slots 1..4) sampled on CULane's rows (y = 590, 580, ... scaled to the tree height, bottom up,
while the lane is visible; x kept up to 50 genuine pixels outside the image, as in the real files) and written
with a trailing space. ``laneseg_label_w16/<same>.png``: those points joined with lines 16 px wide (scaled),
value = slot (:func:`intrakd.data.culane.lanes_to_label`); the existence flags of ``train_gt.txt``/``val_gt.txt``
say which slots have pixels, and only those lanes are written to ``.lines.txt``.
Splits: train/val per :func:`intrakd.data.synth.split_counts` in the train drivers; the unlabelled-style test
split (``.lines.txt`` only, as CULane) gets ``max(9, num // 4)`` extra frames in the test drivers, spread over the
nine ``list/test_split`` scenario lists so none is empty; ``cross`` frames have an empty ``.lines.txt``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from intrakd.data.culane import GENUINE_H, GENUINE_W, LABEL_WIDTH, SCENARIOS, TEST_SPLITS, lanes_to_label
from intrakd.data.synth import scene_rng, split_counts, split_plan
from intrakd.data.synth.world import render_scene
from intrakd.metrics.culane import write_lines

ROW_STEP = 10  # annotation rows every 10 px from the bottom (590, 580, ...)
X_MARGIN = 50  # genuine pixels a point may lie outside the image (real files: -20.5, 1679.9)
TRAIN_DRIVERS = ("driver_23_30frame", "driver_161_90frame", "driver_182_30frame")
TEST_DRIVERS = ("driver_37_30frame", "driver_100_30frame", "driver_193_90frame")
FRAMES_PER_CLIP = 3


def lane_rows(height: int) -> np.ndarray:
    """CULane's annotation rows (590, 580, ..., 10) scaled to ``height``, bottom first."""
    return np.arange(GENUINE_H, 0, -ROW_STEP, dtype=np.float64) * height / GENUINE_H


def sample_lane(image_xy: np.ndarray | None, size: tuple[int, int]) -> np.ndarray | None:
    """(n, 2) points of a lane polyline on CULane's rows within its vertical extent (None if < 2 points)."""
    if image_xy is None or len(image_xy) < 2:
        return None
    w, h = size
    pts = np.asarray(image_xy, np.float64)
    order = np.argsort(pts[:, 1], kind="stable")
    ys, xs = pts[order, 1], pts[order, 0]
    rows = lane_rows(h)
    rows = rows[(rows >= ys[0]) & (rows <= ys[-1])]
    x = np.interp(rows, ys, xs)
    margin = X_MARGIN * w / GENUINE_W
    keep = (x >= -margin) & (x <= w - 1 + margin)
    if keep.sum() < 2:
        return None
    # the visible run nearest the bottom (a lane leaving the image sideways does not come back)
    idx = np.flatnonzero(keep)
    run_end = idx[0]
    while run_end + 1 < len(keep) and keep[run_end + 1]:
        run_end += 1
    sel = slice(idx[0], run_end + 1)
    if run_end + 1 - idx[0] < 2:
        return None
    # x to 1/8 px: exact in float32, so the files print short decimals
    return np.stack([np.round(x[sel] * 8) / 8, rows[sel]], 1).astype(np.float32)


def _clip(split: str, k: int, seed: int) -> tuple[str, int]:
    """(driver/clip folder, frame step) of the k-th frame of a split."""
    drivers = TRAIN_DRIVERS if split in ("train", "val") else TEST_DRIVERS
    c = k // FRAMES_PER_CLIP + (1000 if split == "val" else 0)
    driver = drivers[c % len(drivers)]
    month_day = 515 + (seed % 10) + (c % 7)
    clip = f"{month_day:04d}{(16 + c) % 24:02d}{(7 * c + seed) % 60:02d}_{(seed * 37 + c * 11) % 10000:04d}.MP4"
    return f"{driver}/{clip}", (90 if "90frame" in driver else 30)


def write(root, *, num: int, seed: int, size, world=None) -> dict:
    root = Path(root)
    w, h = size
    plan = split_plan(num, test=max(len(SCENARIOS), num // 4))
    width = max(1, int(round(LABEL_WIDTH * w / GENUINE_W)))
    lists = {"train": [], "val": [], "test": []}
    scenario_lists = {s: [] for s in TEST_SPLITS}
    for index, (split, k) in enumerate(plan):
        scene = render_scene(scene_rng(seed, index), (w, h), world=world)
        folder, step = _clip(split, k, seed)
        img_rel = f"{folder}/{(k % FRAMES_PER_CLIP) * step:05d}.jpg"
        (root / folder).mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(root / img_rel), scene.image, [cv2.IMWRITE_JPEG_QUALITY, 90]):
            raise OSError(f"could not write {root / img_rel}")
        lanes = [sample_lane(None if ln is None else ln.image_xy, (w, h)) for ln in scene.lanes]
        label = lanes_to_label(lanes, (w, h), width)
        flags = [int((label == s + 1).any()) for s in range(len(lanes))]
        scenario = TEST_SPLITS[k % len(TEST_SPLITS)] if split == "test" else None
        kept = [ln for ln, f in zip(lanes, flags) if f]
        if scenario is not None and scenario.endswith("_cross"):
            kept = []  # crossroad frames carry no lane annotation
        write_lines(root / img_rel.replace(".jpg", ".lines.txt"), kept)
        if split == "test":
            lists["test"].append(f"/{img_rel}")
            scenario_lists[scenario].append(img_rel)  # the official split lists have no leading slash
            continue
        seg_rel = f"laneseg_label_w16/{img_rel[:-4]}.png"
        (root / seg_rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(label, mode="L").save(root / seg_rel)
        lists[split].append((f"/{img_rel}", f"/{seg_rel}", flags))
    (root / "list" / "test_split").mkdir(parents=True)
    for split in ("train", "val"):
        rows = lists[split]
        (root / "list" / f"{split}_gt.txt").write_text(
            "".join(f"{img} {seg} {' '.join(map(str, fl))}\n" for img, seg, fl in rows))
        (root / "list" / f"{split}.txt").write_text("".join(f"{img}\n" for img, _, _ in rows))
    (root / "list" / "test.txt").write_text("".join(f"{img}\n" for img in lists["test"]))
    for name, rows in scenario_lists.items():
        (root / "list" / "test_split" / f"{name}.txt").write_text("".join(f"{r}\n" for r in rows))
    return {"splits": {s: len(v) for s, v in lists.items()}}
