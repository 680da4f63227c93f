"""VPQ as VIPSeg's ``eval_vpq_vspw.py`` defines it: hand-computed toy videos (4x4 maps), the
window / void / crowd / area rules, VPQ_1 == image PQ (panopticapi), the official file layout,
and the evaluator end to end on the synthetic video dataset."""
import copy
import json
import logging
import math
import os

import numpy as np
import pytest
import torch
from panopticapi.evaluation import pq_compute_single_core
from panopticapi.utils import id2rgb
from PIL import Image

from omgseg.evaluation.video_panoptic import (
    VideoPanopticEvaluator,
    compute_stq,
    compute_stq_from_files,
    compute_vpq,
    compute_vpq_from_files,
)
from omgseg.evaluation.video_panoptic.frames import read_panoptic_png

THING, STUFF = 1, 2
CATEGORIES = {THING: {"id": THING, "name": "car", "isthing": 1},
              STUFF: {"id": STUFF, "name": "road", "isthing": 0}}


def frame(rows, segments):
    """A panoptic frame from a list of rows of ids and ``{id: category}`` (or full dicts)."""
    ids = np.array(rows, dtype=np.int64)
    segs = []
    for sid, info in segments.items():
        info = info if isinstance(info, dict) else {"category_id": info}
        segs.append(dict({"id": sid, "iscrowd": 0}, **info))
    return ids, segs


# Two cars (ids 1, 2) over a road (id 3); the same ground truth in every frame.
GT_ROWS = [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 3, 3], [3, 3, 3, 3]]
GT_SEGS = {1: THING, 2: THING, 3: STUFF}
SWAPPED_ROWS = [[12, 12, 11, 11], [12, 12, 11, 11], [13, 13, 13, 13], [13, 13, 13, 13]]
PRED_ROWS = [[11, 11, 12, 12], [11, 11, 12, 12], [13, 13, 13, 13], [13, 13, 13, 13]]
PRED_SEGS = {11: THING, 12: THING, 13: STUFF}


def test_hand_computed_id_swap_between_two_frames():
    # Frame 0 perfect; in frame 1 the two predicted car ids are swapped.
    # VPQ@1: every frame is perfect -> car tp 4 (IoU 1 each), road tp 2 -> 100.
    # VPQ@2 (one window): gt tube 1 = 8 px, pred tube 11 = 8 px (left in frame 0, right in
    #   frame 1), intersection 4 -> IoU 4 / (8 + 8 - 4) = 1/3 <= 0.5: no car TP; car fn 2,
    #   fp 2 -> PQ 0; road tube IoU 1 -> PQ 1. VPQ@2 = 50, VPQ_th@2 = 0, VPQ_st@2 = 100.
    # Final VPQ over the windows (1, 2) = (100 + 50) / 2 = 75.
    gt = [frame(GT_ROWS, GT_SEGS), frame(GT_ROWS, GT_SEGS)]
    pred = [frame(PRED_ROWS, PRED_SEGS), frame(SWAPPED_ROWS, PRED_SEGS)]
    res = compute_vpq([(gt, pred)], CATEGORIES, windows=(1, 2))
    assert res["VPQ@1"] == pytest.approx(100.0)
    assert res["VPQ@2"] == pytest.approx(50.0)
    assert res["VPQ_th@2"] == pytest.approx(0.0)
    assert res["VPQ_st@2"] == pytest.approx(100.0)
    assert res["VPQ"] == pytest.approx(75.0)
    assert res["VPQ_th"] == pytest.approx(50.0) and res["VPQ_st"] == pytest.approx(100.0)


def _moving_video(num_frames, switch_at=None):
    """Two cars moving right by one column per frame over road; the prediction equals the
    ground truth with other ids, and from ``switch_at`` on the two predicted car ids swap."""
    gt, pred = [], []
    for t in range(num_frames):
        ids = np.full((4, 4), 3)
        ids[0, t % 4] = 1
        ids[2:, (t + 2) % 4] = 2
        gt.append(frame(ids.tolist(), GT_SEGS))
        p = np.select([ids == 1, ids == 2], [11, 12], 13)
        if switch_at is not None and t >= switch_at:
            p = np.select([ids == 1, ids == 2], [12, 11], 13)
        pred.append(frame(p.tolist(), PRED_SEGS))
    return gt, pred


