"""Streaming video inference with a fake decoder: association across clips, stable ids, VIS
tubes, VOS, clip schedules, errors, and memory bounded by the clip length (counted, not timed).

The fake video has 4 tracks on 8 x 8 frames: track 0 a thing (class 0) moving right, track 1 a
thing (class 1) standing still, track 2 stuff (class 2) everywhere else, track 3 void. Every clip
lists the tracks in a different random order with noisy one-hot query features, so only a
correct association gives the expected outputs.
"""
import gc
import weakref

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch

import omgseg.modeling.video.postprocessor as postprocessor_module
from omgseg.modeling.video import (
    ClipPrediction,
    PostprocessSettings,
    infer_video,
    select_video_tasks,
    split_video,
)

IS_THING = (True, True, False)
SIZE = 8
# class logits (K = 3 + void) and objectness of the tracks
TRACK_LOGITS = torch.tensor([
    [10.0, 0.0, 0.0, 0.0],
    [0.0, 9.0, 0.0, 0.0],
    [0.0, 0.0, 8.0, 0.0],
    [-5.0, -5.0, -5.0, 5.0],
])
TRACK_OBJECTNESS = torch.tensor([[5.0], [4.0], [-5.0], [-6.0]])


def track_masks(t: int) -> torch.Tensor:
    """bool [4, 8, 8] masks of the tracks in frame t."""
    m = torch.zeros(4, SIZE, SIZE, dtype=torch.bool)
    x = t % 5
    m[0, 1:4, x:x + 3] = True
    m[1, 5:7, 5:7] = True
    m[2] = ~(m[0] | m[1])
    m[3, 0, 0] = True
    return m


class FakeVideo:
    """``decode_clip`` of a fake model; counts the clip predictions alive at once."""

    def __init__(self, num_frames: int, seed: int = 0):
        self.num_frames = num_frames
        self.g = torch.Generator().manual_seed(seed)
        self.alive = 0
        self.peak_alive = 0
        self.decoded = []

    def _born(self, tensor):
        self.alive += 1
        self.peak_alive = max(self.peak_alive, self.alive)
        weakref.finalize(tensor, self._died)

    def _died(self):
        self.alive -= 1

    def decode_clip(self, start: int, end: int) -> ClipPrediction:
        self.decoded.append((start, end))
        order = torch.randperm(4, generator=self.g)  # row r of this clip = track order[r]
        masks = torch.stack([track_masks(t) for t in range(start, end)], 1).float() * 16 - 8
        features = torch.eye(4, 8) + 0.05 * torch.randn(4, 8, generator=self.g)
        pred = ClipPrediction(
            mask_cls=TRACK_LOGITS[order], objectness=TRACK_OBJECTNESS[order],
            masks=masks[order], query_features=features[order],
            padded_size=(SIZE, SIZE), image_size=(SIZE, SIZE))
        self._born(pred.masks)
        return pred


def run(num_frames, clip_length=3, tasks=("panoptic", "semantic", "instance", "vos"),
        settings=None, video=None, **kwargs):
    video = video or FakeVideo(num_frames)
    first = track_masks(0)
    defaults = dict(first_frame_masks=first[:2], object_ids=[3, 7])
    defaults.update(kwargs)
    out = infer_video(
        bounds=split_video(num_frames, clip_length), decode_clip=video.decode_clip,
        num_frames=num_frames, tasks=tasks, is_thing=IS_THING, output_size=(SIZE, SIZE),
        settings=settings or PostprocessSettings(topk=3, num_vos_proposals=2),
        instance_thing_mask=IS_THING, video_id="v1", **defaults)
    return out, video


def expected_panoptic(t):
    m = track_masks(t)
    ids = torch.full((SIZE, SIZE), 3, dtype=torch.int32)
    ids[m[0]] = 1
    ids[m[1]] = 2
    return ids


@pytest.mark.parametrize("num_frames, clip_length", [(7, 3), (6, 2), (1, 3), (5, 5)])
def test_outputs_follow_the_tracks_through_every_clip(num_frames, clip_length):
    out, video = run(num_frames, clip_length)
    assert video.decoded == split_video(num_frames, clip_length)
    assert out["video_id"] == "v1" and len(out["frames"]) == num_frames
    for t, frame in enumerate(out["frames"]):
        ids, info = frame["panoptic_seg"]
        assert torch.equal(ids, expected_panoptic(t)), f"frame {t}"
        assert [(s["id"], s["category_id"], s["isthing"]) for s in info] == [
            (1, 0, True), (2, 1, True), (3, 2, False)]
        m = track_masks(t)
        labels = torch.full((SIZE, SIZE), 2)
        labels[m[0]], labels[m[1]] = 0, 1
        assert torch.equal(frame["sem_seg"], labels)
        vos = out["vos_masks"][t]
        assert vos.dtype == np.uint8
        assert np.array_equal(vos, (m[0].numpy() * 3 + m[1].numpy() * 7))
    # VIS: top-3 pairs (0, 0), (1, 1), (2, 2); the stuff one is dropped
    inst = out["video_instances"]
    assert [i["category_id"] for i in inst] == [0, 1]
    probs = torch.softmax(TRACK_LOGITS, -1)
    sig8 = float(torch.sigmoid(torch.tensor(8.0)))
    assert inst[0]["score"] == pytest.approx(float(probs[0, 0]) * sig8, rel=1e-4)
    assert inst[1]["score"] == pytest.approx(float(probs[1, 1]) * sig8, rel=1e-4)
    for i, track in zip(inst, (0, 1)):
        assert len(i["segmentations"]) == num_frames
        for t, rle in enumerate(i["segmentations"]):
            decoded = mask_util.decode(dict(rle, counts=rle["counts"].encode())).astype(bool)
            assert np.array_equal(decoded, track_masks(t)[track].numpy())


