"""Streaming video inference: clip by clip through one model, then lazy per-frame outputs.

``infer_video`` runs ``decode_clip(start, end)`` (backbone + pixel decoder + the shared decoder
on frames ``start..end-1``, see ``OMGSeg.video_inference``) on the clips of ``split_video``,
aligns each clip's queries to the previous clip's (:class:`QueryTracker`), writes the aligned
mask logits to a disk-backed :class:`MaskStore` and, after the last clip, builds the output
from the video-level scores (:class:`VideoPostprocessor`). At any time memory holds one clip's
frames and predictions, O(Q (K + C)) running sums and one frame's post-processing; the store's
temporary folder lives as long as the lazy ``frames`` / ``vos_masks`` of the returned output
(it is removed when they are garbage collected, or at exit).

Output of one video (the formats the video evaluators read)::

    {"video_id": ...,                                     # when known
     "frames": LazyFrames,        # T FrameOutputs: "panoptic_seg" (ids int32 [H0, W0] stable
                                  # across frames, segments_info) and / or "sem_seg" (int64
                                  # label map [H0, W0]), post-processed on access
     "video_instances": [{"score", "category_id", "segmentations": [RLE] * T}],
     "vos_masks": LazySequence}   # T uint8 index maps [H0, W0], on access

each present only for the requested tasks (:func:`select_video_tasks`).
"""
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from tqdm import tqdm

from .association import QueryTracker
from .lazy import LazyFrames, LazySequence
from .postprocessor import PostprocessSettings, VideoGeometry, VideoPostprocessor
from .store import MaskStore

__all__ = [
    "VIDEO_TASKS",
    "TASKS_BY_EVALUATOR",
    "ClipPrediction",
    "select_video_tasks",
    "final_query_features",
    "stream_clips",
    "infer_video",
]

VIDEO_TASKS = ("panoptic", "semantic", "instance", "vos")
# What each video evaluator reads (evaluator_type -> tasks); "vos" needs first-frame masks.
TASKS_BY_EVALUATOR: Dict[str, Tuple[str, ...]] = {
    "vps": ("panoptic", "semantic"),
    "ytvis": ("instance",),
    "davis": ("vos",),
}


@dataclass
class ClipPrediction:
    """The decoder's final prediction for one clip of t frames (batch dimension removed)."""

    mask_cls: Tensor  # [Q, K+1] class logits
    objectness: Tensor  # [Q, 1] objectness logits
    masks: Tensor  # [Q, t, h, w] mask logits at mask-feature resolution
    query_features: Tensor  # [Q, C] final query features (association)
    padded_size: Tuple[int, int]  # (H, W) of the padded model input
    image_size: Tuple[int, int]  # (H, W) of the resized frames inside it


def select_video_tasks(evaluator_type: Optional[str], *, panoptic_on: bool, semantic_on: bool,
                       instance_on: bool, has_first_frame: bool) -> Tuple[str, ...]:
    """The outputs to produce for a video: the ``*_ON`` switches intersected with what the
    dataset's evaluator reads (``TASKS_BY_EVALUATOR``; VOS for ``davis`` always), or for any
    other input the switched-on tasks plus VOS when first-frame masks are given."""
    on = {"panoptic": panoptic_on, "semantic": semantic_on, "instance": instance_on,
          "vos": True}
    if evaluator_type in TASKS_BY_EVALUATOR:
        return tuple(t for t in TASKS_BY_EVALUATOR[evaluator_type] if on[t])
    return tuple(t for t in VIDEO_TASKS if on[t] and (t != "vos" or has_first_frame))


@contextmanager
def final_query_features(decoder: nn.Module) -> Iterator[Dict[str, Tensor]]:
    """Capture the decoder's final query features before its output LayerNorm.

    The official association matches the decoder's last-layer output ``query_feat`` (the
    ``post_norm`` is applied inside its prediction head only), i.e. the input of the last
    ``decoder_norm`` call of :class:`OMGMaskDecoder`. Inside the block ``holder["features"]``
    is that input [B, Q, C] after each forward; a decoder without ``decoder_norm`` leaves the
    holder empty (callers then use ``query_embeds``).
    """
    holder: Dict[str, Tensor] = {}
    norm = getattr(decoder, "decoder_norm", None)
    if not isinstance(norm, nn.Module):
        yield holder
        return

    def hook(module, args):
        holder["features"] = args[0]

    handle = norm.register_forward_pre_hook(hook)
    try:
        yield holder
    finally:
        handle.remove()


