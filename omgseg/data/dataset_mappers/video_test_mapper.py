"""Inference mapper for video datasets (``evaluator_type`` "ytvis", "vps", "davis").

Frames are not read here: the sample carries a lazy :class:`VideoFrames` that the streaming
video inference reads clip by clip, so a data-loader worker never holds a whole video.
"""
import copy

import numpy as np
import torch
from torch.nn import functional as F

from detectron2.config import configurable
from detectron2.data import DatasetMapper, MetadataCatalog

from ..prompts import evaluation_prompts
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
        # prompt-driven VOS datasets (metadata ``vos_prompt``: "point" / "box" / "scribble"):
        # the first-frame masks are replaced by one such prompt per object, in pixels of the
        # resized frames (the evaluation protocol of the interactive mIoU, on frame 0)
        "first_frame_prompts": Prompts
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
        vos_prompt: str = "",
    ):
        if is_train:
            raise ValueError("VideoTestDatasetMapper is an inference mapper (is_train must be "
                             "False)")
        self.augmentations = list(augmentations)
        self.image_format = image_format
        self.dataset_name = dataset_name or ""
        self.ignore_label = int(ignore_label)
        if vos_prompt not in ("", "point", "box", "scribble"):
            raise ValueError(f"dataset {dataset_name!r}: metadata vos_prompt must be point, box "
                             f"or scribble, got {vos_prompt!r}")
        self.vos_prompt = vos_prompt

    @classmethod
    def from_config(cls, cfg, is_train: bool = False, dataset_name: str = ""):
        ret = DatasetMapper.from_config(cfg, is_train=False)
        ignore_label, vos_prompt = 255, ""
        if dataset_name and dataset_name in MetadataCatalog.list():
            meta = MetadataCatalog.get(dataset_name)
            ignore_label = meta.get("ignore_label", 255)
            vos_prompt = meta.get("vos_prompt", "")
        return {
            "is_train": is_train,
            "augmentations": ret["augmentations"],
            "image_format": ret["image_format"],
            "dataset_name": dataset_name,
            "ignore_label": ignore_label,
            "vos_prompt": vos_prompt,
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
            out["object_ids"] = torch.from_numpy(ids)
            if self.vos_prompt:
                out["first_frame_prompts"] = self._first_frame_prompts(masks, frames.size)
            else:
                out["first_frame_masks"] = torch.from_numpy(masks)
        return out

    def _first_frame_prompts(self, masks: np.ndarray, size):
        """One ``vos_prompt`` prompt per object mask [N, H0, W0], at the resized frame size."""
        resized = F.interpolate(torch.from_numpy(masks)[None].float(), size=tuple(size),
                                mode="nearest")[0] > 0.5
        prompts, _, _ = evaluation_prompts(resized.numpy(), modes=(self.vos_prompt,))
        return prompts