def test_perfect_prediction_scores_100_at_every_window():
    res = compute_vpq([_moving_video(9)], CATEGORIES)
    for key in ("VPQ", "VPQ_th", "VPQ_st", "VPQ@1", "VPQ@2", "VPQ@4", "VPQ@6", "VPQ@8"):
        assert res[key] == pytest.approx(100.0), key


def test_swapping_two_ids_halfway_lowers_vpq_n_but_not_vpq_1():
    res = compute_vpq([_moving_video(8, switch_at=4)], CATEGORIES)
    assert res["VPQ@1"] == pytest.approx(100.0)
    for n in (2, 4, 6, 8):
        assert res[f"VPQ@{n}"] < 100.0 - 1e-6, n
        assert res[f"VPQ_st@{n}"] == pytest.approx(100.0)
    # VPQ@8: one window. gt car 1 = 8 px (1 per frame), gt car 2 = 16 px (2 per frame); pred
    # 11 = car 1 in frames 0-3 + car 2 in frames 4-7 = 12 px, pred 12 likewise 12 px.
    # IoU(1, 11) = 4 / (8 + 12 - 4) = 0.25, IoU(2, 11) = 8 / (16 + 12 - 8) = 0.4, the same with
    # 12: no TP -> car PQ 0; road exact -> VPQ@8 = (0 + 100) / 2.
    assert res["VPQ@8"] == pytest.approx(50.0)


def test_a_video_shorter_than_the_window_contributes_nothing():
    # Video X: 1 frame whose prediction is all wrong; video Y: the 2-frame swap (VPQ@2 = 50).
    x_gt = [frame(GT_ROWS, GT_SEGS)]
    x_pred = [frame(PRED_ROWS, {11: STUFF, 12: STUFF, 13: THING})]
    y = ([frame(GT_ROWS, GT_SEGS)] * 2,
         [frame(PRED_ROWS, PRED_SEGS), frame(SWAPPED_ROWS, PRED_SEGS)])
    both = compute_vpq([(x_gt, x_pred), y], CATEGORIES, windows=(1, 2))
    only_y = compute_vpq([y], CATEGORIES, windows=(1, 2))
    assert both["VPQ@2"] == pytest.approx(only_y["VPQ@2"]) == pytest.approx(50.0)
    assert both["VPQ@1"] < only_y["VPQ@1"]
    # Only videos shorter than the window: no number (the official script divides by zero).
    res = compute_vpq([(x_gt, x_pred)], CATEGORIES, windows=(1, 2))
    assert math.isnan(res["VPQ@2"]) and math.isnan(res["VPQ"])
    assert not math.isnan(res["VPQ@1"])


def test_void_is_removed_from_the_union():
    # gt: car 1 on the top-right 2x2, VOID (0) top-left, road below. The predicted car covers
    # the whole top half: 8 px, 4 of them on VOID. IoU = 4 / (8 + 4 - 4 - 4) = 1 (without
    # the VOID rule it would be 4 / 8 = 0.5, not a TP). Road exact. VPQ = 100.
    gt = frame([[0, 0, 1, 1], [0, 0, 1, 1], [3, 3, 3, 3], [3, 3, 3, 3]], {1: THING, 3: STUFF})
    pred = frame([[7, 7, 7, 7], [7, 7, 7, 7], [8, 8, 8, 8], [8, 8, 8, 8]], {7: THING, 8: STUFF})
    res = compute_vpq([([gt], [pred])], CATEGORIES, windows=(1,))
    assert res["VPQ@1"] == pytest.approx(100.0)


def test_a_false_positive_mostly_on_void_is_ignored():
    gt = frame([[0, 0, 0, 0], [0, 0, 0, 0], [3, 3, 3, 3], [3, 3, 3, 3]], {3: STUFF})
    # Car 7: 9 px, 8 on VOID (8/9 > 0.5): not a FP. Road 8: 7 of the 8 road px -> IoU 7/8.
    # Car has no tp/fp/fn -> left out; VPQ = road PQ = 87.5.
    pred = frame([[7, 7, 7, 7], [7, 7, 7, 7], [7, 8, 8, 8], [8, 8, 8, 8]], {7: THING, 8: STUFF})
    res = compute_vpq([([gt], [pred])], CATEGORIES, windows=(1,))
    assert res["VPQ@1"] == pytest.approx(87.5)
    assert math.isnan(res["VPQ_th@1"])
    # Exactly half on VOID (4 of 8) is a FP: car PQ 0. Road 8 = 4 px: IoU 4 / 8 = 0.5, not a TP
    # -> road fn 1, fp 1 -> PQ 0. VPQ = 0.
    pred = frame([[0, 0, 0, 0], [7, 7, 7, 7], [7, 7, 7, 7], [8, 8, 8, 8]], {7: THING, 8: STUFF})
    res = compute_vpq([([gt], [pred])], CATEGORIES, windows=(1,))
    assert res["VPQ@1"] == pytest.approx(0.0)
    assert res["VPQ_th@1"] == pytest.approx(0.0)  # the car FP counts (not "no stats")


