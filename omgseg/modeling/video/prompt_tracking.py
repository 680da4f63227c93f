"""Prompt-driven video object segmentation (SEEM Fig. 7): prompts on the first frame -> one mask
tube per prompt through the whole video, with the shared decoder's location queries.

Frame 0 is decoded with the user's prompts (clicks, boxes, strokes, masks: one location query
each). Every later frame is decoded with one *mask prompt* per object: the object's predicted
mask on the previous frame (its tight box as position, the mask features pooled inside it as
content: the region-prompt path the model is trained on with T = 1 in COCO-SAM mode). An object
whose mask vanished keeps its last prompt, so it can reappear. Frames go one at a time (the
prompt of frame t depends on frame t - 1), so memory holds one frame; the per-frame mask logits
go to a :class:`MaskStore` and the index maps are painted lazily when read.

Painting: a pixel takes the object with the highest mask probability among those above 0.5
(0 = background), labelled with the object's id. Each object also gets one label from the
active vocabulary: the class logits of its query averaged over the frames.
"""
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from ...data.prompts import Prompts
from .lazy import LazySequence
from .postprocess import resize_mask_logits
from .store import MaskStore

__all__ = ["FramePrompts", "masks_to_prompts", "paint_objects", "track_prompts"]

# decode(t, prompts) -> (mask logits [P, h, w] at mask-feature resolution, class logits [P, K+1],
# padded size (H, W), image size (H, W) of frame t inside it).
FramePrompts = Callable[[int, Prompts], Tuple[Tensor, Tensor, Tuple[int, int], Tuple[int, int]]]


def masks_to_prompts(binary: Tensor, previous: Prompts) -> Prompts:
    """Mask prompts from an object's predicted masks (bool [P, H, W] at the prompts' image
    size); an empty mask keeps that object's previous prompt (kind, box and raster)."""
    p, h, w = binary.shape
    if (h, w) != tuple(previous.image_size) or p != len(previous):
        raise ValueError(f"masks [{p}, {h}, {w}] do not fit {len(previous)} prompts of an image "
                         f"of size {tuple(previous.image_size)}")
    old_regions = {}
    if previous.regions is not None:
        for row, k in enumerate(previous.region_index.tolist()):
            old_regions[k] = previous.regions[row]
    kinds, boxes, regions = [], [], []
    for k in range(p):
        mask = binary[k]
        if bool(mask.any()):
            ys = torch.nonzero(mask.any(1)).flatten()
            xs = torch.nonzero(mask.any(0)).flatten()
            kinds.append("mask")
            boxes.append([float(xs[0]), float(ys[0]), float(xs[-1] + 1), float(ys[-1] + 1)])
            regions.append(mask.cpu().numpy())
        else:
            kinds.append(previous.kinds[k])
            boxes.append(previous.boxes[k].tolist())
            old = old_regions.get(k)
            regions.append(None if old is None else old.cpu().numpy())
    return Prompts.from_parts(kinds, boxes, regions, (h, w))


def paint_objects(probs: Tensor, object_ids: Sequence[int]) -> np.ndarray:
    """Index map uint8 [H, W] from per-object mask probabilities [P, H, W]: the most probable
    object among those above 0.5, as its id; 0 where none is."""
    if probs.shape[0] == 0:
        return np.zeros(tuple(probs.shape[-2:]), dtype=np.uint8)
    best, index = probs.max(0)
    ids = torch.as_tensor([int(i) for i in object_ids], dtype=torch.uint8, device=probs.device)
    out = torch.where(best > 0.5, ids[index], torch.zeros_like(ids[index]))
    return out.cpu().numpy()


def track_prompts(
    decode: FramePrompts,
    first_prompts: Prompts,
    num_frames: int,
    object_ids: Sequence[int],
    output_size: Tuple[int, int],
    *,
    video_id=None,
    tmp_dir: Optional[str] = None,
    progress: bool = False,
) -> Dict:
    """Follow the prompted objects through a video.

    Args:
        decode: runs the model on frame t with the given prompts (see :data:`FramePrompts`).
        first_prompts: the P prompts of frame 0, in pixels of the model's (resized) frames.
        num_frames: T.
        object_ids: the label (1..255) of each prompt's object in the index maps.
        output_size: (H0, W0) of the index maps (the original frame size).

    Returns:
        ``{"video_id", "vos_masks": lazy [T] of uint8 [H0, W0], "object_labels": [(class id,
        score)] per object}`` (class ids index the active vocabulary, void excluded).
    """
    name = f"video {video_id!r}"
    if len(first_prompts) == 0:
        raise ValueError(f"{name}: prompt-driven VOS needs at least one prompt on frame 0")
    if len(object_ids) != len(first_prompts):
        raise ValueError(f"{name}: {len(object_ids)} object ids for {len(first_prompts)} prompts")
    if any(not 0 < int(i) < 255 for i in object_ids):
        raise ValueError(f"{name}: object ids must be in 1..254, got {list(object_ids)}")
    prompts = first_prompts
    store: Optional[MaskStore] = None
    geometry: Optional[Tuple[Tuple[int, int], Tuple[int, int]]] = None
    class_sum: Optional[Tensor] = None
    bar = tqdm(total=num_frames, desc=f"{name} (prompts)", unit="frame", disable=not progress,
               leave=False)
    try:
        for t in range(num_frames):
            masks, logits, padded_size, image_size = decode(t, prompts)
            if store is None:
                store = MaskStore(num_frames, masks.shape[0], tuple(masks.shape[-2:]), tmp_dir,
                                  name)
                geometry = (tuple(padded_size), tuple(image_size))
            elif (tuple(padded_size), tuple(image_size)) != geometry:
                raise ValueError(f"{name}, frame {t}: size {tuple(image_size)} differs from frame "
                                 f"0's {geometry[1]}; all frames of a video must have one size")
            store.write(t, masks[:, None])
            class_sum = logits.float() if class_sum is None else class_sum + logits.float()
            if t + 1 < num_frames:
                binary = resize_mask_logits(masks, padded_size, image_size) > 0
                prompts = masks_to_prompts(binary, prompts)
            bar.update(1)
    finally:
        bar.close()
    probs = class_sum.div(num_frames).softmax(-1)[:, :-1]
    scores, classes = probs.max(-1)
    labels: List[Tuple[int, float]] = [(int(c), float(s)) for c, s in zip(classes, scores)]
    padded_size, image_size = geometry

    def frame(t: int) -> np.ndarray:
        logits = resize_mask_logits(store.read(t), padded_size, image_size, output_size)
        return paint_objects(logits.sigmoid(), object_ids)

    vos_masks = LazySequence(num_frames, frame, name)
    vos_masks.store = store  # keeps the temporary folder alive as long as the output
    return {"video_id": video_id, "vos_masks": vos_masks, "object_labels": labels}
