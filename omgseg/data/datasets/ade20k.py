"""ADE20K: panoptic (Mask2Former layout, 150 classes: 100 things, 50 stuff) and Detectron2's
own ``ade20k_sem_seg_{train,val}`` (only completed with colours and the id map here)."""
import os
from typing import Dict, List

from detectron2.data import MetadataCatalog

from .builtin_categories import ADE20K_150_CATEGORIES
from .coco_panoptic import register_panoptic_with_sem_seg
from .utils import panoptic_metadata

__all__ = [
    "get_ade20k_panoptic_metadata",
    "register_all_ade20k_panoptic",
    "complete_ade20k_sem_seg_metadata",
]

PREPARE_ADE20K = "datasets/prepare_ade20k_sem_seg.py and datasets/prepare_ade20k_pan_seg.py"

_ADE_SPLITS = {"train": "training", "val": "validation"}


def get_ade20k_panoptic_metadata() -> Dict:
    return panoptic_metadata(ADE20K_150_CATEGORIES)


def register_all_ade20k_panoptic(root: str, prefix: str = "") -> List[str]:
    """``{prefix}ade20k_panoptic_{train,val}`` under ``<root>/ADEChallengeData2016``.

    ``json_file`` is ``ade20k_panoptic_{split}_instances.json``: COCO instances converted from the
    panoptic ground truth by ``prepare_ade20k_pan_seg.py``, with ADE-150 category ids so that
    COCOEvaluator and ``thing_dataset_id_to_contiguous_id`` agree (Mask2Former's
    ``ade20k_instance_*.json`` use the separate Instance100 ids)."""
    base = os.path.join(root, "ADEChallengeData2016")
    meta = get_ade20k_panoptic_metadata()
    names = []
    for split, dirname in _ADE_SPLITS.items():
        name = f"{prefix}ade20k_panoptic_{split}"
        register_panoptic_with_sem_seg(
            name,
            meta,
            image_root=os.path.join(base, "images", dirname),
            panoptic_root=os.path.join(base, f"ade20k_panoptic_{split}"),
            panoptic_json=os.path.join(base, f"ade20k_panoptic_{split}.json"),
            sem_seg_root=os.path.join(base, "annotations_detectron2", dirname),
            instances_json=os.path.join(base, f"ade20k_panoptic_{split}_instances.json"),
            prepare_hint=PREPARE_ADE20K,
        )
        names.append(name)
    return names


def complete_ade20k_sem_seg_metadata(names=("ade20k_sem_seg_train", "ade20k_sem_seg_val")) -> None:
    """Detectron2 registers ``ade20k_sem_seg_*`` with 150 ``stuff_classes`` only: add the colours
    and the (identity) id map, leaving every key it already has untouched."""
    meta = get_ade20k_panoptic_metadata()
    extra = {
        "stuff_colors": meta["stuff_colors"],
        "stuff_dataset_id_to_contiguous_id": meta["stuff_dataset_id_to_contiguous_id"],
        "label_divisor": 1000,
    }
    for name in names:
        m = MetadataCatalog.get(name)
        if list(getattr(m, "stuff_classes", [])) != meta["stuff_classes"]:
            continue  # not Detectron2's ADE20K-150 registration: leave it alone
        m.set(**{k: v for k, v in extra.items() if not hasattr(m, k)})