def test_crowd_rules():
    # gt: crowd car 1 (top-left 2x2), car 2 (top-right), road 3.
    gt = frame(GT_ROWS, {1: {"category_id": THING, "iscrowd": 1}, 2: THING, 3: STUFF})
    rows = [[7, 7, 8, 8], [7, 7, 8, 8], [7, 9, 9, 9], [9, 9, 9, 9]]
    # Car 7 (5 px: 4 on the crowd car, 1 on road) cannot match the crowd and is not a FP
    # ((0 + 4) / 5 > 0.5); the crowd is no FN. Car 8 exact; road 9 = 7 of 8 px -> IoU 7/8.
    # car PQ 1, road PQ 0.875 -> VPQ = 93.75.
    res = compute_vpq([([gt], [frame(rows, {7: THING, 8: THING, 9: STUFF})])], CATEGORIES,
                      windows=(1,))
    assert res["VPQ@1"] == pytest.approx(93.75)
    # The crowd region only excuses predictions of its own category: a road 7 there is a road
    # FP -> road PQ 0.875 / (1 + 0.5) = 0.58333; car PQ 1 -> VPQ = 79.1667.
    res = compute_vpq([([gt], [frame(rows, {7: STUFF, 8: THING, 9: STUFF})])], CATEGORIES,
                      windows=(1,))
    assert res["VPQ@1"] == pytest.approx((100.0 + 100.0 * 0.875 / 1.5) / 2)


def test_ground_truth_areas_are_the_listed_ones():
    # The official script reads the gt ``area`` from the json: listing twice the true area of
    # car 1 makes a perfect car prediction IoU 4 / (4 + 8 - 4) = 0.5 -> not a TP.
    gt = frame(GT_ROWS, {1: {"category_id": THING, "area": 8}, 2: THING, 3: STUFF})
    pred = frame(PRED_ROWS, PRED_SEGS)
    res = compute_vpq([([gt], [pred])], CATEGORIES, windows=(1,))
    # car: tp 1 (car 2), fn 1, fp 1 -> 1 / 2 = 0.5; road 1 -> VPQ = 75.
    assert res["VPQ@1"] == pytest.approx(75.0)
    # Without an ``area`` field the pixels are counted: 100.
    res = compute_vpq([([frame(GT_ROWS, GT_SEGS)], [pred])], CATEGORIES, windows=(1,))
    assert res["VPQ@1"] == pytest.approx(100.0)


def test_tube_category_comes_from_the_first_frame_of_the_window():
    # gt id 1 covers everything; listed as car in frame 0 and as road in frame 1. The
    # prediction is car 5 everywhere in both frames.
    gt = [frame([[1] * 4] * 4, {1: THING}), frame([[1] * 4] * 4, {1: STUFF})]
    pred = [frame([[5] * 4] * 4, {5: THING})] * 2
    res = compute_vpq([(gt, pred)], CATEGORIES, windows=(1, 2))
    # Window 2: the gt tube is a car (frame 0) -> TP IoU 1; road has no stats -> 100.
    assert res["VPQ@2"] == pytest.approx(100.0)
    # Window 1: frame 0 car TP; frame 1 road FN + car FP -> car 1 / 1.5, road 0.
    assert res["VPQ@1"] == pytest.approx(100.0 / 1.5 / 2)


