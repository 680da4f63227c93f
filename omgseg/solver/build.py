"""Optimizer with OMG-Seg's parameter groups and full-model gradient clipping."""
import itertools
from typing import Any, Dict, List, Set, Type

import torch

from detectron2.layers import FrozenBatchNorm2d
from detectron2.layers.batch_norm import LayerNorm as D2LayerNorm
from detectron2.solver import build_lr_scheduler as _d2_build_lr_scheduler
from detectron2.solver.build import maybe_add_gradient_clipping, reduce_param_groups

__all__ = [
    "NORM_MODULE_TYPES",
    "EMBEDDING_NAME_KEYS",
    "build_optimizer",
    "build_lr_scheduler",
    "get_param_groups",
    "add_full_model_gradient_clipping",
]

NORM_MODULE_TYPES = tuple(
    t
    for t in (
        torch.nn.BatchNorm1d,
        torch.nn.BatchNorm2d,
        torch.nn.BatchNorm3d,
        torch.nn.SyncBatchNorm,
        torch.nn.GroupNorm,
        torch.nn.InstanceNorm1d,
        torch.nn.InstanceNorm2d,
        torch.nn.InstanceNorm3d,
        torch.nn.LayerNorm,
        torch.nn.LocalResponseNorm,
        getattr(torch.nn, "RMSNorm", None),
        FrozenBatchNorm2d,
        D2LayerNorm,
    )
    if t is not None
)

# Parameters whose (full) name contains one of these get WEIGHT_DECAY_EMBED.
EMBEDDING_NAME_KEYS = (
    "relative_position_bias_table",
    "absolute_pos_embed",
    "query_feat",
    "query_embed",
    "level_embed",
    "pb_embedding",
    "mask_tokens",
)


def get_param_groups(
    model: torch.nn.Module,
    base_lr: float,
    weight_decay: float,
    weight_decay_norm: float,
    weight_decay_embed: float,
    backbone_multiplier: float,
) -> List[Dict[str, Any]]:
    """One group per distinct (lr, weight_decay), each trainable parameter exactly once; every
    group also lists its ``param_names``.

    lr: ``base_lr``, times ``backbone_multiplier`` for parameters under ``backbone.``.
    weight decay: ``weight_decay_norm`` for normalisation layers, ``weight_decay_embed`` for
    ``nn.Embedding`` and parameters named like an embedding (EMBEDDING_NAME_KEYS),
    ``weight_decay`` otherwise. Frozen parameters are left out.
    """
    seen: Set[int] = set()
    params: List[Dict[str, Any]] = []
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            full_name = f"{module_name}.{param_name}" if module_name else param_name
            # DistributedDataParallel / other wrappers prefix "module.".
            while full_name.startswith("module."):
                full_name = full_name[len("module."):]

            lr = base_lr
            if full_name.startswith("backbone."):
                lr = base_lr * backbone_multiplier
            if isinstance(module, NORM_MODULE_TYPES):
                wd = weight_decay_norm
            elif isinstance(module, torch.nn.Embedding) or any(
                key in full_name for key in EMBEDDING_NAME_KEYS
            ):
                wd = weight_decay_embed
            else:
                wd = weight_decay
            params.append(
                {"params": [param], "param_names": [full_name], "lr": lr, "weight_decay": wd}
            )
    return reduce_param_groups(params)


def add_full_model_gradient_clipping(
    optim_cls: Type[torch.optim.Optimizer], clip_value: float, norm_type: float = 2.0
) -> Type[torch.optim.Optimizer]:
    """Subclass of ``optim_cls`` whose ``step()`` first clips the norm of all gradients of all
    parameter groups together to ``clip_value``."""

    class FullModelGradientClippingOptimizer(optim_cls):
        def step(self, closure=None):
            all_params = itertools.chain(*[group["params"] for group in self.param_groups])
            torch.nn.utils.clip_grad_norm_(all_params, clip_value, norm_type=norm_type)
            return super().step(closure=closure)

    FullModelGradientClippingOptimizer.__name__ = f"FullModelGradientClipping{optim_cls.__name__}"
    FullModelGradientClippingOptimizer.__qualname__ = FullModelGradientClippingOptimizer.__name__
    return FullModelGradientClippingOptimizer


def _with_clipping(cfg, optim_cls):
    clip = cfg.SOLVER.CLIP_GRADIENTS
    if clip.ENABLED and clip.CLIP_TYPE == "full_model":
        return add_full_model_gradient_clipping(optim_cls, clip.CLIP_VALUE, clip.NORM_TYPE)
    # "value" / "norm" (per parameter) or disabled: Detectron2's implementation.
    return maybe_add_gradient_clipping(cfg, optim_cls)


def build_optimizer(cfg, model: torch.nn.Module) -> torch.optim.Optimizer:
    """AdamW (SOLVER.OPTIMIZER "ADAMW") or SGD over OMG-Seg's parameter groups."""
    s = cfg.SOLVER
    groups = get_param_groups(
        model,
        base_lr=s.BASE_LR,
        weight_decay=s.WEIGHT_DECAY,
        weight_decay_norm=s.WEIGHT_DECAY_NORM,
        weight_decay_embed=s.WEIGHT_DECAY_EMBED,
        backbone_multiplier=s.BACKBONE_MULTIPLIER,
    )
    if not groups:
        raise ValueError("build_optimizer: the model has no trainable parameter")
    name = str(s.OPTIMIZER).upper()
    if name == "ADAMW":
        return _with_clipping(cfg, torch.optim.AdamW)(groups, lr=s.BASE_LR)
    if name == "SGD":
        return _with_clipping(cfg, torch.optim.SGD)(
            groups, lr=s.BASE_LR, momentum=s.MOMENTUM, nesterov=s.NESTEROV
        )
    raise ValueError(f"Unknown SOLVER.OPTIMIZER {s.OPTIMIZER!r}; expected 'ADAMW' or 'SGD'")


def build_lr_scheduler(cfg, optimizer: torch.optim.Optimizer):
    """Detectron2's scheduler (SOLVER.LR_SCHEDULER_NAME, warmup, steps)."""
    return _d2_build_lr_scheduler(cfg, optimizer)
