"""Drawing of user prompts (clicks, boxes, strokes) and of per-prompt answers.

The answers are drawn with :func:`~omgseg.utils.visualization.draw_index_map` (Detectron2's
``Visualizer``, object ``k`` in ``track_color(k)``); the prompts go on top in white with a dark
outline, so they stay visible on any mask colour. Images are HWC uint8 RGB; prompt coordinates are
pixels of the image given (``scale`` maps them to the drawn picture).
"""
from typing import Optional, Sequence

import cv2
import numpy as np

from .visualization import draw_index_map

__all__ = ["draw_prompts", "draw_prompt_answers", "masks_to_index_map"]

_WHITE = (255, 255, 255)
_DARK = (20, 20, 20)


def masks_to_index_map(masks: np.ndarray) -> np.ndarray:
    """bool [N, H, W] masks -> uint8 [H, W] index map (mask k -> value k + 1, 0 = none); larger
    masks are painted first, so a small mask inside a large one stays visible. N <= 254."""
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3:
        raise ValueError(f"masks must be [N, H, W], got shape {masks.shape}")
    if len(masks) > 254:
        raise ValueError(f"at most 254 masks can be drawn as one index map, got {len(masks)}")
    index = np.zeros(masks.shape[1:], np.uint8)
    for k in np.argsort(-masks.reshape(len(masks), -1).sum(1), kind="stable"):
        index[masks[k]] = k + 1
    return index


def draw_prompts(
    picture: np.ndarray,
    points: Optional[Sequence[Sequence[float]]] = None,
    boxes: Optional[Sequence[Sequence[float]]] = None,
    strokes: Optional[np.ndarray] = None,
    scale: float = 1.0,
) -> np.ndarray:
    """Draw prompts on a copy of ``picture`` (HWC uint8 RGB).

    Args:
        points: [N, 2] (x, y) clicks; boxes: [M, 4] xyxy; strokes: bool [S, H0, W0] or [H0, W0]
            stroke / region pixels (outlined). Coordinates are pixels of the original image;
            ``scale`` = picture size / original size.
    """
    out = np.ascontiguousarray(picture.copy())
    radius = max(3, int(round(4 * scale)))
    for x, y in np.asarray(points if points is not None else [], dtype=float).reshape(-1, 2):
        center = (int(round(x * scale)), int(round(y * scale)))
        cv2.circle(out, center, radius + 1, _DARK, -1, lineType=cv2.LINE_AA)
        cv2.circle(out, center, radius, _WHITE, -1, lineType=cv2.LINE_AA)
    for box in np.asarray(boxes if boxes is not None else [], dtype=float).reshape(-1, 4):
        p0 = (int(round(box[0] * scale)), int(round(box[1] * scale)))
        p1 = (int(round(box[2] * scale)), int(round(box[3] * scale)))
        cv2.rectangle(out, p0, p1, _DARK, 3)
        cv2.rectangle(out, p0, p1, _WHITE, 1)
    if strokes is not None:
        strokes = np.asarray(strokes, dtype=bool)
        if strokes.ndim == 2:
            strokes = strokes[None]
        for s in strokes:
            up = cv2.resize(s.astype(np.uint8), out.shape[1::-1],
                            interpolation=cv2.INTER_NEAREST).astype(bool)
            outline = cv2.dilate(up.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
            out[outline] = _DARK
            out[up] = _WHITE
    return out


def draw_prompt_answers(
    image: np.ndarray,
    masks: np.ndarray,
    labels: Sequence[str],
    scale: float = 1.0,
) -> np.ndarray:
    """Draw one answer mask per prompt (bool [P, H, W]) on ``image`` (HWC uint8 RGB, H x W),
    mask k in ``track_color(k + 1)`` with text ``labels[k]``."""
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3 or masks.shape[1:] != image.shape[:2]:
        raise ValueError(f"masks must be [P, H, W] of the image size {image.shape[:2]}, got "
                         f"{masks.shape}")
    if len(labels) != len(masks):
        raise ValueError(f"{len(labels)} labels for {len(masks)} masks")
    index = masks_to_index_map(masks)
    return draw_index_map(image, index, scale=scale,
                          labels={k + 1: str(lab) for k, lab in enumerate(labels)})
