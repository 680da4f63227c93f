"""YouTube-VIS AP (omgseg.evaluation.video_instance.ytvis_ap) and YTVISEvaluator.

Hand-computed cases, and random cases against the official ``ytvoseval.py`` (Mask2Former's copy
of youtubevos/cocoapi, from the ``maskformer2`` package, loaded by file path as a test-only
reference)."""
import contextlib
import copy
import importlib.util
import io
import json
import logging
import math
import os
import uuid

import numpy as np
import pycocotools.mask as mask_util
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog

from omgseg.evaluation.video_instance.ytvis_ap import (
    YTVIS_METRICS,
    YTVISeval,
    evaluate_ytvis,
    frame_rle,
    mean_frame_area,
    video_iou,
    ytvis_ground_truth,
    ytvis_results,
)
from omgseg.evaluation.video_instance.ytvis_evaluation import YTVISEvaluator


def rle(mask: np.ndarray) -> dict:
    r = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in r["size"]], "counts": r["counts"].decode("ascii")}


def box_mask(h, w, y0, x0, y1, x1) -> np.ndarray:
    """bool [h, w], True on rows y0..y1-1, columns x0..x1-1."""
    m = np.zeros((h, w), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def gt_json(videos, annotations, categories=({"id": 1, "name": "a"},)):
    return {"videos": list(videos), "annotations": list(annotations),
            "categories": [dict(c) for c in categories]}


def video(vid, h, w, t):
    return {"id": vid, "height": h, "width": w, "length": t,
            "file_names": [f"v{vid}/{i:05d}.jpg" for i in range(t)]}


def gt_ann(aid, vid, masks, cat=1, iscrowd=0, areas=None):
    """A ground-truth annotation from per-frame bool masks (None = absent)."""
    segs = [rle(m) if m is not None else None for m in masks]
    if areas is None:
        areas = [int(m.sum()) if m is not None else None for m in masks]
    return {"id": aid, "video_id": vid, "category_id": cat, "iscrowd": iscrowd,
            "segmentations": segs, "areas": areas,
            "bboxes": [list(mask_util.toBbox(s)) if s else None for s in segs]}


def result(vid, masks, score, cat=1):
    return {"video_id": vid, "category_id": cat, "score": score,
            "segmentations": [rle(m) if m is not None else None for m in masks]}


def assert_metrics(actual, expected):
    for k, v in expected.items():
        if math.isnan(v):
            assert math.isnan(actual[k]), (k, actual[k])
        else:
            assert actual[k] == pytest.approx(v, abs=1e-9), (k, actual[k], v)


# ------------------------------------------------------------------------------ hand cases
def test_toy_case_from_the_issue():
    # One 3-frame 5x6 video, one ground truth, one prediction:
    #   frame 0: both the same 15-pixel rectangle        -> I = 15, U = 15
    #   frame 1: ground truth 5 pixels, prediction null  -> I = 0,  U = 5
    #   frame 2: ground truth null, prediction 5 pixels  -> I = 0,  U = 5
    # video IoU = 15 / 25 = 0.6. The one detection is a true positive at the IoU thresholds
    # 0.50, 0.55, 0.60 (matched when IoU >= t; linspace gives exactly 0.6 for the third) and a
    # false positive at the 7 others. A TP gives precision 1 at every recall point (AP_t = 1),
    # an FP alone never reaches any recall (AP_t = 0): AP = 3 / 10 = 30.0, AP50 = 100,
    # AP75 = 0. Ground-truth area = mean(15, 5) = 10 (the null frame is skipped): small, so
    # APs = 30 and APm / APl have no ground truth (NaN). AR1 = AR10 = mean recall over the
    # thresholds = 3 / 10 = 30.
    h, w = 5, 6
    big = box_mask(h, w, 0, 0, 3, 5)        # 15 px
    low = box_mask(h, w, 4, 0, 5, 5)        # 5 px
    other = box_mask(h, w, 3, 0, 4, 5)      # 5 px
    gt = gt_json([video(1, h, w, 3)], [gt_ann(1, 1, [big, low, None])])
    res = [result(1, [big, None, other], 0.9)]
    assert video_iou(res[0]["segmentations"], gt["annotations"][0]["segmentations"]) == 0.6
    out = evaluate_ytvis(gt, res)
    assert_metrics(out, {"AP": 30.0, "AP50": 100.0, "AP75": 0.0, "APs": 30.0,
                         "APm": float("nan"), "APl": float("nan"), "AR1": 30.0, "AR10": 30.0})


def test_video_iou_null_frames_and_zip():
    h, w = 4, 4
    a = rle(box_mask(h, w, 0, 0, 2, 2))   # 4 px
    b = rle(box_mask(h, w, 1, 1, 3, 3))   # 4 px, 1 px overlap with a
    # frame 0: I 1, U 7; frame 1: prediction null -> U += 4; frame 2: both null -> nothing
    assert video_iou([a, None, None], [b, b, None]) == pytest.approx(1 / 11)
    assert video_iou([a, None], [None, b]) == 0.0          # no common frame: I = 0, U = 8
    assert video_iou([None, None], [None, None]) == 0.0    # empty union: IoU 0
    assert video_iou([a, a], [a]) == 1.0                   # frames paired by zip (shorter)
    empty = rle(np.zeros((h, w), bool))
    assert video_iou([empty, a], [empty, a]) == 1.0        # an empty mask adds nothing


def test_mean_frame_area_skips_null_and_zero():
    assert mean_frame_area([None, 0, 10, 20]) == 15
    assert mean_frame_area([None, 0]) == 0
    assert mean_frame_area([]) == 0


def test_frame_rle_polygon_and_uncompressed():
    h, w = 6, 7
    m = box_mask(h, w, 1, 2, 4, 6)
    compressed = rle(m)
    assert frame_rle(compressed, h, w) is compressed
    assert frame_rle(None, h, w) is None and frame_rle([], h, w) is None
    # uncompressed RLE: column-major runs starting with zeros
    flat = m.flatten(order="F").astype(int)
    counts, cur, run = [], 0, 0
    for v in flat:
        if v != cur:
            counts.append(run)
            cur, run = v, 0
        run += 1
    counts.append(run)
    assert np.array_equal(mask_util.decode(frame_rle({"size": [h, w], "counts": counts}, h, w)),
                          m)
    poly = frame_rle([[2, 1, 6, 1, 6, 4, 2, 4]], h, w)
    assert mask_util.area(poly) > 0


def test_area_ranges_use_nonnull_mean_and_inclusive_bounds():
    h = w = 200
    half = box_mask(h, w, 0, 0, 100, 200)        # 20000 px: medium (128^2 = 16384 < 20000)
    # null frame skipped: mean area 20000 -> medium. Counting it as 0 would give 13333 (small).
    gt = gt_json([video(1, h, w, 3)], [gt_ann(1, 1, [None, half, half])])
    out = evaluate_ytvis(gt, [result(1, [None, half, half], 0.8)])
    assert_metrics(out, {"AP": 100.0, "APs": float("nan"), "APm": 100.0,
                         "APl": float("nan")})
    # exactly 128^2 = 16384: inside both small [0, 128^2] and medium [128^2, 256^2]
    square = box_mask(h, w, 0, 0, 128, 128)
    gt = gt_json([video(1, h, w, 2)], [gt_ann(1, 1, [square, square])])
    out = evaluate_ytvis(gt, [result(1, [square, square], 0.8)])
    assert_metrics(out, {"AP": 100.0, "APs": 100.0, "APm": 100.0, "APl": float("nan")})


def test_ground_truth_area_comes_from_json_areas():
    # The official code takes the ground-truth area from the json ``areas``, not from the
    # masks: a 100-px object whose json says 70000 px is "large". The identical detection (area
    # 100, small) matches it in the large range (matched detections are never area-ignored);
    # in the small range the ground truth is out of range, so there is nothing to find (NaN).
    h = w = 40
    m = box_mask(h, w, 0, 0, 10, 10)
    gt = gt_json([video(1, h, w, 1)], [gt_ann(1, 1, [m], areas=[70000])])
    out = evaluate_ytvis(gt, [result(1, [m], 0.5)])
    assert_metrics(out, {"AP": 100.0, "APs": float("nan"), "APm": float("nan"), "APl": 100.0})


def test_crowd_ground_truth_uses_video_iou_and_is_ignored():
    # Two 40x40 frames; category 1 has a regular ground truth A (10x10) and a crowd region C
    # (20x20). Detection d1 (score 0.9) is a 5x5 square inside C; d2 (score 0.5) equals A.
    # Video IoU(d1, C) = 2*25 / 2*400 = 0.0625 < 0.5: d1 matches nothing and is a false positive
    # (image COCO's crowd IoU |d & C| / |d| = 1 would have ignored it). Ranked [FP, TP]:
    # precision [0, 1/2] -> envelope [1/2, 1/2], recall [0, 1]: AP_t = 0.5 at every threshold.
    # AR1 keeps only d1 (recall 0); AR10 = 100.
    h = w = 40
    a = box_mask(h, w, 0, 0, 10, 10)
    c = box_mask(h, w, 20, 20, 40, 40)
    d1 = box_mask(h, w, 20, 20, 25, 25)
    gt = gt_json([video(1, h, w, 2)], [gt_ann(1, 1, [a, a]), gt_ann(2, 1, [c, c], iscrowd=1)])
    out = evaluate_ytvis(gt, [result(1, [d1, d1], 0.9), result(1, [a, a], 0.5)])
    assert_metrics(out, {"AP": 50.0, "AP50": 50.0, "AR1": 0.0, "AR10": 100.0})
    # A detection that matches the crowd region itself is ignored (neither TP nor FP).
    out = evaluate_ytvis(gt, [result(1, [c, c], 0.9), result(1, [a, a], 0.5)])
    assert_metrics(out, {"AP": 100.0, "AR10": 100.0})


def test_per_category_and_categories_without_ground_truth():
    h = w = 20
    m = box_mask(h, w, 0, 0, 5, 5)
    cats = ({"id": 3, "name": "cat"}, {"id": 7, "name": "dog"})
    gt = gt_json([video(1, h, w, 1)], [gt_ann(1, 1, [m], cat=3)], categories=cats)
    out = evaluate_ytvis(gt, [result(1, [m], 0.9, cat=3), result(1, [m], 0.8, cat=7)])
    # dog has no ground truth: excluded from the mean (-1), its detection counts nowhere
    assert_metrics(out, {"AP": 100.0, "AP-cat": 100.0, "AP-dog": float("nan")})


def test_empty_results_and_unknown_video():
    h = w = 8
    m = box_mask(h, w, 0, 0, 2, 2)
    gt = gt_json([video(1, h, w, 1)], [gt_ann(1, 1, [m])])
    out = evaluate_ytvis(gt, [])
    assert set(out) == set(YTVIS_METRICS) and all(math.isnan(v) for v in out.values())
    with pytest.raises(ValueError, match="not in the ground truth"):
        evaluate_ytvis(gt, [result(2, [m], 0.5)])


def test_inputs_are_not_modified():
    h = w = 8
    m = box_mask(h, w, 0, 0, 2, 2)
    gt = gt_json([video(1, h, w, 1)], [gt_ann(1, 1, [m])])
    res = [result(1, [m], 0.5)]
    before = copy.deepcopy((gt, res))
    evaluate_ytvis(gt, res)
    assert (gt, res) == before


# ------------------------------------------------------------- against the official ytvoseval
@pytest.fixture(scope="module")
def official_ytvis():
    """(YTVOS, YTVOSeval) from Mask2Former's copy of youtubevos/cocoapi, loaded by file path
    (its package __init__ needs Detectron2's compiled ops)."""
    spec = importlib.util.find_spec("mask2former_video")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the official reference is not installed: `pip install --no-build-isolation "
                    "--no-deps maskformer2==0.1` (Mask2Former, with youtubevos/cocoapi's "
                    "ytvoseval.py)")
    api_dir = os.path.join(spec.submodule_search_locations[0], "data_video", "datasets",
                           "ytvis_api")

    def load(name):
        path = os.path.join(api_dir, f"{name}.py")
        if not os.path.isfile(path):
            pytest.skip(f"maskformer2 is installed but has no {path}")
        mod_spec = importlib.util.spec_from_file_location(f"_official_ytvis_{name}", path)
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)
        return module

    return load("ytvos").YTVOS, load("ytvoseval").YTVOSeval


