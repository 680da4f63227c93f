"""SetCriterion against hand-computed values, normalised as the official head normalises."""
import math

import pytest
import torch

from omgseg.modeling import criterion as criterion_module
from omgseg.modeling.criterion import SetCriterion, build_weight_dict
from omgseg.modeling.matcher import HungarianMatcher


class FixedMatcher:
    """Returns preset indices (for hand-computed losses)."""

    def __init__(self, indices):
        self.indices = indices

    def __call__(self, outputs, targets):
        return [(torch.as_tensor(r, dtype=torch.int64), torch.as_tensor(c, dtype=torch.int64))
                for r, c in self.indices]


def _criterion(matcher=None, losses=("labels", "masks", "objectness"), num_points=64, **kw):
    return SetCriterion(
        matcher if matcher is not None else HungarianMatcher(num_points=num_points),
        build_weight_dict(2.0, 5.0, 5.0, 2.0, num_aux=kw.pop("num_aux", 0)),
        eos_coef=0.1,
        losses=losses,
        num_points=num_points,
        **kw,
    )


def _pixel_centres(n, h, w):
    ys, xs = torch.meshgrid(
        (torch.arange(h) + 0.5) / h, (torch.arange(w) + 0.5) / w, indexing="ij"
    )
    return torch.stack([xs.flatten(), ys.flatten()], -1)[None].expand(n, -1, -1).clone()


def _lsm(row, i):
    return row[i] - math.log(sum(math.exp(v) for v in row))


def test_cross_entropy_with_void_weight():
    logits = torch.tensor([[[2.0, -1.0, 0.5], [0.3, 0.2, 1.0]]])  # B=1, Q=2, K=2
    outputs = {"pred_logits": logits, "pred_masks": torch.zeros(1, 2, 1, 4, 4)}
    targets = [{"labels": torch.tensor([1]), "masks": torch.ones(1, 1, 8, 8, dtype=torch.bool)}]
    crit = _criterion(FixedMatcher([([0], [0])]), losses=("labels",))
    loss = crit(outputs, targets)["loss_ce"].item()
    rows = logits[0].tolist()
    # query 0 -> class 1 (weight 1); query 1 -> void (weight 0.1); cls_avg_factor = 1 + 0.1
    expected = (-_lsm(rows[0], 1) - 0.1 * _lsm(rows[1], 2)) / (1 + 0.1)
    assert loss == pytest.approx(expected, rel=1e-6)


def test_label_minus_one_and_prompt_samples_are_excluded_from_ce():
    logits = torch.tensor(
        [[[2.0, -1.0, 0.5], [0.3, 0.2, 1.0], [1.0, 1.0, -1.0]],
         [[5.0, -3.0, 0.0], [0.0, 4.0, 1.0], [1.0, 2.0, 3.0]]],
        requires_grad=True,
    )
    outputs = {"pred_logits": logits, "pred_masks": torch.zeros(2, 3, 1, 4, 4)}
    targets = [
        {"labels": torch.tensor([-1, 0]), "masks": torch.ones(2, 1, 8, 8)},
        {"labels": torch.tensor([1, 1]), "masks": torch.ones(2, 1, 8, 8), "match": False},
    ]
    crit = _criterion(FixedMatcher([([1, 2], [0, 1]), ([0, 1], [0, 1])]), losses=("labels",))
    loss = crit(outputs, targets)["loss_ce"]
    rows = logits[0].tolist()
    # sample 0: query 1 matched to a -1 target (no loss), query 2 -> class 0, query 0 -> void.
    # The normaliser counts every query of the non-prompt samples by its target's class weight,
    # a matched -1 target as 1 (the official code maps -1 to class 0): 1 + 1 + 0.1; the prompt
    # sample adds nothing.
    expected = (-_lsm(rows[2], 0) - 0.1 * _lsm(rows[0], 2)) / 2.1
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert logits.grad[1].abs().sum() == 0  # prompt sample: no class loss at all

    # every target -1 / prompt: zero loss, no NaN
    targets[0]["labels"] = torch.tensor([-1, -1])
    crit.matcher = FixedMatcher([([0, 1], [0, 1]), ([0, 1], [0, 1])])
    out = crit({"pred_logits": logits, "pred_masks": torch.zeros(2, 3, 1, 4, 4)}, targets)
    # unmatched query 2 of sample 0 still targets void; normaliser 1 + 1 + 0.1
    expected = -0.1 * _lsm(rows[2], 2) / 2.1
    assert out["loss_ce"].item() == pytest.approx(expected, rel=1e-6)
    crit.matcher = FixedMatcher([([], []), ([0, 1], [0, 1])])
    targets2 = [{"labels": torch.zeros(0, dtype=torch.int64), "masks": torch.zeros(0, 1, 8, 8)},
                targets[1]]
    out = crit({"pred_logits": logits, "pred_masks": torch.zeros(2, 3, 1, 4, 4)}, targets2)
    # three void queries: normaliser 3 * 0.1 = 0.3, raised to 1
    expected = -0.1 * sum(_lsm(rows[q], 2) for q in range(3))
    assert out["loss_ce"].item() == pytest.approx(expected, rel=1e-6)
    crit.matcher = FixedMatcher([([0, 1], [0, 1]), ([0, 1], [0, 1])])
    targets3 = [dict(targets[1]), dict(targets[1])]
    out = crit({"pred_logits": logits, "pred_masks": torch.zeros(2, 3, 1, 4, 4)}, targets3)
    assert out["loss_ce"].item() == 0.0


