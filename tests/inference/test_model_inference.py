"""OMGSeg's inference path: clear errors on bad inputs, and outputs equal to the previous path
(every query's mask upsampled to full resolution before post-processing)."""
import pytest
import torch
import torch.nn.functional as F
from detectron2.modeling import build_model
from detectron2.modeling.postprocessing import sem_seg_postprocess

from conftest import make_tiny_cfg
from omgseg.modeling.postprocessing import (
    instance_inference,
    panoptic_inference,
    semantic_inference,
)
from omgseg.modeling.vocabulary import Vocabulary

VOCAB = Vocabulary(["cat", "dog", "grass, lawn", "sky"], [True, True, False, False])


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    cfg = make_tiny_cfg(
        str(tmp_path_factory.mktemp("model_inference")),
        **{"DATASETS.TEST": "()", "DATASETS.TRAIN": "()"},
    )
    torch.manual_seed(0)
    m = build_model(cfg).eval()
    m.set_vocabulary(VOCAB)
    return m


def _image(h=40, w=52, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)


@pytest.mark.parametrize(
    "inp, error, match",
    [
        ({"img": _image()}, KeyError, "'image' \\[3, H, W\\] or 'video'"),
        ({"image": _image().numpy()}, TypeError, "input\\['image'\\] must be a torch.Tensor"),
        ({"image": _image()[None]}, ValueError, "input\\['image'\\] must be \\[3, H, W\\]"),
        ({"image": _image()[:2]}, ValueError, "3 channels"),
        ({"image": _image().permute(1, 2, 0)}, ValueError, "channels last"),
        ({"image": _image()[:, :0]}, ValueError, "non-empty"),
        ({"image": _image().long()}, TypeError, "uint8 or floating point.*torch.int64"),
        ({"image": _image().float() / 255}, ValueError, "values in \\[0, 1\\].*0..255"),
        ({"video": torch.zeros(0, 3, 32, 32, dtype=torch.uint8)}, ValueError, "0 frames"),
        ({"video": _image()}, ValueError, "input\\['video'\\] must be \\[T, 3, H, W\\]"),
    ],
)
def test_bad_inputs_are_clear_errors(model, inp, error, match):
    with pytest.raises(error, match=match):
        model([inp])


def test_empty_batch_and_mixed_frame_counts_are_clear_errors(model):
    with pytest.raises(ValueError, match="batched_inputs is empty"):
        model([])
    clips = [{"video": torch.zeros(t, 3, 32, 32, dtype=torch.uint8)} for t in (1, 2)]
    with pytest.raises(ValueError, match="same number of frames"):
        model(clips)


def test_float_pixels_on_the_0_255_scale_equal_uint8(model):
    image = _image()
    with torch.no_grad():
        a = model([{"image": image}])[0]
        b = model([{"image": image.float()}])[0]
        black = model([{"image": torch.zeros(3, 64, 64)}])[0]  # max 0: a legal float image
    torch.testing.assert_close(a["sem_seg"], b["sem_seg"])
    assert black["sem_seg"].shape[-2:] == (64, 64)


def _decoder_outputs(model, batched_inputs, seed):
    """Frames and decoder outputs; the class logits are replaced by random ones (the random-init
    classifier calls every query void, which would leave panoptic outputs empty)."""
    images, t = model._frames(batched_inputs)
    _, mask_features, multi_scale = model.encode(images)
    outputs = model.mask_decoder(multi_scale, mask_features, t, model.text_embeddings(VOCAB.names))
    g = torch.Generator().manual_seed(seed)
    outputs["pred_logits"] = 3.0 * torch.randn(outputs["pred_logits"].shape, generator=g)
    return images, t, outputs


def _previous_inference(model, batched_inputs, images, t, outputs):
    """The previous path: every query's mask upsampled to the padded input, cropped and resized,
    then the plain post-processing functions."""
    mask_cls, mask_pred = outputs["pred_logits"], outputs["pred_masks"]
    b, q = mask_pred.shape[:2]
    up = F.interpolate(
        mask_pred.flatten(1, 2), size=images.tensor.shape[-2:], mode="bilinear", align_corners=False
    ).view(b, q, t, *images.tensor.shape[-2:])
    before = model.sem_seg_postprocess_before_inference
    results = []
    for i, inp in enumerate(batched_inputs):
        frames = []
        for f in range(t):
            size = images.image_sizes[i * t + f]
            h, w = inp.get("height", size[0]), inp.get("width", size[1])
            masks = sem_seg_postprocess(up[i, :, f], size, h, w) if before else up[i, :, f]
            sem = semantic_inference(mask_cls[i], masks)
            frames.append({
                "sem_seg": sem if before else sem_seg_postprocess(sem, size, h, w),
                "panoptic_seg": panoptic_inference(
                    mask_cls[i], masks, VOCAB.is_thing, 0.0, model.overlap_threshold
                ),
                "instances": instance_inference(mask_cls[i], masks, 100, VOCAB.is_thing),
            })
        results.append(frames)
    return results


def _assert_same_frame(got, want):
    torch.testing.assert_close(got["sem_seg"], want["sem_seg"], atol=1e-5, rtol=1e-5)
    assert torch.equal(got["panoptic_seg"][0], want["panoptic_seg"][0])
    assert len(got["panoptic_seg"][1]) == len(want["panoptic_seg"][1])
    for a, b in zip(got["panoptic_seg"][1], want["panoptic_seg"][1]):
        assert a == {**b, "score": pytest.approx(b["score"], rel=1e-6)}
    gi, wi = got["instances"], want["instances"]
    assert gi.image_size == wi.image_size
    assert torch.equal(gi.pred_masks, wi.pred_masks)
    assert torch.equal(gi.pred_boxes.tensor, wi.pred_boxes.tensor)
    assert torch.equal(gi.pred_classes, wi.pred_classes)
    torch.testing.assert_close(gi.scores, wi.scores, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("before", [True, False])
def test_outputs_equal_previous_full_resolution_path(model, before):
    model.sem_seg_postprocess_before_inference = before
    # Random weights give heavily overlapping masks: keep every segment with a visible pixel.
    model.overlap_threshold = 0.0
    try:
        # Unpadded 50 x 70 image resized to 75 x 100; an unpadded 2-frame clip at its own size.
        image = [{"image": _image(50, 70, seed=1), "height": 75, "width": 100}]
        clip = [{"video": torch.stack([_image(40, 52, seed=2), _image(40, 52, seed=3)])}]
        with torch.no_grad():
            results = []
            for inputs, seed in ((image, 4), (clip, 5)):
                decoded = _decoder_outputs(model, inputs, seed)
                results.append((
                    model.inference(inputs, *decoded, VOCAB)[0],
                    _previous_inference(model, inputs, *decoded)[0],
                ))
    finally:
        model.sem_seg_postprocess_before_inference = True
        model.overlap_threshold = 0.8
    (got_image, want_image), (got_clip, want_clip) = results
    assert got_image["sem_seg"].shape == (4, 75, 100)
    assert len(want_image[0]["panoptic_seg"][1]) > 1 and len(want_image[0]["instances"]) > 1
    _assert_same_frame(got_image, want_image[0])
    assert len(got_clip["frames"]) == 2
    for got, want in zip(got_clip["frames"], want_clip):
        _assert_same_frame(got, want)
