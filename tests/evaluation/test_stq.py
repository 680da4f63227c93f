"""STQ as VIPSeg's ``eval_stq_vspw.py`` + deeplab2's numpy ``STQuality`` compute it:
hand-computed toy videos (4x4 maps) with the encoding, crowd = instance 0, pooled AQ and the
ignore-column rules, and the official file layout."""
import math

import numpy as np
import pytest

from omgseg.evaluation.video_panoptic import compute_stq, compute_stq_from_files
from omgseg.evaluation.video_panoptic.stq import STQVideo

ROAD, CAR = 0, 1  # K = 2 classes: road is stuff, car is a thing
K, THINGS, IGNORE = 2, [CAR], 255


def frame(rows, listing):
    """A panoptic frame: ``rows`` of ids, ``listing`` = [(id, category)] in listing order."""
    return np.array(rows, dtype=np.int64), [{"id": i, "category_id": c} for i, c in listing]


# Road (id 10) on the top half, car a (20) bottom-left, car b (30) bottom-right.
GT_ROWS = [[10, 10, 10, 10], [10, 10, 10, 10], [20, 20, 30, 30], [20, 20, 30, 30]]
GT_LIST = [(10, ROAD), (20, CAR), (30, CAR)]  # road first: instance 0 is not a thing
PRED_ROWS = [[1, 1, 1, 1], [1, 1, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
SWAP_ROWS = [[1, 1, 1, 1], [1, 1, 1, 1], [3, 3, 2, 2], [3, 3, 2, 2]]
PRED_LIST = [(1, ROAD), (2, CAR), (3, CAR)]


def test_encoding_numbers_instances_in_order_of_first_listing_from_zero():
    video = STQVideo(K, THINGS, IGNORE)
    numbers = {}
    labels = video.encode(frame([[7, 0], [9, 5]], [(9, CAR), (7, ROAD)]), numbers)
    # 9 listed first -> instance 0, 7 -> 1; 5 is not listed and 0 is VOID -> (255 << 16) + 255.
    assert numbers == {9: 0, 7: 1}
    assert labels.tolist() == [[(ROAD << 16) + 1, (255 << 16) + 255],
                               [(CAR << 16) + 0, (255 << 16) + 255]]
    labels = video.encode(frame([[5, 7]], [(5, CAR), (7, ROAD)]), numbers)
    assert numbers == {9: 0, 7: 1, 5: 2}  # numbering continues over the video's frames
    assert labels.tolist() == [[(CAR << 16) + 2, (ROAD << 16) + 1]]


def test_perfect_prediction_scores_100():
    gt = [frame(GT_ROWS, GT_LIST)] * 3
    pred = [frame(PRED_ROWS, PRED_LIST)] * 3
    res = compute_stq([(gt, pred)], K, THINGS, IGNORE)
    assert res == pytest.approx({"STQ": 100.0, "AQ": 100.0, "SQ": 100.0})


def test_hand_computed_id_swap():
    # Frame 0 correct, frame 1 the two car ids swapped. Gt tube a = 8 px; pred tube 2 = 8 px
    # (left in frame 0, right in frame 1) meets a on 4 px: IoU 4 / (8 + 8 - 4) = 1/3, so
    # TPA * IoU = 4/3; pred 3 likewise 4/3. a: 1/8 * 8/3 = 1/3; b: 1/3.
    # AQ = (1/3 + 1/3) / 2 tubes = 1/3; semantics exact -> SQ 1; STQ = sqrt(1/3).
    gt = [frame(GT_ROWS, GT_LIST)] * 2
    pred = [frame(PRED_ROWS, PRED_LIST), frame(SWAP_ROWS, PRED_LIST)]
    res = compute_stq([(gt, pred)], K, THINGS, IGNORE)
    assert res["AQ"] == pytest.approx(100 / 3)
    assert res["SQ"] == pytest.approx(100.0)
    assert res["STQ"] == pytest.approx(100 * math.sqrt(1 / 3))


def test_thing_listed_first_is_crowd():
    # Car a listed first in the video -> instance 0 -> crowd: removed from the gt tubes and
    # from the prediction. With the swap: gt b = 8 px; pred 3 keeps 4 px (frame 0, right; its
    # frame-1 pixels lie on the crowd), pred 2 keeps 4 px (frame 1, right). Each meets b on
    # 4 px: IoU 4 / (8 + 4 - 4) = 0.5, TPA * IoU = 2; b: 1/8 * 4 = 0.5; AQ = 0.5 / 1 tube.
    listing = [(20, CAR), (10, ROAD), (30, CAR)]
    gt = [frame(GT_ROWS, listing)] * 2
    pred = [frame(PRED_ROWS, PRED_LIST), frame(SWAP_ROWS, PRED_LIST)]
    res = compute_stq([(gt, pred)], K, THINGS, IGNORE)
    assert res["AQ"] == pytest.approx(50.0)
    assert res["STQ"] == pytest.approx(100 * math.sqrt(0.5))


def test_aq_is_pooled_over_all_ground_truth_tubes():
    # Video P: one car tracked perfectly (outer sum 1, 1 tube); video Q: the swap above
    # (outer sum 2/3, 2 tubes). AQ = (1 + 2/3) / 3 = 5/9, not the mean of the per-video AQ
    # (1 + 1/3) / 2 = 2/3.
    one_car = [[10, 10, 10, 10], [10, 10, 10, 10], [20, 20, 10, 10], [20, 20, 10, 10]]
    p_pred = [[1, 1, 1, 1], [1, 1, 1, 1], [2, 2, 1, 1], [2, 2, 1, 1]]
    video_p = ([frame(one_car, [(10, ROAD), (20, CAR)])] * 2,
               [frame(p_pred, [(1, ROAD), (2, CAR)])] * 2)
    video_q = ([frame(GT_ROWS, GT_LIST)] * 2,
               [frame(PRED_ROWS, PRED_LIST), frame(SWAP_ROWS, PRED_LIST)])
    res = compute_stq([video_p, video_q], K, THINGS, IGNORE)
    assert res["AQ"] == pytest.approx(100 * 5 / 9)


def test_predicted_void_on_labelled_pixels_adds_an_ignore_class_with_iou_0():
    # Frame 0 predicts VOID on the top road row. Road: gt 16 px, predicted 12, tp 12 ->
    # IoU 0.75; car IoU 1; the ignore column has union 4 (labelled gt predicted VOID), tp 0
    # -> a third class with IoU 0. SQ = (0.75 + 1 + 0) / 3.
    void_row = [[0, 0, 0, 0]] + PRED_ROWS[1:]
    gt = [frame(GT_ROWS, GT_LIST)] * 2
    pred = [frame(void_row, PRED_LIST), frame(PRED_ROWS, PRED_LIST)]
    res = compute_stq([(gt, pred)], K, THINGS, IGNORE)
    assert res["SQ"] == pytest.approx(100 * 1.75 / 3)
    assert res["AQ"] == pytest.approx(100.0)


def test_ground_truth_void_counts_nowhere():
    # Gt VOID (id 0) on the top row is the zeroed ignore row: whatever is predicted there
    # changes nothing.
    gt_rows = [[0, 0, 0, 0]] + GT_ROWS[1:]
    gt = [frame(gt_rows, GT_LIST)]
    exact = compute_stq([(gt, [frame(PRED_ROWS, PRED_LIST)])], K, THINGS, IGNORE)
    cars_on_void = [[2, 2, 3, 3]] + PRED_ROWS[1:]
    other = compute_stq([(gt, [frame(cars_on_void, PRED_LIST)])], K, THINGS, IGNORE)
    assert exact["SQ"] == pytest.approx(100.0)
    assert other["SQ"] == pytest.approx(100.0)
    # ... but predicted car pixels on gt VOID do enlarge the predicted tubes (they are thing
    # pixels of the prediction, not crowd): each car tube 4 + 2 px vs gt 4 px -> IoU 4/6.
    assert other["AQ"] == pytest.approx(100 * 4 / 6)


def test_ignore_label_equal_to_k_gives_the_same_numbers():
    gt = [frame([[0, 0, 0, 0]] + GT_ROWS[1:], GT_LIST)] * 2
    pred = [frame([[0, 0, 0, 0]] + PRED_ROWS[1:], PRED_LIST), frame(SWAP_ROWS, PRED_LIST)]
    assert compute_stq([(gt, pred)], K, THINGS, 255) == pytest.approx(
        compute_stq([(gt, pred)], K, THINGS, K))


def test_categories_outside_the_classes_raise():
    gt = [frame(GT_ROWS, GT_LIST)]
    with pytest.raises(ValueError, match="outside"):
        compute_stq([(gt, [frame(PRED_ROWS, [(1, ROAD), (2, 7), (3, CAR)])])], K, THINGS)


def test_swapping_ids_halfway_lowers_aq():
    gt = [frame(GT_ROWS, GT_LIST)] * 8
    pred = [frame(PRED_ROWS, PRED_LIST)] * 4 + [frame(SWAP_ROWS, PRED_LIST)] * 4
    res = compute_stq([(gt, pred)], K, THINGS, IGNORE)
    # Each gt car tube (32 px) splits 16 / 16 over two pred tubes of 32 px: IoU 16 / 48 ->
    # TPA * IoU = 16/3 each -> per tube 1/32 * 32/3 = 1/3 -> AQ = 1/3.
    assert res["AQ"] == pytest.approx(100 / 3)
    assert res["SQ"] == pytest.approx(100.0)


def test_file_layout_matches_the_hand_computed_case(tmp_path):
    from test_vpq import write_official_layout  # tests/evaluation is on sys.path

    gt = [frame(GT_ROWS, GT_LIST)] * 2
    pred = [frame(PRED_ROWS, PRED_LIST), frame(SWAP_ROWS, PRED_LIST)]
    cats = {ROAD: {"id": ROAD, "isthing": 0}, CAR: {"id": CAR, "isthing": 1}}
    gt_json, gt_folder, submit = write_official_layout(str(tmp_path), [(gt, pred)], cats)
    res = compute_stq_from_files(gt_json, gt_folder, submit)  # K = max id + 1 = 2
    assert res["AQ"] == pytest.approx(100 / 3)
    assert res["STQ"] == pytest.approx(100 * math.sqrt(1 / 3))
