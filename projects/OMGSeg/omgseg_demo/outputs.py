"""Output files written whole or not at all: a temporary sibling, then ``os.replace``.

``write_image`` writes a PNG / JPG; :class:`VideoSink` an mp4 frame by frame (OpenCV
``VideoWriter``, ``mp4v``). A failure (or Ctrl-C) removes the temporary file and leaves any
previous output untouched.
"""
import os
from typing import List, Optional, Sequence

import cv2
import numpy as np

from omgseg.utils.file_io import atomic_output

from .inputs import DemoInputError

__all__ = ["IMAGE_SUFFIXES", "VideoSink", "output_paths", "write_image"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def write_image(path: str, rgb: np.ndarray) -> None:
    """Write HWC uint8 RGB to ``path`` atomically (format from the extension)."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in IMAGE_SUFFIXES:
        raise DemoInputError(f"--output: {path!r} must end with one of {IMAGE_SUFFIXES}")
    with atomic_output(path, suffix=suffix) as tmp:
        if not cv2.imwrite(tmp, np.ascontiguousarray(rgb[:, :, ::-1])):
            raise DemoInputError(f"--output: OpenCV could not write {path!r}")


def output_paths(output: Optional[str], inputs: Sequence[str], suffix: str) -> List[str]:
    """Detectron2's demo rule: an existing folder (or several inputs) -> ``folder/<input name>``
    with ``suffix``; otherwise ``output`` is the one file."""
    if output is None:
        return []
    if os.path.isdir(output) or len(inputs) > 1:
        if os.path.exists(output) and not os.path.isdir(output):
            raise DemoInputError(f"--output: {output!r} is a file but there are {len(inputs)} "
                                 "inputs; give a folder")
        names = [os.path.splitext(os.path.basename(p))[0] + suffix for p in inputs]
        if len(set(names)) != len(names):
            raise DemoInputError("--output: several inputs share a file name; run them "
                                 "separately")
        return [os.path.join(output, n) for n in names]
    return [output]


class VideoSink:
    """An mp4 written frame by frame to a temporary sibling, renamed on :meth:`close`.

    Use as a context manager: leaving the block with an exception discards the file.
    """

    def __init__(self, path: str, fps: float):
        if not path.lower().endswith(".mp4"):
            raise DemoInputError(f"--output: a video output must end with .mp4, got {path!r}")
        self.path = path
        self.fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else 10.0
        self._context = atomic_output(path, suffix=".mp4")
        self._tmp = None
        self._writer = None
        self.frames = 0

    def __enter__(self) -> "VideoSink":
        self._tmp = self._context.__enter__()
        return self

    def write(self, rgb: np.ndarray) -> None:
        """Append one HWC uint8 RGB frame (every frame must have the first one's size)."""
        if self._writer is None:
            h, w = rgb.shape[:2]
            self._writer = cv2.VideoWriter(self._tmp, cv2.VideoWriter_fourcc(*"mp4v"), self.fps,
                                           (w, h))
            if not self._writer.isOpened():
                raise DemoInputError(f"--output: OpenCV cannot write an mp4 to {self.path!r}")
            self._size = (h, w)
        if rgb.shape[:2] != self._size:
            raise ValueError(f"video frame {self.frames} is {rgb.shape[:2]}, not {self._size}")
        self._writer.write(np.ascontiguousarray(rgb[:, :, ::-1]))
        self.frames += 1

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self._writer is not None:
            self._writer.release()
        if exc_type is None and self.frames == 0:
            error = DemoInputError(f"--output: no frame was written to {self.path!r}")
            self._context.__exit__(DemoInputError, error, None)  # removes the temporary file
            raise error
        return self._context.__exit__(exc_type, exc, tb)
