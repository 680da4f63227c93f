"""Reading and writing checkpoint files safely.

* ``read_checkpoint``: ``torch.load(weights_only=True)`` (no arbitrary code runs while reading)
  with errors that name the file: missing, truncated, not a PyTorch file, not a dict.
* ``state_dict_from``: the tensors of a loaded checkpoint, raw or wrapped in ``model`` /
  ``state_dict``.
* ``atomic_torch_save``: write to a temporary name in the same folder, flush to disk, rename; a
  process killed mid-write leaves the previous file (or none) and a ``*.partial`` temp file,
  never a half-written checkpoint under the real name.
"""
import os
import re
from typing import Any, Dict

import numpy as np
import torch

from ..utils.file_io import atomic_output
from .errors import CheckpointNotFoundError, UnreadableCheckpointError

__all__ = [
    "read_checkpoint",
    "state_dict_from",
    "atomic_torch_save",
    "PARTIAL_SAVE_PATTERN",
]

# Temporary files of ``atomic_torch_save`` (``atomic_output`` names them ``.tmp-<random><suffix>``).
PARTIAL_SAVE_SUFFIX = ".partial"
PARTIAL_SAVE_PATTERN = re.compile(r"^\.tmp-.+\.pth" + re.escape(PARTIAL_SAVE_SUFFIX) + "$")


def read_checkpoint(path: str) -> Any:
    """``torch.load`` of a local file with ``weights_only=True``, mapped to CPU.

    Raises:
        CheckpointNotFoundError: no such file.
        UnreadableCheckpointError: anything torch cannot read (truncated, corrupt, not a torch
            file, or a pickle of arbitrary objects), with the file name and torch's reason.
    """
    if not os.path.isfile(path):
        what = "is a folder, not a file" if os.path.isdir(path) else "does not exist"
        raise CheckpointNotFoundError(f"Checkpoint file {path} {what}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # zip / pickle / EOF errors all mean "cannot use this file"
        # torch's first sentence says what failed; the rest is generic advice
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else "no detail"
        reason = re.split(r"(?<=\.)\s", first_line)[0].rstrip(".")
        size = os.path.getsize(path)
        raise UnreadableCheckpointError(
            f"Cannot read checkpoint {path} ({size} bytes): {type(e).__name__}: {reason}. "
            "It is truncated, corrupt, or not a PyTorch checkpoint (torch.save'd state dict, "
            "readable with weights_only=True)."
        ) from e


def state_dict_from(obj: Any, path: str) -> Dict[str, torch.Tensor]:
    """The ``{name: tensor}`` dict of a loaded checkpoint: raw, or under ``model`` / ``state_dict``.

    numpy arrays (Detectron2 ``.pkl`` files) become tensors. Raises ``UnreadableCheckpointError``
    naming ``path`` when there is no such dict or it holds no tensor.
    """
    for _ in range(3):  # {"model": {...}}, {"state_dict": {...}}, possibly nested
        if not isinstance(obj, dict):
            break
        wrapped = (obj[k] for k in ("model", "state_dict") if isinstance(obj.get(k), dict))
        inner = next(wrapped, None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, dict):
        raise UnreadableCheckpointError(
            f"Checkpoint {path} holds a {type(obj).__name__}, not a state dict of named tensors"
        )
    tensors = {
        k: torch.as_tensor(v) if isinstance(v, np.ndarray) else v
        for k, v in obj.items()
        if isinstance(v, (torch.Tensor, np.ndarray))
    }
    if not tensors:
        raise UnreadableCheckpointError(
            f"Checkpoint {path} holds no tensors (top-level keys: {sorted(map(str, obj))[:8]})"
        )
    return tensors


def atomic_torch_save(obj: Any, path: str) -> None:
    """``torch.save(obj, path)`` that either fully replaces ``path`` or leaves it untouched.

    The data goes to ``.tmp-<random>.<name>.partial`` in the same folder, is fsync'ed, then
    renamed over ``path`` (atomic on POSIX file systems).
    """
    suffix = "." + os.path.basename(path) + PARTIAL_SAVE_SUFFIX
    with atomic_output(path, suffix=suffix) as tmp:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
