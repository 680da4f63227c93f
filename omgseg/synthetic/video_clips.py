"""Video clip sampling: 3-6 tracked things moving over a slowly drifting stuff background.

Every clip has one designated track that enters, leaves or crosses the frame through a border
(re-sampled until that track is really seen entering or leaving, and until at least one thing is
visible in the first frame). Often two tracks are sent on crossing paths so they occlude each
other. Other tracks stay, enter, leave, cross, or appear after the first frame. A track keeps its
panoptic segment id (``cat * 1000 + k``) in every frame; stuff segments are ``cat * 1000``.
"""
import dataclasses
import math
from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np

from .categories import CATEGORY_BY_ID, LABEL_DIVISOR
from .compositing import RenderedFrame, ThingSpec, compose_frame, paint_background
from .motion import TrackMotion, sample_deformation
from .stuff_layout import StuffLayout, sample_stuff_layout
from .textures import stuff_texture
from .things import diameter_range, sample_thing_category, sample_thing_color

__all__ = ["TrackInfo", "VideoClip", "sample_video_clip", "is_entering_or_leaving"]

_SIDES = ("left", "right", "top", "bottom")
_OPPOSITE = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}


@dataclass(frozen=True)
class TrackInfo:
    """A thing track of a clip: its index k, segment id, class, motion mode and visible frames."""

    index: int
    segment_id: int
    category_id: int
    mode: str
    visible: Tuple[bool, ...]  # one flag per frame

    @property
    def first_frame(self) -> int:
        return self.visible.index(True)

    @property
    def last_frame(self) -> int:
        return len(self.visible) - 1 - self.visible[::-1].index(True)


@dataclass
class VideoClip:
    """Rendered frames plus the tracks seen in at least one frame (ascending index)."""

    frames: List[RenderedFrame]
    tracks: List[TrackInfo]
    stuff_categories: Dict[int, int]


def is_entering_or_leaving(visible: Tuple[bool, ...]) -> bool:
    """Seen in some frame but absent from the first or the last frame."""
    return any(visible) and (not visible[0] or not visible[-1])


def _inside(rng: np.random.Generator, h: int, w: int, frac: float = 0.12) -> np.ndarray:
    return np.array([rng.uniform(frac * w, (1 - frac) * w), rng.uniform(frac * h, (1 - frac) * h)])


def _outside(rng: np.random.Generator, side: str, h: int, w: int, r: float) -> np.ndarray:
    if side == "left":
        return np.array([-r, rng.uniform(0.15 * h, 0.85 * h)])
    if side == "right":
        return np.array([w + r, rng.uniform(0.15 * h, 0.85 * h)])
    if side == "top":
        return np.array([rng.uniform(0.15 * w, 0.85 * w), -r])
    return np.array([rng.uniform(0.15 * w, 0.85 * w), h + r])


