"""Training and test dataset mappers (see docs/ARCHITECTURE.md for the output contract)."""
from .augmentations import ScaleJitterResize, build_lsj_augmentations
from .clip_transforms import FrameTargets, augment_clip, frames_to_instances, image_to_tensor
from .image_io import read_image_checked, read_label_image
from .pseudo_video_mapper import PseudoVideoLSJDatasetMapper
from .targets import load_frame_targets, record_task, vocabulary_size
from .test_mapper import OMGTestDatasetMapper

__all__ = [
    "ScaleJitterResize",
    "build_lsj_augmentations",
    "FrameTargets",
    "augment_clip",
    "frames_to_instances",
    "image_to_tensor",
    "read_image_checked",
    "read_label_image",
    "PseudoVideoLSJDatasetMapper",
    "OMGTestDatasetMapper",
    "load_frame_targets",
    "record_task",
    "vocabulary_size",
]
