"""OMGSegPredictor: weights, test resize, colour order, grayscale / alpha, vocabulary, errors."""
import numpy as np
import pytest
import torch
from detectron2.modeling import build_model

from conftest import make_predictor_cfg
from omgseg.inference import OMGSegPredictor, prepare_image

NAMES = ["cat", "dog", "grass, lawn"]


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    """The tiny config with weights saved from a model built with seed 0."""
    return make_predictor_cfg(tmp_path_factory.mktemp("predictor"))


@pytest.fixture(scope="module")
def predictor(cfg):
    torch.manual_seed(123)  # a different init: only the loaded weights make outputs match
    p = OMGSegPredictor(cfg)
    p.set_vocabulary(NAMES, is_thing=[True, True, False])
    return p


def _bgr(h=48, w=80, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _assert_same(a, b):
    torch.testing.assert_close(a["sem_seg"], b["sem_seg"])
    assert torch.equal(a["panoptic_seg"][0], b["panoptic_seg"][0])


def test_loads_weights_resizes_and_converts_bgr_to_model_rgb(cfg, predictor):
    image = _bgr()
    with torch.no_grad():
        out = predictor(image)
        # By hand: the seed-0 model, RGB channels, shortest edge 64 (48 x 80 -> 64 x 107 capped
        # by the max size 96 -> 58 x 96), outputs at the original size.
        torch.manual_seed(0)
        model = build_model(cfg).eval()
        model.set_vocabulary(predictor.model.default_vocabulary)
        resized = predictor.aug.get_transform(image).apply_image(image[:, :, ::-1])
        assert resized.shape[:2] == (58, 96)
        tensor = torch.as_tensor(np.ascontiguousarray(resized.transpose(2, 0, 1)))
        want = model([{"image": tensor, "height": 48, "width": 80}])[0]
        wrong_order = model([{"image": tensor.flip(0), "height": 48, "width": 80}])[0]
    assert out["sem_seg"].shape == (3, 48, 80)
    assert out["panoptic_seg"][0].shape == (48, 80) and out["instances"].image_size == (48, 80)
    _assert_same(out, want)
    assert not torch.allclose(out["sem_seg"], wrong_order["sem_seg"])


def test_rgb_input_format(cfg, predictor):
    image = _bgr(seed=1)
    rgb = OMGSegPredictor(cfg, input_format="RGB")
    rgb.set_vocabulary(NAMES, is_thing=[True, True, False])
    with torch.no_grad():
        _assert_same(rgb(np.ascontiguousarray(image[:, :, ::-1])), predictor(image))


def test_grayscale_and_alpha_inputs(predictor):
    gray = _bgr(seed=2)[:, :, 0]
    color = _bgr(seed=3)
    with torch.no_grad():
        as_three = predictor(np.repeat(gray[:, :, None], 3, axis=2))
        _assert_same(predictor(gray), as_three)
        _assert_same(predictor(gray[:, :, None]), as_three)
        alpha = np.full(color.shape[:2] + (1,), 7, dtype=np.uint8)
        _assert_same(predictor(np.concatenate([color, alpha], axis=2)), predictor(color))


@pytest.mark.parametrize(
    "image, error, match",
    [
        (np.zeros((8, 8, 3), np.float32), TypeError, "image must be uint8.*float32.*by 255"),
        (np.zeros((8, 8, 3), np.uint16), TypeError, "image must be uint8.*uint16"),
        (np.zeros((8, 8, 2), np.uint8), ValueError, "image must be \\(H, W, 3\\).*\\(8, 8, 2\\)"),
        (np.zeros((1, 8, 8, 3), np.uint8), ValueError, "image must be \\(H, W, 3\\)"),
        (np.zeros((0, 8, 3), np.uint8), ValueError, "image is empty"),
        (torch.zeros(8, 8, 3, dtype=torch.uint8), TypeError, "image must be a numpy array"),
    ],
)
def test_bad_images_name_the_argument_and_expectation(predictor, image, error, match):
    with pytest.raises(error, match=match):
        predictor(image)


def test_prepare_image_options():
    with pytest.raises(ValueError, match="input_format"):
        prepare_image(_bgr(), "BGRA")
    bgra = np.concatenate([_bgr(), np.zeros((48, 80, 1), np.uint8)], axis=2)
    assert np.array_equal(prepare_image(bgra, "BGR"), bgra[:, :, :3])


def test_vocabulary_switch_and_bad_vocabularies(predictor):
    image = _bgr(seed=4)
    with torch.no_grad():
        predictor.set_vocabulary(["red square", "sky"], is_thing=[True, False])
        out = predictor(image)
        assert out["sem_seg"].shape[0] == 2
        assert {s["category_id"] for s in out["panoptic_seg"][1]} <= {0, 1}
    predictor.set_vocabulary("cat, dog")  # a comma-separated text: two classes
    assert predictor.model.default_vocabulary.names == ("cat", "dog")
    with pytest.raises(TypeError, match="list of class-name strings"):
        predictor.set_vocabulary(["cat", 3])
    with pytest.raises(ValueError, match="empty names at positions \\[1\\]"):
        predictor.set_vocabulary(["cat", " "])
    with pytest.raises(ValueError, match="is_thing has 1 entries for 2"):
        predictor.set_vocabulary(["cat", "dog"], is_thing=[True])
    predictor.set_vocabulary(NAMES, is_thing=[True, True, False])
