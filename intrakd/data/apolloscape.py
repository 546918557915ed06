"""ApolloScape lane-mark segmentation (datasets_metrics.md §3, intrakd_method.md §2.3/§5.1).

Tree layout (dataset-api ``lane_segmentation/README.md``) plus IntRA-KD-style list files::

    ColorImage_road0X/ColorImage/Record0XX/Camera 5/<ts>_Camera_5.jpg
    Labels_road0X/Label/Record0XX/Camera 5/<ts>_Camera_5_bin.png
    list/train.txt, list/val.txt      '<image> <label>' relative to the root (paths may contain spaces)
    list/test_img.txt                 '<image> [dummy label]' (road05; labels are held by the server)

Labels: pixel value = label ID (palette PNGs, read by index) or table colours (RGB PNGs, decoded by colour).
Training classes: 37 = trainIds 0..35 + 36 for noise (249) and ignored (255) merged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from intrakd.data import io
from intrakd.data.base import Record, SegDataset
from intrakd.data.spec import DATASETS
from intrakd.data.transforms import paste_rows, round8
from intrakd.labels import APOLLO_ID_TO_TRAIN, APOLLO_LABELS, APOLLO_NUM_CLASSES, APOLLO_TRAIN_TO_ID

SPEC = DATASETS["apolloscape"]
LIST_FILES = {"train": "list/train.txt", "val": "list/val.txt", "test": "list/test_img.txt"}
VALID_IDS = np.array(sorted(lab.id for lab in APOLLO_LABELS), dtype=np.int64)

_TRAIN_LUT = np.where(APOLLO_ID_TO_TRAIN < 0, 255, APOLLO_ID_TO_TRAIN).astype(np.uint8)  # 255 = not in table
_COLOUR_KEYS = np.array([(r << 16) | (g << 8) | b for r, g, b in (lab.color for lab in APOLLO_LABELS)], np.int64)
_ORDER = np.argsort(_COLOUR_KEYS)
_SORTED_KEYS = _COLOUR_KEYS[_ORDER]
_SORTED_IDS = np.array([lab.id for lab in APOLLO_LABELS], np.uint8)[_ORDER]


def _ids_from_colours(rgb: np.ndarray, path) -> np.ndarray:
    key = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    pos = np.clip(np.searchsorted(_SORTED_KEYS, key), 0, len(_SORTED_KEYS) - 1)
    bad = _SORTED_KEYS[pos] != key
    if bad.any():
        y, x = (int(v[0]) for v in np.nonzero(bad))
        colour = tuple(int(c) for c in rgb[y, x])
        raise ValueError(
            f"{path}: colour {colour} (RGB) at x={x}, y={y} is not an ApolloScape table colour "
            f"({int(bad.sum())} such pixels); expected palette indices or the colours of intrakd.labels.APOLLO_LABELS"
        )
    return _SORTED_IDS[pos]


def decode_label_ids(path) -> np.ndarray:
    """uint8 HxW label IDs of an ApolloScape ``_bin.png``.

    Palette ('P') and greyscale PNGs: the pixel indices are the IDs (the embedded palette is ignored: in the
    official sample it is a visualisation palette). RGB(A) PNGs: table colours decoded to IDs. Unknown colours
    or IDs outside the table raise ValueError naming the file.
    """
    im = io.open_label_image(path)
    if im.mode in ("P", "L"):
        ids = np.asarray(im, dtype=np.uint8)
    elif im.mode in ("RGB", "RGBA"):
        ids = _ids_from_colours(np.asarray(im.convert("RGB")), path)
    else:
        raise ValueError(f"{path}: unsupported label PNG mode {im.mode!r}; expected 8-bit palette/grey or RGB")
    io.check_values(ids, VALID_IDS, path, "ApolloScape label ID")
    return ids


def ids_to_train(ids: np.ndarray, path=None) -> np.ndarray:
    """Label IDs -> IntRA-KD training classes 0..36 (uint8); noise 249 and ignored 255 both become 36."""
    ids = np.asarray(ids)
    if ids.dtype != np.uint8:
        if ids.size and (ids.min() < 0 or ids.max() > 255):
            raise ValueError(f"{path or 'label'}: ApolloScape IDs must be 0..255, got {ids.min()}..{ids.max()}")
        ids = ids.astype(np.uint8)
    out = cv2.LUT(ids, _TRAIN_LUT) if ids.ndim == 2 else _TRAIN_LUT[ids]
    if (out == 255).any():
        io.check_values(ids, VALID_IDS, path or "label", "ApolloScape label ID")
    return out


def train_to_ids(pred: np.ndarray, path=None) -> np.ndarray:
    """Training classes 0..36 -> submission label IDs (36 -> noise 249, as the official submission script)."""
    pred = np.asarray(pred)
    if pred.size and (pred.min() < 0 or pred.max() >= APOLLO_NUM_CLASSES):
        bad = np.unique(pred[(pred < 0) | (pred >= APOLLO_NUM_CLASSES)])
        raise ValueError(f"{path or 'prediction'}: train ids {bad.tolist()[:10]} outside 0..{APOLLO_NUM_CLASSES - 1}")
    return APOLLO_TRAIN_TO_ID[pred.astype(np.int64)]


def read_records(root: Path, split: str) -> list[Record]:
    """Records of ``split`` from the list file; ValueError naming the list line of any missing file."""
    io.require_dir(root, "ApolloScape root")
    rel = LIST_FILES.get(split, f"list/{split}.txt")
    lst = root / rel
    if not lst.is_file():
        have = sorted(p.name for p in (root / "list").glob("*.txt")) if (root / "list").is_dir() else []
        raise FileNotFoundError(
            f"ApolloScape split {split!r}: expected the list file {lst} ('<ColorImage_road0X/...jpg> "
            f"<Labels_road0X/..._bin.png>' per line); found list files {have or 'none'}"
        )
    labelled = split != "test"  # test_img.txt carries a dummy label column (reference §3.1)
    records = []
    for e in io.read_list(lst, need_label=labelled):
        image, label = io.listed_paths(root, lst, e, labelled)
        records.append(Record(image=image, label=label, name=e.image.lstrip("/")))
    return records


class ApolloScape(SegDataset):
    spec = SPEC
    read_records = staticmethod(read_records)

    def raw_label(self, i: int) -> np.ndarray:
        return decode_label_ids(self.label_path(i))

    def train_label(self, i: int) -> np.ndarray:
        return ids_to_train(self.raw_label(i), self.records[i].label)

    def restore_prediction(self, i: int, pred_train_ids: np.ndarray) -> np.ndarray:
        """Submission geometry: IDs nearest-resized into the kept rows of a void full-size image."""
        w, h = self.full_size(i)
        ids = train_to_ids(pred_train_ids, self.records[i].image)
        return paste_rows(ids, (w, h), self.top_rows(h), fill=0)


#: ``eval_scales`` values: one scale at the input size (default), the official test script as released, or with
#: all four scales added.
EVAL_SCALES = ("single", "official", "all")
#: The official multi-scale test (Codes-for-IntRA-KD ``test_{erfnet,pspnet}_multi_scale.py``; intrakd_method.md
#: §5.1): the kept rows (3384 x 1010) resized to these (W, H) (x0.5, 0.55, 0.48, 0.6); at each, 4 corner crops of
#: ``test_size x test_size/3`` whose raw logits are summed and divided by the per-pixel crop coverage.
TEST_SCALES = ((1692, 505), (1861, 556), (1624, 485), (2030, 606))
#: test_size x test_size/3 per script (ERFNet 1440, PSPNet 1410); the other students take ERFNet's.
TEST_CROPS = {"erfnet": (1440, 480), "pspnet_r101": (1410, 470)}
#: The scales whose averaged logits are summed (bilinearly resized to scale 0's size): the released script computes
#: scale 0 but never adds it (its ``if cnt > 0``), so "official" sums scales 1-3; "all" sums the four.
USED_SCALES = {"official": (1, 2, 3), "all": (0, 1, 2, 3)}


@dataclass(frozen=True)
class MultiScaleTest:
    """A multi-scale test's geometry on one tree: ``sizes`` (W, H) of every scale (scale 0 = the network input
    size), the (W, H) ``crop`` taken at the 4 corners of each, and the ``used`` scales whose logits are summed."""

    sizes: tuple
    crop: tuple
    used: tuple


def multiscale_test(input_size, model: str, mode: str) -> MultiScaleTest | None:
    """The official 4-scale test scaled to a tree whose network input is ``input_size`` (the genuine 1692 x 505
    gives the script's sizes exactly); None for ``mode`` "single". Crops are rounded to multiples of 8 (the
    networks' strides: PSPNet's 1410 x 470 becomes 1408 x 472) and kept inside the smallest scale."""
    if mode not in EVAL_SCALES:
        raise ValueError(f"eval_scales {mode!r}: expected one of {', '.join(EVAL_SCALES)}")
    if mode == "single":
        return None
    (w0, h0), (pw, ph) = (int(v) for v in input_size), TEST_SCALES[0]
    sizes = tuple((int(round(w0 * w / pw)), int(round(h0 * h / ph))) for w, h in TEST_SCALES)
    cw, ch = TEST_CROPS.get(model, TEST_CROPS["erfnet"])
    crop = (min(round8(w0 * cw / pw), min(w for w, _ in sizes) // 8 * 8),
            min(round8(h0 * ch / ph), min(h for _, h in sizes) // 8 * 8))
    if min(crop) < 8 or any(2 * c < max(s[k] for s in sizes) for k, c in enumerate(crop)):
        raise ValueError(f"input_size {tuple(input_size)} is too small for the multi-scale test (crop {crop} must be "
                         f"at least 8 and cover every scale {sizes} with its 4 corners)")
    return MultiScaleTest(sizes, crop, USED_SCALES[mode])


def build(root, split: str, *, train: bool = False, input_size=None, crop=None, rotate_deg=None) -> ApolloScape:
    return ApolloScape(root, split, train=train, input_size=input_size, crop=crop, rotate_deg=rotate_deg)
