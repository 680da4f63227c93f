"""Frame compositing: paint things in z-order over a stuff background, track visible masks.

The panoptic id map is produced together with the RGB image, so every pixel's colour and label
agree. A thing whose visible area falls below ``min_area`` is removed from the frame altogether
(not drawn, not labelled) and the frame is recomposed, so no pixel is ever labelled with a dropped
instance and no visible shape is left unlabelled.
"""
import math
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Sequence, Tuple

import cv2
import numpy as np

from .shapes import ShapePose, rasterize_shape

__all__ = ["ThingSpec", "RenderedFrame", "visible_areas", "compose_frame", "paint_background"]


@dataclass(frozen=True)
class ThingSpec:
    """One thing to draw: its panoptic segment id, class, shape name, pose and appearance.

    ``shade_angle`` is the direction (radians, in the shape's own frame) of a linear shading
    gradient; ``shade`` its strength (fraction of the colour).
    """

    segment_id: int
    category_id: int
    shape: str
    pose: ShapePose
    color: Tuple[float, float, float]
    shade_angle: float = 0.0
    shade: float = 0.12


@dataclass
class RenderedFrame:
    """A finished frame: RGB image, panoptic segment-id map and the segments present in it.

    ``segments`` maps every segment id present in ``panoptic`` to its category id, in ascending id
    order; ``dropped`` lists thing segment ids that were removed for being too small.
    """

    image: np.ndarray  # uint8 [H, W, 3] RGB
    panoptic: np.ndarray  # int32 [H, W]
    segments: Dict[int, int]
    dropped: List[int] = field(default_factory=list)

    def segment_masks(self) -> Iterator[Tuple[int, int, np.ndarray]]:
        """(segment id, category id, boolean mask) of every segment, ascending id."""
        for seg_id, cat in self.segments.items():
            yield seg_id, cat, self.panoptic == seg_id


def visible_areas(masks: Sequence[np.ndarray], base: np.ndarray = None) -> List[int]:
    """Visible pixel counts of ``masks`` painted in order (later masks occlude earlier ones)."""
    if not masks:
        return []
    label = np.full(masks[0].shape, -1, dtype=np.int32) if base is None else base.copy()
    for i, m in enumerate(masks):
        label[m] = i
    counts = np.bincount(label[label >= 0].ravel(), minlength=len(masks))
    return [int(c) for c in counts[:len(masks)]]


def paint_background(textures: Dict[int, np.ndarray], category_map: np.ndarray) -> np.ndarray:
    """Compose stuff textures (category id -> float [H, W, 3]) according to ``category_map``."""
    out = np.zeros(category_map.shape + (3,), dtype=np.float32)
    for cat, tex in textures.items():
        sel = category_map == cat
        out[sel] = tex[sel]
    return out


def _paint_thing(image: np.ndarray, mask: np.ndarray, thing: ThingSpec) -> None:
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return
    pose = thing.pose
    direction = thing.shade_angle + pose.angle
    proj = ((xs - pose.cx) * math.cos(direction) + (ys - pose.cy) * math.sin(direction))
    proj = np.clip(proj / max(pose.diameter / 2.0, 1.0), -1.0, 1.0).astype(np.float32)
    color = np.asarray(thing.color, dtype=np.float32)
    image[ys, xs] = color[None, :] * (1.0 + thing.shade * proj)[:, None]
    # a darker one-pixel rim makes touching instances of the same class separable by eye
    inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8), borderValue=1).astype(bool)
    rim = mask & ~inner
    image[rim] = color * 0.6


def compose_frame(background: np.ndarray, stuff_segments: np.ndarray, things: Sequence[ThingSpec],
                  stuff_categories: Dict[int, int], min_area: int,
                  rng: np.random.Generator, noise_sigma: float = 2.5) -> RenderedFrame:
    """Draw ``things`` (bottom to top) over ``background``.

    Args:
        background: float32 [H, W, 3] stuff texture composite.
        stuff_segments: int32 [H, W] stuff segment id per pixel (covers every pixel).
        things: things in z-order, bottom first.
        stuff_categories: stuff segment id -> category id.
        min_area: things with fewer visible pixels are removed (iterated to a fixed point).
        rng: source of the per-pixel sensor noise.
        noise_sigma: standard deviation of that noise (0 disables it).
    """
    height, width = stuff_segments.shape
    masks = [rasterize_shape(t.shape, t.pose, height, width) for t in things]
    active = list(range(len(things)))
    dropped: List[int] = []
    while True:
        areas = visible_areas([masks[i] for i in active])
        small = [i for i, a in zip(active, areas) if a < min_area]
        if not small:
            break
        dropped.extend(things[i].segment_id for i in small)
        active = [i for i in active if i not in small]
    panoptic = stuff_segments.astype(np.int32).copy()
    image = background.astype(np.float32).copy()
    for i in active:
        panoptic[masks[i]] = things[i].segment_id
        _paint_thing(image, masks[i], things[i])
    if noise_sigma > 0:
        image += rng.normal(0.0, noise_sigma, image.shape).astype(np.float32)
    image_u8 = np.clip(np.round(image), 0, 255).astype(np.uint8)
    categories = dict(stuff_categories)
    categories.update({t.segment_id: t.category_id for t in things})
    present = np.unique(panoptic)
    segments = {int(s): int(categories[int(s)]) for s in present}
    return RenderedFrame(image=image_u8, panoptic=panoptic, segments=segments,
                         dropped=sorted(dropped))
