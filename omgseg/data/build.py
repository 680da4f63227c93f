"""Mapper tables, and the dataset dicts / samplers that Detectron2's loader builders receive.

Detectron2's ``get_detection_dataset_dicts`` filters empty images and computes repeat factors
from ``record["annotations"]`` only, and only when the FIRST record has them. OMG-Seg trains on
panoptic (``segments_info``), instance, semantic and video records together, so
:func:`get_omg_dataset_dicts` runs Detectron2's loading per dataset and applies Detectron2's own
filter (``filter_images_with_only_crowd_annotations``) and repeat-factor code
(``RepeatFactorTrainingSampler.repeat_factors_from_category_frequency``) to a *view* of every
record's ground truth (:func:`ground_truth_view`).

Resumable training streams: :class:`ResumableSampler` numbers the samples of the (per-rank,
infinite) sampler stream and can start the stream at a position (``--resume`` skips what the
killed run consumed); :class:`SeededMapDataset` maps the sample at position ``p`` with
``random`` / ``numpy`` / ``torch`` seeded from ``(SEED, rank, p)``, so its augmentation does not
depend on which worker maps it or on what ran before. Together they give a resumed run the same
batches as an uninterrupted one (see :func:`build_resumable_train_loader` for the conditions).
"""
import contextlib
import itertools
import logging
import os
import random
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np
import torch

from detectron2.data import DatasetCatalog, MetadataCatalog, get_detection_dataset_dicts
from detectron2.data import build_detection_train_loader
from detectron2.data.build import filter_images_with_only_crowd_annotations
from detectron2.data.common import DatasetFromList
from detectron2.data.samplers import RepeatFactorTrainingSampler, TrainingSampler
from detectron2.utils import comm

from .dataset_mappers import (
    MultiTaskDatasetMapper,
    OMGTestDatasetMapper,
    PromptDatasetMapper,
    PromptTestDatasetMapper,
    PseudoVideoLSJDatasetMapper,
    VideoClipDatasetMapper,
    VideoTestDatasetMapper,
)
from .datasets.validation import check_coco_instances_json

__all__ = [
    "MAPPERS",
    "TEST_MAPPERS",
    "build_train_mapper",
    "build_test_mapper",
    "ground_truth_view",
    "filter_empty_records",
    "check_dataset_files",
    "get_omg_dataset_dicts",
    "repeat_factors_from_category_frequency",
    "build_train_sampler",
    "ResumableSampler",
    "SeededMapDataset",
    "seeded_rng",
    "build_resumable_train_loader",
]

logger = logging.getLogger(__name__)

# Training mappers by INPUT.DATASET_MAPPER_NAME; each is called as ``cls(cfg, is_train=True)``.
# "omg_multi_task" maps each record by its kind (image -> pseudo-video, video -> clip; see
# dataset_mappers.MAPPERS_BY_RECORD_KIND; records of "coco_sam" datasets -> prompt samples); the
# others accept one kind only.
MAPPERS: Dict[str, Callable] = {
    "omg_multi_task": MultiTaskDatasetMapper,
    "omg_pseudo_video_lsj": PseudoVideoLSJDatasetMapper,
    "omg_video_clip": VideoClipDatasetMapper,
    "omg_prompt": PromptDatasetMapper,
}

# Test mappers by the dataset's metadata ``evaluator_type`` (default: OMGTestDatasetMapper);
# each is called as ``cls(cfg, is_train=False, dataset_name=name)``.
TEST_MAPPERS: Dict[str, Callable] = {
    "ytvis": VideoTestDatasetMapper,
    "vps": VideoTestDatasetMapper,
    "davis": VideoTestDatasetMapper,
    # Prompt evaluation (interactive mIoU): one deterministic prompt per segment and mode.
    "coco_sam": PromptTestDatasetMapper,
}


def build_train_mapper(cfg):
    """The training mapper named by ``cfg.INPUT.DATASET_MAPPER_NAME``."""
    name = cfg.INPUT.DATASET_MAPPER_NAME
    if name not in MAPPERS:
        raise KeyError(
            f"Unknown INPUT.DATASET_MAPPER_NAME {name!r}; known mappers: {sorted(MAPPERS)}"
        )
    return MAPPERS[name](cfg, is_train=True)


