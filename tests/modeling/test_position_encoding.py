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
