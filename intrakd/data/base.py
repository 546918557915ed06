"""Dataset base class: records, geometry bookkeeping and the item pipeline shared by all four loaders.

A subclass builds ``records`` and implements the four format hooks (``read_image``, ``raw_label``,
``train_label``, ``restore_prediction``); everything geometric lives in :mod:`intrakd.data.transforms`.
Loaders only read: nothing is ever written inside a dataset root (its mtime is a Snakemake input).
``SegDataset`` is a map-style dataset (``__len__`` / ``__getitem__``, all a torch ``DataLoader`` needs) that
imports torch only when it builds items, so reading images and labels (the evaluators, ``intrakd data check``)
needs no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from intrakd.data import io, transforms
from intrakd.data.spec import DatasetSpec


@dataclass
class Record:
    image: Path
    label: Path | None
    name: str  # path of the image relative to the root (stable id used in outputs)
    exist: tuple | None = None
    extra: dict = field(default_factory=dict)


class SegDataset:
    """Segmentation items ``{image, label, exist, index, name}`` at the network input size.

    ``orig_size`` is the (W, H) of the images of this tree (genuine size, or the generated size of a synthetic
    tree); ``crop_top`` the rows dropped at that size; ``input_size`` the network input (default: the paper's
    input scaled to this tree, multiples of 8); ``crop`` the training crop (default: the paper's crop/input
    ratio applied to ``input_size``; the input size itself when the recipe has no crop).
    """

    #: set by each dataset's class: its spec and the reader of a split's records (``read_records(root, split)``)
    spec: DatasetSpec
    read_records: Callable[[Path, str], list[Record]]

    def __init__(self, root, split: str, *, train: bool = False, input_size=None, crop=None, rotate_deg=None,
                 orig_size=None):
        spec = self.spec
        records = type(self).read_records(Path(root), split)
        if not records:
            raise ValueError(f"{spec.name} split {split!r} under {root} has no samples")
        self.root = Path(root)
        self.split = split
        self.records = records
        self.train = bool(train)
        gw, gh = spec.genuine_size
        self.orig_size = tuple(int(v) for v in (orig_size or io.tree_size(self.root, spec.genuine_size)))
        w, h = self.orig_size
        self.crop_top = transforms.scale_top(spec.crop_top, gh, h)
        if input_size is None:
            pw, ph = spec.paper_input_size
            input_size = (transforms.round8(pw * w / gw), transforms.round8(ph * w / gw))
        self.input_size = _size("input_size", input_size)
        if crop is None:
            if spec.paper_train_crop is None:
                crop = self.input_size
            else:
                (cw, ch), (pw, ph) = spec.paper_train_crop, spec.paper_input_size
                crop = (min(self.input_size[0], transforms.round8(self.input_size[0] * cw / pw)),
                        min(self.input_size[1], transforms.round8(self.input_size[1] * ch / ph)))
        self.crop = _size("crop", crop)
        self.rotate_deg = float(spec.rotate_deg if rotate_deg is None else rotate_deg)
        mean = spec.mean if spec.channel_order == "BGR" else spec.mean[::-1]
        self._pad_bgr = tuple(float(v) for v in mean)
        self.augment_seed: int | None = None

    def set_augment_seed(self, seed: int | None) -> None:
        """Draw item ``i``'s training augmentation from a generator seeded by (``seed``, ``i``) alone (None: torch's
        global RNG). The engine sets one seed per epoch, so what an item looks like in an epoch depends on the run's
        seed, the epoch and the item, never on what else consumed random numbers (a method's own draws, the loader's
        worker count, the process rank): runs of one seed with different methods see the same data."""
        self.augment_seed = None if seed is None else int(seed)

    def _augment_rng(self, i: int) -> torch.Generator | None:
        if self.augment_seed is None:
            return None
        import torch

        mixed = np.random.SeedSequence([self.augment_seed, int(i)]).generate_state(1, np.uint64)[0]
        return torch.Generator().manual_seed(int(mixed) & 0x7FFF_FFFF_FFFF_FFFF)

    # ------------------------------------------------------------------ format hooks
    def label_path(self, i: int) -> Path:
        """The label file of record ``i``; one clear error for an unlabelled split (e.g. a private test split)."""
        rec = self.records[i]
        if rec.label is None:
            raise ValueError(f"{self.spec.name} split {self.split!r} has no label for {rec.image}")
        return rec.label

    def read_image(self, i: int, *, strict: bool = False) -> np.ndarray:
        """uint8 HxWx3 BGR image of record ``i`` at full tree size (``strict``: see :func:`io.read_image`)."""
        return io.read_image(self.records[i].image, strict=strict)

    def raw_label(self, i: int) -> np.ndarray:
        """Ground truth in the genuine label space (what the official evaluator reads), full size."""
        raise NotImplementedError

    def train_label(self, i: int) -> np.ndarray:
        """uint8 train ids (ignore = spec.ignore_index) at full tree size."""
        raise NotImplementedError

    def restore_prediction(self, i: int, pred_train_ids: np.ndarray) -> np.ndarray:
        """A train-id prediction (any size of the kept rows) in the raw_label space at full size."""
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers for subclasses
    def top_rows(self, h: int) -> int:
        """Rows dropped from an image of height ``h`` (``crop_top`` unless the image has another size)."""
        if h == self.orig_size[1]:
            return self.crop_top
        return transforms.scale_top(self.spec.crop_top, self.spec.genuine_size[1], h)

    def full_size(self, i: int) -> tuple[int, int]:
        """(W, H) of record ``i``'s image, from its header."""
        return io.image_size(self.records[i].image)

    def _exist(self, i: int, label: np.ndarray) -> torch.Tensor:
        import torch

        if not self.spec.has_exist:
            return torch.zeros(0, dtype=torch.float32)
        flags = self.records[i].exist
        if flags is None:  # derive from the label: slot k present iff it has pixels
            flags = [bool((label == k).any()) for k in range(1, self.spec.num_lanes + 1)]
        return torch.tensor([float(f) for f in flags], dtype=torch.float32)

    # ------------------------------------------------------------------ Dataset API
    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict:
        import torch

        rec = self.records[i]
        image = self.read_image(i)
        if rec.label is not None:
            label = self.train_label(i)
            if label.shape != image.shape[:2]:
                raise ValueError(
                    f"{rec.label}: label size {label.shape[1]}x{label.shape[0]} differs from image "
                    f"{rec.image} ({image.shape[1]}x{image.shape[0]})"
                )
        else:  # unlabelled split (test): everything ignored
            label = np.full(image.shape[:2], self.spec.ignore_index, np.uint8)
        exist = self._exist(i, label)
        top = self.top_rows(image.shape[0])
        image, label = transforms.resize_pair(image[top:], label[top:], self.input_size)
        if self.train:
            image, label = transforms.train_augment(
                image, label, crop=self.crop, scale=self.spec.train_scale, rotate_deg=self.rotate_deg,
                hflip=self.spec.hflip, pad_image=self._pad_bgr, ignore_index=self.spec.ignore_index,
                rng=self._augment_rng(i),
            )
        return {
            "image": transforms.normalise(image, self.spec.mean, self.spec.std, self.spec.channel_order),
            "label": torch.from_numpy(label.astype(np.int64)),
            "exist": exist,
            "index": i,
            "name": rec.name,
        }

    def eval_image(self, i: int, size: tuple[int, int]):
        """Record ``i``'s image as the network sees it at evaluation, its kept rows resized to ``size`` (W, H)
        rather than ``input_size`` (the scales of a multi-scale test): a float32 C x H x W tensor."""
        image = self.read_image(i)
        image, _ = transforms.resize_pair(image[self.top_rows(image.shape[0]):], None, _size("size", size))
        return transforms.normalise(image, self.spec.mean, self.spec.std, self.spec.channel_order)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, n={len(self)}, "
                f"train={self.train}, input_size={self.input_size}, crop={self.crop})")


def _size(what: str, value) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be (W, H) positive integers, got {value!r}") from None
    if w <= 0 or h <= 0:
        raise ValueError(f"{what} must be (W, H) positive integers, got {value!r}")
    return (w, h)
