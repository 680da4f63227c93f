"""Streaming video inference with one model (official MinVIS-style clip association).

* ``clips.py``: the official clip-length table and how a video is cut into clips;
* ``association.py``: Hungarian query alignment between clips, clip-averaged logits;
* ``store.py``: the disk-backed per-frame mask store (memory bounded by the clip length);
* ``postprocess.py``: per-task rules with video-level scores (VPS stable ids, VSS label maps,
  VIS tubes, VOS assignment and painting) as plain functions;
* ``postprocessor.py``: those rules bound to one video's store;
* ``lazy.py``: lazy, re-iterable per-frame outputs;
* ``inference.py``: the clip loop and the output dict (:func:`infer_video`);
* ``prompt_tracking.py``: prompt-driven VOS, first-frame prompts followed frame by frame
  (:func:`track_prompts`).
"""
from .association import QueryTracker, match_embeddings
from .clips import (
    DEFAULT_CLIP_RULE,
    OFFICIAL_CLIP_RULES,
    ClipRule,
    clip_length_for,
    split_video,
)
from .inference import (
    TASKS_BY_EVALUATOR,
    VIDEO_TASKS,
    ClipPrediction,
    final_query_features,
    infer_video,
    select_video_tasks,
    stream_clips,
)
from .lazy import FrameOutput, LazyFrames, LazySequence
from .postprocessor import PostprocessSettings, VideoGeometry, VideoPostprocessor
from .prompt_tracking import masks_to_prompts, paint_objects, track_prompts
from .store import MaskStore

__all__ = [
    "masks_to_prompts",
    "paint_objects",
    "track_prompts",
    "ClipPrediction",
    "ClipRule",
    "DEFAULT_CLIP_RULE",
    "FrameOutput",
    "LazyFrames",
    "LazySequence",
    "MaskStore",
    "OFFICIAL_CLIP_RULES",
    "PostprocessSettings",
    "QueryTracker",
    "TASKS_BY_EVALUATOR",
    "VIDEO_TASKS",
    "VideoGeometry",
    "VideoPostprocessor",
    "clip_length_for",
    "final_query_features",
    "infer_video",
    "match_embeddings",
    "select_video_tasks",
    "split_video",
    "stream_clips",
]
