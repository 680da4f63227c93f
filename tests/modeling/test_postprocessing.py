import math

import pytest
import torch

from detectron2.structures import Instances

from omgseg.modeling.postprocessing import (
    instance_inference,
    panoptic_inference,
    semantic_inference,
)

H = W = 8
IS_THING = [True, False]  # K = 2: class 0 thing, class 1 stuff


def _square(y0, y1, x0, x1):
    m = torch.full((H, W), -10.0)
    m[y0:y1, x0:x1] = 10.0
    return m


def _cls(label, logit, k=2):
    row = torch.zeros(k + 1)
    row[label] = logit
    return row


def _softmax_max(row):
    e = [math.exp(v) for v in row.tolist()]
    return max(e) / sum(e)


def test_semantic_inference_equals_formula():
    gen = torch.Generator().manual_seed(0)
    mask_cls = torch.randn(4, 4, generator=gen)
    mask_pred = torch.randn(4, 5, 6, generator=gen)
    out = semantic_inference(mask_cls, mask_pred)
    assert out.shape == (3, 5, 6)
    probs = mask_cls.softmax(-1)
    ref = torch.zeros(3, 5, 6)
    for q in range(4):
        for c in range(3):
            ref[c] += probs[q, c] * mask_pred[q].sigmoid()
    torch.testing.assert_close(out, ref)


def test_panoptic_two_overlapping_things():
    mask_cls = torch.stack([_cls(0, 5.0), _cls(0, 3.0)])
    a, b = _square(1, 5, 1, 5), _square(3, 7, 3, 7)
    seg, info = panoptic_inference(
        mask_cls, torch.stack([a, b]), IS_THING, object_mask_threshold=0.0,
        overlap_threshold=0.5,
    )
    assert seg.dtype == torch.int32 and seg.shape == (H, W)
    expected = torch.zeros(H, W, dtype=torch.int32)
    expected[3:7, 3:7] = 2
    expected[1:5, 1:5] = 1  # higher score wins the overlap
    torch.testing.assert_close(seg, expected)
    assert [s["id"] for s in info] == [1, 2]
    assert all(s["isthing"] is True and s["category_id"] == 0 for s in info)
    assert info[0]["score"] == pytest.approx(_softmax_max(mask_cls[0]), rel=1e-5)
    assert info[1]["score"] == pytest.approx(_softmax_max(mask_cls[1]), rel=1e-5)
    assert set(info[0]) == {"id", "isthing", "category_id", "score"}


def test_panoptic_overlap_threshold_drops_occluded_segment():
    # b keeps 12 of its 16 pixels: 0.75 < 0.8 -> dropped
    mask_cls = torch.stack([_cls(0, 5.0), _cls(0, 3.0)])
    seg, info = panoptic_inference(
        mask_cls, torch.stack([_square(1, 5, 1, 5), _square(3, 7, 3, 7)]), IS_THING,
        overlap_threshold=0.8,
    )
    expected = torch.zeros(H, W, dtype=torch.int32)
    expected[1:5, 1:5] = 1
    torch.testing.assert_close(seg, expected)
    assert len(info) == 1 and info[0]["id"] == 1


def test_panoptic_stuff_merged_things_not():
    mask_cls = torch.stack([_cls(1, 4.0), _cls(0, 4.0), _cls(1, 6.0), _cls(0, 4.0)])
    masks = torch.stack(
        [_square(0, 4, 0, 4), _square(0, 4, 4, 8), _square(4, 8, 0, 4), _square(4, 8, 4, 8)]
    )
    seg, info = panoptic_inference(mask_cls, masks, IS_THING)
    expected = torch.zeros(H, W, dtype=torch.int32)
    expected[0:4, 0:4] = 1
    expected[4:8, 0:4] = 1  # second stuff query of class 1 joins segment 1
    expected[0:4, 4:8] = 2
    expected[4:8, 4:8] = 3  # things of the same class stay separate
    torch.testing.assert_close(seg, expected)
    assert [(s["id"], s["category_id"], s["isthing"]) for s in info] == [
        (1, 1, False), (2, 0, True), (3, 0, True)
    ]


