"""OMG-Seg's shared multi-task mask decoder (one code path for images, T = 1, and videos, T >= 1).

A Mask2Former-style masked-attention decoder whose classifier is a cosine classifier against CLIP
text embeddings given at forward time, plus an objectness head and location (box / point prompt)
queries.

Shape shorthand: B = clips, T = frames per clip, N = B * T frames, Q = queries, P = prompts,
K = classes, S = synonym slots per class, D = CLIP text dimension, C = hidden width,
h x w = a memory level's size, H x W = mask-feature size.
"""
import functools
import math
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.layers import Conv2d
from torch import Tensor, nn

from ...layers.direct_call import call_layer
from ...layers.position_encoding import PositionEmbeddingSine3D, coordinate_to_encoding
from ..build import TRANSFORMER_DECODER_REGISTRY
from .layers import MLP, CrossAttentionLayer, FFNLayer, KeyValue, SelfAttentionLayer

__all__ = [
    "DecoderMemory",
    "OMGMaskDecoder",
    "identity_self_attn_mask",
    "mask_logits_to_attn_mask",
    "mask_pool",
    "resize_mask_features",
    "tube_mask_logits",
    "unblock_fully_masked_rows",
]


class DecoderMemory(NamedTuple):
    """The image side of the decoder, computed once per batch by
    :meth:`OMGMaskDecoder.prepare_memory` and reusable by several forwards (a re-prompt on a
    cached image runs only the query side).

    ``src`` / ``pos``: 3 levels of memory tokens and their 3D sine positions [B, T*h*w, C];
    ``sizes``: the (h, w) of each level; ``mask_features``: [B, T, C_mask, H, W];
    ``level_mask_features``: the mask features resized to each level and laid out like its
    memory tokens, [B, C_mask, T*h*w] in (t, y, x) order (attention masks only, no grad): one
    product with the mask embeddings gives a layer's mask logits; ``num_frames``: T;
    ``key_values``: per decoder layer, the projected keys / values of the level it attends to
    (they do not depend on the queries).
    """

    src: List[Tensor]
    pos: List[Tensor]
    sizes: List[Tuple[int, int]]
    mask_features: Tensor
    level_mask_features: List[Tensor]
    num_frames: int
    key_values: Optional[List[KeyValue]] = None


def identity_self_attn_mask(
    batch: int, num_queries: int, num_heads: int, device: Optional[torch.device] = None
) -> Tensor:
    """Self-attention mask that lets each query see only itself.

    Returns bool [batch * num_heads, num_queries, num_queries]: True (blocked) everywhere except
    the diagonal.
    """
    eye = torch.eye(num_queries, dtype=torch.bool, device=device)
    return (~eye).unsqueeze(0).expand(batch * num_heads, -1, -1).clone()


def unblock_fully_masked_rows(attn_mask: Tensor) -> Tensor:
    """Return a copy of a bool mask [..., Q, L] in which rows with every key blocked are cleared.

    A query whose mask blocks every memory token would get NaN attention; such a query attends
    everywhere instead (Mask2Former).
    """
    return attn_mask.masked_fill(attn_mask.all(dim=-1, keepdim=True), False)


def tube_mask_logits(mask_embed: Tensor, mask_features: Tensor) -> Tensor:
    """Dot product of every query's mask embedding with every frame's per-pixel features.

    Args:
        mask_embed: [B, Q, C].
        mask_features: [B, T, C, H, W].

    Returns:
        [B, Q, T, H, W] mask logits (one tube per query).
    """
    b, t, c, h, w = mask_features.shape
    # [B, 1, Q, C] @ [B, T, C, H*W] -> [B, T, Q, H*W]: one GEMM per frame on the features as
    # they are; only the output is reordered (a copy when T > 1).
    logits = torch.matmul(mask_embed.unsqueeze(1), mask_features.reshape(b, t, c, h * w))
    if t == 1:  # [B, 1, Q, H*W] is already [B, Q, 1, H, W] in memory
        return logits.view(b, -1, 1, h, w)
    return logits.view(b, t, -1, h, w).transpose(1, 2).contiguous()