def _uncompressed(mask):
    flat = mask.flatten(order="F").astype(np.uint8)
    counts, cur, run = [], 0, 0
    for v in flat:
        if v != cur:
            counts.append(run)
            cur, run = int(v), 0
        run += 1
    counts.append(run)
    return {"size": list(mask.shape), "counts": counts}


def _random_case(seed):
    """Random videos (small and large frames), ground truth with null frames, crowd, polygon
    and uncompressed-RLE frames, several categories; detections jittered from the ground truth
    or random, with null and empty frames, tied scores and > 10 per video."""
    rng = np.random.RandomState(seed)
    cats = [{"id": c, "name": f"c{c}"} for c in (1, 2, 5)]
    videos, anns, results = [], [], []
    aid = 0
    for vid in range(1, 6):
        h, w = [(30, 40), (300, 320), (180, 200)][rng.randint(3)]
        t = rng.randint(1, 5)
        videos.append(video(vid, h, w, t))
        boxes = []
        for _ in range(rng.randint(0, 5)):
            if rng.rand() < 0.6:
                bh, bw = rng.randint(1, h + 1), rng.randint(1, w + 1)
            else:  # near full-frame objects: medium and large ones in the big frames
                bh, bw = rng.randint(int(0.8 * h), h + 1), rng.randint(int(0.8 * w), w + 1)
            y0, x0 = rng.randint(0, h - bh + 1), rng.randint(0, w - bw + 1)
            frames = []
            for _ in range(t):
                if rng.rand() < 0.25:
                    frames.append(None)
                    continue
                dy, dx = rng.randint(-2, 3, size=2)
                frames.append((max(0, y0 + dy), max(0, x0 + dx), min(h, y0 + dy + bh),
                               min(w, x0 + dx + bw)))
            cat = cats[rng.randint(3)]["id"]
            aid += 1
            segs, areas = [], []
            for f in frames:
                if f is None or f[2] <= f[0] or f[3] <= f[1]:
                    segs.append(None)
                    areas.append(None)
                    continue
                m = box_mask(h, w, *f)
                kind = rng.rand()
                if kind < 0.15:    # polygon (rasterised by the official frPyObjects)
                    y0_, x0_, y1_, x1_ = f
                    segs.append([[x0_, y0_, x1_, y0_, x1_, y1_, x0_, y1_]])
                    poly = mask_util.merge(mask_util.frPyObjects(segs[-1], h, w))
                    areas.append(int(mask_util.area(poly)))
                elif kind < 0.3:   # uncompressed RLE
                    segs.append(_uncompressed(m))
                    areas.append(int(m.sum()))
                else:
                    segs.append(rle(m))
                    areas.append(int(m.sum()))
            anns.append({"id": aid, "video_id": vid, "category_id": cat,
                         "iscrowd": int(rng.rand() < 0.2), "segmentations": segs,
                         "areas": areas, "bboxes": [None] * t})
            boxes.append((cat, frames))
        for _ in range(rng.randint(0, 13)):
            if boxes and rng.rand() < 0.7:
                cat, frames = boxes[rng.randint(len(boxes))]
                if rng.rand() < 0.2:
                    cat = cats[rng.randint(3)]["id"]
            else:
                cat, frames = cats[rng.randint(3)]["id"], [None] * t
            segs = []
            for f in frames:
                r = rng.rand()
                if r < 0.15:
                    segs.append(None)
                elif r < 0.2:
                    segs.append(rle(np.zeros((h, w), bool)))
                else:
                    if f is None:
                        f = (rng.randint(h), rng.randint(w), h, w)
                    dy0, dx0, dy1, dx1 = rng.randint(-4, 5, size=4)
                    y0, x0 = int(np.clip(f[0] + dy0, 0, h - 1)), int(np.clip(f[1] + dx0, 0, w - 1))
                    y1 = int(np.clip(f[2] + dy1, y0 + 1, h))
                    x1 = int(np.clip(f[3] + dx1, x0 + 1, w))
                    segs.append(rle(box_mask(h, w, y0, x0, y1, x1)))
            score = float(rng.choice([0.3, 0.5, 0.9])) if rng.rand() < 0.3 else float(rng.rand())
            results.append({"video_id": vid, "category_id": cat, "score": score,
                            "segmentations": segs})
    if not results:  # the official loadRes needs at least one result
        v = videos[0]
        results.append({"video_id": v["id"], "category_id": 1, "score": 0.5,
                        "segmentations": [None] * v["length"]})
    return gt_json(videos, anns, cats), results


