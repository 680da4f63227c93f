"""Building blocks of the OMG-Seg mask decoder.

Each block is defined once and used by every decoder layer (image and video share them):
``CrossAttentionLayer`` (masked attention from queries to pixel memory), ``SelfAttentionLayer``
(attention among queries), ``FFNLayer`` and the plain ``MLP`` used by the prediction heads.
The attention blocks hold an ``nn.MultiheadAttention`` (its parameters, ``batch_first``) and run
it through ``multi_head_attention``.

Shape shorthand: B = batch (clips), Q = queries, L = memory tokens (T * h * w), C = width,
heads = attention heads. Boolean attention masks use PyTorch's convention: True = blocked.
"""
import contextlib
from typing import NamedTuple, Optional

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from ...layers.direct_call import call_layer

__all__ = [
    "CrossAttentionLayer",
    "SelfAttentionLayer",
    "FFNLayer",
    "MLP",
    "KeyValue",
    "multi_head_attention",
    "project_key_value",
    "uses_math_attention",
]

# Largest [B, heads, Q, L] score tensor for which CUDA attention takes the math path, 2^24 scores
# (64 MiB in fp32): see ``uses_math_attention``.
MATH_ATTENTION_MAX_SCORES = 1 << 24


class KeyValue(NamedTuple):
    """Projected keys and values of one attention layer, [B, heads, L, C / heads] each."""

    key: Tensor
    value: Tensor


