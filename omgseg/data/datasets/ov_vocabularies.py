"""The official OMG-Seg open-vocabulary class lists, attached to dataset metadata.

The classifier of OMG-Seg scores queries against CLIP text embeddings of FC-CLIP-style synonym
lists ("person,child,girl,boy,..."), not against the short display names. The official lists
(``official_class_names.json``, from lxtGH/OMG-Seg) are stored things-then-stuff as the official
code lists them; :func:`attach_official_vocabularies` re-orders them to each registered dataset's
contiguous ids and stores them as metadata ``ov_vocabulary`` beside Detectron2's display names
(``thing_classes`` / ``stuff_classes`` are not touched).

Re-ordering (:func:`align_official_classes`): a dataset class is paired with the official class of
the same kind (thing / stuff) that shares a synonym with it (names normalised as the official
``gen_cls`` does, see :func:`split_synonyms`); the classes whose display names are not official
synonyms (COCO "wall-other-merged", ADE "plane") are paired in order within their kind, since the
official lists keep each kind in dataset order.
"""
import functools
import json
import logging
import os
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets.builtin_meta import CITYSCAPES_CATEGORIES, COCO_CATEGORIES

from .builtin_categories import (
    ADE20K_150_CATEGORIES,
    VIPSEG_CATEGORIES,
    YTVIS_2019_CATEGORIES,
    YTVIS_2021_CATEGORIES,
)

__all__ = [
    "ClassList",
    "split_synonyms",
    "official_class_list",
    "align_official_classes",
    "demo_vocabulary",
    "official_vocabulary_for",
    "attach_official_vocabularies",
]

logger = logging.getLogger(__name__)

_JSON = os.path.join(os.path.dirname(os.path.abspath(__file__)), "official_class_names.json")


class ClassList(NamedTuple):
    """Class strings in contiguous-id order and which of them are things (``Vocabulary(*x)``)."""

    names: List[str]
    is_thing: List[bool]


