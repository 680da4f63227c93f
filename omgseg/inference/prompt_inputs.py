"""User prompts in ORIGINAL image coordinates -> checked :class:`~omgseg.data.prompts.Prompts` in
the coordinates of the model's (test-resized) input.

Prompt kinds and their forms (x right, y down, pixels of the original image):

* ``points`` [N, 2] (x, y), each a click; ``point_labels`` [N] must be 1 (foreground): location
  queries answer every prompt with its own mask and have no background clicks;
* ``boxes`` [N, 4] ``xyxy`` with ``x0 < x1``, ``y0 < y1``;
* ``scribbles``: N scribbles, each a polyline [V >= 1, 2] or a list of polylines (strokes),
  drawn ``scribble_width`` px wide;
* ``polygons``: N polygons [V >= 3, 2];
* ``masks`` [N, H, W] (or one [H, W]) bool / 0-1 arrays of the original image size.

Every coordinate must be finite and inside the image (0 <= x <= W, 0 <= y <= H). Errors name the
prompt as ``boxes[1] (box)``. Results keep this order: points, boxes, scribbles, polygons, masks.
"""
from typing import Any, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from detectron2.data import transforms as T

from ..data.prompts import Prompts, mask_box, point_box, rasterize_polygon, rasterize_scribble

__all__ = ["build_prompts", "count_prompts"]


def _array(value: Any, name: str, kind: str, shape_hint: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} ({kind}) must be numeric, {shape_hint}: {e}") from None
    return arr


def _check_finite(arr: np.ndarray, name: str, kind: str) -> None:
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} ({kind}): coordinates must be finite numbers, got "
                         f"{arr.tolist()}")


def _check_inside(xy: np.ndarray, size: Tuple[int, int], name: str, kind: str) -> None:
    h, w = size
    bad = (xy[:, 0] < 0) | (xy[:, 0] > w) | (xy[:, 1] < 0) | (xy[:, 1] > h)
    if bad.any():
        v = xy[int(np.argmax(bad))]
        raise ValueError(f"{name} ({kind}): point ({v[0]:g}, {v[1]:g}) is outside the image "
                         f"(width {w}, height {h}; coordinates are x, y in original pixels)")


def _as_list(value: Any) -> List[Any]:
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        return list(value)
    return list(value)


def count_prompts(points=None, boxes=None, scribbles=None, polygons=None, masks=None) -> int:
    """Number of prompts the arguments hold (without checking them)."""
    n = 0
    for v in (points, boxes, scribbles, polygons):
        n += len(_as_list(v))
    if masks is not None:
        m = np.asarray(masks)
        n += 1 if m.ndim == 2 else len(m)
    return n


def _strokes(scribble: Any, name: str) -> List[np.ndarray]:
    """A scribble as a list of [V, 2] polylines (one stroke, or a list of strokes)."""
    try:
        arr = np.asarray(scribble, dtype=np.float64)
    except (TypeError, ValueError):  # ragged: strokes of different lengths
        arr = None
    if arr is None:
        out = []
        for stroke in scribble:
            out.extend(_strokes(stroke, name))
        return out
    if arr.size == 0:
        return []
    if arr.ndim == 2 and arr.shape[1] == 2:
        return [arr]
    if arr.ndim == 3 and arr.shape[2] == 2:
        return list(arr)
    raise ValueError(f"{name} (scribble) must be [V, 2] (x, y) vertices or a list of such "
                     f"strokes, got shape {arr.shape}")


