"""Reading images and label PNGs of dataset records, with errors that name the file and field.

On top of :func:`detectron2.data.detection_utils.read_image`:

* 16-bit grayscale images (PIL modes ``I;16*`` / ``I``) are scaled to 8 bit (``v * 255 / 65535``)
  instead of being clipped to 255 by PIL's ``convert``; floating-point images are an error.
  Grayscale, palette, RGBA (alpha dropped, as Detectron2 does), LA and CMYK images are converted
  by PIL to the requested format.
* EXIF orientation: a rotation by 90 degrees (tags 5-8) changes the image size, so the record's
  ``height`` / ``width`` (or, when the record has none, the size of its ground-truth PNG) decide
  which orientation was annotated. If it matches the stored orientation but not the rotated one,
  the stored pixels are used and a warning names the file once; otherwise (including square
  images, where the size cannot tell) the EXIF orientation is applied (Detectron2's behaviour).
  Mirror / 180-degree tags (2-4) keep the size and are always applied.
* a size that matches neither orientation is an error naming the image, the record and, when the
  file has an EXIF rotation, both candidate sizes.
"""
import logging
import os
from typing import Optional, Tuple

import numpy as np
from PIL import Image, ImageOps

from detectron2.data import detection_utils as utils
from detectron2.utils.file_io import PathManager
from detectron2.utils.logger import log_first_n

__all__ = ["read_image_checked", "read_label_image", "record_size", "describe_record"]

logger = logging.getLogger(__name__)

_EXIF_ORIENTATION = 0x0112
# EXIF orientations that swap height and width (transpose, rotate 270, transverse, rotate 90).
_SWAPS_SIZE = (5, 6, 7, 8)
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def describe_record(dataset_dict: dict) -> str:
    """``record 'path/to/image.jpg' (image_id 7)`` for error messages."""
    text = f"record {dataset_dict.get('file_name', '<no file_name>')!r}"
    if "image_id" in dataset_dict:
        text += f" (image_id {dataset_dict['image_id']!r})"
    return text


def _open(file_name, field: str) -> Image.Image:
    """Open and decode an image file; errors name the file and the record field."""
    if not isinstance(file_name, str) or not file_name:
        raise ValueError(f"Record field '{field}' must be a file path, got {file_name!r}")
    try:
        with PathManager.open(file_name, "rb") as f:
            image = Image.open(f)
            image.load()
    except FileNotFoundError as e:
        raise FileNotFoundError(f"File not found: {file_name} (record field '{field}')") from e
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        if not os.path.exists(file_name):
            raise FileNotFoundError(f"File not found: {file_name} (record field '{field}')") from e
        raise ValueError(
            f"Cannot decode {file_name} (record field '{field}'): {type(e).__name__}: {e}"
        ) from e
    return image


def _exif_orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(_EXIF_ORIENTATION, 1) or 1)
    except Exception:  # broken EXIF blocks exist in the wild; Detectron2 ignores them too
        return 1


def _to_eight_bit(image: Image.Image, file_name: str, field: str) -> Image.Image:
    """16-bit grayscale -> 8-bit "L" by scaling; other modes are left to PIL's convert."""
    if image.mode in _SIXTEEN_BIT_MODES or image.mode == "I":
        values = np.asarray(image).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ValueError(
                f"{file_name} (record field '{field}'): 32-bit integer image with values in "
                f"[{values.min()}, {values.max()}]; only 8- and 16-bit images are supported"
            )
        eight = (values * 255 + 32767) // 65535  # round(v * 255 / 65535)
        return Image.fromarray(eight.astype(np.uint8), mode="L")
    if image.mode == "F":
        raise ValueError(
            f"{file_name} (record field '{field}'): floating-point image (PIL mode 'F') is not "
            f"supported; save it as an 8- or 16-bit image"
        )
    return image


def record_size(dataset_dict: dict) -> Optional[Tuple[int, int]]:
    """(H, W) the record's annotations were made at: its ``height`` / ``width``, else the size of
    its panoptic or semantic PNG (header only), else None."""
    if "height" in dataset_dict and "width" in dataset_dict:
        return int(dataset_dict["height"]), int(dataset_dict["width"])
    for field in ("pan_seg_file_name", "sem_seg_file_name"):
        path = dataset_dict.get(field)
        if isinstance(path, str) and os.path.isfile(path):
            try:
                with PathManager.open(path, "rb") as f:
                    width, height = Image.open(f).size
                return height, width
            except (OSError, ValueError, SyntaxError):
                return None  # reported with a clear error when the ground truth is read
    return None


def read_image_checked(
    dataset_dict: dict, image_format: str, field: str = "file_name"
) -> np.ndarray:
    """Read ``dataset_dict[field]`` as an HWC uint8 image in ``image_format`` (module docstring).

    Fills ``height`` / ``width`` when the record lacks them (the record is modified: pass a copy).
    """
    if field not in dataset_dict:
        raise ValueError(f"{describe_record(dataset_dict)} has no '{field}' field")
    file_name = dataset_dict[field]
    image = _open(file_name, field)
    expected = record_size(dataset_dict)
    stored = (image.height, image.width)
    orientation = _exif_orientation(image)
    rotated = orientation in _SWAPS_SIZE
    if orientation != 1:
        if rotated and expected == stored and stored[0] != stored[1]:
            log_first_n(
                logging.WARNING,
                f"{file_name}: EXIF orientation {orientation} rotates the image to "
                f"{stored[::-1]} (H, W) but the annotations are {stored}: the stored orientation "
                f"is used",
                n=1,
                key="message",
            )
        else:
            image = ImageOps.exif_transpose(image)
    image = _to_eight_bit(image, file_name, field)
    array = utils.convert_PIL_to_numpy(image, image_format)
    if array.ndim == 2:
        array = array[:, :, None]
    if image_format in ("RGB", "BGR") and array.shape[2] != 3:
        raise ValueError(f"{file_name}: expected 3 channels, got shape {array.shape}")

    size = tuple(array.shape[:2])
    if expected is not None and size != expected:
        msg = (
            f"{file_name} (record field '{field}') is {size} (H, W) but "
            f"{describe_record(dataset_dict)} expects {expected}"
        )
        if rotated:
            msg += (
                f"; the file has EXIF orientation {orientation}: stored {stored}, rotated "
                f"{stored[::-1]}, and neither matches"
            )
        raise ValueError(msg)
    dataset_dict.setdefault("height", size[0])
    dataset_dict.setdefault("width", size[1])
    return array


def read_label_image(file_name, field: str, image_format: Optional[str]) -> np.ndarray:
    """A ground-truth PNG as stored (no EXIF handling): ``"RGB"`` for panoptic id PNGs, ``None``
    for raw label values (``L`` / ``P`` indices, ``I;16`` values kept)."""
    image = _open(file_name, field)
    return np.asarray(image.convert(image_format) if image_format else image)
