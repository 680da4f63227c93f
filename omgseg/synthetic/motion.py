"""Per-track motion models for video clips: trajectory, scale, rotation and aspect over time.

A track's centre follows a straight line between two key points plus a small smooth wobble
(a sum of sinusoids that is zero at t = 0 and bounded by ``wobble_bound``); its diameter grows or
shrinks exponentially with a small oscillation; it rotates at a constant rate; its aspect ratio
oscillates (a mild deformation). A track is drawn only in frames ``t_start..t_end``.
"""
import math
from dataclasses import dataclass
from typing import Tuple

import numpy as np

from .shapes import ShapePose

__all__ = ["TrackMotion", "sample_deformation", "MOTION_MODES"]

# stay: inside the frame all along; enter / leave: through a border; cross: in through one border
# and out through the opposite one; appear: pops up inside the frame after the first frame.
MOTION_MODES = ("stay", "enter", "leave", "cross", "appear")


@dataclass(frozen=True)
class TrackMotion:
    """Motion parameters of one track over a clip of ``num_frames`` frames."""

    num_frames: int
    start_xy: Tuple[float, float]
    end_xy: Tuple[float, float]
    diameter: float
    growth: float  # log-scale change over the whole clip
    scale_osc: float
    scale_freq: float
    scale_phase: float
    angle0: float
    spin: float  # radians per frame
    aspect0: float
    aspect_osc: float
    aspect_freq: float
    aspect_phase: float
    wobble_amp: Tuple[float, float, float, float]  # x1, y1, x2, y2 amplitudes (px)
    wobble_freq: Tuple[float, float]
    wobble_phase: Tuple[float, float, float, float]
    t_start: int = 0
    t_end: int = -1  # inclusive; -1 = last frame

    @property
    def last_frame(self) -> int:
        return self.num_frames - 1 if self.t_end < 0 else self.t_end

    def active(self, t: int) -> bool:
        """Whether the track is drawn at frame ``t``."""
        return self.t_start <= t <= self.last_frame

    def wobble_bound(self) -> float:
        """Upper bound of the wobble displacement (px)."""
        return 2.0 * float(np.hypot(self.wobble_amp[0] + self.wobble_amp[2],
                                    self.wobble_amp[1] + self.wobble_amp[3]))

    def center(self, t: float) -> Tuple[float, float]:
        s = t / max(1, self.num_frames - 1)
        x = self.start_xy[0] + s * (self.end_xy[0] - self.start_xy[0])
        y = self.start_xy[1] + s * (self.end_xy[1] - self.start_xy[1])
        ax1, ay1, ax2, ay2 = self.wobble_amp
        f1, f2 = self.wobble_freq
        p = self.wobble_phase
        x += ax1 * (math.sin(f1 * t + p[0]) - math.sin(p[0]))
        x += ax2 * (math.sin(f2 * t + p[2]) - math.sin(p[2]))
        y += ay1 * (math.sin(f1 * t + p[1]) - math.sin(p[1]))
        y += ay2 * (math.sin(f2 * t + p[3]) - math.sin(p[3]))
        return x, y

    def pose(self, t: float) -> ShapePose:
        """The shape pose at frame ``t``."""
        s = t / max(1, self.num_frames - 1)
        diameter = self.diameter * math.exp(self.growth * s) * (
            1.0 + self.scale_osc * math.sin(self.scale_freq * t + self.scale_phase))
        aspect = self.aspect0 * (
            1.0 + self.aspect_osc * math.sin(self.aspect_freq * t + self.aspect_phase))
        cx, cy = self.center(t)
        return ShapePose(cx=cx, cy=cy, diameter=diameter, angle=self.angle0 + self.spin * t,
                         aspect=aspect)

    def max_radius(self) -> float:
        """Largest circumradius over the clip (px), before the wobble."""
        r = 0.0
        for t in range(self.num_frames):
            p = self.pose(t)
            r = max(r, p.diameter / 2.0 * max(math.sqrt(p.aspect), 1.0 / math.sqrt(p.aspect)))
        return r + 1.0


def sample_deformation(rng: np.random.Generator, num_frames: int, diameter: float) -> TrackMotion:
    """A motion with random scale/rotation/aspect/wobble and both key points at the origin.

    Callers set ``start_xy`` / ``end_xy`` / ``t_start`` (``dataclasses.replace``) for the mode.
    """
    return TrackMotion(
        num_frames=num_frames,
        start_xy=(0.0, 0.0),
        end_xy=(0.0, 0.0),
        diameter=diameter,
        growth=float(rng.uniform(-0.4, 0.4)),
        scale_osc=float(rng.uniform(0.0, 0.08)),
        scale_freq=float(rng.uniform(0.2, 0.7)),
        scale_phase=float(rng.uniform(0.0, 2.0 * math.pi)),
        angle0=float(rng.uniform(0.0, 2.0 * math.pi)),
        spin=float(rng.uniform(-0.12, 0.12)),
        aspect0=float(math.exp(rng.uniform(-0.25, 0.25))),
        aspect_osc=float(rng.uniform(0.0, 0.2)),
        aspect_freq=float(rng.uniform(0.2, 0.8)),
        aspect_phase=float(rng.uniform(0.0, 2.0 * math.pi)),
        wobble_amp=tuple(float(a) for a in rng.uniform(0.0, 3.0, 4)),
        wobble_freq=(float(rng.uniform(0.15, 0.4)), float(rng.uniform(0.4, 0.9))),
        wobble_phase=tuple(float(a) for a in rng.uniform(0.0, 2.0 * math.pi, 4)),
    )
