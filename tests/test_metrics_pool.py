"""The evaluators' process-parallel map: contiguous chunks, order kept, errors raised, one worker in-process,
OpenCV single-threaded in the workers."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from intrakd.metrics import _pool as P

_FORKED_STATE = {"value": 0}


def _chunk_summary(chunk):
    return list(chunk), _FORKED_STATE["value"], os.getpid()


def _opencv_threads(chunk):
    return cv2.getNumThreads()


def _fail_on_seven(chunk):
    if 7 in chunk:
        raise ValueError("item 7 is bad")
    return len(chunk)


def test_chunks_are_contiguous_near_equal_and_never_empty():
    assert P.chunks(list(range(10)), 3) == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]  # 10 = 4 + 3 + 3
    assert P.chunks(list(range(4)), 4) == [[0], [1], [2], [3]]
    assert P.chunks(list(range(3)), 8) == [[0], [1], [2]]  # fewer items than chunks: one each
    assert P.chunks(list(range(5)), 0) == [list(range(5))]  # at least one chunk
    assert P.chunks([], 3) == [[]]
    for n_items in range(0, 30):
        for n in range(1, 9):
            got = P.chunks(list(range(n_items)), n)
            sizes = [len(c) for c in got]
            assert sum(got, []) == list(range(n_items)) and len(got) == max(1, min(n, n_items))
            assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_cpu_count_is_the_affinity_mask(monkeypatch):
    asked = []
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: asked.append(pid) or {2, 5, 7}, raising=False)
    assert P.cpu_count() == 3 and asked == [0]  # 0 = this process
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {4}, raising=False)
    assert P.cpu_count() == 1
    monkeypatch.delattr(os, "sched_getaffinity")  # not on Linux: os.cpu_count(), at least 1
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert P.cpu_count() == 6
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert P.cpu_count() == 1


def test_one_worker_or_one_item_runs_in_process(monkeypatch):
    items = list(range(5))
    assert list(P.map_chunks(lambda c: sum(c), items, workers=1)) == [10]  # a lambda cannot be pickled: in-process
    assert list(P.map_chunks(lambda c: c, [9], workers=4)) == [[9]]
    monkeypatch.setattr(P, "cpu_count", lambda: 1)  # default workers = the CPUs
    assert list(P.map_chunks(lambda c: len(c), items)) == [5]


def test_workers_get_contiguous_chunks_in_order_and_forked_state(monkeypatch):
    monkeypatch.setitem(_FORKED_STATE, "value", 41)  # seen by forked workers only (a fresh interpreter sees 0)
    monkeypatch.setattr(P, "cpu_count", lambda: 3)  # an explicit ``workers`` wins over the CPU count
    items = list(range(20))
    out = list(P.map_chunks(_chunk_summary, items, workers=2))
    assert [c for c, _, _ in out] == P.chunks(items, 2 * P.CHUNKS_PER_WORKER)  # a few chunks per worker, in order
    assert {state for _, state, _ in out} == {41} and os.getpid() not in {pid for _, _, pid in out}
    monkeypatch.setattr(P, "cpu_count", lambda: 2)  # default workers = the CPUs: a pool, not in-process
    out = list(P.map_chunks(_chunk_summary, items))
    assert os.getpid() not in {pid for _, _, pid in out} and [c for c, _, _ in out] == P.chunks(items, 8)
    with pytest.raises(ValueError, match="item 7 is bad"):
        list(P.map_chunks(_fail_on_seven, items, workers=2))


def test_workers_are_forked_whatever_the_default_start_method(monkeypatch):
    # Python's default start method is platform- and version-dependent (forkserver from 3.14 on Linux); the pool
    # asks for fork where it exists, so workers inherit the parent's state and imported modules
    if "fork" not in P.multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    monkeypatch.setitem(_FORKED_STATE, "value", 7)
    before = P.multiprocessing.get_start_method(allow_none=True)
    P.multiprocessing.set_start_method("spawn", force=True)
    try:
        out = list(P.map_chunks(_chunk_summary, list(range(4)), workers=2))
    finally:
        P.multiprocessing.set_start_method(before, force=True)
    assert {state for _, state, _ in out} == {7}


def test_at_most_the_requested_worker_processes():
    out = list(P.map_chunks(_chunk_summary, list(range(40)), workers=2))
    assert len({pid for _, _, pid in out}) <= 2 and len(out) == 2 * P.CHUNKS_PER_WORKER


@pytest.mark.timeout(60)
def test_workers_run_opencv_single_threaded_and_the_parent_keeps_its_setting():
    # OpenCV's thread pool running in this process first: forked workers must not wait for its threads (setting
    # the threads inside a forked worker hung there); the parent's setting is restored after the pool
    cv2.GaussianBlur(np.zeros((2000, 2000), np.float32), (0, 0), 5)
    threads = cv2.getNumThreads()
    assert set(P.map_chunks(_opencv_threads, list(range(12)), workers=2)) == {1}
    assert cv2.getNumThreads() == threads
    assert list(P.map_chunks(_opencv_threads, list(range(12)), workers=1)) == [threads]  # in-process: untouched
