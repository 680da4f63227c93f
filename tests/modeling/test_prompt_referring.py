"""Referring regions across images: selection by class-embedding similarity, overlap
resolution, threshold calibration."""
import pytest
import torch
from torch.nn import functional as F

from omgseg.modeling.prompts import best_f1_threshold, referring_masks, referring_selection


def test_referring_selection_keeps_similar_non_void_queries_best_first():
    emb = F.normalize(torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [1.0, 0.1]]), dim=-1)
    # query 3 is void (its void logit wins), the others have a class
    mask_cls = torch.tensor([[5.0, 0.0, 0.0], [5.0, 0.0, 0.0], [0.0, 5.0, 0.0],
                             [-5.0, -5.0, 0.0]])
    out = referring_selection(torch.tensor([1.0, 0.0]), emb, mask_cls, threshold=0.7)
    assert out.query_ids.tolist() == [0, 1]  # cos 1.0, 0.8; query 2 (0.0) below, 3 void
    torch.testing.assert_close(out.similarity, torch.tensor([1.0, 0.8]))
    # several references: the best one counts
    two = referring_selection(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), emb, mask_cls, 0.7)
    assert sorted(two.query_ids.tolist()) == [0, 1, 2]


def test_referring_masks_resolve_overlaps_by_similarity():
    probs = torch.zeros(3, 4, 4)
    probs[0, :, :2] = 0.9  # left half
    probs[1, :, 1:] = 0.9  # overlaps query 0 on column 1
    probs[2, 0, 0] = 0.9  # entirely inside query 0's area, lower similarity
    masks, keep = referring_masks(torch.tensor([0.9, 0.8, 0.7]), probs, overlap_threshold=0.6)
    assert keep.tolist() == [0, 1]
    assert masks[0].sum() == 8 and masks[1].sum() == 8  # column 1 goes to the more similar
    assert not (masks[0] & masks[1]).any()
    empty, keep = referring_masks(torch.zeros(0), torch.zeros(0, 4, 4))
    assert empty.shape == (0, 4, 4) and keep.numel() == 0


def test_best_f1_threshold_by_hand():
    sim = torch.tensor([0.9, 0.8, 0.75, 0.6, 0.3])
    same = torch.tensor([True, True, False, True, False])
    # cut at 0.9: F1 2*1/(1+3)=0.5; 0.8: 2*2/(2+3)=0.8; 0.75: 2*2/(3+3)=0.667;
    # 0.6: 2*3/(4+3)=0.857; 0.3: 2*3/(5+3)=0.75
    thr, f1 = best_f1_threshold(sim, same)
    assert thr == pytest.approx(0.6) and f1 == pytest.approx(6 / 7)
    # equal similarities cannot be split
    thr, _ = best_f1_threshold(torch.tensor([0.5, 0.5]), torch.tensor([True, False]))
    assert thr == 0.5
    with pytest.raises(ValueError, match="no same-kind"):
        best_f1_threshold(sim, torch.zeros(5, dtype=torch.bool))
