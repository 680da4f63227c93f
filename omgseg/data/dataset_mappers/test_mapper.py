"""Inference mapper for image datasets (T = 1): shortest-edge resize, Detectron2's input dict."""
import copy

import numpy as np

from detectron2.config import configurable
from detectron2.data import transforms as T

from .clip_transforms import image_to_tensor
from .targets import read_image_checked

__all__ = ["OMGTestDatasetMapper"]


class OMGTestDatasetMapper:
    """``{"image": uint8 [3, H, W], "height", "width", "file_name", "image_id", "dataset_name"}``.

    ``height`` / ``width`` are the original size (the model resizes its outputs back to it).
    ``dataset_name`` is the record's, else the one given at construction (it selects the
    vocabulary in the model).
    """

    @configurable
    def __init__(
        self,
        is_train: bool = False,
        *,
        min_size: int,
        max_size: int,
        image_format: str,
        dataset_name: str = "",
    ):
        if is_train:
            raise ValueError("OMGTestDatasetMapper is an inference mapper (is_train must be False)")
        self.is_train = False
        self.min_size = int(min_size)
        self.max_size = int(max_size)
        self.image_format = image_format
        self.dataset_name = dataset_name or ""
        # MIN_SIZE_TEST == 0 disables resizing (Detectron2 convention).
        self.resize = (
            T.ResizeShortestEdge(self.min_size, self.max_size) if self.min_size > 0 else None
        )

    @classmethod
    def from_config(cls, cfg, is_train: bool = False, dataset_name: str = ""):
        return {
            "is_train": is_train,
            "min_size": cfg.INPUT.MIN_SIZE_TEST,
            "max_size": cfg.INPUT.MAX_SIZE_TEST,
            "image_format": cfg.INPUT.FORMAT,
            "dataset_name": dataset_name,
        }

    def __call__(self, dataset_dict: dict) -> dict:
        dataset_dict = copy.copy(dataset_dict)
        image = read_image_checked(dataset_dict, self.image_format)
        if self.resize is not None:
            image = self.resize.get_transform(image).apply_image(image)
        return {
            "image": image_to_tensor(np.ascontiguousarray(image)),
            "height": int(dataset_dict["height"]),
            "width": int(dataset_dict["width"]),
            "file_name": dataset_dict["file_name"],
            "image_id": dataset_dict.get("image_id", dataset_dict["file_name"]),
            "dataset_name": dataset_dict.get("dataset_name") or self.dataset_name,
        }
