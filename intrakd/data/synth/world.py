"""Procedural road scenes, independent of any dataset format.

``render_scene(rng, size)`` builds a ground-plane road (2-6 lanes, curvature, solid/dashed/double white and
yellow lines, arrows, stop lines, zebra crossings, chevrons, parking bays, text, diamonds, paint noise) with
roadside structure (sidewalks, terrain, buildings, trees, fences, walls, poles, signs, lights, people) and
vehicles, seen by a jittered pinhole camera. Everything is drawn as projected ground/vertical polygons with
``cv2.fillPoly`` (label and image from the same polygons), then made hard on purpose: worn paint, cast shadows,
haze, lighting changes, noise and blur; distant markings are a pixel wide.

:class:`WorldParams` holds the knobs a preset may turn (``paint_width``: every painted stroke wider by that factor);
the defaults are the world as first written, byte for byte.

World frame: X right, Y up, Z forward (metres); the road centre line is X = c Z^2 / 2. Camera frame (what the
returned ``K`` projects): x right, y down, z forward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from intrakd.data.synth import markings as mk
from intrakd.data.synth.markings import CLASS_ID, CLASSES

LANE_SLOTS = ("l1", "l0", "r0", "r1")
_SHIFT = 4  # fillPoly sub-pixel bits
_ONE = 1 << _SHIFT
Z_MIN = 0.5  # near clipping plane (m)


@dataclass(frozen=True)
class WorldParams:
    """Knobs of the world. ``paint_width`` multiplies the width of every thin painted stroke (lane lines, arrow
    shafts, symbol outlines, digits, hatching; not the already wide stop lines and zebra stripes): real lines are
    10-20 cm wide, which is 1-2 px at the low resolutions a CPU can train at, so a preset for CPU budgets widens
    them to keep them learnable."""

    paint_width: float = 1.0

    def __post_init__(self):
        if not (isinstance(self.paint_width, (int, float)) and not isinstance(self.paint_width, bool)
                and 0.25 <= float(self.paint_width) <= 8.0):
            raise ValueError(f"world paint_width must be a number in [0.25, 8], got {self.paint_width!r}")

    @classmethod
    def from_dict(cls, values: dict | None) -> "WorldParams":
        values = dict(values or {})
        unknown = sorted(set(values) - {"paint_width"})
        if unknown:
            raise ValueError(f"unknown world parameter(s) {unknown}; valid: ['paint_width']")
        return cls(**values)


@dataclass
class LaneLine:
    """One painted lane boundary (the 4 ego-relative slots l1 l0 r0 r1)."""

    kind: str  # internal marking class of the boundary
    image_xy: np.ndarray  # (N, 2) float image points of the boundary centre, bottom (near) to top (far)
    cam_xyz: np.ndarray  # (N, 3) the same points in the camera frame (x right, y down, z forward)
    pieces: list = field(default_factory=list)  # painted pieces [(start_xyz, end_xyz)] camera frame, near end first


@dataclass
class Scene:
    image: np.ndarray  # uint8 HxWx3 BGR
    semantic: np.ndarray  # uint8 HxW internal class ids (markings.CLASSES)
    instance: np.ndarray  # uint16 HxW: 0 = none, k = k-th car/truck/person
    lanes: list  # [l1, l0, r0, r1]: LaneLine or None
    K: np.ndarray  # 3x3 intrinsics of the camera frame
    horizon: float  # image row of the horizon at the image centre
    meta: dict = field(default_factory=dict)

    @property
    def classes(self) -> tuple[str, ...]:
        return CLASSES


class Camera:
    def __init__(self, f, cx, cy, height, yaw, roll):
        self.f, self.cx, self.cy, self.h = f, cx, cy, height
        self.cyaw, self.syaw = math.cos(yaw), math.sin(yaw)
        self.croll, self.sroll = math.cos(roll), math.sin(roll)

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.f, 0, self.cx], [0, self.f, self.cy], [0, 0, 1.0]])

    def to_cam(self, pts: np.ndarray) -> np.ndarray:
        """World (N, 3) -> camera frame (N, 3)."""
        X, Y, Z = pts[:, 0], pts[:, 1], pts[:, 2]
        x = self.cyaw * X - self.syaw * Z
        z = self.syaw * X + self.cyaw * Z
        y = self.h - Y
        return np.stack([self.croll * x - self.sroll * y, self.sroll * x + self.croll * y, z], 1)

    def project_cam(self, cam: np.ndarray) -> np.ndarray:
        return np.stack([self.f * cam[:, 0] / cam[:, 2] + self.cx, self.f * cam[:, 1] / cam[:, 2] + self.cy], 1)


def _clip_near(poly: np.ndarray, zmin: float = Z_MIN) -> np.ndarray:
    """Sutherland-Hodgman clip of a camera-frame polygon against z >= zmin."""
    if (poly[:, 2] >= zmin).all():
        return poly
    out = []
    n = len(poly)
    for k in range(n):
        p, q = poly[k], poly[(k + 1) % n]
        pin, qin = p[2] >= zmin, q[2] >= zmin
        if pin:
            out.append(p)
        if pin != qin:
            t = (zmin - p[2]) / (q[2] - p[2])
            out.append(p + t * (q - p))
    return np.array(out) if len(out) >= 3 else np.zeros((0, 3))


class Canvas:
    """Image (float32 BGR), semantic ids and instance ids drawn together from world polygons."""

    def __init__(self, w, h, cam: Camera):
        self.w, self.h, self.cam = w, h, cam
        self.img = np.zeros((h, w, 3), np.float32)
        self.sem = np.zeros((h, w), np.uint8)
        self.inst = np.zeros((h, w), np.uint16)

    def pix(self, world_polys) -> list[np.ndarray]:
        """World polygons -> fillPoly-ready int32 point arrays (clipped at the near plane)."""
        out = []
        for poly in world_polys:
            cam = _clip_near(self.cam.to_cam(np.asarray(poly, np.float64)))
            if len(cam) < 3:
                continue
            uv = self.cam.project_cam(cam)
            if (uv[:, 0].max() < -2 or uv[:, 0].min() > self.w + 2 or uv[:, 1].max() < -2
                    or uv[:, 1].min() > self.h + 2):
                continue
            out.append(np.round(np.clip(uv, -1e6, 1e6) * _ONE).astype(np.int32))
        return out

    def fill(self, pts, colour=None, cls=None, inst=None, target=None):
        if not pts:
            return
        for p in pts:  # one call each: fillPoly XORs overlapping contours of a single call
            if colour is not None:
                cv2.fillPoly(self.img if target is None else target, [p], colour, cv2.LINE_8, _SHIFT)
            if cls is not None:
                cv2.fillPoly(self.sem, [p], int(CLASS_ID[cls]), cv2.LINE_8, _SHIFT)
            if inst is not None:
                cv2.fillPoly(self.inst, [p], int(inst), cv2.LINE_8, _SHIFT)


# ---------------------------------------------------------------------------------------------- scene layout
class Road:
    def __init__(self, rng: np.random.Generator):
        self.c = 0.0 if rng.random() < 0.35 else rng.uniform(-1, 1) / rng.uniform(250, 1500)
        self.n = int(rng.integers(2, 7))
        self.w = rng.uniform(3.0, 3.8)
        two_way = self.n >= 3 and rng.random() < 0.6 or (self.n == 2 and rng.random() < 0.3)
        self.divider = int(rng.integers(1, self.n)) if two_way else 0  # boundary index of the centre line
        self.ego = int(rng.integers(self.divider, self.n)) if two_way else int(rng.integers(0, self.n))
        self.delta = rng.normal(0, 0.3)
        # boundary k lateral offset from the road centre line (camera stands on it at Z = 0)
        self.bounds = np.array([(k - self.ego) * self.w - self.w / 2 - self.delta for k in range(self.n + 1)])
        self.shoulder_l = rng.uniform(0.3, 1.5)
        self.shoulder_r = rng.uniform(0.3, 1.5)
        self.parking = rng.random() < 0.2
        if self.parking:
            self.shoulder_r = rng.uniform(2.6, 3.0)
        self.left_edge = self.bounds[0] - self.shoulder_l
        self.right_edge = self.bounds[-1] + self.shoulder_r
        self.walk_l = rng.uniform(1.5, 4.0)
        self.walk_r = rng.uniform(1.5, 4.0)

    def x(self, z):
        return self.c * np.asarray(z, np.float64) ** 2 / 2

    def local(self, uv: np.ndarray, u0: float, z0: float) -> np.ndarray:
        """Local ground (u lateral, v forward) around (u0, z0) -> world (N, 3) points following the road."""
        z = z0 + uv[:, 1]
        return np.stack([self.x(z) + u0 + uv[:, 0], np.zeros(len(uv)), z], 1)

    def strip(self, u_a, u_b, z0, z1, n=None, y=0.0) -> np.ndarray:
        """Ground strip between lateral offsets u_a..u_b (metres from the centre line), Z in z0..z1."""
        if n is None:
            n = int(np.clip((z1 - z0) / 2.0, 2, 60))
        z = np.geomspace(max(z0, 0.05), z1, n) if z0 > 0 else np.linspace(z0, z1, n)
        xc = self.x(z)
        left = np.stack([xc + u_a, np.full(n, y), z], 1)
        right = np.stack([xc + u_b, np.full(n, y), z], 1)
        return np.vstack([left, right[::-1]])

    def wall(self, u, z0, z1, y0, y1, n=6) -> np.ndarray:
        """Vertical surface along the road at lateral offset u from height y0 to y1."""
        z = np.linspace(z0, z1, n)
        xc = self.x(z) + u
        return np.vstack([np.stack([xc, np.full(n, y0), z], 1), np.stack([xc, np.full(n, y1), z], 1)[::-1]])


def _noise_field(rng, h, w, cells, lo, hi):
    """Smooth random field in [lo, hi] (bicubic upsampling of a coarse grid)."""
    gh, gw = max(2, int(h / cells)), max(2, int(w / cells))
    g = rng.random((gh, gw)).astype(np.float32)
    f = cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(lo + (hi - lo) * f, min(lo, hi), max(lo, hi))


def _paint_colour(rng, yellow: bool):
    if yellow:
        return (rng.uniform(20, 60), rng.uniform(160, 200), rng.uniform(200, 235))
    v = rng.uniform(200, 245)
    return (v + rng.uniform(-6, 6), v, v + rng.uniform(-6, 6))


class Painter:
    """Collects markings: label polygons + paint alpha; composited once over the asphalt."""

    def __init__(self, cv: Canvas, rng):
        self.cv, self.rng = cv, rng
        h, w = cv.h, cv.w
        self.alpha = np.zeros((h, w), np.float32)
        self.colour = np.zeros((h, w, 3), np.float32)
        self.cls = np.zeros((h, w), np.uint8)

    def add(self, cls: str, world_polys, wear: float | None = None):
        rng = self.rng
        if wear is None:
            wear = float(np.clip(rng.beta(5, 1.6), 0.08, 1.0))
        pts = self.cv.pix(world_polys)
        if not pts:
            return
        label = cls
        if wear < 0.22 and cls not in mk.LINE_STRIPES and cls != "paint_noise":
            label = "unclear_marking"  # too worn to name
        col = _paint_colour(rng, cls in mk.YELLOW)
        for p in pts:
            cv2.fillPoly(self.alpha, [p], float(wear), cv2.LINE_8, _SHIFT)
            cv2.fillPoly(self.colour, [p], col, cv2.LINE_8, _SHIFT)
            cv2.fillPoly(self.cls, [p], int(CLASS_ID[label]), cv2.LINE_8, _SHIFT)

    def composite(self):
        cv, rng = self.cv, self.rng
        a = cv2.GaussianBlur(self.alpha, (0, 0), 0.6)
        a *= _noise_field(rng, cv.h, cv.w, rng.uniform(6, 20), rng.uniform(0.25, 0.7), 1.0)
        a *= np.clip(1.0 - 0.5 * (rng.random((cv.h, cv.w)).astype(np.float32) ** 6), 0, 1)  # speckle loss
        a = a[..., None]
        cv.img[:] = cv.img * (1 - a) + self.colour * a
        painted = self.cls > 0
        cv.sem[painted] = self.cls[painted]


# ---------------------------------------------------------------------------------------------- markings
def _line_pieces(z0, z1, dashed, dash, gap, phase):
    if not dashed:
        return [(z0, z1)]
    period = dash + gap
    starts = np.arange(z0 - phase, z1, period)
    return [(max(s, z0), min(s + dash, z1)) for s in starts if min(s + dash, z1) > max(s, z0) + 0.05]


def _draw_lines(road: Road, painter: Painter, rng, cam: Camera, gaps, z_far, paint: float = 1.0):
    """Lane boundaries; returns {boundary index: LaneLine}."""
    n = road.n
    lines = {}
    interior = ["dashed_white"] * 10 + ["solid_white"] * 3 + ["solid_dashed_white", "double_dashed_white",
                                                              "double_solid_white", "dashed_yellow"]
    centre = ["double_solid_yellow"] * 3 + ["solid_yellow"] * 2 + ["solid_dashed_yellow", "dashed_yellow",
                                                                   "double_dashed_yellow"]
    dash, gap = rng.uniform(2.0, 4.0), rng.uniform(4.0, 9.0)
    width = rng.uniform(0.1, 0.2) * paint
    for k in range(n + 1):
        if k in (0, n):
            kind = "solid_white" if rng.random() < 0.8 else ("solid_yellow" if k == 0 and rng.random() < 0.5 else None)
        elif road.divider and k == road.divider:
            kind = str(rng.choice(centre))
        else:
            kind = str(rng.choice(interior))
        if kind is None or rng.random() < 0.04:  # an unpainted boundary
            continue
        end = z_far * rng.uniform(0.5, 1.0) if rng.random() < 0.3 else z_far
        u = road.bounds[k]
        phase = rng.uniform(0, dash + gap)
        pieces_all = []
        wear = float(np.clip(rng.beta(5, 1.5), 0.15, 1.0))
        for off, dashed in mk.LINE_STRIPES[kind]:
            uu = u + off * width * 0.9
            for a, b in _line_pieces(1.0, end, dashed, dash, gap, phase):
                for ga, gb in _subtract(a, b, gaps):
                    painter.add(kind, [road.strip(uu - width / 2, uu + width / 2, ga, gb)], wear)
                    if off <= 0:
                        pieces_all.append((ga, gb))
        z = np.geomspace(1.0, end, 60)
        world = np.stack([road.x(z) + u, np.zeros_like(z), z], 1)
        camp = cam.to_cam(world)
        keep = camp[:, 2] > Z_MIN
        pieces = []
        for a, b in pieces_all:
            pw = cam.to_cam(np.array([[road.x(a) + u, 0, a], [road.x(b) + u, 0, b]]))
            if (pw[:, 2] > Z_MIN).all():
                pieces.append((pw[0], pw[1]))
        lines[k] = LaneLine(kind=kind, image_xy=cam.project_cam(camp[keep]), cam_xyz=camp[keep], pieces=pieces)
    return lines


def _subtract(a, b, gaps):
    """Interval [a, b] minus the union of ``gaps`` intervals."""
    segs = [(a, b)]
    for g0, g1 in gaps:
        nxt = []
        for s0, s1 in segs:
            if g1 <= s0 or g0 >= s1:
                nxt.append((s0, s1))
                continue
            if g0 > s0:
                nxt.append((s0, g0))
            if g1 < s1:
                nxt.append((g1, s1))
        segs = nxt
    return [(s0, s1) for s0, s1 in segs if s1 - s0 > 0.05]


def _lane_centres(road: Road, same_direction=True):
    k0 = road.divider if same_direction else 0
    k1 = road.n if same_direction else road.divider
    return [(road.bounds[k] + road.bounds[k + 1]) / 2 for k in range(k0, k1)]


def _draw_intersection(road, painter, rng):
    """Stop line + zebra crossing; returns the Z interval where lane lines are not painted."""
    z_stop = rng.uniform(6, 32)
    lo = road.bounds[road.divider] if road.divider else road.bounds[0]
    hi = road.bounds[-1]
    kind = str(rng.choice(["stop_line"] * 4 + ["double_stop_line", "dashed_stop_line"]))
    t = rng.uniform(0.3, 0.5)
    if kind == "stop_line":
        painter.add(kind, [road.strip(lo, hi, z_stop, z_stop + t, n=2)])
    elif kind == "double_stop_line":
        painter.add(kind, [road.strip(lo, hi, z_stop, z_stop + t * 0.5, n=2),
                           road.strip(lo, hi, z_stop + t, z_stop + t * 1.5, n=2)])
    else:
        xs = np.arange(lo, hi, 1.2)
        for zz in (z_stop, z_stop + t * 1.5):
            painter.add(kind, [road.strip(x, min(x + 0.6, hi), zz, zz + t * 0.5, n=2) for x in xs])
    z_zeb = z_stop + rng.uniform(1.5, 3.0)
    length = rng.uniform(3.0, 5.0)
    stripe, space = rng.uniform(0.4, 0.5), rng.uniform(0.4, 0.7)
    xs = np.arange(road.left_edge + 0.3, road.right_edge - stripe, stripe + space)
    wear = float(np.clip(rng.beta(5, 1.5), 0.25, 1.0))
    painter.add("zebra", [road.strip(x, x + stripe, z_zeb, z_zeb + length, n=2) for x in xs], wear)
    return z_stop, (z_stop - 0.2, z_zeb + length + rng.uniform(6, 15))


def _place(road, painter, kind, polys_local, u0, z0):
    painter.add(kind, [road.local(p, u0, z0) for p in polys_local])


def _draw_symbols(road, painter, rng, z_stop, gaps, paint: float = 1.0):
    centres = _lane_centres(road)
    arrows = [a for a in mk.ARROWS]
    # arrows in the ego-direction lanes (before the stop line when there is one)
    rows = [z_stop - rng.uniform(6, 14)] if z_stop else []
    rows += [rng.uniform(4, 40) for _ in range(int(rng.integers(0, 3)))]
    for z0 in rows:
        if z0 < 3:
            continue
        length, width = rng.uniform(4.0, 6.0), rng.uniform(0.6, 0.95)
        for u in centres:
            if rng.random() < 0.75:
                kind = str(rng.choice(arrows))
                if _subtract(z0, z0 + length, gaps) != [(z0, z0 + length)]:
                    continue
                polys = mk.arrow_polygons(kind, length, width, rng.uniform(0.14, 0.2) * paint)
                _place(road, painter, kind, polys, u + rng.normal(0, 0.1), z0)
    lane_u = lambda: float(rng.choice(centres))  # noqa: E731
    if rng.random() < 0.2:  # diamond (attention)
        z0, u = rng.uniform(5, 35), lane_u()
        pts = [(0, 0), (0.75, 3.0), (0, 6.0), (-0.75, 3.0)]
        _place(road, painter, "diamond", mk.outline(pts, 0.15 * paint), u, z0)
    if rng.random() < 0.2:  # slow-down bars across a lane
        z0, u = rng.uniform(5, 30), lane_u()
        bars = [np.array([(-1.3, v), (1.3, v), (1.3, v + 0.3), (-1.3, v + 0.3)]) for v in np.arange(0, 6, 1.2)]
        _place(road, painter, "slow_down", bars, u, z0)
    if rng.random() < 0.3:  # speed number
        z0, u = rng.uniform(5, 30), lane_u()
        text = str(int(rng.choice([20, 30, 40, 50, 60, 80])))
        _place(road, painter, "other_marking", mk.digits_polygons(text, rng.uniform(2.0, 3.0), 0.7, 0.15 * paint, 0.3),
               u, z0)
    if rng.random() < 0.2:  # hatched chevron area next to the right edge (yellow one by the centre line)
        yellow = road.divider and rng.random() < 0.5
        u_edge = road.bounds[road.divider] if yellow else road.bounds[-1]
        side = 1.0 if yellow else -1.0
        z0, length, span = rng.uniform(4, 25), rng.uniform(12, 25), rng.uniform(1.2, 2.5)
        polys = mk.outline([(0, 0), (side * span, length), (0, length)], 0.15 * paint)
        for v in np.arange(2.0, length - 1.0, 2.5):
            w = span * v / length
            polys += mk.thick_polyline(np.array([(0, v), (side * w, v + 1.5 * w / span)]), 0.3 * paint)
        _place(road, painter, "chevron_yellow" if yellow else "chevron_white", polys, u_edge, z0)
    if road.parking:  # parking bays on the right shoulder
        z0 = rng.uniform(3, 15)
        u = road.bounds[-1] + 0.2
        bay = [(0, 0), (2.3, 0), (2.3, 5.5), (0, 5.5)]
        polys = []
        for k in range(int(rng.integers(3, 8))):
            polys += [p + (0, k * 6.0) for p in mk.outline(bay, 0.12 * paint)]
        _place(road, painter, "parking_white", polys, u, z0)
    if rng.random() < 0.1:  # no-parking box (yellow grid)
        z0, u = rng.uniform(5, 25), lane_u()
        box = [(-1.5, 0), (1.5, 0), (1.5, 8), (-1.5, 8)]
        polys = mk.outline(box, 0.15 * paint) + mk.thick_polyline(np.array([(-1.5, 0), (1.5, 8)]), 0.15 * paint)
        polys += mk.thick_polyline(np.array([(1.5, 0), (-1.5, 8)]), 0.15 * paint)
        _place(road, painter, "no_parking", polys, u, z0)
    for _ in range(int(rng.poisson(1.5))):  # scribbles / old paint nobody would annotate
        z0, u = rng.uniform(5, 60), rng.uniform(road.left_edge, road.right_edge)
        pts = np.cumsum(rng.normal(0, 0.6, (int(rng.integers(2, 5)), 2)), 0)
        painter.add("paint_noise", [road.local(p, u, z0) for p in mk.thick_polyline(pts, rng.uniform(0.05, 0.15))],
                    wear=float(rng.uniform(0.2, 0.6)))


# ---------------------------------------------------------------------------------------------- objects
def _box_faces(cx, cz, w, length, height, y0=0.0):
    """Faces of an axis-aligned box (world) with near face at Z = cz: near, left, right, top."""
    x0, x1, z0, z1, y1 = cx - w / 2, cx + w / 2, cz, cz + length, y0 + height
    near = np.array([[x0, y0, z0], [x1, y0, z0], [x1, y1, z0], [x0, y1, z0]])
    left = np.array([[x0, y0, z0], [x0, y0, z1], [x0, y1, z1], [x0, y1, z0]])
    right = np.array([[x1, y0, z0], [x1, y0, z1], [x1, y1, z1], [x1, y1, z0]])
    top = np.array([[x0, y1, z0], [x1, y1, z0], [x1, y1, z1], [x0, y1, z1]])
    return near, left, right, top


def _shade(col, k):
    return tuple(float(np.clip(c * k, 0, 255)) for c in col)


class Objects:
    """Vertical things, drawn far to near."""

    def __init__(self, road: Road, rng):
        self.road, self.rng = road, rng
        self.items = []  # (depth, callable)
        self.next_inst = 1

    def add(self, depth, fn):
        self.items.append((depth, fn))

    def draw(self, cv: Canvas):
        for _, fn in sorted(self.items, key=lambda t: -t[0]):
            fn(cv)

    # -- vehicles
    def vehicle(self, u, z, kind):
        rng = self.rng
        if kind == "car":
            w, length, height = rng.uniform(1.7, 1.95), rng.uniform(4.0, 4.9), rng.uniform(1.4, 1.7)
        else:
            w, length, height = rng.uniform(2.3, 2.55), rng.uniform(7, 11), rng.uniform(2.8, 3.6)
        col = tuple(float(v) for v in rng.choice([(30, 30, 30), (200, 200, 200), (235, 235, 235), (40, 40, 150),
                                                  (140, 60, 20), (90, 90, 90), (30, 90, 170), (60, 130, 60)]))
        inst = self.next_inst
        self.next_inst += 1
        road = self.road
        x = float(road.x(z)) + u

        def draw(cv: Canvas):
            # contact shadow on the ground (image only)
            shadow = [road.local(np.array([(-w / 2 - 0.2, -0.3), (w / 2 + 0.2, -0.3), (w / 2 + 0.2, length),
                                           (-w / 2 - 0.2, length)]), u, z)]
            mask = np.zeros((cv.h, cv.w), np.float32)
            cv.fill(cv.pix(shadow), 1.0, target=mask)
            cv.img *= (1 - 0.55 * cv2.GaussianBlur(mask, (0, 0), 1.5))[..., None]
            near, left, right, top = _box_faces(x, z, w, length, height, y0=0.25)
            side = left if x > 0 else right
            cv.fill(cv.pix([top]), _shade(col, 1.1), kind, inst)
            cv.fill(cv.pix([side]), _shade(col, 0.75), kind, inst)
            cv.fill(cv.pix([near]), col, kind, inst)
            # glass, lights, wheels, bumper
            gx = w * 0.42
            glass = np.array([[x - gx, 0.25 + height * 0.55, z], [x + gx, 0.25 + height * 0.55, z],
                              [x + gx * 0.9, 0.25 + height * 0.92, z], [x - gx * 0.9, 0.25 + height * 0.92, z]])
            cv.fill(cv.pix([glass]), (35, 30, 25))
            for s in (-1, 1):
                lamp = np.array([[x + s * w * 0.45, 0.7, z], [x + s * w * 0.3, 0.7, z], [x + s * w * 0.3, 0.85, z],
                                 [x + s * w * 0.45, 0.85, z]])
                cv.fill(cv.pix([lamp]), (20, 20, 200))
                wheel = np.array([[x + s * w * 0.5, 0, z + 0.2], [x + s * w * 0.5, 0, z + 0.9],
                                  [x + s * w * 0.5, 0.6, z + 0.9], [x + s * w * 0.5, 0.6, z + 0.2]])
                cv.fill(cv.pix([wheel]), (15, 15, 15), kind, inst)
            under = np.array([[x - w / 2, 0.0, z], [x + w / 2, 0.0, z], [x + w / 2, 0.25, z], [x - w / 2, 0.25, z]])
            cv.fill(cv.pix([under]), (12, 12, 12), kind, inst)

        self.add(z, draw)

    def person(self, u, z):
        rng = self.rng
        inst = self.next_inst
        self.next_inst += 1
        road = self.road
        x = float(road.x(z)) + u
        height = rng.uniform(1.55, 1.9)
        shirt = tuple(float(v) for v in rng.integers(20, 230, 3))
        trousers = tuple(float(v) for v in rng.integers(10, 120, 3))

        def draw(cv: Canvas):
            legs = np.array([[x - 0.18, 0, z], [x + 0.18, 0, z], [x + 0.2, height * 0.5, z],
                             [x - 0.2, height * 0.5, z]])
            body = np.array([[x - 0.24, height * 0.5, z], [x + 0.24, height * 0.5, z], [x + 0.22, height * 0.85, z],
                             [x - 0.22, height * 0.85, z]])
            cv.fill(cv.pix([legs]), trousers, "person", inst)
            cv.fill(cv.pix([body]), shirt, "person", inst)
            c = cv.cam.project_cam(cv.cam.to_cam(np.array([[x, height * 0.93, z]])))[0]
            r = cv.cam.f * 0.11 / max(cv.cam.to_cam(np.array([[x, 0, z]]))[0, 2], Z_MIN)
            if r >= 0.5:
                centre = (int(round(c[0] * _ONE)), int(round(c[1] * _ONE)))
                rr = int(round(r * _ONE))
                cv2.circle(cv.img, centre, rr, (60, 90, 140), -1, cv2.LINE_8, _SHIFT)
                cv2.circle(cv.sem, centre, rr, CLASS_ID["person"], -1, cv2.LINE_8, _SHIFT)
                cv2.circle(cv.inst, centre, rr, inst, -1, cv2.LINE_8, _SHIFT)

        self.add(z, draw)

    def pole(self, u, z, top):
        rng = self.rng
        road = self.road
        x = float(road.x(z)) + u
        height = rng.uniform(5, 9)
        col = (float(rng.uniform(70, 140)),) * 3

        def draw(cv: Canvas):
            cv.fill(cv.pix([np.array([[x - 0.1, 0, z], [x + 0.1, 0, z], [x + 0.08, height, z],
                                      [x - 0.08, height, z]])]), col, "pole")
            if top == "sign":
                y0, s = rng.uniform(2.2, 3.2), rng.uniform(0.6, 1.0)
                sc = tuple(float(v) for v in rng.choice([(40, 40, 200), (200, 90, 20), (30, 150, 30), (40, 180, 220)]))
                panel = np.array([[x - s / 2, y0, z - 0.05], [x + s / 2, y0, z - 0.05], [x + s / 2, y0 + s, z - 0.05],
                                  [x - s / 2, y0 + s, z - 0.05]])
                cv.fill(cv.pix([panel]), sc, "traffic_sign")
            elif top == "light":
                y0 = height - 1.2
                box = np.array([[x - 0.2, y0, z - 0.05], [x + 0.2, y0, z - 0.05], [x + 0.2, y0 + 1.0, z - 0.05],
                                [x - 0.2, y0 + 1.0, z - 0.05]])
                cv.fill(cv.pix([box]), (25, 25, 25), "traffic_light")
                lamp = float(rng.integers(0, 3))
                on = np.array([[x - 0.1, y0 + 0.1 + lamp * 0.3, z - 0.06], [x + 0.1, y0 + 0.1 + lamp * 0.3, z - 0.06],
                               [x + 0.1, y0 + 0.3 + lamp * 0.3, z - 0.06], [x - 0.1, y0 + 0.3 + lamp * 0.3, z - 0.06]])
                cv.fill(cv.pix([on]), [(40, 40, 230), (40, 200, 230), (80, 220, 60)][int(lamp)])

        self.add(z, draw)

    def tree(self, u, z):
        rng = self.rng
        road = self.road
        x = float(road.x(z)) + u
        trunk_h, r = rng.uniform(1.8, 3.5), rng.uniform(1.5, 3.5)
        green = np.array([rng.uniform(20, 60), rng.uniform(80, 140), rng.uniform(30, 70)])

        def draw(cv: Canvas):
            cv.fill(cv.pix([np.array([[x - 0.15, 0, z], [x + 0.15, 0, z], [x + 0.12, trunk_h + r, z],
                                      [x - 0.12, trunk_h + r, z]])]), (40, 55, 70), "vegetation")
            cam_c = cv.cam.to_cam(np.array([[x, trunk_h + r, z]]))
            if cam_c[0, 2] < Z_MIN:
                return
            c = cv.cam.project_cam(cam_c)[0]
            rp = cv.cam.f * r / cam_c[0, 2]
            for _ in range(6):
                off = rng.normal(0, 0.35, 2) * rp
                rr = rp * rng.uniform(0.45, 0.8)
                if rr < 0.5:
                    continue
                col = tuple(float(v) for v in np.clip(green * rng.uniform(0.7, 1.3), 0, 255))
                centre = (int(round((c[0] + off[0]) * _ONE)), int(round((c[1] + off[1]) * _ONE)))
                axes = (int(round(rr * _ONE)), int(round(rr * 0.85 * _ONE)))
                cv2.ellipse(cv.img, centre, axes, 0, 0, 360, col, -1, cv2.LINE_8, _SHIFT)
                cv2.ellipse(cv.sem, centre, axes, 0, 0, 360, CLASS_ID["vegetation"], -1, cv2.LINE_8, _SHIFT)

        self.add(z, draw)

    def building(self, u, z0, z1, side):
        rng = self.rng
        road = self.road
        height = rng.uniform(5, 30)
        col = np.array([rng.uniform(60, 200)] * 3) * rng.uniform(0.8, 1.2, 3)
        col = tuple(float(v) for v in np.clip(col, 0, 255))
        depth = rng.uniform(8, 20)

        def draw(cv: Canvas):
            facade = road.wall(u, z0, z1, 0, height)
            front = np.array([[float(road.x(z0)) + u, 0, z0], [float(road.x(z0)) + u + side * depth, 0, z0],
                              [float(road.x(z0)) + u + side * depth, height, z0], [float(road.x(z0)) + u, height, z0]])
            cv.fill(cv.pix([front]), _shade(col, 0.8), "building")
            cv.fill(cv.pix([facade]), col, "building")
            # windows
            win = []
            for y in np.arange(1.2, height - 1.0, 3.0):
                for zz in np.arange(z0 + 1.0, z1 - 1.5, 3.0):
                    win.append(road.wall(u - side * 0.02, zz, zz + 1.4, y, y + 1.5, n=2))
            glass = _shade(col, rng.uniform(0.3, 0.6))
            cv.fill(cv.pix(win), glass)

        self.add(z0, draw)

    def barrier(self, u, z0, z1, kind):
        rng = self.rng
        road = self.road
        height = rng.uniform(1.0, 1.5) if kind == "fence" else rng.uniform(1.0, 2.5)
        col = tuple(float(v) for v in (rng.uniform(60, 160),) * 3)

        def draw(cv: Canvas):
            if kind == "wall":
                cv.fill(cv.pix([road.wall(u, z0, z1, 0, height, n=12)]), col, "wall")
                return
            rails = [road.wall(u, z0, z1, y, y + 0.08, n=12) for y in (0.1, height * 0.5, height - 0.08)]
            posts = [road.wall(u, zz, zz + 0.1, 0, height, n=2) for zz in np.arange(z0, z1, 2.5)]
            cv.fill(cv.pix(rails + posts), col, "fence")

        self.add(z0, draw)


def _populate(road: Road, obj: Objects, rng, z_far):
    # vehicles in lanes (oncoming lanes too)
    for k in range(road.n):
        u = (road.bounds[k] + road.bounds[k + 1]) / 2
        zs = []
        for _ in range(int(rng.poisson(0.8))):
            z = rng.uniform(10 if k == road.ego else 4, 90)
            if all(abs(z - o) > 12 for o in zs):
                zs.append(z)
                obj.vehicle(u + rng.normal(0, 0.25), z, "truck" if rng.random() < 0.15 else "car")
    for side in (-1, 1):
        edge = road.left_edge if side < 0 else road.right_edge
        walk = road.walk_l if side < 0 else road.walk_r
        outer = edge + side * walk
        # poles with signs / lights at the kerb
        for z in np.arange(rng.uniform(5, 25), z_far * 0.6, rng.uniform(18, 40)):
            obj.pole(edge + side * 0.5, z, str(rng.choice(["sign", "light", "none", "sign"])))
        # people on the sidewalk
        for _ in range(int(rng.poisson(1.2))):
            obj.person(edge + side * rng.uniform(0.5, walk - 0.3), rng.uniform(5, 60))
        # fence / wall stretches at the back of the sidewalk
        z = rng.uniform(2, 20)
        while z < z_far * 0.5:
            length = rng.uniform(10, 40)
            if rng.random() < 0.4:
                obj.barrier(outer, z, z + length, "fence" if rng.random() < 0.6 else "wall")
            z += length + rng.uniform(5, 30)
        # trees on a verge, buildings behind
        verge = rng.uniform(1, 6)
        for z in np.arange(rng.uniform(3, 15), z_far * 0.7, rng.uniform(8, 20)):
            if rng.random() < 0.7:
                obj.tree(outer + side * rng.uniform(0.3, verge), z)
        z = rng.uniform(0, 15)
        while z < z_far:
            length = rng.uniform(10, 40)
            if rng.random() < 0.8:
                obj.building(outer + side * (verge + rng.uniform(0.5, 6)), z, z + length, side)
            z += length + rng.uniform(0, 15)


# ---------------------------------------------------------------------------------------------- the scene
def _sky(cv: Canvas, rng, horizon):
    h, w = cv.h, cv.w
    top = np.array([rng.uniform(150, 230), rng.uniform(100, 170), rng.uniform(40, 110)], np.float32)
    bottom = np.array([rng.uniform(190, 250)] * 3, np.float32) * np.array([1.0, 0.97, 0.93], np.float32)
    t = np.clip(np.arange(h, dtype=np.float32) / max(horizon, 1.0), 0, 1)[:, None, None]
    cv.img[:] = top * (1 - t) + bottom * t
    cv.sem[:] = CLASS_ID["sky"]


def _ground(cv: Canvas, road: Road, rng, z_far):
    cam = cv.cam
    # the whole visible ground plane, built in the (yawed) camera frame so it is always in front of the camera
    ground_cam = np.array([[-1e5, cam.h, 1e5], [1e5, cam.h, 1e5], [60, cam.h, Z_MIN], [-60, cam.h, Z_MIN]])
    rolled = np.stack([cam.croll * ground_cam[:, 0] - cam.sroll * ground_cam[:, 1],
                       cam.sroll * ground_cam[:, 0] + cam.croll * ground_cam[:, 1], ground_cam[:, 2]], 1)
    uv = cam.project_cam(rolled)
    pts = [np.round(np.clip(uv, -1e6, 1e6) * _ONE).astype(np.int32)]
    terrain = (rng.uniform(40, 80), rng.uniform(90, 140), rng.uniform(80, 120))
    cv.fill(pts, terrain, "terrain")
    noise = _noise_field(rng, cv.h, cv.w, 12, 0.75, 1.2)[..., None]
    cv.img *= np.where((cv.sem == CLASS_ID["terrain"])[..., None], noise, 1.0)
    far = z_far * 2.5
    walk = (rng.uniform(130, 190),) * 3
    for a, b in ((road.left_edge - road.walk_l, road.left_edge), (road.right_edge, road.right_edge + road.walk_r)):
        cv.fill(cv.pix([road.strip(a, b, 0.3, far)]), walk, "sidewalk")
    kerb = (rng.uniform(150, 210),) * 3
    for a in (road.left_edge, road.right_edge):
        cv.fill(cv.pix([road.strip(a - 0.15, a + 0.15, 0.3, far)]), kerb, "sidewalk")
    grey = rng.uniform(60, 125)
    asphalt = (grey * rng.uniform(0.95, 1.05), grey, grey * rng.uniform(0.95, 1.08))
    mask = np.zeros((cv.h, cv.w), np.float32)
    road_pts = cv.pix([road.strip(road.left_edge, road.right_edge, 0.3, far)])
    cv.fill(road_pts, asphalt, "road", target=None)
    cv.fill(road_pts, 1.0, target=mask)
    # asphalt texture: coarse blotches, fine grain and a few patches
    tex = _noise_field(rng, cv.h, cv.w, rng.uniform(10, 40), 0.9, 1.08) * \
        (1 + rng.normal(0, 0.06, (cv.h, cv.w)).astype(np.float32))
    cv.img *= np.where(mask[..., None] > 0, tex[..., None], 1.0)
    return mask


def _shadows(cv: Canvas, road: Road, rng):
    """Cast shadows of roadside things across the ground (image only)."""
    k = int(rng.integers(0, 6))
    if k == 0:
        return
    mask = np.zeros((cv.h, cv.w), np.float32)
    for _ in range(k):
        z0 = rng.uniform(3, 60)
        length = rng.uniform(2, 25)
        side = rng.choice([-1, 1])
        a = road.left_edge - 3 if side < 0 else road.right_edge + 3
        b = a - side * rng.uniform(3, 14)
        skew = rng.uniform(-3, 3)
        poly = np.array([[a, 0, z0], [b, 0, z0 + skew], [b, 0, z0 + skew + length], [a, 0, z0 + length]])
        poly[:, 0] += road.x(poly[:, 2])
        cv.fill(cv.pix([poly]), 1.0, target=mask)
    mask = cv2.GaussianBlur(mask, (0, 0), rng.uniform(1.0, 3.0))
    cv.img *= (1 - rng.uniform(0.35, 0.65) * np.clip(mask, 0, 1))[..., None]


def _finish(cv: Canvas, rng, horizon):
    h, w = cv.h, cv.w
    img = cv.img
    # haze towards the horizon
    rows = np.arange(h, dtype=np.float32)
    cap = rng.uniform(120, 300)  # above the horizon (buildings, trees) everything counts as this far
    depth = np.minimum(cv.cam.f * cv.cam.h / np.maximum(rows - horizon, 1e-3), cap)
    haze = (1 - np.exp(-depth / rng.uniform(200, 900))).astype(np.float32)[:, None, None]
    haze_col = np.array([rng.uniform(170, 230)] * 3, np.float32)
    strength = rng.uniform(0.2, 0.6)
    img[:] = img * (1 - strength * haze) + haze_col * strength * haze
    # global light: gain, colour cast (dusk / overcast / bright), then gamma through a lookup table
    gain = rng.choice([rng.uniform(0.35, 0.6), rng.uniform(0.7, 1.3)], p=[0.2, 0.8])
    img *= (gain * rng.uniform(0.9, 1.1, 3)).astype(np.float32)
    out = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    gamma = rng.uniform(0.75, 1.3)
    out = cv2.LUT(out, np.clip(255.0 * (np.arange(256) / 255.0) ** gamma + 0.5, 0, 255).astype(np.uint8))
    # sensor: blur (focus / motion), noise
    if rng.random() < 0.5:
        k = int(rng.integers(1, 3)) * 2 + 1
        out = cv2.GaussianBlur(out, (k, k), 0) if rng.random() < 0.5 else cv2.blur(out, (k, 1))
    noise = rng.standard_normal((h, w, 3), dtype=np.float32) * np.float32(rng.uniform(1.5, 6.0))
    return cv2.add(out, noise, dtype=cv2.CV_8U)


def render_scene(rng: np.random.Generator, size: tuple[int, int], *, horizon: tuple[float, float] = (0.4, 0.5),
                 z_far: float = 120.0, world: WorldParams | None = None) -> Scene:
    """A random road scene of ``size`` (W, H); ``horizon`` is the range of the horizon row as a fraction of H;
    ``world`` the :class:`WorldParams` (defaults when None).

    Deterministic for the state of ``rng``.
    """
    world = world or WorldParams()
    w, h = (int(v) for v in size)
    if w < 16 or h < 16:
        raise ValueError(f"scene size must be at least 16x16, got {w}x{h}")
    f = w * rng.uniform(0.75, 1.0)
    cy = h * rng.uniform(*horizon)
    cam = Camera(f, w / 2 + rng.normal(0, 0.015 * w), cy, rng.uniform(1.4, 1.8), math.radians(rng.normal(0, 1.2)),
                 math.radians(rng.normal(0, 0.8)))
    road = Road(rng)
    cv = Canvas(w, h, cam)
    _sky(cv, rng, cy)
    _ground(cv, road, rng, z_far)

    painter = Painter(cv, rng)
    z_stop, gaps = None, []
    if rng.random() < 0.45:
        z_stop, gap = _draw_intersection(road, painter, rng)
        gaps.append(gap)
    lines = _draw_lines(road, painter, rng, cam, gaps, z_far, world.paint_width)
    _draw_symbols(road, painter, rng, z_stop, gaps, world.paint_width)
    painter.composite()
    _shadows(cv, road, rng)

    obj = Objects(road, rng)
    _populate(road, obj, rng, z_far * 1.5)
    obj.draw(cv)
    image = _finish(cv, rng, cy)

    e = road.ego
    slots = [lines.get(k) for k in (e - 1, e, e + 1, e + 2)]
    meta = {"lanes": road.n, "lane_width": road.w, "curvature": road.c, "ego_lane": e, "divider": road.divider,
            "stop_line_z": z_stop, "camera_height": cam.h}
    return Scene(image=image, semantic=cv.sem, instance=cv.inst, lanes=slots, K=cam.K, horizon=cy, meta=meta)
