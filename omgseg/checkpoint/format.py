"""What an OMG-Seg checkpoint holds besides tensors, and how older files are brought up to date.

Every checkpoint this repository writes (trainer saves, the official-weights converter) holds

* ``"omgseg_format_version"``: :data:`FORMAT_VERSION`, the layout of the state dict;
* ``"training_vocabulary"`` (trainer saves): the model's joint training label space,
  ``{"names": [...], "is_thing": [...], "datasets": [...]}``; class ``i`` of the classifier is
  ``names[i]``. Read it with :func:`checkpoint_training_vocabulary`.

Versions:

* none: written before versioning. Files written before the pixel decoder's input projections
  got their conv bias lack exactly ``pixel_decoder.input_convs.{0,1,2}.conv.bias``; a bias-free
  conv is the same function as one with a zero bias, so those are added as zeros
  (:func:`migrate_state_dict`). Anything else missing is left to the strict loader to refuse.
* 1: the current layout.
* newer than :data:`FORMAT_VERSION`: refused (:class:`CheckpointVersionError`).

A Detectron2 Mask2Former checkpoint (``sem_seg_head.pixel_decoder.*`` /
``sem_seg_head.predictor.*``) is refused with :func:`mask2former_message`: its closed-set
classifier and its backbone have no counterpart in OMG-Seg (see there).
"""
import re
from typing import Any, Dict, List, Mapping, Optional

import torch

from .errors import CheckpointError, CheckpointMismatchError
from .io import read_checkpoint

__all__ = [
    "FORMAT_VERSION",
    "FORMAT_VERSION_KEY",
    "TRAINING_VOCABULARY_KEY",
    "CheckpointVersionError",
    "LEGACY_INPUT_CONV_BIASES",
    "checkpoint_format_version",
    "checkpoint_training_vocabulary",
    "format_training_vocabulary",
    "is_mask2former_checkpoint",
    "mask2former_message",
    "migrate_state_dict",
    "refuse_mask2former",
    "training_vocabulary_of",
]

FORMAT_VERSION = 1
FORMAT_VERSION_KEY = "omgseg_format_version"
TRAINING_VOCABULARY_KEY = "training_vocabulary"

# Added (with a zero init) to the pixel decoder's input projections after the first checkpoints
# had been written; an unversioned file may lack exactly these.
LEGACY_INPUT_CONV_BIASES = tuple(f"pixel_decoder.input_convs.{i}.conv.bias" for i in range(3))

_M2F_PREFIXES = ("sem_seg_head.pixel_decoder.", "sem_seg_head.predictor.")


class CheckpointVersionError(CheckpointError):
    """A checkpoint written by a newer version of this code (unknown format version)."""


def checkpoint_format_version(checkpoint: Mapping[str, Any], path: str) -> Optional[int]:
    """The format version of a loaded checkpoint dict; None for files written before versioning.

    Raises ``CheckpointVersionError`` (naming ``path``) for a version this code does not know.
    """
    version = checkpoint.get(FORMAT_VERSION_KEY)
    if version is None:
        return None
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointVersionError(
            f"{path}: '{FORMAT_VERSION_KEY}' is {version!r}, not a format version (1, 2, ...)"
        )
    if version > FORMAT_VERSION:
        raise CheckpointVersionError(
            f"{path} has checkpoint format version {version}, newer than the {FORMAT_VERSION} "
            "this code reads: it was written by a newer version of OMG-Seg for Detectron2. "
            "Update this repository (git pull; pip install -e .) to load it."
        )
    return version


def migrate_state_dict(
    state_dict: Dict[str, torch.Tensor],
    model_state: Mapping[str, torch.Tensor],
    version: Optional[int],
) -> List[str]:
    """Bring an unversioned state dict up to :data:`FORMAT_VERSION` in place.

    Returns what was done, one sentence each (empty when nothing was needed). Only exactly the
    known gap is filled: the three input-projection biases, all absent, with the model expecting
    them and the matching weights present.
    """
    if version is not None:
        return []
    absent = [k for k in LEGACY_INPUT_CONV_BIASES if k not in state_dict and k in model_state]
    if len(absent) != len(LEGACY_INPUT_CONV_BIASES):
        return []
    weights = [k[: -len("bias")] + "weight" for k in absent]
    if not all(w in state_dict for w in weights):
        return []
    for name, weight in zip(absent, weights):
        state_dict[name] = torch.zeros(
            state_dict[weight].shape[0], dtype=state_dict[weight].dtype
        )
    return [
        "added zero pixel_decoder.input_convs.{0,1,2}.conv.bias (the input projections of "
        "checkpoints written before format version 1 had no conv bias: same outputs)"
    ]


