"""``MaskStore``: the per-frame mask logits of a video on disk, so that memory stays bounded by
the clip length.

A frame's post-processing needs the video-level scores, known only after the last clip, so each
clip's (aligned) mask logits are written out as they come and read back one frame at a time
afterwards. The store is one file of fixed-size float16 records ``[Q, h, w]`` (mask-feature
resolution) in a private temporary folder, written and read with plain file I/O (no memory
map: pages read back are not kept in the process's resident memory). The folder is removed by
``close()``, when the store is garbage collected, or at interpreter exit.
"""
import os
import shutil
import tempfile
import weakref
from typing import Optional, Tuple

import numpy as np
import torch
from torch import Tensor

__all__ = ["MaskStore"]

# float16 holds +-65504; logits are clipped well inside so that resizing never meets inf.
_LOGIT_LIMIT = 1.0e4


def _cleanup(handle, folder: str) -> None:
    try:
        handle.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class MaskStore:
    """Mask logits ``[Q, h, w]`` of ``num_frames`` frames, float16 on disk.

    Args:
        num_frames: frames of the video (T).
        num_queries: Q.
        size: (h, w) of the stored masks.
        tmp_dir: parent of the private temporary folder (None: the system default).
        name: for error messages (e.g. the video id).
    """

    def __init__(self, num_frames: int, num_queries: int, size: Tuple[int, int],
                 tmp_dir: Optional[str] = None, name: str = "video"):
        self.num_frames = int(num_frames)
        self.num_queries = int(num_queries)
        self.size = (int(size[0]), int(size[1]))
        self.name = name
        self._frame_values = self.num_queries * self.size[0] * self.size[1]
        self._frame_bytes = self._frame_values * 2
        if tmp_dir:
            os.makedirs(tmp_dir, exist_ok=True)
        self.folder = tempfile.mkdtemp(prefix="omgseg-video-", dir=tmp_dir or None)
        self._handle = open(os.path.join(self.folder, "mask_logits.f16"), "w+b")
        self._written = np.zeros(self.num_frames, dtype=bool)
        self._finalizer = weakref.finalize(self, _cleanup, self._handle, self.folder)

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def close(self) -> None:
        """Remove the temporary folder (reads fail afterwards)."""
        self._finalizer()

    def __enter__(self) -> "MaskStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError(f"{self.name}: the mask store was closed (its outputs are only "
                               "readable while the output dict is alive)")

    def write(self, start: int, masks: Tensor) -> None:
        """Store ``masks`` [Q, t, h, w] (logits) as frames ``start .. start + t - 1``."""
        self._check_open()
        q, t, h, w = masks.shape
        if (q, h, w) != (self.num_queries,) + self.size:
            raise ValueError(f"{self.name}: masks [Q={q}, t, {h}, {w}] do not fit a store of "
                             f"[Q={self.num_queries}, {self.size[0]}, {self.size[1]}] (all frames "
                             "of a video must have the same size)")
        if start < 0 or start + t > self.num_frames:
            raise IndexError(f"{self.name}: frames {start}..{start + t - 1} outside 0.."
                             f"{self.num_frames - 1}")
        data = masks.detach().clamp(-_LOGIT_LIMIT, _LOGIT_LIMIT).to("cpu", torch.float16)
        data = data.transpose(0, 1).contiguous().numpy()  # [t, Q, h, w]
        self._handle.seek(start * self._frame_bytes)
        self._handle.write(data.tobytes())
        self._written[start:start + t] = True

    def read(self, t: int) -> Tensor:
        """Frame ``t``'s mask logits, float32 [Q, h, w] (CPU)."""
        self._check_open()
        if not 0 <= t < self.num_frames:
            raise IndexError(f"{self.name}: frame {t} outside 0..{self.num_frames - 1}")
        if not self._written[t]:
            raise KeyError(f"{self.name}: frame {t} was never written")
        self._handle.seek(t * self._frame_bytes)
        buf = self._handle.read(self._frame_bytes)
        arr = np.frombuffer(buf, dtype=np.float16, count=self._frame_values)
        return torch.from_numpy(arr.astype(np.float32)).view(self.num_queries, *self.size)
