"""DAVIS-2017 J&F (omgseg.evaluation.video_instance.davis_jf) and DAVISEvaluator: hand-computed
masks, the official frame / object / void rules, and the synthetic benchmark end to end."""
import logging
import math
import os

import cv2
import numpy as np
import pytest
from detectron2.data import DatasetCatalog

from omgseg.evaluation.video_instance.davis_evaluation import (
    RESULTS_DIR,
    DAVISEvaluator,
    davis_palette,
    read_index_png,
)
from omgseg.evaluation.video_instance.davis_jf import (
    bound_radius,
    davis_frame_scores,
    db_statistics,
    disk,
    evaluate_davis_sequence,
    f_measure,
    jaccard,
    num_davis_objects,
    seg2bmap,
    summarize_davis,
)


def square(h, w, y0, x0, y1, x1, value=1, dtype=np.uint8):
    """[h, w] map with ``value`` on rows y0..y1-1, columns x0..x1-1."""
    m = np.zeros((h, w), dtype=dtype)
    m[y0:y1, x0:x1] = value
    return m


# -------------------------------------------------------------------------- building blocks
def test_disk_formula_and_skimage():
    # x^2 + y^2 <= r^2 on the integer grid: for r = 2 the corners (+-1, +-1) (2 <= 4) and the
    # axis ends (0, +-2) (4 <= 4) are in; (+-2, +-1) (5 > 4) are out.
    expected = np.array([[0, 0, 1, 0, 0],
                         [0, 1, 1, 1, 0],
                         [1, 1, 1, 1, 1],
                         [0, 1, 1, 1, 0],
                         [0, 0, 1, 0, 0]], dtype=np.uint8)
    assert np.array_equal(disk(2), expected)
    assert disk(2).dtype == np.uint8
    assert np.array_equal(disk(1), np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8))
    for r in range(0, 12):
        ax = np.arange(-r, r + 1)
        assert np.array_equal(disk(r), (ax[None, :] ** 2 + ax[:, None] ** 2 <= r * r))
    morphology = pytest.importorskip("skimage.morphology",
                                     reason="scikit-image not installed: formula checked only")
    for r in range(0, 12):
        assert np.array_equal(disk(r), morphology.disk(r).astype(np.uint8))


def test_bound_radius():
    assert bound_radius(480, 854) == 8       # ceil(0.008 * 979.6) = ceil(7.84)
    assert bound_radius(96, 128) == 2        # ceil(0.008 * 160) = ceil(1.28)
    assert bound_radius(10, 10) == 1         # ceil(0.008 * 14.1)
    assert bound_radius(10, 10, bound_th=3) == 3   # >= 1: a radius in pixels


def test_seg2bmap_square():
    # A 2x2 square on rows/cols 1..2 of a 5x5 image. A pixel is on the boundary when it differs
    # from its east, south or south-east neighbour: the ring of the 3x3 block rows/cols 0..2
    # (half a pixel towards the origin), 8 pixels.
    seg = square(5, 5, 1, 1, 3, 3)
    expected = np.array([[1, 1, 1, 0, 0],
                         [1, 0, 1, 0, 0],
                         [1, 1, 1, 0, 0],
                         [0, 0, 0, 0, 0],
                         [0, 0, 0, 0, 0]], dtype=bool)
    assert np.array_equal(seg2bmap(seg), expected)


def test_seg2bmap_image_border():
    # The last column filled: only its west neighbour column 3 is boundary (the last column
    # compares to its south neighbour only, and the bottom-right pixel never counts); on the
    # last row the pixel (4, 3) differs from its east neighbour.
    seg = square(5, 5, 0, 4, 5, 5)
    expected = np.zeros((5, 5), bool)
    expected[:, 3] = True
    assert np.array_equal(seg2bmap(seg), expected)
    # The last row filled: row 3 is boundary (differs from the south), the last row compares
    # only east (all equal but the last pixel, which is the excluded corner).
    seg = square(5, 5, 4, 0, 5, 5)
    expected = np.zeros((5, 5), bool)
    expected[3, :] = True
    assert np.array_equal(seg2bmap(seg), expected)
    assert not seg2bmap(np.ones((5, 5))).any()
    assert not seg2bmap(np.zeros((5, 5))).any()


def test_jaccard_hand_cases():
    gt = square(10, 10, 2, 2, 6, 6)                  # 16 px
    shift1 = square(10, 10, 2, 3, 6, 7)              # overlap 4x3 = 12, union 20
    assert jaccard(gt, shift1) == pytest.approx(12 / 20)
    shift2 = square(10, 10, 2, 4, 6, 8)              # overlap 8, union 24
    assert jaccard(gt, shift2) == pytest.approx(1 / 3)
    empty = np.zeros((10, 10), np.uint8)
    assert jaccard(empty, empty) == 1.0              # empty union: 1
    assert jaccard(gt, empty) == 0.0 and jaccard(empty, gt) == 0.0


