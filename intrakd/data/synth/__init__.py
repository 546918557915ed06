"""Synthetic datasets in the genuine on-disk formats, rendered from one procedural road world.

``generate(dataset, out, num=, seed=, size=, world=)`` renders ``num`` labelled scenes with
:func:`intrakd.data.synth.world.render_scene` (``world``: the :class:`~intrakd.data.synth.world.WorldParams` knobs as a
mapping) and lets ``intrakd.data.synth.<dataset>.write(root, num=, seed=, size=, world=)`` lay them out exactly like
the real dataset (images, labels, list files). Roughly 2/3 of the labelled
images go to train and the rest to val (see :func:`split_counts`); formats with an unlabelled test split get a
few extra images there.

Output is atomic: everything is written into ``<out>.tmp-<pid>`` and renamed to ``out`` only when complete, with
:data:`intrakd.data.io.SYNTH_MARKER` written last, so an interrupted run never leaves a complete-looking tree.
An existing generated tree at ``out`` is an error unless ``overwrite=True`` (it is then replaced as a whole); a
non-empty folder that is not a generated tree is never touched; an empty folder is replaced.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from intrakd.data.io import SYNTH_MARKER, read_synth_marker
from intrakd.data.spec import get_spec
from intrakd.data.synth.world import WorldParams

#: CPU-friendly default sizes (W, H): a quarter of the genuine resolution (half for CULane/LLAMAS).
DEFAULT_SIZES = {"apolloscape": (846, 678), "culane": (820, 295), "llamas": (638, 358), "cityscapes": (512, 256)}
GENERATOR_VERSION = 1


def split_counts(num: int) -> tuple[int, int]:
    """(train, val) for ``num`` labelled images: 2/3 train (rounded down, at least 1), the rest val."""
    if num < 2:
        raise ValueError(f"num must be at least 2 (one train and one val image), got {num}")
    n_train = max(1, (2 * num) // 3)
    return n_train, num - n_train


def split_plan(num: int, test: int | None = None, names=("train", "val", "test")) -> list[tuple[str, int]]:
    """``(split, k)`` for every scene in render order: train, val, then ``test`` unlabelled test scenes
    (default ``max(1, num // 8)``; 0 for none). The scene index is the position in this list."""
    n_train, n_val = split_counts(num)
    n_test = max(1, num // 8) if test is None else test
    return [(s, k) for s, n in zip(names, (n_train, n_val, n_test)) for k in range(n)]


def scene_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of scene ``index``: independent of ``num``, so a bigger set extends a smaller one."""
    return np.random.default_rng([int(seed), int(index)])


def parse_size(text: str) -> tuple[int, int]:
    """'WxH' -> (W, H); ValueError naming the string otherwise."""
    parts = str(text).lower().split("x")
    try:
        w, h = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"size {text!r}: expected WxH with positive integers, e.g. 846x678") from None
    if w < 16 or h < 16:
        raise ValueError(f"size {text!r}: width and height must be at least 16")
    return w, h


def generate(dataset: str, out, *, num: int = 12, seed: int = 0, size=None, overwrite: bool = False,
             world: dict | None = None) -> Path:
    """Write a synthetic ``dataset`` tree at ``out`` and return its root (see the module docstring)."""
    get_spec(dataset)
    writer = importlib.import_module(f"intrakd.data.synth.{dataset}")
    size = tuple(int(v) for v in (size or DEFAULT_SIZES[dataset]))
    if len(size) != 2 or min(size) < 16:
        raise ValueError(f"size must be (W, H) with both at least 16, got {size}")
    split_counts(int(num))
    params = WorldParams.from_dict(world)
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise ValueError(f"output {out} exists and is not a folder")
        if any(out.iterdir()):
            if read_synth_marker(out) is None:
                raise ValueError(f"output {out} is a non-empty folder that is not a generated tree; "
                                 "refusing to touch it")
            if not overwrite:
                raise ValueError(f"output {out} already holds a generated tree; "
                                 "pass overwrite=True (--force) to replace it")
    tmp = out.parent / f"{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        stats = writer.write(tmp, num=int(num), seed=int(seed), size=size, world=params) or {}
        meta = {"dataset": dataset, "num": int(num), "seed": int(seed), "size": list(size),
                "world": dataclasses.asdict(params), "generator": f"intrakd synth v{GENERATOR_VERSION}", **stats}
        (tmp / SYNTH_MARKER).write_text(json.dumps(meta, indent=1) + "\n")
        old = None
        if out.exists():
            old = out.parent / f"{out.name}.old-{os.getpid()}"
            out.rename(old)
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
