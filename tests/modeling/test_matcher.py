"""HungarianMatcher: optimal assignment, hand-computed costs, tubes matched as one stacked image."""
import itertools
import math

import pytest
import torch

from omgseg.modeling.matcher import HungarianMatcher, batch_dice_cost, batch_sigmoid_ce_cost


def _pixel_centres(h, w):
    """Normalised (x, y) coordinates of the pixel centres of an h x w map, row-major: sampling
    there with align_corners=False returns the pixel values exactly."""
    ys, xs = torch.meshgrid(
        (torch.arange(h) + 0.5) / h, (torch.arange(w) + 0.5) / w, indexing="ij"
    )
    return torch.stack([xs.flatten(), ys.flatten()], -1)[None]  # [1, h*w, 2]


def _random_sample(gen, q, m, t, k=3, h=6, w=6):
    logits = torch.randn(q, k + 1, generator=gen) * 2
    masks = torch.randn(q, t, h, w, generator=gen) * 3
    labels = torch.randint(-1, k, (m,), generator=gen)
    tgt = torch.rand(m, t, 2 * h, 2 * w, generator=gen) > 0.5
    return logits, masks, labels, tgt


def test_assignment_is_brute_force_optimum(monkeypatch):
    gen = torch.Generator().manual_seed(0)
    matcher = HungarianMatcher(num_points=50)
    coords = torch.rand(1, 50, 2, generator=gen)
    monkeypatch.setattr(matcher, "sample_point_coords", lambda device: coords.to(device))
    for trial in range(24):
        q = int(torch.randint(1, 6, (1,), generator=gen))
        m = int(torch.randint(1, 5, (1,), generator=gen))
        t = 1 + trial % 2
        logits, masks, labels, tgt = _random_sample(gen, q, m, t)
        cost = matcher.compute_cost(logits, masks, labels, tgt, coords)
        assert cost.shape == (q, m)
        (rows, cols), = matcher(
            {"pred_logits": logits[None], "pred_masks": masks[None]},
            [{"labels": labels, "masks": tgt}],
        )
        assert rows.dtype == torch.int64 and cols.dtype == torch.int64
        n = min(q, m)
        assert len(rows) == len(cols) == n
        assert len(set(rows.tolist())) == n and len(set(cols.tolist())) == n
        got = cost[rows, cols].sum().item()
        if m <= q:
            best = min(
                sum(cost[p[j], j].item() for j in range(m))
                for p in itertools.permutations(range(q), m)
            )
        else:
            best = min(
                sum(cost[i, p[i]].item() for i in range(q))
                for p in itertools.permutations(range(m), q)
            )
        assert got == pytest.approx(best, abs=1e-4)


def _bce(x, y):
    p = 1 / (1 + math.exp(-x))
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def test_cost_values_match_hand_computation():
    matcher = HungarianMatcher(cost_class=2.0, cost_mask=5.0, cost_dice=5.0, num_points=8)
    # 2 queries, K = 2, T = 2 frames of 2x2; targets at the same size. A tube is matched as ONE
    # image, its frames stacked along the height (4x2): points at that image's pixel centres.
    logits = torch.tensor([[1.0, 0.0, -1.0], [0.0, 2.0, 0.5]])
    pred = torch.tensor(
        [
            [[[2.0, -1.0], [0.0, 3.0]], [[-2.0, 1.0], [0.5, 0.0]]],
            [[[-1.0, -1.0], [1.0, 1.0]], [[0.0, 0.0], [0.0, 4.0]]],
        ]
    )
    tgt = torch.tensor(
        [
            [[[1, 0], [0, 1]], [[0, 1], [1, 0]]],
            [[[0, 0], [0, 0]], [[1, 1], [1, 1]]],
            [[[1, 1], [1, 1]], [[0, 0], [0, 0]]],
        ],
        dtype=torch.bool,
    )
    labels = torch.tensor([0, 1, -1])
    coords = _pixel_centres(4, 2)
    comps = matcher.cost_components(logits, pred, labels, tgt, coords)
    cost = matcher.compute_cost(logits, pred, labels, tgt, coords)

    for i in range(2):
        probs = [math.exp(v) for v in logits[i].tolist()]
        probs = [p / sum(probs) for p in probs]
        xs = pred[i].flatten().tolist()
        for j in range(3):
            ys = tgt[j].float().flatten().tolist()
            bce = sum(_bce(x, y) for x, y in zip(xs, ys)) / len(xs)
            sig = [1 / (1 + math.exp(-x)) for x in xs]
            inter = sum(s * y for s, y in zip(sig, ys))
            dice = 1 - (2 * inter + 1) / (sum(sig) + sum(ys) + 1)
            cls = -probs[labels[j]] if labels[j] >= 0 else 0.0
            assert comps["mask"][i, j].item() == pytest.approx(bce, rel=1e-5)
            assert comps["dice"][i, j].item() == pytest.approx(dice, rel=1e-5)
            assert comps["class"][i, j].item() == pytest.approx(cls, abs=1e-6)
            assert cost[i, j].item() == pytest.approx(5 * bce + 5 * dice + 2 * cls, rel=1e-5)