def build_test_mapper(cfg, dataset_name: str):
    """The inference mapper for ``dataset_name`` (stamps ``dataset_name`` on every sample)."""
    evaluator_type = None
    if dataset_name in MetadataCatalog.list():
        evaluator_type = MetadataCatalog.get(dataset_name).get("evaluator_type", None)
    mapper_cls = TEST_MAPPERS.get(evaluator_type, OMGTestDatasetMapper)
    return mapper_cls(cfg, is_train=False, dataset_name=dataset_name)


# ----------------------------------------------------------------------------- dataset dicts
def ground_truth_view(record: dict) -> Optional[dict]:
    """``{"annotations": [{"category_id", "iscrowd"}, ...]}``: the objects a record lists, in the
    form Detectron2's annotation-based functions read.

    Objects are the instance ``annotations`` (per frame for a video), the panoptic
    ``segments_info`` (``segments_infos`` per frame for a video). None for records whose ground
    truth is only in files (semantic PNGs, DAVIS masks): they cannot be judged empty without
    reading every PNG, and are never filtered.
    """
    if "segments_info" in record:
        objects = record["segments_info"]
    elif "segments_infos" in record:
        objects = itertools.chain.from_iterable(record["segments_infos"])
    elif "annotations" in record:
        annos = record["annotations"]
        if annos and isinstance(annos[0], list):  # a video: one list per frame
            objects = itertools.chain.from_iterable(annos)
        else:
            objects = annos
    else:
        return None
    return {
        "annotations": [
            {"category_id": o["category_id"], "iscrowd": o.get("iscrowd", 0)} for o in objects
        ]
    }


def filter_empty_records(records: List[dict], dataset_name: str) -> List[dict]:
    """Drop records without a non-crowd object (Detectron2's rule, on :func:`ground_truth_view`)
    and log how many were dropped and why."""
    views = [ground_truth_view(r) for r in records]
    listed = [v for v in views if v is not None]
    if not listed:
        logger.info(
            f"Dataset '{dataset_name}': ground truth is in files only (e.g. semantic PNGs); "
            f"no image is filtered as empty"
        )
        return records
    kept = {id(v) for v in filter_images_with_only_crowd_annotations(listed)}
    out = [r for r, v in zip(records, views) if v is None or id(v) in kept]
    logger.info(
        f"Dataset '{dataset_name}': DATALOADER.FILTER_EMPTY_ANNOTATIONS removed "
        f"{len(records) - len(out)} of {len(records)} images / videos that have no non-crowd "
        f"object (instance annotation or panoptic segment); {len(out)} left"
    )
    return out


def check_dataset_files(dataset_name: str) -> None:
    """Checks Detectron2's loaders skip, run before a dataset is loaded: for a COCO instances
    dataset (``evaluator_type`` "coco", e.g. ``register_coco_instances``), a malformed json names
    its file and duplicate image / annotation ids are an error."""
    meta = MetadataCatalog.get(dataset_name)
    json_file = meta.get("json_file", None)
    if meta.get("evaluator_type", None) == "coco" and json_file and os.path.isfile(json_file):
        check_coco_instances_json(json_file)


def get_omg_dataset_dicts(names: Sequence[str], filter_empty: bool) -> List[dict]:
    """Records of the datasets ``names``, each stamped with its ``dataset_name``, concatenated.

    Each dataset goes through :func:`check_dataset_files` and Detectron2's
    ``get_detection_dataset_dicts`` (empty-dataset check, class histogram); with
    ``filter_empty`` (training, ``DATALOADER.FILTER_EMPTY_ANNOTATIONS``) records of any task
    without a non-crowd object are dropped by :func:`filter_empty_records`. Evaluation passes
    ``filter_empty=False``: an empty image still counts (its false positives lower AP).
    """
    if isinstance(names, str):
        names = [names]
    if len(names) == 0:
        raise ValueError("No dataset named (DATASETS.TRAIN / DATASETS.TEST is empty)")
    out: List[dict] = []
    for name in names:
        check_dataset_files(name)
        if name not in DatasetCatalog.list():
            raise KeyError(f"Dataset '{name}' is not registered (see datasets/README.md)")
        records = get_detection_dataset_dicts([name], filter_empty=False)
        records = [r if r.get("dataset_name") == name else dict(r, dataset_name=name)
                   for r in records]
        if filter_empty:
            records = filter_empty_records(records, name)
        out.extend(records)
    if not out:
        raise ValueError(f"No image left in {list(names)} after filtering empty images")
    return out


