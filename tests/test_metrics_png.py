"""The evaluators' fast PNG reader (intrakd.metrics._png) returns exactly what OpenCV / PIL return, or declines.

PNGs with chosen filters come from a minimal encoder written here (filters by the PNG spec, section 9), so every
filter type, mixed rows, split IDATs and damaged files are covered; genuine Cityscapes / ApolloScape label PNGs
and files written by ``cv2.imwrite`` and PIL are compared with their decoders."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from intrakd.metrics import _png
from intrakd.metrics._png import GREY, PALETTE, decode_png8


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(payload, zlib.crc32(kind)))


def _filter_row(kind: int, row: np.ndarray, prev: np.ndarray) -> np.ndarray:
    x = row.astype(np.int32)
    left = np.r_[0, x[:-1]]
    up = prev.astype(np.int32)
    upleft = np.r_[0, up[:-1]]
    if kind == 0:
        pred = np.zeros_like(x)
    elif kind == 1:
        pred = left
    elif kind == 2:
        pred = up
    elif kind == 3:
        pred = (left + up) // 2
    else:  # Paeth
        p = left + up - upleft
        pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upleft)
        pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
    return ((x - pred) % 256).astype(np.uint8)


def filtered(img: np.ndarray, filters) -> bytes:
    """The scanlines of ``img``, row ``y`` filtered by ``filters[y % len(filters)]`` (its type byte first)."""
    prev = np.zeros(img.shape[1], np.uint8)
    raw = bytearray()
    for y in range(img.shape[0]):
        kind = filters[y % len(filters)]
        raw += bytes([kind]) + _filter_row(kind, img[y], prev).tobytes()
        prev = img[y]
    return bytes(raw)


def wrap(raw: bytes, w: int, h: int, colour: int = GREY, idat_size: int = 0, extra=()) -> bytes:
    """A PNG file of scanlines ``raw``; IDAT split every ``idat_size`` bytes (0: one chunk); ``extra`` chunks go
    before the IDATs."""
    stream = zlib.compress(raw, 6)
    parts = [stream] if not idat_size else [stream[i:i + idat_size] for i in range(0, len(stream), idat_size)]
    out = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))
    if colour == PALETTE:
        out += _chunk(b"PLTE", bytes(range(256)) * 3)
    return out + b"".join(extra) + b"".join(_chunk(b"IDAT", p) for p in parts) + _chunk(b"IEND", b"")


def encode(img: np.ndarray, filters, colour: int = GREY, idat_size: int = 0, extra=()) -> bytes:
    return wrap(filtered(img, filters), img.shape[1], img.shape[0], colour, idat_size, extra)


def cv2_grey(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)


def pil_array(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im)


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    smooth = cv2.GaussianBlur(rng.random((37, 53), np.float32), (0, 0), 2) * 255
    return np.clip(smooth + rng.integers(0, 40, (37, 53)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def label_map():
    """A label-like map: piecewise constant blocks, so rows above change value at a few places only."""
    rng = np.random.default_rng(1)
    return cv2.resize(rng.integers(0, 34, (6, 9), dtype=np.uint8), (71, 45), interpolation=cv2.INTER_NEAREST)


@pytest.mark.parametrize("filters", [(0,), (1,), (2,), (4,), (0, 1, 2), (2, 2, 1, 2, 0, 2, 2, 2), (1, 2, 2),
                                     (4, 4, 2, 1, 4, 0), (2, 4)])
def test_filters_decode_as_opencv(image, label_map, filters):
    for img in (image, label_map):
        data = encode(img, filters, idat_size=97)
        out = decode_png8(data)
        assert out is not None and out.dtype == np.uint8
        np.testing.assert_array_equal(out, img)
        np.testing.assert_array_equal(out, cv2_grey(data))


@pytest.mark.parametrize("filters", [(3,), (0, 2, 3)])
def test_average_rows_are_declined(image, filters):
    data = encode(image, filters)
    assert decode_png8(data) is None
    np.testing.assert_array_equal(cv2_grey(data), image)  # the encoder is right; the fallback decodes it


def test_paeth_rows_under_busy_rows_are_declined(image, label_map, monkeypatch):
    breaks = sum(int((image[y - 1, 1:] != image[y - 1, :-1]).sum()) for y in range(1, image.shape[0]))
    monkeypatch.setattr(_png, "MAX_PAETH_BREAKS", breaks - 1)
    assert decode_png8(encode(image, (4,))) is None
    np.testing.assert_array_equal(decode_png8(encode(label_map, (4,))), label_map)  # few breaks: still read
    monkeypatch.setattr(_png, "MAX_PAETH_BREAKS", breaks)
    np.testing.assert_array_equal(decode_png8(encode(image, (4,))), image)


def test_palette_indices_only_when_asked_and_equal_to_pil(image):
    data = encode(image, (1, 2), colour=PALETTE)
    assert decode_png8(data) is None  # grey only by default: OpenCV's grey of a palette is not its indices
    np.testing.assert_array_equal(decode_png8(data, (GREY, PALETTE)), pil_array(data))


def test_damaged_or_unusual_files_are_declined(image):
    good = encode(image, (1,))
    assert decode_png8(good) is not None
    at = good.index(b"IDAT") + 20
    flipped = good[:at] + bytes([good[at] ^ 1]) + good[at + 1:]
    assert decode_png8(flipped) is None  # IDAT CRC
    assert decode_png8(good[:-30]) is None  # truncated, no IEND
    assert decode_png8(b"GIF89a" + good[6:]) is None
    assert decode_png8(encode(image, (1,), extra=[_chunk(b"tRNS", b"\x00\x07")])) is None
    h, w = image.shape
    assert decode_png8(wrap(filtered(image[:-1], (1,)), w, h)) is None  # a stream one row short of IHDR's size
    assert decode_png8(wrap(filtered(image, (1,)) + b"\x00", w, h)) is None  # one byte too many
    raw = bytearray(filtered(image, (1,)))
    raw[0] = 7  # no such filter type
    assert decode_png8(wrap(bytes(raw), w, h)) is None


def test_files_written_by_opencv_and_pil(tmp_path, image, label_map):
    cv2.imwrite(str(tmp_path / "cv.png"), image)  # OpenCV's writer filters every row with Sub
    assert decode_png8((tmp_path / "cv.png").read_bytes()) is not None
    for img in (image, label_map):
        pil = io.BytesIO()
        Image.fromarray(img).save(pil, format="PNG")  # PIL's adaptive filters: taken or declined, never wrong
        for data in ((tmp_path / "cv.png").read_bytes() if img is image else pil.getvalue(), pil.getvalue()):
            out = decode_png8(data)
            np.testing.assert_array_equal(cv2_grey(data), img)
            if out is not None:
                np.testing.assert_array_equal(out, img)
    big = cv2.resize(label_map, (2048, 1024), interpolation=cv2.INTER_NEAREST)
    pil = io.BytesIO()
    Image.fromarray(big).save(pil, format="PNG")  # a Cityscapes-sized label map as PIL writes it: read here
    np.testing.assert_array_equal(decode_png8(pil.getvalue()), big)


def test_genuine_label_pngs_equal_pil_and_opencv(real_samples):
    paths = sorted(real_samples.rglob("*.png"))
    assert paths
    taken = 0
    for path in paths:
        data = path.read_bytes()
        out = decode_png8(data, (GREY, PALETTE))
        if out is None:
            continue
        taken += 1
        np.testing.assert_array_equal(out, pil_array(data), err_msg=str(path))
        if decode_png8(data) is not None:
            np.testing.assert_array_equal(out, cv2_grey(data), err_msg=str(path))
    assert taken >= 6  # the genuine palette labels (ApolloScape, full-size Cityscapes) are all read here
