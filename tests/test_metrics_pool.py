"""The evaluators' process pool: contiguous chunks in order, errors raised here, one OpenCV thread a worker."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from intrakd.metrics._pool import chunks, map_chunks


def _describe(chunk):
    return os.getpid(), cv2.getNumThreads(), list(chunk)


def _fail(chunk):
    raise ValueError(f"bad item {chunk[0]}")


def test_chunks_are_contiguous_and_nearly_equal():
    assert chunks(list(range(10)), 4) == [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9]]
    assert chunks([1, 2], 8) == [[1], [2]]
    assert chunks([1, 2, 3], 0) == [[1, 2, 3]]


@pytest.mark.timeout(60)
def test_map_chunks_keeps_order_and_workers_use_one_opencv_thread():
    # OpenCV's thread pool running in this process first: forked workers must not wait for its threads
    cv2.GaussianBlur(np.zeros((2000, 2000), np.float32), (0, 0), 5)
    threads = cv2.getNumThreads()
    items = list(range(23))
    out = list(map_chunks(_describe, items, workers=2))
    assert [x for _, _, chunk in out for x in chunk] == items and len(out) == 8
    assert {pid for pid, _, _ in out} - {os.getpid()} and all(n == 1 for _, n, _ in out)
    assert cv2.getNumThreads() == threads  # restored here
    # one worker runs in this process, untouched
    (pid, n, chunk), = map_chunks(_describe, items, workers=1)
    assert pid == os.getpid() and chunk == items and n == threads


def test_map_chunks_raises_the_workers_error():
    with pytest.raises(ValueError, match="^bad item 0$"):
        list(map_chunks(_fail, list(range(4)), workers=2))
