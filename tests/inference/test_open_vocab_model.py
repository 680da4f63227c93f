"""Open vocabulary on a built tiny OMGSeg: the vocabulary is data (a switch changes the labels and
nothing else, with the fusion on and off; cached text embeddings), and the CLIP fusion runs for
images, whole videos and prompted masks with ALPHA / BETA from the config."""
import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.modeling import build_model

from conftest import make_tiny_cfg
from omgseg.data.prompts import Prompts
from omgseg.inference import PromptPredictor
from omgseg.modeling import open_vocab
from omgseg.modeling.vocabulary import Vocabulary

TRAIN = "ov_test_train_vocab"
VOCAB = Vocabulary(["cat", "dog", "grass, lawn", "sky"], [True, True, False, False])
REVERSED = Vocabulary(VOCAB.names[::-1], VOCAB.is_thing[::-1])


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    if TRAIN not in DatasetCatalog.list():
        DatasetCatalog.register(TRAIN, lambda: [])
        MetadataCatalog.get(TRAIN).set(thing_classes=["cat", "person, child"])
    cfg = make_tiny_cfg(
        str(tmp_path_factory.mktemp("ov_model")),
        **{"DATASETS.TEST": "()", "DATASETS.TRAIN": f"('{TRAIN}',)",
           "MODEL.OMG.TEST.VIDEO.PROGRESS_BAR": False, "MODEL.OMG.OV.ENABLED": True,
           "MODEL.OMG.OV.ALPHA": 0.3, "MODEL.OMG.OV.BETA": 0.7},
    )
    torch.manual_seed(0)
    m = build_model(cfg).eval()
    m.set_vocabulary(VOCAB)
    return m


@pytest.fixture
def calls(monkeypatch):
    """Every fuse_scores call: (alpha, beta, seen, mask_cls shape)."""
    record = []
    real = open_vocab.fuse_scores

    def fuse(mask_cls, clip_logits, valid, seen, alpha, beta):
        record.append((alpha, beta, seen.tolist(), tuple(mask_cls.shape)))
        return real(mask_cls, clip_logits, valid, seen, alpha, beta)

    monkeypatch.setattr(open_vocab, "fuse_scores", fuse)
    return record


def _image(h=40, w=52, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)


def _run(model, vocab, ov):
    model.set_vocabulary(vocab)
    model.ov_enabled = ov
    try:
        with torch.no_grad():
            return model([{"image": _image()}])[0]
    finally:
        model.ov_enabled = True
        model.set_vocabulary(VOCAB)


@pytest.mark.parametrize("ov", [False, True])
def test_a_vocabulary_switch_changes_the_labels_and_nothing_else(model, ov):
    a = _run(model, VOCAB, ov)
    b = _run(model, REVERSED, ov)
    k = len(VOCAB)
    # same segments, class ids follow the new order
    ids_a, info_a = a["panoptic_seg"]
    ids_b, info_b = b["panoptic_seg"]
    assert torch.equal(ids_a, ids_b) and len(info_a) > 0
    assert [s["id"] for s in info_a] == [s["id"] for s in info_b]
    assert [k - 1 - s["category_id"] for s in info_a] == [s["category_id"] for s in info_b]
    assert [s["isthing"] for s in info_a] == [s["isthing"] for s in info_b]
    torch.testing.assert_close(a["sem_seg"].flip(0), b["sem_seg"])
    # instances: the same (score, mask) pairs, labels mapped
    ia, ib = a["instances"], b["instances"]
    key_a = sorted(zip(ia.scores.tolist(), (k - 1 - ia.pred_classes).tolist(),
                       ia.pred_masks.flatten(1).sum(1).tolist()))
    key_b = sorted(zip(ib.scores.tolist(), ib.pred_classes.tolist(),
                       ib.pred_masks.flatten(1).sum(1).tolist()))
    assert len(key_a) == len(key_b)
    np.testing.assert_allclose(np.array(key_a), np.array(key_b), rtol=1e-5, atol=1e-6)


def test_the_fusion_changes_the_scores_but_not_the_masks(model):
    off = _run(model, VOCAB, False)
    on = _run(model, VOCAB, True)
    assert not torch.allclose(off["sem_seg"], on["sem_seg"])


