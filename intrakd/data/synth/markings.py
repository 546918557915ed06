"""The internal class vocabulary of the synthetic world and the ground-plane shapes of road markings.

Independent of any dataset format: the format writers (``synth/<dataset>.py``) map these names onto their
label tables. Marking shapes are built in a local ground frame (u lateral metres, v forward metres) and
returned as polygons; :mod:`intrakd.data.synth.world` places and projects them.
"""

from __future__ import annotations

import numpy as np

#: non-marking classes (enough for Cityscapes' >= 8 classes per image)
BACKGROUND = (
    "unlabeled", "sky", "building", "wall", "fence", "vegetation", "terrain", "road", "sidewalk", "pole",
    "traffic_light", "traffic_sign", "person", "car", "truck",
)
#: road markings by type and colour; the last two are paint that no annotator would name
MARKINGS = (
    "solid_white", "solid_yellow", "double_solid_white", "double_solid_yellow", "solid_dashed_white",
    "solid_dashed_yellow", "dashed_white", "dashed_yellow", "double_dashed_white", "double_dashed_yellow",
    "stop_line", "double_stop_line", "dashed_stop_line", "chevron_white", "chevron_yellow", "parking_white",
    "zebra", "arrow_straight", "arrow_left", "arrow_right", "arrow_straight_left", "arrow_straight_right",
    "arrow_left_right", "arrow_straight_left_right", "arrow_uturn", "arrow_straight_uturn", "arrow_merge",
    "slow_down", "diamond", "no_parking", "other_marking", "paint_noise", "unclear_marking",
)
CLASSES: tuple[str, ...] = BACKGROUND + MARKINGS
CLASS_ID: dict[str, int] = {name: k for k, name in enumerate(CLASSES)}
FIRST_MARKING = len(BACKGROUND)
YELLOW = {"solid_yellow", "double_solid_yellow", "solid_dashed_yellow", "dashed_yellow", "double_dashed_yellow",
          "chevron_yellow", "no_parking"}

#: lane-boundary line types: name -> list of (lateral offset in line widths, dashed?) stripes
LINE_STRIPES = {
    "solid_white": [(0.0, False)], "solid_yellow": [(0.0, False)],
    "dashed_white": [(0.0, True)], "dashed_yellow": [(0.0, True)],
    "double_solid_white": [(-1.0, False), (1.0, False)], "double_solid_yellow": [(-1.0, False), (1.0, False)],
    "solid_dashed_white": [(-1.0, False), (1.0, True)], "solid_dashed_yellow": [(-1.0, False), (1.0, True)],
    "double_dashed_white": [(-1.0, True), (1.0, True)], "double_dashed_yellow": [(-1.0, True), (1.0, True)],
}

# Arrow strokes in units of the arrow's width (u) and length (v): ("line", points) thick polylines and
# ("head", base, tip) triangles. Right-hand variants are mirrored.
ARROWS = {
    "arrow_straight": [("line", [(0, 0), (0, 0.66)]), ("head", (0, 0.64), (0, 1.0))],
    "arrow_left": [("line", [(0, 0), (0, 0.52), (-0.55, 0.72)]), ("head", (-0.5, 0.70), (-1.05, 0.9))],
    "arrow_straight_left": [("line", [(0, 0), (0, 0.66)]), ("head", (0, 0.64), (0, 1.0)),
                            ("line", [(0, 0.3), (-0.55, 0.48)]), ("head", (-0.5, 0.46), (-1.05, 0.64))],
    "arrow_left_right": [("line", [(0, 0), (0, 0.45), (-0.5, 0.65)]), ("head", (-0.45, 0.63), (-1.0, 0.83)),
                         ("line", [(0, 0.45), (0.5, 0.65)]), ("head", (0.45, 0.63), (1.0, 0.83))],
    "arrow_straight_left_right": [("line", [(0, 0), (0, 0.66)]), ("head", (0, 0.64), (0, 1.0)),
                                  ("line", [(0, 0.3), (-0.55, 0.48)]), ("head", (-0.5, 0.46), (-1.05, 0.64)),
                                  ("line", [(0, 0.3), (0.55, 0.48)]), ("head", (0.5, 0.46), (1.05, 0.64))],
    "arrow_uturn": [("line", [(0.2, 0), (0.2, 0.72), (0.0, 0.86), (-0.4, 0.86), (-0.6, 0.72), (-0.6, 0.5)]),
                    ("head", (-0.6, 0.52), (-0.6, 0.25))],
    "arrow_straight_uturn": [("line", [(0.2, 0), (0.2, 0.66)]), ("head", (0.2, 0.64), (0.2, 1.0)),
                             ("line", [(0.2, 0.35), (-0.1, 0.5), (-0.5, 0.45), (-0.6, 0.35)]),
                             ("head", (-0.6, 0.37), (-0.62, 0.15))],
    "arrow_merge": [("line", [(0.35, 0), (0.35, 0.35), (-0.25, 0.72)]), ("head", (-0.2, 0.68), (-0.55, 1.0))],
}


