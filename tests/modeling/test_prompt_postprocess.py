"""Per-prompt post-processing: masks, their quality and labels against hand-computed values."""
import torch

from omgseg.modeling.prompts import class_labels, masks_and_quality, prompt_results


def test_masks_and_quality_by_hand():
    probs = torch.tensor([
        [[0.9, 0.6], [0.5, 0.1]],  # 0.5 is not inside (> 0.5): mean of 0.9 and 0.6
        [[0.2, 0.3], [0.4, 0.5]],  # empty mask: quality 0
        [[1.0, 1.0], [1.0, 0.7]],
    ])
    masks, quality = masks_and_quality(probs)
    assert masks.dtype == torch.bool
    assert masks.tolist() == [[[True, True], [False, False]], [[False, False], [False, False]],
                              [[True, True], [True, True]]]
    torch.testing.assert_close(quality, torch.tensor([0.75, 0.0, 0.925]))


def test_prompt_results_chunked_equals_one_pass():
    """More than 16 prompts are resized in chunks: the same masks and scores as one pass."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(20, 6, 8, generator=g) * 3
    mask_cls = torch.randn(20, 5, generator=g)
    objectness = torch.randn(20, 1, generator=g)
    many = prompt_results(mask_cls, logits, objectness, (24, 32), (22, 30), (44, 60))
    for s in (0, 16):
        few = prompt_results(mask_cls[s:s + 4], logits[s:s + 4], objectness[s:s + 4],
                             (24, 32), (22, 30), (44, 60))
        assert torch.equal(many.pred_masks[s:s + 4], few.pred_masks)
        torch.testing.assert_close(many.scores[s:s + 4], few.scores)
    assert many.pred_masks.shape == (20, 44, 60)
    labels, scores = class_labels(mask_cls)
    assert torch.equal(many.pred_classes, labels) and torch.equal(many.class_scores, scores)
    torch.testing.assert_close(many.objectness, objectness.flatten().sigmoid())


def test_results_as_instances_keep_the_output_size_and_fields():
    g = torch.Generator().manual_seed(1)
    for p in (3, 0):  # no prompt: an empty Instances of the output size
        res = prompt_results(torch.randn(p, 5, generator=g), torch.randn(p, 6, 8, generator=g),
                             torch.randn(p, 1, generator=g), (24, 32), (22, 30), (44, 60))
        inst = res.to_instances()
        assert inst.image_size == (44, 60) and len(inst) == p
        assert set(inst.get_fields()) == set(res._fields)
        for name in res._fields:
            assert inst.get(name) is getattr(res, name)