def _place(rng: np.random.Generator, motion: TrackMotion, mode: str, h: int, w: int,
           pair: Tuple[np.ndarray, float, np.ndarray] = None) -> TrackMotion:
    """Set key points (and start frame) of ``motion`` for ``mode``."""
    n = motion.num_frames
    r = motion.max_radius() + motion.wobble_bound() + 2.0
    t_start = 0
    if mode in ("stay", "appear"):
        a = _inside(rng, h, w)
        b = _inside(rng, h, w)
        max_dist = rng.uniform(1.0, 5.0) * (n - 1)
        dist = float(np.hypot(*(b - a)))
        if dist > max_dist:
            b = a + (b - a) * (max_dist / dist)
        if mode == "appear":
            t_start = int(rng.integers(1, max(2, n // 2) + 1))
    elif mode in ("enter", "leave"):
        o = _outside(rng, _SIDES[int(rng.integers(4))], h, w, r)
        q = _inside(rng, h, w, 0.2)
        a, b = (o, q) if mode == "enter" else (q, o)
    elif mode == "cross":
        side = _SIDES[int(rng.integers(4))]
        a, b = _outside(rng, side, h, w, r), _outside(rng, _OPPOSITE[side], h, w, r)
    elif mode == "pair":
        meet, t_meet, velocity = pair
        a = meet - velocity * t_meet
        b = meet + velocity * (n - 1 - t_meet)
    else:
        raise ValueError(mode)
    return dataclasses.replace(motion, start_xy=(float(a[0]), float(a[1])),
                               end_xy=(float(b[0]), float(b[1])), t_start=t_start)


def _sample_modes(rng: np.random.Generator, n_tracks: int, n_frames: int) -> List[str]:
    crossing_ok = n_frames >= 12
    designated = int(rng.integers(n_tracks))
    modes = []
    for k in range(n_tracks):
        if k == designated:
            choices = ["enter", "leave", "cross"] if crossing_ok else ["enter", "leave"]
            modes.append(choices[int(rng.integers(len(choices)))])
        else:
            m = str(rng.choice(["stay", "enter", "leave", "appear", "cross"],
                               p=[0.5, 0.12, 0.12, 0.18, 0.08]))
            modes.append(m if (m != "cross" or crossing_ok) else "stay")
    others = [k for k in range(n_tracks) if k != designated]
    if len(others) >= 2 and rng.random() < 0.7:
        for k in rng.choice(others, 2, replace=False):
            modes[int(k)] = "pair"
    return modes


class _DriftingBackground:
    """Stuff textures on an enlarged canvas, cropped at a slowly moving offset per frame."""

    def __init__(self, rng: np.random.Generator, layout: StuffLayout, h: int, w: int,
                 n_frames: int) -> None:
        self.layout, self.h, self.w = layout, h, w
        self.velocity = rng.uniform(-0.6, 0.6, 2)
        self.margin = int(math.ceil(np.abs(self.velocity).max() * (n_frames - 1))) + 1
        m = self.margin
        self.textures = {c: stuff_texture(CATEGORY_BY_ID[c]["name"], rng, h + 2 * m, w + 2 * m)
                         for c in layout.category_ids}

    def frame(self, t: int) -> Tuple[np.ndarray, np.ndarray]:
        """(background float32 [H, W, 3], stuff category map int32 [H, W]) at frame ``t``."""
        oy = self.margin + int(round(self.velocity[1] * t))
        ox = self.margin + int(round(self.velocity[0] * t))
        crops = {c: tex[oy:oy + self.h, ox:ox + self.w] for c, tex in self.textures.items()}
        cat_map = self.layout.category_map(self.h, self.w, t)
        return paint_background(crops, cat_map), cat_map


def _sample_once(rng: np.random.Generator, h: int, w: int, n_frames: int, min_area: int
                 ) -> Tuple[VideoClip, List[str], List[bool]]:
    layout = sample_stuff_layout(rng, h, w, motion=True)
    background = _DriftingBackground(rng, layout, h, w, n_frames)
    stuff_categories = {c * LABEL_DIVISOR: c for c in layout.category_ids}

    n_tracks = int(rng.integers(3, 7))
    modes = _sample_modes(rng, n_tracks, n_frames)
    meet = np.array([rng.uniform(0.3 * w, 0.7 * w), rng.uniform(0.3 * h, 0.7 * h)])
    t_meet = float(rng.uniform(n_frames / 3.0, 2.0 * n_frames / 3.0))
    theta = rng.uniform(0.0, 2.0 * math.pi)
    pair_count = 0
    d_lo, d_hi = diameter_range(h, w, 16.0, 70.0)
    specs: List[Tuple[ThingSpec, TrackMotion]] = []
    for k, mode in enumerate(modes):
        cat = sample_thing_category(rng)
        diameter = float(math.exp(rng.uniform(math.log(d_lo), math.log(d_hi))))
        motion = sample_deformation(rng, n_frames, diameter)
        pair = None
        if mode == "pair":
            direction = theta + (0.0 if pair_count == 0 else math.pi + rng.uniform(-0.6, 0.6))
            speed = rng.uniform(2.5, 6.0)
            pair = (meet, t_meet, speed * np.array([math.cos(direction), math.sin(direction)]))
            pair_count += 1
        motion = _place(rng, motion, mode, h, w, pair)
        spec = ThingSpec(segment_id=cat * LABEL_DIVISOR + k + 1, category_id=cat,
                         shape=CATEGORY_BY_ID[cat]["name"], pose=motion.pose(0),
                         color=sample_thing_color(rng, cat),
                         shade_angle=float(rng.uniform(0.0, 2.0 * math.pi)),
                         shade=float(rng.uniform(0.05, 0.2)))
        specs.append((spec, motion))
    z_order = [int(i) for i in rng.permutation(n_tracks)]

    frames: List[RenderedFrame] = []
    for t in range(n_frames):
        bg, cat_map = background.frame(t)
        things = [dataclasses.replace(specs[k][0], pose=specs[k][1].pose(t))
                  for k in z_order if specs[k][1].active(t)]
        frames.append(compose_frame(bg, cat_map * LABEL_DIVISOR, things, stuff_categories,
                                    min_area, rng))
    tracks = []
    designated_ok = False
    for k, (spec, _) in enumerate(specs):
        visible = tuple(spec.segment_id in f.segments for f in frames)
        if not any(visible):
            continue
        tracks.append(TrackInfo(index=k, segment_id=spec.segment_id,
                                category_id=spec.category_id, mode=modes[k], visible=visible))
        if modes[k] in ("enter", "leave", "cross") and is_entering_or_leaving(visible):
            designated_ok = True
    first_frame_ok = any(t.visible[0] for t in tracks)
    return VideoClip(frames, tracks, stuff_categories), modes, [designated_ok, first_frame_ok]


def sample_video_clip(rng: np.random.Generator, height: int, width: int, min_frames: int = 8,
                      max_frames: int = 20, min_area: int = 16, attempts: int = 10) -> VideoClip:
    """Sample and render one clip of ``min_frames..max_frames`` frames.

    Re-sampled (up to ``attempts`` times) until some track enters or leaves through a border and
    at least one thing is visible in the first frame.
    """
    if not 1 <= min_frames <= max_frames:
        raise ValueError(f"need 1 <= min_frames <= max_frames, got {min_frames}, {max_frames}")
    n_frames = int(rng.integers(min_frames, max_frames + 1))
    clip = None
    for _ in range(attempts):
        clip, _, checks = _sample_once(rng, height, width, n_frames, min_area)
        if all(checks):
            break
    return clip
