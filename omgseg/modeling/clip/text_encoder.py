"""CLIP text encoding on the shortest context that gives the same features.

OpenCLIP pads every prompt to the 77-token context, but its text tower attends causally and pools
the end-of-text token, so the positions after a batch's longest prompt never reach the output.
:func:`encode_text` runs ``CLIP.encode_text`` on the first ``L`` positions only (``L`` = the
longest prompt of the batch, end-of-text included), slicing the positional embedding and the
causal mask the same way. Class-name prompts are ~10 tokens: the text tower does ~7x less work.
Towers where this does not hold (non-causal masks, "last" / "first" pooling, custom or Hugging
Face text towers) go through ``encode_text`` unchanged.
"""
import torch
from torch import Tensor, nn

from open_clip import CLIP

try:  # open_clip >= 2.24 pools through this function (and has CLIP.text_pool_type)
    from open_clip.transformer import text_global_pool
except ImportError:  # older open_clip: no trimming
    text_global_pool = None

__all__ = ["can_trim_context", "encode_text"]


def can_trim_context(clip_model: nn.Module) -> bool:
    """Whether ``clip_model``'s text features only depend on positions up to the pooled token."""
    if text_global_pool is None or type(clip_model) is not CLIP:
        return False
    if getattr(clip_model, "text_pool_type", None) not in ("argmax", "eos"):
        return False
    mask = getattr(clip_model, "attn_mask", None)
    if not isinstance(mask, Tensor) or mask.dim() != 2 or mask.is_meta:
        return False
    causal = torch.ones(mask.shape, dtype=torch.bool, device=mask.device).triu(1)
    return bool(torch.equal(torch.isinf(mask) & (mask < 0), causal)) and bool(
        (mask[~causal] == 0).all()
    )


def _pooled_positions(clip_model: CLIP, tokens: Tensor) -> Tensor:
    """Index [n] of the token ``text_global_pool`` reads in each row."""
    if clip_model.text_pool_type == "argmax":
        return tokens.argmax(dim=-1)
    return (tokens == clip_model.text_eos_id).int().argmax(dim=-1)


@torch.no_grad()
def encode_text(clip_model: nn.Module, tokens: Tensor) -> Tensor:
    """``clip_model.encode_text(tokens)`` ([n, context] -> [n, D], not normalised), computed on
    the context trimmed to the batch's longest prompt when :func:`can_trim_context` holds."""
    if tokens.numel() == 0 or not can_trim_context(clip_model):
        return clip_model.encode_text(tokens)
    length = int(_pooled_positions(clip_model, tokens).max()) + 1
    if length >= tokens.shape[1]:
        return clip_model.encode_text(tokens)
    text = tokens[:, :length]
    # CLIP.encode_text on positions [0, length).
    cast_dtype = clip_model.transformer.get_cast_dtype()
    x = clip_model.token_embedding(text).to(cast_dtype)
    x = x + clip_model.positional_embedding[:length].to(cast_dtype)
    x = clip_model.transformer(x, attn_mask=clip_model.attn_mask[:length, :length])
    x = clip_model.ln_final(x)
    x = text_global_pool(x, text, clip_model.text_pool_type, eos_token_id=clip_model.text_eos_id)
    proj = clip_model.text_projection
    if proj is not None:
        x = proj(x) if isinstance(proj, nn.Linear) else x @ proj
    return x