def _run_official(official_ytvis, gt, results):
    YTVOS, YTVOSeval = official_ytvis
    with contextlib.redirect_stdout(io.StringIO()):
        api = YTVOS()
        api.dataset = copy.deepcopy(gt)
        api.createIndex()
        dt = api.loadRes(copy.deepcopy(results))
        ev = YTVOSeval(api, dt)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


@pytest.mark.parametrize("seed", range(6))
def test_matches_official_ytvoseval(official_ytvis, monkeypatch, seed):
    monkeypatch.setattr(np, "float", float, raising=False)  # the official accumulate uses it
    gt, results = _random_case(seed)
    ref = _run_official(official_ytvis, gt, results)

    gt_index = ytvis_ground_truth(gt)
    ours = YTVISeval(gt_index, ytvis_results(gt_index, results))
    with contextlib.redirect_stdout(io.StringIO()):
        ours.evaluate()
        ours.accumulate()
        ours.summarize()
    np.testing.assert_allclose(ours.stats, ref.stats, atol=1e-6, rtol=0)
    np.testing.assert_allclose(ours.eval["precision"], ref.eval["precision"], atol=1e-6, rtol=0)
    np.testing.assert_allclose(ours.eval["recall"], ref.eval["recall"], atol=1e-6, rtol=0)
    for key in ref.ious:
        np.testing.assert_allclose(np.asarray(ours.ious[key]).reshape(-1),
                                   np.asarray(ref.ious[key]).reshape(-1), atol=1e-12)

    out = evaluate_ytvis(gt, results)
    for i, name in enumerate(YTVIS_METRICS):
        expected = ref.stats[i] * 100 if ref.stats[i] >= 0 else float("nan")
        assert_metrics(out, {name: expected})
    # every seed exercises several area ranges and categories
    assert np.count_nonzero(ref.stats[3:6] >= 0) >= 1


