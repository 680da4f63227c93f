"""Clip schedule of streaming video inference: the official clip-length table and video_split."""
import pytest

from omgseg.modeling.video.clips import clip_length_for, split_video


def lengths(bounds):
    return [e - s for s, e in bounds]


@pytest.mark.parametrize(
    "num_frames, clip, expected",
    [
        (1, 3, [1]),  # a one-frame video: one clip of one frame
        (3, 3, [3]),
        (4, 3, [3, 1]),  # 2 missing >= 2 clips: all taken from the last clip
        (5, 3, [3, 2]),  # 1 missing < 2 clips: the last clip loses one
        (7, 3, [3, 2, 2]),  # 2 missing < 3 clips: one from each of the last two
        (16, 5, [5, 5, 5, 1]),  # 4 missing >= 4 clips
        (17, 5, [5, 4, 4, 4]),  # 3 missing < 4 clips
        (20, 5, [5, 5, 5, 5]),
        (16, 2, [2] * 8),
        (9, 1, [1] * 9),
    ],
)
def test_split_video_matches_official_video_split(num_frames, clip, expected):
    bounds = split_video(num_frames, clip)
    assert lengths(bounds) == expected
    # contiguous, in order, covering every frame once
    assert bounds[0][0] == 0 and bounds[-1][1] == num_frames
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))


@pytest.mark.parametrize(
    "evaluator_type, num_frames, expected",
    [
        ("ytvis", 15, 3), ("ytvis", 16, 5), ("davis", 15, 3), ("davis", 80, 5),
        ("vps", 15, 3), ("vps", 16, 2), (None, 100, 3), ("coco_panoptic_seg", 4, 3),
    ],
)
def test_official_clip_length_rule(evaluator_type, num_frames, expected):
    assert clip_length_for(num_frames, evaluator_type) == expected


def test_clip_length_override_and_errors():
    assert clip_length_for(100, "ytvis", override=7) == 7
    with pytest.raises(ValueError, match="CLIP_LENGTH must be >= 0"):
        clip_length_for(10, "ytvis", override=-1)
    with pytest.raises(ValueError, match="at least one frame"):
        split_video(0, 3)
    with pytest.raises(ValueError, match="clip_length must be >= 1"):
        split_video(5, 0)
