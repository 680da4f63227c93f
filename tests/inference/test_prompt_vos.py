"""Prompt-driven VOS end to end: the synthetic DAVIS val videos with a click / a stroke on each
first-frame object instead of its mask, through ``Trainer.test`` (video test mapper -> model ->
DAVIS evaluator), and a "perfect" model whose prompted masks come from the ground truth."""
import math

import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.modeling import build_model

from conftest import make_tiny_cfg
from omgseg.data.build import build_test_mapper
from omgseg.engine.trainer import Trainer
from omgseg.evaluation.video_instance.davis_evaluation import read_index_png

POINT, SCRIBBLE = ("omg_shapes_video_val_prompt_vos_point",
                   "omg_shapes_video_val_prompt_vos_scribble")


@pytest.fixture(scope="module")
def cfg(tmp_path_factory, synthetic_root):
    return make_tiny_cfg(str(tmp_path_factory.mktemp("prompt_vos")),
                         **{"DATASETS.TEST": str((POINT, SCRIBBLE)),
                            "MODEL.OMG.TEST.VIDEO.PROGRESS_BAR": False})


def test_the_mapper_gives_prompts_not_masks(cfg):
    record = DatasetCatalog.get(POINT)[0]
    inp = build_test_mapper(cfg, POINT)(dict(record))
    assert "first_frame_masks" not in inp
    prompts = inp["first_frame_prompts"]
    assert prompts.kinds == ["point"] * len(inp["object_ids"])
    assert tuple(prompts.image_size) == tuple(inp["video_frames"].size)
    inp = build_test_mapper(cfg, SCRIBBLE)(dict(record))
    assert set(inp["first_frame_prompts"].kinds) == {"scribble"}


def test_trainer_test_scores_prompt_driven_vos(cfg):
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    results = Trainer.test(cfg, model)
    for name in (POINT, SCRIBBLE):
        res = results[name]["vos"]
        assert {"J&F-Mean", "J-Mean", "F-Mean"} <= set(res)
        assert all(math.isfinite(res[k]) for k in ("J&F-Mean", "J-Mean", "F-Mean"))


def test_a_perfect_prompted_model_scores_100(cfg, monkeypatch):
    """An oracle decoder that answers prompt k with the ground-truth mask of object k (in the
    frame being decoded): the mapper -> prompts -> tracking -> painting -> DAVIS evaluation path
    must then give J&F 100 (the frames are at their original size in this config)."""
    model = build_model(cfg).eval()
    records = {r["video_id"]: r for r in DatasetCatalog.get(POINT)}
    state = {}
    original = model.video_inference

    def video_inference(inp, tasks=None):
        state.update(record=records[inp["video_id"]], t=0, ids=inp["object_ids"].tolist())
        return original(inp, tasks)

    def decode_prompt_sets(memory, prompts, text):
        record, t = state["record"], state["t"]
        state["t"] += 1
        gt = torch.from_numpy(read_index_png(record["mask_file_names"][t]).astype(np.int64))
        (p,) = prompts
        h, w = p.image_size
        assert gt.shape == (h, w)
        padded = memory.mask_features.shape[-2:]
        logits = torch.full((1, len(p), 1, padded[0] * 4, padded[1] * 4), -20.0)
        for k, obj in enumerate(state["ids"]):
            logits[0, k, 0, :h, :w][gt == obj] = 20.0
        return {"pred_masks": logits, "pred_logits": torch.zeros(1, len(p), 3)}

    monkeypatch.setattr(model, "video_inference", video_inference)
    monkeypatch.setattr(model, "decode_prompt_sets", decode_prompt_sets)
    monkeypatch.setattr(model.mask_decoder, "prepare_memory", _memory_at_input_resolution)
    results = Trainer.test(cfg, model)
    assert results[POINT]["vos"]["J&F-Mean"] == pytest.approx(100.0)
    assert results[SCRIBBLE]["vos"]["J&F-Mean"] == pytest.approx(100.0)


class _Memory:
    def __init__(self, mask_features):
        self.mask_features = mask_features


def _memory_at_input_resolution(multi_scale, mask_features, num_frames):
    """A stand-in memory: only its mask-feature size is read by the fake decoder."""
    n, c, h, w = mask_features.shape
    return _Memory(mask_features.view(n // num_frames, num_frames, c, h, w))