def test_prediction_sanity_checks_raise_like_the_official_script():
    gt = frame(GT_ROWS, GT_SEGS)
    with pytest.raises(KeyError, match="presented in PNG and not presented in JSON"):
        compute_vpq([([gt], [frame(PRED_ROWS, {11: THING, 12: THING})])], CATEGORIES)
    with pytest.raises(KeyError, match="presented in JSON and not presented in PNG"):
        compute_vpq([([gt], [frame(PRED_ROWS, {**PRED_SEGS, 99: THING})])], CATEGORIES)
    with pytest.raises(KeyError, match="unknown category_id"):
        compute_vpq([([gt], [frame(PRED_ROWS, {**PRED_SEGS, 13: 42})])], CATEGORIES)


def _random_videos(seed, num_videos=3):
    """Blocky random videos: ids 0..5 (0 = VOID), random categories, some crowd; the
    prediction is the ground truth with 15% of the pixels re-drawn."""
    rng = np.random.default_rng(seed)
    cats = {c: {"id": c, "isthing": int(c >= 2)} for c in range(1, 5)}
    videos = []
    for _ in range(num_videos):
        cat_of = {i: int(rng.integers(1, 5)) for i in range(1, 6)}
        base = rng.integers(0, 6, size=(6, 7))
        gt, pred = [], []
        for _ in range(int(rng.integers(1, 7))):
            ids = base.copy()
            moved = rng.random(ids.shape) < 0.2
            ids[moved] = rng.integers(0, 6, size=int(moved.sum()))
            segs = {int(i): {"category_id": cat_of[int(i)],
                             "iscrowd": int(cat_of[int(i)] >= 2 and rng.random() < 0.2)}
                    for i in np.unique(ids) if i}
            gt.append(frame(ids.tolist(), segs))
            p = ids.copy()
            noise = rng.random(ids.shape) < 0.15
            p[noise] = rng.integers(0, 6, size=int(noise.sum()))
            pred.append(frame(p.tolist(), {int(i): cat_of[int(i)] for i in np.unique(p) if i}))
        videos.append((gt, pred))
    return videos, cats


def test_vpq_window_1_equals_panopticapi_image_pq(tmp_path):
    videos, cats = _random_videos(seed=3)
    # Every frame as an image for panopticapi's own per-image PQ.
    pairs = []
    for v, (gt, pred) in enumerate(videos):
        for t, ((g_ids, g_segs), (p_ids, p_segs)) in enumerate(zip(gt, pred)):
            name = f"{v}_{t}.png"
            for folder, ids in (("gt", g_ids), ("pred", p_ids)):
                os.makedirs(tmp_path / folder, exist_ok=True)
                Image.fromarray(id2rgb(ids)).save(tmp_path / folder / name)
            g_segs = [dict(s, area=int((g_ids == s["id"]).sum())) for s in g_segs]
            pairs.append(({"image_id": name, "file_name": name, "segments_info": g_segs},
                          {"image_id": name, "file_name": name,
                           "segments_info": copy.deepcopy(p_segs)}))
    stat = pq_compute_single_core(0, pairs, str(tmp_path / "gt"), str(tmp_path / "pred"), cats)
    res = compute_vpq(videos, cats, windows=(1,))
    assert 0 < res["VPQ@1"] < 100
    for key, isthing in (("VPQ@1", None), ("VPQ_th@1", True), ("VPQ_st@1", False)):
        assert res[key] == pytest.approx(100 * stat.pq_average(cats, isthing)[0]["pq"], abs=1e-9)


def write_official_layout(root, videos, categories):
    """Ground truth and prediction of in-memory videos in the official VIPSeg layout."""
    gt_json = {"videos": [], "annotations": [],
               "categories": [dict(c, name=str(k)) for k, c in categories.items()]}
    pred_json = {"annotations": []}
    for v, (gt, pred) in enumerate(videos):
        vid = f"video_{v}"
        images, gt_anns, pred_anns = [], [], []
        for t, ((g_ids, g_segs), (p_ids, p_segs)) in enumerate(zip(gt, pred)):
            name = f"{t:05d}.png"
            images.append({"id": f"{t:05d}", "file_name": name})
            for folder, ids in (("panomasksRGB", g_ids), (os.path.join("submit", "pan_pred"),
                                                          p_ids)):
                os.makedirs(os.path.join(root, folder, vid), exist_ok=True)
                Image.fromarray(id2rgb(ids)).save(os.path.join(root, folder, vid, name))
            gt_anns.append({"image_id": f"{t:05d}", "file_name": name, "segments_info": [
                dict(s, area=int((g_ids == s["id"]).sum())) for s in g_segs]})
            pred_anns.append({"image_id": f"{t:05d}", "file_name": name,
                              "segments_info": p_segs})
        gt_json["videos"].append({"video_id": vid, "images": images})
        gt_json["annotations"].append({"video_id": vid, "annotations": gt_anns})
        pred_json["annotations"].append({"video_id": vid, "annotations": pred_anns})
    with open(os.path.join(root, "panoptic_gt_val.json"), "w") as f:
        json.dump(gt_json, f)
    with open(os.path.join(root, "submit", "pred.json"), "w") as f:
        json.dump(pred_json, f)
    return (os.path.join(root, "panoptic_gt_val.json"), os.path.join(root, "panomasksRGB"),
            os.path.join(root, "submit"))


