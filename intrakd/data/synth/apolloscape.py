"""Synthetic ApolloScape lane-mark tree (datasets_metrics.md §3.1-§3.3).

Images ``ColorImage_road0X/ColorImage/Record0XX/Camera 5/<ts>_Camera_5.jpg`` and labels
``Labels_road0X/Label/Record0XX/Camera 5/<ts>_Camera_5_bin.png`` written as palette PNGs whose indices are the
official label IDs and whose palette is the official table colours (so both PIL ID readers and the IntRA-KD cv2
colour reader decode them). Train = roads 02/03, val = road04 (Record015/017), test = road05 images only.
Lists ``list/train.txt``, ``list/val.txt`` (``<img> <label>``) and ``list/test_img.txt`` (``<img>``).
The camera horizon sits at 52-60% of the height, so the rows the recipe drops (above 1700/2710) hold mostly void.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from intrakd.data.synth import scene_rng, split_plan
from intrakd.data.synth.markings import CLASS_ID, CLASSES
from intrakd.data.synth.world import render_scene
from intrakd.labels import APOLLO_LABELS, palette

HORIZON = (0.52, 0.60)
#: internal marking class -> ApolloScape label name (everything else is void)
TO_APOLLO = {
    "solid_white": "s_w_d", "solid_yellow": "s_y_d", "double_solid_white": "ds_w_dn",
    "double_solid_yellow": "ds_y_dn", "solid_dashed_white": "sb_w_do", "solid_dashed_yellow": "sb_y_do",
    "dashed_white": "b_w_g", "dashed_yellow": "b_y_g", "double_dashed_white": "db_w_g",
    "double_dashed_yellow": "db_y_g", "stop_line": "s_w_s", "double_stop_line": "ds_w_s",
    "dashed_stop_line": "db_w_s", "chevron_white": "s_w_c", "chevron_yellow": "s_y_c", "parking_white": "s_w_p",
    "zebra": "c_wy_z", "arrow_straight": "a_w_t", "arrow_left": "a_w_l", "arrow_right": "a_w_r",
    "arrow_straight_left": "a_w_tl", "arrow_straight_right": "a_w_tr", "arrow_left_right": "a_w_lr",
    "arrow_straight_left_right": "a_w_tlr", "arrow_uturn": "a_w_u", "arrow_straight_uturn": "a_w_tu",
    "arrow_merge": "a_w_m", "slow_down": "b_n_sr", "diamond": "d_wy_za", "no_parking": "r_wy_np",
    "other_marking": "om_n_n", "paint_noise": "noise", "unclear_marking": "ignored",
}
_BY_NAME = {lab.name: lab.id for lab in APOLLO_LABELS}
ID_LUT = np.zeros(len(CLASSES), np.uint8)
for _name, _apollo in TO_APOLLO.items():
    ID_LUT[CLASS_ID[_name]] = _BY_NAME[_apollo]
PALETTE = palette(APOLLO_LABELS)


def _paths(split: str, k: int, seed: int, index: int):
    if split == "train":
        road, record = ("02", "03")[k % 2], f"Record{1 + k // 20:03d}"
    elif split == "val":
        road, record = "04", ("Record015", "Record017")[k % 2]
    else:
        road, record = "05", f"Record{1 + k // 20:03d}"
    ms = (seed * 7919 + index * 333) % 86_400_000
    ts = f"1709{27 + (seed % 3):02d}_{ms // 3_600_000:02d}{ms // 60_000 % 60:02d}{ms // 1000 % 60:02d}{ms % 1000:03d}"
    img = f"ColorImage_road{road}/ColorImage/{record}/Camera 5/{ts}_Camera_5.jpg"
    lab = f"Labels_road{road}/Label/{record}/Camera 5/{ts}_Camera_5_bin.png"
    return img, lab


def save_label(path: Path, ids: np.ndarray) -> None:
    """uint8 IDs -> palette PNG: index = label ID, palette = table colours."""
    im = Image.fromarray(ids.astype(np.uint8), mode="P")
    im.putpalette(PALETTE)
    im.save(path)


def write(root, *, num: int, seed: int, size, world=None) -> dict:
    root = Path(root)
    plan = split_plan(num)
    lists = {"train": [], "val": [], "test": []}
    for index, (split, k) in enumerate(plan):
        scene = render_scene(scene_rng(seed, index), size, horizon=HORIZON, world=world)
        img_rel, lab_rel = _paths(split, k, seed, index)
        (root / img_rel).parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(root / img_rel), scene.image, [cv2.IMWRITE_JPEG_QUALITY, 90]):
            raise OSError(f"could not write {root / img_rel}")
        if split == "test":
            lists[split].append(img_rel)
            continue
        (root / lab_rel).parent.mkdir(parents=True, exist_ok=True)
        save_label(root / lab_rel, ID_LUT[scene.semantic])
        lists[split].append(f"{img_rel} {lab_rel}")
    (root / "list").mkdir()
    for split, name in (("train", "train.txt"), ("val", "val.txt"), ("test", "test_img.txt")):
        (root / "list" / name).write_text("\n".join(lists[split]) + "\n")
    return {"splits": {s: len(v) for s, v in lists.items()}}
