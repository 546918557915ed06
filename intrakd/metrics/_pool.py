"""Process-parallel map over contiguous chunks, shared by the file evaluators.

Decoding PNGs and counting pixels is CPU work in many short library calls; threads serialise on the
interpreter between them, so the evaluators split their list into contiguous chunks and hand each chunk to
a worker process (the chunk's result travels back, small: counts or per-image scores). One worker, or one
item, runs in-process with no pool.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

CHUNKS_PER_WORKER = 4  # a few chunks per worker evens out uneven images without much transfer


def cpu_count() -> int:
    """CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def chunks(items: Sequence, n: int) -> list:
    """``items`` cut into ``n`` contiguous chunks as equal as possible (none empty; fewer when items are few)."""
    n = max(1, min(n, len(items)))
    size, extra = divmod(len(items), n)
    bounds = [0]
    for k in range(n):
        bounds.append(bounds[-1] + size + (k < extra))
    return [items[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


@contextmanager
def _one_library_thread():
    """OpenCV single-threaded while the workers are forked (they inherit it; the workers already fill the cores,
    so its thread pool would only contend with them), restored afterwards. Set here, not in a forked worker:
    there the parent's pool threads do not exist, and reconfiguring the pool waits for them forever."""
    cv2 = sys.modules.get("cv2")
    if cv2 is None:  # not loaded: nothing to set
        yield
        return
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(threads)


def map_chunks(fn: Callable[[Sequence], object], items: Sequence, workers: int | None = None) -> Iterator:
    """``fn(chunk)`` for contiguous chunks of ``items``, in order; ``workers`` processes (default: the CPUs).

    ``fn`` must be picklable (a module-level function or a ``functools.partial`` of one). Worker processes are
    forked where the platform allows (they start in milliseconds and inherit the imported modules); an error
    raised by ``fn`` in a worker is raised here.
    """
    workers = min(workers or cpu_count(), len(items))
    if workers <= 1:
        yield fn(items)
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with _one_library_thread(), ProcessPoolExecutor(workers, mp_context=context) as pool:
        yield from pool.map(fn, chunks(items, workers * CHUNKS_PER_WORKER))
