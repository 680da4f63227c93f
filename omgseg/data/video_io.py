"""Lazy access to the frames of a video: :class:`VideoFrames`.

A video is given as a list of image files, a folder of image files, or a video file. Nothing is
decoded until a frame is asked for, and no decoded frame is kept: ``frames[t]`` reads frame ``t``,
applies the test-time augmentation (the one transform of the video, drawn once from its size) and
returns it. Memory therefore depends on the frame size, never on the video length, which is what
streaming video inference needs.

Cost of ``frames[t]``:

* image files: one image decode (EXIF / 16-bit aware, as :func:`read_image_checked`);
* a video file (OpenCV ``VideoCapture``): the open capture is kept with its position (no frame
  is kept). Reading the next frame (``t`` = previous + 1) costs one decode; a forward jump
  decodes and discards the frames in between (``grab``); a backward jump re-opens the file and
  grabs from frame 0. Container seeking is not used: it is inexact for many codecs. Sequential
  reading is thus linear in the video length, random access quadratic in the worst case.

Errors name the video, the frame index and the file: a missing or corrupt frame (raised when
that frame is read), a frame whose size differs from the video's, an empty folder, a video file
OpenCV cannot open or that has no frame.
"""
import contextlib
import os
import re
from collections.abc import Sequence as SequenceABC
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from PIL import Image

from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T

__all__ = [
    "VideoFrames",
    "IMAGE_EXTENSIONS",
    "describe_video",
    "frame_errors",
    "list_frame_files",
]

# File name endings (lower case) taken as frames when a folder is given.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
# EXIF orientations that swap height and width.
_EXIF_ORIENTATION = 0x0112
_SWAPS_SIZE = (5, 6, 7, 8)


def describe_video(video: Union[dict, object], dataset_name: str = "") -> str:
    """``video 'vid_0001' (dataset 'name')`` for error messages; ``video`` is a record or an id."""
    if isinstance(video, dict):
        dataset_name = dataset_name or video.get("dataset_name") or ""
        video = video.get("video_id", "<no video_id>")
    text = f"video {video!r}"
    if dataset_name:
        text += f" (dataset {dataset_name!r})"
    return text


@contextlib.contextmanager
def frame_errors(video: str, frame: int, file_name: Optional[str] = None):
    """Prefix a ``ValueError`` / ``FileNotFoundError`` / ``OSError`` raised inside with
    ``"<video>, frame <t> (<file>): "``; the exception type is kept."""
    try:
        yield
    except (ValueError, OSError) as e:
        where = f"{video}, frame {frame}" + (f" ({file_name})" if file_name else "")
        if str(e).startswith(where):
            raise
        try:
            new = type(e)(f"{where}: {e}")
        except TypeError:  # an exception type whose constructor wants other arguments
            new = ValueError(f"{where}: {type(e).__name__}: {e}")
        raise new from e


def _natural_key(name: str):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def list_frame_files(folder: str, video: str = "") -> List[str]:
    """Image files of ``folder`` (``IMAGE_EXTENSIONS``), sorted with digit runs compared as
    numbers (``2.jpg`` before ``10.jpg``; zero-padded names sort as plain text)."""
    names = [n for n in os.listdir(folder)
             if n.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, n))]
    if not names:
        raise FileNotFoundError(
            f"{video or 'video'}: no image frames ({', '.join(IMAGE_EXTENSIONS)}) in folder "
            f"{folder!r}"
        )
    return [os.path.join(folder, n) for n in sorted(names, key=_natural_key)]


def _header_size(file_name: str, video: str) -> Tuple[int, int]:
    """(H, W) of an image from its header (no pixel decoding), EXIF rotation applied."""
    with frame_errors(video, 0, file_name):
        if not os.path.isfile(file_name):
            raise FileNotFoundError(f"File not found: {file_name}")
        try:
            with Image.open(file_name) as im:
                width, height = im.size
                try:
                    orientation = int(im.getexif().get(_EXIF_ORIENTATION, 1) or 1)
                except Exception:  # broken EXIF: ignored, as Detectron2 does
                    orientation = 1
        except (OSError, SyntaxError, Image.DecompressionBombError) as e:
            raise ValueError(f"Cannot read the header of {file_name}: {e}") from e
    return (width, height) if orientation in _SWAPS_SIZE else (height, width)


