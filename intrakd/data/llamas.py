"""LLAMAS lane markers (datasets_metrics.md §2; intrakd_method.md §2.5, ENet-SAD-Simple recipe).

Tree layout (unsupervised_llamas ``label_scripts``)::

    color_images/{train,valid,test}/<recording>/<ts>_color_rect.png       1276x717 colour
    grayscale_images/{train,valid,test}/<recording>/<ts>_gray_rect.png    same, grey (used when no colour)
    labels/{train,valid}/<recording>/<ts>.json                            markers (test labels are private)

Labels follow the official code exactly: ``read_json``'s cleaning (lanes whose ``pixel_start.y`` extent is
< 20 px or with < 2 markers dropped, then lane names re-indexed per side in lexicographic order), then
``segmentation_labels``: every marker a projected quadrilateral 0.10 m wide, filled twice with anti-aliased
``cv2.fillConvexPoly`` in the lane's colour; a pixel is class l1/l0/r0/r1 only if it has exactly that colour
(anti-aliased rims and other lanes are background). :func:`multiclass_label` gives the arg-max of the
official 5-channel label (0 bg, 1 l1, 2 l0, 3 r0, 4 r1); the existence flags are "class has pixels".
``restore_prediction`` returns the five maps the official evaluator reads (uint8, value = probability*255).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np

from intrakd.data import io
from intrakd.data.base import Record, SegDataset
from intrakd.data.spec import DATASETS
from intrakd.labels import LLAMAS_LANE_COLOURS

SPEC = DATASETS["llamas"]
SIZE = tuple(SPEC.genuine_size)  # (W, H) = (1276, 717)
CLASSES = SPEC.class_names  # intrakd.labels.LLAMAS_CLASSES
LANE_IDS = CLASSES[1:]
SPLITS = {"train": "train", "valid": "valid", "val": "valid", "test": "test"}
IMAGE_KINDS = (("color_images", "_color_rect.png"), ("grayscale_images", "_gray_rect.png"))
MIN_LANE_HEIGHT = 20  # read_json(min_lane_height=20)
MIN_MARKERS = 2
MARKER_WIDTH_M = 0.10
LANE_COLOURS = LLAMAS_LANE_COLOURS  # the official lane colours (BGR)
#: colour for every other lane (l2, r2, ...): drawn, therefore hiding what is below it, but background.
OTHER_COLOUR = (128, 128, 128)
_COORD_LIMIT = float(1 << 20)  # keeps absurd projections inside OpenCV's coordinate range


# ------------------------------------------------------------------------------------------ label JSON
def _number(value, path, what: str) -> float:
    """A JSON number or numeric string (the real files store strings) as float; ValueError otherwise."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: {what} is {value!r}; expected a number or numeric string") from None
    if not math.isfinite(v):
        raise ValueError(f"{path}: {what} is {value!r}; expected a finite number")
    return v


def _point(marker: dict, key: str, axes: str, path, where: str, pixel: bool) -> tuple:
    try:
        d = marker[key]
        vals = [_number(d[a], path, f"{where} {key}.{a}") for a in axes]
    except (KeyError, TypeError):
        raise ValueError(f"{path}: {where} has no {key} with keys {', '.join(axes)}") from None
    return tuple(int(v) for v in vals) if pixel else tuple(vals)


