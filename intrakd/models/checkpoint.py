"""Model weights on disk: a plain dict of tensors and primitives, read back with ``weights_only=True``.

Layout: ``{"format", "name", "num_classes", "width", "exist_head", "kwargs", "state_dict", "meta"}``
(``kwargs``: the model's extra build arguments, its ``build_kwargs`` attribute); ``meta``
must hold only what ``weights_only`` loading accepts (str, int, float, bool, None, lists, dicts, tensors).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from intrakd import atomic
from intrakd.models.base import SegModel, build_model

FORMAT = "intrakd-weights/1"


def save_weights(path, model: nn.Module, *, name: str, num_classes: int, width: float, exist_head: bool,
                 meta: dict | None = None) -> Path:
    """Write ``model``'s state dict and build arguments atomically and durably (:func:`intrakd.atomic.write_bytes`)."""
    path = Path(path)
    if getattr(model, "num_classes", num_classes) != num_classes:
        raise ValueError(f"save_weights: model has {model.num_classes} classes, num_classes={num_classes} given")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    blob = {"format": FORMAT, "name": name, "num_classes": int(num_classes), "width": float(width),
            "exist_head": bool(exist_head), "kwargs": dict(getattr(model, "build_kwargs", {})),
            "state_dict": state, "meta": dict(meta or {})}
    return atomic.write_bytes(path, atomic.torch_bytes(blob))


def load_trusted(path, map_location="cpu"):
    """``torch.load(path, weights_only=True)``: tensors and primitives only, never arbitrary pickled objects.

    A file that cannot be read that way (truncated, empty, not a torch file, a pickle payload that
    ``weights_only`` refuses) raises ONE ``ValueError`` line naming the file and the reason."""
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except OSError:
        raise
    except Exception as err:  # noqa: BLE001 -- torch reports bad files as RuntimeError, EOFError, UnpicklingError...
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        reason = lines[0] if lines else type(err).__name__
        if path.is_file() and path.stat().st_size == 0:
            reason = "empty file"
        raise ValueError(f"checkpoint {path} is unreadable ({type(err).__name__}: {reason})") from None


def read_weights(path, map_location="cpu") -> dict:
    """The raw checkpoint dict (``weights_only=True``), with its format checked."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    blob = load_trusted(path, map_location)
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
