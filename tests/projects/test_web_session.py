"""The web demo's logic without a browser: clicks -> prompts, the image encoded once, the
vocabulary switch, scribbles, video, and that the Gradio app builds."""
import numpy as np
import pytest

from helpers_demo import VOCABULARY, shapes_image, write_frames, write_tiny_model
from omgseg_demo.inputs import DemoInputError
from omgseg_demo.segmenter import Segmenter, setup_cfg
from omgseg_demo.web_session import PromptState, WebSession, scribble_mask


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    config = write_tiny_model(tmp_path_factory.mktemp("web_session"))
    return WebSession(Segmenter(setup_cfg(config)))


def test_box_mode_takes_two_clicks():
    state = PromptState().click(10, 40, "box")
    assert state.boxes == [] and state.corner == (10, 40)
    state = state.click(50, 20, "box").click(5, 6, "point")
    assert state.boxes == [(10, 20, 50, 40)] and state.points == [(5, 6)] and state.corner is None


def test_a_second_click_does_not_run_the_backbone(session):
    calls = []
    handle = session.segmenter.model.backbone.register_forward_hook(lambda *a: calls.append(1))
    try:
        image = shapes_image()
        state = PromptState().click(60, 45, "point")
        picture, labels = session.render(image, "prompt", VOCABULARY, state)
        assert len(calls) == 1 and labels in VOCABULARY.split(",")
        state = state.click(105, 70, "point")
        picture, labels = session.render(image.copy(), "prompt", VOCABULARY, state)
        assert len(calls) == 1, "the second click re-encoded the image"
        assert len(labels.split(", ")) == 2 and picture.shape == image.shape
        session.render(shapes_image(seed=1), "prompt", VOCABULARY, state)  # a new image
        assert len(calls) == 2
    finally:
        handle.remove()


def test_vocabulary_switch_relabels(session):
    image, state = shapes_image(), PromptState().click(60, 45, "point")
    _, labels = session.render(image, "prompt", "delta,epsilon | sky", state)
    assert labels in ("delta", "epsilon", "sky")
    assert session.segmenter.vocabulary.is_thing == (True, True, False)
    with pytest.raises(DemoInputError, match="empty"):
        session.render(image, "prompt", " , ", state)


def test_scribble_layer_becomes_a_region(session):
    layer = np.zeros((96, 128, 4), np.uint8)
    layer[40:44, 40:80, 3] = 255
    regions = scribble_mask({"background": None, "layers": [layer]}, (96, 128))
    assert regions.shape == (1, 96, 128) and regions.sum() == 160
    assert scribble_mask({"layers": [np.zeros((96, 128, 4), np.uint8)]}, (96, 128)) is None
    _, labels = session.render(shapes_image(), "prompt", VOCABULARY, PromptState(), regions)
    assert labels in VOCABULARY.split(",")


def test_image_tasks_and_video(session, tmp_path):
    picture, labels = session.render(shapes_image(), "panoptic", VOCABULARY, PromptState())
    assert picture.shape == (96, 128, 3) and set(labels.split(", ")) <= set(VOCABULARY.split(","))
    frames = write_frames(tmp_path / "frames", 3)
    path = session.render_video(frames, "vos", VOCABULARY, PromptState().click(60, 45, "point"),
                                out_dir=str(tmp_path))
    assert path.endswith(".mp4")
    with pytest.raises(DemoInputError, match="outside"):
        session.render_video(frames, "vos", VOCABULARY, PromptState().click(999, 5, "point"))


def test_gradio_app_builds(session):
    pytest.importorskip("gradio")
    import web_demo

    app = web_demo.build_app(session, VOCABULARY, [])
    assert app is not None
    assert web_demo.default_vocabulary_text(session.segmenter)