# ----------------------------------------------------------------------------- samplers
def repeat_factors_from_category_frequency(
    dataset_dicts: List[dict], repeat_thresh: float, sqrt: bool = True
) -> torch.Tensor:
    """Detectron2's LVIS repeat factors for records of any task, computed per dataset (each has
    its own vocabulary) on :func:`ground_truth_view`; records listing no object get 1."""
    factors = []
    for _, group in itertools.groupby(dataset_dicts, key=lambda r: r.get("dataset_name")):
        views = [ground_truth_view(r) or {"annotations": []} for r in group]
        factors.append(RepeatFactorTrainingSampler.repeat_factors_from_category_frequency(
            views, repeat_thresh, sqrt=sqrt))
    return torch.cat(factors) if factors else torch.zeros(0)


def _dataset_repeat_factors(cfg, dataset_dicts: List[dict]) -> torch.Tensor:
    if not hasattr(cfg.DATASETS, "TRAIN_REPEAT_FACTOR"):
        raise ValueError(
            f"DATALOADER.SAMPLER_TRAIN {cfg.DATALOADER.SAMPLER_TRAIN} needs "
            f"DATASETS.TRAIN_REPEAT_FACTOR (pairs of dataset name and factor) in the config"
        )
    by_name = dict(cfg.DATASETS.TRAIN_REPEAT_FACTOR)
    unknown = set(by_name) - set(cfg.DATASETS.TRAIN)
    if unknown:
        raise ValueError(f"DATASETS.TRAIN_REPEAT_FACTOR names datasets not in DATASETS.TRAIN: "
                         f"{sorted(unknown)}")
    return torch.tensor([float(by_name.get(r["dataset_name"], 1.0)) for r in dataset_dicts])


def build_train_sampler(cfg, dataset_dicts: List[dict]) -> Optional[torch.utils.data.Sampler]:
    """The ``DATALOADER.SAMPLER_TRAIN`` sampler when Detectron2 cannot build it from the config
    for OMG-Seg records, or when it would not seed it (``TrainingSampler``: Detectron2 draws a
    random seed instead of ``SEED``); None when Detectron2 builds it
    (``RandomSubsetTrainingSampler`` only needs the number of records)."""
    name = cfg.DATALOADER.SAMPLER_TRAIN
    if name == "TrainingSampler":
        return TrainingSampler(len(dataset_dicts), seed=cfg.SEED if cfg.SEED >= 0 else None)
    if name == "RepeatFactorTrainingSampler":
        factors = repeat_factors_from_category_frequency(
            dataset_dicts, cfg.DATALOADER.REPEAT_THRESHOLD, sqrt=cfg.DATALOADER.REPEAT_SQRT
        )
        return RepeatFactorTrainingSampler(factors, seed=cfg.SEED)
    if name in ("WeightedTrainingSampler", "WeightedCategoryTrainingSampler"):
        factors = _dataset_repeat_factors(cfg, dataset_dicts)
        if name == "WeightedCategoryTrainingSampler":
            factors = factors * repeat_factors_from_category_frequency(
                dataset_dicts, cfg.DATALOADER.REPEAT_THRESHOLD, sqrt=cfg.DATALOADER.REPEAT_SQRT
            )
            factors = factors / factors.min()
        logger.info(f"Using {name} with DATASETS.TRAIN_REPEAT_FACTOR "
                    f"{list(cfg.DATASETS.TRAIN_REPEAT_FACTOR)}")
        return RepeatFactorTrainingSampler(factors, seed=cfg.SEED)
    return None


