"""Query association across clips (Hungarian on 1 - cosine) and clip-averaged logits."""
import numpy as np
import pytest
import torch

from omgseg.modeling.video.association import QueryTracker, match_embeddings


def test_match_embeddings_recovers_a_known_permutation():
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(6, 16, generator=g)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    # current[perm[j]] = reference[j] (scaled and slightly noisy: cosine ignores the scale)
    current = torch.empty_like(ref)
    current[perm] = ref * 3.0 + 0.01 * torch.randn(6, 16, generator=g)
    assert match_embeddings(ref, current).tolist() == perm.tolist()


def test_match_embeddings_hand_computed_cost():
    # reference rows e0, e1; current rows: c0 close to e1, c1 between (closer to e0).
    ref = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    cur = torch.tensor([[0.1, 1.0], [1.0, 0.9]])
    # cost [ref, cur] = 1 - cos: [[0.900, 0.257], [0.005, 0.331]] -> ref0<-cur1, ref1<-cur0
    assert match_embeddings(ref, cur).tolist() == [1, 0]
    with pytest.raises(ValueError, match=r"\[Q, C\]"):
        match_embeddings(ref, cur[:1])


def test_tracker_aligns_to_the_previous_clip_and_averages_logits():
    ref = torch.eye(3)
    tracker = QueryTracker()
    logits1 = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    obj1 = torch.tensor([[1.0], [2.0], [3.0]])
    assert tracker.update(logits1, obj1, ref).tolist() == [0, 1, 2]

    # clip 2: queries listed in the order (2, 0, 1) of the tracks
    order = [2, 0, 1]
    logits2 = torch.tensor([[5.0, 5.0], [3.0, 2.0], [2.0, 4.0]])  # rows = tracks 2, 0, 1
    obj2 = torch.tensor([[-3.0], [3.0], [0.0]])
    perm = tracker.update(logits2, obj2, ref[order])
    assert perm.tolist() == [1, 2, 0]  # track j is row perm[j] of clip 2

    # clip 3 aligned to clip 2's aligned features (identical here): order (1, 2, 0)
    order3 = [1, 2, 0]
    logits3 = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 3.0]])  # rows = tracks 1, 2, 0
    obj3 = torch.tensor([[6.0], [0.0], [0.0]])
    assert tracker.update(logits3, obj3, ref[order3] * 2).tolist() == [2, 0, 1]

    # averages over 3 clips of the aligned logits (not probabilities), track by track
    expected_cls = torch.tensor([
        [(1 + 3 + 0) / 3, (0 + 2 + 3) / 3],   # track 0
        [(0 + 2 + 0) / 3, (2 + 4 + 0) / 3],   # track 1
        [(3 + 5 + 1) / 3, (3 + 5 + 1) / 3],   # track 2
    ])
    expected_obj = torch.tensor([[(1 + 3 + 0) / 3], [(2 + 0 + 6) / 3], [(3 - 3 + 0) / 3]])
    assert torch.allclose(tracker.mask_cls, expected_cls)
    assert torch.allclose(tracker.objectness, expected_obj)
    assert tracker.num_clips == 3


def test_tracker_errors():
    tracker = QueryTracker()
    with pytest.raises(RuntimeError, match="no clip"):
        _ = tracker.mask_cls
    tracker.update(torch.zeros(3, 2), torch.zeros(3, 1), torch.eye(3))
    with pytest.raises(ValueError, match="clip 1 has 2 queries"):
        tracker.update(torch.zeros(2, 2), torch.zeros(2, 1), torch.eye(2))
    with pytest.raises(ValueError, match="objectness rows"):
        tracker.update(torch.zeros(3, 2), torch.zeros(2, 1), torch.eye(3))


def test_match_is_a_permutation_even_with_identical_features():
    perm = match_embeddings(torch.ones(4, 3), torch.ones(4, 3))
    assert sorted(perm.tolist()) == [0, 1, 2, 3]
    assert perm.dtype == np.int64