def test_mask_losses_with_real_sampling_on_constant_maps():
    # logit 0 everywhere samples to exactly 0 (even at the zero-padded border), targets all 0:
    # BCE = log 2 and dice = 1 - 1 / (0.5 * P + 1) for any P sampled points. A tube is ONE
    # image (frames stacked along the height): P points per tube, not T * P.
    t, p = 2, 40
    outputs = {"pred_logits": torch.zeros(2, 3, 3), "pred_masks": torch.zeros(2, 3, t, 6, 6)}
    targets = [
        {"labels": torch.tensor([0, 1]), "masks": torch.zeros(2, t, 24, 24, dtype=torch.bool)},
        {"labels": torch.tensor([1]), "masks": torch.zeros(1, t, 24, 24, dtype=torch.bool)},
    ]
    crit = _criterion(losses=("masks",), num_points=p)
    out = crit(outputs, targets)
    num_masks = 3
    assert out["loss_mask"].item() == pytest.approx(3 * math.log(2) / num_masks, rel=1e-5)
    dice = 1 - 1 / (0.5 * p + 1)
    assert out["loss_dice"].item() == pytest.approx(3 * dice / num_masks, rel=1e-5)


def test_num_masks_counts_at_least_one_per_sample():
    # mmdet's MaskPseudoSampler: avg_factor = max(matched, 1) per image. A sample with 2 targets
    # and one with none: num_masks = 2 + 1 = 3.
    p = 16
    outputs = {"pred_logits": torch.zeros(2, 3, 3), "pred_masks": torch.zeros(2, 3, 1, 6, 6)}
    targets = [
        {"labels": torch.tensor([0, 1]), "masks": torch.zeros(2, 1, 24, 24, dtype=torch.bool)},
        {"labels": torch.zeros(0, dtype=torch.int64), "masks": torch.zeros(0, 1, 24, 24)},
    ]
    out = _criterion(losses=("masks",), num_points=p)(outputs, targets)
    assert out["loss_mask"].item() == pytest.approx(2 * math.log(2) / 3, rel=1e-5)


def test_mask_losses_match_hand_values_with_fixed_points(monkeypatch):
    # The tube [T=2, 2, 2] is one 4x2 image (frames stacked along the height); points at the
    # pixel centres of that image; targets at 2x resolution built so that bilinear sampling at
    # those points returns the coarse values exactly.
    pred = torch.tensor([[[[2.0, -1.0], [0.0, 3.0]], [[-2.0, 1.0], [0.5, 0.0]]]])  # [1, T=2, 2, 2]
    coarse_tgt = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0], [0.0, 0.0]]])  # [T, 2, 2]
    tgt = coarse_tgt.repeat_interleave(2, -1).repeat_interleave(2, -2)[None] > 0.5  # [1,2,4,4]
    outputs = {"pred_logits": torch.zeros(1, 1, 2), "pred_masks": pred[None]}
    crit = _criterion(FixedMatcher([([0], [0])]), losses=("masks",), num_points=8)

    def centres(maps):
        assert tuple(maps.shape) == (1, 1, 4, 2)  # one stacked tube
        return _pixel_centres(maps.shape[0], 4, 2)

    monkeypatch.setattr(crit, "_sample_points", centres)
    out = crit(outputs, [{"labels": torch.tensor([0]), "masks": tgt}])
    xs, ys = pred.flatten().tolist(), coarse_tgt.flatten().tolist()
    sig = [1 / (1 + math.exp(-x)) for x in xs]
    bce = sum(-(y * math.log(s) + (1 - y) * math.log(1 - s)) for s, y in zip(sig, ys)) / 8
    dice = 1 - (2 * sum(s * y for s, y in zip(sig, ys)) + 1) / (sum(sig) + sum(ys) + 1)
    assert out["loss_mask"].item() == pytest.approx(bce, rel=1e-5)
    assert out["loss_dice"].item() == pytest.approx(dice, rel=1e-5)


