"""Prompt-driven segmentation with the shared decoder: prompt encoding into location queries,
per-prompt post-processing, and referring regions across images (no parameters of their own)."""
from .decode import PromptSettings, decode_prompts
from .encoder import (
    LocationQueries,
    encode_prompts,
    jitter_boxes,
    normalized_cxcywh,
    pool_box_features,
    pool_region_features,
)
from .postprocess import (
    PromptFields,
    class_labels,
    masks_and_quality,
    output_mask_probs,
    prompt_results,
)
from .referring import (
    ReferringMatches,
    best_f1_threshold,
    query_class_embeddings,
    referring_masks,
    referring_selection,
)

__all__ = [
    "PromptSettings",
    "decode_prompts",
    "LocationQueries",
    "encode_prompts",
    "jitter_boxes",
    "normalized_cxcywh",
    "pool_region_features",
    "pool_box_features",
    "class_labels",
    "masks_and_quality",
    "output_mask_probs",
    "PromptFields",
    "prompt_results",
    "ReferringMatches",
    "best_f1_threshold",
    "query_class_embeddings",
    "referring_masks",
    "referring_selection",
]