def test_switching_back_reuses_the_cached_text_embeddings(model, monkeypatch):
    model.text_embeddings(VOCAB.names)  # known, whichever tests ran before
    encoded = []
    real = model.backbone.encode_text
    monkeypatch.setattr(model.backbone, "encode_text",
                        lambda tokens: encoded.append(len(tokens)) or real(tokens))
    fresh = Vocabulary(["okapi", "teapot"])
    model.text_embeddings(fresh.names)
    assert encoded  # a new vocabulary runs the text tower ...
    encoded.clear()
    model.text_embeddings(VOCAB.names)
    model.text_embeddings(fresh.names)
    assert encoded == []  # ... switching back to a known one does not


def test_seen_classes_come_from_the_training_vocabulary(model):
    vocab = Vocabulary(["kid, child", "zebra", "Cat"])
    assert model.seen_classes(vocab).tolist() == [True, False, True]


def test_fusion_for_images_videos_and_prompts_with_config_weights(model, calls):
    assert model.ov_enabled and (model.ov_alpha, model.ov_beta) == (0.3, 0.7)
    seen = [True, False, False, False]  # "cat" is in the training vocabulary
    with torch.no_grad():
        model([{"image": _image()}, {"image": _image(seed=1)}])
    assert calls == [(0.3, 0.7, seen, (2, 12, 5))]
    calls.clear()
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (32, 48, 3), dtype=np.uint8) for _ in range(5)]
    with torch.no_grad():
        (out,) = model([{"video_frames": frames, "video_id": "v"}])
    assert [c[3] for c in calls] == [(1, 12, 5), (1, 12, 5)]  # per clip (3 + 2 frames)
    assert len(out["frames"]) == 5
    calls.clear()
    prompts = Prompts(["box", "point"], torch.tensor([[2.0, 2.0, 30.0, 20.0], [10, 10, 14, 14]]),
                      (40, 52))
    with torch.no_grad():
        (res,) = model([{"image": _image(), "prompts": prompts}])
    assert [c[3] for c in calls] == [(1, 2, 5)]
    assert res["prompt_instances"].pred_classes.max() < 4
    calls.clear()
    box = Prompts(["box"], torch.tensor([[2.0, 2.0, 20.0, 20.0]]), (32, 48))
    with torch.no_grad():  # prompt-driven VOS: every frame's prompted mask
        (vos,) = model([{"video_frames": frames[:3], "first_frame_prompts": box,
                         "video_id": "p"}])
    assert [c[3] for c in calls] == [(1, 1, 5)] * 3 and len(vos["vos_masks"]) == 3


def test_prompt_predictor_labels_use_the_fusion(model, calls, tiny_cfg):
    predictor = PromptPredictor(tiny_cfg, input_format="RGB", model=model)
    predictor.set_vocabulary("cat,dog,grass")
    predictor.set_image(np.random.default_rng(1).integers(0, 256, (40, 52, 3), dtype=np.uint8))
    result = predictor.predict(boxes=[[2, 2, 30, 20]])
    assert len(calls) == 1 and calls[0][2] == [True, False, False]
    assert result.labels[0] in ("cat", "dog", "grass")
    model.set_vocabulary(VOCAB)


def test_demo_ov_rows_map_a_reordered_vocabulary_back_to_the_dataset_ids(model):
    """tools/run_demo.py's OV evaluation wrapper: with a reversed vocabulary the mapped panoptic
    output equals the one of the original order (what makes rows (a) and (b) equal)."""
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "run_demo.py")
    spec = importlib.util.spec_from_file_location("run_demo_under_test", path)
    run_demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_demo)
    assert [v for _, v, _ in run_demo.OV_METRICS].count("reordered") == 1
    k = len(VOCAB)
    inputs = [{"image": _image(seed=3), "dataset_name": "ignored: the wrapper drops it"}]
    with torch.no_grad():
        model.set_vocabulary(REVERSED)
        mapped = run_demo._VocabularyEval(model, REVERSED, list(range(k))[::-1])(inputs)[0]
        model.set_vocabulary(VOCAB)
        plain = model([{"image": _image(seed=3)}])[0]
    assert torch.equal(mapped["panoptic_seg"][0], plain["panoptic_seg"][0])
    assert mapped["panoptic_seg"][1] == plain["panoptic_seg"][1]