def test_f_measure_shifted_square():
    # 10x10 image: radius ceil(0.008 * 14.1) = 1, the 3x3 cross. The 4x4 square rows/cols 2..5
    # has the boundary ring of rows 1..5 x cols 1..5 (16 px).
    gt = square(10, 10, 2, 2, 6, 6)
    # Shifted right by 1: ring rows 1..5 x cols 2..6; every boundary pixel of either is within
    # one step of the other's boundary: P = R = 1, F = 1.
    assert f_measure(gt, square(10, 10, 2, 3, 6, 7)) == pytest.approx(1.0)
    # Shifted right by 2: ring rows 1..5 x cols 3..7. Predicted boundary within one step of the
    # true ring: top row cols 3..6 (4 of 5; col 7 is 2 away), bottom row the same (4), left
    # column rows 2..4 at col 3: rows 2 and 4 touch the true top/bottom rows, row 3 does not
    # (2), right column col 7: none (0). P = 10 / 16. By symmetry R = 10 / 16, F = 0.625.
    assert f_measure(gt, square(10, 10, 2, 4, 6, 8)) == pytest.approx(0.625)
    empty = np.zeros((10, 10), np.uint8)
    assert f_measure(empty, empty) == 1.0            # both boundaries empty
    assert f_measure(gt, empty) == 0.0               # one empty
    assert f_measure(empty, gt) == 0.0


def test_f_measure_uses_cv2_dilation_with_the_disk():
    rng = np.random.RandomState(0)
    for _ in range(5):
        h, w = rng.randint(20, 80, size=2)
        gt = rng.rand(h, w) < 0.3
        pred = rng.rand(h, w) < 0.3
        gt_b, pred_b = seg2bmap(gt), seg2bmap(pred)
        k = disk(bound_radius(h, w))
        gt_d = cv2.dilate(gt_b.astype(np.uint8), k) > 0
        pred_d = cv2.dilate(pred_b.astype(np.uint8), k) > 0
        p = (pred_b & gt_d).sum() / pred_b.sum()
        r = (gt_b & pred_d).sum() / gt_b.sum()
        assert f_measure(gt, pred) == pytest.approx(2 * p * r / (p + r))


