"""VideoPredictor: weights, lazy test resize and colour conversion of user frames, paths read
lazily, VOS from first-frame masks, tasks, errors."""
import numpy as np
import pytest
import torch
from detectron2.modeling import build_model
from PIL import Image

import detectron2.data.transforms as T
from conftest import make_predictor_cfg
from omgseg.inference import ResizedFrames, VideoPredictor
from omgseg.modeling.vocabulary import Vocabulary

NAMES = ["cat", "dog", "grass, lawn"]
IS_THING = [True, True, False]


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    return make_predictor_cfg(tmp_path_factory.mktemp("video_predictor"),
                              **{"MODEL.OMG.TEST.VIDEO.PROGRESS_BAR": False})


@pytest.fixture(scope="module")
def predictor(cfg):
    torch.manual_seed(123)  # a different init: only the loaded weights make outputs match
    p = VideoPredictor(cfg)
    p.set_vocabulary(NAMES, is_thing=IS_THING)
    return p


def _bgr_frames(n=4, h=48, w=80, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def test_matches_the_model_on_resized_rgb_frames(cfg, predictor):
    frames = _bgr_frames()
    out = predictor(frames, video_id="mine")
    # by hand: the seed-0 model on RGB frames resized to 58 x 96 (short edge 64, long edge
    # capped at 96), outputs at the original 48 x 80
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    model.set_vocabulary(Vocabulary(NAMES, IS_THING))
    resize = T.ResizeShortestEdge([64, 64], 96).get_transform(frames[0][:, :, ::-1])
    rgb = [np.ascontiguousarray(resize.apply_image(f[:, :, ::-1].copy())) for f in frames]
    assert rgb[0].shape == (58, 96, 3)
    with torch.no_grad():
        (ref,) = model([{"video_frames": rgb, "height": 48, "width": 80, "video_id": "mine"}])
    assert out["video_id"] == "mine" and len(out["frames"]) == 4
    for a, b in zip(out["frames"], ref["frames"]):
        assert a["panoptic_seg"][0].shape == (48, 80)
        assert torch.equal(a["panoptic_seg"][0], b["panoptic_seg"][0])
        assert torch.equal(a["sem_seg"], b["sem_seg"])
    assert [i["score"] for i in out["video_instances"]] == pytest.approx(
        [i["score"] for i in ref["video_instances"]])


def test_resized_frames_are_lazy_and_checked():
    frames = _bgr_frames(3)
    lazy = ResizedFrames(frames, T.ResizeShortestEdge([64, 64], 96), "BGR", "RGB", "v")
    assert len(lazy) == 3 and lazy.original_size == (48, 80) and lazy.size == (58, 96)
    assert lazy[1].shape == (58, 96, 3)
    frames[2] = np.zeros((40, 80, 3), np.uint8)
    with pytest.raises(ValueError, match="video 'v', frame 2: size"):
        lazy[2]
    frames[2] = np.zeros((48, 80, 3), np.float32)
    with pytest.raises(TypeError, match="video 'v', frame 2: image must be uint8"):
        lazy[2]


def test_folder_of_frames_vos_and_tasks(predictor, tmp_path):
    frames = _bgr_frames(4, 40, 64, seed=1)
    for t, f in enumerate(frames):
        Image.fromarray(f[:, :, ::-1]).save(tmp_path / f"{t:05d}.png")
    masks = np.zeros((2, 40, 64), bool)
    masks[0, :20, :32] = True
    masks[1, 20:, 32:] = True
    out = predictor(str(tmp_path), first_frame_masks=masks, object_ids=[2, 5],
                    tasks=("vos",))
    assert sorted(out) == ["video_id", "vos_masks"]
    assert len(out["vos_masks"]) == 4 and out["vos_masks"][3].shape == (40, 64)
    assert set(np.unique(out["vos_masks"][0]).tolist()) <= {0, 2, 5}
    # the same frames as arrays give the same maps
    same = predictor(frames, first_frame_masks=masks, object_ids=[2, 5], tasks=("vos",))
    assert all(np.array_equal(a, b) for a, b in zip(out["vos_masks"], same["vos_masks"]))


def test_bad_videos_are_clear_errors(predictor):
    with pytest.raises(TypeError, match="video must be a path"):
        predictor(42)
    with pytest.raises(ValueError, match="has no frames"):
        predictor([])
    with pytest.raises(ValueError, match="unknown video tasks"):
        predictor(_bgr_frames(1), tasks=("depth",))


def test_first_frame_prompts_are_mapped_through_the_resize(cfg, predictor):
    """Prompt-driven VOS through the predictor equals the model on the resized frames with the
    prompts scaled by hand (48 x 80 -> 58 x 96: x * 96/80, y * 58/48)."""
    frames = _bgr_frames(n=3)
    out = predictor(frames, first_frame_prompts={"points": [[40.0, 24.0]],
                                                 "boxes": [[10.0, 8.0, 30.0, 40.0]]})
    assert len(out["vos_masks"]) == 3 and out["vos_masks"][0].shape == (48, 80)
    from omgseg.data.prompts import Prompts

    torch.manual_seed(0)
    model = build_model(cfg).eval()
    model.set_vocabulary(Vocabulary(NAMES, IS_THING))
    resize = T.ResizeShortestEdge([64, 64], 96).get_transform(frames[0][:, :, ::-1])
    rgb = [np.ascontiguousarray(resize.apply_image(f[:, :, ::-1].copy())) for f in frames]
    sx, sy = 96 / 80, 58 / 48
    boxes = torch.tensor([[40 * sx - 3, 24 * sy - 3, 40 * sx + 3, 24 * sy + 3],
                          [10 * sx, 8 * sy, 30 * sx, 40 * sy]])
    got = predictor._frames_of(frames, None)
    from omgseg.inference.prompt_inputs import build_prompts

    mapped = build_prompts(got.transform, got.original_size, got.size,
                           points=[[40.0, 24.0]], boxes=[[10.0, 8.0, 30.0, 40.0]])
    assert isinstance(mapped, Prompts) and mapped.kinds == ["point", "box"]
    torch.testing.assert_close(mapped.boxes.float(), boxes.float(), atol=0.51, rtol=0)
    with torch.no_grad():
        (ref,) = model([{"video_frames": rgb, "height": 48, "width": 80,
                         "first_frame_prompts": mapped, "object_ids": [1, 2]}])
    for a, b in zip(out["vos_masks"], ref["vos_masks"]):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_first_frame_prompts_errors(predictor):
    frames = _bgr_frames(n=2)
    with pytest.raises(ValueError, match="not both"):
        predictor(frames, first_frame_masks=np.ones((1, 48, 80), bool),
                  first_frame_prompts={"points": [[1, 1]]})
    with pytest.raises(TypeError, match="dict of prompt"):
        predictor(frames, first_frame_prompts=[[1, 1]])
    with pytest.raises(ValueError, match="outside"):
        predictor(frames, first_frame_prompts={"points": [[500, 1]]})