def build_prompts(
    transform: T.Transform,
    original_size: Tuple[int, int],
    input_size: Tuple[int, int],
    *,
    points: Optional[Any] = None,
    point_labels: Optional[Any] = None,
    boxes: Optional[Any] = None,
    scribbles: Optional[Sequence[Any]] = None,
    polygons: Optional[Sequence[Any]] = None,
    masks: Optional[Any] = None,
    scribble_width: float = 3.0,
    max_prompts: int = 100,
) -> Prompts:
    """Check user prompts and map them through the test resize.

    Args:
        transform: the test transform (original -> input image), e.g. ``ResizeTransform``.
        original_size / input_size: (H, W) of the original and of the input image.
        points, point_labels, boxes, scribbles, polygons, masks: see the module docstring.
        scribble_width: stroke width in original pixels (scaled like the image).
        max_prompts: most prompts accepted (``MODEL.OMG.PROMPT.MAX_PROMPTS``).

    Returns:
        :class:`Prompts` in pixels of the input image.
    """
    total = count_prompts(points, boxes, scribbles, polygons, masks)
    if total == 0:
        raise ValueError("no prompt given: pass points, boxes, scribbles, polygons or masks")
    if total > max_prompts:
        raise ValueError(f"{total} prompts exceed the limit of {max_prompts} per call "
                         f"(MODEL.OMG.PROMPT.MAX_PROMPTS); split them over several predict() "
                         f"calls")
    h, w = original_size
    sy, sx = input_size[0] / float(h), input_size[1] / float(w)
    kinds, boxes_out, regions = [], [], []

    if points is not None:
        pts = _array(points, "points", "point", "[N, 2] (x, y)")
        if pts.size == 0:
            pts = pts.reshape(0, 2)
        if pts.ndim != 2 or pts.shape[1] != 2:
            raise ValueError(f"points must be [N, 2] (x, y), got shape {pts.shape}")
        # all points checked at once; an error names the first bad one
        ok = np.isfinite(pts).all(axis=1) & (pts >= 0).all(axis=1) & (pts <= (w, h)).all(axis=1)
        if not ok.all():
            i = int(np.argmin(ok))
            _check_finite(pts[i], f"points[{i}]", "point")
            _check_inside(pts[i][None], original_size, f"points[{i}]", "point")
        if point_labels is not None:
            labels = np.asarray(point_labels).ravel()
            if len(labels) != len(pts):
                raise ValueError(f"point_labels has {len(labels)} labels for {len(pts)} points")
            if (labels != 1).any():
                i = int(np.argmax(labels != 1))
                raise ValueError(f"points[{i}] (point): label {labels[i]!r} is not supported; "
                                 "location queries take foreground clicks only (label 1), each "
                                 "answered by its own mask")
        for x, y in transform.apply_coords(pts.copy()).tolist():
            kinds.append("point")
            boxes_out.append(point_box(x, y))
            regions.append(None)
    elif point_labels is not None:
        raise ValueError("point_labels given without points")

    for i, b in enumerate(_as_list(boxes)):
        name = f"boxes[{i}]"
        b = _array(b, name, "box", "[4] xyxy").ravel()
        if b.shape != (4,):
            raise ValueError(f"{name} (box) must be 4 numbers x0, y0, x1, y1, got {b.tolist()}")
        _check_finite(b, name, "box")
        _check_inside(b.reshape(2, 2), original_size, name, "box")
        if not (b[2] > b[0] and b[3] > b[1]):
            raise ValueError(f"{name} (box): {b.tolist()} is inverted or has zero area (need "
                             "x0 < x1 and y0 < y1, xyxy)")
        kinds.append("box")
        boxes_out.append([float(v) for v in transform.apply_box(b[None].copy())[0]])
        regions.append(None)

    width_in = max(1, int(round(scribble_width * (sx + sy) / 2)))
    for i, s in enumerate(_as_list(scribbles)):
        name = f"scribbles[{i}]"
        strokes = _strokes(s, name)
        if not strokes or all(len(st) == 0 for st in strokes):
            raise ValueError(f"{name} (scribble) is empty: give at least one (x, y) vertex")
        for st in strokes:
            _check_finite(st, name, "scribble")
            _check_inside(st, original_size, name, "scribble")
        mapped = [transform.apply_coords(st.copy()) for st in strokes if len(st)]
        region = rasterize_scribble(mapped, input_size, width_in)
        if not region.any():
            raise ValueError(f"{name} (scribble) draws no pixel inside the image")
        kinds.append("scribble")
        boxes_out.append(mask_box(region))
        regions.append(region)

    for i, poly in enumerate(_as_list(polygons)):
        name = f"polygons[{i}]"
        v = _array(poly, name, "polygon", "[V >= 3, 2] (x, y)")
        if v.ndim != 2 or v.shape[-1] != 2:
            raise ValueError(f"{name} (polygon) must be [V, 2] (x, y) vertices, got shape "
                             f"{v.shape}")
        if len(v) < 3:
            raise ValueError(f"{name} (polygon) needs at least 3 vertices, got {len(v)}")
        _check_finite(v, name, "polygon")
        _check_inside(v, original_size, name, "polygon")
        region = rasterize_polygon(transform.apply_coords(v.copy()), input_size)
        if not region.any():
            raise ValueError(f"{name} (polygon) covers no pixel (degenerate polygon)")
        kinds.append("polygon")
        boxes_out.append(mask_box(region))
        regions.append(region)

    if masks is not None:
        m = np.asarray(masks)
        if m.ndim == 2:
            m = m[None]
        if m.ndim != 3:
            raise ValueError(f"masks must be [N, H, W] (or one [H, W]), got shape {m.shape}")
        for i, mask in enumerate(m):
            name = f"masks[{i}]"
            if tuple(mask.shape) != tuple(original_size):
                raise ValueError(f"{name} (mask): size {tuple(mask.shape)} differs from the "
                                 f"image's {tuple(original_size)} (H, W)")
            if mask.dtype.kind == "f" and not np.isfinite(mask).all():
                raise ValueError(f"{name} (mask) has non-finite values")
            mask = mask.astype(bool)
            if not mask.any():
                raise ValueError(f"{name} (mask) is empty")
            region = transform.apply_segmentation(mask.astype(np.uint8)).astype(bool)
            if not region.any():  # thinner than a pixel at the input size: area-resize instead
                region = cv2.resize(mask.astype(np.float32), (input_size[1], input_size[0]),
                                    interpolation=cv2.INTER_AREA) > 0
            kinds.append("mask")
            boxes_out.append(mask_box(region))
            regions.append(region)

    return Prompts.from_parts(kinds, boxes_out, regions, input_size)
