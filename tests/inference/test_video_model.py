"""``OMGSeg`` on whole videos (``{"video_frames": ...}``): one model clip by clip, the official
association features, outputs at the original size, the evaluator-driven tasks and errors."""
import numpy as np
import pytest
import torch
from detectron2.data import MetadataCatalog
from detectron2.modeling import build_model

from conftest import make_tiny_cfg
from omgseg.modeling.video import final_query_features
from omgseg.modeling.vocabulary import Vocabulary

VOCAB = Vocabulary(["cat", "dog", "grass, lawn", "sky"], [True, True, False, False])


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    cfg = make_tiny_cfg(
        str(tmp_path_factory.mktemp("video_model")),
        **{"DATASETS.TEST": "()", "DATASETS.TRAIN": "()",
           "MODEL.OMG.TEST.VIDEO.PROGRESS_BAR": False},
    )
    torch.manual_seed(0)
    m = build_model(cfg).eval()
    m.set_vocabulary(VOCAB)
    return m


def _frames(n, h=32, w=48, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


class CountingDecoder:
    """Records the T of every decoder call."""

    def __init__(self, model, monkeypatch):
        self.calls = []
        real = model.mask_decoder.forward

        def forward(multi_scale, mask_features, num_frames, *args, **kwargs):
            self.calls.append(num_frames)
            return real(multi_scale, mask_features, num_frames, *args, **kwargs)

        monkeypatch.setattr(model.mask_decoder, "forward", forward)


def test_video_output_formats_at_the_original_size(model, monkeypatch):
    counter = CountingDecoder(model, monkeypatch)
    first = np.zeros((2, 40, 60), dtype=bool)
    first[0, :20] = True
    first[1, 25:, 30:] = True
    with torch.no_grad():
        (out,) = model([{"video_frames": _frames(5), "height": 40, "width": 60,
                         "video_id": "clip", "first_frame_masks": first, "object_ids": [4, 9]}])
    assert counter.calls == [3, 2]  # no evaluator type: clips of 3 frames (official demo)
    assert sorted(out) == ["frames", "video_id", "video_instances", "vos_masks"]
    assert len(out["frames"]) == 5 and len(out["vos_masks"]) == 5
    ids, info = out["frames"][4]["panoptic_seg"]
    assert ids.shape == (40, 60) and ids.dtype == torch.int32
    assert set(torch.unique(ids).tolist()) - {0} <= {s["id"] for s in info}
    sem = out["frames"][0]["sem_seg"]
    assert sem.shape == (40, 60) and sem.dtype == torch.int64 and int(sem.max()) < 4
    inst = out["video_instances"]
    assert 0 < len(inst) <= 100 and all(i["category_id"] in (0, 1) for i in inst)
    assert all(len(i["segmentations"]) == 5 and i["segmentations"][0]["size"] == [40, 60]
               for i in inst)
    vos = out["vos_masks"][2]
    assert vos.shape == (40, 60) and vos.dtype == np.uint8
    assert set(np.unique(out["vos_masks"][0]).tolist()) <= {0, 4, 9}


def test_association_uses_the_final_queries_before_the_decoder_norm(model):
    feats = torch.randn(3, 32, 16, 24)
    ms = [torch.randn(3, 32, 4, 6), torch.randn(3, 32, 8, 12), torch.randn(3, 32, 16, 24)]
    text = torch.nn.functional.normalize(torch.randn(4, 1, model.backbone.text_dim), dim=-1)
    norm = model.mask_decoder.decoder_norm
    saved = {k: v.clone() for k, v in norm.state_dict().items()}
    try:
        with torch.no_grad():  # a trained-like affine LayerNorm (at init it is ~ the identity)
            norm.weight.uniform_(0.5, 2.0)
            norm.bias.uniform_(-1.0, 1.0)
            with final_query_features(model.mask_decoder) as captured:
                out = model.mask_decoder(ms, feats, 3, text)
            raw = captured["features"]
            assert raw.shape == out["query_embeds"].shape
            assert not torch.allclose(raw, out["query_embeds"], atol=1e-2)
            torch.testing.assert_close(norm(raw), out["query_embeds"])
    finally:
        norm.load_state_dict(saved)
    assert not norm._forward_pre_hooks  # the hook is removed afterwards


def test_one_frame_video_matches_the_image_path(model):
    frame = _frames(1, 32, 64, seed=3)[0]
    image = torch.from_numpy(frame.transpose(2, 0, 1).copy())
    with torch.no_grad():
        ref = model([{"image": image, "height": 48, "width": 96}])[0]
        (out,) = model([{"video_frames": [frame], "height": 48, "width": 96}])
    agree = (out["frames"][0]["sem_seg"] == ref["sem_seg"].argmax(0)).float().mean()
    assert agree > 0.99  # equal up to the float16 rounding of the stored masks


def test_evaluator_type_picks_outputs_and_clip_length(model, monkeypatch):
    name = "video_model_test_ytvis"
    if name not in MetadataCatalog.list():
        MetadataCatalog.get(name).set(evaluator_type="ytvis")
    monkeypatch.setattr(model, "_vocabulary_of", lambda inp: VOCAB)
    counter = CountingDecoder(model, monkeypatch)
    with torch.no_grad():
        (out,) = model([{"video_frames": _frames(16, 32, 64), "dataset_name": name,
                         "video_id": 7, "length": 16}])
    assert sorted(out) == ["video_id", "video_instances"]
    assert counter.calls == [5, 5, 5, 1]  # YT-VIS: 5 frames per clip over 15 frames


@pytest.mark.parametrize(
    "inp, error, match",
    [
        ({"video_frames": [], "video_id": "a"}, ValueError, "video 'a' has no frames"),
        ({"video_frames": _frames(2), "length": 3, "video_id": "a"}, ValueError,
         "'length' is 3 but video_frames has 2"),
        ({"video_frames": _frames(1) + [np.zeros((32, 48), np.uint8)], "video_id": "a"},
         ValueError, "video 'a', frame 1: a frame must be"),
        ({"video_frames": [torch.zeros(32, 48, 3, dtype=torch.uint8)], "video_id": "a"},
         TypeError, "video 'a', frame 0: video_frames must give numpy"),
        ({"video_frames": _frames(1) + _frames(1, 32, 40), "video_id": "a"}, ValueError,
         "video 'a', frame 1: size"),
        ({"video_frames": _frames(4), "video_id": "a", "first_frame_masks":
          np.zeros((1, 32, 48), bool)}, ValueError, "video 'a': the first frame has no object"),
    ],
)
def test_bad_video_inputs_name_the_video_and_frame(model, inp, error, match):
    with pytest.raises(error, match=match), torch.no_grad():
        model([inp])
