"""Command-line and web inputs of the demos, parsed and checked before any model is built.

Every problem raises :class:`DemoInputError` with a one-line message naming the argument or file.

Forms:

* vocabulary: ``"cat,dog,grass"`` (one class per comma) or a text file with one class per line
  whose commas separate synonyms of that class (``person,child,people``); empty lines and lines
  starting with ``#`` are skipped;
* points: ``"x,y[;x,y...]"``; boxes: ``"x0,y0,x1,y1[;...]"`` (pixels of the original image);
* a mask / scribble image: a file whose non-zero pixels are the region; one object per distinct
  non-zero value (grey level, palette index or colour), in increasing value order.
"""
import glob
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = [
    "DemoInputError",
    "check_inside",
    "expand_inputs",
    "parse_boxes",
    "parse_points",
    "parse_vocabulary",
    "read_image_rgb",
    "read_object_masks",
]


class DemoInputError(ValueError):
    """A demo input (file, prompt, vocabulary) that cannot be used; the message is one line."""


def parse_vocabulary(value: str, what: str = "--vocabulary") -> List[str]:
    """Class names from a comma-separated string or a file (module docstring).

    Returns:
        the class strings (a string may hold comma-separated synonyms when read from a file).
    """
    if value is None:
        raise DemoInputError(f"{what}: no vocabulary given")
    if os.path.isfile(value):
        try:
            with open(value, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise DemoInputError(f"{what}: cannot read vocabulary file {value!r}: {e}") from None
        names = [line.strip() for line in lines
                 if line.strip() and not line.strip().startswith("#")]
        names = [",".join(s.strip() for s in n.split(",") if s.strip()) for n in names]
        names = [n for n in names if n]
        source = f"vocabulary file {value!r}"
    else:
        names = [n.strip() for n in value.split(",") if n.strip()]
        source = f"{value!r}"
    if not names:
        raise DemoInputError(f"{what}: the vocabulary {source} is empty; give at least one "
                             "class name (e.g. --vocabulary \"cat,dog\")")
    return names


def _numbers(text: str, per_item: int, what: str, form: str) -> np.ndarray:
    items = [s for s in text.replace(" ", "").split(";") if s]
    if not items:
        raise DemoInputError(f"{what}: empty; expected {form}")
    rows = []
    for i, item in enumerate(items):
        parts = item.split(",")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise DemoInputError(f"{what}: item {i + 1} {item!r} is not numbers; expected "
                                 f"{form}") from None
        if len(values) != per_item:
            raise DemoInputError(f"{what}: item {i + 1} {item!r} has {len(values)} numbers, "
                                 f"expected {per_item} ({form})")
        if not np.isfinite(values).all():
            raise DemoInputError(f"{what}: item {i + 1} {item!r} is not finite")
        rows.append(values)
    return np.asarray(rows, dtype=np.float64)


def parse_points(text: str, what: str = "--points") -> np.ndarray:
    """``"x,y;x,y"`` -> float [N, 2] (x, y)."""
    return _numbers(text, 2, what, "x,y[;x,y...]")


def parse_boxes(text: str, what: str = "--boxes") -> np.ndarray:
    """``"x0,y0,x1,y1;..."`` -> float [N, 4] xyxy, each with x0 < x1 and y0 < y1."""
    boxes = _numbers(text, 4, what, "x0,y0,x1,y1[;...]")
    for i, b in enumerate(boxes):
        if not (b[2] > b[0] and b[3] > b[1]):
            raise DemoInputError(f"{what}: box {i + 1} {b.tolist()} is inverted or empty (need "
                                 "x0 < x1 and y0 < y1)")
    return boxes


def check_inside(size: Tuple[int, int], points: Optional[np.ndarray] = None,
                 boxes: Optional[np.ndarray] = None, where: str = "the image") -> None:
    """Raise when a point or box corner lies outside an image of ``size`` (H, W)."""
    h, w = size
    for what, arr in (("--points", points), ("--boxes", boxes)):
        if arr is None or np.asarray(arr).size == 0:
            continue
        for i, row in enumerate(np.asarray(arr, dtype=float).reshape(len(arr), -1, 2)):
            for x, y in row:
                if not (0 <= x <= w and 0 <= y <= h):
                    raise DemoInputError(
                        f"{what}: item {i + 1} has ({x:g}, {y:g}) outside {where} "
                        f"(width {w}, height {h}; x, y in pixels)")


def read_image_rgb(path: str, what: str = "--input") -> np.ndarray:
    """An image file as HWC uint8 RGB (EXIF orientation applied); clear errors for a missing or
    unreadable file."""
    if not os.path.exists(path):
        raise DemoInputError(f"{what}: file not found: {path!r}")
    if not os.path.isfile(path):
        raise DemoInputError(f"{what}: not a file: {path!r}")
    try:
        from detectron2.data.detection_utils import read_image

        image = read_image(path, format="RGB")
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
        raise DemoInputError(f"{what}: cannot read image {path!r} ({type(e).__name__}: "
                             f"{' '.join(str(e).split())})") from None
    if image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise DemoInputError(f"{what}: {path!r} is not a usable image (shape {image.shape})")
    return np.ascontiguousarray(image)


def read_object_masks(path: str, size: Tuple[int, int], what: str = "--mask"
                      ) -> np.ndarray:
    """Objects of a mask / scribble image: bool [N, H, W], one per distinct non-zero value.

    Args:
        path: the image file; size: (H, W) it must have (the input image / first frame).
    """
    if not os.path.isfile(path):
        raise DemoInputError(f"{what}: file not found: {path!r}")
    try:
        with Image.open(path) as im:
            im.load()
            arr = np.asarray(im if im.mode in ("P", "L", "1", "I", "I;16") else im.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
        raise DemoInputError(f"{what}: cannot read image {path!r} ({type(e).__name__})") from None
    if tuple(arr.shape[:2]) != tuple(size):
        raise DemoInputError(f"{what}: {path!r} is {arr.shape[1]}x{arr.shape[0]} (WxH) but the "
                             f"image is {size[1]}x{size[0]}")
    if arr.ndim == 3:  # colours -> one integer per colour
        arr = (arr[..., 0].astype(np.int64) << 16) | (arr[..., 1].astype(np.int64) << 8) | arr[
            ..., 2].astype(np.int64)
    values = [v for v in np.unique(arr) if v != 0]
    if not values:
        raise DemoInputError(f"{what}: {path!r} has no non-zero pixel (nothing marked)")
    if len(values) > 100:
        raise DemoInputError(f"{what}: {path!r} has {len(values)} distinct values; expected one "
                             "value (grey level, palette index or colour) per object")
    return np.stack([arr == v for v in values])


def expand_inputs(patterns: Sequence[str]) -> List[str]:
    """``--input`` values (files or glob patterns) -> the files, in order; a pattern that
    matches nothing or a missing file raises."""
    files: List[str] = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            matched = sorted(glob.glob(os.path.expanduser(pattern)))
            if not matched:
                raise DemoInputError(f"--input: the pattern {pattern!r} matches no file")
            files.extend(matched)
        else:
            path = os.path.expanduser(pattern)
            if not os.path.exists(path):
                raise DemoInputError(f"--input: file not found: {pattern!r}")
            files.append(path)
    return files