def test_frames_are_lazy_and_re_iterable():
    out, _ = run(5, tasks=("panoptic",))
    first = [f["panoptic_seg"][0] for f in out["frames"]]
    second = [f["panoptic_seg"][0] for f in out["frames"]]
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert list(out["frames"][0]) == ["panoptic_seg"]
    assert "video_instances" not in out and "vos_masks" not in out


def test_store_lives_as_long_as_the_output(tmp_path):
    out, _ = run(4, tasks=("panoptic",), tmp_dir=str(tmp_path))
    assert len(list(tmp_path.iterdir())) == 1
    del out
    gc.collect()
    assert list(tmp_path.iterdir()) == []
    out, _ = run(4, tasks=("instance",), tmp_dir=str(tmp_path))
    assert len(out["video_instances"]) == 2
    assert list(tmp_path.iterdir()) == []  # nothing lazy left: removed at once


def count_full_resolution_maps(monkeypatch):
    """Wrap the resize to the output size: count its results alive at once."""
    state = {"alive": 0, "peak": 0}
    real = postprocessor_module.resize_mask_logits

    def died():
        state["alive"] -= 1

    def counting(*args, **kwargs):
        x = real(*args, **kwargs)
        state["alive"] += 1
        state["peak"] = max(state["peak"], state["alive"])
        weakref.finalize(x, died)
        return x

    monkeypatch.setattr(postprocessor_module, "resize_mask_logits", counting)
    return state


@pytest.mark.parametrize("num_frames", [4, 16])
def test_memory_is_bounded_by_the_clip_not_the_video(monkeypatch, num_frames):
    state = count_full_resolution_maps(monkeypatch)
    out, video = run(num_frames, clip_length=2)
    # as the evaluators read: frame by frame, each output dropped after use
    for frame in out["frames"]:
        frame["panoptic_seg"], frame["sem_seg"]
    for index_map in out["vos_masks"]:
        assert index_map.shape == (SIZE, SIZE)
    del frame, index_map
    gc.collect()
    assert video.peak_alive == 1  # one clip's prediction at a time, whatever the length
    assert state["peak"] == 1  # one frame's resized masks at a time
    assert state["alive"] == 0


def test_vos_errors_name_the_video():
    with pytest.raises(ValueError, match="video 'v1': the first frame has no object"):
        run(3, first_frame_masks=torch.zeros(2, SIZE, SIZE, dtype=torch.bool))
    with pytest.raises(ValueError, match="video 'v1': the first frame has no object"):
        run(3, first_frame_masks=torch.zeros(0, SIZE, SIZE, dtype=torch.bool), object_ids=[])
    with pytest.raises(ValueError, match="video 'v1': VOS needs 'first_frame_masks'"):
        run(3, first_frame_masks=None)
    with pytest.raises(ValueError, match="object_ids must lie in 1..255"):
        run(3, object_ids=[0, 7])


def test_frames_of_different_sizes_are_an_error(tmp_path):
    video = FakeVideo(4)
    real = video.decode_clip

    def decode(start, end):
        pred = real(start, end)
        if start > 0:
            pred.image_size = (SIZE - 1, SIZE)
        return pred

    video.decode_clip = decode
    with pytest.raises(ValueError, match="video 'v1': frames 2..3 are"):
        run(4, clip_length=2, video=video, tmp_dir=str(tmp_path))
    gc.collect()
    assert list(tmp_path.iterdir()) == []  # the store of the failed video is gone


def test_task_selection_by_evaluator_type():
    on = dict(panoptic_on=True, semantic_on=True, instance_on=True)
    assert select_video_tasks("vps", has_first_frame=False, **on) == ("panoptic", "semantic")
    assert select_video_tasks("ytvis", has_first_frame=False, **on) == ("instance",)
    assert select_video_tasks("davis", has_first_frame=True, **on) == ("vos",)
    assert select_video_tasks(None, has_first_frame=False, **on) == (
        "panoptic", "semantic", "instance")
    assert select_video_tasks(None, has_first_frame=True, **on)[-1] == "vos"
    off = dict(panoptic_on=False, semantic_on=True, instance_on=False)
    assert select_video_tasks("vps", has_first_frame=False, **off) == ("semantic",)
    assert select_video_tasks("ytvis", has_first_frame=False, **off) == ()


@pytest.mark.parametrize("progress, disable", [(True, None), (False, True)])
def test_progress_bar_over_frames(monkeypatch, progress, disable):
    import omgseg.modeling.video.inference as inference_module

    bars = []

    class Bar:
        def __init__(self, total=None, disable=False, **kwargs):
            self.total, self.disable, self.done = total, disable, 0
            bars.append(self)

        def update(self, n):
            self.done += n

        def close(self):
            pass

    monkeypatch.setattr(inference_module, "tqdm", Bar)
    run(7, clip_length=3, tasks=("panoptic",), progress=progress)
    assert [(b.total, b.done, b.disable) for b in bars] == [(7, 7, disable)]
