"""The disk-backed per-frame mask store and the lazy output containers."""
import gc
import os

import pytest
import torch

from omgseg.modeling.video.lazy import FrameOutput, LazyFrames, LazySequence
from omgseg.modeling.video.store import MaskStore


def test_store_round_trip_in_any_write_order(tmp_path):
    g = torch.Generator().manual_seed(0)
    masks = torch.randn(3, 5, 4, 6, generator=g) * 10  # [Q, T, h, w]
    store = MaskStore(5, 3, (4, 6), str(tmp_path))
    store.write(3, masks[:, 3:])
    store.write(0, masks[:, :3])
    for t in range(5):
        got = store.read(t)
        assert got.dtype == torch.float32 and got.shape == (3, 4, 6)
        assert torch.allclose(got, masks[:, t].half().float())
    assert os.listdir(tmp_path) == [os.path.basename(store.folder)]
    store.close()
    assert not os.path.exists(store.folder) and store.closed
    with pytest.raises(RuntimeError, match="closed"):
        store.read(0)


def test_store_folder_is_removed_when_garbage_collected(tmp_path):
    store = MaskStore(2, 1, (2, 2), str(tmp_path))
    folder = store.folder
    assert os.path.isdir(folder)
    del store
    gc.collect()
    assert not os.path.exists(folder)


def test_store_clips_huge_logits_and_checks_shapes(tmp_path):
    with MaskStore(2, 2, (2, 2), str(tmp_path), name="video 'v'") as store:
        store.write(0, torch.full((2, 1, 2, 2), float("inf")))
        assert torch.isfinite(store.read(0)).all()
        with pytest.raises(KeyError, match="frame 1 was never written"):
            store.read(1)
        with pytest.raises(ValueError, match="video 'v'.*do not fit"):
            store.write(1, torch.zeros(2, 1, 3, 2))
        with pytest.raises(IndexError, match="outside 0..1"):
            store.write(1, torch.zeros(2, 2, 2, 2))


def test_lazy_frames_compute_on_access_and_cache_per_frame_object():
    calls = []

    def produce(t):
        calls.append(t)
        return t * 10

    frames = LazyFrames(3, {"sem_seg": produce})
    assert len(frames) == 3 and frames.keys == ("sem_seg",)
    f = frames[1]
    assert isinstance(f, FrameOutput) and list(f) == ["sem_seg"] and "sem_seg" in f
    assert f["sem_seg"] == 10 and f["sem_seg"] == 10 and calls == [1]
    assert [fr["sem_seg"] for fr in frames] == [0, 10, 20]
    assert [fr["sem_seg"] for fr in frames] == [0, 10, 20]  # re-iterable
    assert frames[-1]["sem_seg"] == 20
    with pytest.raises(KeyError):
        f["panoptic_seg"]
    with pytest.raises(IndexError, match="frame 3 outside a video of 3 frames"):
        frames[3]
    seq = LazySequence(4, lambda t: t * t)
    assert list(seq) == [0, 1, 4, 9] and seq[1:3] == [1, 4]
