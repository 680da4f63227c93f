"""PromptPredictor: encode once, prompts in original coordinates through the test resize, outputs,
bad prompts, referring regions."""
import numpy as np
import pytest
import torch
from detectron2.data import transforms as T

from conftest import make_predictor_cfg
from omgseg.data.prompts import Prompts, point_box
from omgseg.inference import PromptPredictor, build_prompts

NAMES = ["cat", "dog", "grass, lawn"]
H0, W0 = 48, 80  # original image; test resize 64 / 96 -> 58 x 96


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    return make_predictor_cfg(tmp_path_factory.mktemp("prompt_predictor"),
                              **{"MODEL.OMG.PROMPT.MAX_PROMPTS": 8})


@pytest.fixture(scope="module")
def predictor(cfg):
    p = PromptPredictor(cfg)
    p.set_vocabulary(NAMES)
    p.set_image(_bgr())
    return p


def _bgr(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (H0, W0, 3), dtype=np.uint8)


def _mask():
    m = np.zeros((H0, W0), bool)
    m[10:30, 20:60] = True
    return m


def test_prompts_are_mapped_through_the_test_resize():
    tfm = T.ResizeTransform(H0, W0, 58, 96)
    p = build_prompts(tfm, (H0, W0), (58, 96), points=[[40, 24]], boxes=[[10, 10, 50, 30]],
                      polygons=[[[0, 0], [40, 0], [0, 24]]], masks=[_mask()])
    sx, sy = 96 / 80, 58 / 48
    assert p.kinds == ["point", "box", "polygon", "mask"] and p.image_size == (58, 96)
    torch.testing.assert_close(p.boxes[0], torch.tensor(point_box(40 * sx, 24 * sy)))
    torch.testing.assert_close(p.boxes[1], torch.tensor([10 * sx, 10 * sy, 50 * sx, 30 * sy]))
    tri = p.regions[0]
    assert tri[0, 0] and tri[0, 47] and tri[28, 0] and not tri[57, 95]
    mask = p.regions[1]  # rows 10..29, cols 20..59 at x(1.208, 1.2)
    assert mask[13, 25] and mask[35, 70] and not mask[10, 20] and not mask[40, 20]
    assert p.boxes[3].tolist() == [24.0, 12.0, 72.0, 36.0]


def test_set_image_encodes_once(cfg):
    p = PromptPredictor(cfg)
    p.set_vocabulary(NAMES)
    calls = []
    p.model.backbone.register_forward_hook(lambda *a: calls.append(1))
    p.set_image(_bgr())
    for _ in range(3):
        p.predict(points=[[10, 10]])
    p.predict(boxes=[[0, 0, 20, 20]], scribbles=[[[5, 5], [15, 12]]])
    assert len(calls) == 1


def test_predict_outputs_at_original_size_in_prompt_order(predictor):
    r = predictor.predict(points=[[40, 24], [5, 5]], boxes=[[10, 10, 50, 30]],
                          scribbles=[[[20, 20], [40, 25], [50, 20]]],
                          polygons=[[[60, 5], [75, 5], [70, 40]]], masks=_mask())
    assert r.kinds == ["point", "point", "box", "scribble", "polygon", "mask"]
    assert r.masks.shape == (6, H0, W0) and r.masks.dtype == bool
    for field in (r.scores, r.objectness, r.label_ids, r.label_scores):
        assert field.shape == (6,)
    assert set(r.labels) <= set(NAMES) and ((r.scores >= 0) & (r.scores <= 1)).all()
    assert ((r.label_scores > 0) & (r.label_scores <= 1)).all()
    # mask quality: mean probability inside a non-empty mask is above 0.5
    assert ((r.scores > 0.5) | ~r.masks.any(axis=(1, 2))).all()


def test_predict_equals_the_model_prompt_inference(predictor):
    image = _bgr()
    r = predictor.predict(boxes=[[10, 10, 50, 30]], points=[[40, 24]])
    rgb = image[:, :, ::-1]
    resized = predictor.aug.get_transform(rgb).apply_image(rgb)
    tensor = torch.as_tensor(np.ascontiguousarray(resized.transpose(2, 0, 1)))
    sx, sy = 96 / 80, 58 / 48
    prompts = Prompts(["point", "box"], torch.tensor(
        [point_box(40 * sx, 24 * sy), [10 * sx, 10 * sy, 50 * sx, 30 * sy]]), (58, 96))
    with torch.no_grad():
        out = predictor.model([{"image": tensor, "height": H0, "width": W0,
                                "prompts": prompts}])[0]["prompt_instances"]
    assert np.array_equal(out.pred_masks.numpy(), r.masks)
    np.testing.assert_allclose(out.scores.numpy(), r.scores, rtol=1e-5, atol=1e-6)
    assert out.pred_classes.tolist() == r.label_ids.tolist()


