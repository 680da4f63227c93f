"""Prompt-driven VOS (omgseg/modeling/video/prompt_tracking.py): first-frame prompts followed
frame by frame through each object's previous mask."""
import numpy as np
import pytest
import torch

from omgseg.data.prompts import Prompts
from omgseg.modeling.video import masks_to_prompts, paint_objects, track_prompts

H, W = 32, 48


def _square(y, x, size=8):
    m = torch.zeros(H, W, dtype=torch.bool)
    m[y:y + size, x:x + size] = True
    return m


def test_masks_to_prompts_uses_the_tight_box_and_keeps_the_prompt_of_a_vanished_object():
    region = np.zeros((H, W), bool)
    region[2:5, 3:9] = True
    previous = Prompts.from_parts(["point", "scribble"], [[1, 1, 7, 7], [3, 2, 9, 5]],
                                  [None, region], (H, W))
    masks = torch.stack([_square(10, 20), torch.zeros(H, W, dtype=torch.bool)])
    out = masks_to_prompts(masks, previous)
    assert out.kinds == ["mask", "scribble"]
    torch.testing.assert_close(out.boxes[0], torch.tensor([20.0, 10, 28, 18]))
    torch.testing.assert_close(out.boxes[1], previous.boxes[1])
    assert torch.equal(out.regions[0], masks[0]) and torch.equal(out.regions[1],
                                                                 torch.from_numpy(region))
    with pytest.raises(ValueError, match="do not fit"):
        masks_to_prompts(masks[:1], previous)


def test_paint_objects_takes_the_most_probable_object_above_one_half():
    probs = torch.zeros(2, 2, 3)
    probs[0] = torch.tensor([[0.9, 0.6, 0.1], [0.2, 0.7, 0.4]])
    probs[1] = torch.tensor([[0.8, 0.7, 0.3], [0.6, 0.1, 0.45]])
    out = paint_objects(probs, [3, 7])
    assert out.dtype == np.uint8
    assert out.tolist() == [[3, 7, 0], [7, 3, 0]]
    assert paint_objects(torch.zeros(0, 2, 2), []).tolist() == [[0, 0], [0, 0]]


def test_track_prompts_follows_each_object_with_its_previous_mask():
    """A fake model that segments the square under each prompt's box: objects that move a few
    pixels per frame are followed because frame t is prompted with frame t - 1's mask."""
    num_frames = 6
    positions = {0: [(4, 4 + 3 * t) for t in range(num_frames)],
                 1: [(20, 40 - 4 * t) for t in range(num_frames)]}
    seen = []

    def decode(t, prompts):
        seen.append(prompts)
        logits = torch.full((2, H // 4, W // 4), -10.0)
        for k in range(2):  # the object whose square overlaps the prompt box (or nothing)
            x0, y0, x1, y1 = prompts.boxes[k].tolist()
            for obj in (0, 1):
                y, x = positions[obj][t]
                if x < x1 and x + 8 > x0 and y < y1 and y + 8 > y0:
                    logits[k, y // 4:-(-(y + 8) // 4), x // 4:-(-(x + 8) // 4)] = 10.0
        return logits, torch.zeros(2, 4), (H, W), (H, W)

    first = Prompts.from_parts(["point", "point"], [[5, 5, 11, 11], [41, 21, 47, 27]],
                               [None, None], (H, W))
    out = track_prompts(decode, first, num_frames, [1, 2], (H, W), video_id="v")
    assert seen[0] is first and all(p.kinds == ["mask", "mask"] for p in seen[1:])
    for t in range(num_frames):
        # the squares are drawn on the 4-px feature grid: compare their interiors, and require
        # background outside each square grown by one cell
        got = out["vos_masks"][t]
        near = np.zeros((H, W), bool)
        for k, (y, x) in ((1, positions[0][t]), (2, positions[1][t])):
            assert (got[y + 2:y + 6, x + 2:x + 6] == k).all(), (t, k)
            near[max(y - 4, 0):y + 12, max(x - 4, 0):x + 12] = True
        assert (got[~near] == 0).all(), t
    assert len(out["vos_masks"]) == num_frames and len(out["object_labels"]) == 2
    # the index maps can be read again (lazy, re-iterable)
    assert np.array_equal(out["vos_masks"][3], out["vos_masks"][3])


def test_track_prompts_rejects_bad_input():
    first = Prompts.from_parts(["point"], [[1, 1, 7, 7]], [None], (H, W))
    decode = lambda t, p: (torch.zeros(1, 8, 12), torch.zeros(1, 3), (H, W), (H, W))  # noqa: E731
    with pytest.raises(ValueError, match="at least one prompt"):
        track_prompts(decode, Prompts.from_parts([], np.zeros((0, 4)), [], (H, W)), 2, [],
                      (H, W))
    with pytest.raises(ValueError, match="1 prompts"):
        track_prompts(decode, first, 2, [1, 2], (H, W))
    with pytest.raises(ValueError, match="1..254"):
        track_prompts(decode, first, 2, [255], (H, W))