def test_file_layout_function_equals_the_in_memory_one(tmp_path):
    videos, cats = _random_videos(seed=5, num_videos=4)
    videos.append(_moving_video(9, switch_at=5))  # categories 1 / 2: stuff / thing in cats
    gt_json, gt_folder, submit = write_official_layout(str(tmp_path), videos, cats)
    files = compute_vpq_from_files(gt_json, gt_folder, submit)
    memory = compute_vpq(videos, cats)
    assert files.keys() == memory.keys()
    for key in memory:
        assert files[key] == pytest.approx(memory[key], abs=1e-12, nan_ok=True), key
    things = [k for k, c in cats.items() if c["isthing"]]
    stq_files = compute_stq_from_files(gt_json, gt_folder, submit)
    stq_memory = compute_stq(videos, max(cats) + 1, things, 255)
    for key in stq_memory:
        assert stq_files[key] == pytest.approx(stq_memory[key], abs=1e-12), key
    # A video without predictions raises, as the official ``pred_j[video_id]``.
    with open(os.path.join(submit, "pred.json")) as f:
        pred = json.load(f)
    pred["annotations"].pop()
    with open(os.path.join(submit, "pred.json"), "w") as f:
        json.dump(pred, f)
    with pytest.raises(KeyError, match="no annotations for video"):
        compute_vpq_from_files(gt_json, gt_folder, submit)


# ---- the evaluator on the synthetic video dataset -----------------------------------------
VPS_NAME = "omg_shapes_video_val_vps"


def gt_video_outputs(records):
    """The ground truth of each video record as the model output the evaluators consume."""
    outputs = []
    for record in records:
        frames = []
        for path, segs in zip(record["pan_seg_file_names"], record["segments_infos"]):
            ids = read_panoptic_png(path)
            frames.append({"panoptic_seg": (torch.from_numpy(ids).int(), [
                {"id": s["id"], "category_id": s["category_id"], "isthing": s["isthing"]}
                for s in segs])})
        outputs.append({"frames": frames})
    return outputs


def _switch_identity(output, record):
    """From the middle frame on, give a thing present on both sides of it a new id. Not the
    segment listed first in the video: the official STQ numbers it instance 0, i.e. crowd,
    and leaves it out of AQ (OMG-Shapes lists things first)."""
    mid = len(output["frames"]) // 2
    first = record["segments_infos"][0][0]["id"]
    before, after = ({s["id"] for s in record["segments_infos"][t] if s["isthing"]}
                     for t in (mid - 1, mid))
    candidates = (before & after) - {first}
    assert candidates, "the synthetic video needs a second thing track across its middle"
    target = min(candidates)
    new_id = 1 + max(s["id"] for segs in record["segments_infos"] for s in segs)
    out = copy.deepcopy(output)
    for frame_out in out["frames"][mid:]:
        ids, segs = frame_out["panoptic_seg"]
        ids = torch.where(ids == target, torch.tensor(new_id, dtype=ids.dtype), ids)
        segs = [dict(s, id=new_id) if s["id"] == target else s for s in segs]
        frame_out["panoptic_seg"] = (ids, segs)
    return out


