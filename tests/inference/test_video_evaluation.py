"""Video evaluation end to end: ``Trainer.test`` on the synthetic VPS / YT-VIS / DAVIS val sets
(Detectron2's ``inference_on_dataset``, the video test mapper, the evaluator table), and a
"perfect" model -- decoder outputs built from the ground truth, queries shuffled in every clip
-- that must score VPQ / STQ / mIoU / AP / J&F = 100 through the whole video path."""
import math

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.modeling import build_model

from conftest import make_tiny_cfg
from omgseg.engine.trainer import Trainer
from omgseg.evaluation.video_instance.davis_evaluation import read_index_png
from omgseg.evaluation.video_panoptic.frames import read_panoptic_png
from omgseg.modeling.video import ClipPrediction
from omgseg.modeling.vocabulary import dataset_vocabulary

VPS, YTVIS, DAVIS = ("omg_shapes_video_val_vps", "omg_shapes_video_val_ytvis",
                     "omg_shapes_video_val_davis")
NUM_QUERIES = 12


@pytest.fixture(scope="module")
def video_cfg(tmp_path_factory, synthetic_root):
    return make_tiny_cfg(str(tmp_path_factory.mktemp("video_eval")),
                         **{"DATASETS.TEST": str((VPS, YTVIS, DAVIS)),
                            "MODEL.OMG.TEST.VIDEO.PROGRESS_BAR": False,
                            "MODEL.OMG.NUM_OBJECT_QUERIES": NUM_QUERIES})


def _finite(results, task, keys):
    return {k: results[task][k] for k in keys if not math.isfinite(results[task][k])}


def test_trainer_test_runs_the_video_datasets(video_cfg):
    torch.manual_seed(0)
    model = build_model(video_cfg).eval()
    results = Trainer.test(video_cfg, model)
    vpq = ["VPQ", "VPQ_th", "VPQ_st"] + [f"{m}@{n}" for n in (1, 2, 4, 6, 8)
                                         for m in ("VPQ", "VPQ_th", "VPQ_st")]
    checks = {
        VPS: {"vpq": vpq + ["STQ", "AQ", "SQ"], "vss": ["mIoU", "fwIoU", "mACC", "pACC", "VC8"]},
        YTVIS: {"segm": ["AP", "AP50", "AP75", "APs", "AR1", "AR10"]},
        DAVIS: {"vos": ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall",
                        "F-Decay"]},
    }
    for name, tasks in checks.items():
        for task, keys in tasks.items():
            assert set(keys) <= set(results[name][task]), (name, task)
            assert not _finite(results[name], task, keys), (name, task)
    # NaN only where the ground truth cannot define the value: 9-frame videos have no 16-frame
    # window, the small synthetic shapes no medium / large object.
    assert math.isnan(results[VPS]["vss"]["VC16"])
    assert math.isnan(results[YTVIS]["segm"]["APm"]) and math.isnan(results[YTVIS]["segm"]["APl"])


# ---- a perfect model -----------------------------------------------------------------------
def _decode_rle(segm, size):
    if isinstance(segm, dict):
        rle = segm if not isinstance(segm["counts"], list) else mask_util.frPyObjects(segm, *size)
        return mask_util.decode(rle).astype(bool)
    return mask_util.decode(mask_util.merge(mask_util.frPyObjects(segm, *size))).astype(bool)


def ground_truth_tracks(name, record):
    """(bool masks [N, T, H, W], classes [N] (-1: class-agnostic)) of a record's entities."""
    h, w, t_len = record["height"], record["width"], record["length"]
    tracks = {}
    if name == VPS:
        for t, (path, segments) in enumerate(zip(record["pan_seg_file_names"],
                                                 record["segments_infos"])):
            ids = read_panoptic_png(path)
            for s in segments:
                m = tracks.setdefault(s["id"], (np.zeros((t_len, h, w), bool), s["category_id"]))
                m[0][t] = ids == s["id"]
    elif name == YTVIS:
        for t, annos in enumerate(record["annotations"]):
            for a in annos:
                m = tracks.setdefault(a["id"], (np.zeros((t_len, h, w), bool), a["category_id"]))
                m[0][t] = _decode_rle(a["segmentation"], (h, w))
    else:
        for t, path in enumerate(record["mask_file_names"]):
            index = read_index_png(path)
            for k in np.unique(index):
                if k in (0, 255):
                    continue
                m = tracks.setdefault(int(k), (np.zeros((t_len, h, w), bool), 0))
                m[0][t] = index == k
    masks = np.stack([m for m, _ in tracks.values()])
    return torch.from_numpy(masks), torch.tensor([c for _, c in tracks.values()])


class PerfectDecoder:
    """Replaces ``OMGSeg._decode_video_clip``: the ground-truth tracks as queries (logits +-10,
    class / objectness logits 20 / 10), the other queries void, rows shuffled in every clip,
    query features one-hot per track plus noise."""

    def __init__(self, name):
        self.records = {r["video_id"]: r for r in DatasetCatalog.get(name)}
        self.name = name
        self.num_classes = len(dataset_vocabulary(name))
        self.cache = {}
        self.g = torch.Generator().manual_seed(0)
        self.clips = 0

    def __call__(self, frames, start, end, text, name, vocab=None):
        vid = frames.video_id
        if vid not in self.cache:
            self.cache[vid] = ground_truth_tracks(self.name, self.records[vid])
        masks, classes = self.cache[vid]
        n = masks.shape[0]
        assert n <= NUM_QUERIES
        logits = torch.zeros(NUM_QUERIES, self.num_classes + 1)
        logits[torch.arange(n), classes.clamp(min=0)] = 20.0
        logits[n:, -1] = 20.0
        objectness = torch.full((NUM_QUERIES, 1), -10.0)
        objectness[:n] = 10.0
        tubes = torch.full((NUM_QUERIES, end - start) + tuple(masks.shape[-2:]), -10.0)
        tubes[:n] = masks[:, start:end].float() * 20 - 10
        features = torch.eye(NUM_QUERIES) + 0.05 * torch.randn(NUM_QUERIES, NUM_QUERIES,
                                                               generator=self.g)
        order = torch.randperm(NUM_QUERIES, generator=self.g)
        self.clips += 1
        size = tuple(frames.size)
        assert size == tuple(masks.shape[-2:])  # test resize is the identity here
        return ClipPrediction(logits[order], objectness[order], tubes[order], features[order],
                              padded_size=size, image_size=size)


@pytest.mark.parametrize(
    "name, task, keys",
    [
        (VPS, "vpq", ["VPQ", "VPQ_th", "VPQ_st", "VPQ@8", "STQ", "AQ", "SQ"]),
        (VPS, "vss", ["mIoU", "pACC", "VC8"]),
        (YTVIS, "segm", ["AP", "AP50", "AP75", "AR10"]),
        (DAVIS, "vos", ["J&F-Mean", "J-Mean", "F-Mean"]),
    ],
)
def test_a_perfect_model_scores_100(video_cfg, monkeypatch, name, task, keys):
    cfg = video_cfg.clone()
    cfg.defrost()
    cfg.DATASETS.TEST = (name,)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    decoder = PerfectDecoder(name)
    monkeypatch.setattr(model, "_decode_video_clip", decoder)
    results = Trainer.test(cfg, model)
    assert decoder.clips >= 2 * 3  # 2 videos of 8-9 frames, 3 (VPS: 3, official rule) per clip
    for k in keys:
        assert results[task][k] == pytest.approx(100.0), (name, k, results[task])
