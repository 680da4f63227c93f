"""OpenCLIP model factory: builds a full CLIP model (visual + text tower) and its tokenizer.

``pretrained`` (``MODEL.OMG.CLIP.PRETRAINED``) is one of

* ``""``: random initialisation (nothing is read or downloaded);
* a path to a local checkpoint file (``.pt`` / ``.pth`` / ``.bin`` / ``.safetensors``) holding the
  state dict of the FULL OpenCLIP model in OpenCLIP naming (``visual.*``, ``transformer.*``,
  ``token_embedding.*``, ...), raw or wrapped under ``"state_dict"`` / ``"model"``;
* an OpenCLIP pretrained tag (``open_clip.list_pretrained_tags_by_model(name)``), fetched by
  open_clip itself (this needs network access to the Hugging Face hub).

Importing this module registers two tiny OpenCLIP architectures that build in well under a second
on a CPU with no download, for tests and the synthetic demo:

* ``omg_tiny_convnext``: the ``convnext_large_d_320`` recipe (timm ConvNeXt trunk, no timm pooling,
  MLP projection) on timm's ``convnext_atto`` (stages 40/80/160/320), text width 64, D = 64;
* ``omg_tiny_rn``: OpenCLIP's ``ModifiedResNet`` with one bottleneck per stage and width 16
  (stages 64/128/256/512), attention pooling, text width 64, D = 64.
"""
import copy
import hashlib
import json
import logging
import os
import re
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

import open_clip
from open_clip import factory as _oc_factory
from open_clip import pretrained as _oc_pretrained

__all__ = [
    "TINY_CLIP_CONFIGS",
    "CHECKPOINT_SUFFIXES",
    "register_clip_config",
    "build_clip_model",
    "load_clip_state_dict",
    "load_clip_weights",
    "pretrained_label",
    "clip_model_key",
]

logger = logging.getLogger(__name__)

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")

_TINY_TEXT_CFG = {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}

TINY_CLIP_CONFIGS: Dict[str, Dict[str, Any]] = {
    "omg_tiny_convnext": {
        "embed_dim": 64,
        "vision_cfg": {
            "timm_model_name": "convnext_atto",
            "timm_model_pretrained": False,
            "timm_pool": "",
            "timm_proj": "mlp",
            "timm_drop": 0.0,
            "timm_drop_path": 0.0,
            "image_size": 64,
        },
        "text_cfg": dict(_TINY_TEXT_CFG),
    },
    "omg_tiny_rn": {
        "embed_dim": 64,
        "vision_cfg": {
            "image_size": 64,
            "layers": [1, 1, 1, 1],
            "width": 16,
            "head_width": 64,
            "patch_size": None,
        },
        "text_cfg": dict(_TINY_TEXT_CFG),
    },
}


def register_clip_config(name: str, model_cfg: Dict[str, Any]) -> None:
    """Add an architecture to OpenCLIP's model-config registry (idempotent).

    OpenCLIP's public ``add_model_config`` only takes JSON files or folders; this writes the same
    registry entry (``open_clip.factory._MODEL_CONFIGS``) directly, which ``create_model``,
    ``get_tokenizer`` and ``list_models`` read. A later ``add_model_config`` rescan keeps it.
    """
    if not all(k in model_cfg for k in ("embed_dim", "vision_cfg", "text_cfg")):
        raise ValueError(f"CLIP config '{name}' needs embed_dim, vision_cfg and text_cfg")
    _oc_factory._MODEL_CONFIGS[name] = copy.deepcopy(model_cfg)


def _register_tiny_configs() -> None:
    for name, cfg in TINY_CLIP_CONFIGS.items():
        if name not in _oc_factory._MODEL_CONFIGS:
            register_clip_config(name, cfg)


_register_tiny_configs()


# ---- pretrained argument -------------------------------------------------------------------------
def _looks_like_path(value: str) -> bool:
    return (
        "/" in value
        or os.sep in value
        or value.startswith(("~", "."))
        or value.lower().endswith(CHECKPOINT_SUFFIXES)
    )


def _resolve_local_file(pretrained: str) -> Optional[str]:
    """The local file ``pretrained`` names, None for a tag; FileNotFoundError for a missing path."""
    path = os.path.expanduser(pretrained)
    if os.path.isfile(path):
        return path
    if _looks_like_path(pretrained):
        if os.path.isdir(path):
            raise FileNotFoundError(
                f"MODEL.OMG.CLIP.PRETRAINED points to a folder, not a checkpoint file: '{path}'"
            )
        raise FileNotFoundError(
            f"CLIP checkpoint file not found: '{path}' (from MODEL.OMG.CLIP.PRETRAINED). Pass an "
            "existing local file, an OpenCLIP pretrained tag, or '' for random initialisation."
        )
    return None


