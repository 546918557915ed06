"""Synthetic Cityscapes tree (datasets_metrics.md §4.1).

``leftImg8bit/<split>/<city>/<city>_<seq:06d>_<frame:06d>_leftImg8bit.png`` (8-bit RGB PNG) and, beside it in
``gtFine``, ``_gtFine_labelIds.png`` (mode L, label IDs), ``_gtFine_instanceIds.png`` (16-bit: the label ID for
stuff, ``ID * 1000 + k`` for the k-th person/car/truck) and ``_gtFine_color.png`` (table colours). Polygon
JSONs are not written. The scene's internal classes map to Cityscapes names (road markings are road); scenes
are re-drawn (deterministically, from the scene's own generator) until at least :data:`MIN_CLASSES` of the 19
evaluated classes are visible. Splits: train/val per :func:`intrakd.data.synth.split_counts`, test =
``max(1, num // 8)`` extra images with labels as well (the real test GT is a placeholder; the loader does not
require it).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from intrakd.data.synth import scene_rng, split_counts, split_plan
from intrakd.data.synth.markings import CLASSES, FIRST_MARKING
from intrakd.data.synth.world import render_scene
from intrakd.labels import CITYSCAPES_ID_TO_TRAIN, CITYSCAPES_LABELS, palette

MIN_CLASSES = 8
MAX_TRIES = 50
CITIES = {"train": ("aachen", "bochum", "bremen"), "val": ("frankfurt", "lindau", "munster"),
          "test": ("berlin", "bielefeld", "bonn")}
_BY_NAME = {lab.name: lab.id for lab in CITYSCAPES_LABELS if lab.id >= 0}
#: internal class -> Cityscapes label ID (markings are painted road)
ID_LUT = np.array([_BY_NAME["road"] if k >= FIRST_MARKING else _BY_NAME[name.replace("_", " ")]
                   for k, name in enumerate(CLASSES)], np.uint8)
THING_IDS = tuple(_BY_NAME[n] for n in ("person", "car", "truck"))


def instance_ids(ids: np.ndarray, instance: np.ndarray) -> np.ndarray:
    """uint16 instanceIds: label ID, or ID * 1000 + k for the k-th instance of a thing class (k from 0)."""
    out = ids.astype(np.uint16)
    for cid in THING_IDS:
        sel = (ids == cid) & (instance > 0)
        for k, inst in enumerate(np.unique(instance[sel])):
            out[sel & (instance == inst)] = cid * 1000 + k
    return out


def _scene(seed: int, index: int, size, world=None):
    rng = scene_rng(seed, index)
    best = None
    for _ in range(MAX_TRIES):
        scene = render_scene(rng, size, world=world)
        ids = ID_LUT[scene.semantic]
        present = set(np.unique(CITYSCAPES_ID_TO_TRAIN[ids]).tolist()) - {255}
        if best is None or len(present) > best[0]:
            best = (len(present), scene, ids)
        if len(present) >= MIN_CLASSES:
            return scene, ids
    raise ValueError(f"no synthetic scene of size {size[0]}x{size[1]} showed {MIN_CLASSES} Cityscapes classes in "
                     f"{MAX_TRIES} draws (best {best[0]}); use a larger size")


def write(root, *, num: int, seed: int, size, world=None) -> dict:
    root = Path(root)
    plan = split_plan(num)
    pal = palette(CITYSCAPES_LABELS)
    counts = {"train": 0, "val": 0, "test": 0}
    for index, (split, k) in enumerate(plan):
        scene, ids = _scene(seed, index, size, world)
        city = CITIES[split][k % 3]
        stem = f"{city}_{seed % 1000:03d}{k // 3:03d}_{19 + 30 * index:06d}"
        img_dir = root / "leftImg8bit" / split / city
        gt_dir = root / "gtFine" / split / city
        img_dir.mkdir(parents=True, exist_ok=True)
        gt_dir.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(img_dir / f"{stem}_leftImg8bit.png"), scene.image):
            raise OSError(f"could not write {img_dir / f'{stem}_leftImg8bit.png'}")
        Image.fromarray(ids, mode="L").save(gt_dir / f"{stem}_gtFine_labelIds.png")
        if not cv2.imwrite(str(gt_dir / f"{stem}_gtFine_instanceIds.png"), instance_ids(ids, scene.instance)):
            raise OSError(f"could not write {gt_dir / f'{stem}_gtFine_instanceIds.png'}")
        colour = Image.fromarray(ids, mode="P")
        colour.putpalette(pal)
        colour.convert("RGB").save(gt_dir / f"{stem}_gtFine_color.png")
        counts[split] += 1
    return {"splits": counts}
