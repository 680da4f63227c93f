"""A dataset registered the Detectron2 way, with no metadata, trains and evaluates through the
Trainer: its class names come from the json's categories (filled when Detectron2 loads it)."""
import json

import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_coco_instances
from PIL import Image

from conftest import make_tiny_cfg
from omgseg.engine import Trainer

NAME = "test_custom_coco_instances"
# non-contiguous category ids, given out of order: Detectron2 sorts them by id
CATEGORIES = [{"id": 9, "name": "blue_tile"}, {"id": 4, "name": "red brick"}]
COLOURS = {4: (200, 40, 40), 9: (40, 60, 210)}


def _write_dataset(folder, num_images=4, size=64):
    """Images with two axis-aligned rectangles each, and their COCO instances json."""
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for i in range(num_images):
        canvas = np.full((size, size, 3), 128, dtype=np.uint8)
        for k, cat in enumerate((4, 9)):
            x0, y0 = int(rng.integers(2, 20)) + 30 * k, int(rng.integers(2, 30))
            w, h = int(rng.integers(12, 24)), int(rng.integers(12, 30))
            canvas[y0:y0 + h, x0:x0 + w] = COLOURS[cat]
            poly = [x0, y0, x0 + w, y0, x0 + w, y0 + h, x0, y0 + h]
            annotations.append({
                "id": len(annotations) + 1, "image_id": i + 1, "category_id": cat,
                "segmentation": [[float(v) for v in poly]], "area": float(w * h),
                "bbox": [x0, y0, w, h], "iscrowd": 0,
            })
        file_name = f"img{i}.png"
        Image.fromarray(canvas).save(folder / file_name)
        images.append({"id": i + 1, "file_name": file_name, "height": size, "width": size})
    path = folder / "instances.json"
    path.write_text(json.dumps(
        {"images": images, "annotations": annotations, "categories": CATEGORIES}
    ))
    return path


@pytest.fixture
def custom_dataset(tmp_path):
    json_file = _write_dataset(tmp_path)
    register_coco_instances(NAME, {}, str(json_file), str(tmp_path))
    yield NAME
    DatasetCatalog.remove(NAME)
    MetadataCatalog.remove(NAME)


def test_register_coco_instances_trains_and_evaluates(custom_dataset, tmp_path):
    assert MetadataCatalog.get(custom_dataset).get("thing_classes", None) is None
    cfg = make_tiny_cfg(
        str(tmp_path / "out"),
        **{
            "DATASETS.TRAIN": (custom_dataset,),
            "DATASETS.TEST": (custom_dataset,),
            "SOLVER.MAX_ITER": 3,
        },
    )
    trainer = Trainer(cfg)  # builds the model: no "Metadata has no ..." failure
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert len(trainer.storage.history("total_loss").values()) == 3
    model = trainer.model
    joint, _ = model.joint_vocabulary()
    assert joint.names == ("red brick", "blue tile") and joint.is_thing == (True, True)
    assert model.default_vocabulary.names == ("red brick", "blue_tile")  # the test dataset's
    results = Trainer.test(cfg, model)
    assert "segm" in results and 0.0 <= results["segm"]["AP"] <= 100.0
    assert MetadataCatalog.get(custom_dataset).thing_classes == ["red brick", "blue_tile"]
