"""Stuff layouts: a random partition of the canvas into 1-3 regions, each one stuff class.

Regions are separated by straight or wavy boundaries. A boundary may move slowly over time
(offset drift and wave phase drift), which is how a video's background evolves.
"""
import math
from dataclasses import dataclass, field
from typing import List

import numpy as np

from .categories import STUFF_IDS

__all__ = ["Boundary", "StuffLayout", "sample_stuff_layout"]


@dataclass(frozen=True)
class Boundary:
    """A curve across the canvas; ``side`` is True on its bottom (horizontal) / right (vertical).

    For a horizontal boundary, ``y(x) = offset * H + slope * (x - W/2) + amp * sin(2 pi x / period
    + phase) + drift * t`` (and symmetrically for a vertical one). ``phase`` moves by
    ``phase_speed`` per frame.
    """

    vertical: bool
    offset: float
    slope: float = 0.0
    amp: float = 0.0
    period: float = 100.0
    phase: float = 0.0
    drift: float = 0.0
    phase_speed: float = 0.0

    def side(self, height: int, width: int, t: float = 0.0) -> np.ndarray:
        """Boolean [height, width]: pixels past the boundary at time ``t``."""
        along_len, across_len = (height, width) if self.vertical else (width, height)
        s = np.arange(along_len, dtype=np.float64)
        pos = (self.offset * across_len + self.slope * (s - along_len / 2.0)
               + self.amp * np.sin(2.0 * math.pi * s / self.period + self.phase
                                   + self.phase_speed * t)
               + self.drift * t)
        across = np.arange(across_len, dtype=np.float64)
        if self.vertical:  # along = y, across = x
            return across[None, :] >= pos[:, None]
        return across[:, None] >= pos[None, :]


@dataclass(frozen=True)
class StuffLayout:
    """Stuff category ids of the regions and the boundaries that separate them.

    ``mode``: "single" (one region), "two" (one boundary), "bands" (two roughly parallel
    boundaries: regions 0 | 1 | 2) or "split" (a boundary, then the far side split again by a
    perpendicular one).
    """

    mode: str
    category_ids: List[int]
    boundaries: List[Boundary] = field(default_factory=list)

    def region_map(self, height: int, width: int, t: float = 0.0) -> np.ndarray:
        """Region index per pixel (uint8 [height, width], values < len(category_ids))."""
        if self.mode == "single":
            return np.zeros((height, width), dtype=np.uint8)
        s1 = self.boundaries[0].side(height, width, t)
        if self.mode == "two":
            return s1.astype(np.uint8)
        s2 = self.boundaries[1].side(height, width, t)
        if self.mode == "bands":
            return s1.astype(np.uint8) + s2.astype(np.uint8)
        return np.where(~s1, 0, np.where(~s2, 1, 2)).astype(np.uint8)  # "split"

    def category_map(self, height: int, width: int, t: float = 0.0) -> np.ndarray:
        """Stuff category id per pixel (int32 [height, width])."""
        lut = np.asarray(self.category_ids, dtype=np.int32)
        return lut[self.region_map(height, width, t)]


def _sample_boundary(rng: np.random.Generator, vertical: bool, lo: float, hi: float,
                     length: int, motion: bool) -> Boundary:
    wavy = rng.random() < 0.6
    return Boundary(
        vertical=vertical,
        offset=float(rng.uniform(lo, hi)),
        slope=float(rng.uniform(-0.35, 0.35)),
        amp=float(rng.uniform(3.0, 0.08 * length)) if wavy else 0.0,
        period=float(rng.uniform(0.4, 1.5) * length),
        phase=float(rng.uniform(0.0, 2.0 * math.pi)),
        drift=float(rng.uniform(-0.4, 0.4)) if motion else 0.0,
        phase_speed=float(rng.uniform(-0.06, 0.06)) if motion else 0.0,
    )


def sample_stuff_layout(rng: np.random.Generator, height: int, width: int,
                        motion: bool = False) -> StuffLayout:
    """Sample 1-3 regions with distinct stuff classes; ``motion`` makes the boundaries drift."""
    n_regions = int(rng.choice([1, 2, 3], p=[0.2, 0.45, 0.35]))
    cats = [int(c) for c in rng.permutation(STUFF_IDS)[:n_regions]]
    if n_regions == 1:
        return StuffLayout("single", cats)
    vertical = bool(rng.random() < 0.3)
    length = height if vertical else width
    if n_regions == 2:
        return StuffLayout("two", cats, [_sample_boundary(rng, vertical, 0.3, 0.7, length, motion)])
    if rng.random() < 0.5:
        b1 = _sample_boundary(rng, vertical, 0.2, 0.42, length, motion)
        b2 = _sample_boundary(rng, vertical, 0.58, 0.8, length, motion)
        return StuffLayout("bands", cats, [b1, b2])
    b1 = _sample_boundary(rng, vertical, 0.25, 0.5, length, motion)
    b2 = _sample_boundary(rng, not vertical, 0.3, 0.7, height if not vertical else width, motion)
    return StuffLayout("split", cats, [b1, b2])
