"""Training and test dataset mappers (see docs/ARCHITECTURE.md for the output contract)."""
from .augmentations import ScaleJitterResize, build_lsj_augmentations
from .clip_transforms import FrameTargets, augment_clip, frames_to_instances, image_to_tensor
from .image_io import read_image_checked, read_label_image
from .pseudo_video_mapper import PseudoVideoLSJDatasetMapper
from .prompt_mapper import PromptDatasetMapper, PromptTestDatasetMapper, prompt_kind_weights
from .targets import load_frame_targets, record_task, vocabulary_size
from .test_mapper import OMGTestDatasetMapper
from .frame_sampling import FRAME_SAMPLING_MODES, FrameSampler
from .video_targets import check_video_record, first_frame_objects, video_task
from .video_mapper import VideoClipDatasetMapper
from .video_test_mapper import VideoTestDatasetMapper
from .multi_task_mapper import MAPPERS_BY_RECORD_KIND, MultiTaskDatasetMapper, record_kind

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
    "PromptDatasetMapper",
    "PromptTestDatasetMapper",
    "prompt_kind_weights",
    "OMGTestDatasetMapper",
    "load_frame_targets",
    "record_task",
    "vocabulary_size",
    "FRAME_SAMPLING_MODES",
    "FrameSampler",
    "check_video_record",
    "first_frame_objects",
    "video_task",
    "VideoClipDatasetMapper",
    "VideoTestDatasetMapper",
    "MAPPERS_BY_RECORD_KIND",
    "MultiTaskDatasetMapper",
    "record_kind",
]
