"""Dataset loaders (ApolloScape, CULane, LLAMAS, Cityscapes), shared geometry and the synthetic worlds.

``build_dataset(name, root, split, ...)`` dispatches to ``intrakd.data.<name>.build``.
"""

from __future__ import annotations

import importlib

from intrakd.data.base import Record, SegDataset
from intrakd.data.spec import DATASETS, DatasetSpec, get_spec

__all__ = ["DATASETS", "DatasetSpec", "Record", "SegDataset", "build_dataset", "get_spec"]


def build_dataset(name: str, root, split: str, *, train: bool = False, input_size=None, crop=None,
                  rotate_deg=None) -> SegDataset:
    """The loader of dataset ``name`` for ``split`` of the tree at ``root`` (genuine or synthetic)."""
    get_spec(name)  # ValueError "unknown dataset 'x'; valid: ..."
    module = importlib.import_module(f"intrakd.data.{name}")
    return module.build(root, split, train=train, input_size=input_size, crop=crop, rotate_deg=rotate_deg)


def check_dataset(name: str, root, split: str, *, max_errors: int = 5) -> dict:
    """Read every image and label of a split; summary dict, or ONE ValueError naming the first bad files.

    Summary: {dataset, root, split, images, label_values (raw label values found), class_pixels (per train
    class pixel counts at full size; key "255" = ignore)}.
    """
    import numpy as np

    ds = build_dataset(name, root, split)
    values: set[int] = set()
    counts = np.zeros(256, np.int64)
    errors: list[str] = []
    for i, rec in enumerate(ds.records):
        try:
            image = ds.read_image(i, strict=True)  # a decoder warning is a corrupt image
            if rec.label is None:
                continue
            raw = ds.raw_label(i)
            train = ds.train_label(i)
            if train.shape != image.shape[:2]:
                raise ValueError(f"{rec.label}: label {train.shape[1]}x{train.shape[0]} but image "
                                 f"{image.shape[1]}x{image.shape[0]}")
        except (ValueError, FileNotFoundError) as err:
            errors.append(str(err))
            if len(errors) >= max_errors:
                break
            continue
        values.update(int(v) for v in np.unique(raw))
        counts += np.bincount(train.ravel(), minlength=256)
    if errors:
        more = " (stopped there)" if len(errors) >= max_errors else ""
        raise ValueError(f"{name} {split} at {root}: {len(errors)} bad file(s){more}: " + "; ".join(errors))
    return {
        "dataset": name, "root": str(root), "split": split, "images": len(ds),
        "label_values": sorted(values),
        "class_pixels": {str(k): int(c) for k, c in enumerate(counts) if c},
    }
