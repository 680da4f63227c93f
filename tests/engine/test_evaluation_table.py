"""Evaluator table by metadata evaluator_type, and the results summary table."""
import json
from collections import OrderedDict

import pytest

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.evaluation import (
    CityscapesInstanceEvaluator,
    CityscapesSemSegEvaluator,
    COCOEvaluator,
    COCOPanopticEvaluator,
    SemSegEvaluator,
)

import omgseg.evaluation.build as evaluation_build
from omgseg.config import add_omgseg_config
from omgseg.evaluation import build_evaluator, format_results_table

CLASSES = ["person", "car", "sky"]


@pytest.fixture
def cfg():
    c = get_cfg()
    add_omgseg_config(c)
    c.MODEL.OMG.TEST.DETECTIONS_PER_IMAGE = 37
    return c


@pytest.fixture
def coco_json(tmp_path):
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "height": 8, "width": 8}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 16,
             "bbox": [0, 0, 4, 4], "segmentation": [[0, 0, 4, 0, 4, 4, 0, 4]]}
        ],
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "car"}],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    return str(path)


@pytest.fixture
def register(tmp_path):
    """register(evaluator_type, json_file=None, sem_seg=True) -> a fresh dataset name."""
    names = []

    def _register(evaluator_type, json_file=None, sem_seg=True):
        name = f"omgseg_test_eval_{len(names)}_{evaluator_type}"
        record = {"file_name": str(tmp_path / "a.jpg"), "image_id": 1}
        if sem_seg:
            record["sem_seg_file_name"] = str(tmp_path / "a.png")
        DatasetCatalog.register(name, lambda: [dict(record)])
        meta = dict(
            evaluator_type=evaluator_type,
            stuff_classes=CLASSES,
            thing_classes=CLASSES[:2],
            thing_dataset_id_to_contiguous_id={1: 0, 2: 1},
            stuff_dataset_id_to_contiguous_id={1: 0, 2: 1, 3: 2},
            ignore_label=255,
            label_divisor=1000,
            panoptic_root=str(tmp_path),
            panoptic_json=str(tmp_path / "panoptic.json"),
        )
        if evaluator_type is None:
            del meta["evaluator_type"]
        if json_file:
            meta["json_file"] = json_file
        MetadataCatalog.get(name).set(**meta)
        names.append(name)
        return name

    yield _register
    for name in names:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def classes_of(evaluators):
    return [type(e) for e in evaluators._evaluators]


def set_switches(cfg, panoptic, instance, semantic):
    cfg.MODEL.OMG.TEST.PANOPTIC_ON = panoptic
    cfg.MODEL.OMG.TEST.INSTANCE_ON = instance
    cfg.MODEL.OMG.TEST.SEMANTIC_ON = semantic


@pytest.mark.parametrize("evaluator_type", ["coco_panoptic_seg", "ade20k_panoptic_seg"])
def test_panoptic_types(cfg, register, coco_json, tmp_path, evaluator_type):
    name = register(evaluator_type, json_file=coco_json)
    evs = build_evaluator(cfg, name, str(tmp_path / "out"))
    assert classes_of(evs) == [COCOPanopticEvaluator, COCOEvaluator, SemSegEvaluator]
    coco_eval = evs._evaluators[1]
    assert coco_eval._use_fast_impl is False
    assert tuple(coco_eval._tasks) == ("segm",)
    assert coco_eval._max_dets_per_image == [1, 10, 37]

    for switches, expected in [
        ((True, False, False), [COCOPanopticEvaluator]),
        ((False, True, False), [COCOEvaluator]),
        ((False, False, True), [SemSegEvaluator]),
        ((True, True, False), [COCOPanopticEvaluator, COCOEvaluator]),
    ]:
        set_switches(cfg, *switches)
        assert classes_of(build_evaluator(cfg, name, str(tmp_path / "out"))) == expected

    # No instance json in the metadata: no mask AP evaluator.
    set_switches(cfg, True, True, True)
    no_json = register(evaluator_type)
    assert classes_of(build_evaluator(cfg, no_json, str(tmp_path / "out"))) == [
        COCOPanopticEvaluator,
        SemSegEvaluator,
    ]
    # Semantic evaluation without semantic ground truth: a clear error.
    no_sem = register(evaluator_type, sem_seg=False)
    with pytest.raises(ValueError, match="sem_seg_file_name"):
        build_evaluator(cfg, no_sem, str(tmp_path / "out"))


