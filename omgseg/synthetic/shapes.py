"""Shape rasterisation: the eight thing classes as polygons, posed and filled with OpenCV.

Every shape outline is defined once in a unit frame (circumradius 1, y pointing down), then
stretched by the aspect ratio, rotated, scaled to its diameter and translated. Rings have a hole.
Rasterisation uses ``cv2.fillPoly`` with 4 fractional bits, so poses are sub-pixel accurate and
parts outside the canvas are simply clipped.
"""
import math
from dataclasses import dataclass
from typing import Dict, List, Tuple

import cv2
import numpy as np

__all__ = ["ShapePose", "SHAPE_NAMES", "unit_outline", "posed_polygons", "rasterize_shape",
           "pose_radius"]

_FRACTION_BITS = 4
_FRACTION_SCALE = float(1 << _FRACTION_BITS)


@dataclass(frozen=True)
class ShapePose:
    """Where and how a shape is drawn.

    Attributes:
        cx, cy: centre in pixels (x to the right, y down).
        diameter: size in pixels (twice the circumradius before the aspect stretch).
        angle: rotation in radians (counter-clockwise on screen).
        aspect: width / height stretch (1 = undeformed); x is scaled by sqrt(aspect),
            y by 1 / sqrt(aspect), so the area is preserved.
    """

    cx: float
    cy: float
    diameter: float
    angle: float = 0.0
    aspect: float = 1.0


def _regular_polygon(n: int, radius: float = 1.0, start: float = -math.pi / 2) -> np.ndarray:
    t = start + 2.0 * math.pi * np.arange(n) / n
    return np.stack([radius * np.cos(t), radius * np.sin(t)], axis=1)


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    t = -math.pi / 2 + math.pi * np.arange(2 * points) / points
    r = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def _cross(half_width: float = 0.33) -> np.ndarray:
    a, b = half_width, 1.0
    pts = np.array([
        [-a, -b], [a, -b], [a, -a], [b, -a], [b, a], [a, a],
        [a, b], [-a, b], [-a, a], [-b, a], [-b, -a], [-a, -a],
    ])
    return pts / np.hypot(a, b)


def _heart(n: int = 72) -> np.ndarray:
    t = 2.0 * math.pi * np.arange(n) / n
    x = 16.0 * np.sin(t) ** 3
    y = -(13.0 * np.cos(t) - 5.0 * np.cos(2 * t) - 2.0 * np.cos(3 * t) - np.cos(4 * t))
    pts = np.stack([x, y], axis=1)
    pts -= (pts.max(axis=0) + pts.min(axis=0)) / 2.0
    return pts / np.hypot(pts[:, 0], pts[:, 1]).max()


def _build_outlines() -> Dict[str, Tuple[List[np.ndarray], List[np.ndarray]]]:
    circle = _regular_polygon(64)
    return {
        "circle": ([circle], []),
        "square": ([_regular_polygon(4, start=-math.pi / 4)], []),
        "triangle": ([_regular_polygon(3)], []),
        "star": ([_star()], []),
        "hexagon": ([_regular_polygon(6, start=0.0)], []),
        "ring": ([circle], [0.55 * circle]),
        "cross": ([_cross()], []),
        "heart": ([_heart()], []),
    }


_OUTLINES = _build_outlines()
SHAPE_NAMES: Tuple[str, ...] = tuple(_OUTLINES)


def unit_outline(name: str) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """(outer polygons, hole polygons) of shape ``name`` in its unit frame, each [V, 2]."""
    return _OUTLINES[name]


def _transform(points: np.ndarray, pose: ShapePose) -> np.ndarray:
    sx = math.sqrt(pose.aspect) * pose.diameter / 2.0
    sy = pose.diameter / 2.0 / math.sqrt(pose.aspect)
    c, s = math.cos(pose.angle), math.sin(pose.angle)
    x = points[:, 0] * sx
    y = points[:, 1] * sy
    # counter-clockwise on screen (y down) = clockwise in maths coordinates
    xr = c * x + s * y
    yr = -s * x + c * y
    return np.stack([xr + pose.cx, yr + pose.cy], axis=1)


def posed_polygons(name: str, pose: ShapePose) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """(outer, holes) polygons of shape ``name`` in pixel coordinates."""
    outer, holes = unit_outline(name)
    return [_transform(p, pose) for p in outer], [_transform(p, pose) for p in holes]


def pose_radius(pose: ShapePose) -> float:
    """An upper bound on the distance from the centre to any pixel of the shape."""
    return pose.diameter / 2.0 * max(math.sqrt(pose.aspect), 1.0 / math.sqrt(pose.aspect)) + 1.0


def _fixed_point(polygons: List[np.ndarray]) -> List[np.ndarray]:
    return [np.round(p * _FRACTION_SCALE).astype(np.int32).reshape(-1, 1, 2) for p in polygons]


def rasterize_shape(name: str, pose: ShapePose, height: int, width: int) -> np.ndarray:
    """Boolean mask [height, width] of shape ``name`` drawn with ``pose`` (clipped to canvas)."""
    canvas = np.zeros((height, width), dtype=np.uint8)
    r = pose_radius(pose)
    if (pose.cx + r < -1 or pose.cy + r < -1 or pose.cx - r > width + 1
            or pose.cy - r > height + 1):
        return canvas.astype(bool)
    outer, holes = posed_polygons(name, pose)
    cv2.fillPoly(canvas, _fixed_point(outer), 1, lineType=cv2.LINE_8, shift=_FRACTION_BITS)
    if holes:
        cv2.fillPoly(canvas, _fixed_point(holes), 0, lineType=cv2.LINE_8, shift=_FRACTION_BITS)
    return canvas.astype(bool)