def test_points_cover_the_stacked_tube_not_each_frame():
    # Target present in frame 0 only, prediction 0 logits: dice = 1 - (n0 + 1) / (P/2 + n0 + 1)
    # with n0 the points falling in frame 0, i.e. in the top half of the stacked image (y < 0.5).
    matcher = HungarianMatcher(num_points=64)
    # away from the image border (zero padding): 0.1 <= x, y <= 0.9
    coords = 0.1 + 0.8 * torch.rand(1, 64, 2, generator=torch.Generator().manual_seed(5))
    tgt = torch.zeros(1, 2, 8, 8, dtype=torch.bool)
    tgt[0, 0] = True
    comps = matcher.cost_components(torch.zeros(1, 3), torch.zeros(1, 2, 4, 4),
                                    torch.tensor([0]), tgt, coords)
    # target rows 0..7 of the 16-row stacked image are 1: bilinear value = clamp(8 - row, 0, 1)
    rows = (coords[0, :, 1] * 16 - 0.5).tolist()
    n0 = sum(min(max(8 - r, 0.0), 1.0) for r in rows)
    assert 10 < n0 < 54  # both frames are sampled
    assert comps["dice"][0, 0].item() == pytest.approx(1 - (n0 + 1) / (32 + n0 + 1), rel=1e-5)
    assert comps["mask"][0, 0].item() == pytest.approx(math.log(2), rel=1e-5)


def test_batched_costs_agree_with_elementwise():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(4, 30, generator=gen)
    y = (torch.rand(3, 30, generator=gen) > 0.4).float()
    ce = batch_sigmoid_ce_cost(x, y)
    dice = batch_dice_cost(x, y)
    for i in range(4):
        for j in range(3):
            ref = torch.nn.functional.binary_cross_entropy_with_logits(x[i], y[j])
            assert ce[i, j].item() == pytest.approx(ref.item(), rel=1e-5)
            s = x[i].sigmoid()
            ref_d = 1 - (2 * (s * y[j]).sum() + 1) / (s.sum() + y[j].sum() + 1)
            assert dice[i, j].item() == pytest.approx(ref_d.item(), rel=1e-5)


@pytest.mark.parametrize("t", [1, 2])
def test_perfect_predictions_are_matched(t):
    gen = torch.Generator().manual_seed(2 + t)
    q, m, k = 5, 3, 4
    tgt = torch.zeros(m, t, 16, 16, dtype=torch.bool)
    for j in range(m):  # disjoint horizontal bands, different per frame
        for f in range(t):
            r = (4 * j + f) % 16
            tgt[j, f, r : r + 4] = True
    labels = torch.tensor([2, 0, 3])
    perm = torch.tensor([4, 1, 3])  # query perm[j] predicts target j
    logits = torch.randn(q, k + 1, generator=gen)
    masks = torch.full((q, t, 8, 8), -8.0)
    for j in range(m):
        logits[perm[j], labels[j]] = 10.0
        small = torch.nn.functional.interpolate(tgt[j].float()[None], size=(8, 8), mode="area")[0]
        masks[perm[j]] = small * 16 - 8
    matcher = HungarianMatcher(num_points=256)
    (rows, cols), = matcher(
        {"pred_logits": logits[None], "pred_masks": masks[None]},
        [{"labels": labels, "masks": tgt}],
    )
    assert dict(zip(cols.tolist(), rows.tolist())) == {j: int(perm[j]) for j in range(m)}


def test_match_false_gives_identity_and_empty_targets():
    matcher = HungarianMatcher(num_points=16)
    logits = torch.randn(3, 4, 3)
    masks = torch.randn(3, 4, 2, 4, 4)
    targets = [
        {"labels": torch.tensor([-1, -1, -1]), "masks": torch.rand(3, 2, 8, 8) > 0.5,
         "match": False},
        {"labels": torch.zeros(0, dtype=torch.int64), "masks": torch.zeros(0, 2, 8, 8)},
        {"labels": torch.tensor([1]), "masks": torch.rand(1, 2, 8, 8) > 0.5, "match": True},
    ]
    out = matcher({"pred_logits": logits, "pred_masks": masks}, targets)
    assert len(out) == 3
    assert out[0][0].tolist() == [0, 1, 2] and out[0][1].tolist() == [0, 1, 2]
    assert out[1][0].numel() == 0 and out[1][1].numel() == 0
    assert out[1][0].dtype == torch.int64
    assert len(out[2][0]) == 1 and out[2][1].tolist() == [0]


def test_from_config():
    from detectron2.config import get_cfg

    from omgseg.config import add_omgseg_config

    cfg = get_cfg()
    add_omgseg_config(cfg)
    cfg.MODEL.OMG.TRAIN_NUM_POINTS = 100
    matcher = HungarianMatcher(cfg)
    assert (matcher.cost_class, matcher.cost_mask, matcher.cost_dice) == (2.0, 5.0, 5.0)
    assert matcher.num_points == 100
    assert "num_points=100" in repr(matcher)