def test_panoptic_void_and_low_score_queries_dropped():
    mask_cls = torch.stack([_cls(2, 8.0), _cls(1, 0.5), _cls(0, 6.0)])  # query 0 argmax = void
    masks = torch.stack([_square(0, 8, 0, 8), _square(0, 4, 0, 8), _square(4, 8, 0, 8)])
    seg, info = panoptic_inference(mask_cls, masks, IS_THING)
    expected = torch.zeros(H, W, dtype=torch.int32)
    expected[0:4] = 1
    expected[4:8] = 2
    torch.testing.assert_close(seg, expected)
    assert [s["category_id"] for s in info] == [1, 0]

    # query 1's score (~0.45) is below 0.5 -> dropped; remaining ids start at 1
    seg, info = panoptic_inference(mask_cls, masks, IS_THING, object_mask_threshold=0.5)
    expected = torch.zeros(H, W, dtype=torch.int32)
    expected[4:8] = 1
    torch.testing.assert_close(seg, expected)
    assert [(s["id"], s["category_id"]) for s in info] == [(1, 0)]

    # everything void -> empty
    seg, info = panoptic_inference(mask_cls[:1], masks[:1], IS_THING)
    assert info == [] and int(seg.abs().sum()) == 0

    with pytest.raises(ValueError):
        panoptic_inference(mask_cls, masks, [True])


def test_instance_inference_scores_boxes_classes():
    # Q = 3, K = 2
    mask_cls = torch.tensor([[4.0, 1.0, 0.0], [0.0, 3.0, 0.0], [1.0, 0.5, 2.0]])
    masks = torch.stack([_square(1, 4, 2, 6), _square(5, 8, 0, 3), _square(0, 2, 0, 2)])
    masks[0, 2, 3] = 1.0  # a weaker pixel inside query 0's mask
    probs = mask_cls.softmax(-1)[:, :-1]

    res = instance_inference(mask_cls, masks, topk=2)
    assert isinstance(res, Instances) and res.image_size == (H, W) and len(res) == 2
    assert res.pred_classes.tolist() == [0, 1]
    assert res.pred_masks.dtype == torch.bool
    torch.testing.assert_close(res.pred_masks, masks[[0, 1]] > 0)
    assert res.pred_boxes.tensor.tolist() == [[2.0, 1.0, 6.0, 4.0], [0.0, 5.0, 3.0, 8.0]]
    sig0 = (11 * torch.sigmoid(torch.tensor(10.0)) + torch.sigmoid(torch.tensor(1.0))) / 12
    sig1 = torch.sigmoid(torch.tensor(10.0))
    torch.testing.assert_close(
        res.scores, torch.stack([probs[0, 0] * sig0, probs[1, 1] * sig1]), rtol=1e-5, atol=1e-6
    )

    # topk capped at Q * K, ordered by class probability
    res = instance_inference(mask_cls, masks, topk=100)
    assert len(res) == 6
    order = probs.flatten().argsort(descending=True)
    assert res.pred_classes.tolist() == (order % 2).tolist()

    # thing filtering: only class 0 pairs survive the top-4 selection
    res = instance_inference(mask_cls, masks, topk=4, thing_mask=[True, False])
    kept = [int(i) for i in order[:4] if int(i) % 2 == 0]
    assert len(res) == len(kept) and set(res.pred_classes.tolist()) == {0}
    expected_scores = []
    for i in kept:
        m = masks[i // 2]
        b = m > 0
        expected_scores.append(probs.flatten()[i] * m.sigmoid()[b].mean())
    torch.testing.assert_close(res.scores, torch.stack(expected_scores), rtol=1e-5, atol=1e-6)


def test_instance_inference_empty_mask_box_is_zero():
    mask_cls = torch.tensor([[3.0, 0.0]])
    res = instance_inference(mask_cls, torch.full((1, H, W), -5.0), topk=10)
    assert len(res) == 1
    assert res.pred_boxes.tensor.tolist() == [[0.0, 0.0, 0.0, 0.0]]
    assert res.scores.item() == 0.0