def test_default_point_sampler_shapes():
    crit = _criterion(num_points=10)
    coords = crit._sample_points(torch.randn(6, 1, 5, 5))
    assert coords.shape == (6, 10, 2)
    assert bool(((coords >= 0) & (coords <= 1)).all())


def _focal(x, t, alpha=0.25, gamma=2.0):
    p = 1 / (1 + math.exp(-x))
    ce = -(t * math.log(p) + (1 - t) * math.log(1 - p))
    p_t = p * t + (1 - p) * (1 - t)
    a_t = alpha * t + (1 - alpha) * (1 - t)
    return a_t * ce * (1 - p_t) ** gamma


def test_objectness_focal_closed_form_and_prompt_exclusion():
    obj = torch.tensor([[[1.5], [-0.5], [0.2]], [[3.0], [-2.0], [0.0]]])
    outputs = {"pred_logits": torch.zeros(2, 3, 3), "pred_masks": torch.zeros(2, 3, 1, 4, 4),
               "pred_objectness": obj}
    targets = [
        {"labels": torch.tensor([0, 1]), "masks": torch.ones(2, 1, 8, 8)},
        {"labels": torch.tensor([-1]), "masks": torch.ones(1, 1, 8, 8), "match": False},
    ]
    crit = _criterion(FixedMatcher([([0, 2], [1, 0]), ([0], [0])]), losses=("objectness",))
    out = crit(outputs, targets)
    # normalised like the class loss (cls_avg_factor = 1 + 1 + 0.1; the prompt sample adds 0),
    # not by the number of targets
    expected = (_focal(1.5, 1) + _focal(-0.5, 0) + _focal(0.2, 1)) / 2.1
    assert out["loss_objectness"].item() == pytest.approx(expected, rel=1e-6)

    targets[0]["match"] = False
    crit.matcher = FixedMatcher([([0, 1], [0, 1]), ([0], [0])])
    assert crit(outputs, targets)["loss_objectness"].item() == 0.0


