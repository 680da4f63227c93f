"""Open-vocabulary fusion (omgseg/modeling/open_vocab.py): mask pooling, the CLIP classifier, the
geometric fusion and the seen / unseen split, against hand computations; vocabulary parsing."""
import math

import pytest
import torch

from omgseg.modeling.open_vocab import (
    clip_class_logits,
    fuse_scores,
    mask_pool,
    seen_classes,
    synonym_set,
)
from omgseg.modeling.vocabulary import Vocabulary


def test_mask_pool_against_a_hand_computation():
    # B=1, T=2 frames, C=2 channels, 2x2 feature grid; masks already at the feature resolution.
    feats = torch.tensor([[[[1., 2.], [3., 4.]], [[10., 20.], [30., 40.]]],
                          [[[5., 6.], [7., 8.]], [[50., 60.], [70., 80.]]]])[None]
    big, small = 3.0, -3.0
    masks = torch.full((1, 3, 2, 2, 2), small)
    masks[0, 0, 0, 0, 0] = big  # query 0: pixel (0, 0) of frame 0 ...
    masks[0, 0, 1, 1, 1] = big  # ... and pixel (1, 1) of frame 1: a tube
    masks[0, 1, 0] = big        # query 1: all of frame 0
    # query 2: empty everywhere (logits < 0 = sigmoid < 0.5)
    masks[0, 2, 1, 0, 0] = 0.0  # logit exactly 0 (sigmoid 0.5) is NOT inside
    pooled, valid = mask_pool(feats, masks)
    assert pooled.shape == (1, 3, 2) and valid.tolist() == [[True, True, False]]
    torch.testing.assert_close(pooled[0, 0], torch.tensor([(1 + 8) / 2, (10 + 80) / 2]))
    torch.testing.assert_close(pooled[0, 1], torch.tensor([2.5, 25.0]))
    torch.testing.assert_close(pooled[0, 2], torch.zeros(2))


def test_mask_pool_resizes_the_mask_logits_to_the_feature_grid():
    feats = torch.arange(4.0).view(1, 1, 1, 2, 2)
    masks = torch.full((1, 1, 1, 4, 4), -5.0)
    masks[..., :2, 2:] = 5.0  # top-right quarter of a 4x4 grid -> feature pixel (0, 1)
    pooled, valid = mask_pool(feats, masks)
    assert valid.tolist() == [[True]]
    torch.testing.assert_close(pooled, torch.tensor([[[1.0]]]))
    with pytest.raises(ValueError, match="B and T must agree"):
        mask_pool(feats, torch.zeros(1, 1, 2, 4, 4))


def test_clip_class_logits_is_the_scaled_cosine_max_over_synonyms():
    emb = torch.tensor([[3.0, 0.0], [1.0, 1.0]])
    text = torch.tensor([[[1.0, 0.0], [0.0, 1.0]],     # class 0: synonyms x, y
                         [[-1.0, 0.0], [-1.0, 0.0]]])  # class 1: -x (padded)
    got = clip_class_logits(emb, text, 100.0)
    r = 1 / math.sqrt(2)
    torch.testing.assert_close(got, torch.tensor([[100.0, -100.0], [100 * r, -100 * r]]))


def _softmax(xs):
    e = [math.exp(x) for x in xs]
    return [v / sum(e) for v in e]


def test_fusion_against_hand_computed_probabilities():
    # Q=2 queries, K=2 classes (+ void); class 0 seen (a = 0.4), class 1 unseen (b = 0.8).
    mask_cls = torch.tensor([[2.0, 0.5, 1.0], [0.3, -1.0, 0.7]])
    clip = torch.tensor([[0.0, 1.5], [1.0, 0.0]])
    seen = torch.tensor([True, False])
    valid = torch.tensor([True, False])  # query 1: empty mask
    out = fuse_scores(mask_cls, clip, valid, seen, 0.4, 0.8)
    assert out.shape == (2, 3)
    # query 0 by hand
    learned = _softmax([2.0, 0.5])
    clip_p = _softmax([0.0, 1.5])
    raw = [learned[0] ** 0.6 * clip_p[0] ** 0.4, learned[1] ** 0.2 * clip_p[1] ** 0.8]
    fused = [v / sum(raw) for v in raw]
    p_void = _softmax([2.0, 0.5, 1.0])[2]
    want0 = [fused[0] * (1 - p_void), fused[1] * (1 - p_void), p_void]
    torch.testing.assert_close(out[0].exp(), torch.tensor(want0))
    # query 1 (empty mask) keeps its learned scores exactly
    torch.testing.assert_close(out[1].exp(), torch.tensor(_softmax([0.3, -1.0, 0.7])))
    # the post-processing's softmax gives back [fused * (1 - p_void), p_void]
    torch.testing.assert_close(out.softmax(-1), out.exp())
    # a = b = 0: the learned probabilities; a = b = 1: CLIP's (times 1 - p_void)
    same = fuse_scores(mask_cls, clip, torch.tensor([True, True]), seen, 0.0, 0.0)
    torch.testing.assert_close(same.exp(), mask_cls.softmax(-1))
    only_clip = fuse_scores(mask_cls, clip, torch.tensor([True, True]), seen, 1.0, 1.0).exp()
    torch.testing.assert_close(only_clip[:, :2] / only_clip[:, :2].sum(-1, keepdim=True),
                               clip.softmax(-1))


def test_seen_and_unseen_classes_from_synonyms():
    training = synonym_set(["person, child", "Traffic_Light", "handrail_or_fence"])
    seen = seen_classes(["kid, child", "zebra", "traffic light", "fence", "Person"], training)
    assert seen.tolist() == [True, False, True, True, True]


def test_vocabulary_parse_and_file(tmp_path):
    assert Vocabulary.parse("cat,dog, grass").names == ("cat", "dog", "grass")
    assert Vocabulary.parse("person, child; car").names == ("person, child", "car")
    v = Vocabulary.parse("cat,dog", is_thing=[True, False])
    assert v.is_thing == (True, False)
    with pytest.raises(ValueError, match="holds no class names"):
        Vocabulary.parse(" , ")
    with pytest.raises(ValueError, match="empty class name .* position\\(s\\) \\[1\\]"):
        Vocabulary.parse("cat,,dog")
    path = tmp_path / "classes.txt"
    path.write_text("# my classes\nperson, child\n\ncar\n")
    v = Vocabulary.from_file(str(path))
    assert v.names == ("person, child", "car")
    assert Vocabulary.coerce(str(path)) == v and Vocabulary.coerce(path) == v
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    with pytest.raises(ValueError, match="empty.txt' holds no class names"):
        Vocabulary.from_file(str(empty))
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        Vocabulary.coerce(str(tmp_path / "missing.txt"))
    assert Vocabulary.coerce(["a, b", "c"]).names == ("a, b", "c")
    assert Vocabulary.coerce(v) is v
    with pytest.raises(ValueError, match="empty names at positions \\[1\\]"):
        Vocabulary.coerce(["cat", " "])
    with pytest.raises(TypeError, match="list of class-name strings"):
        Vocabulary.coerce(["cat", 3])
    with pytest.raises(TypeError, match="file path, got int"):
        Vocabulary.coerce(3)