def test_evaluator_ground_truth_scores_100(synthetic_root, tmp_path):
    from detectron2.data import DatasetCatalog

    records = DatasetCatalog.get(VPS_NAME)
    assert len(records) == 2 and all(r["length"] >= 8 for r in records)
    evaluator = VideoPanopticEvaluator(VPS_NAME, output_dir=str(tmp_path))
    evaluator.reset()
    for record, out in zip(records, gt_video_outputs(records)):
        evaluator.process([{"video_id": record["video_id"]}], [out])
    res = evaluator.evaluate()["vpq"]
    for key in ("VPQ", "VPQ_th", "VPQ_st", "VPQ@1", "VPQ@2", "VPQ@4", "VPQ@6", "VPQ@8",
                "STQ", "AQ", "SQ"):
        assert res[key] == pytest.approx(100.0), key
    with open(tmp_path / "video_panoptic_evaluation.json") as f:
        written = json.load(f)
    assert written["num_videos"] == 2 and set(written["per_class"]) == {"1", "2", "4", "6", "8"}
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]


def _identity_switch_vpq() -> dict:
    """One-process VPQ results of the ground truth with an identity switch in video 0."""
    from detectron2.data import DatasetCatalog

    records = DatasetCatalog.get(VPS_NAME)
    outputs = gt_video_outputs(records)
    outputs[0] = _switch_identity(outputs[0], records[0])
    evaluator = VideoPanopticEvaluator(VPS_NAME)
    evaluator.reset()
    evaluator.process([{"video_id": r["video_id"]} for r in records], outputs)
    return evaluator.evaluate()["vpq"]


def test_evaluator_identity_switch_lowers_vpq_n_and_aq_not_vpq_1(synthetic_root):
    res = _identity_switch_vpq()
    assert res["VPQ@1"] == pytest.approx(100.0)
    assert all(res[f"VPQ@{n}"] < 100.0 - 1e-6 for n in (2, 4, 6, 8))
    assert res["AQ"] < 100.0 - 1e-6 and res["SQ"] == pytest.approx(100.0)


def test_evaluator_refuses_bad_inputs_and_reports_missing_videos(synthetic_root, caplog):
    from detectron2.data import DatasetCatalog

    records = DatasetCatalog.get(VPS_NAME)
    outputs = gt_video_outputs(records)
    evaluator = VideoPanopticEvaluator(VPS_NAME)
    evaluator.reset()
    with pytest.raises(KeyError, match="not in dataset"):
        evaluator.process([{"video_id": "no_such_video"}], [outputs[0]])
    short = {"frames": outputs[0]["frames"][:-1]}
    with pytest.raises(ValueError, match="predicted frames"):
        evaluator.process([{"video_id": records[0]["video_id"]}], [short])
    evaluator.reset()
    evaluator.process([{"video_id": records[0]["video_id"]}], [outputs[0]])
    with pytest.raises(ValueError, match="processed twice"):
        evaluator.process([{"video_id": records[0]["video_id"]}], [outputs[0]])
    with caplog.at_level(logging.WARNING):
        res = evaluator.evaluate()["vpq"]
    assert "1 of the 2 videos" in caplog.text
    assert res["VPQ@1"] == pytest.approx(100.0)


def _ddp_evaluate(out_dir):
    """Each of two ranks processes one video; rank 0 reports."""
    from detectron2.data import DatasetCatalog
    from detectron2.utils import comm

    records = DatasetCatalog.get(VPS_NAME)
    outputs = gt_video_outputs(records)
    outputs[0] = _switch_identity(outputs[0], records[0])
    evaluator = VideoPanopticEvaluator(VPS_NAME, output_dir=out_dir)
    evaluator.reset()
    rank = comm.get_rank()
    evaluator.process([{"video_id": records[rank]["video_id"]}], [outputs[rank]])
    res = evaluator.evaluate()
    if comm.is_main_process():
        with open(os.path.join(out_dir, "ddp.json"), "w") as f:
            json.dump(res, f)
    else:
        assert res == {}
    # Leave together and close the process group: a rank that exits while gloo's threads still
    # serve the group can abort ("terminate called without an active exception").
    comm.synchronize()
    torch.distributed.destroy_process_group()


def test_two_process_evaluation_equals_one_process(synthetic_root, tmp_path):
    from omgseg.engine import launch

    launch(_ddp_evaluate, 2, num_machines=1, machine_rank=0, dist_url="auto",
           args=(str(tmp_path),))
    with open(tmp_path / "ddp.json") as f:
        ddp = json.load(f)["vpq"]
    single = _identity_switch_vpq()
    assert ddp == pytest.approx(single, rel=0, abs=1e-12)
    assert ddp["VPQ@2"] < 100.0
