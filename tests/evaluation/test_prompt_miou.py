"""Interactive mIoU (COCO-SAM protocol): hand-made masks and prompts, a perfect predictor, known
IoUs, and the evaluator / mapper tables on the synthetic prompt split."""
import numpy as np
import pytest
import torch
from PIL import Image

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data import transforms as T
from detectron2.evaluation import inference_on_dataset
from detectron2.structures import Instances

from conftest import make_tiny_cfg
from omgseg.data.build import build_test_mapper
from omgseg.data.dataset_mappers import PromptTestDatasetMapper
from omgseg.evaluation import EVALUATOR_BUILDERS, build_evaluator, format_results_table
from omgseg.evaluation.prompt import PromptMIoUEvaluator, mask_iou, summarize_prompt_ious

H, W = 40, 60


def test_mask_iou_by_hand():
    a = torch.zeros(4, 4, dtype=torch.bool)
    b = torch.zeros(4, 4, dtype=torch.bool)
    a[:2] = True  # 8 px
    b[1:3] = True  # 8 px, 4 shared
    assert mask_iou(a, b) == pytest.approx(4 / 12)
    assert mask_iou(a, a) == pytest.approx(1.0)
    assert mask_iou(torch.zeros_like(a), torch.zeros_like(a)) == 0.0  # 0 / (0 + 1e-8)
    with pytest.raises(ValueError, match="differ in size"):
        mask_iou(a, torch.zeros(3, 4, dtype=torch.bool))


def test_summary_is_a_mean_over_all_segments_not_images():
    # image 1: one segment IoU 1.0; image 2: three segments IoU 0 -> mean 25, not (100+0)/2
    out = summarize_prompt_ious({"point": [1.0, 0.0, 0.0, 0.0], "box": [1.0, 1.0, 0.5, 0.5]})
    assert out == {"mIoU_point": 25.0, "mIoU_box": 75.0, "num_segments": 4.0}
    assert summarize_prompt_ious({}) == {}


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    root = tmp_path_factory.mktemp("miou")
    ids = np.full((H, W), 3, np.int64)  # stuff segment 3
    ids[5:25, 5:25] = 1  # 400 px
    ids[10:30, 35:55] = 2  # 400 px
    ids[35:40, 0:10] = 4  # crowd
    rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)
    Image.fromarray(rgb).save(root / "pan.png")
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(root / "img.jpg")
    segs = [dict(id=i, category_id=0, iscrowd=int(i == 4), isthing=True) for i in (1, 2, 3, 4)]
    rec = dict(file_name=str(root / "img.jpg"), pan_seg_file_name=str(root / "pan.png"),
               image_id=7, height=H, width=W, segments_info=segs)
    return rec, ids


def _mapped(record):
    mapper = PromptTestDatasetMapper(augmentations=[T.ResizeShortestEdge(80, 1000)],
                                     image_format="RGB")
    return mapper(record)


def _outputs(masks):
    inst = Instances((H, W))
    inst.pred_masks = torch.as_tensor(np.asarray(masks), dtype=torch.bool)
    return [{"prompt_instances": inst}]


def test_perfect_predictor_scores_100(record):
    rec, ids = record
    inp = _mapped(rec)
    assert inp["prompt_segment_ids"].tolist() == [1, 2, 3] * 3  # crowd left out
    perfect = [ids == int(i) for i in inp["prompt_segment_ids"]]
    ev = PromptMIoUEvaluator("x", distributed=False)
    ev.reset()
    ev.process([inp], _outputs(perfect))
    res = ev.evaluate()["prompt"]
    assert res == {"mIoU_point": pytest.approx(100.0), "mIoU_box": pytest.approx(100.0),
                   "mIoU_scribble": pytest.approx(100.0), "num_segments": 3.0}


def test_known_ious_and_missing_predictions(record):
    rec, ids = record
    inp = _mapped(rec)
    preds = []
    for i, mode in zip(inp["prompt_segment_ids"].tolist(), inp["prompt_modes"]):
        m = ids == i
        if mode == "point" and i == 1:
            m = m.copy()
            m[5:15, 5:25] = False  # half of segment 1: IoU 0.5
        if mode == "box" and i == 2:
            m = np.zeros_like(m)  # empty prediction: IoU 0
        preds.append(m)
    ev = PromptMIoUEvaluator("x", distributed=False)
    ev.process([inp], _outputs(preds))
    res = ev.evaluate()["prompt"]
    assert res["mIoU_point"] == pytest.approx(100 * (0.5 + 1 + 1) / 3)
    assert res["mIoU_box"] == pytest.approx(100 * 2 / 3)
    ev.reset()
    ev.process([inp], _outputs(preds[:3]))  # the box and scribble answers are missing
    res = ev.evaluate()["prompt"]
    assert res["mIoU_box"] == 0.0 and res["mIoU_scribble"] == 0.0


def test_evaluator_rejects_prompts_of_unknown_segments(record):
    rec, ids = record
    inp = dict(_mapped(rec))
    inp["prompt_segment_ids"] = torch.tensor([4] * 9)  # the crowd segment
    ev = PromptMIoUEvaluator("x", distributed=False)
    with pytest.raises(ValueError, match="segment 4"):
        ev.process([inp], _outputs([ids == 1] * 9))


def test_tables_and_headline_columns():
    assert "coco_sam" in EVALUATOR_BUILDERS
    table = format_results_table({"prompt": {"mIoU_point": 81.234, "mIoU_box": 70.0,
                                             "mIoU_scribble": 60.0}}, "coco_2017_val_sam")
    assert "mIoU point" in table and "81.23" in table and "mIoU scribble" in table


def test_synthetic_prompt_split_end_to_end(tmp_path, synthetic_root):
    """Tiny random model on omg_shapes_val_prompt through the tables: mapper, model prompt
    branch, evaluator; every segment of the split scored once per mode."""
    name = "omg_shapes_val_prompt"
    cfg = make_tiny_cfg(str(tmp_path), **{"DATASETS.TEST": f"('{name}',)"})
    from detectron2.modeling import build_model

    torch.manual_seed(0)
    model = build_model(cfg).eval()
    mapper = build_test_mapper(cfg, name)
    assert isinstance(mapper, PromptTestDatasetMapper)
    records = DatasetCatalog.get(name)
    evaluator = build_evaluator(cfg, name, str(tmp_path))
    res = inference_on_dataset(model, [[mapper(r)] for r in records], evaluator)["prompt"]
    num = sum(len(r["segments_info"]) for r in records)
    assert res["num_segments"] == num
    for mode in ("point", "box", "scribble"):
        assert 0.0 <= res[f"mIoU_{mode}"] <= 100.0
    assert MetadataCatalog.get(name).evaluator_type == "coco_sam"