def resize_mask_features(mask_features: Tensor, size: Tuple[int, int]) -> Tensor:
    """Mask features [B, T, C, H, W] bilinearly resized to ``size`` (h, w): [B, T, C, h, w].

    Bilinear resizing (``align_corners=False``, no antialiasing) is linear, so
    ``tube_mask_logits(e, resize_mask_features(f, s))`` equals the mask logits
    ``tube_mask_logits(e, f)`` resized to ``s``, up to float rounding, at a fraction of the cost.
    """
    b, t, c, h, w = mask_features.shape
    resized = F.interpolate(
        mask_features.reshape(b * t, c, h, w),
        size=tuple(size),
        mode="bilinear",
        align_corners=False,
    )
    return resized.view(b, t, c, *resized.shape[-2:])


def mask_logits_to_attn_mask(mask_logits: Tensor, threshold: float = 0.5) -> Tensor:
    """Cross-attention mask of the next decoder layer from tube mask logits at its memory size.

    Args:
        mask_logits: [B, Q, T, h, w] mask logits at the (h, w) of the memory level attended to,
            or the same flattened to [B, Q, T*h*w].
        threshold: a token is blocked where sigmoid(logit) < threshold.

    Returns:
        bool [B, 1, Q, T * h * w] (token order t, y, x; shared by all heads), detached; rows
        with every token blocked are unblocked.
    """
    b, q = mask_logits.shape[:2]
    logits = mask_logits.detach().reshape(b, 1, q, -1)
    if 0.0 < threshold < 1.0:  # sigmoid(x) < t  <=>  x < logit(t): no sigmoid pass
        blocked = logits < math.log(threshold / (1.0 - threshold))
    else:
        blocked = logits.sigmoid() < threshold
    return unblock_fully_masked_rows(blocked)


def mask_pool(features: Tensor, mask_logits: Tensor) -> Tensor:
    """Average ``features`` inside each binarised (logit > 0, detached) tube mask.

    Args:
        features: [B, T, C, H, W].
        mask_logits: [B, Q, T, H, W] (same T, H, W as ``features``).

    Returns:
        [B, Q, C]: sum(feat * m) / (sum(m) + 1e-8) over all frames and pixels (0 for empty masks).
    """
    b, t, c, h, w = features.shape
    m = (mask_logits.detach() > 0).to(features.dtype)
    area = m.flatten(2).sum(-1, keepdim=True)
    # Per frame [B, Q, H*W] @ [B, H*W, C]; the transposed features are a view (BLAS reads them
    # transposed) instead of the copy an einsum makes.
    pooled = functools.reduce(torch.add, (
        torch.matmul(m[:, :, f].reshape(b, -1, h * w),
                     features[:, f].reshape(b, c, h * w).transpose(1, 2))
        for f in range(t)))
    return pooled / (area + 1e-8)