def test_coco_and_sem_seg_types(cfg, register, coco_json, tmp_path):
    coco = register("coco", json_file=coco_json)
    evs = build_evaluator(cfg, coco, str(tmp_path / "out"))
    assert classes_of(evs) == [COCOEvaluator]
    assert evs._evaluators[0]._use_fast_impl is False

    sem = register("sem_seg")
    assert classes_of(build_evaluator(cfg, sem, str(tmp_path / "out"))) == [SemSegEvaluator]

    set_switches(cfg, True, False, True)  # an instance-only dataset with instances off
    with pytest.raises(ValueError, match="switches"):
        build_evaluator(cfg, coco, str(tmp_path / "out"))


def test_cityscapes_type(cfg, register, tmp_path, monkeypatch):
    name = register("cityscapes_panoptic_seg")
    set_switches(cfg, True, False, False)
    assert classes_of(build_evaluator(cfg, name, str(tmp_path))) == [COCOPanopticEvaluator]

    # cityscapesscripts missing -> clear error when a Cityscapes evaluator is needed.
    monkeypatch.setattr(evaluation_build.importlib.util, "find_spec", lambda n, *a: None)
    set_switches(cfg, True, True, True)
    with pytest.raises(ImportError, match="cityscapesscripts"):
        build_evaluator(cfg, name, str(tmp_path))

    # cityscapesscripts present -> the Cityscapes evaluators (constructed, not run).
    monkeypatch.setattr(evaluation_build.importlib.util, "find_spec", lambda n, *a: object())
    assert classes_of(build_evaluator(cfg, name, str(tmp_path))) == [
        CityscapesSemSegEvaluator,
        CityscapesInstanceEvaluator,
        COCOPanopticEvaluator,
    ]


def test_unknown_type(cfg, register, tmp_path):
    for evaluator_type in ("nonsense_type", None):
        name = register(evaluator_type)
        with pytest.raises(NotImplementedError, match=f"{name}.*{evaluator_type}"):
            build_evaluator(cfg, name, str(tmp_path))


def test_format_results_table():
    results = OrderedDict(
        [
            (
                "coco_val",
                OrderedDict(
                    panoptic_seg={"PQ": 52.123, "PQ_th": 58.5, "PQ_st": 42.25, "SQ": 83.0,
                                  "RQ": 62.0, "PQ_th_extra": 1.0},
                    segm={"AP": 44.4, "AP50": 66.6, "AP75": 47.7, "APs": 1.0},
                    sem_seg={"mIoU": 61.9, "fwIoU": 70.1, "mACC": 72.3, "pACC": 80.4},
                ),
            ),
            ("ade_val", OrderedDict(sem_seg={"mIoU": 31.5, "fwIoU": 1.0, "mACC": 2.0,
                                             "pACC": 3.0})),
        ]
    )
    table = format_results_table(results)
    lines = table.splitlines()
    assert len(lines) == 4  # header, rule, two datasets
    for word in ("dataset", "PQ", "PQ_th", "PQ_st", "SQ", "RQ", "mask AP", "AP50", "AP75",
                 "mIoU", "fwIoU", "mACC", "pACC"):
        assert word in lines[0]
    for number in ("52.12", "58.50", "42.25", "83.00", "62.00", "44.40", "66.60", "47.70",
                   "61.90", "70.10", "72.30", "80.40"):
        assert number in lines[2]
    assert "coco_val" in lines[2] and "ade_val" in lines[3] and "31.50" in lines[3]
    assert "-" in lines[3].split("|")[2]  # no PQ for ADE

    # Detectron2 flattens a single dataset's results.
    flat = format_results_table(OrderedDict(sem_seg={"mIoU": 12.345}))
    assert "mIoU" in flat and "12.35" in flat and "PQ" not in flat
    assert format_results_table(OrderedDict()) == "(no results)"
