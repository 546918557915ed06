"""Crash-safe file writes: every sidecar, checkpoint and weights file of intrakd goes through :func:`write_bytes`.

A file is written to a hidden temporary beside it (``.<name>.<random>.tmp``), flushed and fsynced, renamed over
the target with ``os.replace`` and the folder fsynced, so after a crash or ``kill -9`` the target holds either its
old or its new content, never a mixture. On any failure (disk full, read-only folder, an interrupt) the temporary
is removed before the error propagates; a temporary left by ``kill -9`` (which no handler sees) is removed by
:func:`remove_stale_temps`, which the engine calls when a run starts.

An ``OSError`` while writing is re-raised naming the target: ``no space left on device writing PATH``.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

TEMP_SUFFIX = ".tmp"


def _temp_prefix(name: str) -> str:
    return f".{name}."


def fsync_dir(folder: Path | str) -> None:
    """fsync a folder so a rename inside it survives a power cut (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_error(err: OSError, path: Path | str) -> OSError:
    """``err`` restated as one line naming the target: ``no space left on device writing PATH``."""
    if not err.errno:
        return OSError(f"{err} writing {path}")
    return OSError(err.errno, f"{os.strerror(err.errno).lower()} writing {path}")  # the errno's own subclass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_bytes(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and durably (temp file, fsync, rename, fsync of the folder)."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path.name), suffix=TEMP_SUFFIX, dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            _write_all(fh.fileno(), data)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
        fsync_dir(path.parent)
    except OSError as err:
        raise write_error(err, path) from err
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return path


def write_text(path: Path | str, text: str) -> Path:
    return write_bytes(path, text.encode())


def torch_bytes(obj) -> bytes:
    """``torch.save(obj)`` into memory, so the file itself is written by :func:`write_bytes` (whose OSError names
    the file; torch's own writer reports a full disk as a bare ``RuntimeError``)."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def remove_stale_temps(folder: Path | str, names) -> list[Path]:
    """Remove temporaries of :func:`write_bytes` for the files ``names`` in ``folder`` (left there by a killed
    process); returns what was removed."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for name in names:
        for tmp in folder.glob(f"{_temp_prefix(name)}*{TEMP_SUFFIX}"):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


