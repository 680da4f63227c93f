"""Inference mapper for image datasets (T = 1): Detectron2's ``DatasetMapper`` with our reader."""
import copy

from detectron2.config import configurable
from detectron2.data import DatasetMapper
from detectron2.data import transforms as T

from .clip_transforms import image_to_tensor
from .image_io import read_image_checked
from .targets import check_panoptic_ground_truth

__all__ = ["OMGTestDatasetMapper"]


class OMGTestDatasetMapper(DatasetMapper):
    """Detectron2's test-time ``DatasetMapper`` (its augmentations: ``ResizeShortestEdge(
    MIN_SIZE_TEST, MAX_SIZE_TEST)``, none when ``MIN_SIZE_TEST`` is 0), reading images with
    :func:`read_image_checked` (16-bit, EXIF and size checks) and stamping ``dataset_name``.

    A panoptic record's PNG is checked against its ``segments_info`` (an error naming the PNG, as
    in training): the evaluator scores that ground truth, and a mismatch would silently lower PQ.

    Output: the record (without ``annotations`` / ``sem_seg_file_name``, as Detectron2) plus
    ``"image"``: uint8 [3, H, W] and ``"dataset_name"`` (the record's, else the one given here:
    it selects the vocabulary in the model). ``height`` / ``width`` are the original size.
    """

    @configurable
    def __init__(
        self,
        is_train: bool = False,
        *,
        augmentations,
        image_format: str,
        dataset_name: str = "",
    ):
        if is_train:
            raise ValueError("OMGTestDatasetMapper is an inference mapper (is_train must be False)")
        super().__init__(False, augmentations=augmentations, image_format=image_format)
        self.dataset_name = dataset_name or ""

    @classmethod
    def from_config(cls, cfg, is_train: bool = False, dataset_name: str = ""):
        ret = DatasetMapper.from_config(cfg, is_train=False)
        return {
            "is_train": is_train,
            "augmentations": ret["augmentations"],
            "image_format": ret["image_format"],
            "dataset_name": dataset_name,
        }

    def __call__(self, dataset_dict: dict) -> dict:
        dataset_dict = copy.copy(dataset_dict)
        image = read_image_checked(dataset_dict, self.image_format)
        check_panoptic_ground_truth(dataset_dict, image.shape[:2])
        aug_input = T.AugInput(image)
        self.augmentations(aug_input)
        dataset_dict["image"] = image_to_tensor(aug_input.image)
        dataset_dict["dataset_name"] = dataset_dict.get("dataset_name") or self.dataset_name
        dataset_dict.pop("annotations", None)
        dataset_dict.pop("sem_seg_file_name", None)
        return dataset_dict
