"""``VideoPredictor``: a whole video in, tracked per-frame outputs out (one model, clip by clip).

    predictor = VideoPredictor(cfg)                   # builds the model, loads MODEL.WEIGHTS
    predictor.set_vocabulary(["person", "car", "road"], is_thing=[True, True, False])
    out = predictor("clip.mp4")                       # a video file, a folder of frames, a list
    for t, frame in enumerate(out["frames"]):         # of frame files, or of HWC uint8 arrays
        ids, segments_info = frame["panoptic_seg"]    # ids stable across frames (one per track)
        labels = frame["sem_seg"]                     # int64 [H, W] label map
    out["video_instances"]                            # [{"score", "category_id", "segmentations"}]
    out = predictor(frames, first_frame_masks=masks)  # + "vos_masks": index maps (VOS)
    out = predictor(frames, first_frame_prompts={"points": [[120, 80]]})  # prompt-driven VOS

Frames given as arrays are in ``input_format`` order ("BGR" by default, like ``cv2``), are
resized lazily with the test resize (``ResizeShortestEdge(INPUT.MIN_SIZE_TEST,
INPUT.MAX_SIZE_TEST)``) and converted to ``cfg.INPUT.FORMAT``; paths are read lazily by
:class:`omgseg.data.video_io.VideoFrames`. Only one clip of frames is decoded at a time, and
``out["frames"]`` / ``out["vos_masks"]`` are lazy sequences post-processed on access (see
``omgseg/modeling/video``), so memory does not grow with the video length. Outputs are at the
original frame size; class ids index the active vocabulary.
"""
import os
from collections.abc import Sequence as SequenceABC
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch

import detectron2.data.transforms as T

from .predictor import OMGSegPredictor, prepare_image
from .prompt_inputs import build_prompts

__all__ = ["VideoPredictor", "ResizedFrames"]


class ResizedFrames(SequenceABC):
    """User frames (HWC uint8 arrays in ``input_format``) as the model's ``video_frames``: each
    frame is checked (:func:`prepare_image`), converted to ``model_format`` and resized with one
    transform drawn from the first frame's size, when it is accessed."""

    def __init__(self, frames: Sequence[np.ndarray], augmentation: T.Augmentation,
                 input_format: str = "BGR", model_format: str = "RGB", video_id=None):
        if isinstance(frames, np.ndarray) and frames.ndim == 4:
            frames = list(frames)
        if len(frames) == 0:
            raise ValueError(f"video {video_id!r} has no frames")
        self._frames = frames
        self.video_id = video_id
        self._flip = input_format != model_format
        self._input_format = input_format
        first = self._prepared(0)
        self.original_size: Tuple[int, int] = tuple(first.shape[:2])
        self.transform = augmentation.get_transform(first)
        self.size: Tuple[int, int] = tuple(self.transform.apply_image(first).shape[:2])

    def _prepared(self, t: int) -> np.ndarray:
        try:
            image = prepare_image(self._frames[t], self._input_format)
        except (TypeError, ValueError) as e:
            raise type(e)(f"video {self.video_id!r}, frame {t}: {e}") from e
        return image[:, :, ::-1] if self._flip else image

    def __len__(self) -> int:
        return len(self._frames)

    def __getitem__(self, t):
        if isinstance(t, slice):
            return [self[i] for i in range(*t.indices(len(self)))]
        image = self._prepared(t)
        if tuple(image.shape[:2]) != self.original_size:
            raise ValueError(f"video {self.video_id!r}, frame {t}: size {image.shape[:2]} differs "
                             f"from the first frame's {self.original_size}")
        return np.ascontiguousarray(self.transform.apply_image(image))


class VideoPredictor(OMGSegPredictor):
    """Video inference with the ``OMGSegPredictor`` set-up (model in eval mode, strict weight
    loading, test resize, switchable vocabulary); see the module docstring."""

    def __call__(
        self,
        video: Union[str, os.PathLike, Sequence],
        *,
        video_id=None,
        first_frame_masks=None,
        first_frame_prompts: Optional[Dict] = None,
        object_ids: Optional[Sequence[int]] = None,
        tasks: Optional[Sequence[str]] = None,
    ) -> Dict:
        """
        Args:
            video: a video file, a folder of frame images, a list of frame files, or a sequence
                of HWC uint8 frames in ``input_format`` (a [T, H, W, 3] array too).
            video_id: a name for messages and the output's ``video_id``.
            first_frame_masks: bool [N, H, W] object masks of the first frame (original size)
                to follow (VOS); ``object_ids``: their index-map values (default 1..N).
            first_frame_prompts: prompt-driven VOS (SEEM): prompts on the first frame in
                ORIGINAL frame coordinates, as keyword arguments of ``PromptPredictor.predict``
                (``{"points": ..., "boxes": ..., "scribbles": ..., "polygons": ..., "masks":
                ...}``); one object per prompt, followed frame by frame with its previous mask
                as the prompt. Gives ``"vos_masks"`` only.
            tasks: subset of ("panoptic", "semantic", "instance", "vos"); default: the
                ``MODEL.OMG.TEST.*_ON`` switches, plus "vos" with ``first_frame_masks``.

        Returns:
            the model's video output (``OMGSeg.video_inference``).
        """
        frames = self._frames_of(video, video_id)
        inp = {
            "video_frames": frames,
            "height": frames.original_size[0],
            "width": frames.original_size[1],
            "video_id": video_id if video_id is not None else getattr(frames, "video_id", None),
        }
        if first_frame_masks is not None and first_frame_prompts is not None:
            raise ValueError("give first_frame_masks or first_frame_prompts, not both")
        if first_frame_prompts is not None:
            if not isinstance(first_frame_prompts, dict):
                raise TypeError("first_frame_prompts must be a dict of prompt keyword arguments "
                                "(points, point_labels, boxes, scribbles, polygons, masks), got "
                                f"{type(first_frame_prompts).__name__}")
            prompts = build_prompts(frames.transform, frames.original_size, frames.size,
                                    max_prompts=self.model.prompt_settings.max_prompts,
                                    **first_frame_prompts)
            inp["first_frame_prompts"] = prompts
            inp["object_ids"] = (list(object_ids) if object_ids is not None
                                 else list(range(1, len(prompts) + 1)))
        if first_frame_masks is not None:
            masks = torch.as_tensor(np.asarray(first_frame_masks)).bool()
            inp["first_frame_masks"] = masks
            inp["object_ids"] = (list(object_ids) if object_ids is not None
                                 else list(range(1, masks.shape[0] + 1)))
        with torch.no_grad():
            return self.model.video_inference(inp, tasks=tasks)

    def _frames_of(self, video, video_id):
        if isinstance(video, (str, os.PathLike)) or (
            isinstance(video, (list, tuple)) and video and isinstance(video[0], (str, os.PathLike))
        ):
            from ..data.video_io import VideoFrames

            return VideoFrames(video, [self.aug], self.model_format, video_id=video_id)
        if hasattr(video, "original_size") and hasattr(video, "transform"):
            return video  # a VideoFrames (or ResizedFrames): already in the model's format
        if not isinstance(video, (SequenceABC, np.ndarray)):
            raise TypeError("video must be a path, a list of frame files or a sequence of HWC "
                            f"uint8 frames, got {type(video).__name__}")
        return ResizedFrames(video, self.aug, self.input_format, self.model_format, video_id)
