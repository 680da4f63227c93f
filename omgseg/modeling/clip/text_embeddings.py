"""CLIP text embeddings of class vocabularies: ViLD prompt ensembles, one memory + disk cache.

For a vocabulary of K class names, each name is split into synonyms, every synonym is put into the
14 ViLD templates, the prompts are encoded by the CLIP text tower and L2-normalised, averaged over
the templates and normalised again (the official ``tools/gen_cls.py``). The result is
``[K, S, D]`` with S the largest synonym count; shorter synonym lists are padded by repeating their
first synonym (so a max over synonyms is unaffected by the padding).

:class:`TextEmbeddingCache` is the only store of these tensors: an in-memory LRU over one file per
(CLIP model key, vocabulary) on disk. A model owns one; switching its vocabulary only encodes
vocabularies it has never seen.
"""
import collections
import hashlib
import json
import logging
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch.nn import functional as F

from ...data.datasets.ov_vocabularies import split_synonyms
from ...utils.file_io import atomic_output

__all__ = [
    "VILD_TEMPLATES",
    "split_synonyms",
    "compute_text_embeddings",
    "text_cache_path",
    "TextEmbeddingCache",
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

EncodeText = Callable[[torch.Tensor], torch.Tensor]
Tokenizer = Callable[[List[str]], torch.Tensor]
Device = Optional[Union[str, torch.device]]


def _check_templates(templates: Sequence[str]) -> Tuple[str, ...]:
    templates = tuple(templates)
    if not templates or not all("{}" in t for t in templates):
        raise ValueError("Every prompt template needs a '{}' placeholder")
    return templates


def _vocabulary_digest(synonyms: Sequence[Sequence[str]], templates: Sequence[str]) -> str:
    payload = json.dumps({"vocabulary": [list(s) for s in synonyms], "templates": list(templates)},
                         ensure_ascii=False, sort_keys=True)
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()


def text_cache_path(cache_dir: str, model_key: str, class_names: Sequence[str],
                    templates: Sequence[str] = VILD_TEMPLATES) -> str:
    """The cache file of ``class_names``: ``<cache_dir>/<model_key>/<sha1>.pt`` (``~`` expanded)."""
    synonyms = [split_synonyms(n) for n in class_names]
    return os.path.join(os.path.expanduser(cache_dir), model_key,
                        _vocabulary_digest(synonyms, templates) + ".pt")


@torch.no_grad()
def _encode_synonyms(
    encode_text: EncodeText,
    tokenizer: Tokenizer,
    synonyms: List[str],
    templates: Sequence[str],
    batch_size: int,
    device: Device,
) -> torch.Tensor:
    """[U] synonyms -> [U, D] on the CPU: template-averaged unit embeddings, normalised again.

    Prompts are encoded in batches of similar token counts (a text tower that trims the context
    to the batch's longest prompt then does less work); the order of the results is restored.
    """
    prompts = [t.format(s) for s in synonyms for t in templates]
    tokens = tokenizer(prompts)
    order = torch.argsort((tokens != 0).sum(dim=-1), stable=True)  # 0 = padding
    step = max(1, int(batch_size))
    feats = None
    for start in range(0, len(prompts), step):
        rows = order[start:start + step]
        batch = tokens[rows] if device is None else tokens[rows].to(device)
        out = F.normalize(encode_text(batch).float(), dim=-1).cpu()
        if feats is None:
            feats = out.new_empty(len(prompts), out.shape[-1])
        feats[rows] = out
    feats = feats.view(len(synonyms), len(templates), -1)
    return F.normalize(feats.mean(dim=1), dim=-1)


def compute_text_embeddings(
    encode_text: EncodeText,
    tokenizer: Tokenizer,
    class_names: Sequence[str],
    *,
    templates: Sequence[str] = VILD_TEMPLATES,
    batch_size: int = 128,
    device: Device = None,
) -> torch.Tensor:
    """Text embeddings ``[K, S, D]`` (float32, unit norm, CPU) of ``class_names``, uncached.

    Args:
        encode_text: tokens [n, context] -> features [n, D] (``OpenCLIPBackbone.encode_text``).
        tokenizer: list of n strings -> tokens [n, context].
        class_names: K class strings, each possibly holding synonyms (see ``split_synonyms``).
        templates: prompt templates with one ``{}``.
        batch_size: prompts per ``encode_text`` call.
        device: where the tokens go (the text tower's device).
    """
    if len(class_names) == 0:
        raise ValueError("Text embeddings need at least one class name")
    templates = _check_templates(templates)
    synonyms = [split_synonyms(n) for n in class_names]
    unique = list(dict.fromkeys(s for syns in synonyms for s in syns))
    feats = _encode_synonyms(encode_text, tokenizer, unique, templates, batch_size, device)
    index = {s: i for i, s in enumerate(unique)}
    slots = max(len(s) for s in synonyms)
    rows = [[index[s] for s in syns] + [index[syns[0]]] * (slots - len(syns)) for syns in synonyms]
    return feats[torch.tensor(rows, dtype=torch.long)].contiguous()


def _load_file(path: str, synonyms: List[List[str]], templates: Sequence[str], model_key: str):
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


def _save_file(path: str, payload: Dict[str, Any]) -> None:
    try:
        with atomic_output(path, suffix=".pt") as tmp:
            torch.save(payload, tmp)
    except OSError as e:
        logger.warning("Could not write the text-embedding cache %s (%s)", path, e)


class TextEmbeddingCache:
    """Text embeddings by (CLIP model key, vocabulary): memory first, then disk, then encoding.

    Args:
        cache_dir: root of the disk files ``<cache_dir>/<model_key>/<sha1>.pt`` (``~`` expanded;
            None or "" keeps everything in memory only).
        max_in_memory: vocabularies kept in memory (least recently used dropped first).
    """

    def __init__(self, cache_dir: Optional[str], max_in_memory: int = 16):
        self.cache_dir = os.path.expanduser(cache_dir) if cache_dir else ""
        self.max_in_memory = max(1, int(max_in_memory))
        self._memory: "collections.OrderedDict[Tuple[str, str], torch.Tensor]" = (
            collections.OrderedDict()
        )
        self._digests: Dict[Tuple[Tuple[str, ...], Tuple[str, ...]], str] = {}  # names -> sha1
        # the last answer, for a repeated call with the very same (immutable) arguments: a
        # re-prompt asks for the same vocabulary every time (1000+ names cost ~0.1 ms to key)
        self._last: Optional[Tuple[tuple, torch.Tensor]] = None

    def path(self, model_key: str, class_names: Sequence[str],
             templates: Sequence[str] = VILD_TEMPLATES) -> str:
        """The disk file of a vocabulary ("" without a cache_dir)."""
        if not self.cache_dir:
            return ""
        return text_cache_path(self.cache_dir, model_key, class_names, templates)

    def clear_memory(self) -> None:
        """Forget the in-memory entries (the files stay)."""
        self._memory.clear()
        self._last = None

    def get(
        self,
        class_names: Sequence[str],
        *,
        model_key: str,
        encode_text: EncodeText,
        tokenizer: Tokenizer,
        batch_size: int = 128,
        device: Device = None,
        templates: Sequence[str] = VILD_TEMPLATES,
    ) -> torch.Tensor:
        """``[K, S, D]`` float32 unit-norm embeddings of ``class_names`` on ``device`` (CPU by
        default). The tensor is the cached one: treat it as read-only.

        ``model_key`` must name the CLIP model and its weights (``OpenCLIPBackbone.model_key``);
        the other arguments are those of :func:`compute_text_embeddings`.
        """
        call = (class_names, templates, model_key, device)
        last = self._last
        if (last is not None and type(class_names) is tuple and type(templates) is tuple
                and last[0][0] is class_names and last[0][1] is templates
                and last[0][2:] == call[2:]):
            return last[1]
        if len(class_names) == 0:
            raise ValueError("Text embeddings need at least one class name")
        names = (tuple(str(n) for n in class_names), tuple(templates))
        if names not in self._digests:  # hashing the synonyms costs more than a lookup per step
            synonyms = [split_synonyms(n) for n in class_names]
            self._digests[names] = _vocabulary_digest(synonyms, _check_templates(templates))
        key = (model_key, self._digests[names])
        out_device = torch.device(device) if device is not None else torch.device("cpu")
        emb = self._memory.get(key)
        if emb is None:
            templates = _check_templates(templates)
            synonyms = [split_synonyms(n) for n in class_names]
            path = self.path(model_key, class_names, templates)
            if path and os.path.isfile(path):
                emb = _load_file(path, synonyms, templates, model_key)
            if emb is None:
                emb = compute_text_embeddings(encode_text, tokenizer, class_names,
                                              templates=templates, batch_size=batch_size,
                                              device=device)
                if path:
                    _save_file(path, {"version": _CACHE_VERSION, "model_key": model_key,
                                      "synonyms": synonyms, "templates": list(templates),
                                      "embeddings": emb})
        if emb.device != out_device:
            emb = emb.to(out_device)
        self._memory[key] = emb
        self._memory.move_to_end(key)
        while len(self._memory) > self.max_in_memory:
            self._memory.popitem(last=False)
        self._last = (call, emb)
        return emb
