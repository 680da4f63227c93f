"""Training and test dataset mappers (see docs/ARCHITECTURE.md for the output contract)."""
from .clip_transforms import (
    FrameTargets,
    build_shared_transform,
    frames_to_instances,
    sample_crop,
    shared_output_size,
    transform_frames,
)
from .pseudo_video_mapper import PseudoVideoLSJDatasetMapper
from .targets import load_frame_targets, read_image_checked, record_task, vocabulary_size
from .test_mapper import OMGTestDatasetMapper

__all__ = [
    "FrameTargets",
    "build_shared_transform",
    "frames_to_instances",
    "sample_crop",
    "shared_output_size",
    "transform_frames",
    "PseudoVideoLSJDatasetMapper",
    "OMGTestDatasetMapper",
    "load_frame_targets",
    "read_image_checked",
    "record_task",
    "vocabulary_size",
]
