import math

import pytest
import torch
import torch.nn.functional as F

from detectron2.structures import BitMasks, Instances

from omgseg.modeling.postprocessing import (
    frame_inference,
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


# ---------------------------------------------------------------------------------------------
# The previous implementation (all queries' masks at output resolution, one loop pass over the
# full-resolution maps per segment), kept as the reference of the select-first version.


def _ref_semantic(mask_cls, mask_pred):
    return torch.einsum("qc,qhw->chw", F.softmax(mask_cls, dim=-1)[:, :-1], mask_pred.sigmoid())


def _ref_panoptic(mask_cls, mask_pred, is_thing, object_mask_threshold, overlap_threshold):
    num_classes = mask_cls.shape[-1] - 1
    scores, labels = F.softmax(mask_cls, dim=-1).max(-1)
    keep = labels.ne(num_classes) & (scores > object_mask_threshold)
    cur_scores, cur_classes, cur_masks = scores[keep], labels[keep], mask_pred.sigmoid()[keep]
    seg = torch.zeros(mask_pred.shape[-2:], dtype=torch.int32)
    info, stuff, current = [], {}, 0
    if cur_masks.shape[0] == 0:
        return seg, info
    mask_ids = (cur_scores.view(-1, 1, 1) * cur_masks).argmax(0)
    for k in range(cur_classes.shape[0]):
        pred_class = int(cur_classes[k])
        isthing = bool(is_thing[pred_class])
        full = cur_masks[k] >= 0.5
        visible = mask_ids == k
        mask_area, original_area = int(visible.sum()), int(full.sum())
        mask = visible & full
        if mask_area == 0 or original_area == 0 or int(mask.sum()) == 0:
            continue
        if mask_area / original_area < overlap_threshold:
            continue
        if not isthing:
            if pred_class in stuff:
                seg[mask] = stuff[pred_class]
                continue
            stuff[pred_class] = current + 1
        current += 1
        seg[mask] = current
        info.append({"id": current, "isthing": isthing, "category_id": pred_class,
                     "score": float(cur_scores[k])})
    return seg, info


def _ref_instance(mask_cls, mask_pred, topk, thing_mask):
    q, k1 = mask_cls.shape
    k = k1 - 1
    scores = F.softmax(mask_cls, dim=-1)[:, :-1]
    labels = torch.arange(k).unsqueeze(0).repeat(q, 1).flatten()
    top_scores, top_idx = scores.flatten().topk(min(topk, q * k), sorted=True)
    top_labels = labels[top_idx]
    masks = mask_pred[top_idx // k]
    if thing_mask is not None:
        keep = torch.tensor(thing_mask)[top_labels]
        top_scores, top_labels, masks = top_scores[keep], top_labels[keep], masks[keep]
    binary = masks > 0
    mask_scores = (masks.sigmoid().flatten(1) * binary.flatten(1)).sum(1) / (
        binary.flatten(1).sum(1) + 1e-6
    )
    boxes = BitMasks(binary).get_bounding_boxes().tensor
    return binary, boxes, top_scores * mask_scores, top_labels


def _realistic_outputs(seed, q=40, k=7, low=(6, 8), size=(24, 32)):
    """Blob masks: each low-resolution cell owned by one query (logit ~ +8 there, ~ -8 elsewhere,
    noisy), upsampled; every 5th query duplicates another's mask (an occluded duplicate). Class
    logits of which about a third have void as the top class."""
    g = torch.Generator().manual_seed(seed)
    owner = torch.randint(0, q, low, generator=g)
    low_res = torch.where(owner == torch.arange(q).view(q, 1, 1), 8.0, -8.0)
    low_res = low_res + 2.0 * torch.randn(q, *low, generator=g)
    low_res[::5] = low_res[1::5][: low_res[::5].shape[0]] + 0.5
    masks = F.interpolate(low_res[None], size=size, mode="bilinear", align_corners=False)[0]
    mask_cls = 3.0 * torch.randn(q, k + 1, generator=g)
    mask_cls[: q // 3, -1] += 6.0
    return mask_cls, masks


IS_THING_7 = [True, True, True, False, False, True, False]


def _assert_same_panoptic(got, want):
    assert torch.equal(got[0], want[0])
    assert [{**s, "score": pytest.approx(s["score"], rel=1e-6)} for s in want[1]] == got[1]


def _assert_same_instances(got, want):
    binary, boxes, scores, labels = want
    assert torch.equal(got.pred_masks, binary)
    assert torch.equal(got.pred_boxes.tensor, boxes)
    torch.testing.assert_close(got.scores, scores, rtol=1e-6, atol=1e-7)
    assert torch.equal(got.pred_classes, labels)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("object_mask_threshold, overlap_threshold", [(0.0, 0.8), (0.4, 0.5)])
def test_panoptic_equals_previous_implementation(seed, object_mask_threshold, overlap_threshold):
    mask_cls, masks = _realistic_outputs(seed)
    want = _ref_panoptic(mask_cls, masks, IS_THING_7, object_mask_threshold, overlap_threshold)
    got = panoptic_inference(mask_cls, masks, IS_THING_7, object_mask_threshold, overlap_threshold)
    _assert_same_panoptic(got, want)
    assert len(want[1]) >= 3 and int((want[0] == 0).sum()) > 0  # segments and void pixels


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("topk, thing_mask", [(100, None), (15, None), (100, IS_THING_7)])
def test_instance_equals_previous_implementation(seed, topk, thing_mask):
    mask_cls, masks = _realistic_outputs(seed)
    got = instance_inference(mask_cls, masks, topk=topk, thing_mask=thing_mask)
    _assert_same_instances(got, _ref_instance(mask_cls, masks, topk, thing_mask))


def _pipeline(padded, image_size, out_size):
    """Upsample x4 to the padded input, crop the image, resize to the output size."""

    def resize(x):
        x = F.interpolate(x[None], size=padded, mode="bilinear", align_corners=False)[0]
        x = x[:, : image_size[0], : image_size[1]]
        return F.interpolate(x[None], size=out_size, mode="bilinear", align_corners=False)[0]

    return resize


@pytest.mark.parametrize("outputs", [(True, True, True), (False, True, True), (False, False, True),
                                     (True, False, False), (False, True, False)])
def test_frame_inference_equals_previous_pipeline_and_resizes_only_chosen_masks(outputs):
    semantic, panoptic, instance = outputs
    mask_cls, low = _realistic_outputs(5, q=30, size=(8, 10))  # decoder resolution
    resize = _pipeline((32, 40), (29, 37), (45, 52))
    calls = []

    def counting_resize(x):
        calls.append(x.shape[0])
        return resize(x)

    got = frame_inference(
        mask_cls, low, counting_resize, semantic=semantic, panoptic=panoptic, instance=instance,
        is_thing=IS_THING_7, topk=12, instance_thing_mask=None,
    )
    full = resize(low)  # every query at output resolution: the previous pipeline
    assert set(got) == {k for k, on in zip(("sem_seg", "panoptic_seg", "instances"), outputs) if on}
    if semantic:
        torch.testing.assert_close(got["sem_seg"], _ref_semantic(mask_cls, full), atol=1e-5, rtol=0)
        assert calls == [30]
    if panoptic:
        want = _ref_panoptic(mask_cls, full, IS_THING_7, 0.0, 0.8)
        _assert_same_panoptic(got["panoptic_seg"], want)
    if instance:
        _assert_same_instances(got["instances"], _ref_instance(mask_cls, full, 12, None))
    if not semantic:
        # Only the chosen queries were resized: fewer than all 30 (10 are void; top-12 pairs).
        assert len(calls) == 1 and calls[0] < 30
