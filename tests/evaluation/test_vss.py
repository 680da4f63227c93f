"""VSS: mIoU with Detectron2's ``SemSegEvaluator`` over all frames, VC_n as VSPW's
``VC_perclip.py`` defines it (hand-computed), and the evaluator end to end on the synthetic video
dataset."""
import json
import math
import os
import uuid

import numpy as np
import pytest
import torch
from PIL import Image

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.evaluation import SemSegEvaluator

from omgseg.evaluation.video_panoptic import (
    VideoPanopticEvaluator,
    VideoSemSegEvaluator,
    compute_vss,
    video_panoptic_evaluators,
)
from omgseg.evaluation.video_panoptic.frames import gt_semantic_frames
from omgseg.evaluation.video_panoptic.vss import window_consistency

NAMES = ["road", "car", "sky"]


def up(rows):
    """A 2x2 label map made 4x4 (every label a 2x2 block): ratios are unchanged."""
    return np.kron(np.array(rows, dtype=np.int64), np.ones((2, 2), dtype=np.int64))


def test_vc_hand_computed_and_the_official_window_bounds():
    # gt frames 0 and 1 agree on 3 of 4 blocks; the prediction is constant on 2 of those 3.
    gts = [up([[0, 0], [1, 1]]), up([[0, 1], [1, 1]]), up([[2, 2], [2, 2]])]
    preds = [up([[0, 0], [1, 1]]), up([[0, 0], [0, 1]]), up([[1, 2], [0, 1]])]
    # n = 2, 3 frames: windows start at range(3 - 2) = [0] only -> frames (0, 1):
    # gt_common = 3 blocks, gt_common & pred_common = 2 blocks -> VC2 = 2/3.
    res = compute_vss([(gts, preds)], NAMES, vc_windows=(2, 3))
    assert res["VC2"] == pytest.approx(100 * 2 / 3)
    # n = 3 with 3 frames: len <= n, the video is skipped -> no window at all.
    assert math.isnan(res["VC3"])
    # The last frame is never in a scored window: changing it changes nothing.
    preds[2] = up([[0, 0], [0, 0]])
    assert compute_vss([(gts, preds)], NAMES, vc_windows=(2,))["VC2"] == pytest.approx(
        100 * 2 / 3)


def test_vc_counts_ignored_pixels_and_does_not_compare_with_the_ground_truth():
    # gt all ignore (255) and constant; the prediction is wrong everywhere but constant.
    gts = [np.full((4, 4), 255)] * 3
    preds = [np.zeros((4, 4), dtype=np.int64)] * 3
    assert compute_vss([(gts, preds)], NAMES, vc_windows=(2,))["VC2"] == pytest.approx(100.0)


def test_vc_is_the_nanmean_over_all_windows_of_all_videos():
    const = [up([[0, 1], [1, 2]])] * 4
    flicker = [up([[0, 1], [1, 2]]), up([[1, 0], [2, 1]])] * 2
    # Video A (4 frames, constant prediction): windows 0, 1 -> scores 1, 1.
    # Video B (3 frames, the prediction changes every block): window 0 -> 0.
    # Window-weighted: (1 + 1 + 0) / 3; a mean of per-video means would be 0.5.
    res = compute_vss([(const, const), (const[:3], flicker[:3])], NAMES, vc_windows=(2,))
    assert res["VC2"] == pytest.approx(100 * 2 / 3)
    # A window whose gt has no constant pixel scores NaN and is left out by nanmean.
    assert math.isnan(window_consistency([up([[0, 0], [0, 0]]), up([[1, 1], [1, 1]])],
                                         [const[0], const[0]]))
    changing_gt = [up([[0, 0], [0, 0]]), up([[1, 1], [1, 1]]), up([[2, 2], [2, 2]])]
    res = compute_vss([(const, const), (changing_gt, const[:3])], NAMES, vc_windows=(2,))
    assert res["VC2"] == pytest.approx(100.0)


def test_miou_hand_computed_with_detectron2_semantics():
    # Frame 1: gt [[0, 0], [1, 1]], pred [[0, 1], [1, 1]]. Frame 2: gt [[0, 0], [ign, ign]],
    # pred [[2, 0], [0, 0]] (predictions on ignored pixels count nowhere).
    # road: tp 2, gt 4, pred 2 -> IoU 2 / 4; car: tp 2, gt 2, pred 3 -> 2 / 3; sky has no gt
    # pixel -> left out (Detectron2 >= 2022-07). mIoU = (1/2 + 2/3) / 2; pACC = 4 / 6.
    gts = [up([[0, 0], [1, 1]]), up([[0, 0], [255, 255]])]
    preds = [up([[0, 1], [1, 1]]), up([[2, 0], [0, 0]])]
    res = compute_vss([(gts, preds)], NAMES, vc_windows=())
    assert res["mIoU"] == pytest.approx(100 * (1 / 2 + 2 / 3) / 2)
    assert res["pACC"] == pytest.approx(100 * 4 / 6)
    assert res["IoU-road"] == pytest.approx(50.0) and math.isnan(res["IoU-sky"])