def stream_clips(bounds: Sequence[Tuple[int, int]],
                 decode_clip: Callable[[int, int], ClipPrediction], *, num_frames: int,
                 tmp_dir: Optional[str] = None, progress: bool = False, name: str = "video",
                 ) -> Tuple[QueryTracker, MaskStore, VideoGeometry]:
    """Decode every clip, align its queries and store its aligned masks.

    Returns the tracker (video-level logits), the filled store and the geometry (whose
    ``output_size`` is left as the resized size; callers replace it)."""
    tracker = QueryTracker()
    store: Optional[MaskStore] = None
    sizes = None
    # progress: a bar on a terminal (tqdm's disable=None), none in log files
    bar = tqdm(total=num_frames, desc=name, unit="frame", disable=None if progress else True,
               leave=False)
    try:
        for start, end in bounds:
            pred = decode_clip(start, end)
            q, t = pred.masks.shape[:2]
            if t != end - start:
                raise ValueError(f"{name}: frames {start}..{end - 1} gave masks for {t} frames")
            clip_sizes = (tuple(pred.padded_size), tuple(pred.image_size))
            if sizes is None:
                sizes = clip_sizes
            elif clip_sizes != sizes:
                raise ValueError(f"{name}: frames {start}..{end - 1} are {clip_sizes[1]} (padded "
                                 f"{clip_sizes[0]}), the first frames {sizes[1]} (padded "
                                 f"{sizes[0]}); all frames of a video must have one size")
            perm = tracker.update(pred.mask_cls, pred.objectness, pred.query_features)
            if store is None:
                store = MaskStore(num_frames, q, pred.masks.shape[-2:], tmp_dir, name)
            store.write(start, pred.masks[torch.as_tensor(perm, device=pred.masks.device)])
            del pred
            bar.update(end - start)
    except BaseException:
        if store is not None:
            store.close()
        raise
    finally:
        bar.close()
    if store is None:
        raise ValueError(f"{name}: no clip to decode")
    return tracker, store, VideoGeometry(sizes[0], sizes[1], sizes[1])


def infer_video(*, bounds: Sequence[Tuple[int, int]],
                decode_clip: Callable[[int, int], ClipPrediction], num_frames: int,
                tasks: Sequence[str], is_thing: Sequence[bool],
                output_size: Tuple[int, int], settings: PostprocessSettings,
                instance_thing_mask: Optional[Sequence[bool]] = None,
                first_frame_masks=None, object_ids: Optional[Sequence[int]] = None,
                video_id=None, device: Optional[torch.device] = None,
                tmp_dir: Optional[str] = None, progress: bool = False) -> Dict:
    """One video's output dict (see the module docstring) for the requested ``tasks``."""
    unknown = sorted(set(tasks) - set(VIDEO_TASKS))
    if unknown:
        raise ValueError(f"unknown video tasks {unknown}; known: {VIDEO_TASKS}")
    name = f"video {video_id!r}" if video_id is not None else "video"
    if "vos" in tasks:  # checked before any clip is decoded
        if first_frame_masks is None:
            raise ValueError(f"{name}: VOS needs 'first_frame_masks' [N_obj, H0, W0] and "
                             "'object_ids' [N_obj] in the input")
        if object_ids is None:
            object_ids = list(range(1, len(first_frame_masks) + 1))
        first_frame_masks, object_ids = VideoPostprocessor.check_vos_objects(
            first_frame_masks, object_ids, output_size, name)
    tracker, store, geometry = stream_clips(bounds, decode_clip, num_frames=num_frames,
                                            tmp_dir=tmp_dir, progress=progress, name=name)
    geometry = VideoGeometry(geometry.padded_size, geometry.image_size,
                             (int(output_size[0]), int(output_size[1])))
    post = VideoPostprocessor(store, tracker.mask_cls, tracker.objectness, is_thing, geometry,
                              settings, device, name)
    out: Dict = {} if video_id is None else {"video_id": video_id}
    try:
        producers = {}
        if "panoptic" in tasks:
            producers["panoptic_seg"] = post.panoptic
        if "semantic" in tasks:
            producers["sem_seg"] = post.semantic
        if producers:
            out["frames"] = LazyFrames(num_frames, producers, name)
        if "instance" in tasks:
            out["video_instances"] = post.video_instances(instance_thing_mask, progress)
        if "vos" in tasks:
            post.set_vos_objects(first_frame_masks, object_ids)
            out["vos_masks"] = LazySequence(num_frames, post.vos, name)
    except BaseException:
        store.close()
        raise
    if "frames" not in out and "vos_masks" not in out:
        store.close()  # nothing reads it any more
    return out
