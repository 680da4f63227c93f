"""Track-aware drawing on top of Detectron2's ``Visualizer``: one colour per track id.

Detectron2's ``Visualizer.draw_panoptic_seg`` colours a segment by its class (jittered per
call), so the same object changes colour from frame to frame of a video. Here a thing segment's
colour is a function of its id (stable across frames: the video outputs keep one id per track),
a stuff segment keeps its class colour, and the label says class and track: ``"cat #12"``.

Images are HWC uint8 RGB; outputs are HWC uint8 RGB (``scale`` times the input size).
"""
import colorsys
from typing import Dict, Optional, Sequence

import numpy as np

from detectron2.utils.visualizer import ColorMode, Visualizer

__all__ = ["track_color", "draw_panoptic_tracks", "draw_index_map", "frame_strip", "ALPHA"]

# Opacity of the drawn masks; edges in off-white, as Detectron2's panoptic drawing.
ALPHA = 0.55
_EDGE = (1.0, 1.0, 240.0 / 255)


def track_color(track_id: int) -> np.ndarray:
    """A saturated RGB colour in [0, 1]^3 that depends only on ``track_id`` (golden-ratio hues,
    so consecutive ids get distant colours)."""
    hue = (int(track_id) * 0.618033988749895) % 1.0
    value = 0.95 if int(track_id) % 2 else 0.75
    return np.array(colorsys.hsv_to_rgb(hue, 0.85, value))


def _class_name(metadata, category_id: int) -> str:
    names = metadata.get("stuff_classes", None) or metadata.get("thing_classes", None) or []
    return names[category_id] if 0 <= category_id < len(names) else str(category_id)


def _class_color(metadata, category_id: int) -> np.ndarray:
    colors = metadata.get("stuff_colors", None) or []
    if 0 <= category_id < len(colors):
        return np.asarray(colors[category_id], dtype=float) / 255.0
    return track_color(category_id)


def draw_panoptic_tracks(
    image: np.ndarray,
    ids: np.ndarray,
    segments_info: Sequence[Dict],
    metadata,
    scale: float = 1.0,
) -> np.ndarray:
    """Draw one frame's panoptic segmentation with a colour per track.

    Args:
        image: HWC uint8 RGB.
        ids: int [H, W] segment ids (0 = void), the same id for the same track in every frame.
        segments_info: ``[{"id", "category_id", "isthing"}]`` (contiguous category ids).
        metadata: the dataset's ``MetadataCatalog`` entry (class names and stuff colours).
    """
    ids = np.asarray(ids)
    vis = Visualizer(image, metadata, scale=scale, instance_mode=ColorMode.IMAGE)
    # Stuff first, things on top; draw_binary_mask (as draw_panoptic_seg) keeps holes as holes.
    ordered = sorted(segments_info, key=lambda s: bool(s.get("isthing", True)))
    for seg in ordered:
        mask = ids == int(seg["id"])
        if not mask.any():
            continue
        name = _class_name(metadata, int(seg["category_id"]))
        if seg.get("isthing", True):
            text, color = f"{name} #{int(seg['id'])}", track_color(int(seg["id"]))
        else:
            text, color = name, _class_color(metadata, int(seg["category_id"]))
        vis.draw_binary_mask(mask, color=color, edge_color=_EDGE, text=text, alpha=ALPHA)
    return vis.get_output().get_image()


def draw_index_map(
    image: np.ndarray, index_map: np.ndarray, scale: float = 1.0,
    labels: Optional[Dict[int, str]] = None,
) -> np.ndarray:
    """Draw an object index map (0 = background, k = object k, 255 = void: not drawn), object k
    in ``track_color(k)`` (the VOS / DAVIS format)."""
    index_map = np.asarray(index_map)
    values = [int(v) for v in np.unique(index_map) if 0 < v < 255]
    vis = Visualizer(image, None, scale=scale, instance_mode=ColorMode.IMAGE)
    for v in values:
        vis.draw_binary_mask(index_map == v, color=track_color(v), edge_color=_EDGE,
                             text=(labels or {}).get(v, f"#{v}"), alpha=ALPHA)
    return vis.get_output().get_image()


def frame_strip(rows: Sequence[Sequence[np.ndarray]], gap: int = 4) -> np.ndarray:
    """Tile pictures into one image: ``rows[r][c]`` (HWC uint8, all one size) at row r, column c,
    separated by ``gap`` white pixels."""
    if not rows or not rows[0]:
        raise ValueError("frame_strip needs at least one picture")
    h, w = rows[0][0].shape[:2]
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    out = np.full((n_rows * h + (n_rows - 1) * gap, n_cols * w + (n_cols - 1) * gap, 3), 255,
                  dtype=np.uint8)
    for r, row in enumerate(rows):
        for c, pic in enumerate(row):
            if pic.shape[:2] != (h, w):
                raise ValueError(
                    f"frame_strip: picture ({r}, {c}) is {pic.shape[:2]}, not {(h, w)}"
                )
            out[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w] = pic[..., :3]
    return out
