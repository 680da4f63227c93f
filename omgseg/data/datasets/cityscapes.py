"""Cityscapes panoptic: Detectron2 registers ``cityscapes_fine_panoptic_{train,val}`` itself (its
loader and layout are kept). Its metadata differs from our contract in three ways, fixed here:

* ``thing_classes`` / ``thing_colors`` list all 19 classes -> things only (8), as everywhere else
  (contiguous ids stay the 19 trainIds; names by id come from ``stuff_classes``);
* ``stuff_dataset_id_to_contiguous_id`` covers the 11 stuff classes only -> all 19 classes;
* ``evaluator_type`` ``cityscapes_panoptic_seg`` -> ``coco_panoptic_seg`` (PQ with
  COCOPanopticEvaluator on the createPanopticImgs json, mIoU on labelTrainIds PNGs; the
  Cityscapes-specific evaluators need cityscapesscripts). The original is kept as
  ``cityscapes_evaluator_type``.

Detectron2's records carry ``sem_seg_file_name`` (``*_gtFine_labelTrainIds.png``) but no
``height`` / ``width`` (every image is 1024 x 2048): readers take the size from the image.
"""
from typing import Dict, Sequence

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets.builtin_meta import CITYSCAPES_CATEGORIES

from .utils import panoptic_metadata

__all__ = ["CITYSCAPES_PANOPTIC_NAMES", "get_cityscapes_panoptic_metadata",
           "adapt_cityscapes_panoptic_metadata"]

CITYSCAPES_PANOPTIC_NAMES = ("cityscapes_fine_panoptic_train", "cityscapes_fine_panoptic_val")


def get_cityscapes_panoptic_metadata() -> Dict:
    """Contract metadata: contiguous id = trainId (0..18)."""
    cats = sorted(CITYSCAPES_CATEGORIES, key=lambda c: c["trainId"])
    assert [c["trainId"] for c in cats] == list(range(19))
    return panoptic_metadata(
        [{"id": c["id"], "name": c["name"], "isthing": c["isthing"], "color": list(c["color"])}
         for c in cats]
    )


def adapt_cityscapes_panoptic_metadata(names: Sequence[str] = CITYSCAPES_PANOPTIC_NAMES) -> None:
    """Rewrite the metadata of Detectron2's Cityscapes panoptic datasets to the contract (the
    dataset loaders are not touched). Idempotent."""
    ours = get_cityscapes_panoptic_metadata()
    for name in names:
        if name not in DatasetCatalog.list():
            continue
        old = MetadataCatalog.get(name).as_dict()
        if old.get("evaluator_type") == "coco_panoptic_seg" and old.get("thing_classes") == ours[
            "thing_classes"
        ]:
            continue  # already adapted
        new = {k: v for k, v in old.items() if k != "name"}
        new.update(ours)
        new["cityscapes_evaluator_type"] = old.get("evaluator_type", "cityscapes_panoptic_seg")
        new["evaluator_type"] = "coco_panoptic_seg"
        new.setdefault("ignore_label", 255)
        new.setdefault("label_divisor", 1000)
        new["sem_seg_root"] = old.get("gt_dir")  # labelTrainIds PNGs live next to the gtFine files
        MetadataCatalog.remove(name)
        MetadataCatalog.get(name).set(**new)
