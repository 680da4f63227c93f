"""Mapper tables: ``INPUT.DATASET_MAPPER_NAME`` -> training mapper; test mapper per dataset."""
from typing import Callable, Dict

from detectron2.data import MetadataCatalog

from .dataset_mappers import OMGTestDatasetMapper, PseudoVideoLSJDatasetMapper

__all__ = ["MAPPERS", "TEST_MAPPERS", "build_train_mapper", "build_test_mapper"]

# Training mappers by INPUT.DATASET_MAPPER_NAME; each is called as ``cls(cfg, is_train=True)``.
MAPPERS: Dict[str, Callable] = {
    "omg_pseudo_video_lsj": PseudoVideoLSJDatasetMapper,
}

# Test mappers by the dataset's metadata ``evaluator_type`` (default: OMGTestDatasetMapper);
# each is called as ``cls(cfg, is_train=False, dataset_name=name)``.
TEST_MAPPERS: Dict[str, Callable] = {}


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
