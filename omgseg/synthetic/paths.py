"""The on-disk layout of OMG-Shapes (one place, shared by the writers, the CLI and readers).

::

    meta.json
    images/{split}/{000000..}.jpg
    panoptic_{split}.json, panoptic_{split}/{000000..}.png
    instances_{split}.json
    panoptic_semseg_{split}/{000000..}.png
    videos/JPEGImages/{split}/<video>/{00000..}.jpg
    videos/ytvis_{split}.json
    videos/panoptic_video_{split}.json, videos/panoptic_video_{split}/<video>/{00000..}.png
    davis/JPEGImages/480p/<video>/{00000..}.jpg, davis/Annotations/480p/<video>/{00000..}.png
    davis/ImageSets/2017/{split}.txt
"""
import os
from pathlib import Path
from typing import Optional, Union

__all__ = ["SPLITS", "OmgShapesPaths", "default_omg_shapes_root", "image_stem", "frame_stem",
           "video_name"]

SPLITS = ("train", "val")


def default_omg_shapes_root() -> Path:
    """``$DETECTRON2_DATASETS/omg_shapes`` (``DETECTRON2_DATASETS`` defaults to "datasets")."""
    return Path(os.getenv("DETECTRON2_DATASETS", "datasets")) / "omg_shapes"


def image_stem(index: int) -> str:
    """File stem of image ``index``: "000000"."""
    return f"{index:06d}"


def frame_stem(t: int) -> str:
    """File stem of frame ``t`` of a video: "00000"."""
    return f"{t:05d}"


def video_name(index: int) -> str:
    """Name of a video; videos are numbered across splits (train first) so names are unique."""
    return f"vid_{index:04d}"


class OmgShapesPaths:
    """Paths of every part of the dataset under ``root``."""

    def __init__(self, root: Optional[Union[str, os.PathLike]] = None) -> None:
        self.root = Path(root) if root is not None else default_omg_shapes_root()

    @property
    def meta(self) -> Path:
        return self.root / "meta.json"

    def image_dir(self, split: str) -> Path:
        return self.root / "images" / split

    def panoptic_json(self, split: str) -> Path:
        return self.root / f"panoptic_{split}.json"

    def panoptic_dir(self, split: str) -> Path:
        return self.root / f"panoptic_{split}"

    def instances_json(self, split: str) -> Path:
        return self.root / f"instances_{split}.json"

    def semseg_dir(self, split: str) -> Path:
        return self.root / f"panoptic_semseg_{split}"

    def video_frames_dir(self, split: str) -> Path:
        return self.root / "videos" / "JPEGImages" / split

    def ytvis_json(self, split: str) -> Path:
        return self.root / "videos" / f"ytvis_{split}.json"

    def vps_json(self, split: str) -> Path:
        return self.root / "videos" / f"panoptic_video_{split}.json"

    def vps_dir(self, split: str) -> Path:
        return self.root / "videos" / f"panoptic_video_{split}"

    @property
    def davis_root(self) -> Path:
        return self.root / "davis"

    @property
    def davis_frames_dir(self) -> Path:
        return self.davis_root / "JPEGImages" / "480p"

    @property
    def davis_annotations_dir(self) -> Path:
        return self.davis_root / "Annotations" / "480p"

    def davis_imageset(self, split: str) -> Path:
        return self.davis_root / "ImageSets" / "2017" / f"{split}.txt"