def _split_heads(x: Tensor, heads: int) -> Tensor:
    """[B, n, C] -> [B, heads, n, C / heads]."""
    b, n, c = x.shape
    return x.view(b, n, heads, c // heads).transpose(1, 2)


class _AttentionParams(NamedTuple):
    in_weight: Tensor  # [3C, C]: q, k, v rows
    in_bias: Optional[Tensor]  # [3C]
    out_weight: Tensor  # [C, C]
    out_bias: Optional[Tensor]  # [C]


def _attention_params(attn: nn.MultiheadAttention) -> _AttentionParams:
    """The projection parameters of ``attn``, read from ``_parameters`` as ``call_layer`` does
    (each ``Module.__getattr__`` fallback costs about 0.5 us; a re-prompt reads these a dozen
    times)."""
    params, out_params = attn._parameters, attn._modules["out_proj"]._parameters
    return _AttentionParams(params["in_proj_weight"], params["in_proj_bias"],
                            out_params["weight"], out_params["bias"])


def _in_projection(params: _AttentionParams, x: Tensor, index: int) -> Tensor:
    """``x`` [..., C] through the ``index``-th (0 = q, 1 = k, 2 = v) input projection."""
    c = x.shape[-1]
    rows = slice(index * c, (index + 1) * c)
    bias = None if params.in_bias is None else params.in_bias[rows]
    return F.linear(x, params.in_weight[rows], bias)


def project_key_value(attn: nn.MultiheadAttention, key: Tensor, value: Tensor) -> KeyValue:
    """The key and value projections of ``attn`` on ``key`` / ``value`` [B, L, C], split into
    heads: ([B, heads, L, C / heads], same). Memory tokens are fixed while queries change, so
    these can be computed once per image and reused by every query set."""
    return _key_value(_attention_params(attn), key, value, attn.num_heads)


def _key_value(params: _AttentionParams, key: Tensor, value: Tensor, heads: int) -> KeyValue:
    k = _split_heads(_in_projection(params, key, 1), heads)
    return KeyValue(k, _split_heads(_in_projection(params, value, 2), heads))


def multi_head_attention(
    attn: nn.MultiheadAttention,
    query: Tensor,
    key: Optional[Tensor],
    value: Optional[Tensor],
    blocked: Optional[Tensor],
    key_value: Optional[KeyValue] = None,
) -> Tensor:
    """``attn(query, key, value, attn_mask=blocked)[0]`` (batch first) with a mask that may be
    shared by the heads.

    ``nn.MultiheadAttention`` wants a mask repeated per head ([B*heads, Q, L]) and turns it into
    a float mask of that size; here a [B, 1, Q, L] mask is broadcast over the heads by
    ``F.scaled_dot_product_attention`` (the kernel MultiheadAttention calls as well).

    Args:
        attn: the module whose projections (``in_proj_weight``/``in_proj_bias``, ``out_proj``),
            head count and dropout are used.
        query: [B, Q, C]; key, value: [B, L, C].
        blocked: bool (True = blocked) [B*heads, Q, L], [B, heads, Q, L], [B, 1, Q, L] or None.
        key_value: ``project_key_value(attn, key, value)`` computed beforehand (``key`` and
            ``value`` are then not read).

    Returns:
        [B, Q, C].
    """
    b, q_len, c = query.shape
    heads = attn.num_heads
    params = _attention_params(attn)
    if key_value is None:
        key_value = _key_value(params, key, value, heads)
    q = _split_heads(_in_projection(params, query, 0), heads)

    mask = None
    if blocked is not None:
        if blocked.dim() == 3:
            blocked = blocked.view(b, heads, q_len, blocked.shape[-1])
        mask = ~blocked  # scaled_dot_product_attention's bool masks mark what takes part
    with _attention_backend(q, key_value.key.shape[-2]):
        out = F.scaled_dot_product_attention(
            q,
            key_value.key,
            key_value.value,
            attn_mask=mask,
            dropout_p=attn.dropout if attn.training else 0.0,
        )
    # the projection's parameters, not the module: as nn.MultiheadAttention does
    return F.linear(out.transpose(1, 2).reshape(b, q_len, c), params.out_weight, params.out_bias)


def uses_math_attention(device_type: str, num_scores: int) -> bool:
    """Whether attention with ``num_scores`` = B * heads * Q * L scores on ``device_type`` runs
    through PyTorch's math path (two batched products and a softmax) instead of the default
    kernel.

    On CUDA the default kernel for a masked attention (memory-efficient attention) spreads its
    work over query blocks and heads only, so a handful of queries against a long memory leaves
    the GPU idle. Measured on an H200 (fp32, 8 heads, bool mask): 1 query x 13600 keys 1.38 ms
    against 0.13 ms through the math path, 100 queries 1.52 against 0.74 ms, 300 queries 1.59
    against 1.06 ms. The math path keeps the scores (for backward too), so it is taken only up to
    ``MATH_ATTENTION_MAX_SCORES``: re-prompts and prompt training, the coarser levels of a
    300-query forward, not its finest level nor a training batch of clips. CPU kernels are not
    affected.
    """
    return device_type == "cuda" and num_scores <= MATH_ATTENTION_MAX_SCORES


def _attention_backend(q: Tensor, num_keys: int):
    """``sdpa_kernel(MATH)`` where :func:`uses_math_attention` says so, else a no-op context."""
    b, heads, q_len, _ = q.shape
    if uses_math_attention(q.device.type, b * heads * q_len * num_keys):
        return sdpa_kernel(SDPBackend.MATH)
    return contextlib.nullcontext()


def _with_pos(x: Tensor, pos: Optional[Tensor]) -> Tensor:
    return x if pos is None else x + pos


def _dropout(dropout: nn.Dropout, x: Tensor) -> Tensor:
    """``dropout(x)``, skipped where it is the identity (eval mode or p = 0): the module call
    alone is a visible share of a re-prompt, which runs a dozen of them on a handful of queries."""
    return dropout(x) if dropout.training and dropout.p > 0 else x


def _xavier_init(module: nn.Module) -> None:
    for p in module.parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)


class _AttentionLayer(nn.Module):
    """Residual multi-head attention + LayerNorm, post-norm (default) or pre-norm.

    Post-norm: ``x = norm(x + drop(attn(x + x_pos, kv + kv_pos, kv)))``.
    Pre-norm:  ``x = x + drop(attn(norm(x) + x_pos, kv + kv_pos, kv))`` (for self-attention the
    normalised ``x`` is also the key/value).
    """

    def __init__(
        self, d_model: int, nhead: int, dropout: float = 0.0, normalize_before: bool = False
    ):
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.normalize_before = normalize_before
        _xavier_init(self)

    def _attend(
        self,
        query: Tensor,
        memory: Optional[Tensor],
        attn_mask: Optional[Tensor],
        pos: Optional[Tensor],
        query_pos: Optional[Tensor],
        key_value: Optional[KeyValue] = None,
    ) -> Tensor:
        """``query`` [B, Q, C]; ``memory`` [B, L, C] or None (self-attention); mask as in
        ``multi_head_attention``; ``key_value``: the memory's projections, precomputed."""
        q_in = call_layer(self.norm, query) if self.normalize_before else query
        if key_value is not None:
            out = multi_head_attention(
                self.attn, _with_pos(q_in, query_pos), None, None, attn_mask, key_value
            )
        else:
            kv = q_in if memory is None else memory
            k_pos = query_pos if memory is None else pos
            out = multi_head_attention(
                self.attn, _with_pos(q_in, query_pos), _with_pos(kv, k_pos), kv, attn_mask
            )
        query = query + _dropout(self.dropout, out)
        return query if self.normalize_before else call_layer(self.norm, query)


