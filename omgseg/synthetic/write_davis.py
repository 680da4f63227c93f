"""DAVIS-2017 style writer (semi-supervised VOS): frames, palette index annotations, image sets.

Objects are the thing tracks visible in frame 0, numbered 1..N in track order; every other pixel
(stuff, and tracks that only appear later) is background 0, in every frame.
"""
import shutil
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from .io_utils import davis_palette, write_palette_png
from .paths import SPLITS, OmgShapesPaths, frame_stem
from .video_clips import VideoClip

__all__ = ["DavisWriter", "davis_index_map"]


def davis_index_map(clip: VideoClip, t: int) -> np.ndarray:
    """uint8 [H, W] DAVIS object index of frame ``t`` (objects = tracks visible in frame 0)."""
    frame = clip.frames[t]
    index = np.zeros(frame.panoptic.shape, dtype=np.uint8)
    objects = [tr for tr in clip.tracks if tr.visible[0]]
    for k, track in enumerate(objects, start=1):
        index[frame.panoptic == track.segment_id] = k
    return index


class DavisWriter:
    """Copies frames, writes annotations of both splits; ``finalize`` writes the image sets."""

    def __init__(self, paths: OmgShapesPaths) -> None:
        self.paths = paths
        self.sequences: Dict[str, List[str]] = {s: [] for s in SPLITS}
        self.palette = davis_palette()

    def add_video(self, split: str, name: str, clip: VideoClip,
                  frame_files: Sequence[Path]) -> int:
        """Add a sequence; ``frame_files`` are the already written JPEGs. Returns #objects."""
        frames_dir = self.paths.davis_frames_dir / name
        ann_dir = self.paths.davis_annotations_dir / name
        frames_dir.mkdir(parents=True, exist_ok=True)
        for t, src in enumerate(frame_files):
            shutil.copyfile(src, frames_dir / f"{frame_stem(t)}.jpg")
            write_palette_png(ann_dir / f"{frame_stem(t)}.png", davis_index_map(clip, t),
                              self.palette)
        self.sequences[split].append(name)
        return sum(1 for tr in clip.tracks if tr.visible[0])

    def finalize(self) -> None:
        for split, names in self.sequences.items():
            path = self.paths.davis_imageset(split)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(f"{n}\n" for n in names))
