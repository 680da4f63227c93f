"""omgseg/utils/prompt_drawing.py: index maps of answers (small masks on top), prompts drawn on
top, shape errors."""
import numpy as np
import pytest

from omgseg.utils.prompt_drawing import draw_prompt_answers, draw_prompts, masks_to_index_map


def test_small_masks_stay_on_top():
    big = np.zeros((10, 10), bool)
    big[1:9, 1:9] = True
    small = np.zeros((10, 10), bool)
    small[4:6, 4:6] = True
    index = masks_to_index_map(np.stack([small, big]))
    assert index[5, 5] == 1 and index[2, 2] == 2 and index[0, 0] == 0


def test_prompts_are_drawn_white_at_scale():
    picture = np.zeros((40, 60, 3), np.uint8)
    stroke = np.zeros((20, 30), bool)
    stroke[10, 5:25] = True
    out = draw_prompts(picture, points=[[10, 5]], boxes=[[2, 2, 28, 18]], strokes=stroke,
                       scale=2.0)
    assert (out[10, 20] == 255).all()  # the click at (10, 5) x 2
    assert (out[4, 30] == 255).all()  # the box's top edge, y = 2 x 2
    assert (out[21, 30] == 255).all()  # the stroke, row 10 -> rows 20..21
    assert (picture == 0).all()  # the input is not modified


def test_answers_need_one_label_per_mask_of_the_image_size():
    image = np.zeros((8, 8, 3), np.uint8)
    masks = np.zeros((2, 8, 8), bool)
    masks[0, :4], masks[1, 4:] = True, True
    out = draw_prompt_answers(image, masks, ["a", "b"])
    assert out.shape == (8, 8, 3) and (out[0, 0] != out[7, 7]).any()
    with pytest.raises(ValueError, match="labels"):
        draw_prompt_answers(image, masks, ["a"])
    with pytest.raises(ValueError, match="image size"):
        draw_prompt_answers(image, masks[:, :4], ["a", "b"])