# ---- Mask2Former -----------------------------------------------------------------------------
def is_mask2former_checkpoint(state_dict: Mapping[str, Any]) -> bool:
    """True for a Detectron2 Mask2Former state dict (``sem_seg_head.pixel_decoder.*`` /
    ``sem_seg_head.predictor.*``)."""
    return any(k.startswith(_M2F_PREFIXES) for k in state_dict)


def mask2former_message(path: str, state_dict: Mapping[str, torch.Tensor]) -> str:
    """Why a Mask2Former checkpoint cannot become an OMG-Seg one, and what to do instead."""
    classes = state_dict.get("sem_seg_head.predictor.class_embed.weight")
    queries = state_dict.get("sem_seg_head.predictor.query_feat.weight")
    backbone = sorted({k.split(".")[1] for k in state_dict
                       if k.startswith("backbone.") and k.count(".") > 1})
    facts = [f"{len(state_dict)} tensors"]
    if queries is not None:
        facts.append(f"{queries.shape[0]} queries of width {queries.shape[1]}")
    if classes is not None:
        facts.append(f"a closed-set classifier over {classes.shape[0] - 1} classes")
    if backbone:
        facts.append(f"backbone modules {', '.join(backbone[:4])}")
    return (
        f"{path} is a Detectron2 Mask2Former checkpoint ({'; '.join(facts)}), not an OMG-Seg "
        "checkpoint, and cannot be converted to one: OMG-Seg classifies masks against CLIP "
        "text embeddings (mask_decoder.cls_proj / mask_pooling_proj / iou_embed have no "
        "Mask2Former counterpart; Mask2Former's class_embed has none in OMG-Seg), its "
        "backbone is an OpenCLIP model rather than Mask2Former's ResNet / Swin, and its "
        "decoder also holds the prompt embeddings. Train from the OpenCLIP weights "
        "(MODEL.WEIGHTS \"\" with MODEL.OMG.CLIP.PRETRAINED) or start from the official "
        "OMG-Seg weights converted with `python tools/convert_omgseg_official.py IN OUT`."
    )


def refuse_mask2former(path: str, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Raise ``CheckpointMismatchError`` with :func:`mask2former_message` for a Mask2Former
    state dict; return for anything else."""
    if is_mask2former_checkpoint(state_dict):
        raise CheckpointMismatchError(mask2former_message(path, state_dict))


# ---- training vocabulary ---------------------------------------------------------------------
def training_vocabulary_of(model) -> Optional[Dict[str, list]]:
    """``{"names", "is_thing", "datasets"}`` of a model's joint training vocabulary
    (``OMGSeg.joint_vocabulary()``); None for a model without one. DDP wrappers are unwrapped."""
    model = getattr(model, "module", model)
    joint_vocabulary = getattr(model, "joint_vocabulary", None)
    if joint_vocabulary is None:
        return None
    vocabulary, id_maps = joint_vocabulary()
    return {
        "names": list(vocabulary.names),
        "is_thing": [bool(x) for x in vocabulary.is_thing],
        "datasets": [name for name in id_maps if name],
    }


def checkpoint_training_vocabulary(path: str) -> Optional[Dict[str, list]]:
    """The training vocabulary stored in the checkpoint file ``path``
    (``{"names", "is_thing", "datasets"}``), or None when it holds none (older files, converted
    official heads)."""
    loaded = read_checkpoint(path)
    if not isinstance(loaded, dict):
        return None
    checkpoint_format_version(loaded, path)
    vocab = loaded.get(TRAINING_VOCABULARY_KEY)
    return dict(vocab) if isinstance(vocab, dict) else None


def format_training_vocabulary(vocab: Mapping[str, list], max_names: int = 8) -> str:
    """One line: class counts, datasets and the first names."""
    names, is_thing = list(vocab["names"]), list(vocab["is_thing"])
    things = sum(bool(x) for x in is_thing)
    shown = ", ".join(re.sub(r",.*", "", n) for n in names[:max_names])
    more = f", ... ({len(names) - max_names} more)" if len(names) > max_names else ""
    datasets = ", ".join(vocab.get("datasets") or []) or "unknown"
    return (f"{len(names)} classes ({things} things, {len(names) - things} stuff) from "
            f"{datasets}: {shown}{more}")
