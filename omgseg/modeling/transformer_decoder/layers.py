"""Building blocks of the OMG-Seg mask decoder.

Each block is defined once and used by every decoder layer (image and video share them):
``CrossAttentionLayer`` (masked attention from queries to pixel memory), ``SelfAttentionLayer``
(attention among queries), ``FFNLayer`` and the plain ``MLP`` used by the prediction heads.
The attention blocks wrap ``nn.MultiheadAttention`` with ``batch_first=True``.

Shape shorthand: B = batch (clips), Q = queries, L = memory tokens (T * h * w), C = width,
heads = attention heads. Boolean attention masks use PyTorch's convention: True = blocked.
"""
from typing import Optional

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CrossAttentionLayer", "SelfAttentionLayer", "FFNLayer", "MLP"]


def _with_pos(x: Tensor, pos: Optional[Tensor]) -> Tensor:
    return x if pos is None else x + pos


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

    def __init__(self, d_model: int, nhead: int, dropout: float = 0.0, normalize_before: bool = False):
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
    ) -> Tensor:
        """``query`` [B, Q, C]; ``memory`` [B, L, C] or None (self-attention); mask [B*heads, Q, L]."""
        q_in = self.norm(query) if self.normalize_before else query
        kv = q_in if memory is None else memory
        k_pos = query_pos if memory is None else pos
        out = self.attn(
            query=_with_pos(q_in, query_pos),
            key=_with_pos(kv, k_pos),
            value=kv,
            attn_mask=attn_mask,
            need_weights=False,
        )[0]
        query = query + self.dropout(out)
        return query if self.normalize_before else self.norm(query)


class SelfAttentionLayer(_AttentionLayer):
    """Self-attention among queries: [B, Q, C] -> [B, Q, C]."""

    def forward(
        self,
        tgt: Tensor,
        attn_mask: Optional[Tensor] = None,
        query_pos: Optional[Tensor] = None,
    ) -> Tensor:
        """
        Args:
            tgt: queries [B, Q, C].
            attn_mask: bool [B*heads, Q, Q] (True = blocked) or None.
            query_pos: positional embedding of the queries [B, Q, C], added to q and k.
        """
        return self._attend(tgt, None, attn_mask, None, query_pos)


class CrossAttentionLayer(_AttentionLayer):
    """Masked cross-attention from queries to memory: ([B, Q, C], [B, L, C]) -> [B, Q, C]."""

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        attn_mask: Optional[Tensor] = None,
        pos: Optional[Tensor] = None,
        query_pos: Optional[Tensor] = None,
    ) -> Tensor:
        """
        Args:
            tgt: queries [B, Q, C].
            memory: pixel tokens [B, L, C] (values; keys get ``pos`` added).
            attn_mask: bool [B*heads, Q, L] (True = blocked) or None.
            pos: positional embedding of the memory [B, L, C].
            query_pos: positional embedding of the queries [B, Q, C].
        """
        return self._attend(tgt, memory, attn_mask, pos, query_pos)


class FFNLayer(nn.Module):
    """Residual two-layer ReLU feed-forward block + LayerNorm: [..., C] -> [..., C]."""

    def __init__(
        self, d_model: int, dim_feedforward: int = 2048, dropout: float = 0.0, normalize_before: bool = False
    ):
        super().__init__()
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.normalize_before = normalize_before
        _xavier_init(self)

    def forward(self, tgt: Tensor) -> Tensor:
        x = self.norm(tgt) if self.normalize_before else tgt
        x = self.linear2(self.dropout(F.relu(self.linear1(x))))
        tgt = tgt + self.dropout(x)
        return tgt if self.normalize_before else self.norm(tgt)


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
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = F.relu(x)
        return x
