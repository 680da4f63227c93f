"""CLIP text-embedding bank: ViLD prompt ensembles per class synonym, cached on disk.

For a vocabulary of K class names, each name is split into synonyms, every synonym is put into the
14 ViLD templates, the prompts are encoded by the CLIP text tower and L2-normalised, averaged over
the templates and normalised again. The result is ``[K, S, D]`` with S the largest synonym count;
shorter synonym lists are padded by repeating their first synonym (so a max over synonyms is
unaffected by the padding).
"""
import hashlib
import json
import logging
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch.nn import functional as F

from ...utils.file_io import atomic_output

__all__ = [
    "VILD_TEMPLATES",
    "split_synonyms",
    "get_text_embeddings",
    "class_names_from_metadata",
    "clear_text_embedding_memo",
    "text_cache_path",
]

logger = logging.getLogger(__name__)

# The 14 ViLD prompt templates (as used by FC-CLIP and OMG-Seg).
VILD_TEMPLATES: Tuple[str, ...] = (
    "a photo of a {}.",
    "This is a photo of a {}",
    "There is a {} in the scene",
    "There is the {} in the scene",
    "a photo of a {} in the scene",
    "a photo of a small {}.",
    "a photo of a medium {}.",
    "a photo of a large {}.",
    "This is a photo of a small {}.",
    "This is a photo of a medium {}.",
    "This is a photo of a large {}.",
    "There is a small {} in the scene.",
    "There is a medium {} in the scene.",
    "There is a large {} in the scene.",
)

_CACHE_VERSION = 1
# (expanded cache dir, model_key, vocabulary digest) -> [K, S, D] float32 on the CPU
_MEMO: Dict[Tuple[str, str, str], torch.Tensor] = {}


def split_synonyms(name: str) -> List[str]:
    """Split a class-name string into its synonyms.

    Commas separate synonyms (``"person, people"``); ``"_or_"`` and ``"/"`` are separators too;
    ``"_"`` becomes a space; each synonym is lower-cased with its whitespace collapsed; empty and
    repeated synonyms are dropped, keeping the first-seen order.
    """
    text = str(name).replace("_or_", ",").replace("/", ",").replace("_", " ").lower()
    out: List[str] = []
    for part in text.split(","):
        syn = " ".join(part.split())
        if syn and syn not in out:
            out.append(syn)
    if not out:
        raise ValueError(f"Class name {name!r} holds no synonym")
    return out


def clear_text_embedding_memo() -> None:
    """Forget the in-process memo (the disk cache is kept)."""
    _MEMO.clear()


def _vocabulary_digest(synonyms: Sequence[Sequence[str]], templates: Sequence[str]) -> str:
    payload = json.dumps({"vocabulary": [list(s) for s in synonyms], "templates": list(templates)},
                         ensure_ascii=False, sort_keys=True)
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()


def text_cache_path(cache_dir: str, model_key: str, class_names: Sequence[str],
                    templates: Sequence[str] = VILD_TEMPLATES) -> str:
    """The cache file of ``class_names`` for ``model_key``: ``<cache_dir>/<model_key>/<sha1>.pt``."""
    synonyms = [split_synonyms(n) for n in class_names]
    return os.path.join(os.path.expanduser(cache_dir), model_key,
                        _vocabulary_digest(synonyms, templates) + ".pt")


@torch.no_grad()
def _encode_synonyms(
    encode_text: Callable[[torch.Tensor], torch.Tensor],
    tokenizer: Callable[[List[str]], torch.Tensor],
    synonyms: List[str],
    templates: Sequence[str],
    batch_size: int,
    device: Optional[Union[str, torch.device]],
) -> torch.Tensor:
    """[U] synonyms -> [U, D]: template-averaged normalised embeddings, normalised again."""
    prompts = [t.format(s) for s in synonyms for t in templates]
    chunks = []
    for start in range(0, len(prompts), max(1, int(batch_size))):
        tokens = tokenizer(prompts[start:start + batch_size])
        if device is not None:
            tokens = tokens.to(device)
        feats = encode_text(tokens).float()
        chunks.append(F.normalize(feats, dim=-1).cpu())
    feats = torch.cat(chunks).view(len(synonyms), len(templates), -1)
    return F.normalize(feats.mean(dim=1), dim=-1)