def split_synonyms(name: str) -> List[str]:
    """The synonyms of a class string, normalised as the official ``gen_cls`` does.

    ``"_or_"`` and ``"/"`` separate synonyms like commas, ``"_"`` becomes a space, lower case;
    whitespace is collapsed and empty or repeated synonyms are dropped (first-seen order kept).
    ``"handrail_or_fence"`` -> ``["handrail", "fence"]``; ``"person, people"`` -> both.
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


@functools.lru_cache(maxsize=None)
def _official_lists() -> Dict[str, Dict]:
    with open(_JSON, encoding="utf-8") as f:
        data = json.load(f)
    return {k: v for k, v in data.items() if not k.startswith("_")}


def official_class_list(key: str) -> ClassList:
    """An official list in official order (things, then stuff), e.g. ``"coco_panoptic"``.

    Keys: coco_panoptic, ade20k_150, cityscapes_19, vipseg_124, ytvis_2019, ytvis_2021,
    th139_st101.
    """
    lists = _official_lists()
    if key not in lists:
        raise KeyError(f"No official class list '{key}'; known: {sorted(lists)}")
    things, stuff = lists[key]["thing_classes"], lists[key]["stuff_classes"]
    return ClassList(list(things) + list(stuff), [True] * len(things) + [False] * len(stuff))


def demo_vocabulary() -> ClassList:
    """The official demo vocabulary ``th139_st101``: 139 things + 101 stuff, the merge of COCO,
    YouTube-VIS 2019 / 2021, VIPSeg and Cityscapes (``Vocabulary(*demo_vocabulary())``)."""
    return official_class_list("th139_st101")


def _pick(candidates: List[int], first: str, official: Sequence[List[str]]) -> Optional[int]:
    if len(candidates) > 1:  # e.g. ADE "toilet, ..., stool": prefer the same leading synonym
        candidates = [j for j in candidates if official[j][0] == first]
    return candidates[0] if len(candidates) == 1 else None


def align_official_classes(
    display_names: Sequence[str], is_thing: Sequence[bool], official: ClassList, source: str = ""
) -> List[str]:
    """The official class strings re-ordered to a dataset's contiguous ids.

    Args:
        display_names: the dataset's class names in contiguous-id order.
        is_thing: their kinds.
        official: an official list (any order of kinds); its kind counts must equal the dataset's.
        source: names the dataset in errors.

    Returns:
        ``out[i]`` = the official string of contiguous class ``i``; every official class is used
        exactly once. Raises ValueError when kinds do not add up or two classes claim one.
    """
    where = f" ({source})" if source else ""
    if len(display_names) != len(is_thing):
        raise ValueError(
            f"{len(display_names)} class names for {len(is_thing)} is_thing flags{where}"
        )
    out: List[Optional[str]] = [None] * len(display_names)
    for kind in (True, False):
        ours = [i for i, t in enumerate(is_thing) if bool(t) == kind]
        theirs = [s for s, t in zip(official.names, official.is_thing) if t == kind]
        if len(ours) != len(theirs):
            raise ValueError(
                f"The dataset has {len(ours)} {'thing' if kind else 'stuff'} classes, the official "
                f"list {len(theirs)}{where}"
            )
        official_syns = [split_synonyms(s) for s in theirs]
        claimed: Dict[int, int] = {}
        for i in ours:
            syns = split_synonyms(display_names[i])
            cands = [j for j, o in enumerate(official_syns) if set(syns) & set(o)]
            j = _pick(cands, syns[0], official_syns)
            if j is None:
                continue
            if j in claimed:
                raise ValueError(
                    f"Classes '{display_names[claimed[j]]}' and '{display_names[i]}' both match "
                    f"the official class '{theirs[j]}'{where}"
                )
            claimed[j] = i
            out[i] = theirs[j]
        rest = [j for j in range(len(theirs)) if j not in claimed]
        for i, j in zip([i for i in ours if out[i] is None], rest):
            out[i] = theirs[j]
    return [str(s) for s in out]


def _known_datasets() -> Dict[Tuple[str, ...], Tuple[str, List[bool]]]:
    """Display-name lists of the datasets with an official list -> (official key, is_thing)."""
    city = sorted(CITYSCAPES_CATEGORIES, key=lambda c: c["trainId"])
    tables = {
        "coco_panoptic": [(c["name"], bool(c["isthing"])) for c in COCO_CATEGORIES],
        "ade20k_150": [(c["name"], bool(c["isthing"])) for c in ADE20K_150_CATEGORIES],
        "cityscapes_19": [(c["name"], bool(c["isthing"])) for c in city],
        "vipseg_124": [(c["name"], bool(c["isthing"])) for c in VIPSEG_CATEGORIES],
        "ytvis_2019": [(c["name"], True) for c in YTVIS_2019_CATEGORIES],
        "ytvis_2021": [(c["name"], True) for c in YTVIS_2021_CATEGORIES],
    }
    known = {}
    for key, table in tables.items():
        known[tuple(n for n, _ in table)] = (key, [t for _, t in table])
        things = tuple(n for n, t in table if t)
        known.setdefault(things, (key, [True] * len(things)))  # instance-only registrations
    return known


def official_vocabulary_for(metadata) -> Optional[List[str]]:
    """The aligned official list for a dataset's metadata, None when its classes are not those of
    a dataset with an official list. Panoptic / semantic metadata are recognised by
    ``stuff_classes`` (all classes), instance metadata by ``thing_classes``."""
    display = list(metadata.get("stuff_classes", None) or metadata.get("thing_classes", None) or [])
    hit = _known_datasets().get(tuple(display))
    if hit is None:
        return None
    key, is_thing = hit
    official = official_class_list(key)
    if not all(is_thing):
        return align_official_classes(display, is_thing, official, metadata.get("name", ""))
    things = ClassList([n for n, t in zip(*official) if t], [True] * sum(official.is_thing))
    return align_official_classes(display, is_thing, things, metadata.get("name", ""))


def attach_official_vocabularies(names: Optional[Sequence[str]] = None) -> List[str]:
    """Set metadata ``ov_vocabulary`` of the registered datasets (all, or ``names``) whose classes
    have an official list, unless they already have one. Returns the datasets updated."""
    updated = []
    for name in names if names is not None else DatasetCatalog.list():
        meta = MetadataCatalog.get(name)
        if meta.get("ov_vocabulary", None) or meta.get("class_agnostic", False):
            continue
        vocabulary = official_vocabulary_for(meta)
        if vocabulary is not None:
            meta.set(ov_vocabulary=vocabulary)
            updated.append(name)
    logger.debug("Official open-vocabulary class lists attached to %s", updated)
    return updated