def test_random_cases_cover_the_rules():
    """The random cases hold crowd, null frames, polygons and all three area ranges."""
    crowd = nulls = polys = 0
    areas = []
    for seed in range(6):
        gt, _ = _random_case(seed)
        for a in gt["annotations"]:
            crowd += a["iscrowd"]
            nulls += sum(s is None for s in a["segmentations"])
            polys += sum(isinstance(s, list) for s in a["segmentations"])
            areas.append(mean_frame_area(a["areas"]))
    areas = np.array(areas)
    assert crowd and nulls and polys
    assert (areas <= 128 ** 2).any() and ((areas > 128 ** 2) & (areas <= 256 ** 2)).any()
    assert (areas > 256 ** 2).any()


# ------------------------------------------------------------------------ the evaluator
def _gt_outputs(gt, meta):
    """The ground truth of a YTVIS json as model outputs (one per video, score 1)."""
    to_contiguous = meta.thing_dataset_id_to_contiguous_id
    sizes = {v["id"]: (v["height"], v["width"]) for v in gt["videos"]}
    outputs = {v["id"]: {"video_id": v["id"], "video_instances": []} for v in gt["videos"]}
    for a in gt["annotations"]:
        h, w = sizes[a["video_id"]]
        outputs[a["video_id"]]["video_instances"].append({
            "score": 1.0, "category_id": to_contiguous[a["category_id"]],
            "segmentations": [frame_rle(s, h, w) for s in a["segmentations"]],
        })
    return [outputs[v["id"]] for v in gt["videos"]]