class SelfAttentionLayer(_AttentionLayer):
    """Self-attention among queries: [B, Q, C] -> [B, Q, C]."""

    def forward(
        self,
        tgt: Tensor,
        attn_mask: Optional[Tensor] = None,
        query_pos: Optional[Tensor] = None,
        independent: bool = False,
    ) -> Tensor:
        """
        Args:
            tgt: queries [B, Q, C].
            attn_mask: bool [B*heads, Q, Q] or [B, 1 | heads, Q, Q] (True = blocked) or None.
            query_pos: positional embedding of the queries [B, Q, C], added to q and k.
            independent: every query attends only to itself (the identity mask of location
                queries). The softmax over one key is 1, so the attention output is the query's
                own value projection: computed as ``out_proj(v_proj(x))`` without the query /
                key projections and the attention kernel (same values and gradients).
        """
        if not independent:
            return self._attend(tgt, None, attn_mask, None, query_pos)
        if attn_mask is not None:
            raise ValueError("independent self-attention takes no attn_mask")
        x = call_layer(self.norm, tgt) if self.normalize_before else tgt
        params = _attention_params(self.attn)
        out = F.linear(_in_projection(params, x, 2), params.out_weight, params.out_bias)
        tgt = tgt + _dropout(self.dropout, out)
        return tgt if self.normalize_before else call_layer(self.norm, tgt)


class CrossAttentionLayer(_AttentionLayer):
    """Masked cross-attention from queries to memory: ([B, Q, C], [B, L, C]) -> [B, Q, C]."""

    def memory_key_value(self, memory: Tensor, pos: Optional[Tensor] = None) -> KeyValue:
        """The projections of ``memory`` [B, L, C] (keys with ``pos`` added) that
        :meth:`forward` attends to; pass them as ``key_value`` to skip recomputing them."""
        return project_key_value(self.attn, _with_pos(memory, pos), memory)

    def forward(
        self,
        tgt: Tensor,
        memory: Optional[Tensor],
        attn_mask: Optional[Tensor] = None,
        pos: Optional[Tensor] = None,
        query_pos: Optional[Tensor] = None,
        key_value: Optional[KeyValue] = None,
    ) -> Tensor:
        """
        Args:
            tgt: queries [B, Q, C].
            memory: pixel tokens [B, L, C] (values; keys get ``pos`` added); not read when
                ``key_value`` is given.
            attn_mask: bool [B*heads, Q, L] or [B, 1 | heads, Q, L] (True = blocked) or None.
            pos: positional embedding of the memory [B, L, C].
            query_pos: positional embedding of the queries [B, Q, C].
            key_value: :meth:`memory_key_value` of ``memory`` and ``pos``, computed beforehand.
        """
        if memory is None and key_value is None:
            raise ValueError("cross-attention needs memory or its key_value")
        return self._attend(tgt, memory, attn_mask, pos, query_pos, key_value)


class FFNLayer(nn.Module):
    """Residual two-layer ReLU feed-forward block + LayerNorm: [..., C] -> [..., C]."""

    def __init__(
        self,
        d_model: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.0,
        normalize_before: bool = False,
    ):
        super().__init__()
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.normalize_before = normalize_before
        _xavier_init(self)

    def forward(self, tgt: Tensor) -> Tensor:
        norm, dropout = self.norm, self.dropout
        x = call_layer(norm, tgt) if self.normalize_before else tgt
        x = call_layer(self.linear2, _dropout(dropout, F.relu(call_layer(self.linear1, x))))
        tgt = tgt + _dropout(dropout, x)
        return tgt if self.normalize_before else call_layer(norm, tgt)


class MLP(nn.Module):
    """``num_layers`` Linear layers with ReLU between them: [..., in_dim] -> [..., out_dim]."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"MLP needs at least one layer, got {num_layers}")
        dims_in = [input_dim] + [hidden_dim] * (num_layers - 1)
        dims_out = [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims_in, dims_out))

    def forward(self, x: Tensor) -> Tensor:
        layers = self.layers
        last = len(layers) - 1
        for i, layer in enumerate(layers):
            x = call_layer(layer, x)
            if i < last:
                x = F.relu(x)
        return x
