"""Checkpoints: strict and crash-safe loading / saving, and the official OMG-Seg weights.

* ``OMGSegCheckpointer``: the checkpointer of the trainer and ``train_net.py``.
* ``checkpoint_training_vocabulary``: the class names a checkpoint was trained on.
* ``convert_official_checkpoint``: an official head file (``omg_seg_convl.pth`` /
  ``omg_seg_convxxl.pth``) -> a Detectron2 checkpoint (``tools/convert_omgseg_official.py``).
"""
from .checkpointer import OMGSegCheckpointer
from .convert import ConversionReport, convert_official_checkpoint
from .format import (
    FORMAT_VERSION,
    CheckpointVersionError,
    checkpoint_training_vocabulary,
)
from .errors import (
    CheckpointError,
    CheckpointMismatchError,
    CheckpointNotFoundError,
    NotAnOMGSegHeadError,
    UnreadableCheckpointError,
)
from .official_omgseg import (
    convert_official_head,
    official_to_ours,
    ours_to_official,
    to_official_head,
)

__all__ = [
    "OMGSegCheckpointer",
    "FORMAT_VERSION",
    "CheckpointVersionError",
    "checkpoint_training_vocabulary",
    "ConversionReport",
    "convert_official_checkpoint",
    "CheckpointError",
    "CheckpointMismatchError",
    "CheckpointNotFoundError",
    "NotAnOMGSegHeadError",
    "UnreadableCheckpointError",
    "convert_official_head",
    "official_to_ours",
    "ours_to_official",
    "to_official_head",
]
