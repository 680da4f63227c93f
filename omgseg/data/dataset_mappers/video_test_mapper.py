"""Inference mapper for video datasets (``evaluator_type`` "ytvis", "vps", "davis").

Frames are not read here: the sample carries a lazy :class:`VideoFrames` that the streaming
video inference reads clip by clip, so a data-loader worker never holds a whole video.
"""
import copy

import torch

from detectron2.config import configurable
from detectron2.data import DatasetMapper, MetadataCatalog

from ..video_io import VideoFrames
from .video_targets import check_video_record, first_frame_objects

__all__ = ["VideoTestDatasetMapper"]


class VideoTestDatasetMapper:
    """Map a video record to the test-time video input.

    Input: a video record (``file_names``: the frames; or ``video_file``: one video file).
    Output: the record's fields (``video_id``, ``length``, ``file_names``, ground-truth file
    names, ...; ``annotations`` dropped as Detectron2's test mapper does) plus::

        "video_frames": VideoFrames     # len T; [t] -> HWC uint8 in INPUT.FORMAT, resized by
                                        # ResizeShortestEdge(MIN_SIZE_TEST, MAX_SIZE_TEST)
        "height", "width": int          # original frame size (outputs are produced at it)
        "dataset_name": str
        # DAVIS / VOS records (``mask_file_names``) only:
        "first_frame_masks": bool Tensor [N_obj, height, width]   # original size
        "object_ids": int64 Tensor [N_obj]   # the DAVIS values (1..N) of those objects, ascending
    """

    @configurable
    def __init__(
        self,
        is_train: bool = False,
        *,
        augmentations,
        image_format: str,
        dataset_name: str = "",
        ignore_label: int = 255,
    ):
        if is_train:
            raise ValueError("VideoTestDatasetMapper is an inference mapper (is_train must be "
                             "False)")
        self.augmentations = list(augmentations)
        self.image_format = image_format
        self.dataset_name = dataset_name or ""
        self.ignore_label = int(ignore_label)

    @classmethod
    def from_config(cls, cfg, is_train: bool = False, dataset_name: str = ""):
        ret = DatasetMapper.from_config(cfg, is_train=False)
        ignore_label = 255
        if dataset_name and dataset_name in MetadataCatalog.list():
            ignore_label = MetadataCatalog.get(dataset_name).get("ignore_label", 255)
        return {
            "is_train": is_train,
            "augmentations": ret["augmentations"],
            "image_format": ret["image_format"],
            "dataset_name": dataset_name,
            "ignore_label": ignore_label,
        }

    def __call__(self, dataset_dict: dict) -> dict:
        out = copy.copy(dataset_dict)
        out["dataset_name"] = out.get("dataset_name") or self.dataset_name
        if "file_names" in out or "video_file" not in out:
            check_video_record(out)
            source = out["file_names"]
        else:  # a record naming one video file (e.g. a user's .mp4)
            source = out["video_file"]
        size = None
        if "height" in out and "width" in out:
            size = (int(out["height"]), int(out["width"]))
        frames = VideoFrames(source, self.augmentations, self.image_format,
                             video_id=out.get("video_id"), original_size=size)
        out.setdefault("length", len(frames))
        out["video_frames"] = frames
        out["height"], out["width"] = frames.original_size
        out.pop("annotations", None)
        if "mask_file_names" in out:
            masks, ids = first_frame_objects(out, frames.original_size, self.ignore_label)
            out["first_frame_masks"] = torch.from_numpy(masks)
            out["object_ids"] = torch.from_numpy(ids)
        return out
