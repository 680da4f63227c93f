"""Thing appearance sampling shared by images and videos: class, colour, size range."""
from typing import Tuple

import numpy as np

from .categories import CATEGORY_BY_ID, THING_IDS

__all__ = ["sample_thing_category", "sample_thing_color", "diameter_range", "REFERENCE_SIDE"]

REFERENCE_SIDE = 256  # diameters below are given for a 256-pixel short side and scale with it
_COLOR_JITTER = 18


def sample_thing_category(rng: np.random.Generator) -> int:
    """A thing category id, uniformly."""
    return int(THING_IDS[int(rng.integers(len(THING_IDS)))])


def sample_thing_color(rng: np.random.Generator, category_id: int) -> Tuple[float, float, float]:
    """The class colour jittered by up to +-18 per channel."""
    base = np.asarray(CATEGORY_BY_ID[category_id]["color"], dtype=np.float64)
    color = np.clip(base + rng.integers(-_COLOR_JITTER, _COLOR_JITTER + 1, 3), 0, 255)
    return tuple(float(c) for c in color)


def diameter_range(height: int, width: int, lo: float = 14.0, hi: float = 90.0
                   ) -> Tuple[float, float]:
    """Shape diameters in pixels for a canvas: (lo, hi) at a 256 short side, scaled with it."""
    s = min(height, width) / REFERENCE_SIDE
    return max(10.0, lo * s), max(16.0, hi * s)
