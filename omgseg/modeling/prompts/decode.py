"""Decoding prompt sets with the shared decoder on a prepared memory (encode once, decode per
prompt set)."""
from typing import Dict, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ...data.prompts import Prompts
from .encoder import LocationQueries, encode_prompts

__all__ = ["PromptSettings", "decode_prompts"]


class PromptSettings(NamedTuple):
    """The ``MODEL.OMG.PROMPT`` keys (see ``omgseg/config.py``)."""

    point_type: int = 1
    noise_scale: float = 0.4
    noise_factor: float = 0.01
    max_prompts: int = 100
    referring_threshold: float = 0.9
    pool_box_features: bool = False
    mask_stride: int = 4

    @classmethod
    def from_config(cls, cfg) -> "PromptSettings":
        p = cfg.MODEL.OMG.PROMPT
        return cls(int(p.POINT_TYPE), float(p.NOISE_SCALE), float(p.NOISE_FACTOR),
                   int(p.MAX_PROMPTS), float(p.REFERRING_THRESHOLD), bool(p.POOL_BOX_FEATURES),
                   int(cfg.MODEL.OMG.COMMON_STRIDE))


def decode_prompts(
    decoder,
    memory,
    prompts: Sequence[Prompts],
    text_embeddings: Tensor,
    settings: PromptSettings,
    *,
    training: bool = False,
    generator: Optional[torch.Generator] = None,
    return_aux_outputs: Optional[bool] = None,
) -> Tuple[Dict, LocationQueries]:
    """Run the decoder with the location queries of ``prompts`` (one set per clip of ``memory``,
    a ``DecoderMemory``); the box jitter is applied in ``training`` only.

    Returns:
        (the decoder output: ``pred_logits`` [B, P, K+1], ``pred_masks`` [B, P, T, h, w],
        ``pred_objectness``, ``query_embeds``, ``aux_outputs``; the :class:`LocationQueries`,
        whose ``valid`` [B, P] marks the real prompts).
    """
    if len(prompts) != memory.mask_features.shape[0]:
        raise ValueError(f"{len(prompts)} prompt sets for a memory of "
                         f"{memory.mask_features.shape[0]} clips")
    queries = encode_prompts(
        decoder, prompts, memory.mask_features, point_type=settings.point_type,
        noise_scale=settings.noise_scale if training else 0.0,
        noise_factor=settings.noise_factor, generator=generator,
        pool_boxes=settings.pool_box_features, mask_stride=settings.mask_stride,
    )
    outputs = decoder(
        None, None, memory.num_frames, text_embeddings, query_content=queries.content,
        query_pos=queries.pos, return_aux_outputs=return_aux_outputs, memory=memory,
        independent_queries=True,  # = queries.self_attn_mask (identity), without the kernel
    )
    return outputs, queries
