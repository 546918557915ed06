"""Geometry and normalisation shared by all four loaders (one implementation of each recipe step).

Order, as in the IntRA-KD / ERFNet-CULane recipes: drop the top rows -> resize to the network input
(image INTER_LINEAR, label INTER_NEAREST) -> [train: random rescale -> random crop (pad image with the mean,
label with ignore) -> random rotation with probability 0.5 (same padding) -> optional hflip] -> normalise.
Randomness is drawn from the ``rng`` generator passed in (the engine gives every training item its own, seeded by
the epoch and the item's index: see ``SegDataset.set_augment_seed``), or from torch's global RNG without one.
"""

from __future__ import annotations

import cv2
import numpy as np

# torch is imported inside the functions that draw random numbers or build tensors, so that the label and geometry
# helpers (used by the evaluators and ``intrakd data check``) load without the training stack.


def round8(v: float) -> int:
    """Nearest multiple of 8 (at least 8): the strides of the networks need it."""
    return max(8, int(round(v / 8.0)) * 8)


def scale_top(crop_top: int, genuine_h: int, h: int) -> int:
    """Rows to drop from an image of height ``h`` when ``crop_top`` rows are dropped at ``genuine_h``."""
    return int(round(crop_top * h / genuine_h))


def resize_pair(image: np.ndarray, label: np.ndarray | None, size: tuple[int, int]):
    """Resize to (W, H): image bilinear, label nearest (no-op when already that size)."""
    w, h = size
    if image.shape[1] != w or image.shape[0] != h:
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    if label is not None and (label.shape[1] != w or label.shape[0] != h):
        label = cv2.resize(label, (w, h), interpolation=cv2.INTER_NEAREST)
    return image, label


def _uniform(lo: float, hi: float, rng: torch.Generator | None = None) -> float:
    import torch

    return lo + (hi - lo) * float(torch.rand((), generator=rng))


def _randint(n: int, rng: torch.Generator | None = None) -> int:
    import torch

    return int(torch.randint(n, (), generator=rng)) if n > 0 else 0


def random_crop(image, label, crop: tuple[int, int], pad_image, ignore_index: int, rng=None):
    """Random (W, H) crop; images smaller than the crop are padded (bottom/right) first."""
    cw, ch = crop
    h, w = label.shape
    if h < ch or w < cw:
        image = cv2.copyMakeBorder(image, 0, max(0, ch - h), 0, max(0, cw - w), cv2.BORDER_CONSTANT, value=pad_image)
        label = cv2.copyMakeBorder(label, 0, max(0, ch - h), 0, max(0, cw - w), cv2.BORDER_CONSTANT,
                                   value=ignore_index)
        h, w = label.shape
    y, x = _randint(h - ch + 1, rng), _randint(w - cw + 1, rng)
    return image[y : y + ch, x : x + cw], label[y : y + ch, x : x + cw]


def rotate(image, label, angle: float, pad_image, ignore_index: int):
    """Rotate about the centre by ``angle`` degrees; image pad = mean colour, label pad = ignore."""
    h, w = label.shape
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
    image = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                           borderValue=pad_image)
    label = cv2.warpAffine(label, m, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                           borderValue=ignore_index)
    return image, label


def train_augment(image, label, *, crop, scale=(1.0, 1.0), rotate_deg=0.0, hflip=False, pad_image=(0, 0, 0),
                  ignore_index=255, rng: torch.Generator | None = None):
    """The training half of the recipe on an already resized pair; output is exactly ``crop`` (W, H).
    ``rng``: the generator every random draw comes from (torch's global one when None)."""
    import torch

    pad_image = tuple(float(v) for v in pad_image)
    lo, hi = scale
    if hi > lo or lo != 1.0:
        s = _uniform(lo, hi, rng)
        h, w = label.shape
        image, label = resize_pair(image, label, (max(1, int(round(w * s))), max(1, int(round(h * s)))))
    image, label = random_crop(image, label, crop, pad_image, ignore_index, rng)
    if rotate_deg and float(torch.rand((), generator=rng)) < 0.5:
        image, label = rotate(image, label, _uniform(-rotate_deg, rotate_deg, rng), pad_image, ignore_index)
    if hflip and float(torch.rand((), generator=rng)) < 0.5:
        image, label = image[:, ::-1], label[:, ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(label)


def normalise(image_bgr: np.ndarray, mean, std, channel_order: str = "BGR") -> torch.Tensor:
    """float32 CHW tensor (pixel - mean) / std, channels in ``channel_order``."""
    import torch

    img = image_bgr if channel_order == "BGR" else image_bgr[..., ::-1]
    img = img.astype(np.float32)
    img -= np.asarray(mean, np.float32)
    std = np.asarray(std, np.float32)
    if not np.all(std == 1.0):
        img /= std
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


def paste_rows(pred: np.ndarray, size: tuple[int, int], top: int, fill: int = 0) -> np.ndarray:
    """Nearest-resize ``pred`` to the kept rows of a (W, H) image and paste it below ``top`` rows of ``fill``."""
    w, h = size
    pred = np.asarray(pred)
    if pred.shape != (h - top, w):
        pred = cv2.resize(pred, (w, h - top), interpolation=cv2.INTER_NEAREST)
    out = np.full((h, w), fill, dtype=pred.dtype)
    out[top:] = pred
    return out
