"""OpenCLIP model factory: builds a full CLIP model (visual + text tower) and its tokenizer.

``pretrained`` (``MODEL.OMG.CLIP.PRETRAINED``) is one of

* ``""``: random initialisation (nothing is read or downloaded);
* a path to a local checkpoint file (``.pt`` / ``.pth`` / ``.bin`` / ``.safetensors``) holding the
  state dict of the FULL OpenCLIP model in OpenCLIP naming (``visual.*``, ``transformer.*``,
  ``token_embedding.*``, ...), raw or wrapped under ``"state_dict"`` (read by
  ``open_clip.load_checkpoint``);
* an OpenCLIP pretrained tag (``open_clip.list_pretrained_tags_by_model(name)``), fetched by
  open_clip itself (this needs network access to the Hugging Face hub).

Importing this module registers (``open_clip.add_model_config``) the architectures in
``model_configs/``: two tiny ones that build in well under a second on a CPU with no download, for
tests and the synthetic demo:

* ``omg_tiny_convnext``: the ``convnext_large_d_320`` recipe (timm ConvNeXt trunk, no timm pooling,
  MLP projection) on timm's ``convnext_atto`` (stages 40/80/160/320), text width 64, D = 64;
* ``omg_tiny_rn``: OpenCLIP's ``ModifiedResNet`` with one bottleneck per stage and width 16
  (stages 64/128/256/512), attention pooling, text width 64, D = 64.
"""
import hashlib
import json
import logging
import os
import re
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

import open_clip

__all__ = [
    "TINY_CLIP_CONFIGS",
    "CHECKPOINT_SUFFIXES",
    "build_clip_model",
    "load_clip_weights",
    "pretrained_label",
    "clip_model_key",
]

logger = logging.getLogger(__name__)

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")

# OpenCLIP model configs shipped with the package (one JSON file per architecture, the format of
# open_clip's own model_configs/), registered with open_clip.add_model_config at import.
MODEL_CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "model_configs")


def _read_configs(folder: str) -> Dict[str, Dict[str, Any]]:
    out = {}
    for file_name in sorted(os.listdir(folder)):
        if file_name.endswith(".json"):
            with open(os.path.join(folder, file_name)) as f:
                out[file_name[: -len(".json")]] = json.load(f)
    return out


TINY_CLIP_CONFIGS: Dict[str, Dict[str, Any]] = _read_configs(MODEL_CONFIG_DIR)


def _register_tiny_configs() -> None:
    if not set(TINY_CLIP_CONFIGS) <= set(open_clip.list_models()):
        open_clip.add_model_config(MODEL_CONFIG_DIR)


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
def _format_keys(keys: List[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return f"{shown}, ... ({len(keys)} in all)" if len(keys) > limit else shown


def load_clip_weights(model: nn.Module, path: str) -> None:
    """Load the full-CLIP checkpoint ``path`` into ``model`` with ``open_clip.load_checkpoint``
    (raw state dict or under ``"state_dict"``, ``module.`` prefixes, .safetensors, OpenCLIP's
    compatibility fixes); every key must match. Errors name the file."""
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"CLIP checkpoint file not found: '{path}'")
    try:
        incompatible = open_clip.load_checkpoint(model, path, strict=False)
    except Exception as e:  # corrupt / truncated / not a checkpoint / size mismatch
        raise RuntimeError(
            f"Could not load the CLIP checkpoint '{path}' ({type(e).__name__}: {e}). It must be "
            "the state dict of the full OpenCLIP model of MODEL.OMG.CLIP.MODEL_NAME (a "
            "torch.save'd .pt/.pth/.bin loadable with weights_only=True, or .safetensors)."
        ) from e
    missing = list(incompatible.missing_keys)
    unexpected = list(incompatible.unexpected_keys)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys: {_format_keys(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_format_keys(unexpected)}")
        raise RuntimeError(
            f"CLIP checkpoint '{path}' does not match the model ({'; '.join(parts)}). It must be "
            "the state dict of the full OpenCLIP model of MODEL.OMG.CLIP.MODEL_NAME, in OpenCLIP "
            "naming."
        )


# ---- model factory -------------------------------------------------------------------------------
class _drop_log_records(logging.Filter):
    """Context manager hiding root-logger records starting with ``prefix`` (OpenCLIP logs there)."""

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
    """Build the OpenCLIP model ``model_name`` and its tokenizer (``pretrained``: module doc).

    Returns ``(model, tokenizer)``; the model is on the CPU, float32, in eval mode.
    """
    _register_tiny_configs()
    pretrained = (pretrained or "").strip()
    model_cfg = open_clip.get_model_config(model_name)
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
            # OpenCLIP warns "No pretrained weights loaded" at root level; here that is the
            # request (a tiny model, or weights that MODEL.WEIGHTS loads next): say it at info.
            with torch.random.fork_rng(devices=[]), _drop_log_records("No pretrained weights"):
                torch.manual_seed(RANDOM_INIT_SEED)
                model = open_clip.create_model(model_name, pretrained=None)
            logger.info("CLIP %s: random initialisation (MODEL.OMG.CLIP.PRETRAINED is empty)",
                        model_name)
        else:
            with _drop_log_records("No pretrained weights loaded"):  # we load them right after
                model = open_clip.create_model(model_name, pretrained=None)
            load_clip_weights(model, local_file)
            logger.info("Loaded CLIP weights of %s from %s", model_name, local_file)
    else:
        tag_cfg = open_clip.get_pretrained_cfg(model_name, pretrained)
        if not tag_cfg:
            tags = open_clip.list_pretrained_tags_by_model(model_name)
            raise RuntimeError(
                f"'{pretrained}' is neither an existing file nor an OpenCLIP pretrained tag of "
                f"model '{model_name}' (known tags: {tags or 'none'}). Set "
                "MODEL.OMG.CLIP.PRETRAINED to a local checkpoint file path, a known tag, or '' for "
                "random initialisation."
            )
        # e.g. OpenAI RN50 weights were trained with QuickGELU in the text tower.
        quick_gelu = bool(tag_cfg.get("quick_gelu", False)) and not model_cfg.get(
            "quick_gelu", False
        )
        try:
            model = open_clip.create_model(
                model_name, pretrained=pretrained, force_quick_gelu=quick_gelu
            )
        except Exception as e:
            raise RuntimeError(
                f"Could not load the OpenCLIP weights of model '{model_name}' with pretrained tag "
                f"'{pretrained}' ({type(e).__name__}: {e}). Without network access, download the "
                "checkpoint (open_clip_pytorch_model.bin / open_clip_model.safetensors) elsewhere "
                "and pass its local file path in MODEL.OMG.CLIP.PRETRAINED."
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
    cfg = open_clip.get_model_config(model_name)
    h = hashlib.sha1()
    h.update(json.dumps([model_name, label, cfg], sort_keys=True, default=str).encode())
    h.update(_text_weights_fingerprint(model))
    return f"{_safe(model_name)}__{_safe(label)}__{h.hexdigest()[:8]}"