def read_label_json(path) -> dict:
    """Read and clean a LLAMAS label file as ``label_file_scripts.read_json`` does.

    Returns ``{"projection_matrix": (3, 3) float64, "lanes": [{"lane_id", "markers": [{"pixel_start": (x, y),
    "pixel_end", "world_start": (x, y, z), "world_end"}]}]}`` with lanes in file order after cleaning:
    lanes whose ``pixel_start`` rows span < 20 px or with < 2 markers are dropped, then names are re-indexed
    per side in sorted (lexicographic) order, e.g. {l0, l2, l3} -> {l0, l1, l2}. Pixel coordinates are
    ``int(float(v))`` (numbers or numeric strings). ValueError names the file and field of bad content.
    """
    path = io.require_file(path, "LLAMAS label file")
    try:
        content = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(content, dict) or "projection_matrix" not in content or "lanes" not in content:
        raise ValueError(f"{path}: expected a JSON object with 'projection_matrix' and 'lanes'")
    try:
        proj = np.array([[_number(v, path, "projection_matrix entry") for v in row]
                         for row in content["projection_matrix"]], dtype=np.float64)
    except TypeError:
        proj = np.zeros(0)
    if proj.shape != (3, 3):
        raise ValueError(f"{path}: projection_matrix must be 3x3, got {content['projection_matrix']!r}")
    if not isinstance(content["lanes"], list):
        raise ValueError(f"{path}: 'lanes' must be a list")
    lanes = []
    for n, lane in enumerate(content["lanes"]):
        if not isinstance(lane, dict) or not isinstance(lane.get("lane_id"), str) \
                or not isinstance(lane.get("markers"), list):
            raise ValueError(f"{path}: lane #{n} needs a string 'lane_id' and a 'markers' list")
        lid = lane["lane_id"]
        if not lid or lid[0] not in "lr":
            raise ValueError(f"{path}: lane_id {lid!r} does not start with 'l' or 'r'")
        markers = []
        for m, mk in enumerate(lane["markers"]):
            where = f"lane {lid} marker #{m}"
            if not isinstance(mk, dict):
                raise ValueError(f"{path}: {where} is not an object")
            markers.append({
                "pixel_start": _point(mk, "pixel_start", "xy", path, where, True),
                "pixel_end": _point(mk, "pixel_end", "xy", path, where, True),
                "world_start": _point(mk, "world_start", "xyz", path, where, False),
                "world_end": _point(mk, "world_end", "xyz", path, where, False),
            })
        lanes.append({"lane_id": lid, "markers": markers})
    # _filter_lanes_by_size, then _filter_few_markers (a lane without markers cannot pass either)
    lanes = [ln for ln in lanes if ln["markers"]]
    lanes = [ln for ln in lanes if max(mk["pixel_start"][1] for mk in ln["markers"])
             - min(mk["pixel_start"][1] for mk in ln["markers"]) >= MIN_LANE_HEIGHT]
    lanes = [ln for ln in lanes if len(ln["markers"]) >= MIN_MARKERS]
    # _fix_lane_names
    mapping, count = {}, {"l": 0, "r": 0}
    for key in sorted(ln["lane_id"] for ln in lanes):
        mapping[key] = f"{key[0]}{count[key[0]]}"
        count[key[0]] += 1
    for ln in lanes:
        ln["lane_id"] = mapping[ln["lane_id"]]
    return {"projection_matrix": proj, "lanes": lanes}


def marker_polygon(proj: np.ndarray, start: tuple, end: tuple, path=None) -> np.ndarray | None:
    """Integer corners of one marker's quadrilateral, or None when the official code skips it.

    Each end is projected with P (u = (P X)_0 / (P X)_2, v likewise), its half-width in pixels is
    P[0][0] * 0.10 / z / 2; corners (u1-hw1, v1), (u1+hw1, v1), (u2+hw2, v2), (u2-hw2, v2) are rounded with
    ``numpy.round``; markers whose rounded start and end rows are equal are skipped.
    """
    corners = []
    for (x, y, z), sign in ((start, (-1, 1)), (end, (1, -1))):
        if z <= 0:
            raise ValueError(f"{path or 'marker'}: world point {(x, y, z)} has depth z <= 0; expected z > 0 "
                             "(metres in front of the camera)")
        u, v, w = proj @ np.array([x, y, z])
        if w == 0:
            raise ValueError(f"{path or 'marker'}: world point {(x, y, z)} projects to infinity")
        hw = proj[0][0] * MARKER_WIDTH_M / z / 2
        corners += [(u / w + sign[0] * hw, v / w), (u / w + sign[1] * hw, v / w)]
    pts = np.round(np.clip(np.array(corners), -_COORD_LIMIT, _COORD_LIMIT)).astype(np.int32)
    if pts[0][1] == pts[2][1]:
        return None
    return pts


def draw_lanes(label: dict, size: tuple[int, int] = SIZE, path=None) -> np.ndarray:
    """The official BGR drawing (uint8 HxWx3) of a cleaned label: every marker filled twice, LINE_AA."""
    w, h = size
    image = np.zeros((h, w, 3), np.uint8)
    proj = label["projection_matrix"]
    for lane in label["lanes"]:
        colour = LANE_COLOURS.get(lane["lane_id"], OTHER_COLOUR)
        for mk in lane["markers"]:
            pts = marker_polygon(proj, mk["world_start"], mk["world_end"], path)
            if pts is None:
                continue
            cv2.fillConvexPoly(image, pts, colour, cv2.LINE_AA, 0)
            cv2.fillConvexPoly(image, pts, colour, cv2.LINE_AA, 0)
    return image


def image_for_label(json_path) -> Path | None:
    """The image of a label by the official convention (last 3 path parts, ``.json`` -> ``_color_rect.png``
    under ``color_images``, else ``_gray_rect.png`` under ``grayscale_images``); None if neither exists."""
    json_path = Path(json_path).absolute()
    if len(json_path.parts) < 5:
        return None
    split, rec, name = json_path.parts[-3:]
    root = json_path.parents[3]
    for folder, suffix in IMAGE_KINDS:
        p = root / folder / split / rec / (name[: -len(".json")] + suffix)
        if p.is_file():
            return p
    return None