def _mirror(strokes):
    out = []
    for stroke in strokes:
        if stroke[0] == "line":
            out.append(("line", [(-u, v) for u, v in stroke[1]]))
        else:
            out.append(("head", (-stroke[1][0], stroke[1][1]), (-stroke[2][0], stroke[2][1])))
    return out


ARROWS["arrow_right"] = _mirror(ARROWS["arrow_left"])
ARROWS["arrow_straight_right"] = _mirror(ARROWS["arrow_straight_left"])

# seven-segment glyph strokes (unit cell u in [0, 1], v in [0, 1], v forward = top of the glyph as read by a
# driver approaching it) for "other" text-like markings such as speed numbers
_SEG = {"a": [(0, 1), (1, 1)], "b": [(1, 1), (1, 0.5)], "c": [(1, 0.5), (1, 0)], "d": [(0, 0), (1, 0)],
        "e": [(0, 0.5), (0, 0)], "f": [(0, 1), (0, 0.5)], "g": [(0, 0.5), (1, 0.5)]}
DIGITS = {"0": "abcdef", "1": "bc", "2": "abged", "3": "abgcd", "4": "fgbc", "5": "afgcd", "6": "afgedc",
          "7": "abc", "8": "abcdefg", "9": "abcdfg"}


def thick_polyline(points: np.ndarray, width: float) -> list[np.ndarray]:
    """Quads (one per segment, metres) of a polyline ``points`` (N, 2) drawn ``width`` wide, plus joint squares."""
    pts = np.asarray(points, np.float64)
    quads = []
    for p, q in zip(pts[:-1], pts[1:]):
        d = q - p
        n = np.hypot(*d)
        if n < 1e-9:
            continue
        nrm = np.array([-d[1], d[0]]) / n * (width / 2)
        quads.append(np.array([p - nrm, q - nrm, q + nrm, p + nrm]))
    for p in pts[1:-1]:  # fill the gaps at the joints
        h = width / 2
        quads.append(np.array([p + (-h, -h), p + (h, -h), p + (h, h), p + (-h, h)]))
    return quads


def head(base, tip, width: float) -> np.ndarray:
    base, tip = np.asarray(base, np.float64), np.asarray(tip, np.float64)
    d = tip - base
    nrm = np.array([-d[1], d[0]]) / max(np.hypot(*d), 1e-9) * (width / 2)
    return np.array([base - nrm, tip, base + nrm])


def arrow_polygons(kind: str, length: float, width: float, shaft: float) -> list[np.ndarray]:
    """Local ground polygons (u, v) of arrow ``kind`` of ``length`` x ``width`` metres, anchored at v = 0."""
    polys = []
    scale = np.array([width, length])
    for stroke in ARROWS[kind]:
        if stroke[0] == "line":
            polys += thick_polyline(np.asarray(stroke[1], float) * scale, shaft)
        else:
            polys.append(head(np.asarray(stroke[1]) * scale, np.asarray(stroke[2]) * scale, width * 0.95))
    return polys


def digits_polygons(text: str, height: float, width: float, stroke: float, gap: float) -> list[np.ndarray]:
    """Seven-segment digits laid across the lane (u), readable when approaching (v forward), centred at u=0."""
    polys = []
    total = len(text) * width + (len(text) - 1) * gap
    for k, ch in enumerate(text):
        u0 = -total / 2 + k * (width + gap)
        for seg in DIGITS[ch]:
            pts = np.array(_SEG[seg], float) * (width, height) + (u0, 0.0)
            polys += thick_polyline(pts, stroke)
    return polys


def outline(points, width: float, closed: bool = True) -> list[np.ndarray]:
    pts = np.asarray(points, float)
    if closed:
        pts = np.vstack([pts, pts[:1]])
    return thick_polyline(pts, width)
