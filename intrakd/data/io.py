"""Shared readers for all dataset loaders: images (with corrupt/truncated detection), list files, tree metadata.

Every failure raises ONE clear error naming the file and what was expected: FileNotFoundError for missing
files/folders, ValueError for content that cannot be used.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

#: Written by ``intrakd synth`` at the root of every generated tree (complete trees only; see synth.generate).
SYNTH_MARKER = "intrakd_synth.json"

_IMAGE_EXT = r"\.(?:jpg|jpeg|png|bmp)"
# "<img> [<label>] [flags...]": paths may contain spaces (ApolloScape's "Camera 5"), so a path ends at its
# image extension rather than at the first blank.
_LIST_LINE = re.compile(
    rf"^\s*(?P<image>.+?{_IMAGE_EXT})(?:\s+(?P<label>.+?{_IMAGE_EXT}))?(?P<flags>(?:\s+[-+0-9.]+)*)\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ListEntry:
    line: int  # 1-based line number in the list file
    image: str  # as written in the list (leading '/' kept)
    label: str | None
    flags: tuple[int, ...] | None


def require_dir(path: Path | str, what: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{what}: expected a folder at {path}, which does not exist")
    return path


def require_file(path: Path | str, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what}: expected a file at {path}, which does not exist")
    return path


def resolve(root: Path, rel: str) -> Path:
    """A list-file path (CULane style may start with '/') resolved against the dataset root."""
    return Path(root) / rel.lstrip("/").removeprefix("./")


def listed_paths(root: Path, lst: Path, entry: ListEntry, labelled: bool = True) -> tuple[Path, Path | None]:
    """(image, label or None) of a list-file entry resolved under ``root``; ValueError naming the list line when an
    entry leads outside ``root`` (``../``), FileNotFoundError naming the list line and the file when either is
    missing. The check is lexical, so symbolic links inside the tree (an image folder on another disk) stay valid."""
    image = resolve(root, entry.image)
    label = resolve(root, entry.label) if labelled and entry.label is not None else None
    inside = os.path.normpath(root)
    for what, p in (("image", image), ("label", label)):
        if p is not None and os.path.commonpath([inside, os.path.normpath(p)]) != inside:
            raise ValueError(f"{lst}:{entry.line}: {what} {getattr(entry, what)!r} leads outside the dataset root "
                             f"{root}; expected a path inside it")
    for what, p in (("image", image), ("label", label)):
        if p is not None and not p.is_file():
            raise FileNotFoundError(f"{lst}:{entry.line}: {what} {p} does not exist")
    return image, label


def read_list(path: Path | str, *, need_label: bool = False, num_flags: int | None = None) -> list[ListEntry]:
    """Parse a ``<img> [<label>] [flags...]`` list file; blank lines are skipped.

    ValueError names the file and line when a line does not parse, a label is required but absent, or the
    number of flags differs from ``num_flags``; an empty list is an error too.
    """
    path = require_file(path, "list file")
    entries = []
    for k, raw in enumerate(path.read_text().splitlines(), start=1):
        if not raw.strip():
            continue
        m = _LIST_LINE.match(raw)
        if m is None:
            raise ValueError(f"{path}:{k}: cannot parse {raw!r}; expected '<image> [<label>] [flags]'")
        try:  # integer flags only: "0.7" or "." must not silently become 0
            flags = tuple(int(f) for f in m["flags"].split()) or None
        except ValueError:
            raise ValueError(f"{path}:{k}: flags {m['flags'].split()} in {raw!r} must be integers") from None
        if need_label and m["label"] is None:
            raise ValueError(f"{path}:{k}: no label path in {raw!r}; expected '<image> <label>'")
        if num_flags is not None and flags is not None and len(flags) != num_flags:
            raise ValueError(f"{path}:{k}: {len(flags)} flags in {raw!r}; expected {num_flags}")
        entries.append(ListEntry(k, m["image"], m["label"], flags))
    if not entries:
        raise ValueError(f"list file {path} is empty; expected one '<image> [<label>]' line per sample")
    return entries


def _check_trailer(path: Path, data: bytes) -> None:
    tail = data[-64:]
    suffix = path.suffix.lower()
    if suffix in (".jpg", ".jpeg") and b"\xff\xd9" not in tail:
        raise ValueError(f"image {path} is truncated (no JPEG end-of-image marker)")
    if suffix == ".png" and b"IEND" not in tail:
        raise ValueError(f"image {path} is truncated (no PNG IEND chunk)")


@contextlib.contextmanager
def _decoder_messages():
    """Collect what C decoders print on file descriptor 2 meanwhile (libjpeg's "Corrupt JPEG data: ..." warnings,
    which OpenCV neither raises nor returns); the list holds that text after the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    messages: list[str] = []
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield messages
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            messages.append(sink.read().decode(errors="replace").strip())


def read_image(path: Path | str, *, strict: bool = False) -> np.ndarray:
    """uint8 HxWx3 BGR image; FileNotFoundError if missing, ValueError if corrupt or truncated. ``strict`` (what
    ``data check`` uses): a decoder warning (corrupt JPEG data the decoder patched over) is a ValueError too."""
    path = require_file(path, "image")
    data = path.read_bytes()
    _check_trailer(path, data)
    if strict:
        with _decoder_messages() as messages:
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        warning = " ".join(messages[0].split())
        if warning and img is not None:
            raise ValueError(f"image {path} is corrupt (the decoder warned: {warning})")
    else:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"image {path} cannot be decoded (corrupt, truncated or not an image)")
    return img


def open_label_image(path: Path | str) -> Image.Image:
    """A fully loaded PIL image (labels: palette indices must be read with PIL, not cv2)."""
    path = require_file(path, "label image")
    try:
        im = Image.open(path)
        im.load()
    except (OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"label image {path} cannot be decoded ({err})") from None
    return im


def image_size(path: Path | str) -> tuple[int, int]:
    """(W, H) from the file header only."""
    path = require_file(path, "image")
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, SyntaxError) as err:
        raise ValueError(f"image {path} cannot be read ({err})") from None


def check_values(values: np.ndarray, valid: np.ndarray, path: Path | str, what: str) -> None:
    """ValueError naming ``path`` and the offending values when ``values`` holds entries outside ``valid``."""
    values = np.asarray(values)
    if values.dtype == np.uint8:  # fast path for 8-bit labels: a histogram instead of a sort
        flat = np.ascontiguousarray(values.reshape(1, -1))
        hist = cv2.calcHist([flat], [0], None, [256], [0, 256])
        present = np.flatnonzero(hist.ravel())
    else:
        present = np.unique(values)
    bad = present[~np.isin(present, valid)]
    if bad.size:
        raise ValueError(
            f"{path}: {what} value(s) {bad.tolist()[:10]} not in the label table; expected a subset of "
            f"{sorted(np.asarray(valid).tolist())}"
        )


def read_synth_marker(root: Path | str) -> dict | None:
    """The metadata ``intrakd synth`` wrote at ``root`` (dataset, size, num, seed), or None for other trees."""
    marker = Path(root) / SYNTH_MARKER
    if not marker.is_file():
        return None
    try:
        meta = json.loads(marker.read_text())
        meta["size"] = tuple(int(v) for v in meta["size"])
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{marker}: unreadable synthetic-tree metadata ({err})") from None
    return meta


def tree_size(root: Path | str, genuine_size: tuple[int, int]) -> tuple[int, int]:
    """(W, H) of the images of a tree: the generated size for synthetic trees, else the genuine size."""
    meta = read_synth_marker(root)
    return tuple(meta["size"]) if meta else tuple(genuine_size)
