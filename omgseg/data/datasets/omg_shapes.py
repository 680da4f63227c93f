"""The synthetic OMG-Shapes benchmark (generator: ``omgseg.synthetic``), loaded by the same
loaders as the real datasets. Root: ``<root>/omg_shapes`` (generate with
``datasets/prepare_synthetic.py``)."""
import os
from typing import Dict, List

from detectron2.data.datasets import load_coco_json, load_sem_seg

from .coco_panoptic import load_sam_json, register_panoptic_with_sem_seg
from .davis import get_davis_metadata, register_davis
from .omg_shapes_categories import OMG_SHAPES_CATEGORIES
from .utils import (
    instance_metadata,
    panoptic_metadata,
    register_dataset,
    require_dir,
    require_file,
)
from .vipseg import register_video_panoptic
from .validation import check_coco_instances_json
from .ytvis import register_ytvis_instances

__all__ = ["get_omg_shapes_metadata", "load_coco_instances", "register_all_omg_shapes",
           "OMG_SHAPES_DATASET_NAMES"]

PREPARE_SYNTHETIC = "datasets/prepare_synthetic.py"

OMG_SHAPES_DATASET_NAMES = [
    f"omg_shapes_{kind}" for kind in (
        "train_panoptic", "val_panoptic", "train_instance", "val_instance", "train_sem_seg",
        "val_sem_seg", "video_train_ytvis", "video_val_ytvis", "video_train_vps",
        "video_val_vps", "video_train_davis", "video_val_davis", "train_prompt", "val_prompt",
        "video_val_prompt_vos_point", "video_val_prompt_vos_scribble",
    )
]


def get_omg_shapes_metadata() -> Dict:
    return panoptic_metadata(OMG_SHAPES_CATEGORIES)


def load_coco_instances(json_file: str, image_root: str, dataset_name: str,
                        prepare_hint: str = None) -> List[Dict]:
    """Detectron2's ``load_coco_json`` with clear errors for missing files, malformed JSON,
    duplicate image / annotation ids and unknown category ids."""
    require_file(json_file, "COCO instances json", prepare_hint)
    require_dir(image_root, "Image directory", prepare_hint)
    check_coco_instances_json(json_file)
    try:
        return load_coco_json(json_file, image_root, dataset_name)
    except KeyError as e:
        raise ValueError(f"{json_file}: {e.args[0] if e.args else e}") from e


def _load_sem_seg(gt_root: str, image_root: str) -> List[Dict]:
    require_dir(gt_root, "Semantic PNG directory", PREPARE_SYNTHETIC)
    require_dir(image_root, "Image directory", PREPARE_SYNTHETIC)
    return load_sem_seg(gt_root, image_root, gt_ext="png", image_ext="jpg")


def register_all_omg_shapes(root: str, prefix: str = "") -> List[str]:
    """Register the 14 OMG-Shapes datasets for ``<root>/omg_shapes``; names get ``prefix``.

    ``omg_shapes_{train,val}_prompt`` are the panoptic splits as COCO-SAM prompt datasets
    (``evaluator_type`` "coco_sam": every non-crowd segment is prompted; training draws prompts,
    evaluation reports the interactive mIoU)."""
    base = os.path.join(root, "omg_shapes")
    pan_meta = get_omg_shapes_metadata()
    inst_meta = instance_metadata(OMG_SHAPES_CATEGORIES)
    names = []
    for split in ("train", "val"):
        image_root = os.path.join(base, "images", split)
        instances_json = os.path.join(base, f"instances_{split}.json")
        sem_root = os.path.join(base, f"panoptic_semseg_{split}")

        name = f"{prefix}omg_shapes_{split}_panoptic"
        register_panoptic_with_sem_seg(
            name, pan_meta, image_root, os.path.join(base, f"panoptic_{split}"),
            os.path.join(base, f"panoptic_{split}.json"), sem_root, instances_json,
            prepare_hint=PREPARE_SYNTHETIC,
        )
        names.append(name)

        name = f"{prefix}omg_shapes_{split}_instance"
        register_dataset(
            name,
            lambda j=instances_json, i=image_root, n=name: load_coco_instances(
                j, i, n, PREPARE_SYNTHETIC),
            dict(inst_meta, json_file=instances_json, image_root=image_root,
                 evaluator_type="coco"),
        )
        names.append(name)

        name = f"{prefix}omg_shapes_{split}_sem_seg"
        register_dataset(
            name,
            lambda g=sem_root, i=image_root: _load_sem_seg(g, i),
            dict(pan_meta, image_root=image_root, sem_seg_root=sem_root, evaluator_type="sem_seg",
                 ignore_label=255, label_divisor=1000),
        )
        names.append(name)

    videos = os.path.join(base, "videos")
    for split in ("train", "val"):
        frames = os.path.join(videos, "JPEGImages", split)
        name = f"{prefix}omg_shapes_video_{split}_ytvis"
        register_ytvis_instances(name, inst_meta, os.path.join(videos, f"ytvis_{split}.json"),
                                 frames)
        names.append(name)

        name = f"{prefix}omg_shapes_video_{split}_vps"
        register_video_panoptic(
            name, pan_meta, os.path.join(videos, f"panoptic_video_{split}.json"), frames,
            os.path.join(videos, f"panoptic_video_{split}"), prepare_hint=PREPARE_SYNTHETIC,
        )
        names.append(name)

        name = f"{prefix}omg_shapes_video_{split}_davis"
        register_davis(name, os.path.join(base, "davis"), split, get_davis_metadata())
        names.append(name)
        # Prompt-driven VOS (evaluation): the same videos, a click or a stroke on each object of
        # the first frame instead of its mask.
        for mode in ("point", "scribble") if split == "val" else ():
            name = f"{prefix}omg_shapes_video_{split}_prompt_vos_{mode}"
            register_davis(name, os.path.join(base, "davis"), split,
                           dict(get_davis_metadata(), vos_prompt=mode))
            names.append(name)

    for split in ("train", "val"):
        name = f"{prefix}omg_shapes_{split}_prompt"
        paths = (os.path.join(base, f"panoptic_{split}.json"),
                 os.path.join(base, "images", split), os.path.join(base, f"panoptic_{split}"))
        register_dataset(
            name,
            lambda p=paths: load_sam_json(*p, pan_meta),
            dict(pan_meta, image_root=paths[1], panoptic_root=paths[2], panoptic_json=paths[0],
                 evaluator_type="coco_sam", class_agnostic=True, ignore_label=255,
                 label_divisor=1000),
        )
        names.append(name)
    return names
