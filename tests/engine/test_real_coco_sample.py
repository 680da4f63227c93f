"""Real COCO photos and panoptic ground truth (../shared/data/coco-panoptic-sample, registered by
the ``coco_sample`` fixture of tests/conftest.py; skipped when the folder is absent).

Loads through the registered dataset, maps into 2-frame pseudo-videos, runs the model forward and
backward, and checks the evaluation path: ground truth turned into query logits, through our
post-processing and Detectron2's evaluators (panopticapi PQ, official COCOeval, mIoU) scores 100.
"""
import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.evaluation import COCOEvaluator, COCOPanopticEvaluator, SemSegEvaluator
from detectron2.modeling import build_model
from panopticapi.utils import rgb2id
from PIL import Image

from omgseg.data.dataset_mappers.pseudo_video_mapper import PseudoVideoLSJDatasetMapper
from omgseg.modeling.meta_arch import Vocabulary
from omgseg.modeling.postprocessing import (
    instance_inference,
    panoptic_inference,
    semantic_inference,
)

NAME = "coco_panoptic_sample"


@pytest.fixture(scope="module")
def records(coco_sample):
    assert coco_sample == NAME
    dicts = DatasetCatalog.get(NAME)
    assert len(dicts) == 2
    return dicts


def _gt_as_logits(record, num_classes):
    """One query per ground-truth segment: mask logits +/-20, class logit 20 on its category."""
    pan = rgb2id(np.asarray(Image.open(record["pan_seg_file_name"]), dtype=np.uint32))
    segs = record["segments_info"]  # crowd regions too: semantic GT labels them
    mask_pred = torch.full((len(segs), *pan.shape), -20.0)
    mask_cls = torch.zeros((len(segs), num_classes + 1))
    for q, s in enumerate(segs):
        mask_pred[q][torch.from_numpy(pan == s["id"])] = 20.0
        mask_cls[q, s["category_id"]] = 20.0
    return mask_cls, mask_pred


def test_gt_fed_back_scores_100_on_pq_ap_miou(records, tmp_path):
    meta = MetadataCatalog.get(NAME)
    vocab = Vocabulary.from_metadata(meta)
    assert len(vocab) == 133 and sum(vocab.is_thing) == 80
    pq_eval = COCOPanopticEvaluator(NAME, str(tmp_path / "pq"))
    ap_eval = COCOEvaluator(NAME, tasks=("segm",), distributed=False,
                            output_dir=str(tmp_path / "ap"), use_fast_impl=False)
    ss_eval = SemSegEvaluator(NAME, distributed=False, output_dir=str(tmp_path / "ss"))
    for e in (pq_eval, ap_eval, ss_eval):
        e.reset()
    for record in records:
        mask_cls, mask_pred = _gt_as_logits(record, len(vocab))
        inputs = [{"file_name": record["file_name"], "image_id": record["image_id"]}]
        pan = panoptic_inference(mask_cls, mask_pred, is_thing=vocab.is_thing,
                                 object_mask_threshold=0.0, overlap_threshold=0.8)
        inst = instance_inference(mask_cls, mask_pred, topk=100, thing_mask=vocab.is_thing)
        sem = semantic_inference(mask_cls, mask_pred)
        pq_eval.process(inputs, [{"panoptic_seg": pan}])
        ap_eval.process(inputs, [{"instances": inst}])
        ss_eval.process(inputs, [{"sem_seg": sem}])
    pq = pq_eval.evaluate()["panoptic_seg"]
    assert pq["PQ"] == pytest.approx(100.0) and pq["SQ"] == pytest.approx(100.0)
    ap = ap_eval.evaluate()["segm"]
    assert ap["AP"] == pytest.approx(100.0) and ap["AP50"] == pytest.approx(100.0)
    ss = ss_eval.evaluate()["sem_seg"]
    assert ss["mIoU"] == pytest.approx(100.0)


def test_a_wrong_prediction_scores_lower(records, tmp_path):
    """The evaluation is not vacuous: swapping classes of the things drops PQ."""
    meta = MetadataCatalog.get(NAME)
    vocab = Vocabulary.from_metadata(meta)
    pq_eval = COCOPanopticEvaluator(NAME, str(tmp_path / "pq"))
    pq_eval.reset()
    for record in records:
        mask_cls, mask_pred = _gt_as_logits(record, len(vocab))
        mask_cls = mask_cls.roll(1, dims=1)  # every segment gets the next class id
        pan = panoptic_inference(mask_cls, mask_pred, is_thing=vocab.is_thing,
                                 object_mask_threshold=0.0, overlap_threshold=0.8)
        pq_eval.process([{"file_name": record["file_name"], "image_id": record["image_id"]}],
                        [{"panoptic_seg": pan}])
    assert pq_eval.evaluate()["panoptic_seg"]["PQ"] < 20.0


def test_map_forward_backward_on_real_photos(records, tiny_cfg):
    cfg = tiny_cfg.clone()
    cfg.merge_from_list(["INPUT.LSJ.CROP_SIZE", [128, 160], "INPUT.LSJ.MIN_SCALE", 0.3,
                         "INPUT.LSJ.MAX_SCALE", 0.5])
    mapper = PseudoVideoLSJDatasetMapper(cfg, is_train=True)
    batch = []
    for record in records:
        record = dict(record, dataset_name=NAME)
        clip = mapper(record)
        assert clip["video"].shape[:2] == (2, 3) and clip["video"].dtype == torch.uint8
        assert len(clip["instances"]) == 2
        assert torch.equal(clip["instances"][0].gt_ids, clip["instances"][1].gt_ids)
        batch.append(clip)
    torch.manual_seed(0)
    model = build_model(cfg)
    model.train()
    losses = model(batch)
    total = sum(losses.values())
    assert torch.isfinite(total) and total > 0
    total.backward()
    assert model.mask_decoder.query_feat.weight.grad.abs().sum() > 0