def pretrained_label(pretrained: str) -> str:
    """A short human-readable name of the weights: 'random', the tag, or '<file name>-<bytes>'."""
    if not pretrained:
        return "random"
    path = _resolve_local_file(pretrained)
    if path is None:
        return pretrained
    return f"{os.path.basename(path)}-{os.path.getsize(path)}"


# ---- local checkpoints ---------------------------------------------------------------------------
def load_clip_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Read a CLIP state dict from ``path`` (raw, or wrapped under 'state_dict' / 'model').

    Raises FileNotFoundError for a missing file and RuntimeError (naming the path) for a file that
    cannot be read or holds no tensors.
    """
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"CLIP checkpoint file not found: '{path}'")
    try:
        if path.lower().endswith(".safetensors"):
            from safetensors.torch import load_file

            obj: Any = load_file(path, device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt / truncated / not a checkpoint / unsafe pickle
        raise RuntimeError(
            f"Could not read the CLIP checkpoint '{path}' ({type(e).__name__}: {e}). It must be a "
            "torch.save'd state dict (.pt/.pth/.bin, loadable with weights_only=True) or a "
            ".safetensors file of the full OpenCLIP model."
        ) from e

    if isinstance(obj, torch.jit.ScriptModule):
        obj = obj.state_dict()
    for _ in range(3):  # unwrap {"state_dict": {...}} / {"model": {...}} (possibly nested)
        if not isinstance(obj, dict):
            break
        inner = next((obj[k] for k in ("state_dict", "model") if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, dict):
        raise RuntimeError(f"CLIP checkpoint '{path}' holds a {type(obj).__name__}, not a state dict")
    state_dict = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not state_dict:
        raise RuntimeError(f"CLIP checkpoint '{path}' holds no tensors (keys: {list(obj)[:8]})")
    if all(k.startswith("module.") for k in state_dict):
        state_dict = {k[len("module."):]: v for k, v in state_dict.items()}
    return state_dict


def _format_keys(keys: List[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return f"{shown}, ... ({len(keys)} in all)" if len(keys) > limit else shown


def load_clip_weights(model: nn.Module, path: str) -> None:
    """Load the full-CLIP state dict in ``path`` into ``model``; every key must match."""
    from open_clip.model import convert_to_custom_text_state_dict, resize_pos_embed, resize_text_pos_embed

    state_dict = load_clip_state_dict(path)
    # The same compatibility fixes OpenCLIP applies to its own checkpoints.
    if "positional_embedding" in state_dict and not hasattr(model, "positional_embedding"):
        state_dict = convert_to_custom_text_state_dict(state_dict)
    for name in ("logit_scale", "logit_bias"):
        param = getattr(model, name, None)
        if name in state_dict and isinstance(param, torch.Tensor) and param.ndim != state_dict[name].ndim:
            state_dict[name] = state_dict[name].reshape(param.shape)
    state_dict.pop("text.transformer.embeddings.position_ids", None)
    try:
        resize_pos_embed(state_dict, model)
        resize_text_pos_embed(state_dict, model)
        incompatible = model.load_state_dict(state_dict, strict=False)
    except Exception as e:  # e.g. size mismatches
        raise RuntimeError(f"CLIP checkpoint '{path}' does not fit the model: {e}") from e
    missing = list(incompatible.missing_keys)
    unexpected = list(incompatible.unexpected_keys)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys: {_format_keys(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_format_keys(unexpected)}")
        raise RuntimeError(
            f"CLIP checkpoint '{path}' does not match the model ({'; '.join(parts)}). It must be the "
            "state dict of the full OpenCLIP model of MODEL.OMG.CLIP.MODEL_NAME, in OpenCLIP naming."
        )


# ---- model factory -------------------------------------------------------------------------------
class _drop_log_records(logging.Filter):
    """Context manager hiding root-logger records that start with ``prefix`` (OpenCLIP logs there)."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(self.prefix)

    def __enter__(self):
        logging.getLogger().addFilter(self)
        return self

    def __exit__(self, *exc):
        logging.getLogger().removeFilter(self)
        return False


RANDOM_INIT_SEED = 0


