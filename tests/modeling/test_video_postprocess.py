"""Video post-processing rules with video-level scores (hand-computed cases)."""
import math

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch

from omgseg.modeling.postprocessing import QuerySelection, panoptic_from_masks
from omgseg.modeling.video.postprocess import (
    InstanceTubes,
    assign_vos_objects,
    paint_vos_frame,
    panoptic_frame,
    resize_mask_logits,
    semantic_labels,
    stable_segment_ids,
    vos_proposal_queries,
)

IS_THING = [True, True, False, False]


def test_stable_segment_ids_things_by_rank_stuff_by_class():
    # classes of the selected queries, in selection order
    assert stable_segment_ids([0, 2, 1, 2, 3], IS_THING) == [1, 2, 3, 2, 5]
    assert stable_segment_ids([], IS_THING) == []


def _probs():
    # 1 x 4 frame; q0 thing class 0 (score .9), q1 stuff class 2 (.8), q2 thing class 1 (.5)
    probs = torch.tensor([
        [[0.9, 0.9, 0.1, 0.1]],
        [[0.2, 0.6, 0.9, 0.9]],
        [[0.1, 0.1, 0.1, 0.8]],
    ])
    return torch.tensor([0.9, 0.8, 0.5]), torch.tensor([0, 2, 1]), probs


def test_panoptic_frame_hand_computed():
    scores, classes, probs = _probs()
    # score x prob: q0 [.81 .81 .09 .09], q1 [.16 .48 .72 .72], q2 [.05 .05 .05 .40]
    # winners [0 0 1 1]; q2 wins nothing; q1 visible 2 / full 3 = 0.67 < 0.8: dropped
    pan, info = panoptic_frame(scores, classes, probs, IS_THING, [11, 12, 13], 0.8)
    assert pan.tolist() == [[11, 11, 0, 0]]
    assert info == [{"id": 11, "isthing": True, "category_id": 0, "score": pytest.approx(0.9)}]
    pan, info = panoptic_frame(scores, classes, probs, IS_THING, [11, 12, 13], 0.5)
    assert pan.tolist() == [[11, 11, 12, 12]] and [s["id"] for s in info] == [11, 12]
    assert pan.dtype == torch.int32


def test_panoptic_frame_merges_stuff_of_one_class_under_one_id():
    scores = torch.tensor([0.9, 0.9])
    classes = torch.tensor([2, 2])
    probs = torch.tensor([[[0.9, 0.9, 0.0, 0.0]], [[0.0, 0.0, 0.9, 0.9]]])
    ids = stable_segment_ids(classes.tolist(), IS_THING)
    pan, info = panoptic_frame(scores, classes, probs, IS_THING, ids)
    assert pan.tolist() == [[1, 1, 1, 1]] and len(info) == 1 and info[0]["isthing"] is False


def test_panoptic_frame_equals_the_image_rule_up_to_ids():
    g = torch.Generator().manual_seed(3)
    k, h, w = 7, 12, 10
    scores = torch.rand(k, generator=g) * 0.5 + 0.5
    classes = torch.randint(0, 4, (k,), generator=g)
    probs = torch.rand(k, h, w, generator=g) * 0.4
    for q in range(k):  # a random box per query, some overlapping
        y, x = torch.randint(0, h - 3, (2,), generator=g).tolist()
        probs[q, y:y + 4, x:x + 4] += 0.55
    ref, ref_info = panoptic_from_masks(scores, classes, probs, IS_THING, 0.5)
    assert len(ref_info) >= 3  # a non-trivial case
    ids = stable_segment_ids(classes.tolist(), IS_THING)
    pan, info = panoptic_frame(scores, classes, probs, IS_THING, ids, 0.5)
    # the same partition of the pixels and the same categories
    pairs = set(zip(ref.flatten().tolist(), pan.flatten().tolist()))
    assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})
    cat = {s["id"]: s["category_id"] for s in info}
    ref_cat = {s["id"]: s["category_id"] for s in ref_info}
    assert all(ref_cat[a] == cat[b] for a, b in pairs if a)
    assert all((a == 0) == (b == 0) for a, b in pairs)


def test_panoptic_frame_without_queries():
    pan, info = panoptic_frame(torch.zeros(0), torch.zeros(0, dtype=torch.long),
                               torch.zeros(0, 3, 4), IS_THING, [])
    assert pan.shape == (3, 4) and not pan.any() and info == []


def test_semantic_labels_hand_computed():
    # q0 -> class 0, q1 -> class 1 (probability ~1); q0 on the left, q1 on the right
    mask_cls = torch.tensor([[10.0, 0.0, 0.0, 0.0, 0.0], [0.0, 10.0, 0.0, 0.0, 0.0]])
    logits = torch.tensor([[[5.0, 5.0, -5.0, -5.0]], [[-5.0, -5.0, 5.0, 5.0]]])
    labels = semantic_labels(mask_cls, logits)
    assert labels.tolist() == [[0, 0, 1, 1]] and labels.dtype == torch.int64