def test_evaluator_ground_truth_scores_100(synthetic_root, tmp_path):
    name = "omg_shapes_video_val_ytvis"
    meta = MetadataCatalog.get(name)
    with open(meta.json_file) as f:
        gt = json.load(f)
    assert gt["annotations"]
    evaluator = YTVISEvaluator(name, output_dir=str(tmp_path))
    evaluator.reset()
    inputs = [{"video_id": v["id"], "length": v["length"]} for v in gt["videos"]]
    outputs = _gt_outputs(gt, meta)
    for inp, out in zip(inputs, outputs):
        evaluator.process([inp], [out])
    results = evaluator.evaluate()["segm"]
    assert results["AP"] == pytest.approx(100.0)
    assert results["AP50"] == pytest.approx(100.0) and results["AP75"] == pytest.approx(100.0)
    for k in ("APs", "APm", "APl"):
        assert math.isnan(results[k]) or results[k] == pytest.approx(100.0)
    with open(tmp_path / "results.json") as f:
        written = json.load(f)
    assert len(written) == len(gt["annotations"])
    assert {r["category_id"] for r in written} <= {c["id"] for c in gt["categories"]}
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]

    with pytest.raises(ValueError, match="frames"):
        bad = copy.deepcopy(outputs[0])
        bad["video_instances"][0]["segmentations"].append(None)
        evaluator.process([inputs[0]], [bad])


