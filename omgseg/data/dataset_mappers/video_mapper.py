"""Training mapper for real videos: a record of a video becomes a clip of ``INPUT.NUM_FRAMES``.

The official pipeline (``VideoClipSample`` + ``TransformBroadcaster(share_random_params=True)``
of the YouTube-VIS / VIPSeg / DAVIS configs): draw the frames (``frame_sampling.py``), then ONE
flip, ONE large-scale-jitter resize and ONE crop for every frame of the clip (one camera), so an
object keeps its place from frame to frame as in the video. Targets are tubes keyed by the
identity of each entity (track id, segment id, DAVIS object index): every frame lists the same
``M`` entities in the same order, with an all-zero mask where one is absent
(:func:`frames_to_instances`). The output is the training contract of docs/ARCHITECTURE.md, the
same as :class:`PseudoVideoLSJDatasetMapper`'s, so image and video samples train together.
"""
import copy
import logging
from typing import List, Optional

import torch

from detectron2.config import configurable
from detectron2.data import transforms as T

from ..video_io import VideoFrames, describe_video
from .augmentations import build_lsj_augmentations
from .clip_transforms import augment_clip, frames_to_instances, image_to_tensor
from .frame_sampling import FrameSampler
from .targets import vocabulary_size
from .video_targets import check_video_record, load_video_frame_targets, video_task

__all__ = ["VideoClipDatasetMapper"]

logger = logging.getLogger(__name__)


class VideoClipDatasetMapper:
    """Map a YouTube-VIS / VIPSeg / DAVIS video record to a training clip.

    Output::

        {"file_name": first drawn frame, "image_id": video_id, "video_id",
         "frame_indices": [T] (the drawn frames), "height", "width" (original frame size),
         "dataset_name", "task": "instance" | "panoptic" | "vos",
         "video": uint8 [T, 3, H, W],
         "instances": [Instances(gt_classes (-1 for "vos": no class), gt_masks bool [M, H, W],
                                 gt_ids)] * T}
    """

    @configurable
    def __init__(
        self,
        is_train: bool = True,
        *,
        frame_sampler: FrameSampler,
        shared_augmentations: List[T.Augmentation],
        frame_augmentations: List[T.Augmentation],
        image_format: str,
        min_mask_area: int = 0,
        ignore_label: int = 255,
        num_classes: Optional[int] = None,
    ):
        """
        Args:
            is_train: kept for Detectron2's mapper signature.
            frame_sampler: ``length -> [T frame indices]``.
            shared_augmentations: drawn once per clip for every frame (flip, resize).
            frame_augmentations: the crop, drawn once per clip too (a real video keeps one
                camera), after the shared part.
            image_format: Detectron2 image format ("RGB" / "BGR").
            min_mask_area: masks with fewer pixels in a frame are zeroed there.
            ignore_label: DAVIS void value (not an object).
            num_classes: vocabulary size for validating category ids; None: from the metadata
                of the record's ``dataset_name``.
        """
        self.is_train = is_train
        self.frame_sampler = frame_sampler
        self.num_frames = frame_sampler.num_frames
        self.shared_augmentations = T.AugmentationList(shared_augmentations)
        self.frame_augmentations = T.AugmentationList(frame_augmentations)
        self.image_format = image_format
        self.min_mask_area = int(min_mask_area)
        self.ignore_label = int(ignore_label)
        self.num_classes = num_classes
        logger.info(
            f"[VideoClipDatasetMapper] {self.frame_sampler}, shared augmentations "
            f"{self.shared_augmentations} then {self.frame_augmentations} (one camera)"
        )

    @classmethod
    def from_config(cls, cfg, is_train: bool = True):
        lsj = cfg.INPUT.LSJ
        shared, per_frame = build_lsj_augmentations(
            lsj.CROP_SIZE, (lsj.MIN_SCALE, lsj.MAX_SCALE), lsj.FLIP_PROB
        )
        sampler = FrameSampler(
            cfg.INPUT.NUM_FRAMES,
            mode=cfg.INPUT.SAMPLING_FRAME_MODE,
            interval=cfg.INPUT.SAMPLING_FRAME_INTERVAL,
            frame_range=cfg.INPUT.SAMPLING_FRAME_RANGE,
            shuffle=cfg.INPUT.SAMPLING_FRAME_SHUFFLE,
        )
        return {
            "is_train": is_train,
            "frame_sampler": sampler,
            "shared_augmentations": shared,
            "frame_augmentations": per_frame,
            "image_format": cfg.INPUT.FORMAT,
            "min_mask_area": cfg.INPUT.MIN_MASK_AREA,
        }

    def __call__(self, dataset_dict: dict) -> dict:
        record = copy.copy(dataset_dict)  # shallow: the record is not modified
        dataset_name = record.get("dataset_name") or ""
        length = check_video_record(record)
        task = video_task(record)
        size = None
        if "height" in record and "width" in record:
            size = (int(record["height"]), int(record["width"]))
        frames = VideoFrames(record["file_names"], image_format=self.image_format,
                             video_id=record.get("video_id"), original_size=size)
        size = frames.original_size
        num_classes = (self.num_classes if self.num_classes is not None
                       else vocabulary_size(dataset_name))

        indices = self.frame_sampler(length)
        images, targets = {}, {}
        for t in sorted(set(indices)):  # a repeated frame is read and transformed once
            images[t] = frames.read_original(t)
            targets[t] = load_video_frame_targets(record, t, task, size, num_classes,
                                                  self.ignore_label)
        clip, clip_targets = augment_clip(
            [images[t] for t in indices], [targets[t] for t in indices],
            self.shared_augmentations, self.frame_augmentations, independent_frames=False,
        )
        video_id = record.get("video_id", describe_video(record))
        return {
            "file_name": record["file_names"][indices[0]],
            "image_id": video_id,
            "video_id": video_id,
            "frame_indices": indices,
            "height": size[0],
            "width": size[1],
            "dataset_name": dataset_name,
            "task": task,
            "video": torch.stack([image_to_tensor(f) for f in clip], dim=0),
            "instances": frames_to_instances(clip_targets, self.min_mask_area),
        }