def test_normalisers_are_averaged_over_workers(monkeypatch):
    """reduce_mean as the official head: sum over workers / world size, then at least 1."""
    other_worker = torch.tensor([1.7, 0.1])  # (num_masks, cls_avg_factor) of the other worker

    def all_reduce(t):
        t.add_(other_worker)

    monkeypatch.setattr(criterion_module.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(criterion_module.dist, "all_reduce", all_reduce)
    monkeypatch.setattr(criterion_module.comm, "get_world_size", lambda: 2)
    crit = _criterion(FixedMatcher([([0], [0])]))
    targets = [{"labels": torch.tensor([1]), "masks": torch.ones(1, 1, 8, 8)}]
    norms = crit.normalisers(targets, num_queries=4, device=torch.device("cpu"))
    # this worker: num_masks 1, cls weight 1 + 3 * 0.1 = 1.3
    assert norms.num_masks == pytest.approx((1 + 1.7) / 2)
    assert norms.cls_avg_factor == pytest.approx(1.0)  # (1.3 + 0.1) / 2 = 0.7, raised to 1
    logits = torch.tensor([[[2.0, -1.0, 0.5], [0.3, 0.2, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]])
    out = crit({"pred_logits": logits, "pred_masks": torch.zeros(1, 4, 1, 4, 4),
                "pred_objectness": torch.zeros(1, 4, 1)}, targets)
    rows = logits[0].tolist()
    expected = -_lsm(rows[0], 1) - 0.1 * sum(_lsm(rows[q], 2) for q in (1, 2, 3))
    assert out["loss_ce"].item() == pytest.approx(expected, rel=1e-6)


def _random_outputs(gen, b, q, k, t, h, w, num_aux, requires_grad=False):
    def one():
        d = {
            "pred_logits": torch.randn(b, q, k + 1, generator=gen),
            "pred_masks": torch.randn(b, q, t, h, w, generator=gen),
            "pred_objectness": torch.randn(b, q, 1, generator=gen),
        }
        for v in d.values():
            v.requires_grad_(requires_grad)
        return d

    out = one()
    out["aux_outputs"] = [one() for _ in range(num_aux)]
    return out


def _boxes(gen, m, t, H, W):
    """Random rectangles per (mask, frame)."""
    masks = torch.zeros(m, t, H, W, dtype=torch.bool)
    for j in range(m):
        for f in range(t):
            y0, x0 = torch.randint(0, H // 2, (2,), generator=gen).tolist()
            y1, x1 = torch.randint(H // 2 + 1, H + 1, (2,), generator=gen).tolist()
            masks[j, f, y0:y1, x0:x1] = True
    return masks


def _targets(gen, t, H, W):
    return [
        {"labels": torch.tensor([0, 2]), "masks": _boxes(gen, 2, t, H, W)},
        {"labels": torch.zeros(0, dtype=torch.int64), "masks": torch.zeros(0, t, H, W)},
        {"labels": torch.tensor([1]), "masks": _boxes(gen, 1, t, H, W)},
    ]


def test_aux_keys_weight_dict_and_gradients():
    gen = torch.Generator().manual_seed(0)
    num_aux = 3
    outputs = _random_outputs(gen, 3, 4, 3, 2, 4, 4, num_aux, requires_grad=True)
    crit = _criterion(num_points=32, num_aux=num_aux)
    losses = crit(outputs, _targets(gen, 2, 16, 16))
    base = ["loss_ce", "loss_mask", "loss_dice", "loss_objectness"]
    expected = set(base) | {f"{k}_{i}" for k in base for i in range(num_aux)}
    assert set(losses) == expected
    assert set(losses) <= set(crit.weight_dict)
    assert all(torch.isfinite(v) and v.dim() == 0 for v in losses.values())
    total = sum(crit.weight_dict[k] * v for k, v in losses.items())
    total.backward()
    for d in [outputs] + outputs["aux_outputs"]:
        for key in ("pred_logits", "pred_masks", "pred_objectness"):
            g = d[key].grad
            assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0

    crit_nodeep = _criterion(num_points=32, deep_supervision=False)
    assert set(crit_nodeep(outputs, _targets(gen, 2, 16, 16))) == set(base)


def test_perfect_predictions_have_lower_loss():
    gen = torch.Generator().manual_seed(1)
    t, H, W, q, k = 2, 16, 16, 4, 3
    targets = _targets(gen, t, H, W)
    rand = _random_outputs(gen, 3, q, k, t, H // 4, W // 4, 0)
    perfect = {
        "pred_logits": torch.full((3, q, k + 1), -10.0),
        "pred_masks": torch.full((3, q, t, H, W), -10.0),
        "pred_objectness": torch.full((3, q, 1), -10.0),
    }
    perfect["pred_logits"][..., k] = 10.0
    for b, tgt in enumerate(targets):
        for j, lab in enumerate(tgt["labels"].tolist()):
            perfect["pred_logits"][b, j] = -10.0
            perfect["pred_logits"][b, j, lab] = 10.0
            perfect["pred_masks"][b, j] = tgt["masks"][j].float() * 20 - 10
            perfect["pred_objectness"][b, j] = 10.0
    crit = _criterion(num_points=64)
    good = crit(perfect, targets)
    bad = crit(rand, targets)
    total = lambda d: sum(crit.weight_dict[k] * v for k, v in d.items()).item()  # noqa: E731
    # importance sampling concentrates points on boundaries, where even a perfect mask is
    # ambiguous after bilinear sampling, so the mask terms stay well above 0
    assert total(good) < 0.5 * total(bad)
    for key in good:
        assert good[key].item() < bad[key].item()


def test_from_config_and_repr():
    from detectron2.config import get_cfg

    from omgseg.config import add_omgseg_config

    cfg = get_cfg()
    add_omgseg_config(cfg)
    cfg.MODEL.OMG.DEC_LAYERS = 2
    crit = SetCriterion(cfg)
    assert isinstance(crit.matcher, HungarianMatcher)
    assert len(crit.weight_dict) == 4 * 3
    assert crit.weight_dict["loss_objectness_1"] == 2.0
    assert crit.weight_dict["loss_ce"] == 2.0 and crit.weight_dict["loss_dice_0"] == 5.0
    assert crit.eos_coef == 0.1 and crit.num_points == 12544
    text = repr(crit)
    for word in ("eos_coef", "importance_sample_ratio", "HungarianMatcher", "objectness"):
        assert word in text
    with pytest.raises(ValueError):
        SetCriterion(HungarianMatcher(), {}, losses=("boxes",))
