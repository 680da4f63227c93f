"""Detectron2 ``DefaultTrainer`` specialised for OMG-Seg.

What differs from the default: datasets are stamped with their registered name (each sample
picks its vocabulary by it), mappers and evaluators come from tables, AdamW with OMG-Seg's
parameter groups and full-model gradient clipping, and DDP also works on CPU (gloo).
"""
import copy
import logging
import weakref
from typing import List

import torch
from torch.nn.parallel import DistributedDataParallel

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import CfgNode, get_cfg
from detectron2.data import DatasetCatalog, build_detection_test_loader, build_detection_train_loader
from detectron2.engine import AMPTrainer, DefaultTrainer, SimpleTrainer, default_setup
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from ..config import add_omgseg_config
from ..data.build import build_test_mapper, build_train_mapper
from ..evaluation.build import build_evaluator
from ..solver.build import build_lr_scheduler, build_optimizer

__all__ = ["Trainer", "setup_cfg", "load_named_dataset_dicts"]


def setup_cfg(args, *, setup_env: bool = True) -> CfgNode:
    """Config from ``--config-file`` plus trailing ``KEY VALUE`` overrides, frozen."""
    cfg = get_cfg()
    add_omgseg_config(cfg)
    if args.config_file:
        cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    if setup_env:
        default_setup(cfg, args)
        setup_logger(output=cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="omgseg")
    return cfg


def load_named_dataset_dicts(names: List[str]) -> List[dict]:
    """Concatenate registered datasets, stamping each record with its ``dataset_name``."""
    if len(names) == 0:
        raise ValueError("No dataset named (DATASETS.TRAIN / DATASETS.TEST is empty)")
    dicts = []
    for name in names:
        records = DatasetCatalog.get(name)
        if len(records) == 0:
            raise ValueError(f"Dataset '{name}' is empty")
        for record in records:
            record = copy.copy(record)
            record["dataset_name"] = name
            dicts.append(record)
    return dicts


def create_ddp_model(model: torch.nn.Module) -> torch.nn.Module:
    """DDP when world size > 1; device_ids only on GPU, so gloo on CPU works too."""
    if comm.get_world_size() == 1:
        return model
    device_ids = [comm.get_local_rank()] if next(model.parameters()).is_cuda else None
    # Prompt-only parameters receive no gradient in a semantic-only batch.
    return DistributedDataParallel(
        model, device_ids=device_ids, broadcast_buffers=False, find_unused_parameters=True
    )


class Trainer(DefaultTrainer):
    def __init__(self, cfg: CfgNode):
        # DefaultTrainer.__init__ with a CPU-capable DDP wrapper.
        super(DefaultTrainer, self).__init__()
        logger = logging.getLogger("detectron2")
        if not logger.isEnabledFor(logging.INFO):
            setup_logger()
        cfg = DefaultTrainer.auto_scale_workers(cfg, comm.get_world_size())
        model = self.build_model(cfg)
        optimizer = self.build_optimizer(cfg, model)
        data_loader = self.build_train_loader(cfg)
        model = create_ddp_model(model)
        self._trainer = (AMPTrainer if cfg.SOLVER.AMP.ENABLED else SimpleTrainer)(
            model, data_loader, optimizer
        )
        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        self.checkpointer = DetectionCheckpointer(model, cfg.OUTPUT_DIR, trainer=weakref.proxy(self))
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.cfg = cfg
        self.register_hooks(self.build_hooks())

    @classmethod
    def build_train_loader(cls, cfg):
        dicts = load_named_dataset_dicts(list(cfg.DATASETS.TRAIN))
        return build_detection_train_loader(
            dicts,
            mapper=build_train_mapper(cfg),
            total_batch_size=cfg.SOLVER.IMS_PER_BATCH,
            aspect_ratio_grouping=False,
            num_workers=cfg.DATALOADER.NUM_WORKERS,
        )

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        dicts = load_named_dataset_dicts([dataset_name])
        return build_detection_test_loader(
            dicts, mapper=build_test_mapper(cfg, dataset_name), num_workers=cfg.DATALOADER.NUM_WORKERS
        )

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        import os

        output_folder = output_folder or os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return build_evaluator(cfg, dataset_name, output_folder)

    @classmethod
    def build_optimizer(cls, cfg, model):
        return build_optimizer(cfg, model)

    @classmethod
    def build_lr_scheduler(cls, cfg, optimizer):
        return build_lr_scheduler(cfg, optimizer)
