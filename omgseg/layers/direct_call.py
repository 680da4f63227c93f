"""Calling small standard layers without the ``nn.Module.__call__`` machinery.

The query side of the mask decoder runs about fifty ``nn.Linear`` / ``nn.LayerNorm`` layers on a
handful of queries per re-prompt. There the module call (hook checks, ``forward`` dispatch, the
``Module.__getattr__`` fallback for every parameter) costs nearly as much as the product itself:
measured on the 2-core CPU for a 64 -> 64 ``nn.Linear`` on one query, 4.0 us per module call,
2.3 us through :func:`call_layer`, 2.1 us for ``F.linear`` alone. PyTorch's own
``nn.MultiheadAttention`` (its ``out_proj``) and ``nn.TransformerEncoderLayer`` (eval fast path)
compute with their sub-layers' parameters the same way.

:func:`call_layer` does so only for a plain ``nn.Linear`` / ``nn.LayerNorm`` / ``nn.Embedding``
(or an ``nn.Sequential`` of them) with no hooks of its own; anything else (a LoRA adapter or
quantized layer put in its place, a module with forward or backward hooks) is called as a
module, so its behaviour is kept. Global hooks (``register_module_forward_hook``) do not see
these layers.
"""
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["call_layer"]


def _hooked(module: nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
                or module._backward_pre_hooks)


def call_layer(module: nn.Module, x: Tensor) -> Tensor:
    """``module(x)``, computed with ``F.linear`` / ``F.layer_norm`` / ``F.embedding`` for a
    plain, hook-free ``nn.Linear`` / ``nn.LayerNorm`` / ``nn.Embedding`` / ``nn.Sequential`` of
    them (same values and gradients); any other module is called."""
    kind = type(module)
    # parameters read from ``_parameters``: ``module.weight`` goes through the slow
    # ``Module.__getattr__`` fallback, a third of the cost of a small product
    if kind is nn.Linear and not _hooked(module):
        params = module._parameters
        return F.linear(x, params["weight"], params["bias"])
    if kind is nn.LayerNorm and not _hooked(module):
        params = module._parameters
        return F.layer_norm(x, module.normalized_shape, params["weight"], params["bias"],
                            module.eps)
    if kind is nn.Embedding and not _hooked(module):
        return F.embedding(x, module._parameters["weight"], module.padding_idx, module.max_norm,
                           module.norm_type, module.scale_grad_by_freq, module.sparse)
    if kind is nn.Sequential and not _hooked(module):
        for layer in module:
            x = call_layer(layer, x)
        return x
    return module(x)
