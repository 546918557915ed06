"""Cityscapes semantic segmentation (datasets_metrics.md §4; IntRA-KD supplementary §6).

Tree layout (cityscapesScripts README)::

    leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png       8-bit RGB, 2048x1024
    gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png         8-bit label IDs 0..33

Labels: label IDs (greyscale, or palette PNGs read by index) -> 19 trainIds, everything else 255 (ignore),
with the table of :mod:`intrakd.labels`. Predictions are restored to label IDs at full size, which is what
``evalPixelLevelSemanticLabeling`` reads. The ``test`` split may lack labels (its GT is private).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from intrakd.data import io
from intrakd.data.base import Record, SegDataset
from intrakd.data.spec import DATASETS
from intrakd.data.transforms import paste_rows
from intrakd.labels import CITYSCAPES_ID_TO_TRAIN, CITYSCAPES_LABELS
from intrakd.metrics.writers import cityscapes_label_ids

SPEC = DATASETS["cityscapes"]
SPLITS = ("train", "val", "test")
IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"
VALID_IDS = np.array(sorted(lab.id for lab in CITYSCAPES_LABELS if lab.id >= 0), dtype=np.int64)


def read_label_ids(path) -> np.ndarray:
    """uint8 HxW label IDs of a ``*_labelIds.png`` (mode L, or mode P read by palette index).

    ValueError naming the file and the offending values (e.g. ``[40]``) for IDs outside the table, or for a
    PNG that is not single-channel; FileNotFoundError when the file is missing.
    """
    im = io.open_label_image(path)
    if im.mode not in ("L", "P"):
        raise ValueError(f"{path}: unsupported label PNG mode {im.mode!r}; expected 8-bit greyscale (L) or "
                         "palette (P) label IDs")
    ids = np.asarray(im, dtype=np.uint8)
    io.check_values(ids, VALID_IDS, path, "Cityscapes label ID")
    return ids


def ids_to_train(ids: np.ndarray, path=None) -> np.ndarray:
    """Label IDs -> uint8 trainIds 0..18, 255 for ignored IDs; ValueError for IDs outside the table."""
    ids = np.asarray(ids)
    if ids.size and (ids.min() < 0 or ids.max() > 255):
        raise ValueError(f"{path or 'label'}: Cityscapes label IDs must be 0..255, got {ids.min()}..{ids.max()}")
    out = CITYSCAPES_ID_TO_TRAIN[ids.astype(np.int64)]
    if (out < 0).any():
        io.check_values(ids, VALID_IDS, path or "label", "Cityscapes label ID")
    return out.astype(np.uint8)


def label_path(root: Path, image: Path) -> Path:
    """The ``gtFine`` labelIds file of a ``leftImg8bit`` image."""
    rel = image.relative_to(root / "leftImg8bit")
    return root / "gtFine" / rel.parent / (rel.name[: -len(IMAGE_SUFFIX)] + LABEL_SUFFIX)


def read_records(root: Path, split: str) -> list[Record]:
    io.require_dir(root, "Cityscapes root")
    if split not in SPLITS:
        raise ValueError(f"Cityscapes split {split!r} is not one of {', '.join(SPLITS)}")
    img_dir = io.require_dir(root / "leftImg8bit" / split, f"Cityscapes split {split!r} images")
    images = sorted(img_dir.glob(f"*/*{IMAGE_SUFFIX}"))
    if not images:
        raise ValueError(f"Cityscapes split {split!r}: no <city>/*{IMAGE_SUFFIX} files under {img_dir}")
    records = []
    for image in images:
        label = label_path(root, image)
        if not label.is_file():
            if split != "test":  # the test GT is private; train/val must be labelled
                raise FileNotFoundError(f"Cityscapes {split}: label {label} for image {image} does not exist")
            label = None
        records.append(Record(image=image, label=label, name=image.relative_to(root).as_posix()))
    return records


class Cityscapes(SegDataset):
    spec = SPEC
    read_records = staticmethod(read_records)

    def raw_label(self, i: int) -> np.ndarray:
        return read_label_ids(self.label_path(i))

    def train_label(self, i: int) -> np.ndarray:
        return ids_to_train(self.raw_label(i), self.records[i].label)

    def restore_prediction(self, i: int, pred_train_ids: np.ndarray) -> np.ndarray:
        """trainIds (any size) -> uint8 label IDs at the image's full size (nearest resize)."""
        w, h = self.full_size(i)
        ids = cityscapes_label_ids(np.asarray(pred_train_ids).astype(np.int64)).astype(np.uint8)
        return paste_rows(ids, (w, h), 0)


def build(root, split: str, *, train: bool = False, input_size=None, crop=None, rotate_deg=None) -> Cityscapes:
    return Cityscapes(root, split, train=train, input_size=input_size, crop=crop, rotate_deg=rotate_deg)