def test_resize_mask_logits_crops_padding_and_resizes():
    logits = torch.arange(2 * 4 * 4, dtype=torch.float32).view(2, 4, 4)
    out = resize_mask_logits(logits, (4, 4), (3, 2), None)
    assert torch.equal(out, logits[:, :3, :2])
    assert resize_mask_logits(logits, (8, 8), (6, 4), (12, 8)).shape == (2, 12, 8)
    assert resize_mask_logits(logits[:0], (8, 8), (6, 4), (12, 8)).shape == (0, 12, 8)


def _sig(x):
    return 1 / (1 + math.exp(-x))


def test_instance_tubes_scores_and_rles():
    sel = QuerySelection(query_ids=torch.tensor([1, 0, 1]), scores=torch.tensor([0.9, 0.6, 0.3]),
                         classes=torch.tensor([0, 1, 1]))
    tubes = InstanceTubes(sel, num_frames=2)
    assert tubes.queries.tolist() == [0, 1]
    f0 = torch.tensor([[[2.0, -1.0], [-1.0, -1.0]], [[0.5, 1.0], [-3.0, -3.0]]])
    f1 = torch.tensor([[[-1.0, -1.0], [-1.0, -1.0]], [[3.0, -1.0], [-1.0, -1.0]]])
    tubes.add_frame(f0)
    tubes.add_frame(f1)
    out = tubes.result()
    m_q0 = (_sig(2.0) + 0.0) / 2  # frame 1: empty mask -> mask score 0
    m_q1 = ((_sig(0.5) + _sig(1.0)) / 2 + _sig(3.0)) / 2
    assert [o["category_id"] for o in out] == [0, 1, 1]
    assert [o["score"] for o in out] == pytest.approx([0.9 * m_q1, 0.6 * m_q0, 0.3 * m_q1],
                                                      rel=1e-5)
    for o, q in zip(out, [1, 0, 1]):
        assert len(o["segmentations"]) == 2
        for frame, rle in zip((f0, f1), o["segmentations"]):
            assert isinstance(rle["counts"], str) and rle["size"] == [2, 2]
            decoded = mask_util.decode(dict(rle, counts=rle["counts"].encode()))
            assert np.array_equal(decoded.astype(bool), (frame[q] > 0).numpy())
    with pytest.raises(ValueError, match="more than the 2 frames"):
        tubes.add_frame(f0)


def test_instance_tubes_need_every_frame():
    sel = QuerySelection(torch.tensor([0]), torch.tensor([1.0]), torch.tensor([0]))
    tubes = InstanceTubes(sel, num_frames=2)
    tubes.add_frame(torch.ones(1, 2, 2))
    with pytest.raises(ValueError, match="1 of 2 frames"):
        tubes.result()


def test_vos_proposals_in_official_order():
    objectness = torch.tensor([[0.1], [3.0], [-1.0], [2.0], [5.0]])
    # top 3 by objectness: 4, 1, 3; the official proposal list is reversed (increasing)
    assert vos_proposal_queries(objectness, 3).tolist() == [3, 1, 4]
    assert vos_proposal_queries(objectness, 25).tolist() == [2, 0, 3, 1, 4]


def test_vos_assignment_by_iou_and_painting():
    rows = torch.tensor([
        [1, 1, 0, 0, 0, 0],
        [0, 0, 1, 1, 0, 0],
        [1, 1, 1, 0, 0, 0],
    ], dtype=torch.bool)[:, None]
    objects = torch.tensor([[1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 1, 0]], dtype=torch.bool)[:, None]
    # IoU: r0-o0 1, r1-o1 2/3, r2-o0 2/3, r2-o1 1/5: best total r0->o0, r1->o1
    assignment = assign_vos_objects(rows, objects)
    assert assignment == [(0, 0), (1, 1)]
    assert paint_vos_frame(rows, assignment, [7, 9]).tolist() == [[7, 7, 9, 9, 0, 0]]


def test_vos_painting_later_rows_win_overlaps():
    rows = torch.tensor([[1, 1, 1, 0], [0, 1, 1, 1]], dtype=torch.bool)[:, None]
    assert paint_vos_frame(rows, [(0, 0), (1, 1)], [1, 2]).tolist() == [[1, 2, 2, 2]]
    assert paint_vos_frame(rows, [(1, 1), (0, 0)], [1, 2]).tolist() == [[1, 1, 1, 2]]
    out = paint_vos_frame(rows, [], [1, 2])
    assert out.dtype == np.uint8 and not out.any()


def test_vos_assignment_with_empty_proposals_has_no_nan():
    rows = torch.zeros(2, 1, 4, dtype=torch.bool)
    objects = torch.tensor([[[1, 1, 0, 0]]], dtype=torch.bool)
    assert len(assign_vos_objects(rows, objects)) == 1
    with pytest.raises(ValueError, match="differ in size"):
        assign_vos_objects(rows, torch.ones(1, 2, 4, dtype=torch.bool))
