"""Errors raised for checkpoints that cannot be used as they are (each names the file)."""

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "UnreadableCheckpointError",
    "CheckpointMismatchError",
    "NotAnOMGSegHeadError",
]


class CheckpointError(RuntimeError):
    """Base class: a checkpoint file that cannot be used; the message says which and why."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The named checkpoint file does not exist."""


class UnreadableCheckpointError(CheckpointError):
    """Truncated, corrupt or not a PyTorch checkpoint at all."""


class CheckpointMismatchError(CheckpointError):
    """A readable checkpoint whose tensors do not fit the model built from the config."""


class NotAnOMGSegHeadError(CheckpointError):
    """A file given to the official-weights converter that is not an official OMG-Seg head."""
