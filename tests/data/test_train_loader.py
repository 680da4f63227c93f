"""Trainer loaders through Detectron2's builders: name stamping, empty-image filtering for every
record type, samplers, evaluation keeping empty images, and annotation-file validation."""
import itertools
import json
import logging
import math

import numpy as np
import pytest
import torch
from panopticapi.utils import id2rgb
from PIL import Image

from detectron2.config import get_cfg
from detectron2.data import (
    DatasetCatalog,
    MetadataCatalog,
    build_detection_train_loader,
    get_detection_dataset_dicts,
)
from detectron2.data.datasets import register_coco_instances
from detectron2.data.samplers import (
    RandomSubsetTrainingSampler,
    RepeatFactorTrainingSampler,
    TrainingSampler,
)

from omgseg.config import add_omgseg_config
from omgseg.data.build import (
    ResumableSampler,
    build_train_mapper,
    build_train_sampler,
    ground_truth_view,
)
from omgseg.data.datasets.coco_panoptic import load_panoptic_json
from omgseg.data.datasets.utils import panoptic_metadata, register_dataset
from omgseg.engine.trainer import Trainer

H, W = 24, 32
CATEGORIES = [
    {"id": 1, "name": "disc", "isthing": 1, "color": [220, 20, 60]},
    {"id": 2, "name": "ground", "isthing": 0, "color": [0, 128, 0]},
]
PAN = "omgseg_test_loader_panoptic"
INST = "omgseg_test_loader_instances"


