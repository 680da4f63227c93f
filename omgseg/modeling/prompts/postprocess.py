"""Location-query outputs -> per-prompt results at the original image size.

For every prompt: its mask (sigmoid > 0.5, the official COCO-SAM rule), a mask-quality score,
the objectness probability, and an open-vocabulary label with its score.

* ``scores``: mean mask probability inside the predicted mask (Mask2Former's mask score; 0 for an
  empty mask). The official prompt training zeroes the objectness loss of location queries, so
  objectness is not a trained prompt-quality signal; it is returned as ``objectness`` anyway
  (the head is shared with the semantic queries).
* ``pred_classes`` / ``class_scores``: arg max and probability of the softmax over the K classes of
  the active vocabulary, void left out (location queries get no class loss, so void is not a
  trained answer for them); the classifier is the same mask-pooled CLIP-text classifier as for
  semantic queries.
"""
from typing import NamedTuple, Tuple

import torch
from torch import Tensor
from torch.nn import functional as F

from detectron2.modeling.postprocessing import sem_seg_postprocess
from detectron2.structures import Instances

__all__ = [
    "PromptFields",
    "prompt_results",
    "class_labels",
    "masks_and_quality",
    "output_mask_probs",
]

# Masks resized to the output size per chunk of this many prompts (bounds memory).
_CHUNK = 16


def class_labels(mask_cls: Tensor) -> Tuple[Tensor, Tensor]:
    """(labels long [P], scores [P]) from ``mask_cls`` [P, K+1] logits (void = last column,
    left out of the softmax)."""
    probs = F.softmax(mask_cls[:, :-1].float(), dim=-1)
    scores, labels = probs.max(-1)
    return labels, scores


def masks_and_quality(probs: Tensor) -> Tuple[Tensor, Tensor]:
    """(bool masks = ``probs`` > 0.5, their quality: the mean of ``probs`` inside each mask, 0
    for an empty one) of mask probabilities ``probs`` [P, H, W]: ([P, H, W], [P])."""
    inside = F.threshold(probs, 0.5, 0.0)  # probs where > 0.5, else 0
    masks = inside.bool()  # = inside > 0 (probabilities are >= 0), a cheaper kernel
    return masks, inside.flatten(1).sum(1) / masks.flatten(1).sum(1).clamp(min=1)


def output_mask_probs(
    mask_logits: Tensor,
    padded_size: Tuple[int, int],
    image_size: Tuple[int, int],
    output_size: Tuple[int, int],
) -> Tensor:
    """[n, height, width] mask probabilities at the original size from mask logits [n, h, w]
    at mask-feature resolution: upsampled to the padded input, cropped to the image, resized
    (bilinear; Detectron2's ``sem_seg_postprocess``), then sigmoid."""
    if mask_logits.shape[0] == 0:
        return mask_logits.new_zeros((0, int(output_size[0]), int(output_size[1])))
    logits = F.interpolate(mask_logits[None].to(torch.float32), size=tuple(padded_size),
                           mode="bilinear", align_corners=False)[0]
    if tuple(int(x) for x in output_size) == tuple(image_size):  # the resize is the identity
        if tuple(image_size) != tuple(padded_size):
            logits = logits[:, : image_size[0], : image_size[1]]
        return logits.sigmoid_()  # in place: a tensor of ours
    return sem_seg_postprocess(logits, tuple(image_size), int(output_size[0]),
                               int(output_size[1])).sigmoid_()


def _prompt_masks(
    mask_logits: Tensor,
    padded_size: Tuple[int, int],
    image_size: Tuple[int, int],
    output_size: Tuple[int, int],
) -> Tuple[Tensor, Tensor]:
    """(bool masks [P, height, width] = probability > 0.5 at the original size, their quality
    [P] (:func:`masks_and_quality`)); resized in chunks of 16 prompts to bound memory."""
    p = mask_logits.shape[0]
    height, width = int(output_size[0]), int(output_size[1])
    if p <= _CHUNK:
        return masks_and_quality(
            output_mask_probs(mask_logits, padded_size, image_size, (height, width)))
    masks = torch.zeros((p, height, width), dtype=torch.bool, device=mask_logits.device)
    quality = torch.zeros((p,), dtype=torch.float32, device=mask_logits.device)
    for s in range(0, p, _CHUNK):
        masks[s:s + _CHUNK], quality[s:s + _CHUNK] = masks_and_quality(output_mask_probs(
            mask_logits[s:s + _CHUNK], padded_size, image_size, (height, width)))
    return masks, quality


class PromptFields(NamedTuple):
    """Per-prompt results of one image, in prompt order."""

    pred_masks: Tensor  # bool [P, height, width]
    scores: Tensor  # [P] mask quality
    objectness: Tensor  # [P] probability
    pred_classes: Tensor  # long [P]
    class_scores: Tensor  # [P]

    def to_instances(self) -> Instances:
        """These fields as ``Instances(image_size=(height, width))`` of the masks, in prompt
        order (boxes of the masks: ``BitMasks(pred_masks).get_bounding_boxes()`` when needed)."""
        return Instances(tuple(self.pred_masks.shape[-2:]), **self._asdict())


def prompt_results(
    mask_cls: Tensor,
    mask_logits: Tensor,
    objectness: Tensor,
    padded_size: Tuple[int, int],
    image_size: Tuple[int, int],
    output_size: Tuple[int, int],
) -> PromptFields:
    """Per-prompt results of one image.

    Args:
        mask_cls: [P, K+1] class logits; mask_logits: [P, h, w] at mask-feature resolution of
            the padded input of ``padded_size``; objectness: [P, 1] logits.
        image_size: (H, W) of the image inside the padded input.
        output_size: (height, width) of the original image.
    """
    masks, quality = _prompt_masks(mask_logits, padded_size, image_size, output_size)
    labels, label_scores = class_labels(mask_cls)
    return PromptFields(masks, quality, objectness.reshape(-1).float().sigmoid(), labels,
                        label_scores)