class VideoFrames(SequenceABC):
    """The frames of one video as a lazy ``Sequence`` of HWC uint8 arrays (module docstring).

    Attributes:
        video_id: the id given (else the file / folder name).
        file_names: the frame files (list of str), or None for a video file.
        video_file: the video file, or None for image frames.
        original_size: (H, W) of the stored frames (the record's ``height`` / ``width`` when
            given, else the first frame's header or the container's frame size).
        size: (h, w) of every returned frame, after the test-time augmentation.
        image_format: Detectron2 format of the returned frames ("RGB", "BGR", "L", ...).
        transform: the Detectron2 ``Transform`` applied to every frame.
    """

    def __init__(
        self,
        source: Union[str, os.PathLike, Sequence[str]],
        augmentations: Sequence[T.Augmentation] = (),
        image_format: str = "RGB",
        video_id=None,
        original_size: Optional[Tuple[int, int]] = None,
    ):
        """
        Args:
            source: a list of image files (the frames in order), a folder of image files, or a
                video file any OpenCV build reads (.mp4, .avi, ...). A single image file is a
                one-frame video.
            augmentations: test-time Detectron2 augmentations (e.g. ``ResizeShortestEdge(
                MIN_SIZE_TEST, MAX_SIZE_TEST)``), drawn once for the whole video from its size.
            image_format: format of the returned frames.
            video_id: used in error messages and kept as ``video_id``.
            original_size: (H, W) every frame must have; None: from the first frame's header.
        """
        self.image_format = image_format
        self.file_names: Optional[List[str]] = None
        self.video_file: Optional[str] = None
        self._cap = None  # open cv2.VideoCapture of a video file (never pickled)
        self._next = 0  # index of the frame the open capture returns next
        if isinstance(source, (str, os.PathLike)):
            path = os.fspath(source)
            self.video_id = video_id if video_id is not None else os.path.basename(
                os.path.normpath(path))
            if os.path.isdir(path):
                self.file_names = list_frame_files(path, self._where())
            elif path.lower().endswith(IMAGE_EXTENSIONS):
                self.file_names = [path]
            elif not os.path.isfile(path):
                raise FileNotFoundError(f"{self._where()}: video file not found: {path!r}")
            else:
                self.video_file = path
        else:
            self.video_id = video_id
            if isinstance(source, (bytes, np.ndarray)) or not isinstance(source, SequenceABC):
                raise TypeError(f"{self._where()}: frames must be a list of image files, a folder "
                                f"or a video file, got {type(source).__name__}")
            self.file_names = list(source)
            if not self.file_names:
                raise ValueError(f"{self._where()} has no frames (empty list of frame files)")
            for t, f in enumerate(self.file_names):
                if not isinstance(f, (str, os.PathLike)) or not os.fspath(f):
                    raise TypeError(f"{self._where()}, frame {t}: frame file must be a path, got "
                                    f"{f!r}")
            self.file_names = [os.fspath(f) for f in self.file_names]

        if self.video_file is not None:
            cap = self._open()
            self._length = self._container_length(cap)
            container_size = (int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                              int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)))
            cap.release()
            if original_size is None:
                if min(container_size) <= 0:
                    raise ValueError(f"{self._where()}: OpenCV reports no frame size for "
                                     f"{self.video_file!r}")
                original_size = container_size
        else:
            self._length = len(self.file_names)
            if original_size is None:
                original_size = _header_size(self.file_names[0], self._where())
        self.original_size = (int(original_size[0]), int(original_size[1]))
        if min(self.original_size) <= 0:
            raise ValueError(f"{self._where()}: frame size must be positive, got "
                             f"{self.original_size}")

        # One transform for every frame, drawn from the frame size on a size-only stand-in.
        probe = T.AugInput(np.zeros(self.original_size, dtype=np.uint8))
        self.transform = T.AugmentationList(list(augmentations))(probe)
        self.size = (int(probe.image.shape[0]), int(probe.image.shape[1]))

    # ---------------------------------------------------------------- Sequence protocol
    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index):
        """Frame ``index`` as HWC uint8 after the transform; a slice gives a list of frames."""
        if isinstance(index, slice):
            return [self[t] for t in range(*index.indices(len(self)))]
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f"{self._where()}: frame index must be an int, got "
                            f"{type(index).__name__}")
        t = int(index)
        if t < 0:
            t += len(self)
        if not 0 <= t < len(self):
            raise IndexError(f"{self._where()}: frame {index} out of range (0..{len(self) - 1})")
        frame = self.read_original(t)
        return np.ascontiguousarray(self.transform.apply_image(frame))

    def __iter__(self) -> Iterator[np.ndarray]:
        for t in range(len(self)):
            yield self[t]

    def clip_tensor(self, start: int, stop: int) -> torch.Tensor:
        """Frames ``start:stop`` as the model's ``"video"`` input: uint8 [T, 3, h, w]."""
        frames = self[start:stop]
        if not frames:
            raise IndexError(f"{self._where()}: empty clip {start}:{stop} of {len(self)} frames")
        return torch.stack(
            [torch.as_tensor(np.ascontiguousarray(f.transpose(2, 0, 1))) for f in frames])

    def __repr__(self) -> str:
        src = self.video_file if self.video_file is not None else f"{len(self)} image files"
        return (f"VideoFrames({self._where()}, {src}, original_size={self.original_size}, "
                f"size={self.size})")

    # ---------------------------------------------------------------- reading
    def read_original(self, t: int) -> np.ndarray:
        """Frame ``t`` as stored (HWC uint8 in ``image_format``), size checked, no transform."""
        if self.file_names is not None:
            # Imported here: the dataset mappers import this module (no import cycle).
            from .dataset_mappers.image_io import read_image_checked

            file_name = self.file_names[t]
            record = {"file_name": file_name, "height": self.original_size[0],
                      "width": self.original_size[1]}
            with frame_errors(self._where(), t, file_name):
                return read_image_checked(record, self.image_format)
        with frame_errors(self._where(), t, self.video_file):
            bgr = self._decode(t)
            if tuple(bgr.shape[:2]) != self.original_size:
                raise ValueError(f"decoded frame is {tuple(bgr.shape[:2])} (H, W) but the video "
                                 f"is {self.original_size}")
            return self._convert(bgr)

    def _where(self) -> str:
        return describe_video(self.video_id if self.video_id is not None else "<video>")

    def _open(self):
        cap = cv2.VideoCapture(self.video_file)
        if not cap.isOpened():
            cap.release()
            raise ValueError(f"{self._where()}: OpenCV cannot open the video file "
                             f"{self.video_file!r} (not a video, or a codec this build lacks)")
        return cap

    def _container_length(self, cap) -> int:
        count = int(round(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
        if count <= 0:  # a stream without a frame count: count by demuxing once
            count = 0
            while cap.grab():
                count += 1
        if count <= 0:
            raise ValueError(f"{self._where()}: video file {self.video_file!r} has no frame")
        return count

    def _decode(self, t: int) -> np.ndarray:
        if self._cap is None or t < self._next:
            if self._cap is not None:
                self._cap.release()
            self._cap, self._next = self._open(), 0
        while self._next < t:
            if not self._cap.grab():
                break
            self._next += 1
        ok, frame = (self._cap.read() if self._next == t else (False, None))
        if not ok or frame is None:
            self._cap.release()
            self._cap, self._next = None, 0
            raise ValueError(f"cannot decode frame {t} of {self.video_file!r} (the container "
                             f"lists {len(self)} frames; the file may be truncated)")
        self._next += 1
        return frame

    def _convert(self, bgr: np.ndarray) -> np.ndarray:
        if bgr.ndim == 2:
            bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
        if self.image_format == "BGR":
            return np.ascontiguousarray(bgr)
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        if self.image_format == "RGB":
            return rgb
        out = utils.convert_PIL_to_numpy(Image.fromarray(rgb), self.image_format)
        return out[:, :, None] if out.ndim == 2 else out

    # ---------------------------------------------------------------- pickling / cleanup
    def __getstate__(self):
        state = dict(self.__dict__)
        state["_cap"], state["_next"] = None, 0  # an open capture does not cross processes
        return state

    def close(self) -> None:
        """Release the open video file, if any (reading again re-opens it)."""
        if self._cap is not None:
            self._cap.release()
            self._cap, self._next = None, 0

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
