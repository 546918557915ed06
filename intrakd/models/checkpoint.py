"""Model weights on disk: a plain dict of tensors and primitives, read back with ``weights_only=True``.

Layout: ``{"format", "name", "num_classes", "width", "exist_head", "kwargs", "state_dict", "meta"}``
(``kwargs``: the model's extra build arguments, its ``build_kwargs`` attribute); ``meta``
must hold only what ``weights_only`` loading accepts (str, int, float, bool, None, lists, dicts, tensors).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from intrakd.models.base import SegModel, build_model

FORMAT = "intrakd-weights/1"


def save_weights(path, model: nn.Module, *, name: str, num_classes: int, width: float, exist_head: bool,
                 meta: dict | None = None) -> Path:
    """Write ``model``'s state dict and build arguments atomically (temp file + ``os.replace``)."""
    path = Path(path)
    if getattr(model, "num_classes", num_classes) != num_classes:
        raise ValueError(f"save_weights: model has {model.num_classes} classes, num_classes={num_classes} given")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    blob = {"format": FORMAT, "name": name, "num_classes": int(num_classes), "width": float(width),
            "exist_head": bool(exist_head), "kwargs": dict(getattr(model, "build_kwargs", {})),
            "state_dict": state, "meta": dict(meta or {})}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(blob, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_weights(path, map_location="cpu") -> dict:
    """The raw checkpoint dict (``weights_only=True``), with its format checked."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # pickle errors, truncated files, forbidden globals
        raise ValueError(f"checkpoint {path} is not a readable intrakd weights file: {err}") from err
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"checkpoint {path} is not an intrakd weights file (expected format {FORMAT!r})")
    return blob


def load_weights(path, *, name: str, num_classes: int, width: float | None = None, exist_head: bool | None = None,
                 map_location="cpu") -> tuple[SegModel, dict]:
    """Rebuild the model saved at ``path`` and load its weights; returns ``(model, meta)``.

    ``name`` and ``num_classes`` must match the checkpoint; ``width``/``exist_head`` default to the
    checkpoint's and must match it when given.
    """
    blob = read_weights(path, map_location)
    wanted = {"name": name, "num_classes": num_classes, "width": width, "exist_head": exist_head}
    for key, value in wanted.items():
        if value is not None and value != blob[key]:
            raise ValueError(
                f"checkpoint {path} holds {key}={blob[key]!r} ({blob['name']}, {blob['num_classes']} classes), "
                f"but {key}={value!r} was requested ({name}, {num_classes} classes)"
            )
    model = build_model(blob["name"], blob["num_classes"], width=blob["width"], exist_head=blob["exist_head"],
                        **blob.get("kwargs", {}))
    model.load_state_dict(blob["state_dict"])
    return model.to(map_location) if isinstance(map_location, (str, torch.device)) else model, blob["meta"]