@TRANSFORMER_DECODER_REGISTRY.register()
class OMGMaskDecoder(nn.Module):
    """Shared masked-attention decoder with CLIP-text classifier, objectness and location queries.

    Layer ``i`` cross-attends to level ``i % 3`` of the multi-scale memory (coarsest first),
    masked by the tube masks predicted before it, then self-attends, then applies an FFN.
    Predictions (class logits, tube masks, objectness) are made from the input queries and after
    every layer: ``dec_layers + 1`` in all, the last being the output and the others
    ``aux_outputs``, which are only computed when asked for (by default in training).
    """

    num_feature_levels = 3

    @configurable
    def __init__(
        self,
        *,
        in_channels: int,
        hidden_dim: int,
        num_queries: int,
        nheads: int,
        dim_feedforward: int,
        dec_layers: int,
        pre_norm: bool,
        mask_dim: int,
        text_dim: int,
        logit_scale: float,
        attn_mask_threshold: float,
        dropout: float = 0.0,
    ):
        """
        Args:
            in_channels: channels of the multi-scale memory maps (1x1 conv if != hidden_dim).
            hidden_dim: query / attention width C (even: the 3D sine embedding has C channels).
            num_queries: learned semantic queries.
            nheads: attention heads.
            dim_feedforward: FFN width.
            dec_layers: decoder layers (a multiple of 3 visits every level equally often).
            pre_norm: pre-norm instead of post-norm in every block.
            mask_dim: channels of the mask features.
            text_dim: CLIP text-embedding dimension D.
            logit_scale: multiplier of the cosine class logits (100).
            attn_mask_threshold: probability under which a memory token is masked out.
            dropout: dropout inside the decoder blocks.
        """
        super().__init__()
        if hidden_dim % 2:
            raise ValueError(
                f"hidden_dim must be even for the sine position encoding, got {hidden_dim}"
            )
        self.hidden_dim = hidden_dim
        self.num_queries = num_queries
        self.num_heads = nheads
        self.num_layers = dec_layers
        self.mask_dim = mask_dim
        self.text_dim = text_dim
        self.logit_scale = float(logit_scale)
        self.attn_mask_threshold = float(attn_mask_threshold)

        # memory: input projections, 3D position encoding, level embedding
        self.pe_layer = PositionEmbeddingSine3D(hidden_dim // 2, normalize=True)
        self.level_embed = nn.Embedding(self.num_feature_levels, hidden_dim)
        self.input_proj = nn.ModuleList()
        for _ in range(self.num_feature_levels):
            if in_channels != hidden_dim:
                proj = Conv2d(in_channels, hidden_dim, kernel_size=1)
                nn.init.xavier_uniform_(proj.weight)
                nn.init.zeros_(proj.bias)
                self.input_proj.append(proj)
            else:
                self.input_proj.append(nn.Identity())

        # learned semantic queries
        self.query_feat = nn.Embedding(num_queries, hidden_dim)
        self.query_embed = nn.Embedding(num_queries, hidden_dim)

        # decoder layers
        self.transformer_cross_attention_layers = nn.ModuleList()
        self.transformer_self_attention_layers = nn.ModuleList()
        self.transformer_ffn_layers = nn.ModuleList()
        for _ in range(dec_layers):
            self.transformer_cross_attention_layers.append(
                CrossAttentionLayer(hidden_dim, nheads, dropout=dropout, normalize_before=pre_norm)
            )
            self.transformer_self_attention_layers.append(
                SelfAttentionLayer(hidden_dim, nheads, dropout=dropout, normalize_before=pre_norm)
            )
            self.transformer_ffn_layers.append(
                FFNLayer(hidden_dim, dim_feedforward, dropout=dropout, normalize_before=pre_norm)
            )

        # heads
        self.decoder_norm = nn.LayerNorm(hidden_dim)
        self.mask_embed = MLP(hidden_dim, hidden_dim, mask_dim, 3)
        self.iou_embed = MLP(hidden_dim, hidden_dim, 1, 3)
        self.mask_pooling_proj = nn.Sequential(
            nn.LayerNorm(mask_dim), nn.Linear(mask_dim, hidden_dim)
        )
        self.cls_proj = MLP(hidden_dim, hidden_dim, text_dim, 3)

        # location (box / point prompt) queries
        self.pb_embedding = nn.Embedding(2, hidden_dim)  # 0 = box, 1 = point
        self.mask_tokens = nn.Embedding(1, hidden_dim)
        self.pos_linear = nn.Linear(2 * hidden_dim, hidden_dim)

    @classmethod
    def from_config(cls, cfg, in_channels: int, text_dim: int) -> Dict:
        omg = cfg.MODEL.OMG
        return {
            "in_channels": in_channels,
            "hidden_dim": omg.HIDDEN_DIM,
            "num_queries": omg.NUM_OBJECT_QUERIES,
            "nheads": omg.NHEADS,
            "dim_feedforward": omg.DIM_FEEDFORWARD,
            "dec_layers": omg.DEC_LAYERS,
            "pre_norm": omg.PRE_NORM,
            "mask_dim": omg.MASK_DIM,
            "text_dim": text_dim,
            "logit_scale": omg.CLIP.LOGIT_SCALE,
            "attn_mask_threshold": omg.ATTN_MASK_THRESHOLD,
            "dropout": omg.DROPOUT,
        }

    # ------------------------------------------------------------------ location queries
    def encode_box_prompts(
        self, boxes_cxcywh: Tensor, prompt_types: Tensor
    ) -> Tuple[Tensor, Tensor]:
        """Location queries from prompts.

        Args:
            boxes_cxcywh: [B, P, 4] boxes (cx, cy, w, h) normalised to [0, 1]; a point prompt is
                passed as a box around the point.
            prompt_types: [B, P] long, 0 = box, 1 = point.

        Returns:
            (query_content [B, P, C], query_pos [B, P, C]) for ``forward``.
        """
        if boxes_cxcywh.dim() != 3 or boxes_cxcywh.shape[-1] != 4:
            raise ValueError(f"boxes_cxcywh must be [B, P, 4], got {tuple(boxes_cxcywh.shape)}")
        if prompt_types.shape != boxes_cxcywh.shape[:2]:
            raise ValueError(
                f"prompt_types {tuple(prompt_types.shape)} does not match boxes "
                f"{tuple(boxes_cxcywh.shape)}"
            )
        types = prompt_types if prompt_types.dtype == torch.long else prompt_types.long()
        content = call_layer(self.pb_embedding, types) + self.mask_tokens.weight[0]
        enc = coordinate_to_encoding(boxes_cxcywh, self.hidden_dim // 2)  # float32
        if enc.dtype != content.dtype:
            enc = enc.to(content.dtype)
        return content, call_layer(self.pos_linear, enc)

    # ------------------------------------------------------------------ heads
    def classify(self, cls_features: Tensor, text_embeddings: Tensor) -> Tensor:
        """Cosine class logits.

        Args:
            cls_features: [B, Q, D] query class embeddings (normalised here).
            text_embeddings: [K, S, D] (normalised here).

        Returns:
            [B, Q, K + 1]: ``logit_scale`` * max over synonyms of the cosine similarity; the last
            column (void) is the score against a zero embedding, i.e. exactly 0.
        """
        x = F.normalize(cls_features, dim=-1)
        k, s, d = text_embeddings.shape
        text = F.normalize(text_embeddings.to(x), dim=-1).reshape(k * s, d)
        cosine = torch.matmul(x, text.t()).unflatten(-1, (k, s))  # [B, Q, K, S]
        return F.pad(cosine.amax(dim=-1) * self.logit_scale, (0, 1))  # void: 0

    def class_features(
        self, normed_queries: Tensor, mask_logits: Tensor, mask_features: Tensor
    ) -> Tensor:
        """Un-normalised class embeddings [B, Q, D] from normalised queries [B, Q, C], tube mask
        logits [B, Q, T, H, W] and mask features [B, T, C_mask, H, W]."""
        pooled = mask_pool(mask_features, mask_logits)
        return self.cls_proj(call_layer(self.mask_pooling_proj, pooled) + normed_queries)

    def _query_heads(self, queries: Tensor) -> Tuple[Tensor, Tensor]:
        """Normalised queries [B, Q, C] and their mask embeddings [B, Q, C_mask]."""
        normed = call_layer(self.decoder_norm, queries)
        return normed, self.mask_embed(normed)

    def _prediction(
        self, normed: Tensor, mask_embed: Tensor, mask_features: Tensor, text_embeddings: Tensor
    ) -> Dict[str, Tensor]:
        """pred_logits [B, Q, K+1], pred_masks [B, Q, T, H, W] and pred_objectness [B, Q, 1]
        from normalised queries, their mask embeddings and mask features [B, T, C_mask, H, W]."""
        masks = tube_mask_logits(mask_embed, mask_features)
        cls_features = self.class_features(normed, masks, mask_features)
        return {
            "pred_logits": self.classify(cls_features, text_embeddings),
            "pred_masks": masks,
            "pred_objectness": self.iou_embed(normed),
        }

    def _attn_mask(self, mask_embed: Tensor, level_tokens: Tensor) -> Tensor:
        """Cross-attention mask [B, 1, Q, T*h*w] from mask embeddings [B, Q, C_mask] and the mask
        features of the attended level in token layout [B, C_mask, T*h*w] (``DecoderMemory``):
        the tube mask logits at that level, already in token order."""
        logits = torch.matmul(mask_embed.detach(), level_tokens)  # [B, Q, T*h*w]
        return mask_logits_to_attn_mask(logits, self.attn_mask_threshold)

    # ------------------------------------------------------------------ forward
    def _memory(self, multi_scale_features: Sequence[Tensor], b: int, t: int):
        """Flatten each level [B*T, C_in, h, w] to tokens [B, T*h*w, C] (+ level embedding) and
        the matching 3D sine positions [B, T*h*w, C]; also return the (h, w) of every level."""
        src, pos, sizes = [], [], []
        for lvl, feat in enumerate(multi_scale_features):
            x = self.input_proj[lvl](feat)
            n, c, h, w = x.shape
            x = x.reshape(b, t, c, h, w)
            p = self.pe_layer(x)
            sizes.append((h, w))
            tokens = x.permute(0, 1, 3, 4, 2).reshape(b, t * h * w, c)
            src.append(tokens + self.level_embed.weight[lvl])
            pos.append(p.permute(0, 1, 3, 4, 2).reshape(b, t * h * w, c))
        return src, pos, sizes

    def prepare_memory(
        self, multi_scale_features: Sequence[Tensor], mask_features: Tensor, num_frames: int
    ) -> DecoderMemory:
        """The image side of :meth:`forward` (arguments as there), computed once.

        Attention masks are built at the attended level's size from resized mask features (see
        :func:`resize_mask_features`): no full-resolution masks are needed for them.
        """
        if len(multi_scale_features) != self.num_feature_levels:
            raise ValueError(
                f"expected {self.num_feature_levels} memory levels, got {len(multi_scale_features)}"
            )
        t = int(num_frames)
        n = mask_features.shape[0]
        if t < 1 or n % t != 0:
            raise ValueError(
                f"num_frames={num_frames} must be >= 1 and divide the number of frames B*T={n} "
                "in mask_features"
            )
        b = n // t
        for lvl, feat in enumerate(multi_scale_features):
            if feat.shape[0] != n:
                raise ValueError(
                    f"memory level {lvl} has {feat.shape[0]} frames, mask_features has {n}"
                )
        src, pos, sizes = self._memory(multi_scale_features, b, t)
        mask_features = mask_features.reshape(b, t, *mask_features.shape[1:])
        with torch.no_grad():  # [B, T, C_mask, h, w] -> tokens [B, C_mask, T*h*w] ((t, y, x))
            level_mask_features = [
                resize_mask_features(mask_features, size).transpose(1, 2).flatten(2)
                for size in sizes
            ]
        levels = [i % self.num_feature_levels for i in range(self.num_layers)]
        key_values = [
            layer.memory_key_value(src[lvl], pos[lvl])
            for lvl, layer in zip(levels, self.transformer_cross_attention_layers)
        ]
        return DecoderMemory(src, pos, sizes, mask_features, level_mask_features, t, key_values)

    def forward(
        self,
        multi_scale_features: List[Tensor],
        mask_features: Tensor,
        num_frames: int,
        text_embeddings: Tensor,
        query_content: Optional[Tensor] = None,
        query_pos: Optional[Tensor] = None,
        self_attn_mask: Optional[Tensor] = None,
        return_aux_outputs: Optional[bool] = None,
        memory: Optional[DecoderMemory] = None,
        independent_queries: bool = False,
    ) -> Dict:
        """
        Args:
            multi_scale_features: 3 maps [B*T, C_in, h, w], strides 32, 16, 8 (coarsest first).
            mask_features: [B*T, C_mask, H, W].
            num_frames: T >= 1 (frames of a clip are consecutive along the first dimension).
            text_embeddings: [K, S, D] class-name embeddings of the active vocabulary.
            query_content: [B, P, C] location-query content (``encode_box_prompts``); replaces the
                learned queries together with ``query_pos`` [B, P, C].
            self_attn_mask: bool [B*heads, Q, Q] (True = blocked) for every self-attention, e.g.
                ``identity_self_attn_mask``.
            return_aux_outputs: compute the intermediate predictions (deep supervision);
                default: in training only. Without them each layer only gets the attention
                mask it needs, computed at the attended level's resolution.
            memory: the image side from :meth:`prepare_memory`; when given,
                ``multi_scale_features``, ``mask_features`` and ``num_frames`` are not read (may
                be None) and only the queries are decoded.
            independent_queries: every query sees only itself in self-attention (what
                ``identity_self_attn_mask`` expresses), computed without the attention kernel;
                ``self_attn_mask`` must then be None.

        Returns:
            dict with ``pred_logits`` [B, Q, K+1], ``pred_masks`` [B, Q, T, H, W],
            ``pred_objectness`` [B, Q, 1], ``query_embeds`` [B, Q, C] (final normalised queries)
            and ``aux_outputs``: ``dec_layers`` dicts of pred_logits / pred_masks /
            pred_objectness (the prediction before layer 1 and after layers 1..dec_layers-1),
            or an empty list without ``return_aux_outputs``.
        """
        if memory is None:
            memory = self.prepare_memory(multi_scale_features, mask_features, num_frames)
        if text_embeddings.dim() != 3:
            raise ValueError(
                f"text_embeddings must be [K, S, D], got {tuple(text_embeddings.shape)}"
            )
        src, pos = memory.src, memory.pos
        mask_features, level_mask_features = memory.mask_features, memory.level_mask_features
        b = mask_features.shape[0]

        if (query_content is None) != (query_pos is None):
            raise ValueError("query_content and query_pos must be given together")
        if query_content is None:
            output = self.query_feat.weight.unsqueeze(0).repeat(b, 1, 1)
            query_pos = self.query_embed.weight.unsqueeze(0).repeat(b, 1, 1)
        else:
            if query_content.shape != query_pos.shape or query_content.shape[0] != b:
                raise ValueError(
                    f"query_content {tuple(query_content.shape)} / query_pos "
                    f"{tuple(query_pos.shape)} must both be [B={b}, P, C]"
                )
            output = query_content
        q = output.shape[1]
        if independent_queries and self_attn_mask is not None:
            raise ValueError("independent_queries replaces self_attn_mask; pass one of them")
        if self_attn_mask is not None and tuple(self_attn_mask.shape) != (b * self.num_heads, q, q):
            raise ValueError(
                f"self_attn_mask must be [B*heads={b * self.num_heads}, {q}, {q}], "
                f"got {tuple(self_attn_mask.shape)}"
            )

        with_aux = self.training if return_aux_outputs is None else bool(return_aux_outputs)
        aux_outputs = []
        normed, mask_embed = self._query_heads(output)
        layers = zip(self.transformer_cross_attention_layers,
                     self.transformer_self_attention_layers, self.transformer_ffn_layers)
        for i, (cross_attn, self_attn, ffn) in enumerate(layers):
            if with_aux:
                aux_outputs.append(
                    self._prediction(normed, mask_embed, mask_features, text_embeddings)
                )
            lvl = i % self.num_feature_levels
            attn_mask = self._attn_mask(mask_embed, level_mask_features[lvl])
            output = cross_attn(
                output, src[lvl], attn_mask=attn_mask, pos=pos[lvl], query_pos=query_pos,
                key_value=None if memory.key_values is None else memory.key_values[i],
            )
            output = self_attn(output, attn_mask=self_attn_mask, query_pos=query_pos,
                               independent=independent_queries)
            output = ffn(output)
            normed, mask_embed = self._query_heads(output)

        out = self._prediction(normed, mask_embed, mask_features, text_embeddings)
        out["query_embeds"] = normed
        out["aux_outputs"] = aux_outputs
        return out