def test_evaluator_without_annotations_writes_results_only(synthetic_root, tmp_path, caplog):
    src = MetadataCatalog.get("omg_shapes_video_val_ytvis")
    with open(src.json_file) as f:
        gt = json.load(f)
    outputs = _gt_outputs(gt, src)
    gt.pop("annotations")
    json_file = tmp_path / "valid.json"
    json_file.write_text(json.dumps(gt))
    name = f"test_ytvis_no_annotations_{uuid.uuid4().hex[:8]}"
    DatasetCatalog.register(name, lambda: [])
    MetadataCatalog.get(name).set(
        json_file=str(json_file), evaluator_type="ytvis", thing_classes=src.thing_classes,
        thing_dataset_id_to_contiguous_id=src.thing_dataset_id_to_contiguous_id)
    out_dir = tmp_path / "out"
    evaluator = YTVISEvaluator(name, output_dir=str(out_dir))
    evaluator.reset()
    evaluator.process([{}] * len(outputs), outputs)
    with caplog.at_level(logging.INFO, logger="omgseg.evaluation.video_instance"):
        assert evaluator.evaluate() == {}
    assert "no annotations" in caplog.text
    with open(out_dir / "results.json") as f:
        assert len(json.load(f)) == sum(len(o["video_instances"]) for o in outputs)
