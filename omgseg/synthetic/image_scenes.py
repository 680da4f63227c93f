"""Image scene sampling: a stuff layout plus 2-8 posed, possibly occluded things.

Instances are added one at a time on top of the previous ones. A candidate is re-sampled (up to
``attempts`` times, then skipped) when it would leave itself or any earlier instance with fewer
than ``min_area`` visible pixels or less than ``min_visible_fraction`` of its in-canvas area.
"""
import math
from typing import Dict, List

import numpy as np

from .categories import CATEGORY_BY_ID, LABEL_DIVISOR
from .compositing import RenderedFrame, ThingSpec, compose_frame, paint_background, visible_areas
from .shapes import ShapePose, rasterize_shape
from .stuff_layout import sample_stuff_layout
from .textures import stuff_texture
from .things import diameter_range, sample_thing_category, sample_thing_color

__all__ = ["sample_image_scene", "render_stuff"]


def render_stuff(rng: np.random.Generator, category_ids: List[int], category_map: np.ndarray
                 ) -> np.ndarray:
    """Background (float32 [H, W, 3]) with one procedural texture per stuff category."""
    h, w = category_map.shape
    textures = {c: stuff_texture(CATEGORY_BY_ID[c]["name"], rng, h, w) for c in category_ids}
    return paint_background(textures, category_map)


def _sample_thing(rng: np.random.Generator, height: int, width: int, segment_id: int
                  ) -> ThingSpec:
    d_lo, d_hi = diameter_range(height, width)
    # log-uniform: small shapes are as common as large ones
    diameter = float(math.exp(rng.uniform(math.log(d_lo), math.log(d_hi))))
    margin = diameter / 4.0
    cat = sample_thing_category(rng)
    pose = ShapePose(
        cx=float(rng.uniform(margin, width - margin)),
        cy=float(rng.uniform(margin, height - margin)),
        diameter=diameter,
        angle=float(rng.uniform(0.0, 2.0 * math.pi)),
        aspect=float(math.exp(rng.uniform(-0.3, 0.3))),
    )
    return ThingSpec(segment_id=segment_id, category_id=cat, shape=CATEGORY_BY_ID[cat]["name"],
                     pose=pose, color=sample_thing_color(rng, cat),
                     shade_angle=float(rng.uniform(0.0, 2.0 * math.pi)),
                     shade=float(rng.uniform(0.05, 0.2)))


def sample_image_scene(rng: np.random.Generator, height: int, width: int,
                       min_instances: int = 2, max_instances: int = 8, min_area: int = 40,
                       min_visible_fraction: float = 0.25, attempts: int = 20) -> RenderedFrame:
    """Sample and render one image.

    Segment ids: stuff ``cat * 1000``, the k-th thing (z-order, 1-based) ``cat * 1000 + k``.
    """
    layout = sample_stuff_layout(rng, height, width)
    category_map = layout.category_map(height, width)
    background = render_stuff(rng, layout.category_ids, category_map)
    stuff_segments = category_map * LABEL_DIVISOR
    stuff_categories: Dict[int, int] = {c * LABEL_DIVISOR: c for c in layout.category_ids}

    n_target = int(rng.integers(min_instances, max_instances + 1))
    things: List[ThingSpec] = []
    masks: List[np.ndarray] = []
    full_areas: List[int] = []
    for _ in range(n_target):
        for _ in range(attempts):
            cand = _sample_thing(rng, height, width, segment_id=0)
            mask = rasterize_shape(cand.shape, cand.pose, height, width)
            full = int(mask.sum())
            if full < min_area:
                continue
            areas = visible_areas(masks + [mask])
            ok = all(a >= min_area and a >= min_visible_fraction * f
                     for a, f in zip(areas, full_areas + [full]))
            if ok:
                things.append(cand)
                masks.append(mask)
                full_areas.append(full)
                break
    # final ids: k-th instance (z-order, bottom first) gets cat * 1000 + k
    things = [ThingSpec(segment_id=t.category_id * LABEL_DIVISOR + k + 1,
                        category_id=t.category_id, shape=t.shape, pose=t.pose, color=t.color,
                        shade_angle=t.shade_angle, shade=t.shade)
              for k, t in enumerate(things)]
    return compose_frame(background, stuff_segments, things, stuff_categories, min_area, rng)
