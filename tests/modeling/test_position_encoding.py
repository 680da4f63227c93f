"""Sine encodings of location-query boxes (mmdet's ``coordinate_to_encoding`` order)."""
import math

import torch

from omgseg.layers.position_encoding import coordinate_to_encoding


def test_box_encoding_matches_hand_computed_values():
    box = torch.tensor([[0.25, 0.5, 0.1, 0.2]])  # cx, cy, w, h
    enc = coordinate_to_encoding(box, num_feats=4, temperature=10000.0)
    assert enc.shape == (1, 16)
    # per coordinate c: (sin c, cos c, sin c/100, cos c/100) with c = 2 pi * value; order y, x, w, h
    want = []
    for v in (0.5, 0.25, 0.1, 0.2):
        c = 2 * math.pi * v
        want += [math.sin(c), math.cos(c), math.sin(c / 100), math.cos(c / 100)]
    torch.testing.assert_close(enc[0], torch.tensor(want), atol=1e-6, rtol=0)


def test_point_encoding_is_y_then_x_and_batched_shapes_hold():
    pts = torch.tensor([[[0.25, 0.75], [0.5, 0.5]]])  # [1, 2, 2] (x, y)
    enc = coordinate_to_encoding(pts, num_feats=2)
    assert enc.shape == (1, 2, 4)
    torch.testing.assert_close(
        enc[0, 0], torch.tensor([math.sin(1.5 * math.pi), math.cos(1.5 * math.pi),
                                 math.sin(0.5 * math.pi), math.cos(0.5 * math.pi)]),
        atol=1e-6, rtol=0)


def test_cached_constants_made_in_inference_mode_serve_autograd_later():
    """The wavelengths / coordinate order are built once per setting; built first inside
    ``inference_mode`` (a predictor), they must still serve a training step afterwards."""
    from omgseg.layers import position_encoding as pe
    from omgseg.modeling.prompts.encoder import (
        _cell_edges,
        _cxcywh_matrix,
        normalized_cxcywh,
        pool_box_features,
    )

    for cached in (pe._wavelengths, pe._yx_order, _cxcywh_matrix, _cell_edges):
        cached.cache_clear()
    feats = torch.randn(3, 4, 5)
    with torch.inference_mode():
        pooled = pool_box_features(feats, torch.tensor([[1.0, 2.0, 9.0, 7.0]]), 4)
    box = torch.tensor([[1.0, 2.0, 9.0, 7.0]], requires_grad=True)
    again = pool_box_features(feats.requires_grad_(True), box, 4)
    again.sum().backward()
    assert torch.allclose(again.detach(), pooled) and feats.grad is not None
    boxes = torch.tensor([[[10.0, 20.0, 30.0, 60.0]]])
    with torch.inference_mode():
        expected = coordinate_to_encoding(normalized_cxcywh(boxes[0], (80, 40))[None], 8)
    leaf = boxes.clone().requires_grad_(True)
    got = coordinate_to_encoding(normalized_cxcywh(leaf[0], (80, 40))[None], 8)
    got.sum().backward()
    assert torch.equal(got.detach(), expected) and leaf.grad is not None
    # hand value: (y, x, w, h) = (0.5, 0.5, 0.5, 0.5); feature 0 of y is sin(2 pi * 0.5) = 0
    assert got.shape == (1, 1, 32) and abs(float(got[0, 0, 0])) < 1e-6