# ----------------------------------------------------------------------------- resumable stream
class ResumableSampler(torch.utils.data.Sampler):
    """An infinite training sampler whose stream can start at a position.

    Yields ``position * num_records + index`` for the ``index`` at each ``position`` of the
    wrapped sampler's stream (positions count from 0 for this rank), starting at the position
    given to :meth:`start_at` (default 0): :class:`SeededMapDataset` splits it back. Set the start
    before the data loader's iterator is created (the trainer does so in ``resume_or_load``).
    """

    def __init__(self, sampler: torch.utils.data.Sampler, num_records: int):
        self.sampler = sampler
        self.num_records = int(num_records)
        self.start = 0

    def start_at(self, position: int) -> None:
        """Skip the first ``position`` samples of the stream (those a resumed run consumed)."""
        if position < 0:
            raise ValueError(f"stream position must be >= 0, got {position}")
        self.start = int(position)

    def __iter__(self) -> Iterator[int]:
        stream = itertools.islice(iter(self.sampler), self.start, None)
        for position, index in enumerate(stream, self.start):
            yield position * self.num_records + int(index)


def _derived_seed(*keys: int) -> int:
    return int(np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in keys]).generate_state(1)[0])


@contextlib.contextmanager
def seeded_rng(seed: int):
    """Seed ``random``, ``numpy`` and torch's CPU generator with ``seed`` inside the block, and
    give the caller back the states they had before."""
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


class SeededMapDataset(torch.utils.data.Dataset):
    """Records and a mapper; item ``position * len(self) + index`` is ``mapper(record[index])``
    under :func:`seeded_rng` of ``(seed, rank, position)``.

    A mapper answer of None (a sample it cannot use) is retried on another record drawn from
    the same seed, as Detectron2's ``MapDataset`` retries on a random one.
    """

    def __init__(self, records: List[dict], mapper: Callable, seed: int, rank: int = 0):
        self.records = DatasetFromList(records, copy=False)  # serialized: cheap in workers
        self.mapper = mapper
        self.seed = int(seed)
        self.rank = int(rank)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: int):
        position, index = divmod(int(key), len(self.records))
        for attempt in range(100):
            with seeded_rng(_derived_seed(self.seed, self.rank, position, attempt)):
                data = self.mapper(self.records[index])
                if data is not None:
                    return data
                index = random.randrange(len(self.records))  # still seeded: reproducible
            if attempt == 3:
                logger.warning(f"The mapper returned None for 4 records in a row at stream "
                               f"position {position}; trying others")
        raise RuntimeError(f"The mapper returned None for 100 records at stream position "
                           f"{position}: check the training records and the mapper")


def build_resumable_train_loader(cfg, dataset_dicts: List[dict], mapper: Callable):
    """Detectron2's batched training loader over a :class:`ResumableSampler` stream of
    :class:`SeededMapDataset` samples; returns ``(loader, sampler)``.

    ``sampler.start_at(start_iter * IMS_PER_BATCH // world size)`` makes a resumed run read the
    same batches as an uninterrupted one when ``SEED`` >= 0 (else every run draws its own seed)
    and the batches are consecutive stream slices, i.e. ``DATALOADER.ASPECT_RATIO_GROUPING``
    False (or every record of one orientation): Detectron2 shards the stream to workers in
    batch-size chunks, so the number of workers does not matter. With aspect-ratio grouping,
    samples waiting in a bucket at the kill are skipped on resume.
    """
    seed = cfg.SEED if cfg.SEED >= 0 else comm.shared_random_seed()
    sampler = build_train_sampler(cfg, dataset_dicts)
    if sampler is None:  # RandomSubsetTrainingSampler
        from detectron2.data.build import _train_loader_from_config

        sampler = _train_loader_from_config(cfg, mapper, dataset=dataset_dicts)["sampler"]
    resumable = ResumableSampler(sampler, len(dataset_dicts))
    loader = build_detection_train_loader(
        SeededMapDataset(dataset_dicts, mapper, seed, rank=comm.get_rank()),
        mapper=None,
        sampler=resumable,
        total_batch_size=cfg.SOLVER.IMS_PER_BATCH,
        aspect_ratio_grouping=cfg.DATALOADER.ASPECT_RATIO_GROUPING,
        num_workers=cfg.DATALOADER.NUM_WORKERS,
        # The loader's own generator draws the workers' base seed: creating its iterator (at
        # the first iteration of a run, resumed or not) must not move torch's global generator.
        seed=seed,
    )
    return loader, resumable