def test_miou_equals_detectron2_semsegevaluator_on_the_frames_as_images(tmp_path):
    rng = np.random.default_rng(0)
    videos, records = [], []
    for v in range(3):
        gts, preds = [], []
        for t in range(int(rng.integers(1, 5))):
            gt = rng.integers(0, 3, size=(5, 6))
            gt[rng.random(gt.shape) < 0.2] = 255
            pred = np.where(rng.random(gt.shape) < 0.7, np.where(gt == 255, 0, gt),
                            rng.integers(0, 3, size=gt.shape))
            path = str(tmp_path / f"{v}_{t}.png")
            Image.fromarray(gt.astype(np.uint8)).save(path)
            records.append({"file_name": f"{v}_{t}.jpg", "sem_seg_file_name": path})
            gts.append(gt)
            preds.append(pred)
        videos.append((gts, preds))
    name = f"test_vss_frames_{uuid.uuid4().hex[:8]}"
    DatasetCatalog.register(name, lambda: records)
    MetadataCatalog.get(name).set(stuff_classes=NAMES, ignore_label=255)
    d2 = SemSegEvaluator(name, distributed=False)
    d2.reset()
    for (_, preds), start in zip(videos, np.cumsum([0] + [len(g) for g, _ in videos])):
        for t, pred in enumerate(preds):
            scores = torch.nn.functional.one_hot(torch.from_numpy(pred), 3).permute(2, 0, 1)
            d2.process([records[start + t]], [{"sem_seg": scores.float()}])
    expected = d2.evaluate()["sem_seg"]
    res = compute_vss(videos, NAMES, vc_windows=())
    for key in ("mIoU", "fwIoU", "mACC", "pACC", "IoU-road", "IoU-car", "IoU-sky"):
        assert res[key] == pytest.approx(expected[key], nan_ok=True), key


# ---- the evaluator on the synthetic video dataset -----------------------------------------
VPS_NAME = "omg_shapes_video_val_vps"


def _gt_semantic_outputs(records, ignore_label):
    """Each record's ground-truth semantic maps as predictions (VOID predicted as class 0)."""
    outputs = []
    for record in records:
        frames = [{"sem_seg": torch.from_numpy(np.where(gt == ignore_label, 0, gt))}
                  for gt in gt_semantic_frames(record, ignore_label)]
        outputs.append({"video_id": record["video_id"], "frames": frames})
    return outputs


def test_evaluator_ground_truth_scores_100(synthetic_root, tmp_path):
    records = DatasetCatalog.get(VPS_NAME)
    meta = MetadataCatalog.get(VPS_NAME)
    outputs = _gt_semantic_outputs(records, meta.ignore_label)
    evaluator = VideoSemSegEvaluator(VPS_NAME, output_dir=str(tmp_path), vc_windows=(2, 4, 16))
    evaluator.reset()
    evaluator.process([{"video_id": r["video_id"]} for r in records], outputs)
    res = evaluator.evaluate()["vss"]
    for key in ("mIoU", "pACC", "VC2", "VC4"):
        assert res[key] == pytest.approx(100.0), key
    assert math.isnan(res["VC16"])  # every synthetic video has <= 16 frames
    with open(tmp_path / "video_semseg_evaluation.json") as f:
        assert json.load(f)["num_videos"] == len(records)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]

    # Scores [K, H, W] work like label maps; a frame that flickers lowers VC but not mIoU
    # more than its own pixels.
    flicker = {"video_id": outputs[0]["video_id"], "frames": []}
    for t, f in enumerate(outputs[0]["frames"]):
        labels = f["sem_seg"]
        if t == 1:
            labels = (labels + 1) % len(meta.stuff_classes)
        flicker["frames"].append({"sem_seg": torch.nn.functional.one_hot(
            labels, len(meta.stuff_classes)).permute(2, 0, 1).float()})
    evaluator.reset()
    evaluator.process([{}], [flicker])
    res = evaluator.evaluate()["vss"]
    assert res["VC2"] < 100.0 and res["mIoU"] < 100.0


def test_builder_follows_the_test_switches(synthetic_root, tiny_cfg):
    cfg = tiny_cfg.clone()
    cfg.MODEL.OMG.TEST.PANOPTIC_ON = True
    cfg.MODEL.OMG.TEST.SEMANTIC_ON = True
    evaluators = video_panoptic_evaluators(cfg, VPS_NAME, "")
    assert [type(e) for e in evaluators] == [VideoPanopticEvaluator, VideoSemSegEvaluator]
    cfg.MODEL.OMG.TEST.SEMANTIC_ON = False
    assert [type(e) for e in video_panoptic_evaluators(cfg, VPS_NAME, "")] == [
        VideoPanopticEvaluator]