def test_db_statistics_decay_bins():
    # 10 frames: ids = round(linspace(1, 10, 5) + 1e-10) - 1 = round([1, 3.25, 5.5, 7.75, 10])
    # - 1 = [0, 2, 5, 7, 9]; bin 1 = values[0:3], bin 4 = values[7:10].
    values = np.array([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    mean, recall, decay = db_statistics(values)
    assert mean == pytest.approx(0.55)
    assert recall == pytest.approx(0.5)              # > 0.5 strictly: 1.0 .. 0.6, not 0.5
    assert decay == pytest.approx((1.0 + 0.9 + 0.8) / 3 - (0.3 + 0.2 + 0.1) / 3)  # 0.7
    # 4 frames: linspace = [1, 1.75, 2.5, 3.25, 4]; 2.5 + 1e-10 rounds up: ids [0, 1, 2, 2, 3]
    # bin 1 = values[0:2], bin 4 = values[2:4]
    mean, recall, decay = db_statistics([1.0, 0.8, 0.2, 0.0])
    assert decay == pytest.approx(0.9 - 0.1)
    # one frame: every bin is that frame, decay 0
    assert db_statistics([0.7]) == pytest.approx((0.7, 1.0, 0.0))
    assert all(math.isnan(v) for v in db_statistics([]))


def test_db_statistics_long_sequence_wraps_like_uint8():
    # The official bin edges are uint8: for 300 frames linspace(1, 300, 5) gives edges
    # [0, 75, 150, 224, 299] -> 299 wraps to 43, so bin 4 = values[224:44] is empty (NaN decay).
    values = np.linspace(1, 0, 300)
    assert math.isnan(db_statistics(values)[2])
    assert not math.isnan(db_statistics(values[:256])[2])


# ------------------------------------------------------------------------------ sequences
def _video(h, w, boxes_per_frame):
    """[T, H, W] uint8 index maps; boxes_per_frame[t] = [(label, y0, x0, y1, x1), ...]."""
    out = np.zeros((len(boxes_per_frame), h, w), np.uint8)
    for t, boxes in enumerate(boxes_per_frame):
        for label, y0, x0, y1, x1 in boxes:
            out[t, y0:y1, x0:x1] = label
    return out


def test_first_and_last_frames_are_not_evaluated():
    gt = _video(10, 10, [[(1, 2, 2, 6, 6)]] * 4)
    pred = gt.copy()
    pred[0] = 0                      # first frame wrong
    pred[-1] = 0                     # last frame wrong
    scores = evaluate_davis_sequence(gt, pred)
    assert scores["J"].shape == (1, 2)                 # frames 1 and 2 only
    assert np.all(scores["J"] == 1.0) and np.all(scores["F"] == 1.0)
    pred[1] = 0                      # an evaluated frame wrong: J = [0, 1]
    scores = evaluate_davis_sequence(gt, pred)
    assert scores["J"].tolist() == [[0.0, 1.0]]
    res = summarize_davis(zip(scores["J"], scores["F"]))
    assert res["J-Mean"] == pytest.approx(0.5) and res["J-Recall"] == pytest.approx(0.5)


def test_objects_come_from_the_first_frame_and_void_is_background():
    # Frame 0 has objects 1 and 2 plus void (255); object 3 appears later and is no object.
    gt = _video(12, 12, [[(1, 0, 0, 4, 4), (2, 6, 6, 10, 10), (255, 0, 6, 2, 10)],
                         [(1, 0, 0, 4, 4), (2, 6, 6, 10, 10), (3, 10, 0, 12, 4),
                          (255, 0, 6, 2, 10)],
                         [(1, 0, 0, 4, 4), (2, 6, 6, 10, 10)]])
    assert num_davis_objects(gt[0]) == 2
    # Prediction of frame 1: object 1 exactly, object 2 never labelled (zero padding), and
    # object 1's label also on the 8 void pixels: void counts as background, so
    # J(object 1) = 16 / (16 + 8) = 2/3 (not 1); J(object 2) = 0.
    pred = np.zeros_like(gt)
    pred[1, 0:4, 0:4] = 1
    pred[1, 0:2, 6:10] = 1
    scores = evaluate_davis_sequence(gt, pred)
    assert scores["J"][:, 0] == pytest.approx([2 / 3, 0.0])
    assert scores["F"][1, 0] == 0.0
    # A predicted label above N is an error (the official script exits).
    pred[1, 11, 11] = 3
    with pytest.raises(ValueError, match="label 3"):
        evaluate_davis_sequence(gt, pred)


def test_frame_scores_shape_mismatch():
    with pytest.raises(ValueError, match="size"):
        davis_frame_scores(np.zeros((4, 4), np.uint8), np.zeros((4, 5), np.uint8), 1)
    with pytest.raises(ValueError, match="frames"):
        evaluate_davis_sequence(np.zeros((3, 4, 4), np.uint8), np.zeros((2, 4, 4), np.uint8))


def test_decay_on_a_constructed_sequence():
    # 12 frames -> 10 evaluated (1..10). Object 1 is predicted perfectly on evaluated frames
    # 0..4 and shifted by 2 pixels (J = 1/3, F = 0.625, see above) on 5..9. Bins (10 values):
    # bin 1 = values[0:3] (all 1), bin 4 = values[7:10] (all shifted).
    gt = _video(10, 10, [[(1, 2, 2, 6, 6)]] * 12)
    pred = gt.copy()
    for t in range(6, 11):
        pred[t] = square(10, 10, 2, 4, 6, 8)
    scores = evaluate_davis_sequence(gt, pred)
    res = summarize_davis(zip(scores["J"], scores["F"]))
    assert res["J-Mean"] == pytest.approx((5 + 5 / 3) / 10)
    assert res["J-Recall"] == pytest.approx(0.5)
    assert res["J-Decay"] == pytest.approx(1 - 1 / 3)
    assert res["F-Mean"] == pytest.approx((5 + 5 * 0.625) / 10)
    assert res["F-Recall"] == pytest.approx(1.0)         # 0.625 > 0.5
    assert res["F-Decay"] == pytest.approx(1 - 0.625)
    assert res["J&F-Mean"] == pytest.approx((res["J-Mean"] + res["F-Mean"]) / 2)


def test_global_means_are_over_objects():
    # Sequence A: one object, perfect (J-Mean 1). Sequence B: two objects, one perfect, one
    # missed (0): mean over the 3 objects = 2/3 (a per-sequence mean would give 0.75).
    per_object = [(np.ones(3), np.ones(3)), (np.ones(2), np.ones(2)),
                  (np.zeros(2), np.zeros(2))]
    res = summarize_davis(per_object)
    assert res["J-Mean"] == pytest.approx(2 / 3) and res["F-Mean"] == pytest.approx(2 / 3)
    assert math.isnan(summarize_davis([])["J&F-Mean"])


def test_perfect_prediction_scores_one():
    gt = _video(20, 30, [[(1, t, 0, t + 5, 8), (2, 10, t, 16, t + 9), (255, 18, 0, 20, 30)]
                         for t in range(6)])
    pred = np.where(gt == 255, 0, gt)
    scores = evaluate_davis_sequence(gt, pred)
    res = summarize_davis(zip(scores["J"], scores["F"]))
    assert res == pytest.approx({"J&F-Mean": 1.0, "J-Mean": 1.0, "J-Recall": 1.0, "J-Decay": 0.0,
                                 "F-Mean": 1.0, "F-Recall": 1.0, "F-Decay": 0.0})


def test_palette_is_the_davis_palette():
    p = np.array(davis_palette()).reshape(256, 3)
    assert p[0].tolist() == [0, 0, 0] and p[1].tolist() == [128, 0, 0]
    assert p[2].tolist() == [0, 128, 0] and p[3].tolist() == [128, 128, 0]
    assert p[255].tolist() == [224, 224, 192]


# ------------------------------------------------------------------------ the evaluator
DAVIS_NAME = "omg_shapes_video_val_davis"


def _gt_maps(record):
    return np.stack([read_index_png(p) for p in record["mask_file_names"]])


def test_evaluator_ground_truth_scores_100(synthetic_root, tmp_path):
    records = DatasetCatalog.get(DAVIS_NAME)
    assert records
    evaluator = DAVISEvaluator(DAVIS_NAME, output_dir=str(tmp_path))
    evaluator.reset()
    for i, r in enumerate(records):
        # the first as an array, the others as per-frame PNG paths
        masks = _gt_maps(r) if i == 0 else list(r["mask_file_names"])
        evaluator.process([{"video_id": r["video_id"]}], [{"vos_masks": masks}])
    res = evaluator.evaluate()["vos"]
    assert res == pytest.approx({"J&F-Mean": 100.0, "J-Mean": 100.0, "J-Recall": 100.0,
                                 "J-Decay": 0.0, "F-Mean": 100.0, "F-Recall": 100.0,
                                 "F-Decay": 0.0})
    root = tmp_path / RESULTS_DIR
    for r in records:
        names = sorted(os.listdir(root / r["video_id"]))
        assert names == sorted(os.path.basename(p) for p in r["mask_file_names"])
        written = np.stack([read_index_png(str(root / r["video_id"] / n)) for n in names])
        assert np.array_equal(written, _gt_maps(r))
    assert not [p for p in os.listdir(root) if p.startswith(".")]


def test_evaluator_missing_video_is_scored_as_background(synthetic_root, caplog):
    records = DatasetCatalog.get(DAVIS_NAME)
    evaluator = DAVISEvaluator(DAVIS_NAME)
    evaluator.reset()
    r = records[0]
    evaluator.process([{}], [{"video_id": r["video_id"], "vos_masks": _gt_maps(r)}])
    with caplog.at_level(logging.WARNING, logger="omgseg.evaluation.video_instance"):
        res = evaluator.evaluate()["vos"]
    if len(records) > 1:
        assert "no prediction" in caplog.text
        assert res["J-Mean"] < 100.0
    with pytest.raises(ValueError, match="not in dataset"):
        evaluator.process([{}], [{"video_id": "no-such-video", "vos_masks": _gt_maps(r)}])


def test_evaluator_first_frame_only_split_writes_pngs_only(synthetic_root, tmp_path, caplog):
    import uuid

    r = dict(DatasetCatalog.get(DAVIS_NAME)[0])
    r["mask_file_names"] = [r["mask_file_names"][0]] + [None] * (r["length"] - 1)
    name = f"test_davis_first_frame_only_{uuid.uuid4().hex[:8]}"
    DatasetCatalog.register(name, lambda: [r])
    evaluator = DAVISEvaluator(name, output_dir=str(tmp_path))
    evaluator.reset()
    pred = np.zeros((r["length"], r["height"], r["width"]), np.uint8)
    evaluator.process([{"video_id": r["video_id"]}], [{"vos_masks": pred}])
    with caplog.at_level(logging.INFO, logger="omgseg.evaluation.video_instance"):
        assert evaluator.evaluate() == {}
    assert "no metrics" in caplog.text
    assert len(os.listdir(tmp_path / RESULTS_DIR / r["video_id"])) == r["length"]
