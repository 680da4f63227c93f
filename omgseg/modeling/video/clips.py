"""How a video is cut into clips for streaming inference (the official MinVIS-style schedule).

The official evaluation configs (``seg/configs/m2ov_val/eval_m2_convl_300q_ov_*.py``) run
``Mask2formerVideoMinVIS`` with ``clip_size`` frames per clip for videos of more than
``small_clip_thr`` frames and ``clip_size_small`` otherwise, without overlap:

=================  ===========  ================  ===============
evaluator_type     long videos  short videos      long means
=================  ===========  ================  ===============
``ytvis``          5            3                 > 15 frames
``davis``          5            3                 > 15 frames
``vps`` (VIPSeg)   2            3                 > 15 frames
anything else      3            3                 (the demo's 3)
=================  ===========  ================  ===============

``MODEL.OMG.TEST.VIDEO.CLIP_LENGTH`` > 0 replaces the table by one fixed length.

A video of ``n`` frames and clip length ``c`` gets ``ceil(n / c)`` clips; the frames missing
from the last one are taken off the end, one frame from each of the last clips when there are
fewer missing frames than clips (7 frames, c = 3: 3 + 2 + 2), else all from the last clip
(4 frames, c = 3: 3 + 1) -- the official ``video_split`` with ``overlap=0``.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

__all__ = [
    "ClipRule",
    "OFFICIAL_CLIP_RULES",
    "DEFAULT_CLIP_RULE",
    "clip_length_for",
    "split_video",
]


@dataclass(frozen=True)
class ClipRule:
    """``clip_size`` frames per clip for videos longer than ``small_video_frames``, else
    ``clip_size_small``."""

    clip_size: int
    clip_size_small: int
    small_video_frames: int

    def length(self, num_frames: int) -> int:
        return self.clip_size if num_frames > self.small_video_frames else self.clip_size_small


# evaluator_type -> rule (official clip_size / clip_size_small / small_clip_thr).
OFFICIAL_CLIP_RULES: Dict[str, ClipRule] = {
    "ytvis": ClipRule(5, 3, 15),
    "davis": ClipRule(5, 3, 15),
    "vps": ClipRule(2, 3, 15),
}
# Any other video (the official demo uses clips of 3 frames).
DEFAULT_CLIP_RULE = ClipRule(3, 3, 15)


def clip_length_for(num_frames: int, evaluator_type: Optional[str] = None,
                    override: int = 0) -> int:
    """Frames per clip for a video of ``num_frames`` frames: ``override`` when > 0, else the
    official rule of ``evaluator_type`` (``OFFICIAL_CLIP_RULES``, ``DEFAULT_CLIP_RULE``)."""
    if override < 0:
        raise ValueError(f"MODEL.OMG.TEST.VIDEO.CLIP_LENGTH must be >= 0, got {override}")
    if override > 0:
        return int(override)
    return OFFICIAL_CLIP_RULES.get(evaluator_type or "", DEFAULT_CLIP_RULE).length(num_frames)


def split_video(num_frames: int, clip_length: int) -> List[Tuple[int, int]]:
    """The clips ``[(start, end), ...]`` (end exclusive) covering frames ``0..num_frames-1`` in
    order, as the official ``video_split(num_frames, clip_length, overlap=0)`` cuts them."""
    if num_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {num_frames}")
    if clip_length < 1:
        raise ValueError(f"clip_length must be >= 1, got {clip_length}")
    num_clips = -(-num_frames // clip_length)
    lengths = [clip_length] * num_clips
    missing = num_clips * clip_length - num_frames
    if missing < num_clips:
        for i in range(num_clips - missing, num_clips):
            lengths[i] -= 1
    else:
        lengths[-1] -= missing
    bounds, start = [], 0
    for n in lengths:
        bounds.append((start, start + n))
        start += n
    return bounds