def test_bgr_and_rgb_inputs_agree(cfg, predictor):
    p = PromptPredictor(cfg, input_format="RGB", model=predictor.model)
    p.set_image(_bgr()[:, :, ::-1].copy())
    a = predictor.predict(boxes=[[10, 10, 50, 30]])
    b = p.predict(boxes=[[10, 10, 50, 30]])
    assert np.array_equal(a.masks, b.masks)


def test_vocabulary_switch_changes_labels(cfg, predictor):
    p = PromptPredictor(cfg, model=predictor.model)
    p.set_image(_bgr())
    p.set_vocabulary(["zebra", "teapot"])
    r = p.predict(boxes=[[10, 10, 50, 30]])
    assert r.labels[0] in ("zebra", "teapot")
    predictor.set_vocabulary(NAMES)


@pytest.mark.parametrize("kwargs, match", [
    (dict(points=[[90, 10]]), r"points\[0\] \(point\): point \(90, 10\) is outside the image"),
    (dict(points=[[10, 10], [float("nan"), 3]]), r"points\[1\] \(point\): .*finite"),
    (dict(points=[[10, 10]], point_labels=[0]), r"points\[0\] \(point\): label 0"),
    (dict(boxes=[[0, 0, 10, 10], [20, 20, 10, 30]]), r"boxes\[1\] \(box\): .*inverted or has "
                                                     r"zero area"),
    (dict(boxes=[[5, 5, 5, 20]]), r"boxes\[0\] \(box\): .*zero area"),
    (dict(boxes=[[-3, 0, 10, 10]]), r"boxes\[0\] \(box\): point \(-3, 0\) is outside"),
    (dict(boxes=[[0, 0, 10]]), r"boxes\[0\] \(box\) must be 4 numbers"),
    (dict(scribbles=[[[1, 1], [5, 5]], []]), r"scribbles\[1\] \(scribble\) is empty"),
    (dict(scribbles=[[[1, 1], [500, 5]]]), r"scribbles\[0\] \(scribble\): point \(500, 5\)"),
    (dict(polygons=[[[1, 1], [5, 5]]]), r"polygons\[0\] \(polygon\) needs at least 3 "
                                        r"vertices, got 2"),
    (dict(polygons=[[[1, 1], [5, 5], [1, float("inf")]]]), r"polygons\[0\] \(polygon\): .*"
                                                           r"finite"),
    (dict(masks=np.ones((10, 10), bool)), r"masks\[0\] \(mask\): size \(10, 10\) differs"),
    (dict(masks=[_mask(), np.zeros((H0, W0), bool)]), r"masks\[1\] \(mask\) is empty"),
    (dict(points=[[1, 1]] * 5, boxes=[[0, 0, 5, 5]] * 4), r"9 prompts exceed the limit of 8"),
    (dict(), "no prompt given"),
])
def test_bad_prompts_are_named(predictor, kwargs, match):
    with pytest.raises(ValueError, match=match):
        predictor.predict(**kwargs)


def test_predict_needs_an_image(cfg, predictor):
    p = PromptPredictor(cfg, model=predictor.model)
    with pytest.raises(RuntimeError, match="set_image"):
        p.predict(points=[[1, 1]])


def test_referring_region_across_images(cfg, predictor):
    p = PromptPredictor(cfg, model=predictor.model)
    p.set_image(_bgr(1))
    ref = p.encode_region(scribbles=[[[20, 20], [40, 25]]], masks=_mask())
    assert ref.embeddings.shape == (2, p.model.backbone.text_dim) and ref.kinds == ["scribble",
                                                                                     "mask"]
    torch.testing.assert_close(ref.embeddings.norm(dim=-1), torch.ones(2))
    p.set_image(_bgr(2))
    # The random-init classifier scores every query void (negative cosines), so no semantic
    # query is a panoptic segment: nothing to refer to.
    assert len(p.find_similar(ref, threshold=-1.0).similarity) == 0
    scale, overlap = p.model.mask_decoder.logit_scale, p.model.overlap_threshold
    p.model.mask_decoder.logit_scale = -scale  # classes now beat void, as after training
    p.model.overlap_threshold = 0.0  # random masks overlap a lot: keep every winner
    try:
        everything = p.find_similar(ref, threshold=-1.0)
        assert len(everything.similarity) >= 1 and everything.masks.shape[1:] == (H0, W0)
        assert (np.diff(everything.similarity) <= 0).all()  # best first
        assert everything.masks.sum(0).max() <= 1  # no overlaps
        assert set(everything.labels) <= set(NAMES)
        assert len(p.find_similar(ref, threshold=1.01).similarity) == 0
    finally:
        p.model.mask_decoder.logit_scale, p.model.overlap_threshold = scale, overlap