def _save_image(path, seed):
    arr = np.random.RandomState(seed).randint(0, 255, (H, W, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """A panoptic dataset (images 1-3 with objects, 4 all void, 5 crowd only) and a COCO
    instances dataset registered with Detectron2's ``register_coco_instances`` (images 1-2
    annotated, 3 without annotations)."""
    root = tmp_path_factory.mktemp("loader_data")
    (root / "img").mkdir()
    (root / "pan").mkdir()
    layouts = {  # image id -> [(segment id, category id, iscrowd, rows)]
        1: [(26, 2, 0, slice(0, 10)), (7001, 1, 0, slice(12, 20))],
        2: [(7002, 1, 0, slice(5, 15))],
        3: [(26, 2, 0, slice(0, 24))],
        4: [],
        5: [(7003, 1, 1, slice(0, 8))],
    }
    images, annotations = [], []
    for image_id, segments in layouts.items():
        _save_image(root / "img" / f"{image_id}.jpg", image_id)
        ids = np.zeros((H, W), np.int64)
        for sid, _, _, rows in segments:
            ids[rows] = sid
        Image.fromarray(id2rgb(ids)).save(root / "pan" / f"{image_id}.png")
        images.append({"id": image_id, "file_name": f"{image_id}.jpg", "height": H, "width": W})
        annotations.append({"image_id": image_id, "file_name": f"{image_id}.png", "segments_info": [
            {"id": sid, "category_id": cat, "iscrowd": crowd, "area": int((ids == sid).sum()),
             "bbox": [0, rows.start, W, rows.stop - rows.start]}
            for sid, cat, crowd, rows in segments]})
    pan_json = root / "panoptic.json"
    pan_json.write_text(json.dumps({"images": images, "annotations": annotations,
                                    "categories": CATEGORIES}))
    meta = panoptic_metadata(CATEGORIES)
    register_dataset(
        PAN,
        lambda: load_panoptic_json(str(pan_json), str(root / "img"), str(root / "pan"), None,
                                   meta),
        dict(meta, evaluator_type="coco_panoptic_seg", panoptic_json=str(pan_json),
             panoptic_root=str(root / "pan"), image_root=str(root / "img"), ignore_label=255,
             label_divisor=1000),
    )
    inst_json = root / "instances.json"
    poly = [[2.0, 2.0, 20.0, 2.0, 20.0, 20.0, 2.0, 20.0]]
    inst_json.write_text(json.dumps({
        "images": images[:3],
        "annotations": [{"id": k, "image_id": k, "category_id": 1, "iscrowd": 0, "area": 324.0,
                         "bbox": [2, 2, 18, 18], "segmentation": poly} for k in (1, 2)],
        "categories": [{"id": 1, "name": "disc"}],
    }))
    if INST not in DatasetCatalog.list():
        register_coco_instances(INST, {}, str(inst_json), str(root / "img"))
    return root


def make_cfg(train, **overrides):
    cfg = get_cfg()
    add_omgseg_config(cfg)
    cfg.DATASETS.TRAIN = tuple(train)
    cfg.SOLVER.IMS_PER_BATCH = 2
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.INPUT.LSJ.CROP_SIZE = [16, 16]
    cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST = 24, 32
    cfg.SEED = 3
    for key, value in overrides.items():
        cfg.merge_from_list([key, value])
    return cfg


def seen_images(loader, batches):
    seen = []
    for batch in itertools.islice(loader, batches):
        seen.extend((d["dataset_name"], d["image_id"]) for d in batch)
    return seen


def find_sampler(loader):
    """The Detectron2 sampler inside the (aspect-ratio-grouped) data loader."""
    obj = loader
    while obj is not None:
        sampler = getattr(obj, "sampler", None)
        if isinstance(sampler, ResumableSampler):  # the trainer's numbered, resumable stream
            sampler = sampler.sampler
        if isinstance(sampler, (TrainingSampler, RepeatFactorTrainingSampler)):
            return sampler
        obj = getattr(obj, "dataset", None)
    raise AssertionError("no sampler found")


# ------------------------------------------------------------------------------ stamping
def test_registered_records_carry_their_dataset_name(datasets):
    records = DatasetCatalog.get(PAN)
    assert [r["image_id"] for r in records] == [1, 2, 3, 4, 5]
    assert {r["dataset_name"] for r in records} == {PAN}
    # Detectron2's own loader-building function can be used directly.
    assert len(get_detection_dataset_dicts([PAN], filter_empty=True)) == 5


# ------------------------------------------------------------------------------ filtering
def test_train_loader_filters_empty_images_of_every_record_type(datasets, caplog):
    cfg = make_cfg([PAN, INST])
    # Detectron2's from-config path alone cannot read panoptic records mixed with instances.
    with pytest.raises(KeyError, match="annotations"):
        build_detection_train_loader(make_cfg([INST, PAN]), mapper=build_train_mapper(cfg))
    with caplog.at_level(logging.INFO):
        loader = Trainer.build_train_loader(cfg)
    assert f"Dataset '{PAN}': DATALOADER.FILTER_EMPTY_ANNOTATIONS removed 2 of 5" in caplog.text
    assert f"Dataset '{INST}': DATALOADER.FILTER_EMPTY_ANNOTATIONS removed 1 of 3" in caplog.text
    seen = seen_images(loader, 10)  # 20 samples = 4 passes over the 5 kept images
    assert set(seen) == {(PAN, 1), (PAN, 2), (PAN, 3), (INST, 1), (INST, 2)}
    assert isinstance(find_sampler(loader), TrainingSampler)


def test_unfiltered_all_void_and_crowd_only_images_train(datasets):
    cfg = make_cfg([PAN], **{"DATALOADER.FILTER_EMPTY_ANNOTATIONS": False})
    seen = seen_images(Trainer.build_train_loader(cfg), 10)
    assert set(seen) == {(PAN, i) for i in (1, 2, 3, 4, 5)}


def test_all_void_clip_goes_through_the_model(datasets, tiny_cfg):
    from detectron2.modeling import build_model

    cfg = tiny_cfg.clone()
    cfg.merge_from_list(["INPUT.LSJ.CROP_SIZE", [32, 32]])
    mapper = build_train_mapper(cfg)
    by_id = {r["image_id"]: r for r in DatasetCatalog.get(PAN)}
    batch = [mapper(by_id[4]), mapper(by_id[1])]
    assert len(batch[0]["instances"][0]) == 0 and len(batch[1]["instances"][0]) == 2
    torch.manual_seed(0)
    model = build_model(cfg)
    model.train()
    losses = model(batch)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()


# ------------------------------------------------------------------------------ samplers
def _records(dataset_name, category_sets):
    return [{"dataset_name": dataset_name, "image_id": i,
             "segments_info": [{"id": k, "category_id": c, "iscrowd": 0} for k, c in enumerate(s)]}
            for i, s in enumerate(category_sets)]


def test_repeat_factors_for_panoptic_records_per_dataset():
    cfg = make_cfg(["a", "b"], **{"DATALOADER.SAMPLER_TRAIN": "RepeatFactorTrainingSampler",
                                  "DATALOADER.REPEAT_THRESHOLD": 0.5})
    # Dataset a: class 0 in 3 of 4 images, class 1 in 1 of 4 -> r(1) = sqrt(0.5 / 0.25).
    # Dataset b (its own vocabulary): class 1 in every image -> 1. Pooled, class 1 would be in
    # 2 of 5 images (r = sqrt(0.5 / 0.4)) and b's image would be repeated too.
    records = _records("a", [{0}, {0}, {0}, {1}]) + _records("b", [{1}])
    records.append({"dataset_name": "b", "image_id": 9, "sem_seg_file_name": "x.png"})
    sampler = build_train_sampler(cfg, records)
    assert isinstance(sampler, RepeatFactorTrainingSampler)
    factors = sampler._int_part + sampler._frac_part
    assert torch.allclose(factors, torch.tensor([1, 1, 1, math.sqrt(2), 1, 1.0]))
    # TrainingSampler: seeded with SEED (Detectron2 would draw a random seed)
    plain = build_train_sampler(make_cfg(["a"]), records)
    assert isinstance(plain, TrainingSampler) and plain._seed == make_cfg(["a"]).SEED


def test_video_records_are_viewed_per_video():
    ytvis = {"annotations": [[{"category_id": 3, "iscrowd": 0}], [],
                             [{"category_id": 3}, {"category_id": 5, "iscrowd": 1}]]}
    vps = {"segments_infos": [[{"category_id": 2}], [{"category_id": 4, "iscrowd": 0}]]}
    assert [a["category_id"] for a in ground_truth_view(ytvis)["annotations"]] == [3, 3, 5]
    assert [a["category_id"] for a in ground_truth_view(vps)["annotations"]] == [2, 4]
    assert ground_truth_view({"annotations": []}) == {"annotations": []}
    assert ground_truth_view({"mask_file_names": ["a.png"]}) is None


def test_trainer_uses_the_configured_sampler(datasets):
    cfg = make_cfg([PAN], **{"DATALOADER.SAMPLER_TRAIN": "RepeatFactorTrainingSampler",
                             "DATALOADER.REPEAT_THRESHOLD": 0.9})
    sampler = find_sampler(Trainer.build_train_loader(cfg))
    # Kept images 1 {0, 1}, 2 {0}, 3 {1}: f = 2/3 for both classes -> sqrt(0.9 / (2/3)).
    expected = math.sqrt(0.9 * 3 / 2)
    assert isinstance(sampler, RepeatFactorTrainingSampler)
    assert torch.allclose(sampler._int_part + sampler._frac_part, torch.full((3,), expected))

    cfg = make_cfg([PAN], **{"DATALOADER.SAMPLER_TRAIN": "RandomSubsetTrainingSampler",
                             "DATALOADER.RANDOM_SUBSET_RATIO": 0.34})
    loader = Trainer.build_train_loader(cfg)
    sampler = find_sampler(loader)
    assert isinstance(sampler, RandomSubsetTrainingSampler) and sampler._size_subset == 1
    assert len(set(seen_images(loader, 3))) == 1


# ------------------------------------------------------------------------------ evaluation
def test_test_loader_keeps_empty_images(datasets):
    cfg = make_cfg([PAN])
    for name, expected in ((PAN, [1, 2, 3, 4, 5]), (INST, [1, 2, 3])):
        loader = Trainer.build_test_loader(cfg, name)
        outputs = [d for batch in loader for d in batch]
        assert sorted(d["image_id"] for d in outputs) == expected
        assert {d["dataset_name"] for d in outputs} == {name}
        assert all(d["image"].shape == (3, H, W) for d in outputs)


# ------------------------------------------------------------------------------ json checks
def test_detectron2_registered_coco_json_is_validated(datasets, tmp_path):
    data = json.loads((datasets / "instances.json").read_text())
    data["images"].append(dict(data["images"][0], file_name="2.jpg"))  # id 1 twice
    (tmp_path / "dup.json").write_text(json.dumps(data))
    (tmp_path / "broken.json").write_text(json.dumps(data)[:-5])
    for name in ("dup", "broken"):
        dataset = f"omgseg_test_loader_{name}"
        if dataset not in DatasetCatalog.list():
            register_coco_instances(dataset, {}, str(tmp_path / f"{name}.json"),
                                    str(datasets / "img"))
    with pytest.raises(ValueError, match=r"dup\.json: duplicate image id \(1\)"):
        Trainer.build_train_loader(make_cfg(["omgseg_test_loader_dup"]))
    with pytest.raises(ValueError, match=r"dup\.json: duplicate image id \(1\)"):
        Trainer.build_test_loader(make_cfg([PAN]), "omgseg_test_loader_dup")
    with pytest.raises(ValueError, match=r"Malformed JSON in .*broken\.json"):
        Trainer.build_train_loader(make_cfg(["omgseg_test_loader_broken"]))
    assert MetadataCatalog.get("omgseg_test_loader_dup").evaluator_type == "coco"