def _load_cache(path: str, synonyms: List[List[str]], templates: Sequence[str], model_key: str):
    """The cached [K, S, D] tensor, or None (with a warning) when unreadable or not matching."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        emb = data["embeddings"]
        ok = (
            data.get("version") == _CACHE_VERSION
            and data.get("model_key") == model_key
            and data.get("synonyms") == synonyms
            and list(data.get("templates", ())) == list(templates)
            and isinstance(emb, torch.Tensor)
            and emb.dim() == 3
            and emb.shape[:2] == (len(synonyms), max(len(s) for s in synonyms))
            and bool(torch.isfinite(emb).all())
        )
        if ok:
            return emb.float()
        reason = "its content does not match the vocabulary / model"
    except Exception as e:  # corrupt, truncated, wrong format
        reason = f"{type(e).__name__}: {e}"
    logger.warning("Ignoring the text-embedding cache file %s (%s); recomputing it.", path, reason)
    return None


def _save_cache(path: str, payload: Dict[str, Any]) -> None:
    try:
        with atomic_output(path, suffix=".pt") as tmp:
            torch.save(payload, tmp)
    except OSError as e:
        logger.warning("Could not write the text-embedding cache %s (%s)", path, e)


def get_text_embeddings(
    encode_text: Callable[[torch.Tensor], torch.Tensor],
    tokenizer: Callable[[List[str]], torch.Tensor],
    class_names: Sequence[str],
    *,
    cache_dir: Optional[str],
    model_key: str,
    batch_size: int = 128,
    device: Optional[Union[str, torch.device]] = None,
    templates: Sequence[str] = VILD_TEMPLATES,
) -> torch.Tensor:
    """CLIP text embeddings of a vocabulary: ``[K, S, D]`` float32, unit norm, on ``device``.

    Args:
        encode_text: tokens [n, context] -> features [n, D] (e.g. ``OpenCLIPBackbone.encode_text``).
        tokenizer: list of n strings -> tokens [n, context].
        class_names: K class-name strings, each possibly holding synonyms (see ``split_synonyms``).
        cache_dir: disk cache root (``~`` expanded); the file is
            ``<cache_dir>/<model_key>/<sha1 of (synonyms, templates)>.pt``. None / "" disables it.
        model_key: names the CLIP model and its weights (``OpenCLIPBackbone.model_key``).
        batch_size: prompts per ``encode_text`` call.
        device: where the tokens go (the text tower's device) and where the result is returned.
    """
    if len(class_names) == 0:
        raise ValueError("get_text_embeddings needs at least one class name")
    synonyms = [split_synonyms(n) for n in class_names]
    templates = tuple(templates)
    if not all("{}" in t for t in templates):
        raise ValueError("Every prompt template needs a '{}' placeholder")
    digest = _vocabulary_digest(synonyms, templates)
    root = os.path.expanduser(cache_dir) if cache_dir else ""
    memo_key = (root, model_key, digest)
    out_device = torch.device(device) if device is not None else torch.device("cpu")

    emb = _MEMO.get(memo_key)
    path = os.path.join(root, model_key, digest + ".pt") if root else ""
    if emb is None and path and os.path.isfile(path):
        emb = _load_cache(path, synonyms, templates, model_key)
    if emb is None:
        unique = list(dict.fromkeys(s for syns in synonyms for s in syns))
        feats = _encode_synonyms(encode_text, tokenizer, unique, templates, batch_size, device)
        index = {s: i for i, s in enumerate(unique)}
        num_slots = max(len(s) for s in synonyms)
        rows = [[index[s] for s in syns] + [index[syns[0]]] * (num_slots - len(syns)) for syns in synonyms]
        emb = feats[torch.tensor(rows, dtype=torch.long)].contiguous()  # [K, S, D]
        if path:
            _save_cache(path, {
                "version": _CACHE_VERSION,
                "model_key": model_key,
                "synonyms": synonyms,
                "templates": list(templates),
                "embeddings": emb,
            })
    _MEMO[memo_key] = emb
    return emb.to(device=out_device, dtype=torch.float32, copy=True)


def class_names_from_metadata(metadata: Any) -> List[str]:
    """Class-name strings of a dataset in contiguous-id order.

    ``ov_vocabulary`` (synonym strings a dataset may provide) if present, else ``stuff_classes``
    when non-empty (by this project's convention they list all classes), else ``thing_classes``.
    """
    def _get(key):
        if isinstance(metadata, dict):
            return metadata.get(key)
        getter = getattr(metadata, "get", None)
        return getter(key, None) if callable(getter) else getattr(metadata, key, None)

    for key in ("ov_vocabulary", "stuff_classes", "thing_classes"):
        names = _get(key)
        if names:
            return [str(n) for n in names]
    raise ValueError(f"Metadata {getattr(metadata, 'name', '')!r} has no ov_vocabulary, stuff_classes "
                     "or thing_classes")
