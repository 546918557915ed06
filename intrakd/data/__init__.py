"""Dataset loaders (ApolloScape, CULane, LLAMAS, Cityscapes), shared geometry and the synthetic worlds.

``build_dataset(name, root, split, ...)`` dispatches to ``intrakd.data.<name>.build`` for a dataset of the registry
:data:`DATASETS` (its :class:`DatasetSpec`; the loader module is imported only when asked for).
"""

from __future__ import annotations

import importlib

from intrakd.data.base import Record, SegDataset
from intrakd.data.spec import DATASETS, DatasetSpec, get_spec

__all__ = ["DATASETS", "DatasetSpec", "Record", "SegDataset", "build_dataset", "get_spec"]


def build_dataset(name: str, root, split: str, *, train: bool = False, input_size=None, crop=None,
                  rotate_deg=None) -> SegDataset:
    """The loader of dataset ``name`` for ``split`` of the tree at ``root`` (genuine or synthetic)."""
    get_spec(name)  # UnknownNameError (a ValueError) "unknown dataset 'x'; valid: ..."
    module = importlib.import_module(f"intrakd.data.{name}")
    return module.build(root, split, train=train, input_size=input_size, crop=crop, rotate_deg=rotate_deg)


#: The splits ``check_dataset`` compares a split with (those a tree lacks are skipped; LLAMAS reads "val" as valid).
SPLIT_NAMES = ("train", "val", "test")


def _sha256(path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def shared_images(name: str, root, split: str, records=None) -> dict:
    """Images of ``split`` that another split of the same tree also holds: {other split: {"same_path": [names of
    images listed by both], "same_content": [[name here, name there], ...] (identical bytes at another path)}},
    only splits that share something; splits the tree lacks are skipped. Contents are hashed (SHA-256) only for
    files whose byte size occurs in both splits, so a clean tree costs one ``stat`` per image."""
    import os

    def files(recs):
        return {os.path.realpath(r.image): r.name for r in recs}

    mine = files(records if records is not None else build_dataset(name, root, split).records)
    by_size: dict[int, list[str]] = {}
    for path in mine:
        by_size.setdefault(os.path.getsize(path), []).append(path)
    digests: dict[str, str] = {}

    def digest(path):
        if path not in digests:
            digests[path] = _sha256(path)
        return digests[path]

    out: dict[str, dict] = {}
    for other in SPLIT_NAMES:
        if other == split or (name == "llamas" and {other, split} <= {"val", "valid"}):
            continue
        try:
            theirs = files(build_dataset(name, root, other).records)
        except (ValueError, FileNotFoundError):  # no such split in this tree (e.g. no test list)
            continue
        same_path = sorted(mine[p] for p in set(mine) & set(theirs))
        same_content = sorted(
            [mine[p], theirs[q]] for q in theirs if q not in mine
            for p in by_size.get(os.path.getsize(q), ()) if digest(p) == digest(q)
        )
        if same_path or same_content:
            out[other] = {"same_path": same_path, "same_content": same_content}
    return out


def shared_images_message(name: str, split: str, shared: dict) -> list[str]:
    """One line per other split that shares images with ``split`` (empty when none does)."""
    lines = []
    for other, found in shared.items():
        n_path, n_content = len(found["same_path"]), len(found["same_content"])
        example = found["same_path"][0] if n_path else " = ".join(found["same_content"][0])
        lines.append(f"{name} {split} shares {n_path + n_content} image(s) with split {other!r} ({n_path} at the same "
                     f"path, {n_content} with identical bytes at another path; e.g. {example}): an image scored in "
                     f"one split must not be trained on in another")
    return lines


def check_dataset(name: str, root, split: str, *, max_errors: int = 5) -> dict:
    """Read every image and label of a split; summary dict, or ONE ValueError naming the first bad files.

    Summary: {dataset, root, split, images, label_values (raw label values found), class_pixels (per train
    class pixel counts at full size; key "255" = ignore), shared_images (:func:`shared_images`: the images this
    split shares with another split of the tree, by path and by content; empty when none)}.
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
        "shared_images": shared_images(name, root, split, ds.records),
    }