def build_clip_model(model_name: str, pretrained: str = "") -> Tuple[nn.Module, Any]:
    """Build the OpenCLIP model ``model_name`` and its tokenizer; see the module doc for ``pretrained``.

    Returns ``(model, tokenizer)``; the model is on the CPU, float32, in eval mode.
    """
    _register_tiny_configs()
    pretrained = (pretrained or "").strip()
    model_cfg = _oc_factory.get_model_config(model_name)
    if model_cfg is None:
        raise KeyError(
            f"Unknown OpenCLIP model '{model_name}' (MODEL.OMG.CLIP.MODEL_NAME); see "
            "open_clip.list_models() or the tiny configs " + ", ".join(TINY_CLIP_CONFIGS)
        )

    local_file = _resolve_local_file(pretrained) if pretrained else None
    if not pretrained or local_file is not None:
        if local_file is None:
            # "Random" weights are drawn from a fixed seed: the text tower is not saved in
            # checkpoints, so a rebuilt model must get the same class embeddings back.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(RANDOM_INIT_SEED)
                model = open_clip.create_model(model_name, pretrained=None)
        else:
            with _drop_log_records("No pretrained weights loaded"):  # we load them right after
                model = open_clip.create_model(model_name, pretrained=None)
            load_clip_weights(model, local_file)
            logger.info("Loaded CLIP weights of %s from %s", model_name, local_file)
    else:
        tag_cfg = _oc_pretrained.get_pretrained_cfg(model_name, pretrained)
        if not tag_cfg:
            tags = _oc_pretrained.list_pretrained_tags_by_model(model_name)
            raise RuntimeError(
                f"'{pretrained}' is neither an existing file nor an OpenCLIP pretrained tag of model "
                f"'{model_name}' (known tags: {tags or 'none'}). Set MODEL.OMG.CLIP.PRETRAINED to a "
                "local checkpoint file path, a known tag, or '' for random initialisation."
            )
        # e.g. OpenAI RN50 weights were trained with QuickGELU in the text tower.
        quick_gelu = bool(tag_cfg.get("quick_gelu", False)) and not model_cfg.get("quick_gelu", False)
        try:
            model = open_clip.create_model(model_name, pretrained=pretrained, force_quick_gelu=quick_gelu)
        except Exception as e:
            raise RuntimeError(
                f"Could not load the OpenCLIP weights of model '{model_name}' with pretrained tag "
                f"'{pretrained}' ({type(e).__name__}: {e}). Without network access, download the "
                "checkpoint (open_clip_pytorch_model.bin / open_clip_model.safetensors) elsewhere and "
                "pass its local file path in MODEL.OMG.CLIP.PRETRAINED."
            ) from e
    model = model.float().eval()
    tokenizer = open_clip.get_tokenizer(model_name)
    return model, tokenizer


# ---- cache key -----------------------------------------------------------------------------------
def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


@torch.no_grad()
def _text_weights_fingerprint(model: nn.Module) -> bytes:
    """A cheap digest of every non-visual tensor (first values + sum), device independent."""
    h = hashlib.sha1()
    tensors = list(model.named_parameters()) + list(model.named_buffers())
    for name, t in sorted(tensors, key=lambda kv: kv[0]):
        if name.startswith("visual."):
            continue
        if t.is_meta:  # shape-only models (e.g. built under torch.device("meta"))
            h.update(f"{name}|{tuple(t.shape)};".encode())
            continue
        flat = t.detach().reshape(-1)
        head = flat[:16].double().cpu().tolist()
        total = float(flat.double().sum().cpu()) if flat.numel() else 0.0
        h.update(f"{name}|{tuple(t.shape)}|{head}|{total:.6e};".encode())
    acts = sorted({type(m).__name__ for n, m in model.named_modules()
                   if not n.startswith("visual") and "GELU" in type(m).__name__})
    h.update(json.dumps(acts).encode())
    return h.digest()


def clip_model_key(model_name: str, pretrained: str, model: nn.Module) -> str:
    """Filesystem-safe key naming model + weights (for caches of text embeddings).

    ``<model>__<weights label>__<8 hex>``; the hash covers the model name, the weights label, the
    architecture config and a fingerprint of the text-tower weights (so two random inits differ).
    """
    label = pretrained_label(pretrained)
    cfg = _oc_factory.get_model_config(model_name)
    h = hashlib.sha1()
    h.update(json.dumps([model_name, label, cfg], sort_keys=True, default=str).encode())
    h.update(_text_weights_fingerprint(model))
    return f"{_safe(model_name)}__{_safe(label)}__{h.hexdigest()[:8]}"