def multiclass_label(json_path, size: tuple[int, int] | None = None) -> np.ndarray:
    """uint8 HxW label 0 bg, 1 l1, 2 l0, 3 r0, 4 r1 of a label JSON (official marker-polygon procedure).

    ``size`` (W, H) defaults to the size of the matching image when the tree has it (synthetic trees are
    smaller), else the genuine 1276x717 the official script always uses.
    """
    if size is None:
        img = image_for_label(json_path)
        size = io.image_size(img) if img is not None else SIZE
    drawing = draw_lanes(read_label_json(json_path), size, json_path)
    out = np.zeros(drawing.shape[:2], np.uint8)
    for k, lid in enumerate(LANE_IDS, start=1):  # the lanes' colours are distinct: each pixel gets at most one k
        colour = np.array(LANE_COLOURS[lid], np.uint8)
        out |= cv2.inRange(drawing, colour, colour) & np.uint8(k)  # 255 where exactly that colour
    return out


# ------------------------------------------------------------------------------------------ loader
def _split_dir(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"LLAMAS split {split!r} is not one of {', '.join(SPLITS)}")
    return SPLITS[split]


def _image_folder(root: Path, split: str) -> tuple[Path, str]:
    for folder, suffix in IMAGE_KINDS:
        if (root / folder / split).is_dir():
            return root / folder / split, suffix
    raise FileNotFoundError(f"LLAMAS split {split!r}: expected images under "
                            f"{' or '.join(str(root / f / split) for f, _ in IMAGE_KINDS)}; neither exists")


def read_records(root: Path, split: str) -> list[Record]:
    io.require_dir(root, "LLAMAS root")
    split = _split_dir(split)
    img_dir, suffix = _image_folder(root, split)
    records = []
    if split == "test":  # no public labels: the images define the split
        images = sorted(img_dir.glob(f"*/*{suffix}"))
        if not images:
            raise ValueError(f"LLAMAS split 'test': no <recording>/*{suffix} images under {img_dir}")
        for image in images:
            records.append(Record(image=image, label=None, name=image.relative_to(root).as_posix(),
                                  extra={"key": f"{image.parent.name}/{image.name[: -len(suffix)]}.json"}))
        return records
    label_dir = io.require_dir(root / "labels" / split, f"LLAMAS split {split!r} labels")
    labels = sorted(label_dir.glob("*/*.json"))
    if not labels:
        raise ValueError(f"LLAMAS split {split!r}: no <recording>/*.json label files under {label_dir}")
    for label in labels:
        image = img_dir / label.parent.name / (label.name[: -len(".json")] + suffix)
        if not image.is_file():
            raise FileNotFoundError(f"LLAMAS {split}: image {image} for label {label} does not exist")
        records.append(Record(image=image, label=label, name=image.relative_to(root).as_posix(),
                              extra={"key": f"{label.parent.name}/{label.name}"}))
    return records


class Llamas(SegDataset):
    spec = SPEC
    read_records = staticmethod(read_records)

    def key(self, i: int) -> str:
        """``<recording>/<ts>.json``: the name the official evaluator gives the image's prediction files."""
        return self.records[i].extra["key"]

    def raw_label(self, i: int) -> np.ndarray:
        return multiclass_label(self.label_path(i), self.full_size(i))

    def train_label(self, i: int) -> np.ndarray:
        return self.raw_label(i)

    def restore_prediction(self, i: int, pred_train_ids: np.ndarray) -> np.ndarray:
        """(5, H, W) uint8 maps the evaluator reads (value = probability * 255) at the image's full size.

        ``pred_train_ids``: an (h, w) class map 0..4 (-> binary 0/255 maps, as ENet-SAD-Simple submits) or
        (5, h, w) probabilities in 0..1 (bilinear resize, rounded). Either covers the kept rows; the dropped
        top rows are background (255 in map 0, 0 elsewhere).
        """
        pred = np.asarray(pred_train_ids)
        w, h = self.full_size(i)
        top = self.top_rows(h)
        n = len(CLASSES)
        if pred.ndim == 2:
            if pred.size and (pred.min() < 0 or pred.max() >= n):
                raise ValueError(f"prediction for {self.records[i].image}: classes {pred.min()}..{pred.max()} "
                                 f"outside 0..{n - 1}")
            pred = cv2.resize(pred.astype(np.uint8), (w, h - top), interpolation=cv2.INTER_NEAREST)
            maps = (pred[None] == np.arange(n)[:, None, None]).astype(np.uint8) * 255
        elif pred.ndim == 3 and pred.shape[0] == n:
            p = pred.astype(np.float32).transpose(1, 2, 0)
            p = cv2.resize(p, (w, h - top), interpolation=cv2.INTER_LINEAR).reshape(h - top, w, n)
            maps = np.clip(np.rint(p.astype(np.float64) * 255.0), 0, 255).astype(np.uint8).transpose(2, 0, 1)
        else:
            raise ValueError(f"prediction for {self.records[i].image}: expected (h, w) classes or ({n}, h, w) "
                             f"probabilities, got shape {pred.shape}")
        out = np.zeros((n, h, w), np.uint8)
        out[0, :top] = 255
        out[:, top:] = maps
        return out


def build(root, split: str, *, train: bool = False, input_size=None, crop=None, rotate_deg=None) -> Llamas:
    return Llamas(root, split, train=train, input_size=input_size, crop=crop, rotate_deg=rotate_deg)
