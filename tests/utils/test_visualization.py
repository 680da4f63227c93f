"""Track-aware drawing: the same track keeps its colour across frames; strips tile pictures."""
import numpy as np
import pytest
from detectron2.data import Metadata

from omgseg.utils.visualization import (
    ALPHA,
    draw_index_map,
    draw_panoptic_tracks,
    frame_strip,
    track_color,
)

META = Metadata(stuff_classes=["disc", "ground"], stuff_colors=[[200, 0, 0], [0, 120, 0]],
                thing_classes=["disc"])


def test_track_color_is_deterministic_and_distinct():
    assert np.array_equal(track_color(7), track_color(7))
    colors = np.stack([track_color(i) for i in range(1, 21)])
    assert colors.min() >= 0 and colors.max() <= 1
    dists = np.linalg.norm(colors[:, None] - colors[None], axis=-1)
    assert dists[~np.eye(20, dtype=bool)].min() > 0.02  # 20 ids, 20 different colours


def test_a_track_keeps_its_colour_when_it_moves_and_class_colours_stay_for_stuff():
    image = np.full((240, 320, 3), 128, np.uint8)
    segs = [{"id": 5, "category_id": 0, "isthing": True},
            {"id": 9, "category_id": 0, "isthing": True},
            {"id": 1, "category_id": 1, "isthing": False}]
    frames = []
    for shift in (0, 100):
        ids = np.ones((240, 320), np.int64)
        ids[10:90, 10 + shift:90 + shift] = 5
        ids[130:210, 10 + shift:90 + shift] = 9
        frames.append((shift, draw_panoptic_tracks(image, ids, segs, META)))
    (s0, pic0), (s1, pic1) = frames

    def patch(pic, y, x):  # a corner patch inside a square, away from its label and edges
        return pic[y + 8:y + 24, x + 8:x + 24].reshape(-1, 3).mean(0)

    c5_0, c5_1 = patch(pic0, 10, 10 + s0), patch(pic1, 10, 10 + s1)
    c9_0 = patch(pic0, 130, 10 + s0)
    assert np.abs(c5_0 - c5_1).max() < 2  # the same track, the same colour, wherever it is
    assert np.abs(c5_0 - c9_0).max() > 20  # another track, another colour
    expected = 0.45 * 128 + 0.55 * 255 * track_color(5)  # blended towards the track colour
    assert np.abs(c5_0 - expected).max() < 3
    ground = pic0[220:235, 250:300].reshape(-1, 3).mean(0)  # stuff: its class colour (green)
    assert np.abs(ground - (0.45 * 128 + 0.55 * np.array([0, 120, 0]))).max() < 3


def test_index_map_draws_objects_in_their_colours_and_skips_void():
    image = np.zeros((160, 160, 3), np.uint8)
    index = np.zeros((160, 160), np.uint8)
    index[10:70, 10:70] = 1
    index[90:150, 90:150] = 255  # void: not drawn
    pic = draw_index_map(image, index)
    assert pic.shape == (160, 160, 3)
    corner = pic[18:30, 18:30].reshape(-1, 3).mean(0)
    assert np.abs(corner - ALPHA * 255 * track_color(1)).max() < 3
    assert pic[100:140, 100:140].max() == 0 and pic[75:85, 5:60].max() == 0


def test_frame_strip_tiles_with_gaps_and_checks_sizes():
    a = np.zeros((10, 20, 3), np.uint8)
    b = np.full((10, 20, 3), 7, np.uint8)
    out = frame_strip([[a, b], [b, a]], gap=2)
    assert out.shape == (22, 42, 3)
    assert (out[:10, 22:] == 7).all() and (out[10:12] == 255).all()
    with pytest.raises(ValueError, match=r"picture \(0, 1\)"):
        frame_strip([[a, np.zeros((5, 5, 3), np.uint8)]])
