"""Which frames of a video make a training clip (``INPUT.SAMPLING_FRAME_*``).

Two rules, chosen by ``INPUT.SAMPLING_FRAME_MODE`` (table :data:`FRAME_SAMPLING_MODES`):

* ``"interval"`` (default; the official OMG-Seg ``VideoClipSample(num_selected=2,
  interval=2)`` of every video dataset config): T frames ``s, s + i, ..., s + (T-1) i`` at the
  fixed stride ``i = SAMPLING_FRAME_INTERVAL``, the first frame ``s`` uniform over the starts
  that fit. The official code skips a video shorter than the span ``(T-1) i + 1`` (the dataset
  draws another one); here the stride shrinks to fit instead (``i' = (L-1) // (T-1)``).
* ``"range"`` (Mask2Former's video mapper, ``SAMPLING_FRAME_RANGE`` 20): a reference frame
  uniform over the video, the other T-1 frames drawn from the frames within
  ``+-SAMPLING_FRAME_RANGE`` of it, sorted. Mask2Former draws them with replacement (a clip may
  repeat a frame of a long video); here without replacement while the window has enough frames.

A video with fewer frames than T (including a one-frame video) gives each of its frames once, in
order, then repeats its last frame: e.g. L = 1, T = 2 -> [0, 0]; L = 2, T = 4 -> [0, 1, 1, 1].
``SAMPLING_FRAME_SHUFFLE`` (Mask2Former) shuffles the order of the drawn frames; off by default.
Randomness comes from ``np.random`` (seeded per data-loader worker by Detectron2).
"""
from typing import Callable, Dict, List

import numpy as np

__all__ = ["FrameSampler", "FRAME_SAMPLING_MODES", "sample_by_interval", "sample_in_range"]


def _pad_by_repeating(indices: List[int], num_frames: int) -> List[int]:
    return list(indices) + [indices[-1]] * (num_frames - len(indices))


def sample_by_interval(length: int, num_frames: int, interval: int, rng=np.random) -> List[int]:
    """T frame indices at a fixed stride (shrunk for short videos), the start uniform."""
    if length < num_frames:
        return _pad_by_repeating(list(range(length)), num_frames)
    if num_frames == 1:
        return [int(rng.randint(length))]
    stride = min(interval, (length - 1) // (num_frames - 1))
    start = int(rng.randint(length - (num_frames - 1) * stride))
    return [start + k * stride for k in range(num_frames)]


def sample_in_range(length: int, num_frames: int, frame_range: int, rng=np.random) -> List[int]:
    """A uniform reference frame and T-1 others within +-``frame_range`` of it, sorted."""
    ref = int(rng.randint(length))
    window = [t for t in range(max(0, ref - frame_range), min(length, ref + frame_range + 1))
              if t != ref]
    if len(window) >= num_frames - 1:
        others = rng.choice(len(window), size=num_frames - 1, replace=False) if window else []
        return sorted([ref] + [window[int(k)] for k in others])
    return _pad_by_repeating(sorted([ref] + window), num_frames)


# Frame-sampling rules by INPUT.SAMPLING_FRAME_MODE: (length, sampler) -> frame indices.
FRAME_SAMPLING_MODES: Dict[str, Callable[[int, "FrameSampler"], List[int]]] = {
    "interval": lambda n, s: sample_by_interval(n, s.num_frames, s.interval, s.random),
    "range": lambda n, s: sample_in_range(n, s.num_frames, s.frame_range, s.random),
}


class FrameSampler:
    """``sampler(length) -> [T frame indices]`` by one of :data:`FRAME_SAMPLING_MODES`."""

    def __init__(self, num_frames: int, mode: str = "interval", interval: int = 2,
                 frame_range: int = 20, shuffle: bool = False, rng=None):
        """``rng``: an object with numpy's ``randint`` / ``choice`` / ``shuffle``; None (default,
        picklable): the global ``np.random`` at call time."""
        if mode not in FRAME_SAMPLING_MODES:
            raise ValueError(f"Unknown INPUT.SAMPLING_FRAME_MODE {mode!r}; known: "
                             f"{sorted(FRAME_SAMPLING_MODES)}")
        if num_frames < 1:
            raise ValueError(f"INPUT.NUM_FRAMES must be >= 1, got {num_frames}")
        if interval < 1:
            raise ValueError(f"INPUT.SAMPLING_FRAME_INTERVAL must be >= 1, got {interval}")
        if frame_range < 0:
            raise ValueError(f"INPUT.SAMPLING_FRAME_RANGE must be >= 0, got {frame_range}")
        self.num_frames, self.mode = int(num_frames), mode
        self.interval, self.frame_range = int(interval), int(frame_range)
        self.shuffle, self.rng = bool(shuffle), rng

    def __call__(self, length: int) -> List[int]:
        if length < 1:
            raise ValueError(f"cannot sample frames from a video of {length} frames")
        indices = [int(t) for t in FRAME_SAMPLING_MODES[self.mode](int(length), self)]
        if self.shuffle:
            self.random.shuffle(indices)
        return indices

    @property
    def random(self):
        return np.random if self.rng is None else self.rng

    def __repr__(self) -> str:
        detail = (f"interval={self.interval}" if self.mode == "interval"
                  else f"frame_range={self.frame_range}")
        return (f"FrameSampler(num_frames={self.num_frames}, mode={self.mode!r}, {detail}, "
                f"shuffle={self.shuffle})")
