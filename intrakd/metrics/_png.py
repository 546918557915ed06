"""Fast decoding of the PNGs the evaluators read most: 8-bit, single-sample, non-interlaced.

Why our own reader: in every evaluator, decoding is most of the per-image work, and in libpng (behind OpenCV and PIL,
the official tools' decoders) most of the decode is zlib's inflate. libdeflate (through ``imagecodecs``) inflates the
same stream about 2.6x faster, and the PNG filters that writers use on label and probability maps undo in a few
vectorised passes: None (PIL's palette labels), Sub (every row ``cv2.imwrite`` writes), Up, and Paeth on label maps
(PIL's adaptive choice puts it on a few rows, where the row above is piecewise constant). Anything else (Average
rows, Paeth rows under a row that changes value at every pixel, interlacing, other bit depths or colour types,
transparency, a bad CRC or stream) returns None and the caller decodes with the official tool's decoder, so the
samples are always the ones OpenCV / PIL return.
"""

from __future__ import annotations

import struct
import zlib

import imagecodecs
import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GREY, PALETTE = 0, 3  # PNG colour types read here: 8-bit grey levels, or 8-bit palette indices (PIL mode "P")


def _chunks(data: bytes):
    """(type, payload view) of each chunk up to IEND; None if the chunk structure or a critical CRC is broken."""
    view, pos, out = memoryview(data), 8, []
    while pos + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > len(data):
            return None
        payload = view[pos + 8: end - 4]
        if kind[0] < 0x60:  # critical chunk (upper-case first letter): libpng rejects a bad CRC
            if zlib.crc32(payload, zlib.crc32(kind)) != struct.unpack_from(">I", data, end - 4)[0]:
                return None
        out.append((kind, payload))
        if kind == b"IEND":
            return out
        pos = end
    return None


#: Paeth rows are undone segment by segment between the places where the row above changes value; a file with more
#: such places than this (a photograph, a smooth probability map written by PIL) goes to the official decoder.
MAX_PAETH_BREAKS = 20000


def _paeth_row(filt: np.ndarray, up: np.ndarray, breaks: np.ndarray) -> np.ndarray:
    """One Paeth-filtered row, exactly: where the row above is flat (b == c) Paeth predicts the left neighbour, so
    the row is a running sum (mod 256) between the breaks of the row above, and each break is predicted on its own."""
    cs = imagecodecs.delta_decode(filt)  # running sums mod 256
    starts = np.r_[0, breaks]
    upl, csl, fl = up.tolist(), cs.tolist(), filt.tolist()
    base, left, prev = [], 0, 0  # left: reconstructed value before the segment's first pixel
    for i, x in enumerate(starts.tolist()):
        if i:  # the previous segment's last pixel, from its running sum
            left = (base[-1] + csl[x - 1] - csl[prev]) & 255
        a, b, c = left, upl[x], upl[x - 1] if x else 0
        pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
        pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        base.append((fl[x] + pred) & 255)
        prev = x
    seg = np.repeat(np.arange(len(base)), np.diff(np.r_[starts, len(filt)]))
    start_cs = cs[starts][seg]
    return (np.asarray(base, np.uint8)[seg] + (cs - start_cs)).astype(np.uint8)


def _unfilter(rows: np.ndarray) -> np.ndarray | None:
    """H x (1 + W) filtered scanlines (1 byte a pixel) -> H x W samples; None if a row uses Average, or Paeth rows
    break too often (:data:`MAX_PAETH_BREAKS`)."""
    kinds, samples = rows[:, 0], rows[:, 1:]
    if kinds.max(initial=0) > 4 or (kinds == 3).any():
        return None
    out = np.array(samples)  # filter 0 (None) rows are the samples
    sub = np.flatnonzero(kinds == 1)
    if sub.size == len(kinds):
        return imagecodecs.delta_decode(out, axis=-1, out=out)  # running sum mod 256 along each row
    if sub.size:
        out[sub] = imagecodecs.delta_decode(out[sub], axis=-1)
    # Up rows with an all-zero residual repeat the row above (most rows of a label map): they point to the last row
    # that is not such a copy, and are filled at the end; the other Up and Paeth rows are undone in order
    copies = (kinds == 2) & ~samples.any(axis=1)
    copies[0] = False  # the first row's Up predicts from zeros: the residual itself
    source = np.where(copies, 0, np.arange(len(kinds)))
    np.maximum.accumulate(source, out=source)
    budget = MAX_PAETH_BREAKS
    for y in np.flatnonzero((kinds >= 2) & ~copies).tolist():
        up = out[source[y - 1]] if y else np.zeros_like(out[0])
        if kinds[y] == 2:
            np.add(out[y], up, out=out[y])  # row by row: numpy's running sum down a column is ten times slower
            continue
        breaks = np.flatnonzero(up[1:] != up[:-1]) + 1  # where the row above changes value
        budget -= breaks.size
        if budget < 0:
            return None
        out[y] = _paeth_row(out[y], up, breaks)
    if copies.any():
        out[copies] = out[source[copies]]
    return out


def decode_png8(data: bytes, colour_types=(GREY,)) -> np.ndarray | None:
    """H x W uint8 samples of an 8-bit non-interlaced PNG whose colour type is in ``colour_types`` (grey levels as
    OpenCV's IMREAD_GRAYSCALE / IMREAD_UNCHANGED read them; palette indices as PIL's ``np.asarray`` of a mode "P"
    image), or None for any PNG this reader does not cover (the caller then uses the official decoder)."""
    if data[:8] != _SIGNATURE:
        return None
    chunks = _chunks(data)
    if not chunks or chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13:
        return None
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if depth != 8 or colour not in colour_types or compression or filtering or interlace or not width or not height:
        return None
    if any(kind == b"tRNS" for kind, _ in chunks):  # transparency: the decoders may add an alpha channel
        return None
    stream = b"".join(payload for kind, payload in chunks if kind == b"IDAT")
    size = height * (width + 1)
    try:
        raw = imagecodecs.deflate_decode(stream, out=size)  # zlib stream, Adler-32 checked
    except Exception:  # corrupt or longer than the image: the official decoder reports it
        return None
    if len(raw) != size:
        return None
    return _unfilter(np.frombuffer(raw, np.uint8).reshape(height, width + 1))


def read_png8(path, colour_types=(GREY,)) -> tuple[bytes, np.ndarray | None]:
    """The file's bytes and :func:`decode_png8` of them (None: decode the bytes with the official decoder)."""
    with open(path, "rb") as f:
        data = f.read()
    return data, decode_png8(data, colour_types)


__all__ = ["decode_png8", "read_png8", "GREY", "PALETTE"]
