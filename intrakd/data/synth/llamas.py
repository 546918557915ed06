"""Synthetic LLAMAS tree (datasets_metrics.md §2.1-§2.3, checklist §2.6).

``color_images/<split>/<recording>/<ts>_color_rect.png`` with a ``grayscale_images/.../<ts>_gray_rect.png`` twin,
and for train/valid ``labels/<split>/<recording>/<ts>.json`` like the real files: ``image_name``, the camera's
3x3 ``projection_matrix`` (numbers) and ``lanes`` of ``markers`` whose coordinates are numeric strings.
Markers are the scene's painted pieces of the four ego-relative lane boundaries (ids l1 l0 r0 r1) in the camera
frame (x right, y down, z forward metres, as LLAMAS' world points), cut into pieces of at most
:data:`MAX_MARKER_M` metres so that curved lanes stay curved, clipped at the bottom image row;
``pixel_* = int(projection of world_*)`` (the real files truncate: their pixels lie 0..1 px left/above the
projection). Per-pixel labels are not stored: they come from the JSON by the official procedure
(:func:`intrakd.data.llamas.multiclass_label`), which also applies the official cleaning and re-indexing.
Splits: train/valid per :func:`intrakd.data.synth.split_counts`; ``max(1, num // 8)`` extra unlabelled test images.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np

from intrakd.data.synth import scene_rng, split_counts, split_plan
from intrakd.data.synth.world import LANE_SLOTS, render_scene

MAX_MARKER_M = 4.0
RECORDINGS = ("images-2014-12-22-12-35-10_mapping_280N_3rd_lane", "images-2014-12-22-13-22-35_mapping_280S_2nd_lane",
              "images-2015-10-05-10-52-53_mapping_gilroy_day_1")
IMAGES_PER_RECORDING = 4


def _project(K: np.ndarray, p: np.ndarray) -> np.ndarray:
    q = p @ K.T
    return q[..., :2] / q[..., 2:3]


def lane_markers(line, K: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> list[dict]:
    """LLAMAS marker dicts of one scene lane boundary (near end first), as in the real label files."""
    w, h = size
    cam = np.asarray(line.cam_xyz, np.float64)
    cam = cam[np.argsort(cam[:, 2], kind="stable")]
    zc = cam[:, 2]

    def at(z):
        z = np.asarray(z, np.float64)
        return np.stack([np.interp(z, zc, cam[:, 0]), np.interp(z, zc, cam[:, 1]), z], -1)

    def row(z):
        return float(_project(K, at(z))[1])

    markers = []
    for start, end in line.pieces:
        za, zb = float(start[2]), float(end[2])
        if zb <= za or row(zb) > h - 1:
            continue  # degenerate, or entirely below the image
        if row(za) > h - 1:  # cut at the bottom row (the image row decreases with depth on the ground)
            lo, hi = za, zb
            for _ in range(40):
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if row(mid) > h - 1 else (lo, mid)
            za = hi
        zs = np.linspace(za, zb, max(1, math.ceil((zb - za) / MAX_MARKER_M)) + 1)
        pts = at(zs)
        pix = _project(K, pts)
        for k in range(len(zs) - 1):
            (u0, v0), (u1, v1) = pix[k], pix[k + 1]
            if max(u0, u1) < 0 or min(u0, u1) > w - 1:
                continue  # beside the image
            markers.append({
                "lane_marker_id": str(int(rng.integers(10**17, 10**18))) + str(int(rng.integers(10**17, 10**18))),
                "world_start": {a: repr(float(v)) for a, v in zip("xyz", pts[k])},
                "pixel_start": {"x": str(int(u0)), "y": str(int(v0))},
                "world_end": {a: repr(float(v)) for a, v in zip("xyz", pts[k + 1])},
                "pixel_end": {"x": str(int(u1)), "y": str(int(v1))},
            })
    return markers


def _name(split: str, k: int, seed: int, index: int) -> tuple[str, str]:
    rec = RECORDINGS[(k // IMAGES_PER_RECORDING + ("train", "valid", "test").index(split)) % len(RECORDINGS)]
    ts = f"{1419283521 + 1000 * (seed % 100_000) + index}_{(index * 7919 + seed * 104729) % 10**10:010d}"
    return rec, ts


def write(root, *, num: int, seed: int, size, world=None) -> dict:
    root = Path(root)
    w, h = size
    plan = split_plan(num, names=("train", "valid", "test"))
    counts = {"train": 0, "valid": 0, "test": 0}
    for index, (split, k) in enumerate(plan):
        scene = render_scene(scene_rng(seed, index), (w, h), world=world)
        rec, ts = _name(split, k, seed, index)
        for folder, suffix, img in (("color_images", "_color_rect.png", scene.image),
                                    ("grayscale_images", "_gray_rect.png",
                                     cv2.cvtColor(scene.image, cv2.COLOR_BGR2GRAY))):
            path = root / folder / split / rec / f"{ts}{suffix}"
            path.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(path), img):
                raise OSError(f"could not write {path}")
        counts[split] += 1
        if split == "test":  # test labels are not public
            continue
        ids_rng = np.random.default_rng([seed, index, 1])
        lanes = []
        for slot, line in zip(LANE_SLOTS, scene.lanes):
            if line is None:
                continue
            markers = lane_markers(line, scene.K, (w, h), ids_rng)
            if markers:
                lanes.append({"lane_id": slot, "markers": markers})
        label = {"image_name": ts, "projection_matrix": np.asarray(scene.K, float).tolist(), "lanes": lanes}
        path = root / "labels" / split / rec / f"{ts}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(label, indent=1))
    return {"splits": counts}
